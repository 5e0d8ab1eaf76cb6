/* SPDX-License-Identifier: GPL-3.0-or-later */

/* The fleet's key layout, its value checks and the watch cache. */

#include "fleet-cache.h"
#include "shared/json-util.h"
#include "test-util.h"

#define P "/pool-managerd/"

TEST(keys) {
        _cleanup_free_ char *n = NULL, *p = NULL, *pp = NULL;

        ASSERT_OK(fleet_node_key(P, "gpu-1", &n));
        ASSERT_STREQ(n, "/pool-managerd/nodes/gpu-1");
        ASSERT_OK(fleet_pool_key(P, "gpu-1", "llama-7b", &p));
        ASSERT_STREQ(p, "/pool-managerd/pools/gpu-1/llama-7b");
        ASSERT_OK(fleet_node_pools_prefix(P, "gpu-1", &pp));
        ASSERT_STREQ(pp, "/pool-managerd/pools/gpu-1/");

        ASSERT_TRUE(fleet_node_name_is_valid("gpu-1.example.com"));
        ASSERT_FALSE(fleet_node_name_is_valid("a/b"));
        ASSERT_FALSE(fleet_node_name_is_valid(""));
        ASSERT_FALSE(fleet_node_name_is_valid("-a"));
}

static void assert_key(const char *key, size_t size, int result, FleetKeyKind kind, const char *node,
                       const char *pool, const char *error) {
        _cleanup_free_ char *n = NULL, *p = NULL, *e = NULL;
        FleetKeyKind k = _FLEET_KEY_KIND_INVALID;

        ASSERT_EQ(fleet_key_parse(P, key, size, &k, &n, &p, &e), result);
        if (result > 0) {
                ASSERT_EQ(k, kind);
                ASSERT_STREQ(n, node);
                if (pool)
                        ASSERT_STREQ(p, pool);
                else
                        ASSERT_NULL(p);
        } else
                ASSERT_NULL(n);
        if (error)
                ASSERT_CONTAINS(e, error);
        else
                ASSERT_NULL(e);
}

TEST(key_parse) {
#define K(s) s, sizeof(s) - 1
        assert_key(K(P "nodes/gpu-1"), 1, FLEET_KEY_NODE, "gpu-1", NULL, NULL);
        assert_key(K(P "pools/gpu-1/p0"), 1, FLEET_KEY_POOL, "gpu-1", "p0", NULL);
        /* Not ours: skipped without a word. */
        assert_key(K("/other/pools/gpu-1/p0"), 0, 0, NULL, NULL, NULL);
        assert_key(K(P "locks/x"), 0, 0, NULL, NULL, NULL);
        assert_key(K("/pool-manager"), 0, 0, NULL, NULL, NULL);
        /* Ours but malformed. */
        assert_key(K(P "pools/gpu-1"), -EINVAL, 0, NULL, NULL, "expected pools/<node>/<pool id>");
        assert_key(K(P "pools/gpu-1/"), -EINVAL, 0, NULL, NULL, "not a valid pool id");
        assert_key(K(P "pools/gpu-1/a/b"), -EINVAL, 0, NULL, NULL, "not a valid pool id");
        assert_key(K(P "pools//p0"), -EINVAL, 0, NULL, NULL, "not a valid node name");
        assert_key(K(P "nodes/"), -EINVAL, 0, NULL, NULL, "not a valid node name");
        assert_key(K(P "nodes/a b"), -EINVAL, 0, NULL, NULL, "not a valid node name");
        assert_key(K(P "nodes/a\0b"), -EINVAL, 0, NULL, NULL, "NUL byte");
#undef K
}

static void assert_value_refused(FleetKeyKind kind, const char *value, const char *error) {
        _cleanup_free_ char *e = NULL;
        json_object *o = NULL;

        ASSERT_ERROR(fleet_value_parse(kind, value, strlen(value), &o, &e), EINVAL);
        ASSERT_NULL(o);
        ASSERT_CONTAINS(e, error);
}

