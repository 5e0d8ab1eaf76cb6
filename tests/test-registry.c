/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Unit tests of the pool registry. Tags OC-POOL-xxxx name the predecessor requirement a test
 * carries over.
 */

#include <limits.h>
#include <stdint.h>

#include "handoff.h"
#include "registry.h"
#include "test-util.h"

static Registry *new_registry(void) {
        Registry *r = NULL;

        ASSERT_OK(registry_new(&r));
        ASSERT_NOT_NULL(r);
        ASSERT_EQ(registry_size(r), 0);
        return r;
}

TEST(new_and_free_empty) {
        _cleanup_(registry_freep) Registry *r = new_registry();

        ASSERT_NULL(registry_nth(r, 0));
        ASSERT_NULL(registry_get(r, "a"));
        ASSERT_NULL(registry_free(NULL));
}

/* Setters upsert an entry with defaults. */
TEST(setter_upserts_with_defaults) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        PoolEntry *e;

        ASSERT_OK(registry_set_version(r, "p", "v1"));
        ASSERT_EQ(registry_size(r), 1);
        e = registry_get(r, "p");
        ASSERT_NOT_NULL(e);
        ASSERT_STREQ(e->pool_id, "p");
        ASSERT_STREQ(e->version, "v1");
        ASSERT_FALSE(e->health.live);
        ASSERT_FALSE(e->health.ready);
        ASSERT_EQ(e->active_leases, 0);
        ASSERT_EQ(e->slots_total, SLOTS_UNSET);
        ASSERT_EQ(e->slots_free, SLOTS_UNSET);
        ASSERT_EQ(e->last_heartbeat_ms, 0);
        ASSERT_FALSE(e->draining);
        ASSERT_NULL(e->last_error);
        ASSERT_NULL(e->engine_version);
        ASSERT_NULL(e->perf_hints);
}

TEST(ensure_returns_1_when_new_0_when_existing) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        PoolEntry *e1 = NULL, *e2 = NULL;

        ASSERT_EQ(registry_ensure(r, "p", &e1), 1);
        ASSERT_EQ(registry_ensure(r, "p", &e2), 0);
        ASSERT_TRUE(e1 == e2);
        ASSERT_EQ(registry_ensure(r, "q", NULL), 1);
        ASSERT_EQ(registry_size(r), 2);
}

/* Unknown pool: health -> -ENOENT, leases -> 0, draining -> false; nothing is created. */
TEST(unknown_pool_getters) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        PoolHealth h = { .live = true, .ready = true };

        ASSERT_ERROR(registry_get_health(r, "nope", &h), ENOENT);
        ASSERT_TRUE(h.live && h.ready); /* untouched on error */
        ASSERT_EQ(registry_get_active_leases(r, "nope"), 0);
        ASSERT_FALSE(registry_get_draining(r, "nope"));
        ASSERT_NULL(registry_get(r, "nope"));
        ASSERT_EQ(registry_size(r), 0);
}

/* NULL and "" are the only ids the registry itself refuses. */
TEST(null_or_empty_pool_id_is_einval) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        RegistryUpdate u = REGISTRY_UPDATE_INIT;
        Handoff h = HANDOFF_INIT;
        PoolHealth ph;
        uint32_t n;

        for (unsigned i = 0; i < 2; i++) {
                const char *id = i == 0 ? NULL : "";

                ASSERT_ERROR(registry_ensure(r, id, NULL), EINVAL);
                ASSERT_ERROR(registry_register(r, id), EINVAL);
                ASSERT_ERROR(registry_deregister(r, id), EINVAL);
                ASSERT_ERROR(registry_set_health(r, id, true, true), EINVAL);
                ASSERT_ERROR(registry_get_health(r, id, &ph), EINVAL);
                ASSERT_ERROR(registry_set_last_error(r, id, "x"), EINVAL);
                ASSERT_ERROR(registry_set_version(r, id, "x"), EINVAL);
                ASSERT_ERROR(registry_set_engine_version(r, id, "x"), EINVAL);
                ASSERT_ERROR(registry_set_engine_meta(r, id, "x", "y", "z"), EINVAL);
                ASSERT_ERROR(registry_set_device_mask(r, id, "0"), EINVAL);
                ASSERT_ERROR(registry_set_slots(r, id, 1, 1), EINVAL);
                ASSERT_ERROR(registry_set_perf_hints(r, id, NULL), EINVAL);
                ASSERT_ERROR(registry_set_draining(r, id, true), EINVAL);
                ASSERT_ERROR(registry_set_heartbeat(r, id, 1), EINVAL);
                ASSERT_ERROR(registry_update(r, id, &u), EINVAL);
                ASSERT_ERROR(registry_allocate_lease(r, id, &n), EINVAL);
                ASSERT_ERROR(registry_release_lease(r, id, &n), EINVAL);
                ASSERT_ERROR(registry_register_ready_from_handoff(r, id, &h, 1), EINVAL);
                ASSERT_NULL(registry_get(r, id));
                ASSERT_FALSE(registry_get_draining(r, id));
                ASSERT_EQ(registry_get_active_leases(r, id), 0);
        }
        ASSERT_EQ(registry_size(r), 0);
}

