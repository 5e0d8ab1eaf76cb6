/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Handoff files. We write a superset of every key the predecessor's readers look at (its
 * handoff-watcher wants "slots", its registry "slots_total"/"slots_free"), pretty-printed and
 * replaced atomically, so a reader polling the directory never sees half a document. We read
 * tolerantly: only url and pool_id are required, unknown keys are ignored, but a key that is
 * present must have the right type.
 */

#include <stddef.h>
#include <strings.h>

#include "handoff.h"
#include "prepared-engine.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/string-util.h"
#include "shared/strv.h"

void handoff_done(Handoff *h) {
        if (!h)
                return;

        free(h->engine);
        free(h->engine_version);
        free(h->provisioning_mode);
        free(h->url);
        free(h->pool_id);
        free(h->replica_id);
        free(h->model_path);
        free(h->model_id);
        strv_free(h->flags);
        free(h->device_mask);
        free(h->unit);
        free(h->ready_at);
        *h = (Handoff) HANDOFF_INIT;
}

/* Weight file suffixes stripped to form a model id. A generic "strip after the last dot"
 * would cut model directories such as "Llama-3.1-8B-Instruct" down to "Llama-3". */
static const char * const model_suffixes[] = {
        ".gguf", ".ggml", ".bin", ".safetensors", ".pt", ".pth", ".ckpt", ".onnx", ".plan", ".engine",
};

static int model_id_from_path(const char *path, char **ret) {
        const char *b, *e;
        size_t n;

        /* The last component, ignoring trailing slashes ("/models/llama/" is "llama"). */
        e = path + strlen(path);
        while (e > path && e[-1] == '/')
                e--;
        b = e;
        while (b > path && b[-1] != '/')
                b--;
        n = (size_t) (e - b);

        for (size_t i = 0; i < ELEMENTSOF(model_suffixes); i++) {
                size_t l = strlen(model_suffixes[i]);

                if (n > l && strncasecmp(e - l, model_suffixes[i], l) == 0) {
                        n -= l;
                        break;
                }
        }

        if (n == 0) {
                *ret = NULL;
                return 0;
        }

        *ret = strndup(b, n);
        return *ret ? 0 : -ENOMEM;
}

int handoff_from_prepared_engine(const PreparedEngine *p, Handoff *ret) {
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT;
        int r;

        if (free_and_strdup(&h.engine, engine_kind_to_string(p->engine)) < 0 ||
            free_and_strdup(&h.engine_version, p->engine_version) < 0 ||
            free_and_strdup(&h.provisioning_mode, "binary") < 0 ||
            free_and_strdup(&h.pool_id, p->pool_id) < 0 ||
            free_and_strdup(&h.replica_id, p->replica_id ?: "r0") < 0 ||
            free_and_strdup(&h.model_path, p->model_path) < 0 ||
            free_and_strdup(&h.device_mask, p->device_mask) < 0)
                return -ENOMEM;

        r = prepared_engine_base_url(p, &h.url);
        if (r < 0)
                return r;

        if (p->model_path) {
                r = model_id_from_path(p->model_path, &h.model_id);
                if (r < 0)
                        return r;
        }

        h.flags = strv_copy(p->flags);
        if (!h.flags)
                return -ENOMEM;

        h.slots_total = p->slots_total >= 0 ? p->slots_total : -1;
        h.slots_free = h.slots_total;

        *ret = h;
        h = (Handoff) HANDOFF_INIT;
        return 0;
}

static bool string_is_label(const char *s) {
        if (isempty(s))
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f)
                        return false;
        return true;
}

/* What the reader requires: a document we would not read back is not written. */
static int handoff_verify(const Handoff *h) {
        if (!string_is_label(h->url))
                return -EINVAL;
        if (!pool_id_is_valid(h->pool_id))
                return -EINVAL;
        if (h->replica_id && !pool_id_is_valid(h->replica_id))
                return -EINVAL;
        return 0;
}

