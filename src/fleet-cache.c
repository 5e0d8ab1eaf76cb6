/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The fleet cache: an array of entries sorted by (kind, node, pool id), so that lookups are a
 * binary search and the JSON comes out sorted. A fleet is tens of nodes with tens of pools each:
 * insertion by memmove is fine.
 */

#include <inttypes.h>
#include <stdlib.h>

#include "fleet-cache.h"
#include "shared/escape.h"
#include "shared/json-util.h"
#include "shared/sort-util.h"
#include "shared/string-util.h"

bool fleet_node_name_is_valid(const char *s) {
        /* The same alphabet as pool ids: no '/', which separates the key's parts. */
        return pool_id_is_valid(s);
}

int fleet_node_key(const char *prefix, const char *node, char **ret) {
        return asprintf(ret, "%snodes/%s", prefix, node) < 0 ? -ENOMEM : 0;
}

int fleet_pool_key(const char *prefix, const char *node, const char *pool_id, char **ret) {
        return asprintf(ret, "%spools/%s/%s", prefix, node, pool_id) < 0 ? -ENOMEM : 0;
}

int fleet_node_pools_prefix(const char *prefix, const char *node, char **ret) {
        return asprintf(ret, "%spools/%s/", prefix, node) < 0 ? -ENOMEM : 0;
}

static int key_error(char **ret_error, const char *problem) {
        return json_error(ret_error, "%s", problem);
}

int fleet_key_parse(const char *prefix, const char *key, size_t key_size, FleetKeyKind *ret_kind,
                    char **ret_node, char **ret_pool, char **ret_error) {
        _cleanup_free_ char *node = NULL, *pool = NULL;
        size_t lp = strlen(prefix);
        const char *rest, *slash;
        FleetKeyKind kind;

        if (key_size < lp || memcmp(key, prefix, lp) != 0)
                return 0;
        rest = key + lp;
        if (key_size - lp >= 6 && strneq(rest, "nodes/", 6)) {
                kind = FLEET_KEY_NODE;
                rest += 6;
        } else if (key_size - lp >= 6 && strneq(rest, "pools/", 6)) {
                kind = FLEET_KEY_POOL;
                rest += 6;
        } else
                return 0;

        if (memchr(key, '\0', key_size))
                return key_error(ret_error, "key contains a NUL byte");

        if (kind == FLEET_KEY_NODE) {
                if (!fleet_node_name_is_valid(rest))
                        return key_error(ret_error, "not a valid node name after nodes/");
                node = strdup(rest);
                if (!node)
                        return -ENOMEM;
        } else {
                slash = strchr(rest, '/');
                if (!slash)
                        return key_error(ret_error, "expected pools/<node>/<pool id>");
                node = strndup(rest, (size_t) (slash - rest));
                if (!node)
                        return -ENOMEM;
                if (!fleet_node_name_is_valid(node))
                        return key_error(ret_error, "not a valid node name after pools/");
                if (!pool_id_is_valid(slash + 1))
                        return key_error(ret_error, "not a valid pool id after pools/<node>/");
                pool = strdup(slash + 1);
                if (!pool)
                        return -ENOMEM;
        }

        *ret_kind = kind;
        *ret_node = TAKE_PTR(node);
        if (ret_pool)
                *ret_pool = TAKE_PTR(pool);
        return 1;
}

/* ---- values ---- */

#define T(t) (1U << (t))
#define T_STRING_OR_NULL (T(json_type_string) | T(json_type_null))
#define T_INT_OR_NULL (T(json_type_int) | T(json_type_null))

typedef struct ValueField {
        const char *name;
        unsigned types;                 /* bit per json_type allowed */
} ValueField;

/* The members we write and readers rely on. Others are passed through unchecked. */
static const ValueField pool_fields[] = {
        { "node",           T(json_type_string) },
        { "pool_id",        T(json_type_string) },
        { "ready",          T(json_type_boolean) },
        { "live",           T(json_type_boolean) },
        { "draining",       T(json_type_boolean) },
        { "state",          T_STRING_OR_NULL },
        { "url",            T_STRING_OR_NULL },
        { "engine",         T_STRING_OR_NULL },
        { "engine_version", T_STRING_OR_NULL },
        { "device_mask",    T_STRING_OR_NULL },
        { "last_error",     T_STRING_OR_NULL },
        { "updated_at",     T_STRING_OR_NULL },
        { "unit",           T_STRING_OR_NULL },
        { "slots_total",    T_INT_OR_NULL },
        { "slots_free",     T_INT_OR_NULL },
        { "active_leases",  T(json_type_int) },
        { "pid",            T_INT_OR_NULL },
        {}
};