/* Validation happens at the edges: the registry takes any other string. */
TEST(any_nonempty_pool_id_is_accepted) {
        _cleanup_(registry_freep) Registry *r = new_registry();

        ASSERT_EQ(registry_register(r, "../weird id/é"), 1);
        ASSERT_NOT_NULL(registry_get(r, "../weird id/é"));
}

/* OC-POOL-3106 */
TEST(register_deregister_idempotent) {
        _cleanup_(registry_freep) Registry *r = new_registry();

        ASSERT_EQ(registry_register(r, "p"), 1);
        ASSERT_EQ(registry_register(r, "p"), 0);
        ASSERT_EQ(registry_size(r), 1);
        ASSERT_EQ(registry_deregister(r, "p"), 1);
        ASSERT_EQ(registry_deregister(r, "p"), 0);
        ASSERT_EQ(registry_deregister(r, "never"), 0);
        ASSERT_EQ(registry_size(r), 0);
        ASSERT_NULL(registry_get(r, "p"));
}

/* OC-POOL-3106: registering an existing pool does not reset it. */
TEST(register_existing_keeps_fields) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        uint32_t n;

        ASSERT_OK(registry_set_health(r, "p", true, true));
        ASSERT_OK(registry_allocate_lease(r, "p", &n));
        ASSERT_EQ(registry_register(r, "p"), 0);
        ASSERT_TRUE(registry_get(r, "p")->health.ready);
        ASSERT_EQ(registry_get_active_leases(r, "p"), 1);
}

TEST(set_and_get_health) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        PoolHealth h;

        ASSERT_OK(registry_set_health(r, "p", true, false));
        ASSERT_OK(registry_get_health(r, "p", &h));
        ASSERT_TRUE(h.live);
        ASSERT_FALSE(h.ready);
        ASSERT_OK(registry_set_health(r, "p", false, true));
        ASSERT_OK(registry_get_health(r, "p", &h));
        ASSERT_FALSE(h.live);
        ASSERT_TRUE(h.ready);
        ASSERT_OK(registry_get_health(r, "p", NULL));
}

TEST(set_last_error_null_clears) {
        _cleanup_(registry_freep) Registry *r = new_registry();

        ASSERT_OK(registry_set_last_error(r, "p", "boom"));
        ASSERT_STREQ(registry_get(r, "p")->last_error, "boom");
        ASSERT_OK(registry_set_last_error(r, "p", "bang"));
        ASSERT_STREQ(registry_get(r, "p")->last_error, "bang");
        ASSERT_OK(registry_set_last_error(r, "p", NULL));
        ASSERT_NULL(registry_get(r, "p")->last_error);
}

/* OC-POOL-3105; version is the registry's own, distinct from engine_version. */
TEST(set_engine_version_and_version_are_distinct) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        PoolEntry *e;

        ASSERT_OK(registry_set_engine_version(r, "p", "b1234"));
        ASSERT_OK(registry_set_version(r, "p", "7"));
        e = registry_get(r, "p");
        ASSERT_STREQ(e->engine_version, "b1234");
        ASSERT_STREQ(e->version, "7");
        ASSERT_OK(registry_set_engine_version(r, "p", "b2000"));
        ASSERT_STREQ(registry_get(r, "p")->engine_version, "b2000");
        ASSERT_STREQ(registry_get(r, "p")->version, "7");
}

/* OC-POOL-3103 */
TEST(set_engine_meta_partial_leaves_null_fields) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        PoolEntry *e;

        ASSERT_OK(registry_set_engine_meta(r, "p", "v1", "sha256:aa", "cat-1"));
        ASSERT_OK(registry_set_engine_meta(r, "p", NULL, "sha256:bb", NULL));
        e = registry_get(r, "p");
        ASSERT_STREQ(e->engine_version, "v1");
        ASSERT_STREQ(e->engine_digest, "sha256:bb");
        ASSERT_STREQ(e->engine_catalog_id, "cat-1");
        ASSERT_OK(registry_set_engine_meta(r, "p", "v2", NULL, NULL));
        ASSERT_STREQ(e->engine_version, "v2");
        ASSERT_STREQ(e->engine_digest, "sha256:bb");
        ASSERT_STREQ(e->engine_catalog_id, "cat-1");
        ASSERT_OK(registry_set_engine_meta(r, "q", NULL, NULL, NULL));
        ASSERT_NOT_NULL(registry_get(r, "q"));
        ASSERT_NULL(registry_get(r, "q")->engine_version);
}

TEST(set_device_mask) {
        _cleanup_(registry_freep) Registry *r = new_registry();

        ASSERT_OK(registry_set_device_mask(r, "p", "GPU0,GPU1"));
        ASSERT_STREQ(registry_get(r, "p")->device_mask, "GPU0,GPU1");
        ASSERT_OK(registry_set_device_mask(r, "p", NULL));
        ASSERT_NULL(registry_get(r, "p")->device_mask);
}

