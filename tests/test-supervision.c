/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Unit tests of the supervision policy: crash classification, backoff, circuit breaker and
 * restart-storm limiter, on synthetic timelines. Comments name the predecessor's Gherkin
 * scenarios (bin/pool-managerd/bdd/tests/features/supervision/<feature>: "<scenario>") that a
 * test carries over.
 */

#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

#include "shared/json-util.h"
#include "supervision.h"
#include "test-util.h"

#define S USEC_PER_SEC
#define MS USEC_PER_MSEC

/* A realistic CLOCK_REALTIME: 2023-11-14. */
#define T0 ((usec_t) 1700000000 * USEC_PER_SEC)

static SupervisionPolicy policy(void) {
        SupervisionPolicy p;

        supervision_policy_init(&p);
        return p;
}

static Supervisor supervisor(const SupervisionPolicy *p) {
        Supervisor s;

        supervisor_init(&s, p);
        return s;
}

/* A crash with the jitter factor exactly 1. */
static SupervisionDecision crash(Supervisor *s, const SupervisionPolicy *p, CrashReason reason, usec_t now) {
        SupervisionDecision d;

        supervisor_on_crash(s, p, reason, now, supervision_random_no_jitter(p), &d);
        return d;
}

/* splitmix64: a fixed, well-spread sequence of "random" numbers. */
static uint64_t next_random(uint64_t *state) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

static CrashReason classify_lines(char **lines) {
        return crash_classify(&(CrashFacts) {
                .result = "exit-code",
                .exec_main_code = CLD_EXITED,
                .exec_main_status = 1,
                .log_lines = lines,
        });
}

/* ---- Strings ---- */

TEST(crash_reason_strings_round_trip) {
        ASSERT_STREQ(crash_reason_to_string(CRASH_EXIT_CODE), "exit_code");
        ASSERT_STREQ(crash_reason_to_string(CRASH_SIGNAL), "signal");
        ASSERT_STREQ(crash_reason_to_string(CRASH_OUT_OF_MEMORY), "out_of_memory");
        ASSERT_STREQ(crash_reason_to_string(CRASH_CUDA_ERROR), "cuda_error");
        ASSERT_STREQ(crash_reason_to_string(CRASH_HEALTH_FAILURE), "health_failure");
        for (CrashReason r = 0; r < _CRASH_REASON_MAX; r++)
                ASSERT_EQ(crash_reason_from_string(crash_reason_to_string(r)), r);

        ASSERT_NULL(crash_reason_to_string(_CRASH_REASON_INVALID));
        ASSERT_NULL(crash_reason_to_string(_CRASH_REASON_MAX));
        ASSERT_EQ(crash_reason_from_string(NULL), _CRASH_REASON_INVALID);
        ASSERT_EQ(crash_reason_from_string(""), _CRASH_REASON_INVALID);
        ASSERT_EQ(crash_reason_from_string("Signal"), _CRASH_REASON_INVALID);
        ASSERT_EQ(crash_reason_from_string("exit-code"), _CRASH_REASON_INVALID);
}

TEST(circuit_state_strings_round_trip) {
        ASSERT_STREQ(circuit_state_to_string(CIRCUIT_CLOSED), "closed");
        ASSERT_STREQ(circuit_state_to_string(CIRCUIT_OPEN), "open");
        ASSERT_STREQ(circuit_state_to_string(CIRCUIT_HALF_OPEN), "half-open");
        for (CircuitState c = 0; c < _CIRCUIT_STATE_MAX; c++)
                ASSERT_EQ(circuit_state_from_string(circuit_state_to_string(c)), c);

        ASSERT_NULL(circuit_state_to_string(_CIRCUIT_STATE_INVALID));
        ASSERT_NULL(circuit_state_to_string(_CIRCUIT_STATE_MAX));
        ASSERT_EQ(circuit_state_from_string(NULL), _CIRCUIT_STATE_INVALID);
        ASSERT_EQ(circuit_state_from_string("half_open"), _CIRCUIT_STATE_INVALID);
}

/* ---- Classification ---- */

/* crash_detection: "exit code captured" */
TEST(classify_nonzero_exit_is_exit_code) {
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "exit-code", .exec_main_code = CLD_EXITED,
                                                 .exec_main_status = 1 }), CRASH_EXIT_CODE);
        ASSERT_EQ(crash_classify(&(CrashFacts) { .exec_main_code = CLD_EXITED, .exec_main_status = 137 }),
                  CRASH_EXIT_CODE);
        /* Other unit results with a normal exit fall back on the exit code. */
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "timeout", .exec_main_code = CLD_EXITED,
                                                 .exec_main_status = 2 }), CRASH_EXIT_CODE);
}

/* crash_detection: "SIGSEGV" */
TEST(classify_killed_by_signal_is_signal) {
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "core-dump", .exec_main_code = CLD_DUMPED,
                                                 .exec_main_status = SIGSEGV }), CRASH_SIGNAL);
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "signal", .exec_main_code = CLD_KILLED,
                                                 .exec_main_status = SIGKILL }), CRASH_SIGNAL);
        /* Either source is enough: no Result= known, or no exec code known. */
        ASSERT_EQ(crash_classify(&(CrashFacts) { .exec_main_code = CLD_KILLED, .exec_main_status = SIGBUS }),
                  CRASH_SIGNAL);
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "signal" }), CRASH_SIGNAL);
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "core-dump" }), CRASH_SIGNAL);
}

/* crash_detection: "OOM → out_of_memory" */
TEST(classify_oom_kill_result_is_out_of_memory) {
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "oom-kill", .exec_main_code = CLD_KILLED,
                                                 .exec_main_status = SIGKILL }), CRASH_OUT_OF_MEMORY);
}

TEST(classify_out_of_memory_in_log_case_insensitive) {
        char *torch[] = { "loading model",
                          "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", NULL };
        char *ggml[] = { "ggml_backend_cuda_buffer_type_alloc_buffer: allocating 8192.00 MiB on device 0: "
                         "cudaMalloc failed: out of memory", NULL };
        char *upper[] = { "FATAL: OUT OF MEMORY", NULL };
        char *oom_class[] = { "java.lang.outofmemoryerror", NULL };
        char *driver[] = { "cuMemAlloc returned CUDA_ERROR_OUT_OF_MEMORY", NULL };
        char *runtime[] = { "status cudaErrorMemoryAllocation", NULL };
        char *bad_alloc[] = { "terminate called after throwing an instance of 'std::bad_alloc'", NULL };

        ASSERT_EQ(classify_lines(torch), CRASH_OUT_OF_MEMORY);
        ASSERT_EQ(classify_lines(ggml), CRASH_OUT_OF_MEMORY);
        ASSERT_EQ(classify_lines(upper), CRASH_OUT_OF_MEMORY);
        ASSERT_EQ(classify_lines(oom_class), CRASH_OUT_OF_MEMORY);
        ASSERT_EQ(classify_lines(driver), CRASH_OUT_OF_MEMORY);
        ASSERT_EQ(classify_lines(runtime), CRASH_OUT_OF_MEMORY);
        ASSERT_EQ(classify_lines(bad_alloc), CRASH_OUT_OF_MEMORY);
}

/* crash_detection: "\"CUDA error\" in logs" */
TEST(classify_cuda_and_driver_errors_in_log_case_insensitive) {
        static const char *const lines[] = {
                "CUDA error: an illegal memory access was encountered",
                "cuda ERROR 700 at ggml-cuda.cu:1234",
                "NVRM: Xid (PCI:0000:01:00): 79, pid=1234, GPU has fallen off the bus.",
                "[  123.456] nvrm: GPU at PCI:0000:01:00: GPU-1234",
                "NVRM: xid (PCI:0000:3b:00): 48, pid='<unknown>', An uncorrectable double bit error",
                "cudaGetDeviceCount failed: cudaErrorDevicesUnavailable",
                "error: CUDAERRORNODEVICE",
                "cuInit failed: CUDA_ERROR_NO_DEVICE",
                "ggml_cuda_init: failed to initialize CUDA: no CUDA-capable device is detected",
                "CUDA driver version is insufficient for CUDA runtime version",
                "uncorrectable ECC error encountered",
                "Unable to determine the device handle for GPU0000:01:00.0: GPU has fallen off the bus.",
        };

        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                char *l[] = { "llama server listening", (char *) lines[i], NULL };

                fprintf(stderr, "  %s\n", lines[i]);
                ASSERT_EQ(classify_lines(l), CRASH_CUDA_ERROR);
        }
}

