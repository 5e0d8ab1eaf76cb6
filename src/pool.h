/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Pool: the engine lifecycle and supervision of one pool.
 *
 *   starting (start job pending) -> probing (engine runs, health not yet 200) -> ready
 *   any failure on the way: failing (the unit is stopped) -> failed, or backoff when the
 *   failed start was a restart
 *   ready and the engine exits or fails its liveness probes: backoff (restart scheduled),
 *   failed (circuit open), or stopped (it exited cleanly)
 *   stop: stopping -> stopped; drain: leases run out (or the deadline), then stop;
 *   reload: drain, stop, start the new engine; on failure start the old one again.
 *   orphan: systemd has an engine unit of this name that this daemon cannot vouch for (no or
 *   unreadable saved state at start-up, or one that appeared under a preload): it is shown
 *   with its PID, never probed; stop -> stopping -> stopped, or it ends itself -> stopped.
 *
 * The registry entry mirrors every transition; the PreparedEngine and the supervision state
 * are saved in StateDirectory so a restarted daemon re-adopts the engine.
 */

#include <stdbool.h>

#include "engine-load.h"
#include "engine-metrics.h"
#include "engine-unit.h"
#include "journal-watch.h"
#include "metrics.h"
#include "pool-state.h"
#include "prepared-engine.h"
#include "probe.h"
#include "shared/pool-error.h"
#include "supervision.h"

/* Every engine unit runs in this slice. */
#define POOL_ENGINES_SLICE "pool-engines.slice"

typedef struct Manager Manager;
typedef struct Pool Pool;

typedef enum PoolState {
        POOL_STOPPED,
        POOL_STARTING,
        POOL_PROBING,
        POOL_READY,
        POOL_STOPPING,
        POOL_FAILING,
        POOL_FAILED,
        POOL_BACKOFF,
        POOL_ORPHAN,                    /* a loaded engine unit this daemon did not start (or lost the
                                         * state of): tracked and stoppable, never started or probed */
        _POOL_STATE_MAX,
        _POOL_STATE_INVALID = -EINVAL,
} PoolState;

const char *pool_state_to_string(PoolState s);
PoolState pool_state_from_string(const char *s);

/*
 * The operation in progress. The state says what the engine is doing; the operation says why
 * and what comes next: what a failure leads to, whether a drain deadline aborts or forces,
 * what a stop is followed by. POOL_OP_NONE between operations (serving, stopped, backing off,
 * failed with the circuit open).
 */
typedef enum PoolOperation {
        POOL_OP_NONE,
        POOL_OP_PRELOAD,                /* a caller's preload: a failure is reported, no restart */
        POOL_OP_RESTART,                /* supervision restarts the engine: a failure is a crash */
        POOL_OP_ADOPT,                  /* re-adopting a running unit after a daemon restart */
        POOL_OP_HEALTH_STOP,            /* stopping an engine that failed its liveness probes */
        POOL_OP_STOP,                   /* a caller's stop */
        POOL_OP_DRAIN,                  /* leases run out (or the deadline forces), then stop */
        POOL_OP_RELOAD_DRAIN,           /* reload: drain and stop the old engine; a deadline aborts */
        POOL_OP_RELOAD_NEW,             /* reload: starting the new engine; a failure rolls back */
        POOL_OP_ROLLBACK,               /* reload: starting the old engine again */
        _POOL_OP_MAX,
        _POOL_OP_INVALID = -EINVAL,
} PoolOperation;

const char *pool_operation_to_string(PoolOperation o);

/* error == NULL: the operation succeeded; else why it failed. */
typedef void (*PoolDoneCallback)(Pool *p, const PoolError *error, void *userdata);

typedef struct PoolWaiter {
        PoolDoneCallback callback;
        void *userdata;
        struct PoolWaiter *next;
} PoolWaiter;

/* How a drain or a reload ended, as pool_managerd_drains_total{outcome} and reloads_total{outcome}
 * count them. */