TEST(values) {
        _cleanup_free_ char *big = NULL;
        json_object *o = NULL;
        const char *v = "{\"node\":\"n1\",\"pool_id\":\"p0\",\"ready\":true,\"live\":true,"
                        "\"url\":\"http://127.0.0.1:1\","
                        "\"engine\":\"llamacpp\",\"slots_total\":4,\"slots_free\":null,\"active_leases\":0,"
                        "\"last_error\":null,\"future_field\":[1,2]}";

        ASSERT_OK(fleet_value_parse(FLEET_KEY_POOL, v, strlen(v), &o, NULL));
        json_object_put(o);

        assert_value_refused(FLEET_KEY_POOL, "{\"ready\":\"yes\"}", "value: ready must be a boolean");
        assert_value_refused(FLEET_KEY_POOL, "{\"slots_total\":\"4\"}",
                             "value: slots_total must be an integer or null");
        assert_value_refused(FLEET_KEY_POOL, "{\"url\":5}", "value: url must be a string or null");
        assert_value_refused(FLEET_KEY_POOL, "{\"active_leases\":null}",
                             "value: active_leases must be an integer");
        assert_value_refused(FLEET_KEY_POOL, "[]", "value must be a JSON object");
        assert_value_refused(FLEET_KEY_POOL, "{\"ready\":tru", "value: invalid JSON at offset");
        assert_value_refused(FLEET_KEY_POOL, "", "value: invalid JSON");
        assert_value_refused(FLEET_KEY_NODE, "{\"devices\":5}",
                             "value: devices must be an array, an object or null");

        big = malloc(FLEET_VALUE_MAX + 2);
        ASSERT_NOT_NULL(big);
        memset(big, ' ', FLEET_VALUE_MAX + 1);
        big[0] = '{';
        big[FLEET_VALUE_MAX] = '}';
        big[FLEET_VALUE_MAX + 1] = '\0';
        assert_value_refused(FLEET_KEY_POOL, big,
                             "value is 65537 bytes, more than the 65536 a pool status may have");
}

static EtcdKeyValue kv(const char *key, const char *value, int64_t rev) {
        return (EtcdKeyValue) {
                .key = (char *) key, .key_size = strlen(key),
                .value = (char *) value, .value_size = value ? strlen(value) : 0,
                .mod_revision = rev,
        };
}

typedef struct Warnings {
        unsigned n;
        char last[512];
} Warnings;

static void on_warn(const char *key, const char *problem, void *userdata) {
        Warnings *w = userdata;

        w->n++;
        snprintf(w->last, sizeof w->last, "%s: %s", key, problem);
}

