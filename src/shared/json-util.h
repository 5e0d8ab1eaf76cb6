/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <json-c/json.h>

#include "macro.h"

static inline void json_object_putp(json_object **j) {
        if (*j)
                (void) json_object_put(*j);
}
#define _cleanup_json_ _cleanup_(json_object_putp)

/*
 * Parses a complete JSON document of at most max_size bytes. Trailing garbage, nesting
 * deeper than 32 and oversized input are refused. On failure *ret_error (if given) says
 * what was wrong ("invalid JSON at offset 12: unexpected character").
 */
int json_parse_document(const char *text, size_t size, size_t max_size, json_object **ret,
                        char **ret_error);

/* Adds key with a string value, or JSON null when s is NULL. */
int json_add_string(json_object *o, const char *key, const char *s);
int json_add_int(json_object *o, const char *key, int64_t v);
int json_add_bool(json_object *o, const char *key, bool v);