/* OC-POOL-3104 */
TEST(set_slots_clamps_free_into_0_total) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        PoolEntry *e;

        ASSERT_OK(registry_set_slots(r, "p", 4, 2));
        e = registry_get(r, "p");
        ASSERT_EQ(e->slots_total, 4);
        ASSERT_EQ(e->slots_free, 2);
        ASSERT_OK(registry_set_slots(r, "p", 4, 9));
        ASSERT_EQ(e->slots_free, 4);
        ASSERT_OK(registry_set_slots(r, "p", 4, -3));
        ASSERT_EQ(e->slots_free, 0);
        ASSERT_OK(registry_set_slots(r, "p", 4, SLOTS_UNSET));
        ASSERT_EQ(e->slots_free, 0);
        ASSERT_OK(registry_set_slots(r, "p", 0, 1));
        ASSERT_EQ(e->slots_total, 0);
        ASSERT_EQ(e->slots_free, 0);
        ASSERT_OK(registry_set_slots(r, "p", INT32_MAX, INT32_MAX));
        ASSERT_EQ(e->slots_free, INT32_MAX);
}

/* OC-POOL-3104 */
TEST(set_slots_negative_total_is_einval) {
        _cleanup_(registry_freep) Registry *r = new_registry();

        ASSERT_ERROR(registry_set_slots(r, "p", -1, 0), EINVAL);
        ASSERT_ERROR(registry_set_slots(r, "p", INT32_MIN, 0), EINVAL);
        ASSERT_NULL(registry_get(r, "p")); /* refused before any upsert */
        ASSERT_OK(registry_set_slots(r, "p", 2, 1));
        ASSERT_ERROR(registry_set_slots(r, "p", -5, 0), EINVAL);
        ASSERT_EQ(registry_get(r, "p")->slots_total, 2);
        ASSERT_EQ(registry_get(r, "p")->slots_free, 1);
}

TEST(set_perf_hints_takes_reference_and_null_clears) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        json_object *j = json_object_new_object(), *k = json_object_new_int(3);

        ASSERT_NOT_NULL(j);
        ASSERT_NOT_NULL(k);
        ASSERT_OK(registry_set_perf_hints(r, "p", j));
        ASSERT_TRUE(registry_get(r, "p")->perf_hints == j);
        /* Setting the same object again must not drop the last reference. */
        ASSERT_OK(registry_set_perf_hints(r, "p", j));
        json_object_put(j); /* the registry keeps its own reference */
        ASSERT_TRUE(json_object_is_type(registry_get(r, "p")->perf_hints, json_type_object));
        ASSERT_OK(registry_set_perf_hints(r, "p", k));
        ASSERT_EQ(json_object_get_int(registry_get(r, "p")->perf_hints), 3);
        ASSERT_OK(registry_set_perf_hints(r, "p", NULL));
        ASSERT_NULL(registry_get(r, "p")->perf_hints);
        json_object_put(k);
}

/* OC-POOL-3102 */
TEST(heartbeat_is_monotonic) {
        _cleanup_(registry_freep) Registry *r = new_registry();

        ASSERT_EQ(registry_set_heartbeat(r, "p", 1000), 1);
        ASSERT_EQ(registry_get(r, "p")->last_heartbeat_ms, 1000);
        ASSERT_EQ(registry_set_heartbeat(r, "p", 999), 0);
        ASSERT_EQ(registry_get(r, "p")->last_heartbeat_ms, 1000);
        ASSERT_EQ(registry_set_heartbeat(r, "p", 1000), 1);
        ASSERT_EQ(registry_set_heartbeat(r, "p", 2000), 1);
        ASSERT_EQ(registry_get(r, "p")->last_heartbeat_ms, 2000);
        ASSERT_EQ(registry_set_heartbeat(r, "p", -1), 0);
        ASSERT_EQ(registry_get(r, "p")->last_heartbeat_ms, 2000);
}

/* OC-POOL-3007 */
TEST(lease_allocate_release_never_negative) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        uint32_t n = 99;

        ASSERT_OK(registry_register(r, "p"));
        ASSERT_EQ(registry_release_lease(r, "p", &n), 0);
        ASSERT_EQ(n, 0);
        ASSERT_EQ(registry_get_active_leases(r, "p"), 0);

        ASSERT_EQ(registry_allocate_lease(r, "p", &n), 0);
        ASSERT_EQ(n, 1);
        ASSERT_EQ(registry_allocate_lease(r, "p", &n), 0);
        ASSERT_EQ(n, 2);
        ASSERT_EQ(registry_allocate_lease(r, "p", NULL), 0);
        ASSERT_EQ(registry_get_active_leases(r, "p"), 3);

        for (uint32_t want = 2;; want--) {
                ASSERT_EQ(registry_release_lease(r, "p", &n), 1);
                ASSERT_EQ(n, want);
                if (want == 0)
                        break;
        }
        ASSERT_EQ(registry_release_lease(r, "p", &n), 0);
        ASSERT_EQ(registry_release_lease(r, "p", NULL), 0);
        ASSERT_EQ(n, 0);
        ASSERT_EQ(registry_get_active_leases(r, "p"), 0);
}

TEST(lease_allocate_upserts_unknown_pool) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        uint32_t n = 0;

        ASSERT_OK(registry_allocate_lease(r, "p", &n));
        ASSERT_EQ(n, 1);
        ASSERT_NOT_NULL(registry_get(r, "p"));
}