int handoff_to_json_string(const Handoff *h, char **ret) {
        _cleanup_json_ json_object *o = NULL, *model = NULL;
        const char *s;
        size_t n;
        char *t;
        int r;

        r = handoff_verify(h);
        if (r < 0)
                return r;

        o = json_object_new_object();
        model = json_object_new_object();
        if (!o || !model)
                return -ENOMEM;

        r = json_add_string(model, "path", h->model_path);
        if (r >= 0)
                r = json_add_string(model, "id", h->model_id);
        if (r < 0)
                return r;

        /* Key order is part of what readers see: json-c keeps insertion order. */
        r = json_add_string(o, "engine", h->engine);
        if (r >= 0)
                r = json_add_string(o, "engine_version", h->engine_version);
        if (r >= 0)
                r = json_add_string(o, "provisioning_mode", h->provisioning_mode);
        if (r >= 0)
                r = json_add_string(o, "url", h->url);
        if (r >= 0)
                r = json_add_string(o, "pool_id", h->pool_id);
        if (r >= 0)
                r = json_add_string(o, "replica_id", h->replica_id ?: "r0");
        if (r >= 0) {
                r = json_object_object_add(o, "model", model) < 0 ? -ENOMEM : 0;
                if (r >= 0)
                        model = NULL;
        }
        if (r >= 0)
                r = json_add_strv(o, "flags", h->flags);
        if (r >= 0)
                r = json_add_string(o, "device_mask", h->device_mask);
        if (r >= 0 && h->slots_total >= 0)
                r = json_add_int(o, "slots_total", h->slots_total);
        if (r >= 0 && h->slots_free >= 0)
                r = json_add_int(o, "slots_free", h->slots_free);
        /* The predecessor's handoff-watcher reads "slots". */
        if (r >= 0 && h->slots_total >= 0)
                r = json_add_int(o, "slots", h->slots_total);
        if (r >= 0 && h->pid > 0)
                r = json_add_int(o, "pid", h->pid);
        if (r >= 0)
                r = json_add_string(o, "unit", h->unit);
        if (r >= 0)
                r = json_add_string(o, "ready_at", h->ready_at);
        if (r < 0)
                return r;

        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                           JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;

        /* Pretty-printing can make a document that was read within the limit larger than it;
         * refuse to write what handoff_read() would refuse. */
        n = strlen(s);
        if (n + 1 > HANDOFF_MAX_SIZE)
                return -EFBIG;

        t = malloc(n + 2);
        if (!t)
                return -ENOMEM;
        memcpy(t, s, n);
        t[n] = '\n';
        t[n + 1] = '\0';

        *ret = t;
        return 0;
}

/* Reading. Offsets are into HandoffParse, which adds the "slots" alias to the struct. */

typedef struct HandoffParse {
        Handoff h;
        int32_t slots;
} HandoffParse;

static int dispatch_url(const JsonDispatch *d, const char *name, json_object *v, void *field,
                        char **ret_error) {
        const char *s = json_object_get_string(v);

        if (json_string_has_nul(v) || !string_is_label(s))
                return json_error(ret_error,
                                  "%s: must be a non-empty string without control characters", name);
        return free_and_strdup(field, s);
}

