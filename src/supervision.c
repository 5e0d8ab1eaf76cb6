/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Supervision policy of one pool: why an engine died, how long to wait before restarting it,
 * and when to stop restarting it. Pure functions over a Supervisor struct: the caller passes the
 * time and a random number and acts on the SupervisionDecision, so every rule can be tested
 * with a synthetic timeline and the state can be saved as JSON and restored after a daemon
 * restart (times are CLOCK_REALTIME µs for that reason).
 *
 * The circuit breaker guards against a pool that cannot stay up: closed (restarts allowed)
 * -> open after breaker_threshold crashes in a row or storm_limit restarts within
 * storm_window (no restarts) -> half-open after circuit_timeout (exactly one trial restart)
 * -> closed after the trial ran breaker_close_after, or open again with twice the timeout if
 * the trial crashes. A threshold or limit of 0 disables that rule.
 */

#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

#include "shared/json-util.h"
#include "supervision.h"
#include "shared/string-table.h"

/* The largest time or duration we store: it survives the JSON round trip (int64, and the two
 * extreme int64 values are refused there because json-c clamps overflowing numbers to them). */
#define USEC_STORABLE_MAX ((usec_t) INT64_MAX - 1)

/* The jitter factor is (JITTER_ONE + off) / JITTER_ONE, off in [-J*1000, J*1000]. */
#define JITTER_ONE 100000ULL
#define JITTER_PERCENT_MAX 100U

static const char *const crash_reason_table[_CRASH_REASON_MAX] = {
        [CRASH_EXIT_CODE] = "exit_code",
        [CRASH_SIGNAL] = "signal",
        [CRASH_OUT_OF_MEMORY] = "out_of_memory",
        [CRASH_CUDA_ERROR] = "cuda_error",
        [CRASH_HEALTH_FAILURE] = "health_failure",
        [CRASH_CLEAN_EXIT] = "clean_exit",
};

DEFINE_STRING_TABLE_LOOKUP(crash_reason, CrashReason);

static const char *const circuit_state_table[_CIRCUIT_STATE_MAX] = {
        [CIRCUIT_CLOSED] = "closed",
        [CIRCUIT_OPEN] = "open",
        [CIRCUIT_HALF_OPEN] = "half-open",
};

DEFINE_STRING_TABLE_LOOKUP(circuit_state, CircuitState);

/* ---- Crash classification ---- */

typedef enum PatternFlags {
        WORD_START = 1 << 0,    /* the match must not follow a letter, digit or '_' */
        WORD_END   = 1 << 1,    /* ... nor be followed by one */
        WORD       = WORD_START | WORD_END,
} PatternFlags;

typedef struct LogPattern {
        const char *needle;     /* matched case-insensitively */
        PatternFlags flags;
} LogPattern;

/* Host and device (VRAM) memory exhaustion. "CUDA out of memory" (PyTorch), "cudaMalloc failed:
 * out of memory" (llama.cpp) and "CUDA error: out of memory" all land here, before the CUDA
 * patterns: a model that does not fit is not a broken GPU. */
static const LogPattern oom_patterns[] = {
        { "out of memory" },
        { "OutOfMemory" },                      /* torch.OutOfMemoryError, java.lang.OutOfMemoryError */
        { "CUDA_ERROR_OUT_OF_MEMORY" },
        { "cudaErrorMemoryAllocation", WORD },
        { "std::bad_alloc" },
};

/* The GPU, its driver or the CUDA runtime failed. Short tokens must stand alone as words, so
 * that "Xid" does not match in "oxidation". */
static const LogPattern cuda_patterns[] = {
        { "CUDA error" },
        { "NVRM", WORD },                       /* the kernel driver's messages */
        { "Xid", WORD },                        /* "NVRM: Xid (PCI:0000:01:00): 79, ..." */
        { "cudaError", WORD_START },            /* cudaErrorDevicesUnavailable, cudaErrorNoDevice, ... */
        { "CUDA_ERROR_", WORD_START },          /* driver API: CUDA_ERROR_NO_DEVICE, ... */
        { "no CUDA-capable device" },
        { "driver version is insufficient" },
        { "uncorrectable ECC error" },
        { "fallen off the bus" },
};