/* A late release must not resurrect a pool that is gone. */
TEST(lease_release_unknown_pool_does_not_upsert) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        uint32_t n = 7;

        ASSERT_EQ(registry_release_lease(r, "gone", &n), 0);
        ASSERT_EQ(n, 0);
        ASSERT_NULL(registry_get(r, "gone"));
        ASSERT_EQ(registry_size(r), 0);
}

TEST(lease_allocate_saturates_at_uint32_max) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        PoolEntry *e;
        uint32_t n = 0;

        ASSERT_OK(registry_ensure(r, "p", &e));
        e->active_leases = UINT32_MAX - 1;
        ASSERT_OK(registry_allocate_lease(r, "p", &n));
        ASSERT_TRUE(n == UINT32_MAX);
        ASSERT_OK(registry_allocate_lease(r, "p", &n));
        ASSERT_TRUE(n == UINT32_MAX);
        ASSERT_TRUE(registry_get_active_leases(r, "p") == UINT32_MAX);
        ASSERT_EQ(registry_release_lease(r, "p", &n), 1);
        ASSERT_TRUE(n == UINT32_MAX - 1);
}

/* OC-POOL-3108 */
TEST(draining_refuses_leases_release_still_works) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        uint32_t n = 0;

        ASSERT_OK(registry_allocate_lease(r, "p", &n));
        ASSERT_OK(registry_allocate_lease(r, "p", &n));
        ASSERT_EQ(n, 2);
        ASSERT_OK(registry_set_draining(r, "p", true));
        ASSERT_TRUE(registry_get_draining(r, "p"));

        n = 42;
        ASSERT_ERROR(registry_allocate_lease(r, "p", &n), EBUSY);
        ASSERT_EQ(n, 42); /* out-parameter untouched on error */
        ASSERT_EQ(registry_get_active_leases(r, "p"), 2);

        ASSERT_EQ(registry_release_lease(r, "p", &n), 1);
        ASSERT_EQ(n, 1);
        ASSERT_EQ(registry_release_lease(r, "p", &n), 1);
        ASSERT_EQ(n, 0);
        ASSERT_EQ(registry_release_lease(r, "p", &n), 0);
        ASSERT_EQ(n, 0);

        ASSERT_OK(registry_set_draining(r, "p", false));
        ASSERT_FALSE(registry_get_draining(r, "p"));
        ASSERT_OK(registry_allocate_lease(r, "p", &n));
        ASSERT_EQ(n, 1);
}

TEST(leases_independent_per_pool) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        uint32_t n;

        ASSERT_OK(registry_allocate_lease(r, "a", &n));
        ASSERT_OK(registry_allocate_lease(r, "a", &n));
        ASSERT_OK(registry_allocate_lease(r, "b", &n));
        ASSERT_OK(registry_set_draining(r, "c", true));
        ASSERT_ERROR(registry_allocate_lease(r, "c", &n), EBUSY);
        ASSERT_EQ(registry_get_active_leases(r, "a"), 2);
        ASSERT_EQ(registry_get_active_leases(r, "b"), 1);
        ASSERT_EQ(registry_get_active_leases(r, "c"), 0);
        ASSERT_EQ(registry_release_lease(r, "a", &n), 1);
        ASSERT_EQ(registry_get_active_leases(r, "a"), 1);
        ASSERT_EQ(registry_get_active_leases(r, "b"), 1);
        ASSERT_FALSE(registry_get_draining(r, "a"));
}

TEST(leases_do_not_touch_slots_free) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        uint32_t n;

        ASSERT_OK(registry_set_slots(r, "p", 4, 3));
        ASSERT_OK(registry_allocate_lease(r, "p", &n));
        ASSERT_OK(registry_allocate_lease(r, "p", &n));
        ASSERT_EQ(registry_get(r, "p")->slots_free, 3);
        ASSERT_EQ(registry_release_lease(r, "p", &n), 1);
        ASSERT_EQ(registry_get(r, "p")->slots_free, 3);
        ASSERT_EQ(registry_get(r, "p")->slots_total, 4);
}

/* OC-POOL-3107 */
TEST(update_merges_only_present_fields) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        RegistryUpdate u = REGISTRY_UPDATE_INIT;
        json_object *hints = json_object_new_object();
        PoolEntry *e;

        ASSERT_OK(registry_set_engine_version(r, "p", "v1"));
        ASSERT_OK(registry_set_device_mask(r, "p", "GPU0"));
        ASSERT_OK(registry_set_slots(r, "p", 4, 2));
        ASSERT_OK(registry_set_perf_hints(r, "p", hints));

        /* Nothing present: nothing changes. */
        ASSERT_OK(registry_update(r, "p", &u));
        e = registry_get(r, "p");
        ASSERT_STREQ(e->engine_version, "v1");
        ASSERT_STREQ(e->device_mask, "GPU0");
        ASSERT_EQ(e->slots_total, 4);
        ASSERT_EQ(e->slots_free, 2);
        ASSERT_TRUE(e->perf_hints == hints);

        u.engine_version = "v2";
        ASSERT_OK(registry_update(r, "p", &u));
        ASSERT_STREQ(e->engine_version, "v2");
        ASSERT_STREQ(e->device_mask, "GPU0");

        u = (RegistryUpdate) REGISTRY_UPDATE_INIT;
        u.device_mask = "GPU1";
        u.slots_free = 3;
        ASSERT_OK(registry_update(r, "p", &u));
        ASSERT_STREQ(e->engine_version, "v2");
        ASSERT_STREQ(e->device_mask, "GPU1");
        ASSERT_EQ(e->slots_total, 4);
        ASSERT_EQ(e->slots_free, 3);
        ASSERT_TRUE(e->perf_hints == hints);

        json_object_put(hints);
}