static const ValueField node_fields[] = {
        { "node",       T(json_type_string) },
        { "version",    T_STRING_OR_NULL },
        { "url",        T_STRING_OR_NULL },
        { "started_at", T_STRING_OR_NULL },
        { "devices",    T(json_type_array) | T(json_type_object) | T(json_type_null) },
        {}
};

static const char *types_description(unsigned types) {
        if (types == T(json_type_boolean))
                return "a boolean";
        if (types == T(json_type_string))
                return "a string";
        if (types == T(json_type_int))
                return "an integer";
        if (types == T_STRING_OR_NULL)
                return "a string or null";
        if (types == T_INT_OR_NULL)
                return "an integer or null";
        return "an array, an object or null";
}

int fleet_value_parse(FleetKeyKind kind, const char *value, size_t size, json_object **ret,
                      char **ret_error) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        if (size > FLEET_VALUE_MAX)
                return json_error(ret_error, "value is %zu bytes, more than the %u a %s may have", size,
                                  FLEET_VALUE_MAX, kind == FLEET_KEY_NODE ? "node" : "pool status");
        r = json_parse_document(value, size, FLEET_VALUE_MAX, &o, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return json_error(ret_error, "value: %s", strna(error));
        if (!json_object_is_type(o, json_type_object))
                return json_error(ret_error, "value must be a JSON object");

        for (const ValueField *f = kind == FLEET_KEY_NODE ? node_fields : pool_fields; f->name; f++) {
                json_object *v;

                if (!json_object_object_get_ex(o, f->name, &v))
                        continue;
                if (!(f->types & T(json_object_get_type(v))))
                        return json_error(ret_error, "value: %s must be %s", f->name,
                                          types_description(f->types));
                if (json_string_has_nul(v))
                        return json_error(ret_error, "value: %s must not contain NUL bytes", f->name);
        }

        *ret = TAKE_PTR(o);
        return 0;
}

/* ---- the cache ---- */

typedef struct Entry {
        FleetKeyKind kind;
        char *node;
        char *pool;                     /* NULL for nodes */
        json_object *value;
        int64_t mod_revision;
        int64_t lease;
} Entry;

struct FleetCache {
        char *prefix;
        Entry *entries;
        size_t n_entries;
        int64_t revision;
        bool loaded;
};

static void entry_done(Entry *e) {
        free(e->node);
        free(e->pool);
        json_object_put(e->value);
        *e = (Entry) {};
}

static void entries_free(Entry *a, size_t n) {
        for (size_t i = 0; i < n; i++)
                entry_done(&a[i]);
        free(a);
}