static bool is_word_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool line_matches(const char *line, const LogPattern *pat) {
        size_t n = strlen(pat->needle);

        for (const char *p = line; (p = strcasestr(p, pat->needle)); p++) {
                if ((pat->flags & WORD_START) && p > line && is_word_char(p[-1]))
                        continue;
                if ((pat->flags & WORD_END) && is_word_char(p[n]))
                        continue;
                return true;
        }
        return false;
}

static bool log_matches(char **lines, const LogPattern *patterns, size_t n_patterns) {
        size_t n = 0, first;

        if (!lines)
                return false;

        while (lines[n])
                n++;
        first = n > CRASH_LOG_LINES_MAX ? n - CRASH_LOG_LINES_MAX : 0;

        for (size_t i = first; i < n; i++)
                for (size_t j = 0; j < n_patterns; j++)
                        if (line_matches(lines[i], &patterns[j]))
                                return true;
        return false;
}

CrashReason crash_classify(const CrashFacts *f) {
        if (f->health_failure)
                return CRASH_HEALTH_FAILURE;

        if (streq_ptr(f->result, "oom-kill") ||
            log_matches(f->log_lines, oom_patterns, ELEMENTSOF(oom_patterns)))
                return CRASH_OUT_OF_MEMORY;

        if (log_matches(f->log_lines, cuda_patterns, ELEMENTSOF(cuda_patterns)))
                return CRASH_CUDA_ERROR;

        if (f->exec_main_code == CLD_KILLED || f->exec_main_code == CLD_DUMPED ||
            streq_ptr(f->result, "signal") || streq_ptr(f->result, "core-dump"))
                return CRASH_SIGNAL;

        /* Status 0 (an engine that handled SIGTERM from outside ends this way too): clean, but
         * unrequested, so a crash of its own class. */
        if (f->exec_main_code == CLD_EXITED && f->exec_main_status == 0 &&
            (!f->result || streq(f->result, "success")))
                return CRASH_CLEAN_EXIT;

        return CRASH_EXIT_CODE;
}

/* ---- Backoff ---- */

void supervision_policy_init(SupervisionPolicy *p) {
        *p = (SupervisionPolicy) {
                .backoff_initial = 1 * USEC_PER_SEC,
                .backoff_max = 60 * USEC_PER_SEC,
                .backoff_min = 500 * USEC_PER_MSEC,
                .jitter_percent = 10,
                .cuda_factor = 2,
                .stable_after = 300 * USEC_PER_SEC,
                .breaker_threshold = 5,
                .breaker_timeout = 300 * USEC_PER_SEC,
                .breaker_close_after = 60 * USEC_PER_SEC,
                .storm_window = 60 * USEC_PER_SEC,
                .storm_warn = 5,
                .storm_limit = 10,
                .liveness_interval = 5 * USEC_PER_SEC,
                .liveness_failures = 3,
        };
}

static usec_t usec_add(usec_t a, usec_t b) {
        return a > USEC_INFINITY - b ? USEC_INFINITY : a + b;
}

static usec_t usec_mul(usec_t a, uint64_t k) {
        return k != 0 && a > USEC_INFINITY / k ? USEC_INFINITY : a * k;
}

static unsigned jitter_percent(const SupervisionPolicy *p) {
        return MIN(p->jitter_percent, JITTER_PERCENT_MAX);
}

uint64_t supervision_random_no_jitter(const SupervisionPolicy *p) {
        return (uint64_t) jitter_percent(p) * 1000;
}

static usec_t apply_jitter(usec_t d, unsigned j, uint64_t random_u64) {
        uint64_t span = (uint64_t) j * 1000, mult;

        mult = JITTER_ONE - span + random_u64 % (2 * span + 1);    /* in [1 - J%, 1 + J%] * JITTER_ONE */

        /* mult <= 2 * JITTER_ONE: divide first only where multiplying first would overflow. */
        if (d > UINT64_MAX / (2 * JITTER_ONE))
                return d / JITTER_ONE * mult;
        return d * mult / JITTER_ONE;
}