TEST(update_perf_hints_takes_reference) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        RegistryUpdate u = REGISTRY_UPDATE_INIT;
        json_object *a = json_object_new_int(1), *b = json_object_new_int(2);

        u.perf_hints = a;
        ASSERT_OK(registry_update(r, "p", &u));
        json_object_put(a);
        ASSERT_EQ(json_object_get_int(registry_get(r, "p")->perf_hints), 1);
        u.perf_hints = b;
        ASSERT_OK(registry_update(r, "p", &u));
        ASSERT_EQ(json_object_get_int(registry_get(r, "p")->perf_hints), 2);
        json_object_put(b);
        ASSERT_EQ(json_object_get_int(registry_get(r, "p")->perf_hints), 2);
}

/* OC-POOL-3107, OC-POOL-3102: free is clamped to the resulting total. */
TEST(update_clamps_free_to_resulting_total) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        RegistryUpdate u = REGISTRY_UPDATE_INIT;
        PoolEntry *e;

        u.slots_total = 4;
        u.slots_free = 10;
        ASSERT_OK(registry_update(r, "p", &u));
        e = registry_get(r, "p");
        ASSERT_EQ(e->slots_total, 4);
        ASSERT_EQ(e->slots_free, 4);

        /* Only free given: clamped against the existing total. */
        u = (RegistryUpdate) REGISTRY_UPDATE_INIT;
        u.slots_free = 7;
        ASSERT_OK(registry_update(r, "p", &u));
        ASSERT_EQ(e->slots_total, 4);
        ASSERT_EQ(e->slots_free, 4);

        u.slots_free = -9;
        ASSERT_OK(registry_update(r, "p", &u));
        ASSERT_EQ(e->slots_free, 0);
}

/* OC-POOL-3107: only slots_total given, the existing free is clamped to it. */
TEST(update_total_only_clamps_existing_free) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        RegistryUpdate u = REGISTRY_UPDATE_INIT;
        PoolEntry *e;

        ASSERT_OK(registry_set_slots(r, "p", 8, 6));
        u.slots_total = 2;
        ASSERT_OK(registry_update(r, "p", &u));
        e = registry_get(r, "p");
        ASSERT_EQ(e->slots_total, 2);
        ASSERT_EQ(e->slots_free, 2);

        u.slots_total = 16;
        ASSERT_OK(registry_update(r, "p", &u));
        ASSERT_EQ(e->slots_total, 16);
        ASSERT_EQ(e->slots_free, 2);

        /* No free known yet: it stays unset. */
        ASSERT_OK(registry_update(r, "q", &u));
        ASSERT_EQ(registry_get(r, "q")->slots_total, 16);
        ASSERT_EQ(registry_get(r, "q")->slots_free, SLOTS_UNSET);
}

TEST(update_free_without_known_total_is_kept_nonnegative) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        RegistryUpdate u = REGISTRY_UPDATE_INIT;

        u.slots_free = 3;
        ASSERT_OK(registry_update(r, "p", &u));
        ASSERT_EQ(registry_get(r, "p")->slots_total, SLOTS_UNSET);
        ASSERT_EQ(registry_get(r, "p")->slots_free, 3);
}

TEST(update_negative_total_or_null_is_einval) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        RegistryUpdate u = REGISTRY_UPDATE_INIT;

        u.slots_total = -2;
        ASSERT_ERROR(registry_update(r, "p", &u), EINVAL);
        ASSERT_ERROR(registry_update(r, "p", NULL), EINVAL);
        ASSERT_NULL(registry_get(r, "p"));
}

/* OC-POOL-3101 */
TEST(handoff_sets_ready_meta_slots_and_clears_error) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        Handoff h = HANDOFF_INIT;
        PoolEntry *e;

        h.engine_version = (char *) "b4000";
        h.device_mask = (char *) "GPU0";
        h.replica_id = (char *) "r0";
        h.url = (char *) "http://127.0.0.1:8081";
        h.unit = (char *) "pool-engine-p.service";
        h.pid = 4242;
        h.slots_total = 4;
        h.slots_free = 3;

        ASSERT_OK(registry_set_last_error(r, "p", "crashed"));
        ASSERT_OK(registry_register_ready_from_handoff(r, "p", &h, 5000));
        e = registry_get(r, "p");
        ASSERT_TRUE(e->health.live);
        ASSERT_TRUE(e->health.ready);
        ASSERT_NULL(e->last_error);
        ASSERT_STREQ(e->engine_version, "b4000");
        ASSERT_STREQ(e->device_mask, "GPU0");
        ASSERT_STREQ(e->replica_id, "r0");
        ASSERT_STREQ(e->url, "http://127.0.0.1:8081");
        ASSERT_STREQ(e->unit, "pool-engine-p.service");
        ASSERT_EQ(e->main_pid, 4242);
        ASSERT_EQ(e->slots_total, 4);
        ASSERT_EQ(e->slots_free, 3);
        ASSERT_EQ(e->last_heartbeat_ms, 5000);
}

