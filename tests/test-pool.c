/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The pool state machine (src/pool.c) without a bus: the engine unit and the probe are test
 * doubles of our own modules (the functions of engine-unit.h and probe.h, defined here), the
 * clock is fake (now() below replaces time-util.c's weak one), and the pool's timers are real
 * sd-event sources that the test fires by hand after checking when they were due. Everything
 * else is the production code: registry, supervision, saved state, handoff and pid files.
 *
 * After every step check_owned() asserts what pool_set_state() promises: each timer and probe
 * exists only in a state that owns it, so no transition leaves one armed.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "manager.h"
#include "pool.h"
#include "shared/fileio.h"
#include "shared/strv.h"
#include "test-util.h"

/* ---- fake clock ---- */

static usec_t clock_offset;

usec_t now(clockid_t clock) {
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                abort();
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / NSEC_PER_USEC + clock_offset;
}

/* ---- the double of engine-unit.c ---- */

static unsigned n_unit_starts, n_unit_stops, n_unit_checks;

int engine_unit_new(EngineUnit **ret, sd_bus *bus, sd_event *event, const char *name, EngineUnitCallback cb,
                    void *userdata) {
        EngineUnit *u = calloc(1, sizeof(EngineUnit));

        if (!u)
                return -ENOMEM;
        u->event = event;
        u->name = strdup(name);
        u->callback = cb;
        u->userdata = userdata;
        *ret = u;
        return 0;
}

EngineUnit *engine_unit_free(EngineUnit *u) {
        if (!u)
                return NULL;
        free(u->name);
        free(u->result);
        return mfree(u);
}

int engine_unit_start(EngineUnit *u, const EngineUnitSpec *spec) {
        ASSERT_NOT_NULL(spec->argv);
        n_unit_starts++;
        u->exited = false;
        u->main_pid = 0;
        return 0;
}

int engine_unit_adopt(EngineUnit *u) {
        return 0;
}

int engine_unit_check(EngineUnit *u) {
        n_unit_checks++;
        return 0;               /* the answer comes as an event: unit_event(NOT_LOADED) */
}

int engine_unit_stop(EngineUnit *u) {
        n_unit_stops++;
        return 0;
}

void engine_unit_job_removed(EngineUnit *u, const char *job, const char *result) {
}

int engine_unit_describe_exit(const EngineUnit *u, char **ret) {
        return asprintf(ret, "exited with status %d", u->exec_main_status) < 0 ? -ENOMEM : 0;
}

bool engine_unit_exit_was_clean(const EngineUnit *u) {
        return u->exec_main_status == 0;
}

static void unit_event(Pool *p, EngineUnitEvent event) {
        p->unit->callback(p->unit, event, NULL, p->unit->userdata);
}

/* The engine ends on its own (or after a stop): status, then the unit's event. */
static void unit_exits(Pool *p, int status) {
        p->unit->exited = true;
        p->unit->main_pid = 0;
        p->unit->exec_main_code = 1;    /* CLD_EXITED */
        p->unit->exec_main_status = status;
        (void) free_and_strdup(&p->unit->result, status == 0 ? "success" : "exit-code");
        unit_event(p, ENGINE_UNIT_EXITED);
}

/* ---- the double of probe.c ---- */

struct Probe {
        ProbeCallback callback, attempt;
        void *userdata;
        char *url;
        usec_t timeout;
};

static Probe *last_probe;
static unsigned n_probes;

int probe_new(Probe **ret, sd_event *event, CurlGlue *glue, const char *url, usec_t interval, usec_t timeout,
              ProbeCallback cb, void *userdata) {
        Probe *p = calloc(1, sizeof(Probe));

        if (!p)
                return -ENOMEM;
        p->callback = cb;
        p->userdata = userdata;
        p->url = strdup(url);
        p->timeout = timeout;
        *ret = last_probe = p;
        n_probes++;
        return 0;
}

Probe *probe_free(Probe *p) {
        if (!p)
                return NULL;
        if (p == last_probe)
                last_probe = NULL;
        free(p->url);
        return mfree(p);
}

int probe_start(Probe *p) {
        return 0;
}

void probe_trigger(Probe *p, bool ready_line) {
}

void probe_set_attempt_callback(Probe *p, ProbeCallback cb) {
        p->attempt = cb;
}

const char *probe_last_error(const Probe *p) {
        return "HTTP 503";
}

unsigned probe_attempts(const Probe *p) {
        return 1;
}

usec_t probe_ready_usec(const Probe *p) {
        return now(CLOCK_MONOTONIC);
}

/* The probe of the pool answers: r = 0 (HTTP 200) or -ETIMEDOUT (its deadline passed). */
static void probe_finishes(Pool *p, int r) {
        Probe *probe = p->probe;

        ASSERT_NOT_NULL(probe);
        if (probe->attempt)
                probe->attempt(probe, r, probe->userdata);
        probe->callback(probe, r, probe->userdata);
}

/* ---- the double of engine-metrics.c ---- */

struct EngineScraper {
        EngineScraperCallback callback;
        void *userdata;
        char *url;
        usec_t interval, timeout;
        bool started;
};

static unsigned n_scrapers;

int engine_scraper_new(EngineScraper **ret, sd_event *event, CurlGlue *glue, const char *url,
                       usec_t interval, usec_t timeout, EngineScraperCallback cb, void *userdata) {
        EngineScraper *s = calloc(1, sizeof(EngineScraper));

        if (!s)
                return -ENOMEM;
        *s = (EngineScraper) { .callback = cb, .userdata = userdata, .interval = interval, .timeout = timeout };
        s->url = strdup(url);
        *ret = s;
        n_scrapers++;
        return 0;
}

EngineScraper *engine_scraper_free(EngineScraper *s) {
        if (!s)
                return NULL;
        free(s->url);
        return mfree(s);
}

int engine_scraper_start(EngineScraper *s) {
        s->started = true;
        return 0;
}

/* The engine's /metrics answers (r >= 0, text parsed) or not (r < 0). */
static void scrape_finishes(Pool *p, int r, const char *text) {
        EngineLoad l;

        ASSERT_NOT_NULL(p->engine_scraper);
        if (r >= 0)
                r = engine_load_parse(text, strlen(text), &l);
        p->engine_scraper->callback(p->engine_scraper, r, r >= 0 ? &l : NULL, r >= 0 ? NULL : "HTTP 404",
                                    p->engine_scraper->userdata);
}

/* ---- the double of manager.c's side ---- */

static unsigned n_changes;

void manager_pool_changed(Manager *m, const char *id) {
        n_changes++;
}

void manager_flush_changes(Manager *m) {
}

sd_journal *manager_journal(Manager *m) {
        return NULL;            /* the crash's lines: "(no engine output: ...)" */
}

int manager_get_curl(Manager *m, CurlGlue **ret) {
        *ret = m->curl;         /* NULL: the doubles of the probe and the scraper use none */
        return 0;
}

/* ---- set-up ---- */

static Manager manager;
static char *tmpdir;

static void setup(void) {
        char template[] = "/var/tmp/test-pool.XXXXXX";
        Config *c;

        if (!manager.event) {
                ASSERT_NOT_NULL(mkdtemp(template));
                tmpdir = strdup(template);
                ASSERT_OK(setenv("XDG_RUNTIME_DIR", tmpdir, 1));
                ASSERT_OK(sd_event_new(&manager.event));
        }
        registry_free(manager.registry);
        config_free(manager.config);
        ASSERT_OK(registry_new(&manager.registry));
        ASSERT_OK(config_new(&c, true));
        free(c->state_directory);
        c->state_directory = path_join(tmpdir, "state");
        c->supervision.backoff_initial = c->supervision.backoff_min = 1 * USEC_PER_SEC;
        c->supervision.jitter_percent = 0;
        c->supervision.breaker_threshold = 3;
        c->supervision.breaker_timeout = 60 * USEC_PER_SEC;
        c->supervision.liveness_failures = 2;
        manager.config = c;
        manager.user = true;
        free(manager.engines_dir);
        free(manager.logs_dir);
        manager.engines_dir = path_join(c->runtime_directory, "engines");
        manager.logs_dir = path_join(c->runtime_directory, "logs");
        ASSERT_OK(mkdir_p(manager.engines_dir, 0755));
        ASSERT_OK(mkdir_p(manager.logs_dir, 0755));
        ASSERT_OK(mkdir_p(c->state_directory, 0700));
        clock_offset = 0;
}

static PreparedEngine *prepared(const char *id, const char *binary) {
        _cleanup_free_ char *json = NULL, *error = NULL;
        PreparedEngine *pe = NULL;

        /* Port 1: nothing listens there, and the probe is a double anyway. */
        ASSERT_TRUE(asprintf(&json, "{\"pool_id\":\"%s\",\"binary_path\":\"%s\",\"port\":1}", id, binary) >= 0);
        ASSERT_OK(prepared_engine_from_json(json, strlen(json), &pe, &error));
        return pe;
}

typedef struct Done {
        unsigned calls;
        PoolErrorCode code;             /* _POOL_ERROR_INVALID: success */
} Done;

static void on_done(Pool *p, const PoolError *error, void *userdata) {
        Done *d = userdata;

        d->calls++;
        d->code = error ? error->code : _POOL_ERROR_INVALID;
}

/* The timer's delay from now, as sd-event has it, in ms. */
static long long due_in_ms(sd_event_source *s) {
        uint64_t at, n;

        ASSERT_OK(sd_event_source_get_time(s, &at));
        ASSERT_OK(sd_event_now(manager.event, CLOCK_MONOTONIC, &n));
        return ((long long) at - (long long) n) / 1000;
}

/* Lets time pass until s is due (the fake clock moves with it, to the microsecond and one
 * more: a timer is due at its time, the pool's decision then must see that time passed), then
 * runs it. */
static void fire(sd_event_source *s) {
        uint64_t at, n;

        ASSERT_OK(sd_event_source_get_time(s, &at));
        ASSERT_OK(sd_event_now(manager.event, CLOCK_MONOTONIC, &n));
        if (at > n)
                clock_offset += at - n + 1;
        ASSERT_OK(sd_event_source_set_time(s, 1));
        ASSERT_TRUE(sd_event_run(manager.event, 0) > 0);
}

/* What pool_set_state() promises: each timer and probe only in a state that owns it. */
static void check_owned(Pool *p) {
        PoolEntry *e = registry_get(manager.registry, p->id);

        if (p->liveness_timer)
                ASSERT_EQ(p->state, POOL_READY);
        if (p->probe)
                ASSERT_TRUE(p->state == POOL_PROBING || p->state == POOL_READY);
        if (p->restart_timer)
                ASSERT_TRUE(p->state == POOL_BACKOFF || p->state == POOL_FAILED || p->state == POOL_READY);
        if (p->drain_timer) {
                ASSERT_TRUE(p->state == POOL_STARTING || p->state == POOL_PROBING || p->state == POOL_READY);
                ASSERT_TRUE(pool_is_draining(p));
        }
        if (p->adoption_pending)
                ASSERT_EQ(p->state, POOL_PROBING);
        /* The engine's /metrics is read while it serves; its values go when that stops. */
        ASSERT_EQ(!!p->engine_scraper, p->state == POOL_READY && !pool_is_draining(p) &&
                                       manager.config->engine_metrics_interval > 0);
        if (!p->engine_scraper)
                ASSERT_EQ(p->metrics.engine_load_usec, 0);
        if (e)
                ASSERT_EQ(e->draining, pool_is_draining(p));
        /* Between operations nothing is on its way but what the state itself does. */
        if (p->op == POOL_OP_NONE)
                ASSERT_TRUE(p->state != POOL_STARTING && p->state != POOL_STOPPING && p->state != POOL_FAILING);
}

static Pool *new_pool(const char *id) {
        Pool *p;

        ASSERT_OK(pool_new(&p, &manager, id));
        return p;
}

/* Preload through the whole start: check, unit started, MainPID, probe 200: ready. */
static void preload_to_ready(Pool *p, Done *d) {
        PreparedEngine *pe = prepared(p->id, "/bin/true");
        PoolError e = POOL_ERROR_NULL;

        ASSERT_OK(pool_preload(p, &pe, on_done, d, &e));
        ASSERT_EQ(p->op, POOL_OP_PRELOAD);
        check_owned(p);
        unit_event(p, ENGINE_UNIT_NOT_LOADED);
        ASSERT_EQ(p->state, POOL_STARTING);
        check_owned(p);
        p->unit->main_pid = getpid();
        unit_event(p, ENGINE_UNIT_STARTED);
        ASSERT_EQ(p->state, POOL_PROBING);
        ASSERT_NOT_NULL(p->probe);
        check_owned(p);
        probe_finishes(p, 0);
        ASSERT_EQ(p->state, POOL_READY);
        ASSERT_EQ(p->op, POOL_OP_NONE);
        ASSERT_NOT_NULL(p->liveness_timer);
        ASSERT_NULL(p->probe);
        check_owned(p);
}

/* A stop the pool asked for completes. */
static void unit_stopped(Pool *p) {
        p->unit->exited = true;
        p->unit->main_pid = 0;
        unit_event(p, ENGINE_UNIT_STOPPED);
        check_owned(p);
}

/* ---- the transitions ---- */

TEST(preload_ready_stop) {
        Done d = {}, s = {};
        PoolError e = POOL_ERROR_NULL;
        Pool *p;

        setup();
        p = new_pool("a");
        preload_to_ready(p, &d);
        ASSERT_EQ(d.calls, 1u);
        ASSERT_EQ(d.code, _POOL_ERROR_INVALID);
        ASSERT_TRUE(registry_get(manager.registry, "a")->health.ready);
        ASSERT_NOT_NULL(p->handoff_path);

        ASSERT_OK(pool_stop(p, on_done, &s, &e));
        ASSERT_EQ(p->state, POOL_STOPPING);
        ASSERT_EQ(p->op, POOL_OP_STOP);
        ASSERT_NULL(p->liveness_timer);
        check_owned(p);
        unit_stopped(p);
        ASSERT_EQ(p->state, POOL_STOPPED);
        ASSERT_EQ(p->op, POOL_OP_NONE);
        ASSERT_EQ(s.calls, 1u);
        ASSERT_FALSE(registry_get(manager.registry, "a")->health.live);

        /* Stopped twice: NOT_RUNNING, nothing changes. */
        ASSERT_ERROR(pool_stop(p, NULL, NULL, &e), ESRCH);
        ASSERT_EQ(e.code, POOL_ERROR_NOT_RUNNING);
        pool_error_done(&e);
        pool_free(p);
}

TEST(engine_load_while_ready) {
        PoolError e = POOL_ERROR_NULL;
        Done d = {}, dr = {};
        EngineLoad l;
        Pool *p;

        setup();
        p = new_pool("el");
        preload_to_ready(p, &d);
        ASSERT_NOT_NULL(p->engine_scraper);
        ASSERT_TRUE(p->engine_scraper->started);
        ASSERT_STREQ(p->engine_scraper->url, "http://127.0.0.1:1/metrics");
        ASSERT_EQ(p->engine_scraper->interval, 5 * USEC_PER_SEC);
        ASSERT_EQ(p->engine_scraper->timeout, 2 * USEC_PER_SEC);
        ASSERT_FALSE(pool_engine_load(p, now(CLOCK_MONOTONIC), &l));

        scrape_finishes(p, 0, "llamacpp:requests_processing 2\nllamacpp:requests_deferred 1\n");
        ASSERT_TRUE(pool_engine_load(p, now(CLOCK_MONOTONIC), &l));
        ASSERT_TRUE(l.value[ENGINE_LOAD_REQUESTS_RUNNING] == 2);
        ASSERT_TRUE(l.value[ENGINE_LOAD_REQUESTS_WAITING] == 1);
        ASSERT_TRUE(isnan(l.value[ENGINE_LOAD_KV_CACHE_USAGE_RATIO]));
        /* Stale after three intervals and a timeout without an answer (5 s, 2 s: 17 s); a read
         * that timed out keeps the values until then. */
        scrape_finishes(p, -ETIMEDOUT, NULL);
        ASSERT_TRUE(pool_engine_load(p, now(CLOCK_MONOTONIC) + 16 * USEC_PER_SEC, &l));
        ASSERT_FALSE(pool_engine_load(p, now(CLOCK_MONOTONIC) + 18 * USEC_PER_SEC, &l));
        /* A 404, or a body without the names: none at once, and the pool stays ready. */
        scrape_finishes(p, -ENOENT, NULL);
        ASSERT_FALSE(pool_engine_load(p, now(CLOCK_MONOTONIC), &l));
        scrape_finishes(p, 0, "vllm:num_requests_running 3\n");
        ASSERT_TRUE(pool_engine_load(p, now(CLOCK_MONOTONIC), &l));
        scrape_finishes(p, 0, "# nothing\n");
        ASSERT_FALSE(pool_engine_load(p, now(CLOCK_MONOTONIC), &l));
        ASSERT_EQ(p->state, POOL_READY);
        check_owned(p);

        /* A drain stops reading it (check_owned() checks the values went too). */
        scrape_finishes(p, 0, "vllm:num_requests_running 3\n");
        ASSERT_OK(pool_drain(p, 5000, on_done, &dr, &e));
        ASSERT_NULL(p->engine_scraper);
        ASSERT_FALSE(pool_engine_load(p, now(CLOCK_MONOTONIC), &l));
        check_owned(p);
        unit_stopped(p);
        ASSERT_EQ(p->state, POOL_STOPPED);
        check_owned(p);
        pool_free(p);

        /* EngineMetricsInterval=0: never read. */
        manager.config->engine_metrics_interval = 0;
        p = new_pool("em");
        preload_to_ready(p, &d);
        ASSERT_NULL(p->engine_scraper);
        pool_free(p);
}

TEST(health_timeout_fails_the_preload_after_the_unit_is_gone) {
        PreparedEngine *pe = prepared("b", "/bin/true");
        PoolError e = POOL_ERROR_NULL;
        unsigned stops;
        Done d = {};
        Pool *p;

        setup();
        p = new_pool("b");
        ASSERT_OK(pool_preload(p, &pe, on_done, &d, &e));
        unit_event(p, ENGINE_UNIT_NOT_LOADED);
        p->unit->main_pid = getpid();
        unit_event(p, ENGINE_UNIT_STARTED);
        stops = n_unit_stops;
        probe_finishes(p, -ETIMEDOUT);
        /* The answer waits for the unit to be gone. */
        ASSERT_EQ(p->state, POOL_FAILING);
        ASSERT_EQ(n_unit_stops, stops + 1);
        ASSERT_EQ(d.calls, 0u);
        ASSERT_NULL(p->probe);
        check_owned(p);
        unit_stopped(p);
        ASSERT_EQ(p->state, POOL_FAILED);
        ASSERT_EQ(p->op, POOL_OP_NONE);
        ASSERT_EQ(d.calls, 1u);
        ASSERT_EQ(d.code, POOL_ERROR_HEALTH_TIMEOUT);
        /* A failed preload is not supervised: no restart pending. */
        ASSERT_NULL(p->restart_timer);
        ASSERT_CONTAINS(registry_get(manager.registry, "b")->last_error, "health check timed out");
        pool_free(p);
}

TEST(engine_exit_before_ready_is_engine_failed) {
        PreparedEngine *pe = prepared("c", "/bin/true");
        PoolError e = POOL_ERROR_NULL;
        Done d = {};
        Pool *p;

        setup();
        p = new_pool("c");
        ASSERT_OK(pool_preload(p, &pe, on_done, &d, &e));
        unit_event(p, ENGINE_UNIT_NOT_LOADED);
        p->unit->main_pid = getpid();
        unit_event(p, ENGINE_UNIT_STARTED);
        unit_exits(p, 3);
        ASSERT_EQ(p->state, POOL_FAILED);
        ASSERT_EQ(d.code, POOL_ERROR_ENGINE_FAILED);
        ASSERT_NULL(p->probe);
        check_owned(p);
        pool_free(p);
}

TEST(crash_backoff_restart) {
        unsigned starts;
        Done d = {};
        Pool *p;

        setup();
        p = new_pool("d");
        preload_to_ready(p, &d);
        unit_exits(p, 1);
        ASSERT_EQ(p->state, POOL_BACKOFF);
        ASSERT_EQ(p->supervisor.crash_count, 1u);
        /* The liveness timer went with READY; the restart is due after BackoffInitial=. */
        ASSERT_NULL(p->liveness_timer);
        ASSERT_NOT_NULL(p->restart_timer);
        ASSERT_TRUE(due_in_ms(p->restart_timer) > 900 && due_in_ms(p->restart_timer) <= 1000);
        check_owned(p);

        starts = n_unit_starts;
        fire(p->restart_timer);
        ASSERT_EQ(n_unit_starts, starts + 1);
        ASSERT_EQ(p->state, POOL_STARTING);
        ASSERT_EQ(p->op, POOL_OP_RESTART);
        ASSERT_NULL(p->restart_timer);
        check_owned(p);
        p->unit->main_pid = getpid();
        unit_event(p, ENGINE_UNIT_STARTED);
        probe_finishes(p, 0);
        ASSERT_EQ(p->state, POOL_READY);
        ASSERT_EQ(p->supervisor.restart_count, 1u);
        check_owned(p);
        pool_free(p);
}

TEST(circuit_opens_then_half_open_trial) {
        Done d = {};
        Pool *p;

        setup();
        p = new_pool("e");
        preload_to_ready(p, &d);
        /* BreakerThreshold=3: three crashes without a stable run open the circuit. */
        for (unsigned i = 0; i < 3; i++) {
                if (i > 0) {
                        fire(p->restart_timer);
                        p->unit->main_pid = getpid();
                        unit_event(p, ENGINE_UNIT_STARTED);
                        probe_finishes(p, 0);
                }
                unit_exits(p, 1);
                check_owned(p);
        }
        ASSERT_EQ(p->state, POOL_FAILED);
        ASSERT_EQ(p->supervisor.circuit, CIRCUIT_OPEN);
        /* The circuit's tick is pending: after BreakerTimeout= a trial restart. */
        ASSERT_NOT_NULL(p->restart_timer);
        ASSERT_TRUE(due_in_ms(p->restart_timer) > 59000);
        fire(p->restart_timer);
        ASSERT_EQ(p->supervisor.circuit, CIRCUIT_HALF_OPEN);
        ASSERT_EQ(p->state, POOL_STARTING);
        ASSERT_EQ(p->op, POOL_OP_RESTART);
        check_owned(p);
        pool_free(p);
}

TEST(preload_of_failed_pool_cancels_the_circuit_tick) {
        PreparedEngine *pe;
        PoolError e = POOL_ERROR_NULL;
        Done d = {}, d2 = {};
        unsigned starts;
        Pool *p;

        /* The order of events of the first timer fix (4f3cd19): a failed pool with its
         * circuit's tick armed is preloaded; the tick must not restart the old engine later. */
        setup();
        p = new_pool("f");
        preload_to_ready(p, &d);
        for (unsigned i = 0; i < 3; i++) {
                if (i > 0) {
                        fire(p->restart_timer);
                        p->unit->main_pid = getpid();
                        unit_event(p, ENGINE_UNIT_STARTED);
                        probe_finishes(p, 0);
                }
                unit_exits(p, 1);
        }
        ASSERT_EQ(p->state, POOL_FAILED);
        ASSERT_NOT_NULL(p->restart_timer);

        pe = prepared("f", "/bin/true");
        ASSERT_OK(pool_preload(p, &pe, on_done, &d2, &e));
        /* Already while systemd is asked about the unit: no tick may fire in between. */
        ASSERT_NULL(p->restart_timer);
        ASSERT_EQ(p->op, POOL_OP_PRELOAD);
        check_owned(p);
        starts = n_unit_starts;
        unit_event(p, ENGINE_UNIT_NOT_LOADED);
        ASSERT_EQ(n_unit_starts, starts + 1);
        ASSERT_NULL(p->restart_timer);
        ASSERT_EQ(sd_event_run(manager.event, 0), 0);   /* nothing else due */
        check_owned(p);
        pool_free(p);
}

TEST(liveness_failures_stop_and_count_a_crash) {
        unsigned stops;
        Done d = {};
        Pool *p;

        /* The order of events of the second timer fix: the liveness timer of a pool that left
         * READY must not run on. */
        setup();
        p = new_pool("g");
        preload_to_ready(p, &d);
        stops = n_unit_stops;
        for (unsigned i = 0; i < 2; i++) {      /* LivenessFailures=2 */
                ASSERT_NOT_NULL(p->liveness_timer);
                fire(p->liveness_timer);
                ASSERT_NOT_NULL(p->probe);
                probe_finishes(p, -ETIMEDOUT);
                check_owned(p);
        }
        ASSERT_EQ(p->state, POOL_STOPPING);
        ASSERT_EQ(p->op, POOL_OP_HEALTH_STOP);
        ASSERT_EQ(n_unit_stops, stops + 1);
        ASSERT_NULL(p->liveness_timer);
        unit_stopped(p);
        ASSERT_EQ(p->state, POOL_BACKOFF);
        ASSERT_EQ(p->supervisor.crash_count, 1u);
        ASSERT_EQ(p->supervisor.last_reason, CRASH_HEALTH_FAILURE);
        ASSERT_CONTAINS(registry_get(manager.registry, "g")->last_error, "liveness probes");
        check_owned(p);
        pool_free(p);
}

TEST(drain_waits_for_leases_then_stops) {
        PoolError e = POOL_ERROR_NULL;
        Done d = {}, dr = {};
        Pool *p;

        setup();
        p = new_pool("h");
        preload_to_ready(p, &d);
        ASSERT_OK(registry_allocate_lease(manager.registry, "h", NULL));
        ASSERT_OK(pool_drain(p, 5000, on_done, &dr, &e));
        ASSERT_EQ(p->op, POOL_OP_DRAIN);
        ASSERT_TRUE(registry_get(manager.registry, "h")->draining);
        ASSERT_NOT_NULL(p->drain_timer);
        ASSERT_TRUE(due_in_ms(p->drain_timer) > 4900);
        check_owned(p);
        /* A second drain is BUSY; new leases are refused. */
        ASSERT_ERROR(pool_drain(p, 5000, NULL, NULL, &e), EBUSY);
        ASSERT_EQ(e.code, POOL_ERROR_BUSY);
        pool_error_done(&e);
        ASSERT_ERROR(registry_allocate_lease(manager.registry, "h", NULL), EBUSY);

        ASSERT_OK(registry_release_lease(manager.registry, "h", NULL));
        pool_leases_changed(p);
        ASSERT_EQ(p->state, POOL_STOPPING);
        ASSERT_NULL(p->drain_timer);
        check_owned(p);
        unit_stopped(p);
        ASSERT_EQ(p->state, POOL_STOPPED);
        ASSERT_EQ(p->op, POOL_OP_NONE);
        ASSERT_EQ(dr.calls, 1u);
        ASSERT_EQ(dr.code, _POOL_ERROR_INVALID);
        ASSERT_FALSE(p->drain_outcome.force_stopped);
        ASSERT_FALSE(registry_get(manager.registry, "h")->draining);
        pool_free(p);
}

TEST(drain_deadline_forces_the_stop) {
        PoolError e = POOL_ERROR_NULL;
        Done d = {}, dr = {};
        Pool *p;

        setup();
        p = new_pool("i");
        preload_to_ready(p, &d);
        ASSERT_OK(registry_allocate_lease(manager.registry, "i", NULL));
        ASSERT_OK(pool_drain(p, 2000, on_done, &dr, &e));
        fire(p->drain_timer);
        ASSERT_EQ(p->state, POOL_STOPPING);
        check_owned(p);
        unit_stopped(p);
        ASSERT_EQ(dr.calls, 1u);
        ASSERT_TRUE(p->drain_outcome.force_stopped);
        ASSERT_EQ(p->drain_outcome.final_lease_count, 1u);
        pool_free(p);
}

TEST(drain_of_a_starting_pool_cancels_its_preload) {
        PreparedEngine *pe = prepared("j", "/bin/true");
        PoolError e = POOL_ERROR_NULL;
        Done d = {}, dr = {};
        Pool *p;

        setup();
        p = new_pool("j");
        ASSERT_OK(pool_preload(p, &pe, on_done, &d, &e));
        unit_event(p, ENGINE_UNIT_NOT_LOADED);
        p->unit->main_pid = getpid();
        unit_event(p, ENGINE_UNIT_STARTED);
        ASSERT_EQ(p->state, POOL_PROBING);
        /* No leases: the drain stops the engine at once, and the preload is answered now. */
        ASSERT_OK(pool_drain(p, 5000, on_done, &dr, &e));
        ASSERT_EQ(d.calls, 1u);
        ASSERT_EQ(d.code, POOL_ERROR_CANCELED);
        ASSERT_EQ(p->state, POOL_STOPPING);
        ASSERT_NULL(p->probe);
        check_owned(p);
        unit_stopped(p);
        ASSERT_EQ(p->state, POOL_STOPPED);
        ASSERT_EQ(dr.calls, 1u);
        ASSERT_EQ(d.calls, 1u);
        pool_free(p);
}

TEST(stop_during_preload_cancels_it) {
        PreparedEngine *pe = prepared("k", "/bin/true");
        PoolError e = POOL_ERROR_NULL;
        Done d = {}, s = {};
        Pool *p;

        setup();
        p = new_pool("k");
        ASSERT_OK(pool_preload(p, &pe, on_done, &d, &e));
        unit_event(p, ENGINE_UNIT_NOT_LOADED);
        ASSERT_EQ(p->state, POOL_STARTING);
        ASSERT_OK(pool_stop(p, on_done, &s, &e));
        ASSERT_EQ(p->op, POOL_OP_STOP);
        check_owned(p);
        unit_stopped(p);
        ASSERT_EQ(p->state, POOL_STOPPED);
        ASSERT_EQ(d.code, POOL_ERROR_CANCELED);
        ASSERT_EQ(s.calls, 1u);
        ASSERT_EQ(s.code, _POOL_ERROR_INVALID);
        pool_free(p);
}

TEST(reload_rolls_back_when_the_new_engine_fails) {
        PreparedEngine *pe;
        PoolError e = POOL_ERROR_NULL;
        Done d = {}, rl = {};
        Pool *p;

        setup();
        p = new_pool("l");
        preload_to_ready(p, &d);
        pe = prepared("l", "/bin/sh");
        ASSERT_OK(pool_reload(p, &pe, 5000, on_done, &rl, &e));
        /* No leases: the old engine is stopped at once. */
        ASSERT_EQ(p->op, POOL_OP_RELOAD_DRAIN);
        ASSERT_EQ(p->state, POOL_STOPPING);
        check_owned(p);
        unit_stopped(p);
        ASSERT_EQ(p->op, POOL_OP_RELOAD_NEW);
        ASSERT_EQ(p->state, POOL_STARTING);
        ASSERT_STREQ(p->prepared->binary_path, "/bin/sh");
        check_owned(p);
        p->unit->main_pid = getpid();
        unit_event(p, ENGINE_UNIT_STARTED);
        unit_exits(p, 2);
        /* Rolled back: the old engine starts again. */
        ASSERT_EQ(p->op, POOL_OP_ROLLBACK);
        ASSERT_EQ(p->state, POOL_STARTING);
        ASSERT_STREQ(p->prepared->binary_path, "/bin/true");
        ASSERT_EQ(rl.calls, 0u);
        p->unit->main_pid = getpid();
        unit_event(p, ENGINE_UNIT_STARTED);
        probe_finishes(p, 0);
        ASSERT_EQ(p->state, POOL_READY);
        ASSERT_EQ(p->op, POOL_OP_NONE);
        ASSERT_EQ(rl.calls, 1u);
        ASSERT_EQ(rl.code, POOL_ERROR_RELOAD_FAILED);
        ASSERT_TRUE(p->reload_outcome.rolled_back);
        /* A reload is no crash. */
        ASSERT_EQ(p->supervisor.crash_count, 0u);
        check_owned(p);
        pool_free(p);
}

TEST(reload_aborted_at_the_drain_deadline_keeps_the_old_engine) {
        PreparedEngine *pe;
        PoolError e = POOL_ERROR_NULL;
        Done d = {}, rl = {};
        unsigned stops;
        Pool *p;

        setup();
        p = new_pool("m");
        preload_to_ready(p, &d);
        ASSERT_OK(registry_allocate_lease(manager.registry, "m", NULL));
        pe = prepared("m", "/bin/sh");
        stops = n_unit_stops;
        ASSERT_OK(pool_reload(p, &pe, 1000, on_done, &rl, &e));
        ASSERT_ERROR(pool_reload(p, &pe, 1000, NULL, NULL, &e), EBUSY);
        pool_error_done(&e);
        fire(p->drain_timer);
        ASSERT_EQ(rl.code, POOL_ERROR_RELOAD_ABORTED);
        ASSERT_EQ(p->state, POOL_READY);
        ASSERT_EQ(p->op, POOL_OP_NONE);
        ASSERT_EQ(n_unit_stops, stops);
        ASSERT_FALSE(registry_get(manager.registry, "m")->draining);
        ASSERT_NOT_NULL(p->liveness_timer);
        check_owned(p);
        pool_free(p);
}

TEST(adoption_and_orphan) {
        SavedPool state = {};
        Pool *p, *o;

        setup();
        p = new_pool("n");
        state.prepared = prepared("n", "/bin/true");
        ASSERT_OK(pool_adopt(p, &state));
        ASSERT_EQ(p->state, POOL_PROBING);
        ASSERT_EQ(p->op, POOL_OP_ADOPT);
        ASSERT_TRUE(p->adoption_pending);
        p->unit->main_pid = getpid();
        unit_event(p, ENGINE_UNIT_MAIN_PID);
        ASSERT_NOT_NULL(p->probe);
        check_owned(p);
        probe_finishes(p, 0);
        ASSERT_FALSE(p->adoption_pending);
        ASSERT_EQ(p->state, POOL_READY);
        ASSERT_EQ(p->op, POOL_OP_NONE);
        check_owned(p);

        o = new_pool("o");
        ASSERT_OK(pool_adopt_orphan(o, "no saved state"));
        ASSERT_EQ(o->state, POOL_ORPHAN);
        ASSERT_TRUE(pool_is_active(o));
        {
                PreparedEngine *pe = prepared("o", "/bin/true");
                PoolError e = POOL_ERROR_NULL;

                ASSERT_ERROR(pool_preload(o, &pe, NULL, NULL, &e), EBUSY);
                ASSERT_EQ(e.code, POOL_ERROR_ORPHAN_UNIT);
                pool_error_done(&e);
                prepared_engine_free(pe);
        }
        unit_exits(o, 0);
        ASSERT_EQ(o->state, POOL_STOPPED);
        check_owned(o);
        pool_free(p);
        pool_free(o);
}

TEST(preload_validation_changes_nothing) {
        PreparedEngine *pe = prepared("q", "/nonexistent/engine");
        PoolError e = POOL_ERROR_NULL;
        unsigned checks = n_unit_checks, starts = n_unit_starts;
        Pool *p;

        setup();
        p = new_pool("q");
        ASSERT_ERROR(pool_preload(p, &pe, NULL, NULL, &e), ENOENT);
        ASSERT_EQ(e.code, POOL_ERROR_BINARY_NOT_FOUND);
        ASSERT_EQ(p->state, POOL_STOPPED);
        ASSERT_EQ(p->op, POOL_OP_NONE);
        ASSERT_NULL(registry_get(manager.registry, "q"));
        ASSERT_EQ(n_unit_checks, checks);
        ASSERT_EQ(n_unit_starts, starts);
        pool_error_done(&e);
        prepared_engine_free(pe);

        pe = prepared("q", "/");
        ASSERT_ERROR(pool_preload(p, &pe, NULL, NULL, &e), EACCES);
        ASSERT_EQ(e.code, POOL_ERROR_BINARY_NOT_EXECUTABLE);
        pool_error_done(&e);
        prepared_engine_free(pe);
        pool_free(p);
}

DEFINE_TEST_MAIN