usec_t supervision_backoff(const SupervisionPolicy *p, unsigned consecutive, CrashReason reason,
                           uint64_t random_u64) {
        usec_t d = p->backoff_initial;

        /* Doubling stops at the cap, so a huge consecutive count costs nothing. */
        for (unsigned i = 1; i < consecutive && d < p->backoff_max; i++)
                d = usec_mul(d, 2);
        d = MIN(d, p->backoff_max);

        if (reason == CRASH_CUDA_ERROR)
                d = usec_mul(d, p->cuda_factor);

        d = apply_jitter(d, jitter_percent(p), random_u64);

        /* The floor wins over the cap should a policy set them the wrong way round. */
        return MAX(MIN(d, p->backoff_max), p->backoff_min);
}

/* ---- The supervisor ---- */

void supervisor_init(Supervisor *s, const SupervisionPolicy *p) {
        *s = (Supervisor) {
                .circuit = CIRCUIT_CLOSED,
                .circuit_timeout = MIN(p->breaker_timeout, USEC_STORABLE_MAX),
                .last_reason = _CRASH_REASON_INVALID,
        };
}

unsigned supervisor_restarts_in_window(const Supervisor *s, const SupervisionPolicy *p, usec_t now) {
        usec_t since = now > p->storm_window ? now - p->storm_window : 0;
        unsigned n = 0;

        /* Not relying on the order: the realtime clock may have been set back in between. */
        for (size_t i = 0; i < s->n_restarts; i++)
                if (s->restarts[i] >= since && s->restarts[i] <= now)
                        n++;
        return n;
}

static void circuit_set(Supervisor *s, CircuitState state, usec_t now) {
        if (s->circuit == state)
                return;
        s->circuit = state;
        s->circuit_changed_at = now;
}

static void circuit_close(Supervisor *s, const SupervisionPolicy *p, usec_t now) {
        circuit_set(s, CIRCUIT_CLOSED, now);
        s->consecutive_failures = 0;
        /* A pool that proved itself starts over: the next opening waits the configured time. */
        s->circuit_timeout = MIN(p->breaker_timeout, USEC_STORABLE_MAX);
}

/* The half-open trial has run long enough to trust the engine again. */
static bool half_open_passed(const Supervisor *s, const SupervisionPolicy *p, usec_t now) {
        return s->circuit == CIRCUIT_HALF_OPEN && s->running_since > 0 &&
                now >= usec_add(s->running_since, p->breaker_close_after);
}

static void circuit_open(Supervisor *s, usec_t now, SupervisionDecision *ret) {
        circuit_set(s, CIRCUIT_OPEN, now);
        if (s->circuit_opens < UINT_MAX)
                s->circuit_opens++;
        ret->circuit_opened = true;
}