/* Short driver tokens match whole words only: no CUDA error hidden in ordinary words. */
TEST(classify_driver_tokens_need_word_boundaries) {
        static const char *const lines[] = {
                "oxidation of the prompt cache",
                "hexid=12 xidle=3",
                "NVRMX not a driver line",
                "mynvrm token",
                "precudaErrorish",
                "cuda_errors=0 in the last hour",
        };

        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                char *l[] = { (char *) lines[i], NULL };

                fprintf(stderr, "  %s\n", lines[i]);
                ASSERT_EQ(classify_lines(l), CRASH_EXIT_CODE);
        }
}

/* Precedence: health_failure > out_of_memory > cuda_error > signal > exit_code. */
TEST(classify_precedence) {
        char *cuda[] = { "CUDA error: unspecified launch failure", NULL };
        char *both[] = { "CUDA error: misaligned address", "later: cudaMalloc failed: out of memory", NULL };
        char *cuda_oom[] = { "CUDA error: out of memory", NULL };
        char *plain[] = { "bye", NULL };

        /* health_failure first: we stopped it, whatever it printed or how it died. */
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "oom-kill", .exec_main_code = CLD_KILLED,
                                                 .exec_main_status = SIGKILL, .log_lines = both,
                                                 .health_failure = true }), CRASH_HEALTH_FAILURE);
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "success", .exec_main_code = CLD_EXITED,
                                                 .health_failure = true }), CRASH_HEALTH_FAILURE);

        /* out_of_memory over cuda_error, from the result or the log. */
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "oom-kill", .exec_main_code = CLD_KILLED,
                                                 .exec_main_status = SIGKILL, .log_lines = cuda }),
                  CRASH_OUT_OF_MEMORY);
        ASSERT_EQ(classify_lines(both), CRASH_OUT_OF_MEMORY);
        ASSERT_EQ(classify_lines(cuda_oom), CRASH_OUT_OF_MEMORY);

        /* cuda_error over signal: llama.cpp aborts (SIGABRT) on a CUDA error. */
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "core-dump", .exec_main_code = CLD_DUMPED,
                                                 .exec_main_status = SIGABRT, .log_lines = cuda }),
                  CRASH_CUDA_ERROR);

        /* signal over exit_code. */
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "signal", .exec_main_code = CLD_KILLED,
                                                 .exec_main_status = SIGSEGV, .log_lines = plain }),
                  CRASH_SIGNAL);
        ASSERT_EQ(classify_lines(plain), CRASH_EXIT_CODE);
        ASSERT_EQ(classify_lines(NULL), CRASH_EXIT_CODE);
}

/* Only the last CRASH_LOG_LINES_MAX lines count: an error the engine survived long ago does not. */
TEST(classify_reads_last_log_lines_only) {
        char *lines[CRASH_LOG_LINES_MAX + 6] = {};
        size_t n = CRASH_LOG_LINES_MAX + 5;

        for (size_t i = 0; i < n; i++)
                lines[i] = "slot 0: prompt processed";

        /* Just outside the last CRASH_LOG_LINES_MAX lines: ignored. */
        lines[n - CRASH_LOG_LINES_MAX - 1] = "CUDA error: an illegal memory access was encountered";
        ASSERT_EQ(classify_lines(lines), CRASH_EXIT_CODE);
        lines[0] = "cudaMalloc failed: out of memory";
        ASSERT_EQ(classify_lines(lines), CRASH_EXIT_CODE);

        /* The oldest line still looked at. */
        lines[n - CRASH_LOG_LINES_MAX] = "NVRM: Xid (PCI:0000:01:00): 31";
        ASSERT_EQ(classify_lines(lines), CRASH_CUDA_ERROR);

        /* Fewer lines than the limit: all of them. */
        {
                char *few[] = { "CUDA out of memory", "a", "b", NULL };

                ASSERT_EQ(classify_lines(few), CRASH_OUT_OF_MEMORY);
        }
}

/* issue 16: every end the daemon did not ask for is a crash; a clean one has its own class. */
TEST(clean_exit_is_a_crash_of_its_own) {
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "success", .exec_main_code = CLD_EXITED }),
                  CRASH_CLEAN_EXIT);
        ASSERT_EQ(crash_classify(&(CrashFacts) { .exec_main_code = CLD_EXITED }), CRASH_CLEAN_EXIT);
        /* SIGTERM from outside, not handled: systemd's Result= is "success", but a signal. */
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "success", .exec_main_code = CLD_KILLED,
                                                 .exec_main_status = SIGTERM }), CRASH_SIGNAL);
        /* Status 0 but systemd saw a failure (a watchdog, a timeout): not clean. */
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "watchdog", .exec_main_code = CLD_EXITED }),
                  CRASH_EXIT_CODE);
        ASSERT_EQ(crash_classify(&(CrashFacts) { .result = "exit-code", .exec_main_code = CLD_EXITED,
                                                 .exec_main_status = 1 }), CRASH_EXIT_CODE);
        ASSERT_STREQ(crash_reason_to_string(CRASH_CLEAN_EXIT), "clean_exit");
        ASSERT_EQ(crash_reason_from_string("clean_exit"), CRASH_CLEAN_EXIT);
}

/* ---- Backoff ---- */

TEST(policy_defaults) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p);

        ASSERT_EQ(p.backoff_initial, 1000 * MS);
        ASSERT_EQ(p.backoff_max, 60000 * MS);
        ASSERT_EQ(p.backoff_min, 500 * MS);
        ASSERT_EQ(p.jitter_percent, 10);
        ASSERT_EQ(p.cuda_factor, 2);
        ASSERT_EQ(p.stable_after, 300 * S);
        ASSERT_EQ(p.breaker_threshold, 5);
        ASSERT_EQ(p.breaker_timeout, 300 * S);
        ASSERT_EQ(p.breaker_close_after, 60 * S);
        ASSERT_EQ(p.storm_window, 60 * S);
        ASSERT_EQ(p.storm_warn, 5);
        ASSERT_EQ(p.storm_limit, 10);
        ASSERT_EQ(p.liveness_interval, 5 * S);
        ASSERT_EQ(p.liveness_failures, 3);

        ASSERT_EQ(s.crash_count, 0);
        ASSERT_EQ(s.restart_count, 0);
        ASSERT_EQ(s.consecutive_failures, 0);
        ASSERT_EQ(s.circuit, CIRCUIT_CLOSED);
        ASSERT_EQ(s.circuit_changed_at, 0);
        ASSERT_EQ(s.circuit_timeout, 300 * S);
        ASSERT_EQ(s.running_since, 0);
        ASSERT_EQ(s.last_backoff, 0);
        ASSERT_EQ(s.next_restart_at, 0);
        ASSERT_EQ(s.last_reason, _CRASH_REASON_INVALID);
        ASSERT_EQ(s.n_restarts, 0);
        ASSERT_EQ(supervisor_next_tick(&s, &p), USEC_INFINITY);
}