/* OC-POOL-3101: slots_free defaults to slots_total; free is clamped. */
TEST(handoff_free_defaults_to_total_and_is_clamped) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        Handoff h = HANDOFF_INIT;

        h.slots_total = 4;
        ASSERT_OK(registry_register_ready_from_handoff(r, "p", &h, 1));
        ASSERT_EQ(registry_get(r, "p")->slots_total, 4);
        ASSERT_EQ(registry_get(r, "p")->slots_free, 4);

        h.slots_total = 2;
        h.slots_free = 9;
        ASSERT_OK(registry_register_ready_from_handoff(r, "q", &h, 1));
        ASSERT_EQ(registry_get(r, "q")->slots_total, 2);
        ASSERT_EQ(registry_get(r, "q")->slots_free, 2);
}

/* OC-POOL-3102: partial input is fine; the existing free is kept, then clamped. */
TEST(handoff_without_free_keeps_existing_free_clamped) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        Handoff h = HANDOFF_INIT;

        ASSERT_OK(registry_set_slots(r, "p", 8, 5));
        h.slots_total = 3;
        ASSERT_OK(registry_register_ready_from_handoff(r, "p", &h, 1));
        ASSERT_EQ(registry_get(r, "p")->slots_total, 3);
        ASSERT_EQ(registry_get(r, "p")->slots_free, 3);

        ASSERT_OK(registry_set_slots(r, "p", 8, 5));
        h.slots_total = 16;
        ASSERT_OK(registry_register_ready_from_handoff(r, "p", &h, 1));
        ASSERT_EQ(registry_get(r, "p")->slots_total, 16);
        ASSERT_EQ(registry_get(r, "p")->slots_free, 5);

        /* Only free given: clamped to the existing total. */
        h = (Handoff) HANDOFF_INIT;
        h.slots_free = 40;
        ASSERT_OK(registry_register_ready_from_handoff(r, "p", &h, 1));
        ASSERT_EQ(registry_get(r, "p")->slots_total, 16);
        ASSERT_EQ(registry_get(r, "p")->slots_free, 16);
}

/* OC-POOL-3102: a minimal handoff for a new pool leaves the slots unset (the predecessor
 * invented slots_total=1). */
TEST(handoff_minimal_new_pool_leaves_slots_unset) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        Handoff h = HANDOFF_INIT;
        PoolEntry *e;

        ASSERT_OK(registry_register_ready_from_handoff(r, "p", &h, 10));
        e = registry_get(r, "p");
        ASSERT_TRUE(e->health.live);
        ASSERT_TRUE(e->health.ready);
        ASSERT_EQ(e->slots_total, SLOTS_UNSET);
        ASSERT_EQ(e->slots_free, SLOTS_UNSET);
        ASSERT_NULL(e->engine_version);
        ASSERT_NULL(e->device_mask);
        ASSERT_NULL(e->url);
        ASSERT_EQ(e->main_pid, 0);
}

/* OC-POOL-3102: an existing pool keeps every field the handoff does not carry. */
TEST(handoff_existing_pool_keeps_other_fields) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        Handoff h = HANDOFF_INIT;
        json_object *hints = json_object_new_object();
        PoolEntry *e;
        uint32_t n;

        ASSERT_OK(registry_set_engine_meta(r, "p", "v1", "sha256:aa", "cat"));
        ASSERT_OK(registry_set_device_mask(r, "p", "GPU0"));
        ASSERT_OK(registry_set_version(r, "p", "3"));
        ASSERT_OK(registry_set_slots(r, "p", 4, 1));
        ASSERT_OK(registry_set_perf_hints(r, "p", hints));
        ASSERT_OK(registry_allocate_lease(r, "p", &n));
        ASSERT_OK(registry_ensure(r, "p", &e));
        e->url = strdup("http://127.0.0.1:1");
        e->main_pid = 77;
        e->started_at_usec = 123;
        ASSERT_NOT_NULL(e->url);

        ASSERT_OK(registry_register_ready_from_handoff(r, "p", &h, 10));
        e = registry_get(r, "p");
        ASSERT_STREQ(e->engine_version, "v1");
        ASSERT_STREQ(e->engine_digest, "sha256:aa");
        ASSERT_STREQ(e->engine_catalog_id, "cat");
        ASSERT_STREQ(e->device_mask, "GPU0");
        ASSERT_STREQ(e->version, "3");
        ASSERT_STREQ(e->url, "http://127.0.0.1:1");
        ASSERT_EQ(e->main_pid, 77);
        ASSERT_EQ(e->started_at_usec, 123);
        ASSERT_EQ(e->slots_total, 4);
        ASSERT_EQ(e->slots_free, 1);
        ASSERT_TRUE(e->perf_hints == hints);
        ASSERT_EQ(e->active_leases, 1);

        json_object_put(hints);
}