typedef enum DrainEnd {
        DRAIN_END_COMPLETED,            /* the leases ran out, the engine stopped */
        DRAIN_END_FORCED,               /* the deadline stopped it with leases in flight */
        DRAIN_END_ABORTED,              /* ended without stopping the engine (a reload's deadline) */
        _DRAIN_END_MAX,
} DrainEnd;

typedef enum ReloadEnd {
        RELOAD_END_SUCCESS,
        RELOAD_END_ROLLED_BACK,         /* the new engine failed, the old one serves again */
        RELOAD_END_FAILED,              /* neither serves (or it was aborted or canceled) */
        _RELOAD_END_MAX,
} ReloadEnd;

/* What /metrics reports of the pool beyond the registry and the Supervisor's counts (which are
 * persisted). Kept in memory only: these reset when the daemon restarts. */
typedef struct PoolMetrics {
        bool preload_open;              /* a caller's preload is under way, not yet counted */
        usec_t preload_start_usec;      /* CLOCK_MONOTONIC */
        uint64_t preloads_succeeded;
        uint64_t preloads_failed[_POOL_ERROR_MAX];      /* by the error's code */
        uint64_t drains[_DRAIN_END_MAX];
        uint64_t reloads[_RELOAD_END_MAX];
        usec_t reload_start_usec;       /* CLOCK_MONOTONIC; 0: no reload under way */
        Histogram preload_duration;     /* the caller's preload request to ready */
        Histogram drain_duration;
        Histogram reload_duration;
        Histogram backoff_delay;
        char *cgroup;                   /* the engine's cgroup2 path, for cgroup_pid */
        pid_t cgroup_pid;
        /* The engine's own load, from its /metrics while the pool is ready (and not draining):
         * what the last scrape that was answered said, NaN where it said nothing. Cleared when
         * scraping stops, so a restarted engine starts without values. */
        EngineLoad engine_load;
        usec_t engine_load_usec;        /* CLOCK_MONOTONIC of that scrape; 0: none */
        char *engine_load_error;        /* why the last scrape read nothing, NULL: it did */
} PoolMetrics;

typedef struct DrainOutcome {
        bool force_stopped;
        uint64_t duration_ms;
        uint32_t final_lease_count;
} DrainOutcome;

typedef struct ReloadOutcome {
        bool success;
        bool rolled_back;
        char *engine_version;           /* the engine serving afterwards */
        char *error;
} ReloadOutcome;

struct Pool {
        Manager *manager;
        char *id;
        PreparedEngine *prepared;
        PoolState state;
        PoolOperation op;

        EngineUnit *unit;
        Probe *probe;                   /* readiness, or one liveness check */
        JournalWatchSlot *log_watch;    /* probing: the engine's journal lines trigger probes */
        EngineScraper *engine_scraper;  /* ready, not draining: reads the engine's /metrics */

        char *pid_path;
        char *handoff_path;             /* set once written */
        char *url;
        PoolError failure;              /* while failing: what went wrong */
        char *foreign_listener;         /* another process listens on the engine's port: who */
        pid_t main_pid_seen;            /* the engine's MainPID this run, kept after it exits */
        char *log_read_error;           /* why the engine's last lines could not be read, or NULL */
        usec_t start_usec;              /* CLOCK_MONOTONIC of the start request */
        struct Placement *placement;    /* devices, VRAM promised, split of the engine (src/placement.h) */
        bool gpu_unhealthy;             /* a GPU of its mask went unhealthy: not ready, drained */
        sd_event_source *save_event;    /* pool_save_soon(): the state file once the loop is idle */
        bool save_running;              /* what that save says */

        /* Supervision */
        Supervisor supervisor;
        sd_event_source *restart_timer; /* backoff, or the circuit's next tick */
        sd_event_source *liveness_timer;
        unsigned liveness_failed;       /* consecutive failed liveness probes */

        /* Drain (op DRAIN or RELOAD_DRAIN) */
        usec_t drain_start_usec;        /* CLOCK_MONOTONIC; 0: no drain to report */
        sd_event_source *drain_timer;
        DrainOutcome drain_outcome;     /* the last drain's result */