/* The documented mapping of random_u64 onto the jitter factor, at J = 10. */
TEST(jitter_mapping) {
        SupervisionPolicy p = policy();

        ASSERT_EQ(supervision_random_no_jitter(&p), 10000);
        ASSERT_EQ(supervision_backoff(&p, 1, CRASH_EXIT_CODE, 10000), 1000 * MS);     /* factor 1 */
        ASSERT_EQ(supervision_backoff(&p, 1, CRASH_EXIT_CODE, 0), 900 * MS);          /* 1 - 10 % */
        ASSERT_EQ(supervision_backoff(&p, 1, CRASH_EXIT_CODE, 20000), 1100 * MS);     /* 1 + 10 % */
        ASSERT_EQ(supervision_backoff(&p, 1, CRASH_EXIT_CODE, 20001), 900 * MS);      /* wraps */
        ASSERT_EQ(supervision_backoff(&p, 1, CRASH_EXIT_CODE, 15000), 1050 * MS);     /* steps of 0.001 % */
        ASSERT_EQ(supervision_backoff(&p, 1, CRASH_EXIT_CODE, 10001), 1000 * MS + 10);
        ASSERT_EQ(supervision_backoff(&p, 1, CRASH_EXIT_CODE, 20001 * 7 + 10000), 1000 * MS);

        /* J = 0: no jitter, whatever the random number. */
        p.jitter_percent = 0;
        ASSERT_EQ(supervision_random_no_jitter(&p), 0);
        ASSERT_EQ(supervision_backoff(&p, 1, CRASH_EXIT_CODE, UINT64_MAX), 1000 * MS);
        ASSERT_EQ(supervision_backoff(&p, 2, CRASH_EXIT_CODE, 12345), 2000 * MS);

        /* J = 25. */
        p.jitter_percent = 25;
        ASSERT_EQ(supervision_random_no_jitter(&p), 25000);
        ASSERT_EQ(supervision_backoff(&p, 2, CRASH_EXIT_CODE, 25000), 2000 * MS);
        ASSERT_EQ(supervision_backoff(&p, 2, CRASH_EXIT_CODE, 0), 1500 * MS);
        ASSERT_EQ(supervision_backoff(&p, 2, CRASH_EXIT_CODE, 50000), 2500 * MS);

        /* Beyond 100 % is taken as 100 %: never a negative factor. */
        p.jitter_percent = 250;
        ASSERT_EQ(supervision_random_no_jitter(&p), 100000);
        ASSERT_EQ(supervision_backoff(&p, 3, CRASH_EXIT_CODE, 100000), 4000 * MS);
        ASSERT_EQ(supervision_backoff(&p, 3, CRASH_EXIT_CODE, 0), 500 * MS);         /* 0, floored */
        ASSERT_EQ(supervision_backoff(&p, 3, CRASH_EXIT_CODE, 200000), 8000 * MS);
}

/* backoff: "delays 1000 → 8000 at the 4th → cap 60000" */
TEST(backoff_sequence_doubles_up_to_cap) {
        static const usec_t expected[] = { 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000 };
        SupervisionPolicy p = policy();
        Supervisor s;

        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                ASSERT_EQ(supervision_backoff(&p, (unsigned) i + 1, CRASH_EXIT_CODE,
                                              supervision_random_no_jitter(&p)), expected[i] * MS);
        ASSERT_EQ(supervision_backoff(&p, 0, CRASH_EXIT_CODE, supervision_random_no_jitter(&p)), 1000 * MS);
        ASSERT_EQ(supervision_backoff(&p, UINT_MAX, CRASH_EXIT_CODE, supervision_random_no_jitter(&p)),
                  60000 * MS);

        /* The same through the supervisor, crash after crash, with the breaker out of the way. */
        p.breaker_threshold = 0;
        s = supervisor(&p);
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                usec_t t = T0 + i * 100 * S;
                SupervisionDecision d = crash(&s, &p, CRASH_EXIT_CODE, t);

                ASSERT_TRUE(d.restart);
                ASSERT_EQ(d.delay, expected[i] * MS);
                ASSERT_FALSE(d.circuit_opened);
                ASSERT_EQ(s.consecutive_failures, i + 1);
                ASSERT_EQ(s.crash_count, i + 1);
                ASSERT_EQ(s.last_backoff, expected[i] * MS);
                ASSERT_EQ(s.next_restart_at, t + expected[i] * MS);
                ASSERT_EQ(s.last_reason, CRASH_EXIT_CODE);
                supervisor_on_restart(&s, &p, s.next_restart_at);
                ASSERT_EQ(s.next_restart_at, 0);
        }
}

/* backoff: "delays 1000 → 8000 at the 4th", with the default breaker. */
TEST(backoff_fourth_crash_waits_8000ms) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p);
        usec_t t = T0;

        ASSERT_EQ(crash(&s, &p, CRASH_SIGNAL, t).delay, 1000 * MS);
        supervisor_on_restart(&s, &p, t += 1 * S);
        ASSERT_EQ(crash(&s, &p, CRASH_SIGNAL, t += 10 * S).delay, 2000 * MS);
        supervisor_on_restart(&s, &p, t += 2 * S);
        ASSERT_EQ(crash(&s, &p, CRASH_EXIT_CODE, t += 10 * S).delay, 4000 * MS);
        supervisor_on_restart(&s, &p, t += 4 * S);
        ASSERT_EQ(crash(&s, &p, CRASH_OUT_OF_MEMORY, t += 10 * S).delay, 8000 * MS);
        ASSERT_EQ(s.last_reason, CRASH_OUT_OF_MEMORY);
        ASSERT_EQ(s.consecutive_failures, 4);
}

/* backoff: "jitter ±10%", "min 500 ms" */
TEST(backoff_jitter_within_bounds) {
        SupervisionPolicy p = policy();
        uint64_t state = 42;

        for (unsigned c = 1; c <= 8; c++) {
                usec_t base = MIN((usec_t) 1000 * MS << (c - 1), 60000 * MS);
                usec_t lo = USEC_INFINITY, hi = 0;

                for (unsigned i = 0; i < 20000; i++) {
                        usec_t d = supervision_backoff(&p, c, CRASH_EXIT_CODE, next_random(&state));

                        ASSERT_TRUE(d * 10 >= base * 9);
                        ASSERT_TRUE(d * 10 <= base * 11);
                        ASSERT_TRUE(d >= 500 * MS);
                        ASSERT_TRUE(d <= 60000 * MS);
                        lo = MIN(lo, d);
                        hi = MAX(hi, d);
                }

                /* The jitter is really applied, over (almost) the whole range... */
                ASSERT_TRUE(lo * 100 < base * 91);
                if (base < 60000 * MS)
                        ASSERT_TRUE(hi * 100 > base * 109);
                else
                        ASSERT_EQ(hi, 60000 * MS);      /* ... except above the cap */
        }
}

/* backoff: "min 500 ms": no delay is ever shorter, jitter or not. */
TEST(backoff_never_below_minimum) {
        SupervisionPolicy p = policy();
        uint64_t state = 7;

        p.backoff_initial = 200 * MS;
        ASSERT_EQ(supervision_backoff(&p, 1, CRASH_EXIT_CODE, supervision_random_no_jitter(&p)), 500 * MS);
        ASSERT_EQ(supervision_backoff(&p, 1, CRASH_EXIT_CODE, 0), 500 * MS);
        ASSERT_EQ(supervision_backoff(&p, 2, CRASH_EXIT_CODE, 0), 500 * MS);        /* 400 * 0.9 */
        ASSERT_EQ(supervision_backoff(&p, 3, CRASH_EXIT_CODE, 0), 720 * MS);        /* 800 * 0.9 */

        p.backoff_initial = 500 * MS;
        for (unsigned i = 0; i < 10000; i++) {
                usec_t d = supervision_backoff(&p, 1, CRASH_EXIT_CODE, next_random(&state));

                ASSERT_TRUE(d >= 500 * MS);
                ASSERT_TRUE(d <= 550 * MS);
        }
}

