/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * What must survive a daemon restart, one file per pool: <StateDirectory>/pools/<id>.json with
 * the PreparedEngine (to re-adopt or restart the engine), whether the pool should be running,
 * and the supervision state (crash and restart counts, circuit). Written atomically.
 */

#include <stdbool.h>

#include <json-c/json.h>

#include "prepared-engine.h"

typedef struct SavedPool {
        PreparedEngine *prepared;
        bool running;                   /* the pool is meant to be running */
        json_object *supervisor;        /* may be NULL */
} SavedPool;

void pool_state_done(SavedPool *s);

int pool_state_path(const char *state_dir, const char *pool_id, char **ret);
int pool_state_save(const char *state_dir, const PreparedEngine *prepared, bool running,
                    json_object *supervisor);
/* -ENOENT when there is none; -EINVAL with *ret_error for a damaged file. */
/* The parser of pool_state_load(): text is the file's content, pool_id the name it has. Every
 * refusal (but OOM) comes with *ret_error, without the path. */
int pool_state_parse(const char *text, size_t size, const char *pool_id, SavedPool *ret, char **ret_error);
int pool_state_load(const char *state_dir, const char *pool_id, SavedPool *ret, char **ret_error);
int pool_state_remove(const char *state_dir, const char *pool_id);
