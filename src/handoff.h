/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The handoff file: one JSON document per pool at <runtime_dir>/engines/<pool>-<replica>.json
 * telling readers (orchestratord, handoff watchers) where a ready engine serves. We write a
 * superset of what the predecessor's readers expect and read tolerantly.
 */

#include <stdint.h>
#include <sys/types.h>

#include "shared/macro.h"

#define HANDOFF_MAX_SIZE (256U * 1024U)

typedef struct PreparedEngine PreparedEngine;

typedef struct Handoff {
        char *engine;                   /* "llamacpp", ... */
        char *engine_version;
        char *provisioning_mode;        /* "source", "binary", ... */
        char *url;                      /* required when reading */
        char *pool_id;                  /* required when reading */
        char *replica_id;               /* default "r0" */
        char *model_path;
        char *model_id;
        char **flags;
        char *device_mask;
        int32_t slots_total;            /* -1: absent ("slots" accepted as an alias) */
        int32_t slots_free;             /* -1: absent */
        pid_t pid;                      /* 0: absent */
        char *unit;
        char *ready_at;                 /* RFC 3339 */
} Handoff;

#define HANDOFF_INIT { .slots_total = -1, .slots_free = -1 }

void handoff_done(Handoff *h);

/* Fills a handoff from a prepared engine (engine, version, url, ids, model, flags, mask, slots). */
int handoff_from_prepared_engine(const PreparedEngine *p, Handoff *ret);

int handoff_to_json_string(const Handoff *h, char **ret);
/* -EINVAL with *ret_error naming the field for malformed input; missing optional fields are fine. */
int handoff_from_json_string(const char *text, size_t size, Handoff *ret, char **ret_error);

/* "<dir>/<pool_id>-<replica_id>.json" */
int handoff_path(const char *engines_dir, const char *pool_id, const char *replica_id, char **ret);
/* Atomic write (temp + rename, no fsync: engines_dir is in the runtime directory); creates
 * engines_dir if needed. */
int handoff_write(const char *engines_dir, const Handoff *h, char **ret_path);
int handoff_read(const char *path, Handoff *ret, char **ret_error);