/* backoff: "CUDA 2×" */
TEST(backoff_cuda_error_waits_twice_as_long) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p);
        uint64_t no_jitter = supervision_random_no_jitter(&p);
        SupervisionDecision d;

        ASSERT_EQ(supervision_backoff(&p, 1, CRASH_CUDA_ERROR, no_jitter), 2000 * MS);
        ASSERT_EQ(supervision_backoff(&p, 3, CRASH_CUDA_ERROR, no_jitter), 8000 * MS);
        ASSERT_EQ(supervision_backoff(&p, 5, CRASH_CUDA_ERROR, no_jitter), 32000 * MS);
        /* Still capped. */
        ASSERT_EQ(supervision_backoff(&p, 6, CRASH_CUDA_ERROR, no_jitter), 60000 * MS);
        ASSERT_EQ(supervision_backoff(&p, 7, CRASH_CUDA_ERROR, 0), 60000 * MS);    /* 120000 * 0.9 */
        /* The cap applies after the jitter: 64000 * 0.9 stays below it. */
        ASSERT_EQ(supervision_backoff(&p, 6, CRASH_CUDA_ERROR, 0), 57600 * MS);
        /* Jitter applies to the doubled delay: 2000 * (1 ± 10 %). */
        ASSERT_EQ(supervision_backoff(&p, 1, CRASH_CUDA_ERROR, 0), 1800 * MS);
        ASSERT_EQ(supervision_backoff(&p, 1, CRASH_CUDA_ERROR, 20000), 2200 * MS);

        /* Only cuda_error: the other reasons keep the plain sequence. */
        for (CrashReason r = 0; r < _CRASH_REASON_MAX; r++)
                if (r != CRASH_CUDA_ERROR)
                        ASSERT_EQ(supervision_backoff(&p, 2, r, no_jitter), 2000 * MS);

        /* A configurable factor. */
        p.cuda_factor = 3;
        ASSERT_EQ(supervision_backoff(&p, 2, CRASH_CUDA_ERROR, no_jitter), 6000 * MS);
        p.cuda_factor = 2;

        /* Through the supervisor: the factor follows the reason of this crash. */
        d = crash(&s, &p, CRASH_CUDA_ERROR, T0);
        ASSERT_TRUE(d.restart);
        ASSERT_EQ(d.delay, 2000 * MS);
        ASSERT_EQ(s.last_reason, CRASH_CUDA_ERROR);
        supervisor_on_restart(&s, &p, T0 + 2 * S);
        d = crash(&s, &p, CRASH_EXIT_CODE, T0 + 10 * S);
        ASSERT_EQ(d.delay, 2000 * MS);
        supervisor_on_restart(&s, &p, T0 + 12 * S);
        d = crash(&s, &p, CRASH_CUDA_ERROR, T0 + 20 * S);
        ASSERT_EQ(d.delay, 8000 * MS);
}

/* backoff: "reset after 300 s" */
TEST(backoff_resets_after_stable_period) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p);
        usec_t t = T0;

        ASSERT_EQ(crash(&s, &p, CRASH_EXIT_CODE, t).delay, 1000 * MS);
        supervisor_on_restart(&s, &p, t += 1 * S);
        ASSERT_EQ(crash(&s, &p, CRASH_EXIT_CODE, t += 5 * S).delay, 2000 * MS);
        supervisor_on_restart(&s, &p, t += 2 * S);
        ASSERT_EQ(crash(&s, &p, CRASH_EXIT_CODE, t += 5 * S).delay, 4000 * MS);
        ASSERT_EQ(s.consecutive_failures, 3);

        /* Ready, but dead 1 µs before stable_after: the sequence goes on. */
        supervisor_on_restart(&s, &p, t += 4 * S);
        supervisor_on_ready(&s, &p, t += 10 * S);
        ASSERT_EQ(s.running_since, t);
        ASSERT_EQ(crash(&s, &p, CRASH_EXIT_CODE, t + 300 * S - 1).delay, 8000 * MS);
        ASSERT_EQ(s.consecutive_failures, 4);
        ASSERT_EQ(s.running_since, 0);
        t += 300 * S;

        /* Ready and running for exactly stable_after: starts over at 1000 ms. */
        supervisor_on_restart(&s, &p, t += 8 * S);
        supervisor_on_ready(&s, &p, t += 10 * S);
        ASSERT_EQ(crash(&s, &p, CRASH_EXIT_CODE, t += 300 * S).delay, 1000 * MS);
        ASSERT_EQ(s.consecutive_failures, 1);
        ASSERT_EQ(s.crash_count, 5);

        /* Running long only counts from ready: a restart that never got ready resets nothing. */
        supervisor_on_restart(&s, &p, t += 1 * S);
        ASSERT_EQ(crash(&s, &p, CRASH_EXIT_CODE, t += 1000 * S).delay, 2000 * MS);
        ASSERT_EQ(s.consecutive_failures, 2);
}

/* ---- Circuit breaker ---- */

/* Crashes until the circuit opens; returns the time of the last crash. */
static usec_t crash_until_open(Supervisor *s, const SupervisionPolicy *p, usec_t t) {
        for (unsigned i = 0; i < 1000; i++) {
                SupervisionDecision d = crash(s, p, CRASH_EXIT_CODE, t);

                if (d.circuit_opened)
                        return t;
                ASSERT_TRUE(d.restart);
                supervisor_on_restart(s, p, t + d.delay);
                t += d.delay + 100 * S;         /* slow enough that the storm limiter stays out */
        }
        abort();
}

/* circuit_breaker: "opens on the 5th crash (pool \"permanently failed\")" */
TEST(breaker_opens_at_fifth_consecutive_crash) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p);
        SupervisionDecision d;
        usec_t t = T0;

        for (unsigned i = 1; i <= 4; i++) {
                d = crash(&s, &p, CRASH_EXIT_CODE, t);
                ASSERT_TRUE(d.restart);
                ASSERT_FALSE(d.circuit_opened);
                ASSERT_EQ(s.circuit, CIRCUIT_CLOSED);
                supervisor_on_restart(&s, &p, t + d.delay);
                t += 100 * S;
        }

        d = crash(&s, &p, CRASH_EXIT_CODE, t);
        ASSERT_FALSE(d.restart);
        ASSERT_EQ(d.delay, 0);
        ASSERT_TRUE(d.circuit_opened);
        ASSERT_FALSE(d.storm);
        ASSERT_EQ(s.circuit, CIRCUIT_OPEN);
        ASSERT_EQ(s.circuit_changed_at, t);
        ASSERT_EQ(s.circuit_timeout, 300 * S);
        ASSERT_EQ(s.consecutive_failures, 5);
        ASSERT_EQ(s.crash_count, 5);
        ASSERT_EQ(s.restart_count, 4);
        ASSERT_EQ(s.next_restart_at, 0);
        ASSERT_EQ(supervisor_next_tick(&s, &p), t + 300 * S);
}

/* circuit_breaker: "threshold configurable (3)" */
TEST(breaker_threshold_configurable) {
        SupervisionPolicy p = policy();
        Supervisor s;

        p.breaker_threshold = 3;
        s = supervisor(&p);
        ASSERT_TRUE(crash(&s, &p, CRASH_EXIT_CODE, T0).restart);
        ASSERT_TRUE(crash(&s, &p, CRASH_EXIT_CODE, T0 + 100 * S).restart);
        ASSERT_TRUE(crash(&s, &p, CRASH_EXIT_CODE, T0 + 200 * S).circuit_opened);
        ASSERT_EQ(s.circuit, CIRCUIT_OPEN);

        /* 0 disables the rule. */
        p.breaker_threshold = 0;
        s = supervisor(&p);
        for (unsigned i = 0; i < 50; i++)
                ASSERT_TRUE(crash(&s, &p, CRASH_EXIT_CODE, T0 + i * 100 * S).restart);
        ASSERT_EQ(s.circuit, CIRCUIT_CLOSED);
}

/* circuit_breaker: "open → crashes ignored" */
TEST(breaker_open_allows_no_restart) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p);
        usec_t opened = crash_until_open(&s, &p, T0);
        SupervisionDecision d;

        /* A crash while open (the engine was started by hand): counted, not restarted, no
         * second opening, the timeout neither restarted nor doubled. */
        d = crash(&s, &p, CRASH_CUDA_ERROR, opened + 10 * S);
        ASSERT_FALSE(d.restart);
        ASSERT_FALSE(d.circuit_opened);
        ASSERT_EQ(s.circuit, CIRCUIT_OPEN);
        ASSERT_EQ(s.circuit_changed_at, opened);
        ASSERT_EQ(s.circuit_timeout, 300 * S);
        ASSERT_EQ(s.crash_count, 6);
        ASSERT_EQ(s.last_reason, CRASH_CUDA_ERROR);

        /* Time passing short of the timeout changes nothing. */
        ASSERT_FALSE(supervisor_tick(&s, &p, opened + 300 * S - 1));
        ASSERT_EQ(s.circuit, CIRCUIT_OPEN);
}

