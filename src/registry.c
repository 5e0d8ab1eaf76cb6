/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The pool registry: a dynamic array of PoolEntry kept sorted by pool id (strcmp order).
 * Lookups are a binary search, inserts and removals shift the tail in place, and a
 * snapshot is a deep copy that is already in id order. Pure: nothing here reads a clock,
 * logs or does I/O; timestamps come from the caller.
 *
 * Every mutator that can fail allocates what it needs before it touches an entry, so an
 * -ENOMEM leaves the registry as it was (at most a freshly upserted entry with defaults).
 */

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "handoff.h"
#include "registry.h"
#include "shared/json-util.h"
#include "shared/macro.h"
#include "shared/sort-util.h"

struct Registry {
        PoolEntry *entries;             /* sorted by pool_id, no duplicates */
        size_t n_entries;
        size_t n_allocated;
};

static bool pool_id_ok(const char *pool_id) {
        /* The registry accepts any non-empty id; syntax is checked where ids enter the daemon. */
        return !isempty(pool_id);
}

/* Replaces *dst with a new reference to hints (NULL clears). */
static void perf_hints_replace(json_object **dst, json_object *hints) {
        /* Take the new reference before dropping the old one: hints may be the same object. */
        if (hints)
                (void) json_object_get(hints);
        json_object_putp(dst);
        *dst = hints;
}

/* Clamps a slots_free value against slots_total: SLOTS_UNSET stays unset, anything else
 * becomes >= 0 and, when the total is known, <= total. */
static int32_t slots_free_clamp(int32_t free_slots, int32_t total) {
        if (free_slots == SLOTS_UNSET)
                return SLOTS_UNSET;
        if (free_slots < 0)
                return 0;
        if (total >= 0 && free_slots > total)
                return total;
        return free_slots;
}

static int pool_entry_compare_id(const void *key, const void *element) {
        const PoolEntry *e = element;

        return strcmp(key, e->pool_id);
}

/* true when found; *ret_idx is the index of the entry or, when not found, the index at which it
 * would be inserted. */
static bool registry_find(const Registry *r, const char *pool_id, size_t *ret_idx) {
        return bsearch_index(pool_id, r->entries, r->n_entries, sizeof(PoolEntry), pool_entry_compare_id,
                             ret_idx);
}

static int registry_reserve(Registry *r, size_t need) {
        PoolEntry *n;
        size_t a;

        if (need <= r->n_allocated)
                return 0;

        a = MAX(need, MAX(r->n_allocated * 2, (size_t) 8));
        if (a < need)
                return -ENOMEM;
        n = reallocarray(r->entries, a, sizeof(PoolEntry));
        if (!n)
                return -ENOMEM;

        r->entries = n;
        r->n_allocated = a;
        return 0;
}

int registry_new(Registry **ret) {
        Registry *r;

        assert(ret);

        r = calloc(1, sizeof(Registry));
        if (!r)
                return -ENOMEM;

        *ret = r;
        return 0;
}

Registry *registry_free(Registry *r) {
        if (!r)
                return NULL;

        for (size_t i = 0; i < r->n_entries; i++)
                pool_entry_done(&r->entries[i]);
        free(r->entries);
        return mfree(r);
}

size_t registry_size(const Registry *r) {
        return r ? r->n_entries : 0;
}

PoolEntry *registry_nth(const Registry *r, size_t i) {
        if (!r || i >= r->n_entries)
                return NULL;
        return &r->entries[i];
}

PoolEntry *registry_get(const Registry *r, const char *pool_id) {
        size_t idx;

        if (!r || !pool_id_ok(pool_id))
                return NULL;
        if (!registry_find(r, pool_id, &idx))
                return NULL;
        return &r->entries[idx];
}

int registry_ensure(Registry *r, const char *pool_id, PoolEntry **ret) {
        _cleanup_free_ char *id = NULL;
        size_t idx;
        int k;

        assert(r);

        if (!pool_id_ok(pool_id))
                return -EINVAL;

        if (registry_find(r, pool_id, &idx)) {
                if (ret)
                        *ret = &r->entries[idx];
                return 0;
        }

        id = strdup(pool_id);
        if (!id)
                return -ENOMEM;
        k = registry_reserve(r, r->n_entries + 1);
        if (k < 0)
                return k;

        memmove(r->entries + idx + 1, r->entries + idx, (r->n_entries - idx) * sizeof(PoolEntry));
        r->entries[idx] = (PoolEntry) {
                .pool_id = TAKE_PTR(id),
                .slots_total = SLOTS_UNSET,
                .slots_free = SLOTS_UNSET,
        };
        r->n_entries++;

        if (ret)
                *ret = &r->entries[idx];
        return 1;
}