        /* Reload: the engine to start once the old one is stopped, the one to roll back to */
        PreparedEngine *reload_new;
        PreparedEngine *rollback;
        ReloadOutcome reload_outcome;   /* the last reload's result */

        PoolMetrics metrics;
        char *correlation_id;           /* of the request whose operation is under way, or NULL */

        /* A preload (op PRELOAD) waiting for engine_unit_check(): the unit must not exist yet. */
        PreparedEngine *preload_pending;
        /* Re-adopted at start-up and not yet probed once: start-up waits for it. */
        bool adoption_pending;
        bool readopted;                 /* the engine ran before this daemon started */

        PoolWaiter *preload_waiters;
        PoolWaiter *stop_waiters;
        PoolWaiter *drain_waiters;
        PoolWaiter *reload_waiters;
};

int pool_new(Pool **ret, Manager *m, const char *id);
Pool *pool_free(Pool *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Pool *, pool_free);

/* Takes ownership of *prepared on success. The callback (optional) runs once the pool is
 * ready or the preload failed. -EBUSY when the pool is active. */
int pool_preload(Pool *p, PreparedEngine **prepared, PoolDoneCallback cb, void *userdata, PoolError *ret_error);
/* -ESRCH when there is no engine to stop. The callback runs once the unit is gone. */
int pool_stop(Pool *p, PoolDoneCallback cb, void *userdata, PoolError *ret_error);
/* Refuse new leases; stop once the leases are released or deadline_ms passes (force).
 * The callback runs when the engine is stopped; p->drain_outcome holds the result. */
int pool_drain(Pool *p, uint64_t deadline_ms, PoolDoneCallback cb, void *userdata, PoolError *ret_error);
/* Drain (up to drain_deadline_ms; passing it aborts the reload), stop, start *prepared;
 * on failure start the old engine again. p->reload_outcome holds the result. */
int pool_reload(Pool *p, PreparedEngine **prepared, uint64_t drain_deadline_ms, PoolDoneCallback cb,
                void *userdata, PoolError *ret_error);
/* Re-adopts a unit that runs from before a daemon restart. Takes ownership of state. */
int pool_adopt(Pool *p, SavedPool *state);
/* Tracks a loaded engine unit that has no usable saved state: state orphan. why says so. */
int pool_adopt_orphan(Pool *p, const char *why);
/* Starts a pool whose saved state says it should run but whose unit is gone. */
int pool_resume(Pool *p, SavedPool *state);
/* Manual circuit reset: closes it and, for a failed pool, restarts the engine now. */
int pool_reset(Pool *p, PoolError *ret_error);
/* A GPU went unhealthy or was lost: a running pool whose mask names it becomes unready and is
 * drained (the deadline of a reload's drain); a cordoned GPU takes no new engines. */
void pool_gpu_unhealthy(Pool *p, const struct GpuDevice *d);
/* The engine's load as /metrics exports it: the last values, unless older than three
 * EngineMetricsInterval= plus EngineMetricsTimeout= (then, and without values, false). */
bool pool_engine_load(const Pool *p, usec_t now_usec, EngineLoad *ret);
/* EngineMetricsInterval= or EngineMetricsTimeout= changed: reading the engine's /metrics
 * starts again with them (at once, if it runs). */
void pool_engine_metrics_restart(Pool *p);
/* Leases changed: a draining pool may now stop. */
void pool_leases_changed(Pool *p);

/* Drops a waiter registered by an operation (its requester went away). */
void pool_forget_waiter(Pool *p, void *userdata);

/* Draining: leases are refused, the engine stops when they run out. */
bool pool_is_draining(const Pool *p);
/* Active: an engine unit exists or is being created, removed or restarted, or a preload is
 * under way. */
bool pool_is_active(const Pool *p);
/* The error for an active pool: ALREADY_RUNNING, ORPHAN_UNIT or BUSY, with its message. */
int pool_busy_error(const Pool *p, PoolError *ret_error);