/* circuit_breaker: "half-open after 300 s, one test restart" */
TEST(breaker_half_open_after_timeout_allows_exactly_one_trial) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p);
        usec_t opened = crash_until_open(&s, &p, T0);
        SupervisionDecision d;

        ASSERT_EQ(supervisor_next_tick(&s, &p), opened + 300 * S);
        ASSERT_FALSE(supervisor_tick(&s, &p, opened + 299 * S));
        ASSERT_EQ(s.circuit, CIRCUIT_OPEN);

        /* The timeout passed: one trial. */
        ASSERT_TRUE(supervisor_tick(&s, &p, opened + 300 * S));
        ASSERT_EQ(s.circuit, CIRCUIT_HALF_OPEN);
        ASSERT_EQ(s.circuit_changed_at, opened + 300 * S);
        /* Exactly one: further ticks allow nothing more. */
        ASSERT_FALSE(supervisor_tick(&s, &p, opened + 301 * S));
        ASSERT_FALSE(supervisor_tick(&s, &p, opened + 900 * S));
        ASSERT_EQ(s.circuit, CIRCUIT_HALF_OPEN);
        /* Nothing to wait for until the trial engine is ready. */
        ASSERT_EQ(supervisor_next_tick(&s, &p), USEC_INFINITY);

        /* The trial crashes before it got ready: no second trial, open again. */
        supervisor_on_restart(&s, &p, opened + 300 * S);
        d = crash(&s, &p, CRASH_EXIT_CODE, opened + 320 * S);
        ASSERT_FALSE(d.restart);
        ASSERT_TRUE(d.circuit_opened);
        ASSERT_EQ(s.circuit, CIRCUIT_OPEN);
}

/* circuit_breaker: "reopens with 2× timeout" */
TEST(breaker_failed_trial_reopens_with_doubled_timeout) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p);
        usec_t t = crash_until_open(&s, &p, T0);

        for (usec_t timeout = 300 * S; timeout <= 4800 * S; timeout *= 2) {
                SupervisionDecision d;

                ASSERT_EQ(s.circuit_timeout, timeout);
                ASSERT_EQ(supervisor_next_tick(&s, &p), t + timeout);
                ASSERT_FALSE(supervisor_tick(&s, &p, t + timeout - 1));
                ASSERT_TRUE(supervisor_tick(&s, &p, t += timeout));

                /* The trial gets ready but crashes within breaker_close_after. */
                supervisor_on_restart(&s, &p, t);
                supervisor_on_ready(&s, &p, t + 10 * S);
                ASSERT_EQ(supervisor_next_tick(&s, &p), t + 70 * S);
                d = crash(&s, &p, CRASH_EXIT_CODE, t += 69 * S);
                ASSERT_FALSE(d.restart);
                ASSERT_TRUE(d.circuit_opened);
                ASSERT_EQ(s.circuit, CIRCUIT_OPEN);
                ASSERT_EQ(s.circuit_changed_at, t);
                ASSERT_EQ(s.circuit_timeout, 2 * timeout);
        }
}

/* circuit_breaker: "closes after 60 s stable" */
TEST(breaker_closes_after_stable_trial) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p);
        usec_t t = crash_until_open(&s, &p, T0), ready;
        SupervisionDecision d;

        /* One failed trial first, so that closing visibly restores the timeout. */
        ASSERT_TRUE(supervisor_tick(&s, &p, t += 300 * S));
        supervisor_on_restart(&s, &p, t);
        ASSERT_TRUE(crash(&s, &p, CRASH_EXIT_CODE, t += 5 * S).circuit_opened);
        ASSERT_EQ(s.circuit_timeout, 600 * S);

        ASSERT_TRUE(supervisor_tick(&s, &p, t += 600 * S));
        supervisor_on_restart(&s, &p, t);
        supervisor_on_ready(&s, &p, ready = t + 20 * S);
        ASSERT_EQ(supervisor_next_tick(&s, &p), ready + 60 * S);

        ASSERT_FALSE(supervisor_tick(&s, &p, ready + 60 * S - 1));
        ASSERT_EQ(s.circuit, CIRCUIT_HALF_OPEN);
        ASSERT_FALSE(supervisor_tick(&s, &p, ready + 60 * S));
        ASSERT_EQ(s.circuit, CIRCUIT_CLOSED);
        ASSERT_EQ(s.circuit_changed_at, ready + 60 * S);
        ASSERT_EQ(s.consecutive_failures, 0);
        ASSERT_EQ(s.circuit_timeout, 300 * S);
        ASSERT_EQ(s.crash_count, 6);
        ASSERT_EQ(supervisor_next_tick(&s, &p), USEC_INFINITY);

        /* Closed and counting from scratch. */
        d = crash(&s, &p, CRASH_EXIT_CODE, ready + 100 * S);
        ASSERT_TRUE(d.restart);
        ASSERT_EQ(d.delay, 1000 * MS);
        ASSERT_EQ(s.consecutive_failures, 1);
}

/* A trial that ran breaker_close_after closed the circuit even if the tick came late. */
TEST(breaker_late_tick_trial_still_closes_on_crash) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p);
        usec_t t = crash_until_open(&s, &p, T0);
        SupervisionDecision d;

        ASSERT_TRUE(supervisor_tick(&s, &p, t += 300 * S));
        supervisor_on_restart(&s, &p, t);
        supervisor_on_ready(&s, &p, t += 10 * S);
        d = crash(&s, &p, CRASH_EXIT_CODE, t + 61 * S);
        ASSERT_TRUE(d.restart);
        ASSERT_FALSE(d.circuit_opened);
        ASSERT_EQ(d.delay, 1000 * MS);
        ASSERT_EQ(s.circuit, CIRCUIT_CLOSED);
        ASSERT_EQ(s.consecutive_failures, 1);
}

/* circuit_breaker: "manual reset"; restart_storm: "manual one-shot override that keeps the counter" */
TEST(breaker_manual_reset_keeps_counts) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p);
        usec_t t = crash_until_open(&s, &p, T0);
        SupervisionDecision d;
        size_t n_restarts;

        /* Doubled timeout first, to see it restored. */
        ASSERT_TRUE(supervisor_tick(&s, &p, t += 300 * S));
        ASSERT_TRUE(crash(&s, &p, CRASH_EXIT_CODE, t += 1 * S).circuit_opened);
        ASSERT_EQ(s.circuit_timeout, 600 * S);
        ASSERT_EQ(s.crash_count, 6);
        ASSERT_EQ(s.restart_count, 4);
        n_restarts = s.n_restarts;

        supervisor_reset(&s, &p, t += 10 * S);
        ASSERT_EQ(s.circuit, CIRCUIT_CLOSED);
        ASSERT_EQ(s.circuit_changed_at, t);
        ASSERT_EQ(s.consecutive_failures, 0);
        ASSERT_EQ(s.circuit_timeout, 300 * S);
        ASSERT_EQ(s.crash_count, 6);
        ASSERT_EQ(s.restart_count, 4);
        ASSERT_EQ(s.n_restarts, n_restarts);
        ASSERT_EQ(s.last_reason, CRASH_EXIT_CODE);
        ASSERT_EQ(supervisor_next_tick(&s, &p), USEC_INFINITY);

        d = crash(&s, &p, CRASH_EXIT_CODE, t += 1 * S);
        ASSERT_TRUE(d.restart);
        ASSERT_EQ(d.delay, 1000 * MS);
        ASSERT_EQ(s.crash_count, 7);

        /* Resetting a closed circuit does not pretend it changed state. */
        supervisor_reset(&s, &p, t + 50 * S);
        ASSERT_EQ(s.circuit_changed_at, t - 1 * S);
        ASSERT_EQ(s.consecutive_failures, 0);
}

/* ---- Restart storm ---- */

/* A policy where only the storm limiter can open the circuit. */
static SupervisionPolicy storm_policy(void) {
        SupervisionPolicy p = policy();

        p.breaker_threshold = 0;
        return p;
}

