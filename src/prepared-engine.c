/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * PreparedEngine: the provisioner's description of an engine to run. The JSON document is
 * parsed once through a dispatch table into a struct with defaults applied, and every field
 * and cross-field rule is checked before the struct is handed out, so nothing downstream
 * (unit properties, environment, handoff file) has to validate again.
 */

#include <limits.h>

#include "prepared-engine.h"
#include "shared/json-util.h"
#include "shared/string-table.h"
#include "shared/string-util.h"
#include "shared/strv.h"

#define DEVICE_INDEX_MAX 1023U
#define SLOTS_MAX 4096

static const char * const engine_kind_table[_ENGINE_KIND_MAX] = {
        [ENGINE_LLAMACPP] = "llamacpp",
        [ENGINE_VLLM]     = "vllm",
        [ENGINE_TGI]      = "tgi",
        [ENGINE_TRITON]   = "triton",
        [ENGINE_CUSTOM]   = "custom",
};

DEFINE_STRING_TABLE_LOOKUP(engine_kind, EngineKind);

PreparedEngine *prepared_engine_free(PreparedEngine *p) {
        if (!p)
                return NULL;

        free(p->binary_path);
        strv_free(p->flags);
        free(p->host);
        free(p->model_path);
        free(p->engine_version);
        free(p->pool_id);
        free(p->replica_id);
        free(p->device_mask);
        free(p->health_path);
        strv_free(p->env);
        return mfree(p);
}

static int prepared_engine_new_default(PreparedEngine **ret) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;

        p = calloc(1, sizeof(PreparedEngine));
        if (!p)
                return -ENOMEM;

        p->engine = ENGINE_LLAMACPP;
        p->slots_total = -1;
        p->host = strdup("127.0.0.1");
        p->replica_id = strdup("r0");
        p->health_path = strdup("/health");
        p->flags = calloc(1, sizeof(char *));
        p->env = calloc(1, sizeof(char *));
        if (!p->host || !p->replica_id || !p->health_path || !p->flags || !p->env)
                return -ENOMEM;

        *ret = TAKE_PTR(p);
        return 0;
}

/* Device masks */

/* "GPU-<uuid>" or "MIG-<uuid>": the prefix, then hex digits and dashes. */
static bool device_uuid_is_valid(const char *e, size_t n) {
        if (n < 5 || !(strneq(e, "GPU-", 4) || strneq(e, "MIG-", 4)))
                return false;
        for (size_t i = 4; i < n; i++)
                if (!strchr("0123456789abcdefABCDEF-", e[i]))
                        return false;
        return true;
}

/*
 * Parses "0,1", "GPU0,GPU1", "GPU-<uuid>" and "MIG-<uuid>" elements (mixing allowed) into the
 * canonical form: indices as "0,1", UUIDs as given. Indices are decimal without leading zeros,
 * so that each index has exactly one spelling and duplicates are recognised; UUIDs are checked
 * against the inventory at preload (src/device-mask.c). Errors name the element.
 */
static int device_mask_parse(const char *mask, char **ret, char **ret_error) {
        _cleanup_free_ char *canonical = NULL;
        bool seen[DEVICE_INDEX_MAX + 1] = {};
        const char *p = mask;
        size_t position = 0;

        if (isempty(mask))
                return json_error(ret_error, "device_mask: must name at least one device");

        for (;;) {
                size_t n = strcspn(p, ","), digits;
                const char *d = p;
                unsigned v = 0;

                position++;
                if (n == 0)
                        return json_error(ret_error, "device_mask: element %zu is empty", position);
                if (device_uuid_is_valid(p, n)) {
                        if (strextendf(&canonical, "%s%.*s", canonical ? "," : "", (int) n, p) < 0)
                                return -ENOMEM;
                        goto next;
                }
                if (n > 3 && strneq(d, "GPU", 3))
                        d += 3;
                digits = (size_t) (p + n - d);
                if (strspn(d, "0123456789") < digits || digits > 4 || (digits > 1 && d[0] == '0'))
                        return json_error(ret_error,
                                          "device_mask: element %zu (\"%.*s\") is not understood: expected an "
                                          "index in 0..%u (0), GPU<index> (GPU0), GPU-<uuid> or MIG-<uuid>, "
                                          "without spaces", position, (int) MIN(n, (size_t) 64), p,
                                          DEVICE_INDEX_MAX);
                for (size_t i = 0; i < digits; i++)
                        v = v * 10 + (unsigned) (d[i] - '0');
                if (v > DEVICE_INDEX_MAX)
                        return json_error(ret_error, "device_mask: element %zu (\"%.*s\"): index %u is not in "
                                          "0..%u", position, (int) n, p, v, DEVICE_INDEX_MAX);
                if (seen[v])
                        return json_error(ret_error, "device_mask: element %zu (\"%.*s\") names GPU%u again",
                                          position, (int) n, p, v);
                seen[v] = true;
                if (strextendf(&canonical, "%s%u", canonical ? "," : "", v) < 0)
                        return -ENOMEM;
        next:
                p += n;
                if (*p == '\0')
                        break;
                p++;
        }

        if (ret)
                *ret = TAKE_PTR(canonical);
        return 0;
}