int fleet_cache_new(FleetCache **ret, const char *prefix) {
        _cleanup_(fleet_cache_freep) FleetCache *c = NULL;

        c = calloc(1, sizeof(FleetCache));
        if (!c)
                return -ENOMEM;
        c->prefix = strdup(prefix);
        if (!c->prefix)
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

FleetCache *fleet_cache_free(FleetCache *c) {
        if (!c)
                return NULL;
        entries_free(c->entries, c->n_entries);
        free(c->prefix);
        return mfree(c);
}

typedef struct EntryKey {
        FleetKeyKind kind;
        const char *node;
        const char *pool;
} EntryKey;

static int entry_compare(const void *key, const void *element) {
        const EntryKey *k = key;
        const Entry *e = element;
        int r;

        if (k->kind != e->kind)
                return k->kind < e->kind ? -1 : 1;
        r = strcmp(k->node, e->node);
        if (r != 0)
                return r;
        return strcmp(strempty(k->pool), strempty(e->pool));
}

/* The index of the entry, or where it would go (and *found false). */
static size_t entries_find(const Entry *a, size_t n, FleetKeyKind kind, const char *node, const char *pool,
                           bool *found) {
        size_t i;

        *found = bsearch_index(&(EntryKey) { kind, node, pool }, a, n, sizeof(Entry), entry_compare, &i);
        return i;
}

/* Takes the strings and the value on success. */
static int entries_put(Entry **a, size_t *n, Entry *e) {
        bool found;
        size_t i = entries_find(*a, *n, e->kind, e->node, e->pool, &found);

        if (found) {
                entry_done(&(*a)[i]);
                (*a)[i] = *e;
        } else {
                Entry *b = reallocarray(*a, *n + 1, sizeof(Entry));

                if (!b)
                        return -ENOMEM;
                *a = b;
                memmove(b + i + 1, b + i, (*n - i) * sizeof(Entry));
                b[i] = *e;
                (*n)++;
        }
        *e = (Entry) {};
        return 0;
}

static void entries_remove(Entry *a, size_t *n, FleetKeyKind kind, const char *node, const char *pool) {
        bool found;
        size_t i = entries_find(a, *n, kind, node, pool, &found);

        if (!found)
                return;
        entry_done(&a[i]);
        memmove(a + i, a + i + 1, (*n - i - 1) * sizeof(Entry));
        (*n)--;
}

/* Keys in messages: escaped (they may hold any byte) and cut after this many bytes. */
#define KEY_QUOTE_MAX 256

static void warn_key(FleetCacheWarn warn, void *userdata, const char *key, size_t key_size,
                     const char *problem) {
        _cleanup_free_ char *q = NULL;
        size_t n;

        if (!warn)
                return;
        q = escape_text(key, key_size);
        if (q && strlen(q) > KEY_QUOTE_MAX) {
                _cleanup_free_ char *cut = NULL;

                n = escaped_prefix_len(q, KEY_QUOTE_MAX);
                if (asprintf(&cut, "%.*s...", (int) n, q) < 0)
                        cut = NULL;
                free(q);
                q = TAKE_PTR(cut);
        }
        warn(q ?: "(key)", problem ?: "out of memory", userdata);
}

/*
 * Turns a key-value into an entry. 1: e filled; 0: not ours, skip silently; -EINVAL: warned
 * (bad key or value; e->kind/node/pool are set when the key itself was fine, so the caller can
 * keep the old entry), -ENOMEM.
 */
static int entry_from_kv(FleetCache *c, const EtcdKeyValue *kv, bool with_value, Entry *e,
                         FleetCacheWarn warn, void *userdata) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = fleet_key_parse(c->prefix, kv->key, kv->key_size, &e->kind, &e->node, &e->pool, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                warn_key(warn, userdata, kv->key, kv->key_size, error);
                return -EINVAL;
        }
        if (r == 0)
                return 0;

        e->mod_revision = kv->mod_revision;
        e->lease = kv->lease;
        if (!with_value)
                return 1;

        r = fleet_value_parse(e->kind, strempty(kv->value), kv->value_size, &e->value, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                warn_key(warn, userdata, kv->key, kv->key_size, error);
                return -EINVAL;
        }

        /* The key names the node and pool; a value claiming others is not to be believed. */
        json_object *v;
        if ((json_object_object_get_ex(e->value, "node", &v) &&
             !streq(json_object_get_string(v), e->node)) ||
            (e->pool && json_object_object_get_ex(e->value, "pool_id", &v) &&
             !streq(json_object_get_string(v), e->pool))) {
                warn_key(warn, userdata, kv->key, kv->key_size,
                         "value names another node or pool than its key");
                return -EINVAL;
        }
        return 1;
}

static int entry_copy(const Entry *from, Entry *to) {
        *to = (Entry) {
                .kind = from->kind,
                .mod_revision = from->mod_revision,
                .lease = from->lease,
                .value = json_object_get(from->value),
                .node = strdup(from->node),
                .pool = from->pool ? strdup(from->pool) : NULL,
        };
        if (!to->node || (from->pool && !to->pool)) {
                entry_done(to);
                return -ENOMEM;
        }
        return 0;
}

