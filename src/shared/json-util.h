/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* json-c helpers: bounded strict parsing, building, and table-driven dispatch into structs. */

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "macro.h"

static inline void json_object_putp(json_object **j) {
        if (*j)
                (void) json_object_put(*j);
}
#define _cleanup_json_ _cleanup_(json_object_putp)

/*
 * Parses a complete JSON document of at most max_size bytes. Trailing garbage, nesting
 * deeper than 32, NUL bytes (raw or as "\u0000"), invalid UTF-8 and oversized input are
 * refused. On failure *ret_error (if given) says what was wrong ("invalid JSON at offset 12:
 * unexpected character"). The document "null" gives *ret == NULL. Returns -EFBIG when
 * oversized, -EINVAL for malformed input.
 */
int json_parse_document(const char *text, size_t size, size_t max_size, json_object **ret,
                        char **ret_error);

/* Adds key with a string value, or JSON null when s is NULL. */
int json_add_string(json_object *o, const char *key, const char *s);
int json_add_int(json_object *o, const char *key, int64_t v);
int json_add_uint64(json_object *o, const char *key, uint64_t v);
/* Adds key with v, taking ownership of v in every case (v is released on failure). */
int json_add_take(json_object *o, const char *key, json_object *v);
int json_add_bool(json_object *o, const char *key, bool v);
/* Adds key with an array of the strings of l (NULL: an empty array). */
int json_add_strv(json_object *o, const char *key, char * const *l);

/*
 * Table-driven parsing of a JSON object into a struct ("parse once, at the edge"). Each
 * member of the object is looked up in the table, its JSON type checked, and the callback
 * stores the converted value at userdata + offset. Errors name the field, prefixed with the
 * path of the enclosing object ("health.path: must start with '/'").
 */
typedef enum JsonDispatchFlags {
        JSON_MANDATORY     = 1 << 0,    /* entry: the key must be present */
        JSON_NULLABLE      = 1 << 1,    /* entry: JSON null is accepted and passed to the callback */
        JSON_ALLOW_UNKNOWN = 1 << 2,    /* json_dispatch(): ignore keys missing from the table */
} JsonDispatchFlags;

/* For JsonDispatch.type: the callback checks the type itself. */
#define JSON_TYPE_ANY (-1)

typedef struct JsonDispatch JsonDispatch;

/*
 * name is the full field name for messages ("health.path"), v the member (NULL for JSON null
 * on JSON_NULLABLE entries), field points at userdata + offset.
 */
typedef int (*JsonDispatchCallback)(const JsonDispatch *d, const char *name, json_object *v,
                                    void *field, char **ret_error);

struct JsonDispatch {
        const char *name;
        int type;                       /* a json_type, or JSON_TYPE_ANY */
        JsonDispatchCallback callback;
        size_t offset;
        JsonDispatchFlags flags;
        int64_t min, max;               /* for the integer callbacks; both 0: type's full range */
};

/* prefix: NULL at top level, else the path of o for messages. Table ends with a NULL name. */
int json_dispatch(json_object *o, const char *prefix, const JsonDispatch table[],
                  JsonDispatchFlags flags, void *userdata, char **ret_error);

/* Sets *ret_error (when given; overwritten, not freed) to the formatted message; returns
 * -EINVAL, or -ENOMEM. */
int json_error(char **ret_error, const char *format, ...) _printf_(2, 3);
/* A user supplied string made safe for an error message: quotes, backslashes and control
 * characters escaped, cut after 64 characters. NULL on OOM. */
char *json_escape_for_message(const char *s);

/* Callbacks: char* (NUL bytes refused; JSON null stores NULL), char** (array of strings), and
 * integers checked against [min, max] of the entry. */
int json_dispatch_string(const JsonDispatch *d, const char *name, json_object *v, void *field,
                         char **ret_error);
int json_dispatch_strv(const JsonDispatch *d, const char *name, json_object *v, void *field,
                       char **ret_error);
int json_dispatch_int32(const JsonDispatch *d, const char *name, json_object *v, void *field,
                        char **ret_error);
int json_dispatch_uint16(const JsonDispatch *d, const char *name, json_object *v, void *field,
                         char **ret_error);
int json_dispatch_uint64(const JsonDispatch *d, const char *name, json_object *v, void *field,
                         char **ret_error);

/* Gets an integer member in [min, max]; a wrong type or range gives "name: must be an integer
 * in min..max". */
int json_get_int_in_range(const char *name, json_object *v, int64_t min, int64_t max,
                          int64_t *ret, char **ret_error);

/* Whether a JSON string value contains a NUL byte (possible through "\u0000"). */
bool json_string_has_nul(json_object *v);
