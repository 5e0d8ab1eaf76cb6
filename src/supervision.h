/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Supervision policy of one pool, as pure functions: crash classification, exponential
 * backoff with jitter, circuit breaker and restart-storm limiter. No clock, no randomness of
 * its own, no I/O: the caller passes the time (CLOCK_REALTIME µs, so the state can be saved
 * and survive a daemon restart) and a random number, and acts on the decision.
 */

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "shared/macro.h"
#include "shared/time-util.h"

typedef enum CrashReason {
        CRASH_EXIT_CODE,                /* exited with a non-zero status */
        CRASH_SIGNAL,                   /* killed by a signal (SIGSEGV, ...) */
        CRASH_OUT_OF_MEMORY,            /* Result=oom-kill, or "out of memory" in its last log lines */
        CRASH_CUDA_ERROR,               /* "CUDA error", "NVRM", "Xid", driver errors in its last log lines */
        CRASH_HEALTH_FAILURE,           /* stopped by us after LivenessFailures= failed liveness probes */
        CRASH_CLEAN_EXIT,               /* exited with status 0 (or handled SIGTERM) though nobody asked:
                                         * an end the daemon did not request is a crash all the same */
        _CRASH_REASON_MAX,
        _CRASH_REASON_INVALID = -EINVAL,
} CrashReason;

const char *crash_reason_to_string(CrashReason r);      /* "exit_code", "signal", "out_of_memory", ... */
CrashReason crash_reason_from_string(const char *s);

/* What systemd and the journal told us about an exit. */
typedef struct CrashFacts {
        const char *result;             /* the unit's Result=: "exit-code", "signal", "oom-kill", ... */
        int exec_main_code;             /* CLD_EXITED, CLD_KILLED, CLD_DUMPED */
        int exec_main_status;           /* exit status or signal number */
        char **log_lines;               /* the engine's last log lines, oldest first; may be NULL */
        bool health_failure;            /* we stopped it because liveness probes failed */
} CrashFacts;

/* Order of precedence: health_failure, out_of_memory (oom-kill or log), cuda_error (log),
 * signal, clean_exit (status 0 and Result=success), exit_code. Matching in log lines is
 * case-insensitive. Only ends the daemon did not ask for are classified: each is a crash. */
CrashReason crash_classify(const CrashFacts *f);

/* crash_classify() reads at most this many of the last log lines: an error the engine logged and
 * survived long before it died says nothing about why it died. */
#define CRASH_LOG_LINES_MAX 20

typedef enum CircuitState {
        CIRCUIT_CLOSED,
        CIRCUIT_OPEN,
        CIRCUIT_HALF_OPEN,
        _CIRCUIT_STATE_MAX,
        _CIRCUIT_STATE_INVALID = -EINVAL,
} CircuitState;

const char *circuit_state_to_string(CircuitState s);    /* "closed", "open", "half-open" */
CircuitState circuit_state_from_string(const char *s);

typedef struct SupervisionPolicy {
        usec_t backoff_initial;         /* 1s */
        usec_t backoff_max;             /* 60s */
        usec_t backoff_min;             /* 500ms: no delay is ever shorter */
        unsigned jitter_percent;        /* 10: delay * (1 ± 0.10) */
        unsigned cuda_factor;           /* 2: cuda_error backs off twice as long */
        usec_t stable_after;            /* 300s of running resets the backoff sequence */
        unsigned breaker_threshold;     /* 5 consecutive failures open the circuit */
        usec_t breaker_timeout;         /* 300s open, then half-open */
        usec_t breaker_close_after;     /* 60s stable in half-open closes it */
        usec_t storm_window;            /* 60s sliding window */
        unsigned storm_warn;            /* more than 5 restarts in the window: warning */
        unsigned storm_limit;           /* 10 restarts in the window: the circuit opens */
        usec_t liveness_interval;       /* 5s between liveness probes once ready */
        unsigned liveness_failures;     /* 3 failed probes in a row: health_failure */
} SupervisionPolicy;

void supervision_policy_init(SupervisionPolicy *p);     /* the defaults above */

/*
 * The delay decided for the consecutive-th crash in a row (0 counts as 1) for reason:
 * initial * 2^(consecutive-1) capped at backoff_max, * cuda_factor for cuda_error, * the jitter
 * factor of random_u64, then clamped into [backoff_min, backoff_max].
 *
 * Jitter mapping, with J = jitter_percent (at most 100): off = random_u64 % (2*J*1000 + 1) - J*1000,
 * factor = 1 + off / 100000, in integer arithmetic (delay * (100000 + off) / 100000, rounded down).
 * Uniform random_u64 gives 2*J*1000 + 1 evenly spaced factors over [1 - J%, 1 + J%] (steps of
 * 0.001 %, modulo bias below 1e-14). random_u64 = J*1000 gives exactly 1, 0 gives 1 - J%,
 * 2*J*1000 gives 1 + J%.
 */