int registry_register(Registry *r, const char *pool_id) {
        return registry_ensure(r, pool_id, NULL);
}

int registry_deregister(Registry *r, const char *pool_id) {
        size_t idx;

        assert(r);

        if (!pool_id_ok(pool_id))
                return -EINVAL;
        if (!registry_find(r, pool_id, &idx))
                return 0;

        pool_entry_done(&r->entries[idx]);
        memmove(r->entries + idx, r->entries + idx + 1, (r->n_entries - idx - 1) * sizeof(PoolEntry));
        r->n_entries--;
        return 1;
}

int registry_set_health(Registry *r, const char *pool_id, bool live, bool ready) {
        PoolEntry *e;
        int k;

        k = registry_ensure(r, pool_id, &e);
        if (k < 0)
                return k;

        e->health = (PoolHealth) { .live = live, .ready = ready };
        return 0;
}

int registry_get_health(const Registry *r, const char *pool_id, PoolHealth *ret) {
        const PoolEntry *e;

        assert(r);

        if (!pool_id_ok(pool_id))
                return -EINVAL;
        e = registry_get(r, pool_id);
        if (!e)
                return -ENOENT;

        if (ret)
                *ret = e->health;
        return 0;
}

/* Upserts the entry and replaces one of its string fields with a copy of value (NULL clears). */
static int registry_set_string(Registry *r, const char *pool_id, size_t offset, const char *value) {
        _cleanup_free_ char *copy = NULL;
        PoolEntry *e;
        char **field;
        int k;

        if (value) {
                copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
        }

        k = registry_ensure(r, pool_id, &e);
        if (k < 0)
                return k;

        field = (char **) ((uint8_t *) e + offset);
        free(*field);
        *field = TAKE_PTR(copy);
        return 0;
}

int registry_set_last_error(Registry *r, const char *pool_id, const char *error) {
        return registry_set_string(r, pool_id, offsetof(PoolEntry, last_error), error);
}

int registry_set_version(Registry *r, const char *pool_id, const char *version) {
        return registry_set_string(r, pool_id, offsetof(PoolEntry, version), version);
}

int registry_set_engine_version(Registry *r, const char *pool_id, const char *engine_version) {
        return registry_set_string(r, pool_id, offsetof(PoolEntry, engine_version), engine_version);
}

int registry_set_device_mask(Registry *r, const char *pool_id, const char *device_mask) {
        return registry_set_string(r, pool_id, offsetof(PoolEntry, device_mask), device_mask);
}

/* Sets *dst to a copy of src when src is non-NULL; leaves it NULL otherwise. */
static int strdup_optional(const char *src, char **dst) {
        if (!src)
                return 0;
        *dst = strdup(src);
        return *dst ? 1 : -ENOMEM;
}

/* Moves *src into *dst when it is set (partial update); a NULL *src leaves *dst as it is. */
static void replace_if_set(char **dst, char **src) {
        if (!*src)
                return;
        free(*dst);
        *dst = TAKE_PTR(*src);
}

int registry_set_engine_meta(Registry *r, const char *pool_id, const char *engine_version,
                             const char *digest, const char *catalog_id) {
        _cleanup_free_ char *v = NULL, *d = NULL, *c = NULL;
        PoolEntry *e;
        int k;

        if (strdup_optional(engine_version, &v) < 0 ||
            strdup_optional(digest, &d) < 0 ||
            strdup_optional(catalog_id, &c) < 0)
                return -ENOMEM;

        k = registry_ensure(r, pool_id, &e);
        if (k < 0)
                return k;

        replace_if_set(&e->engine_version, &v);
        replace_if_set(&e->engine_digest, &d);
        replace_if_set(&e->engine_catalog_id, &c);
        return 0;
}

int registry_set_slots(Registry *r, const char *pool_id, int32_t total, int32_t free_slots) {
        PoolEntry *e;
        int k;

        if (total < 0)
                return -EINVAL;

        k = registry_ensure(r, pool_id, &e);
        if (k < 0)
                return k;

        e->slots_total = total;
        e->slots_free = CLAMP(free_slots, 0, total);
        return 0;
}

int registry_set_perf_hints(Registry *r, const char *pool_id, json_object *hints) {
        PoolEntry *e;
        int k;

        k = registry_ensure(r, pool_id, &e);
        if (k < 0)
                return k;

        perf_hints_replace(&e->perf_hints, hints);
        return 0;
}