bool device_mask_is_valid(const char *mask) {
        return device_mask_parse(mask, NULL, NULL) >= 0;
}

int device_mask_to_cuda_visible_devices(const char *mask, char **ret) {
        if (!mask) {
                *ret = NULL;
                return 0;
        }
        return device_mask_parse(mask, ret, NULL);
}

/* Field parsers. Each gets the full field name for messages and a pointer to its field. */

static bool string_has_newline(const char *s) {
        return strpbrk(s, "\r\n");
}

static bool string_has_cc(const char *s) {
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f)
                        return true;
        return false;
}

/* A path that goes into the engine's command line: no NUL or newline, not empty, shorter than
 * PATH_MAX, and absolute where asked. */
static int dispatch_path(const char *name, json_object *v, bool absolute, void *field, char **ret_error) {
        const char *s = json_object_get_string(v);

        if (json_string_has_nul(v) || string_has_newline(s))
                return json_error(ret_error, "%s: must not contain NUL or newline characters", name);
        if (absolute && s[0] != '/')
                return json_error(ret_error, "%s: must be an absolute path", name);
        if (isempty(s))
                return json_error(ret_error, "%s: must not be empty", name);
        if (strlen(s) >= PATH_MAX)
                return json_error(ret_error, "%s: must be shorter than %d bytes", name, PATH_MAX);

        return free_and_strdup(field, s);
}

static int dispatch_binary_path(const JsonDispatch *d, const char *name, json_object *v, void *field,
                                char **ret_error) {
        return dispatch_path(name, v, /* absolute= */ true, field, ret_error);
}

static int dispatch_model_path(const JsonDispatch *d, const char *name, json_object *v, void *field,
                               char **ret_error) {
        if (!v)
                return free_and_strdup(field, NULL);
        return dispatch_path(name, v, /* absolute= */ false, field, ret_error);
}

/* A label that ends up in logs, D-Bus properties and the handoff file. */
static int dispatch_label(const JsonDispatch *d, const char *name, json_object *v, void *field,
                          char **ret_error) {
        const char *s;

        if (!v)
                return free_and_strdup(field, NULL);

        s = json_object_get_string(v);
        if (json_string_has_nul(v) || isempty(s) || string_has_cc(s))
                return json_error(ret_error, "%s: must be a non-empty string without control characters",
                                  name);

        return free_and_strdup(field, s);
}

