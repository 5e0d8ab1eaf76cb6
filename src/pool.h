/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Pool: the engine lifecycle of one pool. Preload goes
 *   starting (start job pending) -> probing (engine runs, health not yet 200) -> ready
 * and any failure on the way goes through "failing" (the unit is stopped) to "failed";
 * stop goes through "stopping" to "stopped". An engine that exits while ready makes the pool
 * "failed" at once. The registry entry of the pool mirrors every transition.
 */

#include <stdbool.h>

#include "engine-unit.h"
#include "prepared-engine.h"
#include "probe.h"

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
        _POOL_STATE_MAX,
        _POOL_STATE_INVALID = -EINVAL,
} PoolState;

const char *pool_state_to_string(PoolState s);
PoolState pool_state_from_string(const char *s);

/* r == 0: the operation succeeded; r < 0 with error: why it failed. */
typedef void (*PoolDoneCallback)(Pool *p, int r, const char *error, void *userdata);

typedef struct PoolWaiter {
        PoolDoneCallback callback;
        void *userdata;
        struct PoolWaiter *next;
} PoolWaiter;

struct Pool {
        Manager *manager;
        char *id;
        PreparedEngine *prepared;
        PoolState state;

        EngineUnit *unit;
        Probe *probe;

        char *pid_path;
        char *handoff_path;             /* set once written */
        char *url;
        char *failure;                  /* while failing: what went wrong */
        usec_t start_usec;              /* CLOCK_MONOTONIC of the start request */

        PoolWaiter *preload_waiters;
        PoolWaiter *stop_waiters;
};

int pool_new(Pool **ret, Manager *m, const char *id);
Pool *pool_free(Pool *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Pool *, pool_free);

/* Takes ownership of *prepared on success. The callback (optional) runs once the pool is
 * ready or the preload failed. -EBUSY when the pool is starting, ready or stopping. */
int pool_preload(Pool *p, PreparedEngine **prepared, PoolDoneCallback cb, void *userdata, char **ret_error);
/* -ESRCH when there is no engine to stop. The callback runs once the unit is gone. */
int pool_stop(Pool *p, PoolDoneCallback cb, void *userdata, char **ret_error);
/* Drops a waiter registered by pool_preload()/pool_stop() (its requester went away). */
void pool_forget_waiter(Pool *p, void *userdata);

bool pool_is_active(const Pool *p);