static int dispatch_id(const JsonDispatch *d, const char *name, json_object *v, void *field,
                       char **ret_error) {
        const char *s;

        /* replica_id: null means the default, as if absent. */
        if (!v)
                return free_and_strdup(field, "r0");

        s = json_object_get_string(v);
        if (json_string_has_nul(v) || !pool_id_is_valid(s))
                return json_error(ret_error, "%s: must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name);
        return free_and_strdup(field, s);
}

/* Counts: null is the same as absent (-1). */
static int dispatch_count(const JsonDispatch *d, const char *name, json_object *v, void *field,
                          char **ret_error) {
        int64_t i;
        int r;

        if (!v) {
                *(int32_t *) field = -1;
                return 0;
        }

        r = json_get_int_in_range(name, v, 0, INT32_MAX, &i, ret_error);
        if (r < 0)
                return r;
        *(int32_t *) field = (int32_t) i;
        return 0;
}

static int dispatch_pid(const JsonDispatch *d, const char *name, json_object *v, void *field,
                        char **ret_error) {
        int64_t i;
        int r;

        if (!v) {
                *(pid_t *) field = 0;
                return 0;
        }

        r = json_get_int_in_range(name, v, 1, INT32_MAX, &i, ret_error);
        if (r < 0)
                return r;
        *(pid_t *) field = (pid_t) i;
        return 0;
}

#define P(f) offsetof(HandoffParse, f)
#define H(f) P(h.f)

static const JsonDispatch model_table[] = {
        { "path",              json_type_string, json_dispatch_string, H(model_path),        JSON_NULLABLE },
        { "id",                json_type_string, json_dispatch_string, H(model_id),          JSON_NULLABLE },
        {}
};

static int dispatch_model(const JsonDispatch *d, const char *name, json_object *v, void *field,
                          char **ret_error) {
        HandoffParse *p = field;

        if (!v) {
                p->h.model_path = mfree(p->h.model_path);
                p->h.model_id = mfree(p->h.model_id);
                return 0;
        }
        return json_dispatch(v, name, model_table, JSON_ALLOW_UNKNOWN, p, ret_error);
}

/* Integers are type checked by the table and range checked by their callbacks. */
static const JsonDispatch handoff_table[] = {
        { "engine",            json_type_string, json_dispatch_string, H(engine),            JSON_NULLABLE },
        { "engine_version",    json_type_string, json_dispatch_string, H(engine_version),    JSON_NULLABLE },
        { "provisioning_mode", json_type_string, json_dispatch_string, H(provisioning_mode), JSON_NULLABLE },
        { "url",               json_type_string, dispatch_url,         H(url),               JSON_MANDATORY },
        { "pool_id",           json_type_string, dispatch_id,          H(pool_id),           JSON_MANDATORY },
        { "replica_id",        json_type_string, dispatch_id,          H(replica_id),        JSON_NULLABLE },
        { "model",             json_type_object, dispatch_model,       0,                    JSON_NULLABLE },
        { "flags",             json_type_array,  json_dispatch_strv,   H(flags),             JSON_NULLABLE },
        { "device_mask",       json_type_string, json_dispatch_string, H(device_mask),       JSON_NULLABLE },
        { "slots_total",       json_type_int,    dispatch_count,       H(slots_total),       JSON_NULLABLE },
        { "slots_free",        json_type_int,    dispatch_count,       H(slots_free),        JSON_NULLABLE },
        { "slots",             json_type_int,    dispatch_count,       P(slots),             JSON_NULLABLE },
        { "pid",               json_type_int,    dispatch_pid,         H(pid),               JSON_NULLABLE },
        { "unit",              json_type_string, json_dispatch_string, H(unit),              JSON_NULLABLE },
        { "ready_at",          json_type_string, json_dispatch_string, H(ready_at),          JSON_NULLABLE },
        {}
};

#undef H
#undef P

static void handoff_parse_done(HandoffParse *p) {
        handoff_done(&p->h);
}

int handoff_from_json_string(const char *text, size_t size, Handoff *ret, char **ret_error) {
        _cleanup_(handoff_parse_done) HandoffParse p = { .h = HANDOFF_INIT, .slots = -1 };
        _cleanup_json_ json_object *o = NULL;
        int r;

        r = json_parse_document(text, size, HANDOFF_MAX_SIZE, &o, ret_error);
        if (r < 0)
                return r;

        /* Unknown keys are ignored: newer writers may add some. */
        r = json_dispatch(o, NULL, handoff_table, JSON_ALLOW_UNKNOWN, &p, ret_error);
        if (r < 0)
                return r;

        if (!p.h.replica_id) {
                p.h.replica_id = strdup("r0");
                if (!p.h.replica_id)
                        return -ENOMEM;
        }
        if (p.h.slots_total < 0)
                p.h.slots_total = p.slots;

        *ret = p.h;
        p.h = (Handoff) HANDOFF_INIT;
        return 0;
}

int handoff_path(const char *engines_dir, const char *pool_id, const char *replica_id, char **ret) {
        _cleanup_free_ char *name = NULL;
        char *p;

        if (isempty(engines_dir) || !pool_id_is_valid(pool_id) || !pool_id_is_valid(replica_id))
                return -EINVAL;

        if (asprintf(&name, "%s-%s.json", pool_id, replica_id) < 0) {
                name = NULL;
                return -ENOMEM;
        }

        p = path_join(engines_dir, name);
        if (!p)
                return -ENOMEM;

        *ret = p;
        return 0;
}

int handoff_write(const char *engines_dir, const Handoff *h, char **ret_path) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        r = handoff_to_json_string(h, &text);
        if (r < 0)
                return r;

        r = handoff_path(engines_dir, h->pool_id, h->replica_id ?: "r0", &path);
        if (r < 0)
                return r;

        r = mkdir_p(engines_dir, 0755);
        if (r < 0)
                return r;

        /* The runtime directory: what it describes does not outlive a power loss either. */
        r = write_file_atomic_flags(path, text, strlen(text), 0644, /* flags= */ 0);
        if (r < 0)
                return r;

        if (ret_path)
                *ret_path = TAKE_PTR(path);
        return 0;
}

int handoff_read(const char *path, Handoff *ret, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r;

        r = read_full_file(path, HANDOFF_MAX_SIZE, &text, &size);
        if (r == -EFBIG) {
                (void) json_error(ret_error, "document too large: more than %u bytes", HANDOFF_MAX_SIZE);
                return r;
        }
        if (r < 0) {
                (void) json_error(ret_error, "failed to read: %s", strerror(-r));
                return r;
        }

        return handoff_from_json_string(text, size, ret, ret_error);
}