static int dispatch_id(const JsonDispatch *d, const char *name, json_object *v, void *field,
                       char **ret_error) {
        const char *s = json_object_get_string(v);

        if (json_string_has_nul(v) || !pool_id_is_valid(s))
                return json_error(ret_error, "%s: must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name);

        return free_and_strdup(field, s);
}

static int dispatch_host(const JsonDispatch *d, const char *name, json_object *v, void *field,
                         char **ret_error) {
        const char *s = json_object_get_string(v);

        if (json_string_has_nul(v) || !host_is_valid(s))
                return json_error(ret_error, "%s: must be an IP address or \"localhost\"", name);

        return free_and_strdup(field, s);
}

static int dispatch_device_mask(const JsonDispatch *d, const char *name, json_object *v,
                                void *field, char **ret_error) {
        const char *s;
        int r;

        if (!v)
                return free_and_strdup(field, NULL);

        s = json_object_get_string(v);
        if (json_string_has_nul(v))
                return json_error(ret_error, "%s: must not contain NUL characters", name);
        r = device_mask_parse(s, NULL, ret_error);
        if (r < 0)
                return r;

        return free_and_strdup(field, s);
}

static int dispatch_split(const JsonDispatch *d, const char *name, json_object *v, void *field,
                          char **ret_error) {
        const char *s = json_object_get_string(v);

        if (json_string_has_nul(v) || !(streq(s, "auto") || streq(s, "none")))
                return json_error(ret_error, "%s: must be \"auto\" (spread the model over the masked GPUs by "
                                  "their free VRAM) or \"none\"", name);
        *(bool *) field = streq(s, "auto");
        return 0;
}

static int dispatch_engine(const JsonDispatch *d, const char *name, json_object *v, void *field,
                           char **ret_error) {
        EngineKind k;

        k = json_string_has_nul(v) ? _ENGINE_KIND_INVALID
                                   : engine_kind_from_string(json_object_get_string(v));
        if (k < 0)
                return json_error(ret_error, "%s: must be one of \"llamacpp\", \"vllm\", \"tgi\", "
                                  "\"triton\", \"custom\"", name);

        *(EngineKind *) field = k;
        return 0;
}

static int dispatch_health_path(const JsonDispatch *d, const char *name, json_object *v, void *field,
                                char **ret_error) {
        const char *s = json_object_get_string(v);

        /* It goes verbatim into the request line: printable ASCII only, no spaces. */
        if (json_string_has_nul(v) || s[0] != '/')
                goto fail;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7f)
                        goto fail;
        if (strlen(s) > 1024)
                goto fail;

        return free_and_strdup(field, s);

fail:
        return json_error(ret_error,
                          "%s: must start with '/' and be at most 1024 printable ASCII characters "
                          "without spaces", name);
}

#define F(f) offsetof(PreparedEngine, f)

static const JsonDispatch health_table[] = {
        { "path",        json_type_string, dispatch_health_path, F(health_path)                         },
        { "interval_ms", json_type_int,    json_dispatch_uint64, F(health_interval_ms), 0, 10, 3600000   },
        { "timeout_ms",  json_type_int,    json_dispatch_uint64, F(health_timeout_ms),  0, 100, 86400000 },
        {}
};

/* The "health" member dispatches into the same struct: its entries carry their own offsets. */
static int dispatch_health(const JsonDispatch *d, const char *name, json_object *v, void *field,
                           char **ret_error) {
        return json_dispatch(v, name, health_table, 0, field, ret_error);
}

static int env_compare(const void *a, const void *b) {
        const char *x = *(const char * const *) a, *y = *(const char * const *) b;
        size_t lx = strcspn(x, "="), ly = strcspn(y, "=");
        int c;

        c = strncmp(x, y, MIN(lx, ly));
        if (c != 0)
                return c;
        return (lx > ly) - (lx < ly);
}