int registry_set_draining(Registry *r, const char *pool_id, bool draining) {
        PoolEntry *e;
        int k;

        k = registry_ensure(r, pool_id, &e);
        if (k < 0)
                return k;

        e->draining = draining;
        return 0;
}

bool registry_get_draining(const Registry *r, const char *pool_id) {
        const PoolEntry *e = registry_get(r, pool_id);

        return e && e->draining;
}

int registry_set_heartbeat(Registry *r, const char *pool_id, int64_t epoch_ms) {
        PoolEntry *e;
        int k;

        k = registry_ensure(r, pool_id, &e);
        if (k < 0)
                return k;

        if (epoch_ms < e->last_heartbeat_ms)
                return 0;
        e->last_heartbeat_ms = epoch_ms;
        return 1;
}

int registry_update(Registry *r, const char *pool_id, const RegistryUpdate *u) {
        _cleanup_free_ char *v = NULL, *m = NULL;
        PoolEntry *e;
        int32_t total, free_slots;
        int k;

        if (!u)
                return -EINVAL;
        if (u->slots_total < SLOTS_UNSET)
                return -EINVAL;

        if (strdup_optional(u->engine_version, &v) < 0 ||
            strdup_optional(u->device_mask, &m) < 0)
                return -ENOMEM;

        k = registry_ensure(r, pool_id, &e);
        if (k < 0)
                return k;

        replace_if_set(&e->engine_version, &v);
        replace_if_set(&e->device_mask, &m);

        total = u->slots_total != SLOTS_UNSET ? u->slots_total : e->slots_total;
        free_slots = u->slots_free != SLOTS_UNSET ? MAX(u->slots_free, 0) : e->slots_free;
        e->slots_total = total;
        e->slots_free = slots_free_clamp(free_slots, total);

        if (u->perf_hints)
                perf_hints_replace(&e->perf_hints, u->perf_hints);
        return 0;
}

int registry_allocate_lease(Registry *r, const char *pool_id, uint32_t *ret_leases) {
        PoolEntry *e;
        int k;

        k = registry_ensure(r, pool_id, &e);
        if (k < 0)
                return k;

        if (e->draining)
                return -EBUSY;

        if (e->active_leases < UINT32_MAX)
                e->active_leases++;
        if (ret_leases)
                *ret_leases = e->active_leases;
        return 0;
}

int registry_release_lease(Registry *r, const char *pool_id, uint32_t *ret_leases) {
        PoolEntry *e;

        assert(r);

        if (!pool_id_ok(pool_id))
                return -EINVAL;

        /* No upsert here: a late release for a pool that is gone must not bring it back. */
        e = registry_get(r, pool_id);
        if (!e || e->active_leases == 0) {
                if (ret_leases)
                        *ret_leases = 0;
                return 0;
        }

        e->active_leases--;
        if (ret_leases)
                *ret_leases = e->active_leases;
        return 1;
}

uint32_t registry_get_active_leases(const Registry *r, const char *pool_id) {
        const PoolEntry *e = registry_get(r, pool_id);

        return e ? e->active_leases : 0;
}

int registry_register_ready_from_handoff(Registry *r, const char *pool_id, const Handoff *h,
                                         int64_t now_ms) {
        _cleanup_free_ char *version = NULL, *mask = NULL, *replica = NULL, *url = NULL, *unit = NULL;
        PoolEntry *e;
        int32_t total, free_slots;
        int k;

        if (!h)
                return -EINVAL;

        if (strdup_optional(h->engine_version, &version) < 0 ||
            strdup_optional(h->device_mask, &mask) < 0 ||
            strdup_optional(h->replica_id, &replica) < 0 ||
            strdup_optional(h->url, &url) < 0 ||
            strdup_optional(h->unit, &unit) < 0)
                return -ENOMEM;

        k = registry_ensure(r, pool_id, &e);
        if (k < 0)
                return k;

        e->health = (PoolHealth) { .live = true, .ready = true };
        replace_if_set(&e->engine_version, &version);
        replace_if_set(&e->device_mask, &mask);
        replace_if_set(&e->replica_id, &replica);
        replace_if_set(&e->url, &url);
        replace_if_set(&e->unit, &unit);
        if (h->pid > 0)
                e->main_pid = h->pid;

        /* Unlike the predecessor, a handoff without slots does not invent slots_total=1: unknown
         * capacity stays SLOTS_UNSET. */
        total = h->slots_total >= 0 ? h->slots_total : e->slots_total;
        if (h->slots_free >= 0)
                free_slots = h->slots_free;
        else if (e->slots_free != SLOTS_UNSET)
                free_slots = e->slots_free;
        else
                free_slots = total;
        e->slots_total = total;
        e->slots_free = slots_free_clamp(free_slots, total);

        e->last_error = mfree(e->last_error);
        e->last_heartbeat_ms = MAX(e->last_heartbeat_ms, now_ms);
        /* draining is deliberately left alone: a pool being drained stays drained. */
        return 0;
}