static char *cache_json(FleetCache *c) {
        _cleanup_json_ json_object *o = NULL;
        char *s;

        ASSERT_OK(fleet_cache_to_json(c, &o));
        s = strdup(json_object_to_json_string_ext(o,
                                                  JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        ASSERT_NOT_NULL(s);
        return s;
}

TEST(cache) {
        _cleanup_(fleet_cache_freep) FleetCache *c = NULL;
        Warnings w = {};
        char *j;

        ASSERT_OK(fleet_cache_new(&c, P));
        ASSERT_FALSE(fleet_cache_is_loaded(c));

        EtcdKeyValue kvs[] = {
                kv(P "pools/n2/p0", "{\"ready\":true}", 4),
                kv(P "pools/n1/p1", "{\"ready\":false,\"node\":\"n1\",\"pool_id\":\"p1\"}", 3),
                kv(P "nodes/n1", "{\"node\":\"n1\",\"version\":\"0.1.0\",\"devices\":[]}", 2),
                kv(P "pools/n1/p0", "{\"ready\":\"yes\"}", 5),                  /* bad type */
                kv(P "pools/n1/p2", "{\"pool_id\":\"p3\"}", 6),                   /* lies about its id */
                kv(P "pools/n1", "{}", 7),                                          /* bad key */
                kv(P "elsewhere", "garbage", 8),                                    /* not ours: silent */
                kv(P "pools/n1-b/p0", "{}", 9),
        };
        ASSERT_OK(fleet_cache_load(c, kvs, ELEMENTSOF(kvs), 9, on_warn, &w));
        ASSERT_EQ(w.n, 3);
        ASSERT_TRUE(fleet_cache_is_loaded(c));
        ASSERT_EQ(fleet_cache_revision(c), 9);
        ASSERT_EQ(fleet_cache_n_pools(c), 3);
        ASSERT_EQ(fleet_cache_n_nodes(c), 1);
        /* Sorted by node, then pool; node and pool_id from the key. */
        j = cache_json(c);
        ASSERT_STREQ(j, "{\"revision\":9,"
                     "\"nodes\":[{\"node\":\"n1\",\"version\":\"0.1.0\",\"devices\":[]}],"
                     "\"pools\":[{\"node\":\"n1\",\"pool_id\":\"p1\",\"ready\":false},"
                     "{\"node\":\"n1-b\",\"pool_id\":\"p0\"},"
                     "{\"node\":\"n2\",\"pool_id\":\"p0\",\"ready\":true}]}");
        free(j);

        /* Watch events: put, delete, a stale put (older revision), a bad value that keeps the old one. */
        EtcdEvent ev[] = {
                { ETCD_EVENT_PUT, kv(P "pools/n1/p1", "{\"ready\":true}", 10) },
                { ETCD_EVENT_DELETE, kv(P "pools/n2/p0", NULL, 11) },
                { ETCD_EVENT_PUT, kv(P "pools/n1/p1", "{\"ready\":false}", 9) },
                { ETCD_EVENT_PUT, kv(P "pools/n1-b/p0", "{\"slots_free\":\"2\"}", 12) },
                { ETCD_EVENT_DELETE, kv(P "nodes/n1", NULL, 13) },
                { ETCD_EVENT_PUT, kv(P "pools/n3/q", "{}", 14) },
        };
        w = (Warnings) {};
        ASSERT_OK(fleet_cache_apply(c, ev, ELEMENTSOF(ev), 14, on_warn, &w));
        ASSERT_EQ(w.n, 1);
        ASSERT_STREQ(w.last, "/pool-managerd/pools/n1-b/p0: value: slots_free must be an integer or null");
        ASSERT_EQ(fleet_cache_revision(c), 14);
        j = cache_json(c);
        ASSERT_STREQ(j, "{\"revision\":14,\"nodes\":[],"
                     "\"pools\":[{\"node\":\"n1\",\"pool_id\":\"p1\",\"ready\":true},"
                     "{\"node\":\"n1-b\",\"pool_id\":\"p0\"},"
                     "{\"node\":\"n3\",\"pool_id\":\"q\"}]}");
        free(j);

        /* A reload replaces everything; a bad value keeps the entry the cache had for its key. */
        EtcdKeyValue again[] = {
                kv(P "pools/n1/p1", "{\"ready\":tru", 15),
                kv(P "pools/n4/p0", "{}", 15),
        };
        w = (Warnings) {};
        ASSERT_OK(fleet_cache_load(c, again, ELEMENTSOF(again), 15, on_warn, &w));
        ASSERT_EQ(w.n, 1);
        ASSERT_CONTAINS(w.last, "/pool-managerd/pools/n1/p1: value: invalid JSON at offset");
        j = cache_json(c);
        ASSERT_STREQ(j, "{\"revision\":15,\"nodes\":[],"
                     "\"pools\":[{\"node\":\"n1\",\"pool_id\":\"p1\",\"ready\":true},"
                     "{\"node\":\"n4\",\"pool_id\":\"p0\"}]}");
        free(j);
}

TEST(warning_quotes_key) {
        _cleanup_(fleet_cache_freep) FleetCache *c = NULL;
        Warnings w = {};
        static const char key[] = P "pools/n1/\"\n";
        EtcdKeyValue kvs[] = { { .key = (char *) key, .key_size = sizeof key - 1, .value = (char *) "{}" } };

        ASSERT_OK(fleet_cache_new(&c, P));
        ASSERT_OK(fleet_cache_load(c, kvs, 1, 1, on_warn, &w));
        ASSERT_EQ(w.n, 1);
        ASSERT_STREQ(w.last, "/pool-managerd/pools/n1/\\\"\\n: not a valid pool id after pools/<node>/");
}

DEFINE_TEST_MAIN