static int dispatch_env(const JsonDispatch *d, const char *name, json_object *v, void *field,
                        char **ret_error) {
        _cleanup_strv_free_ char **l = NULL;
        char ***env = field;
        size_t n = 0;

        l = calloc((size_t) json_object_object_length(v) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        json_object_object_foreach(v, key, value) {
                const char *s;

                if (!env_name_is_valid(key)) {
                        _cleanup_free_ char *q = json_escape_for_message(key);

                        if (!q)
                                return -ENOMEM;
                        return json_error(ret_error, "%s: invalid variable name \"%s\"", name, q);
                }
                if (!json_object_is_type(value, json_type_string))
                        return json_error(ret_error, "%s.%s: must be a string", name, key);

                s = json_object_get_string(value);
                if (json_string_has_nul(value) || string_has_newline(s))
                        return json_error(ret_error, "%s.%s: must not contain NUL or newline characters",
                                          name, key);

                if (asprintf(&l[n], "%s=%s", key, s) < 0) {
                        l[n] = NULL;
                        return -ENOMEM;
                }
                n++;
        }

        /* Sorted by name, so that the unit's environment does not depend on key order. */
        qsort(l, n, sizeof(char *), env_compare);

        strv_free(*env);
        *env = TAKE_PTR(l);
        return 0;
}

static const JsonDispatch prepared_engine_table[] = {
        { "binary_path",    json_type_string, dispatch_binary_path, F(binary_path),    JSON_MANDATORY },
        { "flags",          json_type_array,  json_dispatch_strv,   F(flags)                          },
        { "port",           json_type_int,    json_dispatch_uint16, F(port),  JSON_MANDATORY, 1, 65535 },
        { "host",           json_type_string, dispatch_host,        F(host)                           },
        { "model_path",     json_type_string, dispatch_model_path,  F(model_path),     JSON_NULLABLE  },
        { "engine_version", json_type_string, dispatch_label,       F(engine_version), JSON_NULLABLE  },
        { "pool_id",        json_type_string, dispatch_id,          F(pool_id),        JSON_MANDATORY },
        { "replica_id",     json_type_string, dispatch_id,          F(replica_id)                     },
        { "device_mask",    json_type_string, dispatch_device_mask, F(device_mask),    JSON_NULLABLE  },
        { "engine",         json_type_string, dispatch_engine,      F(engine)                         },
        { "health",         json_type_object, dispatch_health,      0                                 },
        { "env",            json_type_object, dispatch_env,         F(env)                            },
        { "slots_total",    json_type_int,    json_dispatch_int32,  F(slots_total),    0, 0, SLOTS_MAX },
        { "vram_required_bytes", json_type_int, json_dispatch_uint64, F(vram_required_bytes), 0, 1, INT64_MAX - 1 },
        { "split",          json_type_string, dispatch_split,       F(split_auto)                     },
        {}
};

#undef F

static bool env_has_name(char * const *env, const char *name) {
        size_t n = strlen(name);

        STRV_FOREACH(e, (char **) env)
                if (strneq(*e, name, n) && (*e)[n] == '=')
                        return true;
        return false;
}

int prepared_engine_from_object(json_object *o, PreparedEngine **ret, char **ret_error) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL;
        int r;

        r = prepared_engine_new_default(&p);
        if (r < 0)
                return r;

        r = json_dispatch(o, NULL, prepared_engine_table, 0, p, ret_error);
        if (r < 0)
                return r;

        if (p->split_auto && !p->device_mask)
                return json_error(ret_error, "split: \"auto\" needs a device_mask naming the GPUs to split over");

        /* The daemon derives CUDA_VISIBLE_DEVICES from the mask; two sources would disagree. */
        if (p->device_mask && env_has_name(p->env, "CUDA_VISIBLE_DEVICES"))
                return json_error(ret_error, "env: CUDA_VISIBLE_DEVICES must not be set together with "
                                  "device_mask, which sets it");

        *ret = TAKE_PTR(p);
        return 0;
}

int prepared_engine_from_json(const char *text, size_t size, PreparedEngine **ret, char **ret_error) {
        _cleanup_json_ json_object *o = NULL;
        int r;

        r = json_parse_document(text, size, PREPARED_ENGINE_MAX_SIZE, &o, ret_error);
        if (r < 0)
                return r;

        return prepared_engine_from_object(o, ret, ret_error);
}

static int json_add_object(json_object *o, const char *key, json_object **child) {
        if (json_object_object_add(o, key, *child) < 0)
                return -ENOMEM;
        *child = NULL;
        return 0;
}