/* restart_storm: "warn at >5/60 s" */
TEST(storm_warning_above_five_restarts) {
        SupervisionPolicy p = storm_policy();
        Supervisor s = supervisor(&p);
        SupervisionDecision d;
        usec_t t = T0;

        for (unsigned i = 1; i <= 5; i++)
                supervisor_on_restart(&s, &p, t += 5 * S);
        d = crash(&s, &p, CRASH_EXIT_CODE, t += 1 * S);
        ASSERT_EQ(d.restarts_in_window, 5);
        ASSERT_FALSE(d.storm_warning);
        ASSERT_TRUE(d.restart);

        supervisor_on_restart(&s, &p, t += 1 * S);
        d = crash(&s, &p, CRASH_EXIT_CODE, t += 1 * S);
        ASSERT_EQ(d.restarts_in_window, 6);
        ASSERT_TRUE(d.storm_warning);
        ASSERT_FALSE(d.storm);
        ASSERT_TRUE(d.restart);                 /* a warning only */
        ASSERT_EQ(s.circuit, CIRCUIT_CLOSED);
}

/* restart_storm: "limit enforced", "10 in 30 s opens the breaker" */
TEST(storm_opens_circuit_at_ten_restarts) {
        SupervisionPolicy p = storm_policy();
        Supervisor s = supervisor(&p);
        SupervisionDecision d;
        usec_t t = T0;

        for (unsigned i = 1; i <= 9; i++) {
                supervisor_on_restart(&s, &p, t += 2 * S);
                d = crash(&s, &p, CRASH_EXIT_CODE, t += 1 * S);
                ASSERT_EQ(d.restarts_in_window, i);
                ASSERT_TRUE(d.restart);
                ASSERT_FALSE(d.storm);
        }

        /* The 10th restart within 30 s: the next crash opens the circuit. */
        supervisor_on_restart(&s, &p, t += 2 * S);
        ASSERT_TRUE(t - (T0 + 2 * S) <= 30 * S);       /* from the 1st restart to the 10th */
        d = crash(&s, &p, CRASH_EXIT_CODE, t += 1 * S);
        ASSERT_EQ(d.restarts_in_window, 10);
        ASSERT_TRUE(d.storm);
        ASSERT_TRUE(d.storm_warning);
        ASSERT_TRUE(d.circuit_opened);
        ASSERT_FALSE(d.restart);
        ASSERT_EQ(s.circuit, CIRCUIT_OPEN);
        ASSERT_EQ(s.circuit_changed_at, t);
        ASSERT_EQ(s.restart_count, 10);

        /* A configurable limit; 0 disables it. */
        p.storm_limit = 3;
        s = supervisor(&p);
        for (unsigned i = 0; i < 3; i++)
                supervisor_on_restart(&s, &p, T0 + i * S);
        ASSERT_TRUE(crash(&s, &p, CRASH_EXIT_CODE, T0 + 5 * S).storm);
        p.storm_limit = 0;
        s = supervisor(&p);
        for (unsigned i = 0; i < 30; i++)
                supervisor_on_restart(&s, &p, T0 + i * S);
        d = crash(&s, &p, CRASH_EXIT_CODE, T0 + 30 * S);
        ASSERT_TRUE(d.restart);
        ASSERT_FALSE(d.storm);
}

/* restart_storm: "sliding window (8 + 2 after 30 s OK)". 8 restarts spread over 35 s, then 2
 * more 30 s after the 8th: 10 restarts within 66 s, but never 10 within any 60 s, since the
 * oldest have aged out. A counter that forgot nothing, or a fixed window, would open the circuit. */
TEST(storm_sliding_window_forgets_old_restarts) {
        SupervisionPolicy p = storm_policy();
        Supervisor s = supervisor(&p);
        SupervisionDecision d;

        for (unsigned i = 0; i < 8; i++)
                supervisor_on_restart(&s, &p, T0 + i * 5 * S);          /* 0, 5, ..., 35 s */
        ASSERT_EQ(supervisor_restarts_in_window(&s, &p, T0 + 35 * S), 8);

        supervisor_on_restart(&s, &p, T0 + 65 * S);                     /* 30 s after the 8th */
        supervisor_on_restart(&s, &p, T0 + 66 * S);
        ASSERT_EQ(s.restart_count, 10);

        /* At 66 s the window is [6 s, 66 s]: 10, 15, ..., 35 (6) + 2 = 8. */
        ASSERT_EQ(supervisor_restarts_in_window(&s, &p, T0 + 66 * S), 8);
        d = crash(&s, &p, CRASH_EXIT_CODE, T0 + 67 * S);               /* [7 s, 67 s] */
        ASSERT_EQ(d.restarts_in_window, 8);
        ASSERT_TRUE(d.storm_warning);
        ASSERT_FALSE(d.storm);
        ASSERT_TRUE(d.restart);
        ASSERT_EQ(s.circuit, CIRCUIT_CLOSED);

        /* The same 10 restarts inside one window would have opened it: the limit is real. */
        {
                Supervisor s2 = supervisor(&p);

                for (unsigned i = 0; i < 8; i++)
                        supervisor_on_restart(&s2, &p, T0 + i * 5 * S);
                supervisor_on_restart(&s2, &p, T0 + 50 * S);
                supervisor_on_restart(&s2, &p, T0 + 51 * S);
                d = crash(&s2, &p, CRASH_EXIT_CODE, T0 + 52 * S);
                ASSERT_EQ(d.restarts_in_window, 10);
                ASSERT_TRUE(d.storm);
                ASSERT_FALSE(d.restart);
        }

        /* And the window keeps sliding: at 96 s only 65 and 66 remain... */
        ASSERT_EQ(supervisor_restarts_in_window(&s, &p, T0 + 96 * S), 2);
        /* ... and at 127 s none. */
        ASSERT_EQ(supervisor_restarts_in_window(&s, &p, T0 + 127 * S), 0);
}

/* The window is [now - storm_window, now], both ends included. */
TEST(storm_window_boundaries) {
        SupervisionPolicy p = storm_policy();
        Supervisor s = supervisor(&p);

        supervisor_on_restart(&s, &p, T0);
        ASSERT_EQ(supervisor_restarts_in_window(&s, &p, T0), 1);
        ASSERT_EQ(supervisor_restarts_in_window(&s, &p, T0 + 60 * S), 1);
        ASSERT_EQ(supervisor_restarts_in_window(&s, &p, T0 + 60 * S + 1), 0);
        /* Not yet happened (the clock was set back): not in the window. */
        ASSERT_EQ(supervisor_restarts_in_window(&s, &p, T0 - 1), 0);

        /* Small times: no underflow of now - window. */
        s = supervisor(&p);
        supervisor_on_restart(&s, &p, 0);
        supervisor_on_restart(&s, &p, 10 * S);
        ASSERT_EQ(supervisor_restarts_in_window(&s, &p, 30 * S), 2);
        ASSERT_EQ(supervisor_restarts_in_window(&s, &p, 5 * S), 1);
}

/* restart_storm: "restart_count persisted": a fixed history that drops the oldest when full. */
TEST(restart_history_drops_oldest_when_full) {
        SupervisionPolicy p = storm_policy();
        Supervisor s = supervisor(&p);

        for (unsigned i = 0; i < SUPERVISOR_HISTORY_MAX + 6; i++)
                supervisor_on_restart(&s, &p, T0 + i * MS);

        ASSERT_EQ(s.restart_count, SUPERVISOR_HISTORY_MAX + 6);
        ASSERT_EQ(s.n_restarts, SUPERVISOR_HISTORY_MAX);
        ASSERT_EQ(s.restarts[0], T0 + 6 * MS);
        ASSERT_EQ(s.restarts[SUPERVISOR_HISTORY_MAX - 1], T0 + (SUPERVISOR_HISTORY_MAX + 5) * MS);
        for (size_t i = 1; i < s.n_restarts; i++)
                ASSERT_EQ(s.restarts[i], s.restarts[i - 1] + MS);
        ASSERT_EQ(supervisor_restarts_in_window(&s, &p, T0 + 1 * S), SUPERVISOR_HISTORY_MAX);
}

/* ---- JSON ---- */

