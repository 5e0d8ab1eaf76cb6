/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The pool registry: pool id -> PoolEntry, kept as an array sorted by pool id, so lookups
 * are a binary search and snapshots come out sorted for free. Pure: no clock, no bus, no
 * I/O; the caller passes timestamps in. Setters upsert an entry with defaults
 * (live=false, ready=false, no leases).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "shared/macro.h"

typedef struct Handoff Handoff;

#define SLOTS_UNSET (-1)

typedef struct PoolHealth {
        bool live;
        bool ready;
} PoolHealth;

typedef struct PoolEntry {
        char *pool_id;
        PoolHealth health;
        char *last_error;               /* NULL: none */
        char *version;                  /* registry version, distinct from engine_version */
        char *engine_version;
        char *engine_digest;
        char *engine_catalog_id;
        char *device_mask;
        int32_t slots_total;            /* SLOTS_UNSET or >= 0 */
        int32_t slots_free;             /* SLOTS_UNSET or in [0, slots_total] (>= 0 if total unset) */
        json_object *perf_hints;        /* owned reference, NULL: none */
        uint32_t active_leases;
        bool draining;
        int64_t last_heartbeat_ms;      /* epoch ms, 0: never */

        /* Runtime facts filled in by the engine lifecycle. */
        char *replica_id;
        char *unit;
        pid_t main_pid;
        char *url;
        char *handoff_path;
        uint64_t started_at_usec;       /* CLOCK_REALTIME, 0: not started */
        uint64_t ready_at_usec;         /* CLOCK_REALTIME, 0: not ready */
        char *state;                    /* lifecycle/supervision state name, e.g. "starting" */

        /* Placement (issue 9), set when the engine is placed. */
        char *devices;                  /* CUDA_VISIBLE_DEVICES given: UUIDs; NULL: no mask */
        uint64_t vram_required;         /* bytes promised to the engine; 0: unknown */
        uint64_t vram_used;             /* bytes NVML sees the unit's processes use */
        char *tensor_split;             /* "0.6000,0.4000"; NULL: no split */
        char *placement_warning;        /* an unenforced mask, missing device nodes; NULL: none */

        /* Supervision, mirrored from the pool's Supervisor. */
        uint32_t crash_count;
        uint32_t restart_count;
        uint64_t backoff_ms;            /* the last backoff decided */
        uint64_t next_restart_usec;     /* CLOCK_REALTIME, 0: none scheduled */
        const char *circuit;            /* static string: "closed", "open", "half-open"; NULL: none */

        /* The outcome of the last drain (has_last_drain: there was one). */
        bool has_last_drain;
        bool last_drain_force_stopped;
        uint64_t last_drain_duration_ms;
        uint32_t last_drain_final_lease_count;
} PoolEntry;

/* Optional fields for registry_update(): NULL / SLOTS_UNSET means "leave as is". */
typedef struct RegistryUpdate {
        const char *engine_version;
        const char *device_mask;
        int32_t slots_total;
        int32_t slots_free;
        json_object *perf_hints;        /* not consumed: a reference is taken */
} RegistryUpdate;

#define REGISTRY_UPDATE_INIT { .slots_total = SLOTS_UNSET, .slots_free = SLOTS_UNSET }

typedef struct Registry Registry;

int registry_new(Registry **ret);
Registry *registry_free(Registry *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Registry *, registry_free);

size_t registry_size(const Registry *r);
/*
 * The i-th entry in pool id order, NULL past the end. Entry pointers returned by nth/get/ensure
 * stay valid only until the next call that adds or removes an entry.
 */
PoolEntry *registry_nth(const Registry *r, size_t i);
PoolEntry *registry_get(const Registry *r, const char *pool_id);

/* Upsert: returns 1 and the new entry when it was created, 0 when it existed. */
int registry_ensure(Registry *r, const char *pool_id, PoolEntry **ret);
/* 1 when new, 0 when it already existed. */
int registry_register(Registry *r, const char *pool_id);
/* 1 when it existed and was removed, 0 when unknown. */
int registry_deregister(Registry *r, const char *pool_id);

int registry_set_health(Registry *r, const char *pool_id, bool live, bool ready);
/* -ENOENT for an unknown pool ("health -> none"). */
int registry_get_health(const Registry *r, const char *pool_id, PoolHealth *ret);
/* error == NULL clears it. */
int registry_set_last_error(Registry *r, const char *pool_id, const char *error);
int registry_set_version(Registry *r, const char *pool_id, const char *version);
int registry_set_engine_version(Registry *r, const char *pool_id, const char *engine_version);
/* Partial: a NULL argument leaves that field as it is. */
int registry_set_engine_meta(Registry *r, const char *pool_id, const char *engine_version,
                             const char *digest, const char *catalog_id);
int registry_set_device_mask(Registry *r, const char *pool_id, const char *device_mask);
/* slots_free is clamped into [0, total]; total < 0 is -EINVAL. */
int registry_set_slots(Registry *r, const char *pool_id, int32_t total, int32_t free_slots);
/* hints is not consumed: a reference is taken. NULL clears. */
int registry_set_perf_hints(Registry *r, const char *pool_id, json_object *hints);
int registry_set_draining(Registry *r, const char *pool_id, bool draining);
bool registry_get_draining(const Registry *r, const char *pool_id);
/* The heartbeat never goes backwards: an older value is ignored (returns 0, else 1). */
int registry_set_heartbeat(Registry *r, const char *pool_id, int64_t epoch_ms);
/* Merges present fields; slots_free is clamped to the resulting total. */
int registry_update(Registry *r, const char *pool_id, const RegistryUpdate *u);

/*
 * +1 (saturating at UINT32_MAX), upserting the pool. -EBUSY while draining (count unchanged,
 * *ret_leases untouched). Returns 0 and the new count in ret_leases (may be NULL).
 */
int registry_allocate_lease(Registry *r, const char *pool_id, uint32_t *ret_leases);
/*
 * -1, never below zero, allowed while draining. Does not upsert: a late release must not
 * resurrect a deregistered pool. Returns 1 when a lease was released, 0 when there was none
 * (unknown pool or count already 0); ret_leases gets the resulting count (may be NULL).
 */
int registry_release_lease(Registry *r, const char *pool_id, uint32_t *ret_leases);
uint32_t registry_get_active_leases(const Registry *r, const char *pool_id);

/*
 * live=ready=true; copies engine_version, device_mask, replica_id, url, unit, pid and slots
 * from the handoff where present (slots_free defaults to the existing value, else slots_total,
 * and is clamped; a handoff without slots leaves them as they are, SLOTS_UNSET for a new pool);
 * clears last_error; heartbeat = max(old, now_ms). Other fields, draining included, stay.
 */
int registry_register_ready_from_handoff(Registry *r, const char *pool_id, const Handoff *h,
                                         int64_t now_ms);

/* A deep copy of every entry, sorted by pool id. */
int registry_snapshot(const Registry *r, PoolEntry **ret, size_t *ret_n);
void pool_entry_done(PoolEntry *e);
PoolEntry *pool_entry_array_free(PoolEntry *a, size_t n);