/* OC-POOL-3102 */
TEST(handoff_is_idempotent) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        Handoff h = HANDOFF_INIT;
        PoolEntry *e;

        h.engine_version = (char *) "v1";
        h.slots_total = 2;
        h.slots_free = 1;
        ASSERT_OK(registry_register_ready_from_handoff(r, "p", &h, 10));
        ASSERT_OK(registry_register_ready_from_handoff(r, "p", &h, 10));
        ASSERT_EQ(registry_size(r), 1);
        e = registry_get(r, "p");
        ASSERT_TRUE(e->health.ready);
        ASSERT_STREQ(e->engine_version, "v1");
        ASSERT_EQ(e->slots_total, 2);
        ASSERT_EQ(e->slots_free, 1);
        ASSERT_EQ(e->last_heartbeat_ms, 10);
}

/* OC-POOL-3102 */
TEST(handoff_heartbeat_is_max_of_old_and_now) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        Handoff h = HANDOFF_INIT;

        ASSERT_EQ(registry_set_heartbeat(r, "p", 9000), 1);
        ASSERT_OK(registry_register_ready_from_handoff(r, "p", &h, 5000));
        ASSERT_EQ(registry_get(r, "p")->last_heartbeat_ms, 9000);
        ASSERT_OK(registry_register_ready_from_handoff(r, "p", &h, 12000));
        ASSERT_EQ(registry_get(r, "p")->last_heartbeat_ms, 12000);
}

TEST(handoff_does_not_clear_draining) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        Handoff h = HANDOFF_INIT;
        uint32_t n;

        ASSERT_OK(registry_set_draining(r, "p", true));
        ASSERT_OK(registry_register_ready_from_handoff(r, "p", &h, 1));
        ASSERT_TRUE(registry_get_draining(r, "p"));
        ASSERT_ERROR(registry_allocate_lease(r, "p", &n), EBUSY);
}

TEST(handoff_null_is_einval) {
        _cleanup_(registry_freep) Registry *r = new_registry();

        ASSERT_ERROR(registry_register_ready_from_handoff(r, "p", NULL, 1), EINVAL);
        ASSERT_NULL(registry_get(r, "p"));
}

/* OC-POOL-3109 */
TEST(snapshot_is_sorted_deep_copy) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        json_object *hints = json_object_new_object();
        PoolEntry *s = NULL, *e;
        size_t n = 99;

        ASSERT_OK(registry_set_slots(r, "charlie", 2, 1));
        ASSERT_OK(registry_set_last_error(r, "alpha", "err"));
        ASSERT_OK(registry_set_perf_hints(r, "bravo", hints));
        ASSERT_OK(registry_set_engine_meta(r, "bravo", "v", "d", "c"));
        ASSERT_OK(registry_ensure(r, "bravo", &e));
        e->state = strdup("running");
        e->handoff_path = strdup("/run/x.json");
        e->unit = strdup("u.service");
        e->replica_id = strdup("r0");
        e->url = strdup("http://[::1]:1");
        e->ready_at_usec = 5;
        ASSERT_OK(registry_set_draining(r, "bravo", true));
        json_object_put(hints);

        ASSERT_OK(registry_snapshot(r, &s, &n));
        ASSERT_EQ(n, 3);
        ASSERT_STREQ(s[0].pool_id, "alpha");
        ASSERT_STREQ(s[1].pool_id, "bravo");
        ASSERT_STREQ(s[2].pool_id, "charlie");
        ASSERT_STREQ(s[0].last_error, "err");
        ASSERT_TRUE(s[1].draining);
        ASSERT_STREQ(s[1].engine_digest, "d");
        ASSERT_STREQ(s[1].state, "running");
        ASSERT_STREQ(s[1].handoff_path, "/run/x.json");
        ASSERT_STREQ(s[1].unit, "u.service");
        ASSERT_STREQ(s[1].replica_id, "r0");
        ASSERT_STREQ(s[1].url, "http://[::1]:1");
        ASSERT_EQ(s[1].ready_at_usec, 5);
        ASSERT_TRUE(s[1].perf_hints == registry_get(r, "bravo")->perf_hints);
        ASSERT_EQ(s[2].slots_total, 2);
        ASSERT_EQ(s[2].slots_free, 1);

        /* Deep: strings are copies, and the snapshot outlives changes to the registry. */
        ASSERT_TRUE(s[0].pool_id != registry_get(r, "alpha")->pool_id);
        ASSERT_OK(registry_set_last_error(r, "alpha", "other"));
        ASSERT_EQ(registry_deregister(r, "bravo"), 1);
        ASSERT_STREQ(s[0].last_error, "err");
        ASSERT_STREQ(s[1].state, "running");
        ASSERT_TRUE(json_object_is_type(s[1].perf_hints, json_type_object));

        ASSERT_NULL(pool_entry_array_free(s, n));
}

TEST(snapshot_of_empty_registry) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        PoolEntry *s = (PoolEntry *) 1;
        size_t n = 99;

        ASSERT_OK(registry_snapshot(r, &s, &n));
        ASSERT_EQ(n, 0);
        ASSERT_NULL(s);
        ASSERT_NULL(pool_entry_array_free(s, n));
}

