/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>

#include "pool-state.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/string-util.h"

#define POOL_STATE_MAX_SIZE (256U * 1024U)

void pool_state_done(SavedPool *s) {
        s->prepared = prepared_engine_free(s->prepared);
        if (s->supervisor)
                json_object_put(s->supervisor);
        s->supervisor = NULL;
        s->running = false;
}

int pool_state_path(const char *state_dir, const char *pool_id, char **ret) {
        char *p;

        if (!pool_id_is_valid(pool_id))
                return -EINVAL;
        if (asprintf(&p, "%s/pools/%s.json", state_dir, pool_id) < 0)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int pool_state_save(const char *state_dir, const PreparedEngine *prepared, bool running,
                    json_object *supervisor) {
        _cleanup_json_ json_object *o = NULL, *pe = NULL;
        _cleanup_free_ char *path = NULL, *dir = NULL;
        const char *text;
        int r;

        r = pool_state_path(state_dir, prepared->pool_id, &path);
        if (r < 0)
                return r;
        dir = path_join(state_dir, "pools");
        if (!dir)
                return -ENOMEM;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;

        r = prepared_engine_to_json(prepared, &pe);
        if (r < 0)
                return r;
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        if (json_object_object_add(o, "prepared", TAKE_PTR(pe)) < 0 ||
            json_object_object_add(o, "running", json_object_new_boolean(running)) < 0)
                return -ENOMEM;
        if (supervisor && json_object_object_add(o, "supervisor", json_object_get(supervisor)) < 0)
                return -ENOMEM;

        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        /* 0600: a PreparedEngine may carry secrets in env. */
        return write_file_atomic(path, text, strlen(text), 0600);
}

/* "<path>: <what>" in *ret_error: every warning about a saved state names its file. */
static int state_error(const char *path, int r, char **ret_error) {
        char *e;

        if (!ret_error)
                return r;
        if (asprintf(&e, "%s: %s", path, *ret_error ?: strerror(-r)) < 0)
                return r;
        free(*ret_error);
        *ret_error = e;
        return r;
}

int pool_state_parse(const char *text, size_t size, const char *pool_id, SavedPool *ret, char **ret_error) {
        _cleanup_json_ json_object *o = NULL;
        json_object *pe, *running, *sup;
        SavedPool s = {};
        int r;

        r = json_parse_document(text, size, POOL_STATE_MAX_SIZE, &o, ret_error);
        if (r < 0)
                return r;
        if (!o || !json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, "prepared", &pe) || !json_object_is_type(pe, json_type_object)) {
                if (ret_error && asprintf(ret_error, "\"prepared\" object missing") < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        r = prepared_engine_from_object(pe, &s.prepared, ret_error);
        if (r < 0)
                return r;
        if (!streq(s.prepared->pool_id, pool_id)) {
                if (ret_error && asprintf(ret_error, "belongs to pool \"%s\"", s.prepared->pool_id) < 0)
                        *ret_error = NULL;
                pool_state_done(&s);
                return -EINVAL;
        }
        s.running = json_object_object_get_ex(o, "running", &running) && json_object_get_boolean(running);
        if (json_object_object_get_ex(o, "supervisor", &sup) && json_object_is_type(sup, json_type_object))
                s.supervisor = json_object_get(sup);

        *ret = s;
        return 0;
}

int pool_state_load(const char *state_dir, const char *pool_id, SavedPool *ret, char **ret_error) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t size;
        int r;

        r = pool_state_path(state_dir, pool_id, &path);
        if (r < 0)
                return r;
        r = read_full_file(path, POOL_STATE_MAX_SIZE, &text, &size);
        if (r < 0)
                return r == -ENOENT ? r : state_error(path, r, ret_error);
        r = pool_state_parse(text, size, pool_id, ret, ret_error);
        if (r < 0 && r != -ENOMEM)
                return state_error(path, r, ret_error);
        return r;
}

int pool_state_remove(const char *state_dir, const char *pool_id) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = pool_state_path(state_dir, pool_id, &path);
        if (r < 0)
                return r;
        return unlink_if_exists(path);
}