int prepared_engine_to_json(const PreparedEngine *p, json_object **ret) {
        _cleanup_json_ json_object *o = NULL, *health = NULL, *env = NULL;
        int r;

        o = json_object_new_object();
        health = json_object_new_object();
        env = json_object_new_object();
        if (!o || !health || !env)
                return -ENOMEM;

        r = json_add_string(health, "path", p->health_path);
        if (r >= 0 && p->health_interval_ms > 0)
                r = json_add_int(health, "interval_ms", (int64_t) p->health_interval_ms);
        if (r >= 0 && p->health_timeout_ms > 0)
                r = json_add_int(health, "timeout_ms", (int64_t) p->health_timeout_ms);
        if (r < 0)
                return r;

        STRV_FOREACH(e, p->env) {
                _cleanup_free_ char *n = NULL;
                const char *eq = strchr(*e, '=');

                if (!eq)
                        return -EINVAL;
                n = strndup(*e, (size_t) (eq - *e));
                if (!n)
                        return -ENOMEM;
                r = json_add_string(env, n, eq + 1);
                if (r < 0)
                        return r;
        }

        r = json_add_string(o, "binary_path", p->binary_path);
        if (r >= 0)
                r = json_add_strv(o, "flags", p->flags);
        if (r >= 0)
                r = json_add_int(o, "port", p->port);
        if (r >= 0)
                r = json_add_string(o, "host", p->host);
        if (r >= 0)
                r = json_add_string(o, "model_path", p->model_path);
        if (r >= 0)
                r = json_add_string(o, "engine_version", p->engine_version);
        if (r >= 0)
                r = json_add_string(o, "pool_id", p->pool_id);
        if (r >= 0)
                r = json_add_string(o, "replica_id", p->replica_id);
        if (r >= 0)
                r = json_add_string(o, "device_mask", p->device_mask);
        if (r >= 0)
                r = json_add_string(o, "engine", engine_kind_to_string(p->engine));
        if (r >= 0)
                r = json_add_object(o, "health", &health);
        if (r >= 0)
                r = json_add_object(o, "env", &env);
        if (r >= 0 && p->slots_total >= 0)
                r = json_add_int(o, "slots_total", p->slots_total);
        if (r >= 0 && p->vram_required_bytes > 0)
                r = json_add_uint64(o, "vram_required_bytes", p->vram_required_bytes);
        if (r >= 0 && p->split_auto)
                r = json_add_string(o, "split", "auto");
        if (r < 0)
                return r;

        *ret = TAKE_PTR(o);
        return 0;
}

static int strdup_ptr(const char *s, char **ret) {
        *ret = NULL;
        return free_and_strdup(ret, s);
}

int prepared_engine_copy(const PreparedEngine *p, PreparedEngine **ret) {
        _cleanup_(prepared_engine_freep) PreparedEngine *c = NULL;

        c = calloc(1, sizeof(PreparedEngine));
        if (!c)
                return -ENOMEM;

        c->port = p->port;
        c->engine = p->engine;
        c->health_interval_ms = p->health_interval_ms;
        c->health_timeout_ms = p->health_timeout_ms;
        c->slots_total = p->slots_total;
        c->vram_required_bytes = p->vram_required_bytes;
        c->split_auto = p->split_auto;

        if (strdup_ptr(p->binary_path, &c->binary_path) < 0 ||
            strdup_ptr(p->host, &c->host) < 0 ||
            strdup_ptr(p->model_path, &c->model_path) < 0 ||
            strdup_ptr(p->engine_version, &c->engine_version) < 0 ||
            strdup_ptr(p->pool_id, &c->pool_id) < 0 ||
            strdup_ptr(p->replica_id, &c->replica_id) < 0 ||
            strdup_ptr(p->device_mask, &c->device_mask) < 0 ||
            strdup_ptr(p->health_path, &c->health_path) < 0)
                return -ENOMEM;

        /* strv_copy(NULL) gives an empty vector, keeping "never NULL". */
        c->flags = strv_copy(p->flags);
        c->env = strv_copy(p->env);
        if (!c->flags || !c->env)
                return -ENOMEM;

        *ret = TAKE_PTR(c);
        return 0;
}

int prepared_engine_base_url(const PreparedEngine *p, char **ret) {
        bool v6;
        char *u;

        if (isempty(p->host))
                return -EINVAL;

        /* Only IPv6 literals contain a colon (host_is_valid() allows no host names but
         * "localhost"); they need brackets in a URL. */
        v6 = strchr(p->host, ':');
        if (asprintf(&u, "http://%s%s%s:%u", v6 ? "[" : "", p->host, v6 ? "]" : "", (unsigned) p->port) < 0)
                return -ENOMEM;

        *ret = u;
        return 0;
}