TEST(pool_entry_done_frees_and_resets) {
        PoolEntry e = {
                .pool_id = strdup("p"),
                .last_error = strdup("x"),
                .perf_hints = json_object_new_object(),
                .state = strdup("ready"),
                .slots_total = 3,
                .active_leases = 2,
        };

        pool_entry_done(&e);
        ASSERT_NULL(e.pool_id);
        ASSERT_NULL(e.last_error);
        ASSERT_NULL(e.perf_hints);
        ASSERT_NULL(e.state);
        ASSERT_EQ(e.active_leases, 0);
        ASSERT_EQ(e.slots_total, SLOTS_UNSET);
        ASSERT_EQ(e.slots_free, SLOTS_UNSET);
        pool_entry_done(&e); /* idempotent */
        pool_entry_done(NULL);
}

/* Deterministic xorshift, so a failure reproduces. */
static uint32_t rng_next(uint32_t *s) {
        *s ^= *s << 13;
        *s ^= *s >> 17;
        *s ^= *s << 5;
        return *s;
}

static void assert_sorted(const Registry *r) {
        for (size_t i = 1; i < registry_size(r); i++)
                ASSERT_TRUE(strcmp(registry_nth(r, i - 1)->pool_id, registry_nth(r, i)->pool_id) < 0);
        ASSERT_NULL(registry_nth(r, registry_size(r)));
}

/* OC-POOL-3109: many pools in random order come out sorted; lookup finds each one;
 * removing from the middle keeps order and lookup intact. */
TEST(many_pools_random_order_sorted_lookup_and_middle_removal) {
        _cleanup_(registry_freep) Registry *r = new_registry();
        enum { N = 1000 };
        unsigned order[N];
        uint32_t seed = 0x9e3779b9;
        PoolEntry *s = NULL;
        size_t n;
        char id[32];

        for (unsigned i = 0; i < N; i++)
                order[i] = i;
        for (unsigned i = N - 1; i > 0; i--) {
                unsigned j = rng_next(&seed) % (i + 1), t = order[i];

                order[i] = order[j];
                order[j] = t;
        }

        for (unsigned i = 0; i < N; i++) {
                snprintf(id, sizeof(id), "pool-%04u", order[i]);
                ASSERT_EQ(registry_register(r, id), 1);
                ASSERT_OK(registry_set_slots(r, id, (int32_t) order[i], 0));
        }
        ASSERT_EQ(registry_size(r), N);
        assert_sorted(r);

        for (unsigned i = 0; i < N; i++) {
                PoolEntry *e;

                snprintf(id, sizeof(id), "pool-%04u", i);
                e = registry_get(r, id);
                ASSERT_NOT_NULL(e);
                ASSERT_STREQ(e->pool_id, id);
                ASSERT_EQ(e->slots_total, (int32_t) i);
                ASSERT_TRUE(registry_nth(r, i) == e);
        }
        ASSERT_NULL(registry_get(r, "pool-"));
        ASSERT_NULL(registry_get(r, "pool-10000"));
        ASSERT_NULL(registry_get(r, "a"));
        ASSERT_NULL(registry_get(r, "z"));

        /* Remove every odd pool in [300, 700), middle of the array. */
        for (unsigned i = 300; i < 700; i++) {
                if (i % 2 == 0)
                        continue;
                snprintf(id, sizeof(id), "pool-%04u", i);
                ASSERT_EQ(registry_deregister(r, id), 1);
        }
        ASSERT_EQ(registry_size(r), N - 200);
        assert_sorted(r);

        for (unsigned i = 0; i < N; i++) {
                bool gone = i >= 300 && i < 700 && i % 2 == 1;

                snprintf(id, sizeof(id), "pool-%04u", i);
                if (gone)
                        ASSERT_NULL(registry_get(r, id));
                else {
                        ASSERT_NOT_NULL(registry_get(r, id));
                        ASSERT_EQ(registry_get(r, id)->slots_total, (int32_t) i);
                }
        }

        ASSERT_OK(registry_snapshot(r, &s, &n));
        ASSERT_EQ(n, N - 200);
        for (size_t i = 1; i < n; i++)
                ASSERT_TRUE(strcmp(s[i - 1].pool_id, s[i].pool_id) < 0);
        pool_entry_array_free(s, n);

        /* Re-insert into the gaps. */
        ASSERT_EQ(registry_register(r, "pool-0501"), 1);
        ASSERT_EQ(registry_register(r, "pool-0499"), 1);
        assert_sorted(r);
        ASSERT_EQ(registry_size(r), N - 198);
}

TEST(remove_first_and_last) {
        _cleanup_(registry_freep) Registry *r = new_registry();

        ASSERT_EQ(registry_register(r, "b"), 1);
        ASSERT_EQ(registry_register(r, "a"), 1);
        ASSERT_EQ(registry_register(r, "c"), 1);
        ASSERT_EQ(registry_deregister(r, "a"), 1);
        ASSERT_STREQ(registry_nth(r, 0)->pool_id, "b");
        ASSERT_EQ(registry_deregister(r, "c"), 1);
        ASSERT_STREQ(registry_nth(r, 0)->pool_id, "b");
        ASSERT_EQ(registry_size(r), 1);
        ASSERT_EQ(registry_deregister(r, "b"), 1);
        ASSERT_EQ(registry_size(r), 0);
        ASSERT_EQ(registry_register(r, "b"), 1);
}

DEFINE_TEST_MAIN