void supervisor_on_crash(Supervisor *s, const SupervisionPolicy *p, CrashReason reason, usec_t now,
                         uint64_t random_u64, SupervisionDecision *ret) {
        unsigned in_window;

        *ret = (SupervisionDecision) {};

        /* A half-open trial that outlived breaker_close_after closed the circuit, even if the
         * timer that would have told us fired late. */
        if (half_open_passed(s, p, now))
                circuit_close(s, p, now);

        if (s->running_since > 0 && now >= usec_add(s->running_since, p->stable_after))
                s->consecutive_failures = 0;

        if (s->crash_count < UINT_MAX)
                s->crash_count++;
        if (reason >= 0 && reason < _CRASH_REASON_MAX && s->crashes_by_reason[reason] < UINT_MAX)
                s->crashes_by_reason[reason]++;
        if (s->consecutive_failures < UINT_MAX)
                s->consecutive_failures++;
        s->last_reason = reason;
        s->running_since = 0;
        s->next_restart_at = 0;

        in_window = supervisor_restarts_in_window(s, p, now);
        ret->restarts_in_window = in_window;
        ret->storm_warning = in_window > p->storm_warn;

        switch (s->circuit) {

        case CIRCUIT_HALF_OPEN:
                /* The trial failed: back off for twice as long before the next one. */
                s->circuit_timeout = MIN(usec_mul(s->circuit_timeout, 2), USEC_STORABLE_MAX);
                circuit_open(s, now, ret);
                return;

        case CIRCUIT_OPEN:
                /* Not ours to restart (a manual start, or state restored from disk). */
                return;

        default:
                break;
        }

        ret->storm = p->storm_limit > 0 && in_window >= p->storm_limit;
        if (ret->storm && s->storms < UINT_MAX)
                s->storms++;
        if (ret->storm || (p->breaker_threshold > 0 && s->consecutive_failures >= p->breaker_threshold)) {
                circuit_open(s, now, ret);
                return;
        }

        ret->restart = true;
        ret->delay = supervision_backoff(p, s->consecutive_failures, reason, random_u64);
        s->last_backoff = ret->delay;
        s->next_restart_at = MIN(usec_add(now, ret->delay), USEC_STORABLE_MAX);
}

void supervisor_on_restart(Supervisor *s, const SupervisionPolicy *p, usec_t now) {
        if (s->restart_count < UINT_MAX)
                s->restart_count++;
        if (s->last_reason >= 0 && s->restarts_by_reason[s->last_reason] < UINT_MAX)
                s->restarts_by_reason[s->last_reason]++;

        if (s->n_restarts >= SUPERVISOR_HISTORY_MAX) {
                /* Full: drop the oldest. 64 entries outnumber any sensible storm_limit. */
                memmove(s->restarts, s->restarts + 1, (SUPERVISOR_HISTORY_MAX - 1) * sizeof(s->restarts[0]));
                s->n_restarts = SUPERVISOR_HISTORY_MAX - 1;
        }
        s->restarts[s->n_restarts++] = now;

        s->running_since = 0;
        s->next_restart_at = 0;
}

void supervisor_on_ready(Supervisor *s, const SupervisionPolicy *p, usec_t now) {
        s->running_since = now;
}

bool supervisor_tick(Supervisor *s, const SupervisionPolicy *p, usec_t now) {
        switch (s->circuit) {

        case CIRCUIT_OPEN:
                if (now < usec_add(s->circuit_changed_at, s->circuit_timeout))
                        return false;
                circuit_set(s, CIRCUIT_HALF_OPEN, now);
                return true;

        case CIRCUIT_HALF_OPEN:
                if (half_open_passed(s, p, now))
                        circuit_close(s, p, now);
                return false;

        default:
                return false;
        }
}

usec_t supervisor_next_tick(const Supervisor *s, const SupervisionPolicy *p) {
        switch (s->circuit) {

        case CIRCUIT_OPEN:
                return usec_add(s->circuit_changed_at, s->circuit_timeout);

        case CIRCUIT_HALF_OPEN:
                /* Nothing to wait for until the trial engine is ready. */
                if (s->running_since == 0)
                        return USEC_INFINITY;
                return usec_add(s->running_since, p->breaker_close_after);

        default:
                return USEC_INFINITY;
        }
}

void supervisor_reset(Supervisor *s, const SupervisionPolicy *p, usec_t now) {
        /* crash_count, restart_count and the restart history stay: the storm window still sees
         * the restarts made before the reset. */
        circuit_close(s, p, now);
}

/* ---- JSON ---- */

typedef enum FieldType {
        FIELD_UNSIGNED,
        FIELD_USEC,
} FieldType;

typedef struct SupervisorField {
        const char *name;
        FieldType type;
        size_t offset;
} SupervisorField;