static int pool_entry_copy(const PoolEntry *src, PoolEntry *dst) {
        _cleanup_(pool_entry_done) PoolEntry c = {
                .health = src->health,
                .slots_total = src->slots_total,
                .slots_free = src->slots_free,
                .active_leases = src->active_leases,
                .draining = src->draining,
                .last_heartbeat_ms = src->last_heartbeat_ms,
                .main_pid = src->main_pid,
                .started_at_usec = src->started_at_usec,
                .ready_at_usec = src->ready_at_usec,
                .crash_count = src->crash_count,
                .restart_count = src->restart_count,
                .backoff_ms = src->backoff_ms,
                .next_restart_usec = src->next_restart_usec,
                .circuit = src->circuit,
                .has_last_drain = src->has_last_drain,
                .last_drain_force_stopped = src->last_drain_force_stopped,
                .last_drain_duration_ms = src->last_drain_duration_ms,
                .last_drain_final_lease_count = src->last_drain_final_lease_count,
                .vram_required = src->vram_required,
                .vram_used = src->vram_used,
        };

        if (strdup_optional(src->pool_id, &c.pool_id) < 0 ||
            strdup_optional(src->last_error, &c.last_error) < 0 ||
            strdup_optional(src->version, &c.version) < 0 ||
            strdup_optional(src->engine_version, &c.engine_version) < 0 ||
            strdup_optional(src->engine_digest, &c.engine_digest) < 0 ||
            strdup_optional(src->engine_catalog_id, &c.engine_catalog_id) < 0 ||
            strdup_optional(src->device_mask, &c.device_mask) < 0 ||
            strdup_optional(src->replica_id, &c.replica_id) < 0 ||
            strdup_optional(src->unit, &c.unit) < 0 ||
            strdup_optional(src->url, &c.url) < 0 ||
            strdup_optional(src->handoff_path, &c.handoff_path) < 0 ||
            strdup_optional(src->state, &c.state) < 0 ||
            strdup_optional(src->devices, &c.devices) < 0 ||
            strdup_optional(src->tensor_split, &c.tensor_split) < 0 ||
            strdup_optional(src->placement_warning, &c.placement_warning) < 0)
                return -ENOMEM;

        /* The hints are never modified in place, so sharing a reference is a faithful copy. */
        c.perf_hints = src->perf_hints ? json_object_get(src->perf_hints) : NULL;

        *dst = c;
        c = (PoolEntry) {};
        return 0;
}

int registry_snapshot(const Registry *r, PoolEntry **ret, size_t *ret_n) {
        PoolEntry *a = NULL;
        size_t n;
        int k;

        assert(r);
        assert(ret);
        assert(ret_n);

        n = r->n_entries;
        if (n > 0) {
                a = calloc(n, sizeof(PoolEntry));
                if (!a)
                        return -ENOMEM;

                for (size_t i = 0; i < n; i++) {
                        k = pool_entry_copy(&r->entries[i], &a[i]);
                        if (k < 0) {
                                pool_entry_array_free(a, i);
                                return k;
                        }
                }
        }

        *ret = a;
        *ret_n = n;
        return 0;
}

void pool_entry_done(PoolEntry *e) {
        if (!e)
                return;

        free(e->pool_id);
        free(e->last_error);
        free(e->version);
        free(e->engine_version);
        free(e->engine_digest);
        free(e->engine_catalog_id);
        free(e->device_mask);
        json_object_putp(&e->perf_hints);
        free(e->replica_id);
        free(e->unit);
        free(e->url);
        free(e->handoff_path);
        free(e->state);
        free(e->devices);
        free(e->tensor_split);
        free(e->placement_warning);

        *e = (PoolEntry) {
                .slots_total = SLOTS_UNSET,
                .slots_free = SLOTS_UNSET,
        };
}

PoolEntry *pool_entry_array_free(PoolEntry *a, size_t n) {
        if (!a)
                return NULL;

        for (size_t i = 0; i < n; i++)
                pool_entry_done(&a[i]);
        return mfree(a);
}