static void assert_supervisor_eq(const Supervisor *a, const Supervisor *b) {
        ASSERT_EQ(a->crash_count, b->crash_count);
        ASSERT_EQ(a->restart_count, b->restart_count);
        ASSERT_EQ(a->consecutive_failures, b->consecutive_failures);
        ASSERT_EQ(a->circuit, b->circuit);
        ASSERT_EQ(a->circuit_changed_at, b->circuit_changed_at);
        ASSERT_EQ(a->circuit_timeout, b->circuit_timeout);
        ASSERT_EQ(a->running_since, b->running_since);
        ASSERT_EQ(a->last_backoff, b->last_backoff);
        ASSERT_EQ(a->next_restart_at, b->next_restart_at);
        ASSERT_EQ(a->last_reason, b->last_reason);
        ASSERT_EQ(a->n_restarts, b->n_restarts);
        ASSERT_EQ(a->circuit_opens, b->circuit_opens);
        ASSERT_EQ(a->storms, b->storms);
        for (CrashReason i = 0; i < _CRASH_REASON_MAX; i++) {
                ASSERT_EQ(a->crashes_by_reason[i], b->crashes_by_reason[i]);
                ASSERT_EQ(a->restarts_by_reason[i], b->restarts_by_reason[i]);
        }
        for (size_t i = 0; i < a->n_restarts; i++)
                ASSERT_EQ(a->restarts[i], b->restarts[i]);
}

/* Serialises s, parses the text back and restores it: the full persistence path. */
static Supervisor round_trip(const Supervisor *s, const SupervisionPolicy *p) {
        _cleanup_json_ json_object *o = NULL, *back = NULL;
        Supervisor t;

        ASSERT_OK(supervisor_to_json(s, &o));
        back = json_tokener_parse(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        ASSERT_NOT_NULL(back);
        memset(&t, 0xaa, sizeof(t));
        ASSERT_OK(supervisor_from_json(back, p, &t));
        return t;
}

static int from_json_string(const char *text, const SupervisionPolicy *p, Supervisor *ret) {
        _cleanup_json_ json_object *o = json_tokener_parse(text);

        ASSERT_TRUE(o || streq(text, "null"));
        return supervisor_from_json(o, p, ret);
}

/* crash_detection: "crash_count persisted"; restart_storm: "restart_count persisted" */
TEST(json_round_trip_every_field) {
        SupervisionPolicy p = policy();
        _cleanup_json_ json_object *o = NULL;
        Supervisor s = {
                .crash_count = 17,
                .restart_count = 15,
                .consecutive_failures = 3,
                .circuit = CIRCUIT_HALF_OPEN,
                .circuit_changed_at = T0 + 1,
                .circuit_timeout = 1200 * S,
                .running_since = T0 + 2,
                .last_backoff = 8123 * MS,
                .next_restart_at = T0 + 3,
                .last_reason = CRASH_CUDA_ERROR,
                .restarts = { T0 - 3 * S, T0 - 2 * S, T0 - 1 },
                .n_restarts = 3,
                .circuit_opens = 4,
                .storms = 1,
                .crashes_by_reason = { [CRASH_SIGNAL] = 10, [CRASH_CUDA_ERROR] = 7 },
                .restarts_by_reason = { [CRASH_SIGNAL] = 9, [CRASH_CUDA_ERROR] = 6 },
        };
        Supervisor t;
        json_object *v;

        t = round_trip(&s, &p);
        assert_supervisor_eq(&s, &t);

        /* Times are integers in µs, enums strings, the history an array. */
        ASSERT_OK(supervisor_to_json(&s, &o));
        ASSERT_TRUE(json_object_object_get_ex(o, "crash_count", &v));
        ASSERT_TRUE(json_object_is_type(v, json_type_int));
        ASSERT_EQ(json_object_get_int64(v), 17);
        ASSERT_TRUE(json_object_object_get_ex(o, "circuit_changed_at", &v));
        ASSERT_TRUE(json_object_is_type(v, json_type_int));
        ASSERT_EQ(json_object_get_int64(v), (int64_t) (T0 + 1));
        ASSERT_TRUE(json_object_object_get_ex(o, "circuit_timeout", &v));
        ASSERT_EQ(json_object_get_int64(v), 1200 * (int64_t) S);
        ASSERT_TRUE(json_object_object_get_ex(o, "circuit", &v));
        ASSERT_STREQ(json_object_get_string(v), "half-open");
        ASSERT_TRUE(json_object_object_get_ex(o, "last_reason", &v));
        ASSERT_STREQ(json_object_get_string(v), "cuda_error");
        ASSERT_TRUE(json_object_object_get_ex(o, "restarts", &v));
        ASSERT_TRUE(json_object_is_type(v, json_type_array));
        ASSERT_EQ(json_object_array_length(v), 3);
        ASSERT_EQ(json_object_get_int64(json_object_array_get_idx(v, 2)), (int64_t) (T0 - 1));
        ASSERT_FALSE(json_object_object_get_ex(o, "n_restarts", NULL));

        /* Every enum value, and a full history. */
        for (CircuitState c = 0; c < _CIRCUIT_STATE_MAX; c++) {
                s.circuit = c;
                t = round_trip(&s, &p);
                assert_supervisor_eq(&s, &t);
        }
        for (CrashReason r = 0; r < _CRASH_REASON_MAX; r++) {
                s.last_reason = r;
                t = round_trip(&s, &p);
                assert_supervisor_eq(&s, &t);
        }
        for (size_t i = 0; i < SUPERVISOR_HISTORY_MAX; i++)
                s.restarts[i] = T0 + i;
        s.n_restarts = SUPERVISOR_HISTORY_MAX;
        t = round_trip(&s, &p);
        assert_supervisor_eq(&s, &t);

        /* The extremes that fit. */
        s.crash_count = UINT_MAX;
        s.running_since = (usec_t) INT64_MAX - 1;
        t = round_trip(&s, &p);
        assert_supervisor_eq(&s, &t);
}

/* A supervisor that went through a real timeline survives the round trip and goes on the same. */
TEST(json_round_trip_of_live_state) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p), t;
        usec_t opened = crash_until_open(&s, &p, T0);
        SupervisionDecision d1, d2;

        t = round_trip(&s, &p);
        assert_supervisor_eq(&s, &t);

        ASSERT_EQ(supervisor_next_tick(&t, &p), opened + 300 * S);
        ASSERT_TRUE(supervisor_tick(&s, &p, opened + 300 * S));
        ASSERT_TRUE(supervisor_tick(&t, &p, opened + 300 * S));
        supervisor_on_crash(&s, &p, CRASH_SIGNAL, opened + 310 * S, 123, &d1);
        supervisor_on_crash(&t, &p, CRASH_SIGNAL, opened + 310 * S, 123, &d2);
        ASSERT_EQ(d1.circuit_opened, d2.circuit_opened);
        assert_supervisor_eq(&s, &t);
}

/* Before the first crash, last_reason is null. */
TEST(json_fresh_supervisor) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p), t;
        _cleanup_json_ json_object *o = NULL;
        json_object *v = (json_object *) 1;

        ASSERT_OK(supervisor_to_json(&s, &o));
        ASSERT_TRUE(json_object_object_get_ex(o, "last_reason", &v));
        ASSERT_NULL(v);
        ASSERT_TRUE(json_object_object_get_ex(o, "restarts", &v));
        ASSERT_EQ(json_object_array_length(v), 0);

        t = round_trip(&s, &p);
        assert_supervisor_eq(&s, &t);
        ASSERT_EQ(t.last_reason, _CRASH_REASON_INVALID);
}

/* Tolerant: missing fields keep their init values, unknown ones are ignored. */
TEST(json_missing_fields_keep_init_values) {
        SupervisionPolicy p = policy();
        Supervisor init, t;

        p.breaker_timeout = 123 * S;
        init = supervisor(&p);

        ASSERT_OK(from_json_string("{}", &p, &t));
        assert_supervisor_eq(&init, &t);

        ASSERT_OK(from_json_string("{ \"crash_count\": 4, \"circuit\": \"open\", \"future_field\": [1, 2],"
                                   "  \"last_reason\": null }", &p, &t));
        ASSERT_EQ(t.crash_count, 4);
        ASSERT_EQ(t.circuit, CIRCUIT_OPEN);
        ASSERT_EQ(t.circuit_timeout, 123 * S);
        ASSERT_EQ(t.last_reason, _CRASH_REASON_INVALID);
        init.crash_count = 4;
        init.circuit = CIRCUIT_OPEN;
        assert_supervisor_eq(&init, &t);

        ASSERT_OK(from_json_string("{ \"restarts\": [] }", &p, &t));
        ASSERT_EQ(t.n_restarts, 0);
}