/* The scalar fields; circuit, last_reason and restarts are handled on their own. */
static const SupervisorField supervisor_fields[] = {
        { "crash_count",          FIELD_UNSIGNED, offsetof(Supervisor, crash_count)          },
        { "restart_count",        FIELD_UNSIGNED, offsetof(Supervisor, restart_count)        },
        { "circuit_opens",        FIELD_UNSIGNED, offsetof(Supervisor, circuit_opens)        },
        { "storms",               FIELD_UNSIGNED, offsetof(Supervisor, storms)               },
        { "consecutive_failures", FIELD_UNSIGNED, offsetof(Supervisor, consecutive_failures) },
        { "circuit_changed_at",   FIELD_USEC,     offsetof(Supervisor, circuit_changed_at)   },
        { "circuit_timeout",      FIELD_USEC,     offsetof(Supervisor, circuit_timeout)      },
        { "running_since",        FIELD_USEC,     offsetof(Supervisor, running_since)        },
        { "last_backoff",         FIELD_USEC,     offsetof(Supervisor, last_backoff)         },
        { "next_restart_at",      FIELD_USEC,     offsetof(Supervisor, next_restart_at)      },
};

static int json_add_new(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

static int json_new_usec(usec_t u, json_object **ret) {
        /* USEC_INFINITY and friends have no int64 form: refuse rather than write a wrong time. */
        if (u > USEC_STORABLE_MAX)
                return -ERANGE;
        *ret = json_object_new_int64((int64_t) u);
        return *ret ? 0 : -ENOMEM;
}

/* {"signal": 3, ...}: the reasons that occurred. */
static int by_reason_to_json(json_object *o, const char *key, const unsigned counts[static _CRASH_REASON_MAX]) {
        _cleanup_json_ json_object *m = NULL;
        int r;

        m = json_object_new_object();
        if (!m)
                return -ENOMEM;
        for (CrashReason i = 0; i < _CRASH_REASON_MAX; i++) {
                if (counts[i] == 0)
                        continue;
                r = json_add_new(m, crash_reason_to_string(i), json_object_new_int64(counts[i]));
                if (r < 0)
                        return r;
        }
        return json_add_new(o, key, TAKE_PTR(m));
}

int supervisor_to_json(const Supervisor *s, json_object **ret) {
        _cleanup_json_ json_object *o = NULL, *restarts = NULL;
        const char *circuit, *reason;
        int r;

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;

        for (size_t i = 0; i < ELEMENTSOF(supervisor_fields); i++) {
                const SupervisorField *f = &supervisor_fields[i];
                const void *field = (const uint8_t *) s + f->offset;
                json_object *v;

                if (f->type == FIELD_UNSIGNED)
                        v = json_object_new_int64(*(const unsigned *) field);
                else {
                        r = json_new_usec(*(const usec_t *) field, &v);
                        if (r < 0)
                                return r;
                }
                r = json_add_new(o, f->name, v);
                if (r < 0)
                        return r;
        }

        circuit = circuit_state_to_string(s->circuit);
        if (!circuit)
                return -EINVAL;
        r = json_add_new(o, "circuit", json_object_new_string(circuit));
        if (r < 0)
                return r;

        /* null before the first crash. */
        reason = crash_reason_to_string(s->last_reason);
        if (reason)
                r = json_add_new(o, "last_reason", json_object_new_string(reason));
        else
                r = json_object_object_add(o, "last_reason", NULL) < 0 ? -ENOMEM : 0;
        if (r < 0)
                return r;

        restarts = json_object_new_array_ext((int) SUPERVISOR_HISTORY_MAX);
        if (!restarts)
                return -ENOMEM;
        for (size_t i = 0; i < MIN(s->n_restarts, (size_t) SUPERVISOR_HISTORY_MAX); i++) {
                json_object *v;

                r = json_new_usec(s->restarts[i], &v);
                if (r < 0)
                        return r;
                if (json_object_array_add(restarts, v) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }
        r = json_add_new(o, "restarts", TAKE_PTR(restarts));
        if (r < 0)
                return r;

        r = by_reason_to_json(o, "crashes_by_reason", s->crashes_by_reason);
        if (r < 0)
                return r;
        r = by_reason_to_json(o, "restarts_by_reason", s->restarts_by_reason);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(o);
        return 0;
}

/* An integer in [0, max]; json-c clamps out-of-range numbers to INT64_MIN/INT64_MAX, so those
 * are refused too. */
static int json_get_uint(json_object *v, uint64_t max, uint64_t *ret) {
        int64_t i;

        if (!json_object_is_type(v, json_type_int))
                return -EINVAL;
        i = json_object_get_int64(v);
        if (i < 0 || i == INT64_MAX || (uint64_t) i > max)
                return -EINVAL;
        *ret = (uint64_t) i;
        return 0;
}

/* Missing: zeros (a state file of an older version); a reason this version does not know is
 * skipped (one of a newer version); anything but an object of counts is -EINVAL. */
static int by_reason_from_json(json_object *o, const char *key, unsigned counts[static _CRASH_REASON_MAX]) {
        json_object *m;
        uint64_t u;
        int r;

        if (!json_object_object_get_ex(o, key, &m))
                return 0;
        if (!json_object_is_type(m, json_type_object))
                return -EINVAL;
        json_object_object_foreach(m, name, v) {
                CrashReason reason;

                r = json_get_uint(v, UINT_MAX, &u);
                if (r < 0)
                        return r;
                reason = crash_reason_from_string(name);
                if (reason >= 0)
                        counts[reason] = (unsigned) u;
        }
        return 0;
}

int supervisor_from_json(json_object *o, const SupervisionPolicy *p, Supervisor *ret) {
        Supervisor s;
        json_object *v;
        uint64_t u;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return -EINVAL;

        /* Fill a copy, so that *ret is left alone on failure. */
        supervisor_init(&s, p);

        for (size_t i = 0; i < ELEMENTSOF(supervisor_fields); i++) {
                const SupervisorField *f = &supervisor_fields[i];
                void *field = (uint8_t *) &s + f->offset;

                if (!json_object_object_get_ex(o, f->name, &v))
                        continue;
                r = json_get_uint(v, f->type == FIELD_UNSIGNED ? UINT_MAX : USEC_STORABLE_MAX, &u);
                if (r < 0)
                        return r;
                if (f->type == FIELD_UNSIGNED)
                        *(unsigned *) field = (unsigned) u;
                else
                        *(usec_t *) field = u;
        }

        if (json_object_object_get_ex(o, "circuit", &v)) {
                if (!json_object_is_type(v, json_type_string))
                        return -EINVAL;
                s.circuit = circuit_state_from_string(json_object_get_string(v));
                if (s.circuit < 0)
                        return -EINVAL;
        }

        /* JSON null (json-c's NULL) is "no crash yet", as written by supervisor_to_json(). */
        if (json_object_object_get_ex(o, "last_reason", &v) && v) {
                if (!json_object_is_type(v, json_type_string))
                        return -EINVAL;
                s.last_reason = crash_reason_from_string(json_object_get_string(v));
                if (s.last_reason < 0)
                        return -EINVAL;
        }

        r = by_reason_from_json(o, "crashes_by_reason", s.crashes_by_reason);
        if (r < 0)
                return r;
        r = by_reason_from_json(o, "restarts_by_reason", s.restarts_by_reason);
        if (r < 0)
                return r;

        if (json_object_object_get_ex(o, "restarts", &v)) {
                size_t n, first;

                if (!json_object_is_type(v, json_type_array))
                        return -EINVAL;

                /* Longer than we write: keep the newest, as supervisor_on_restart() would. */
                n = json_object_array_length(v);
                first = n > SUPERVISOR_HISTORY_MAX ? n - SUPERVISOR_HISTORY_MAX : 0;
                for (size_t i = 0; i < n; i++) {
                        r = json_get_uint(json_object_array_get_idx(v, i), USEC_STORABLE_MAX, &u);
                        if (r < 0)
                                return r;
                        if (i >= first)
                                s.restarts[s.n_restarts++] = u;
                }
        }

        *ret = s;
        return 0;
}