usec_t supervision_backoff(const SupervisionPolicy *p, unsigned consecutive, CrashReason reason,
                           uint64_t random_u64);
/* The random_u64 whose jitter factor is exactly 1 (J*1000): deterministic delays, for tests. */
uint64_t supervision_random_no_jitter(const SupervisionPolicy *p);

#define SUPERVISOR_HISTORY_MAX 64

/* The per-pool state. Persisted (supervisor_to_json) so counts survive a daemon restart. */
typedef struct Supervisor {
        unsigned crash_count;           /* all crashes ever */
        unsigned restart_count;         /* all restarts we made */
        unsigned consecutive_failures;  /* crashes since the last stable period */
        CircuitState circuit;
        usec_t circuit_changed_at;      /* when it entered the current state */
        usec_t circuit_timeout;         /* current open timeout (doubles on half-open failure) */
        usec_t running_since;           /* last (re)start that reached ready; 0: not running */
        usec_t last_backoff;            /* the last delay decided */
        usec_t next_restart_at;         /* 0: none scheduled */
        CrashReason last_reason;        /* _CRASH_REASON_INVALID before the first crash */
        unsigned circuit_opens;         /* times the circuit opened (threshold, storm, failed trial) */
        unsigned storms;                /* times storm_limit was reached */
        unsigned crashes_by_reason[_CRASH_REASON_MAX];
        unsigned restarts_by_reason[_CRASH_REASON_MAX]; /* by the reason of the crash before */
        usec_t restarts[SUPERVISOR_HISTORY_MAX];   /* restart times, oldest first */
        size_t n_restarts;
} Supervisor;

void supervisor_init(Supervisor *s, const SupervisionPolicy *p);

typedef struct SupervisionDecision {
        bool restart;                   /* schedule a restart after delay */
        usec_t delay;
        bool circuit_opened;            /* this crash opened (or re-opened) the circuit */
        bool storm_warning;             /* more than storm_warn restarts in the window */
        bool storm;                     /* storm_limit reached: circuit opened */
        unsigned restarts_in_window;
} SupervisionDecision;

/*
 * A crash at now. Resets the consecutive count first if the engine ran stable_after; counts
 * the crash; if the circuit is half-open, re-opens it with twice the timeout; if it is open,
 * no restart; if the consecutive failures reach the threshold or the window holds storm_limit
 * restarts, opens it. Otherwise decides a restart after the backoff:
 * initial * 2^(consecutive-1) (capped), * cuda_factor for cuda_error, * (1 ± jitter) using
 * random_u64, then clamped into [backoff_min, backoff_max].
 */
void supervisor_on_crash(Supervisor *s, const SupervisionPolicy *p, CrashReason reason, usec_t now,
                         uint64_t random_u64, SupervisionDecision *ret);
/* We restarted the engine at now (records it in the storm window and restart_count). */
void supervisor_on_restart(Supervisor *s, const SupervisionPolicy *p, usec_t now);
/* The engine became ready at now. */
void supervisor_on_ready(Supervisor *s, const SupervisionPolicy *p, usec_t now);
/*
 * Time passes: open -> half-open after circuit_timeout (returns true: one trial restart is
 * allowed now); half-open and running stably for breaker_close_after -> closed (and the
 * consecutive count is reset). Returns false otherwise.
 */
bool supervisor_tick(Supervisor *s, const SupervisionPolicy *p, usec_t now);
/* When supervisor_tick() next has something to do (USEC_INFINITY: nothing). */
usec_t supervisor_next_tick(const Supervisor *s, const SupervisionPolicy *p);
/* Manual reset: circuit closed, consecutive failures 0, timeout back to the policy's. Counts stay. */
void supervisor_reset(Supervisor *s, const SupervisionPolicy *p, usec_t now);
/* Restarts within [now - storm_window, now]. */
unsigned supervisor_restarts_in_window(const Supervisor *s, const SupervisionPolicy *p, usec_t now);

int supervisor_to_json(const Supervisor *s, json_object **ret);
/* Tolerant: missing fields keep their init values; wrong types are -EINVAL. */
int supervisor_from_json(json_object *o, const SupervisionPolicy *p, Supervisor *ret);
