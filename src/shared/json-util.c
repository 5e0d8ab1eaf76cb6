/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * json-c glue. Documents from outside (HTTP bodies, handoff files) are parsed with the
 * tokener in strict mode with UTF-8 validation and a nesting limit, from a NUL-terminated
 * copy so that a top-level number is terminated; then converted into typed structs through
 * dispatch tables, so that no json_object escapes the edge of a module.
 */

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>

#include "json-util.h"
#include "strv.h"

#define JSON_DEPTH_MAX 32

/* How much of a user supplied string is echoed back in an error message. */
#define MESSAGE_QUOTE_MAX 64

int json_error(char **ret_error, const char *format, ...) {
        va_list ap;
        char *m;
        int k;

        if (!ret_error)
                return -EINVAL;

        va_start(ap, format);
        k = vasprintf(&m, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;

        *ret_error = m;
        return -EINVAL;
}

char *json_escape_for_message(const char *s) {
        char *buf, *t;
        size_t n = 0;

        /* Each byte takes at most 4 characters ("\xNN"), plus "..." and the NUL. */
        buf = malloc(MESSAGE_QUOTE_MAX * 4 + 4);
        if (!buf)
                return NULL;

        t = buf;
        for (const char *p = s; *p; p++, n++) {
                unsigned char c = (unsigned char) *p;

                if (n >= MESSAGE_QUOTE_MAX) {
                        t = stpcpy(t, "...");
                        break;
                }
                if (c == '"' || c == '\\') {
                        *t++ = '\\';
                        *t++ = (char) c;
                } else if (c < ' ' || c == 0x7f)
                        t += sprintf(t, "\\x%02x", c);
                else
                        *t++ = (char) c;
        }
        *t = '\0';
        return buf;
}

int json_parse_document(const char *text, size_t size, size_t max_size, json_object **ret,
                        char **ret_error) {
        _cleanup_free_ char *copy = NULL;
        struct json_tokener *tok;
        enum json_tokener_error e;
        json_object *o;
        const char *nul;
        size_t end;

        if (size > max_size || size >= INT_MAX) {
                if (ret_error)
                        (void) json_error(ret_error, "document too large: %zu bytes, at most %zu",
                                          size, max_size);
                return -EFBIG;
        }

        nul = size > 0 ? memchr(text, '\0', size) : NULL;
        if (nul)
                return json_error(ret_error, "invalid JSON at offset %zu: embedded NUL byte",
                                  (size_t) (nul - text));

        /* A "\u0000" escape would be cut short silently in object keys (json-c keeps them as C
         * strings) and would truncate values once they become C strings: refuse it. Backslashes
         * occur only inside strings in valid JSON, so pairing them up is enough. */
        for (size_t i = 0; i + 1 < size; i++)
                if (text[i] == '\\') {
                        if (size - i >= 6 && memcmp(text + i + 1, "u0000", 5) == 0)
                                return json_error(ret_error,
                                                  "invalid JSON at offset %zu: \\u0000 is not allowed", i);
                        i++;
                }

        /* The tokener needs to see the terminating NUL to know that "123" ends there. */
        copy = malloc(size + 1);
        if (!copy)
                return -ENOMEM;
        if (size > 0)
                memcpy(copy, text, size);
        copy[size] = '\0';

        tok = json_tokener_new_ex(JSON_DEPTH_MAX);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);

        o = json_tokener_parse_ex(tok, copy, (int) size + 1);
        e = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);

        if (e != json_tokener_success) {
                json_object_put(o);
                return json_error(ret_error, "invalid JSON at offset %zu: %s", MIN(end, size),
                                  e == json_tokener_continue ? "unexpected end of data"
                                                             : json_tokener_error_desc(e));
        }

        /* Strict mode already refuses trailing characters; do not rely on that alone. */
        for (size_t i = end; i < size; i++)
                if (!strchr(" \t\r\n", copy[i])) {
                        json_object_put(o);
                        return json_error(ret_error, "invalid JSON at offset %zu: trailing garbage", i);
                }

        *ret = o;
        return 0;
}