int fleet_cache_load(FleetCache *c, const EtcdKeyValue *kvs, size_t n, int64_t revision, FleetCacheWarn warn,
                     void *userdata) {
        Entry *a = NULL;
        size_t na = 0;
        int r;

        for (size_t i = 0; i < n; i++) {
                Entry e = {};

                r = entry_from_kv(c, &kvs[i], true, &e, warn, userdata);
                if (r == -EINVAL && e.node) {
                        /* Keep what the cache had for this key. */
                        bool found;
                        size_t j = entries_find(c->entries, c->n_entries, e.kind, e.node, e.pool, &found);

                        entry_done(&e);
                        if (!found)
                                continue;
                        r = entry_copy(&c->entries[j], &e);
                        if (r >= 0)
                                r = 1;
                }
                if (r > 0)
                        r = entries_put(&a, &na, &e);
                entry_done(&e);
                if (r == -ENOMEM) {
                        entries_free(a, na);
                        return r;
                }
        }

        entries_free(c->entries, c->n_entries);
        c->entries = a;
        c->n_entries = na;
        c->revision = revision;
        c->loaded = true;
        return 0;
}

int fleet_cache_apply(FleetCache *c, const EtcdEvent *events, size_t n, int64_t revision,
                      FleetCacheWarn warn, void *userdata) {
        int r;

        for (size_t i = 0; i < n; i++) {
                const EtcdEvent *ev = &events[i];
                Entry e = {};
                bool found;
                size_t j;

                r = entry_from_kv(c, &ev->kv, ev->type == ETCD_EVENT_PUT, &e, warn, userdata);
                if (r <= 0) {
                        entry_done(&e);
                        if (r == -ENOMEM)
                                return r;
                        continue;
                }

                j = entries_find(c->entries, c->n_entries, e.kind, e.node, e.pool, &found);
                if (found && ev->kv.mod_revision > 0 && ev->kv.mod_revision < c->entries[j].mod_revision) {
                        entry_done(&e);
                        continue;
                }
                if (ev->type == ETCD_EVENT_DELETE)
                        entries_remove(c->entries, &c->n_entries, e.kind, e.node, e.pool);
                else {
                        r = entries_put(&c->entries, &c->n_entries, &e);
                        if (r < 0) {
                                entry_done(&e);
                                return r;
                        }
                }
                entry_done(&e);
        }
        c->revision = MAX(c->revision, revision);
        return 0;
}

bool fleet_cache_is_loaded(const FleetCache *c) {
        return c && c->loaded;
}

int64_t fleet_cache_revision(const FleetCache *c) {
        return c ? c->revision : 0;
}

static size_t count_kind(const FleetCache *c, FleetKeyKind kind) {
        size_t k = 0;

        for (size_t i = 0; c && i < c->n_entries; i++)
                if (c->entries[i].kind == kind)
                        k++;
        return k;
}

size_t fleet_cache_n_pools(const FleetCache *c) {
        return count_kind(c, FLEET_KEY_POOL);
}

size_t fleet_cache_n_nodes(const FleetCache *c) {
        return count_kind(c, FLEET_KEY_NODE);
}

/* The value's members, then node and pool_id from the key. */
static int entry_to_json(const Entry *e, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();

        if (!o || json_add_string(o, "node", e->node) < 0 ||
            (e->pool && json_add_string(o, "pool_id", e->pool) < 0))
                return -ENOMEM;
        json_object_object_foreach(e->value, k, v) {
                if (streq(k, "node") || streq(k, "pool_id"))
                        continue;
                if (json_object_object_add(o, k, json_object_get(v)) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(o);
        return 0;
}

int fleet_cache_to_json(const FleetCache *c, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object(), *nodes = json_object_new_array(),
                *pools = json_object_new_array();
        int r;

        if (!o || !nodes || !pools || json_add_int(o, "revision", c->revision) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_entries; i++) {
                json_object *e;

                r = entry_to_json(&c->entries[i], &e);
                if (r < 0)
                        return r;
                if (json_object_array_add(c->entries[i].kind == FLEET_KEY_NODE ? nodes : pools, e) < 0) {
                        json_object_put(e);
                        return -ENOMEM;
                }
        }
        if (json_object_object_add(o, "nodes", nodes) < 0)
                return -ENOMEM;
        TAKE_PTR(nodes);
        if (json_object_object_add(o, "pools", pools) < 0)
                return -ENOMEM;
        TAKE_PTR(pools);
        *ret = TAKE_PTR(o);
        return 0;
}