/* A history longer than ours (written by another build) keeps its newest entries. */
TEST(json_long_history_keeps_newest) {
        SupervisionPolicy p = policy();
        _cleanup_json_ json_object *o = json_object_new_object(), *a = json_object_new_array();
        Supervisor t;

        ASSERT_NOT_NULL(o);
        ASSERT_NOT_NULL(a);
        for (unsigned i = 0; i < SUPERVISOR_HISTORY_MAX + 3; i++)
                ASSERT_OK(json_object_array_add(a, json_object_new_int64((int64_t) (T0 + i))));
        ASSERT_OK(json_object_object_add(o, "restarts", json_object_get(a)));

        ASSERT_OK(supervisor_from_json(o, &p, &t));
        ASSERT_EQ(t.n_restarts, SUPERVISOR_HISTORY_MAX);
        ASSERT_EQ(t.restarts[0], T0 + 3);
        ASSERT_EQ(t.restarts[SUPERVISOR_HISTORY_MAX - 1], T0 + SUPERVISOR_HISTORY_MAX + 2);
}

/* Wrong types and values are -EINVAL, and leave *ret alone. */
TEST(json_wrong_types_are_einval) {
        static const char *const bad[] = {
                "null",
                "[]",
                "42",
                "\"closed\"",
                "{ \"crash_count\": \"3\" }",
                "{ \"crash_count\": -1 }",
                "{ \"crash_count\": 1.5 }",
                "{ \"crash_count\": true }",
                "{ \"crash_count\": null }",
                "{ \"crash_count\": 4294967296 }",
                "{ \"restart_count\": {} }",
                "{ \"consecutive_failures\": [] }",
                "{ \"circuit_changed_at\": \"2023-11-14T22:13:20Z\" }",
                "{ \"circuit_timeout\": -5 }",
                "{ \"running_since\": 1e9 }",
                "{ \"last_backoff\": 9223372036854775807 }",
                "{ \"next_restart_at\": 18446744073709551615 }",
                "{ \"circuit\": 1 }",
                "{ \"circuit\": null }",
                "{ \"circuit\": \"ajar\" }",
                "{ \"circuit\": \"half_open\" }",
                "{ \"last_reason\": 3 }",
                "{ \"last_reason\": \"segfault\" }",
                "{ \"last_reason\": [\"signal\"] }",
                "{ \"restarts\": 5 }",
                "{ \"restarts\": null }",
                "{ \"restarts\": {} }",
                "{ \"restarts\": [1, \"2\"] }",
                "{ \"restarts\": [1, -2] }",
                "{ \"restarts\": [1, null] }",
                "{ \"restarts\": [[1]] }",
        };
        SupervisionPolicy p = policy();

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Supervisor t, sentinel;

                fprintf(stderr, "  %s\n", bad[i]);
                memset(&t, 0x5a, sizeof(t));
                memcpy(&sentinel, &t, sizeof(t));
                ASSERT_ERROR(from_json_string(bad[i], &p, &t), EINVAL);
                ASSERT_TRUE(memcmp(&t, &sentinel, sizeof(t)) == 0);
        }

        /* The largest values still accepted. */
        {
                Supervisor t;

                ASSERT_OK(from_json_string("{ \"crash_count\": 4294967295, "
                                           "  \"running_since\": 9223372036854775806 }", &p, &t));
                ASSERT_EQ(t.crash_count, UINT_MAX);
                ASSERT_EQ(t.running_since, (usec_t) INT64_MAX - 1);
        }
}

/* A time without an int64 form is refused, not written wrong. */
TEST(json_unrepresentable_time_is_erange) {
        SupervisionPolicy p = policy();
        Supervisor s = supervisor(&p);
        json_object *o = NULL;

        s.circuit_timeout = USEC_INFINITY;
        ASSERT_ERROR(supervisor_to_json(&s, &o), ERANGE);
        ASSERT_NULL(o);

        s = supervisor(&p);
        s.restarts[0] = (usec_t) INT64_MAX;
        s.n_restarts = 1;
        ASSERT_ERROR(supervisor_to_json(&s, &o), ERANGE);
        ASSERT_NULL(o);

        s = supervisor(&p);
        s.circuit = _CIRCUIT_STATE_INVALID;
        ASSERT_ERROR(supervisor_to_json(&s, &o), EINVAL);
        ASSERT_NULL(o);
}

DEFINE_TEST_MAIN

/* The counters behind pool_managerd_engine_crashes_total{reason}, restarts_total{reason},
 * circuit_breaker_opens_total and restart_storms_total: counted where the decisions are made,
 * persisted, and an older state file without them reads as zeros. */
TEST(counters_by_reason_opens_and_storms) {
        SupervisionPolicy p = storm_policy();
        Supervisor s = supervisor(&p), t;
        SupervisionDecision d;
        usec_t t0 = T0;

        d = crash(&s, &p, CRASH_SIGNAL, t0 += S);
        ASSERT_TRUE(d.restart);
        supervisor_on_restart(&s, &p, t0 += 2 * S);
        d = crash(&s, &p, CRASH_OUT_OF_MEMORY, t0 += S);
        supervisor_on_restart(&s, &p, t0 += 2 * S);
        ASSERT_EQ(s.crashes_by_reason[CRASH_SIGNAL], 1);
        ASSERT_EQ(s.crashes_by_reason[CRASH_OUT_OF_MEMORY], 1);
        ASSERT_EQ(s.restarts_by_reason[CRASH_SIGNAL], 1);
        ASSERT_EQ(s.restarts_by_reason[CRASH_OUT_OF_MEMORY], 1);
        ASSERT_EQ(s.restarts_by_reason[CRASH_EXIT_CODE], 0);
        ASSERT_EQ(s.circuit_opens, 0);

        /* A storm opens the circuit: one storm, one opening. */
        for (unsigned i = 0; i < p.storm_limit; i++)
                supervisor_on_restart(&s, &p, t0 += S);
        d = crash(&s, &p, CRASH_EXIT_CODE, t0 += S);
        ASSERT_TRUE(d.storm);
        ASSERT_EQ(s.storms, 1);
        ASSERT_EQ(s.circuit_opens, 1);

        /* A failed half-open trial opens it again, without a storm. */
        ASSERT_TRUE(supervisor_tick(&s, &p, t0 += p.breaker_timeout));
        ASSERT_EQ(s.circuit, CIRCUIT_HALF_OPEN);
        d = crash(&s, &p, CRASH_EXIT_CODE, t0 += S);
        ASSERT_TRUE(d.circuit_opened);
        ASSERT_EQ(s.circuit_opens, 2);
        ASSERT_EQ(s.storms, 1);
        ASSERT_EQ(s.crashes_by_reason[CRASH_EXIT_CODE], 2);

        t = round_trip(&s, &p);
        assert_supervisor_eq(&s, &t);

        ASSERT_OK(from_json_string("{\"crash_count\": 3}", &p, &t));
        ASSERT_EQ(t.crash_count, 3);
        ASSERT_EQ(t.circuit_opens, 0);
        ASSERT_EQ(t.crashes_by_reason[CRASH_SIGNAL], 0);
        /* A reason of a newer version is skipped; a count that is no count is refused. */
        ASSERT_OK(from_json_string("{\"crashes_by_reason\": {\"signal\": 2, \"gamma_ray\": 1}}", &p, &t));
        ASSERT_EQ(t.crashes_by_reason[CRASH_SIGNAL], 2);
        ASSERT_EQ(from_json_string("{\"crashes_by_reason\": {\"signal\": \"2\"}}", &p, &t), -EINVAL);
        ASSERT_EQ(from_json_string("{\"restarts_by_reason\": [1]}", &p, &t), -EINVAL);
        ASSERT_EQ(from_json_string("{\"storms\": -1}", &p, &t), -EINVAL);
}