int json_add_take(json_object *o, const char *key, json_object *v) {
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int json_add_string(json_object *o, const char *key, const char *s) {
        json_object *v = NULL;

        if (s) {
                v = json_object_new_string(s);
                if (!v)
                        return -ENOMEM;
        }
        return json_add_take(o, key, v);
}

int json_add_int(json_object *o, const char *key, int64_t i) {
        json_object *v;

        v = json_object_new_int64(i);
        if (!v)
                return -ENOMEM;
        return json_add_take(o, key, v);
}

int json_add_uint64(json_object *o, const char *key, uint64_t v) {
        json_object *j = json_object_new_uint64(v);

        if (!j)
                return -ENOMEM;
        return json_add_take(o, key, j);
}

int json_add_bool(json_object *o, const char *key, bool b) {
        json_object *v;

        v = json_object_new_boolean(b);
        if (!v)
                return -ENOMEM;
        return json_add_take(o, key, v);
}

bool json_string_has_nul(json_object *v) {
        if (!json_object_is_type(v, json_type_string))
                return false;
        return memchr(json_object_get_string(v), '\0', (size_t) json_object_get_string_len(v));
}

static const char *json_type_description(int type) {
        switch (type) {
        case json_type_boolean:
                return "a boolean";
        case json_type_double:
                return "a number";
        case json_type_int:
                return "an integer";
        case json_type_object:
                return "an object";
        case json_type_array:
                return "an array";
        case json_type_string:
                return "a string";
        case json_type_null:
                return "null";
        default:
                return "a value";
        }
}

static int json_type_error(const JsonDispatch *d, const char *name, char **ret_error) {
        const char *null = (d->flags & JSON_NULLABLE) ? " or null" : "";

        if (d->type == json_type_int && (d->min != 0 || d->max != 0))
                return json_error(ret_error, "%s: must be an integer in %" PRIi64 "..%" PRIi64 "%s",
                                  name, d->min, d->max, null);
        return json_error(ret_error, "%s: must be %s%s", name, json_type_description(d->type), null);
}

static const JsonDispatch *json_dispatch_find(const JsonDispatch table[], const char *key) {
        for (const JsonDispatch *d = table; d->name; d++)
                if (streq(d->name, key))
                        return d;
        return NULL;
}

int json_dispatch(json_object *o, const char *prefix, const JsonDispatch table[],
                  JsonDispatchFlags flags, void *userdata, char **ret_error) {
        int r;

        if (!json_object_is_type(o, json_type_object)) {
                if (prefix)
                        return json_error(ret_error, "%s: must be an object", prefix);
                return json_error(ret_error, "document must be a JSON object");
        }

        json_object_object_foreach(o, key, v) {
                _cleanup_free_ char *name = NULL;
                const JsonDispatch *d;

                d = json_dispatch_find(table, key);
                if (!d) {
                        _cleanup_free_ char *q = NULL;

                        if (flags & JSON_ALLOW_UNKNOWN)
                                continue;

                        q = json_escape_for_message(key);
                        if (!q)
                                return -ENOMEM;
                        if (prefix)
                                return json_error(ret_error, "%s: unknown key \"%s\"", prefix, q);
                        return json_error(ret_error, "unknown key \"%s\"", q);
                }

                if (prefix) {
                        if (asprintf(&name, "%s.%s", prefix, d->name) < 0) {
                                name = NULL;
                                return -ENOMEM;
                        }
                } else {
                        name = strdup(d->name);
                        if (!name)
                                return -ENOMEM;
                }

                if (!v) {
                        if (!(d->flags & JSON_NULLABLE))
                                return json_type_error(d, name, ret_error);
                } else if (d->type != JSON_TYPE_ANY && !json_object_is_type(v, d->type))
                        return json_type_error(d, name, ret_error);

                r = d->callback(d, name, v, (uint8_t *) userdata + d->offset, ret_error);
                if (r < 0)
                        return r;
        }

        for (const JsonDispatch *d = table; d->name; d++)
                if ((d->flags & JSON_MANDATORY) && !json_object_object_get_ex(o, d->name, NULL)) {
                        if (prefix)
                                return json_error(ret_error, "%s.%s: is required", prefix, d->name);
                        return json_error(ret_error, "%s: is required", d->name);
                }

        return 0;
}

int json_dispatch_string(const JsonDispatch *d, const char *name, json_object *v, void *field,
                         char **ret_error) {
        char **s = field;

        if (!v)
                return free_and_strdup(s, NULL);
        if (!json_object_is_type(v, json_type_string))
                return json_error(ret_error, "%s: must be a string", name);
        if (json_string_has_nul(v))
                return json_error(ret_error, "%s: must not contain NUL bytes", name);

        return free_and_strdup(s, json_object_get_string(v));
}

int json_dispatch_strv(const JsonDispatch *d, const char *name, json_object *v, void *field,
                       char **ret_error) {
        _cleanup_strv_free_ char **l = NULL;
        char ***p = field;
        size_t n;

        if (!v) {
                *p = strv_free(*p);
                return 0;
        }
        if (!json_object_is_type(v, json_type_array))
                return json_error(ret_error, "%s: must be an array of strings", name);

        n = json_object_array_length(v);
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(v, i);

                if (!json_object_is_type(e, json_type_string))
                        return json_error(ret_error, "%s[%zu]: must be a string", name, i);
                if (json_string_has_nul(e))
                        return json_error(ret_error, "%s[%zu]: must not contain NUL bytes", name, i);

                l[i] = strdup(json_object_get_string(e));
                if (!l[i])
                        return -ENOMEM;
        }

        strv_free(*p);
        *p = TAKE_PTR(l);
        return 0;
}

int json_get_int_in_range(const char *name, json_object *v, int64_t min, int64_t max,
                          int64_t *ret, char **ret_error) {
        int64_t i;

        if (!json_object_is_type(v, json_type_int))
                goto fail;

        /* json-c clamps integers beyond int64 to INT64_MIN/INT64_MAX without telling us, so
         * those two values cannot be told apart from an overflow and are refused. */
        i = json_object_get_int64(v);
        if (i == INT64_MIN || i == INT64_MAX || i < min || i > max)
                goto fail;

        *ret = i;
        return 0;

fail:
        return json_error(ret_error, "%s: must be an integer in %" PRIi64 "..%" PRIi64, name, min, max);
}

static void json_dispatch_range(const JsonDispatch *d, int64_t def_min, int64_t def_max,
                                int64_t *ret_min, int64_t *ret_max) {
        if (d->min == 0 && d->max == 0) {
                *ret_min = def_min;
                *ret_max = def_max;
        } else {
                *ret_min = MAX(d->min, def_min);
                *ret_max = MIN(d->max, def_max);
        }
}

int json_dispatch_int32(const JsonDispatch *d, const char *name, json_object *v, void *field,
                        char **ret_error) {
        int64_t min, max, i;
        int r;

        json_dispatch_range(d, INT32_MIN, INT32_MAX, &min, &max);
        r = json_get_int_in_range(name, v, min, max, &i, ret_error);
        if (r < 0)
                return r;
        *(int32_t *) field = (int32_t) i;
        return 0;
}

int json_dispatch_uint16(const JsonDispatch *d, const char *name, json_object *v, void *field,
                         char **ret_error) {
        int64_t min, max, i;
        int r;

        json_dispatch_range(d, 0, UINT16_MAX, &min, &max);
        r = json_get_int_in_range(name, v, min, max, &i, ret_error);
        if (r < 0)
                return r;
        *(uint16_t *) field = (uint16_t) i;
        return 0;
}

int json_dispatch_uint64(const JsonDispatch *d, const char *name, json_object *v, void *field,
                         char **ret_error) {
        int64_t min, max, i;
        int r;

        json_dispatch_range(d, 0, INT64_MAX - 1, &min, &max);
        r = json_get_int_in_range(name, v, min, max, &i, ret_error);
        if (r < 0)
                return r;
        *(uint64_t *) field = (uint64_t) i;
        return 0;
}

int json_add_strv(json_object *o, const char *key, char * const *l) {
        _cleanup_json_ json_object *a = NULL;

        a = json_object_new_array();
        if (!a)
                return -ENOMEM;

        STRV_FOREACH(s, (char **) l) {
                json_object *e;

                e = json_object_new_string(*s);
                if (!e)
                        return -ENOMEM;
                if (json_object_array_add(a, e) < 0) {
                        json_object_put(e);
                        return -ENOMEM;
                }
        }

        if (json_object_object_add(o, key, a) < 0)
                return -ENOMEM;
        TAKE_PTR(a);
        return 0;
}
