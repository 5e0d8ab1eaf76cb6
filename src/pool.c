/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>

#include "handoff.h"
#include "log.h"
#include "manager.h"
#include "pool.h"
#include "shared/fileio.h"
#include "shared/strv.h"

static const char *const pool_state_table[_POOL_STATE_MAX] = {
        [POOL_STOPPED] = "stopped",
        [POOL_STARTING] = "starting",
        [POOL_PROBING] = "probing",
        [POOL_READY] = "ready",
        [POOL_STOPPING] = "stopping",
        [POOL_FAILING] = "failing",
        [POOL_FAILED] = "failed",
};

const char *pool_state_to_string(PoolState s) {
        if (s < 0 || s >= _POOL_STATE_MAX)
                return NULL;
        return pool_state_table[s];
}

PoolState pool_state_from_string(const char *s) {
        for (PoolState i = 0; i < _POOL_STATE_MAX; i++)
                if (streq_ptr(s, pool_state_table[i]))
                        return i;
        return _POOL_STATE_INVALID;
}

/* States in which an engine unit exists or is being created or removed. */
static bool state_is_active(PoolState s) {
        return s == POOL_STARTING || s == POOL_PROBING || s == POOL_READY || s == POOL_STOPPING ||
                s == POOL_FAILING;
}

static int64_t now_epoch_ms(void) {
        return (int64_t) (now(CLOCK_REALTIME) / USEC_PER_MSEC);
}

static void pool_set_state(Pool *p, PoolState s) {
        Registry *reg = p->manager->registry;
        PoolEntry *e;

        p->state = s;
        if (registry_ensure(reg, p->id, &e) < 0)
                return (void) log_oom();
        (void) free_and_strdup(&e->state, pool_state_to_string(s));
        /* live: the engine process runs and is ours to serve; ready: it answered its health check. */
        e->health.live = s == POOL_PROBING || s == POOL_READY;
        /* MainPID is the engine's current pid: none once the unit is gone. */
        if (s == POOL_STOPPED || s == POOL_FAILED)
                e->main_pid = 0;
        e->health.ready = s == POOL_READY;
        manager_pool_changed(p->manager, p->id);
}

static void waiters_run(Pool *p, PoolWaiter **list, int r, const char *error) {
        PoolWaiter *w = TAKE_PTR(*list);

        /* Detach the list first: a callback may start a new operation on this pool. */
        while (w) {
                PoolWaiter *next = w->next;

                if (w->callback)
                        w->callback(p, r, error, w->userdata);
                free(w);
                w = next;
        }
}

static int waiter_add(PoolWaiter **list, PoolDoneCallback cb, void *userdata) {
        PoolWaiter *w;

        if (!cb)
                return 0;
        w = malloc(sizeof(PoolWaiter));
        if (!w)
                return -ENOMEM;
        *w = (PoolWaiter) { .callback = cb, .userdata = userdata, .next = *list };
        *list = w;
        return 0;
}

static void waiters_forget(PoolWaiter **list, void *userdata) {
        for (PoolWaiter **w = list; *w; ) {
                if ((*w)->userdata == userdata) {
                        PoolWaiter *dead = *w;
                        *w = dead->next;
                        free(dead);
                } else
                        w = &(*w)->next;
        }
}

void pool_forget_waiter(Pool *p, void *userdata) {
        waiters_forget(&p->preload_waiters, userdata);
        waiters_forget(&p->stop_waiters, userdata);
}

bool pool_is_active(const Pool *p) {
        return state_is_active(p->state);
}

static void pool_remove_files(Pool *p) {
        PoolEntry *e = registry_get(p->manager->registry, p->id);

        if (p->pid_path)
                (void) unlink_if_exists(p->pid_path);
        if (p->handoff_path) {
                (void) unlink_if_exists(p->handoff_path);
                p->handoff_path = mfree(p->handoff_path);
        }
        /* The registry must not point readers at a file that is gone. */
        if (e)
                e->handoff_path = mfree(e->handoff_path);
}

static void pool_log_failure(Pool *p, const char *error) {
        log_struct(LOG_ERR,
                   LOG_MESSAGE_ID(MESSAGE_ENGINE_FAILED),
                   "POOL_ID=%s", p->id,
                   "UNIT=%s", p->unit ? p->unit->name : "",
                   "ENGINE_VERSION=%s", p->prepared ? strempty(p->prepared->engine_version) : "",
                   "ERROR=%s", error,
                   LOG_MESSAGE("Pool \"%s\": preload failed: %s", p->id, error),
                   NULL);
}

/* Preload failed: stop the unit (if systemd knows it), then report. */
static void pool_fail(Pool *p, const char *error) {
        int r;

        probe_free(TAKE_PTR(p->probe));
        (void) free_and_strdup(&p->failure, error);
        (void) registry_set_last_error(p->manager->registry, p->id, error);
        pool_log_failure(p, error);

        if (p->unit && !p->unit->exited) {
                pool_set_state(p, POOL_FAILING);
                r = engine_unit_stop(p->unit);
                if (r >= 0)
                        return;
                log_warning_errno(r, "Failed to stop unit %s of failed pool \"%s\": %m", p->unit->name, p->id);
        }

        pool_remove_files(p);
        pool_set_state(p, POOL_FAILED);
        waiters_run(p, &p->preload_waiters, -EIO, error);
}

static int pool_write_handoff(Pool *p) {
        Handoff h = HANDOFF_INIT;
        char ts[FORMAT_TIMESTAMP_MAX];
        _cleanup_free_ char *path = NULL;
        int r;

        r = handoff_from_prepared_engine(p->prepared, &h);
        if (r < 0)
                return r;
        h.pid = p->unit->main_pid;
        if (free_and_strdup(&h.unit, p->unit->name) < 0 ||
            free_and_strdup(&h.ready_at, format_timestamp_rfc3339(ts, sizeof(ts), now(CLOCK_REALTIME))) < 0) {
                handoff_done(&h);
                return -ENOMEM;
        }

        r = handoff_write(p->manager->engines_dir, &h, &path);
        if (r >= 0)
                r = registry_register_ready_from_handoff(p->manager->registry, p->id, &h, now_epoch_ms());
        handoff_done(&h);
        if (r < 0) {
                if (path)
                        (void) unlink_if_exists(path);
                return r;
        }

        free(p->handoff_path);
        p->handoff_path = TAKE_PTR(path);
        return 0;
}

static void on_probe_done(Probe *probe, int r, void *userdata) {
        Pool *p = userdata;
        PoolEntry *e;
        usec_t ready_usec = probe_ready_usec(probe);
        _cleanup_free_ char *msg = NULL;

        if (r == -ETIMEDOUT) {
                const char *last = probe_last_error(probe);
                uint64_t ms = (p->prepared->health_timeout_ms > 0 ? p->prepared->health_timeout_ms :
                               p->manager->config->health_timeout / USEC_PER_MSEC);

                if (asprintf(&msg, "health check timed out after %" PRIu64 " ms%s%s%s", ms,
                             last ? " (last probe: " : "", strempty(last), last ? ")" : "") < 0)
                        return (void) log_oom();
                p->probe = probe_free(p->probe);
                pool_fail(p, msg);
                return;
        }

        r = pool_write_handoff(p);
        p->probe = probe_free(p->probe);
        if (r < 0) {
                if (asprintf(&msg, "failed to write handoff file: %s", strerror(-r)) < 0)
                        return (void) log_oom();
                pool_fail(p, msg);
                return;
        }

        e = registry_get(p->manager->registry, p->id);
        if (e) {
                (void) free_and_strdup(&e->handoff_path, p->handoff_path);
                e->ready_at_usec = now(CLOCK_REALTIME);
        }
        pool_set_state(p, POOL_READY);

        log_struct(LOG_INFO,
                   LOG_MESSAGE_ID(MESSAGE_ENGINE_READY),
                   "POOL_ID=%s", p->id,
                   "UNIT=%s", p->unit->name,
                   "ENGINE_PID=%d", (int) p->unit->main_pid,
                   "ENGINE_URL=%s", p->url,
                   "ENGINE_VERSION=%s", strempty(p->prepared->engine_version),
                   "HANDOFF_PATH=%s", p->handoff_path,
                   "TIME_TO_READY_MSEC=%llu", (unsigned long long) ((ready_usec - p->start_usec) / USEC_PER_MSEC),
                   LOG_MESSAGE("Pool \"%s\" is ready: engine %s (pid %d) serves %s after %llu ms", p->id,
                               p->unit->name, (int) p->unit->main_pid, p->url,
                               (unsigned long long) ((ready_usec - p->start_usec) / USEC_PER_MSEC)),
                   NULL);

        waiters_run(p, &p->preload_waiters, 0, NULL);
}

static int pool_start_probe(Pool *p) {
        _cleanup_free_ char *url = NULL;
        const Config *c = p->manager->config;
        usec_t interval, timeout;
        int r;

        interval = p->prepared->health_interval_ms > 0 ? p->prepared->health_interval_ms * USEC_PER_MSEC :
                c->health_interval;
        timeout = p->prepared->health_timeout_ms > 0 ? p->prepared->health_timeout_ms * USEC_PER_MSEC :
                c->health_timeout;

        if (asprintf(&url, "%s%s", p->url, p->prepared->health_path) < 0)
                return -ENOMEM;

        /* The deadline counts from the start request, not from the moment the pid was known:
         * HealthTimeout= bounds the whole preload. */
        r = probe_new(&p->probe, p->manager->event, p->manager->curl, url, interval,
                      timeout - MIN(timeout, now(CLOCK_MONOTONIC) - p->start_usec), on_probe_done, p);
        if (r < 0)
                return r;
        return probe_start(p->probe);
}

static void pool_on_main_pid(Pool *p) {
        _cleanup_free_ char *content = NULL;
        PoolEntry *e;
        int r;

        if (registry_ensure(p->manager->registry, p->id, &e) >= 0)
                e->main_pid = p->unit->main_pid;
        manager_pool_changed(p->manager, p->id);

        if (p->state != POOL_PROBING)
                return;

        /* The pid file is written before health checking starts (predecessor contract). */
        if (asprintf(&content, "%d\n", (int) p->unit->main_pid) < 0)
                return pool_fail(p, "out of memory");
        r = write_file_atomic(p->pid_path, content, strlen(content), 0644);
        if (r < 0) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "failed to write pid file %s: %s", p->pid_path, strerror(-r)) < 0)
                        msg = NULL;
                return pool_fail(p, msg ?: "failed to write pid file");
        }

        r = pool_start_probe(p);
        if (r < 0)
                return pool_fail(p, "failed to start health probe");
}

static void pool_on_exited(Pool *p) {
        _cleanup_free_ char *exit = NULL, *msg = NULL;

        (void) engine_unit_describe_exit(p->unit, &exit);

        switch (p->state) {

        case POOL_STARTING:
        case POOL_PROBING:
                if (asprintf(&msg, "engine %s before becoming ready", strna(exit)) < 0)
                        return (void) log_oom();
                pool_fail(p, msg);
                return;

        case POOL_READY:
                if (asprintf(&msg, "engine %s", strna(exit)) < 0)
                        return (void) log_oom();
                (void) registry_set_last_error(p->manager->registry, p->id, msg);
                pool_remove_files(p);
                log_struct(LOG_ERR,
                           LOG_MESSAGE_ID(MESSAGE_ENGINE_EXITED),
                           "POOL_ID=%s", p->id,
                           "UNIT=%s", p->unit->name,
                           "ENGINE_PID=%d", (int) p->unit->main_pid,
                           "ENGINE_VERSION=%s", strempty(p->prepared->engine_version),
                           "EXIT_CODE=%d", p->unit->exec_main_code,
                           "EXIT_STATUS=%d", p->unit->exec_main_status,
                           "UNIT_RESULT=%s", strna(p->unit->result),
                           "ERROR=%s", msg,
                           LOG_MESSAGE("Pool \"%s\": %s", p->id, msg),
                           NULL);
                pool_set_state(p, POOL_FAILED);
                return;

        default:
                /* Stopping or failing: the exit was asked for; the stop job reports. */
                return;
        }
}

static void pool_on_stopped(Pool *p, const char *error) {
        PoolState old = p->state;

        pool_remove_files(p);

        if (old == POOL_FAILING) {
                pool_set_state(p, POOL_FAILED);
                waiters_run(p, &p->preload_waiters, -EIO, p->failure);
                waiters_run(p, &p->stop_waiters, 0, NULL);
                return;
        }

        if (error) {
                log_warning("Pool \"%s\": stopping %s failed: %s", p->id, p->unit->name, error);
                /* Keep the state: the unit may still run. */
                pool_set_state(p, p->unit->exited ? POOL_STOPPED : old);
                waiters_run(p, &p->stop_waiters, -EIO, error);
                return;
        }

        log_struct(LOG_INFO,
                   LOG_MESSAGE_ID(MESSAGE_ENGINE_STOPPED),
                   "POOL_ID=%s", p->id,
                   "UNIT=%s", p->unit->name,
                   LOG_MESSAGE("Pool \"%s\": engine %s stopped", p->id, p->unit->name),
                   NULL);
        pool_set_state(p, POOL_STOPPED);
        /* A preload interrupted by a stop fails. */
        waiters_run(p, &p->preload_waiters, -ECANCELED, "preload canceled: the pool was stopped");
        waiters_run(p, &p->stop_waiters, 0, NULL);
}

static void on_unit_event(EngineUnit *u, EngineUnitEvent event, const char *error, void *userdata) {
        Pool *p = userdata;

        switch (event) {

        case ENGINE_UNIT_STARTED:
                if (p->state != POOL_STARTING)
                        return;
                pool_set_state(p, POOL_PROBING);
                if (u->main_pid > 0)
                        pool_on_main_pid(p);
                return;

        case ENGINE_UNIT_MAIN_PID:
                pool_on_main_pid(p);
                return;

        case ENGINE_UNIT_START_FAILED:
                if (p->state == POOL_STARTING || p->state == POOL_PROBING)
                        pool_fail(p, error);
                return;

        case ENGINE_UNIT_EXITED:
                pool_on_exited(p);
                return;

        case ENGINE_UNIT_STOPPED:
                pool_on_stopped(p, NULL);
                return;

        case ENGINE_UNIT_STOP_FAILED:
                pool_on_stopped(p, error ?: "unknown error");
                return;
        }
}

int pool_new(Pool **ret, Manager *m, const char *id) {
        _cleanup_(pool_freep) Pool *p = NULL;
        _cleanup_free_ char *unit = NULL, *name = NULL;
        int r;

        p = calloc(1, sizeof(Pool));
        if (!p)
                return -ENOMEM;
        p->manager = m;
        p->state = POOL_STOPPED;
        p->id = strdup(id);
        if (!p->id)
                return -ENOMEM;

        r = pool_unit_name(id, &unit);
        if (r < 0)
                return r;
        r = engine_unit_new(&p->unit, m->bus, m->event, unit, on_unit_event, p);
        if (r < 0)
                return r;

        if (asprintf(&name, "%s.pid", id) < 0)
                return -ENOMEM;
        p->pid_path = path_join(m->config->runtime_directory, name);
        if (!p->pid_path)
                return -ENOMEM;

        *ret = TAKE_PTR(p);
        return 0;
}

Pool *pool_free(Pool *p) {
        if (!p)
                return NULL;
        /* Freeing cancels every callback: the unit's bus slots and the probe go with it. */
        waiters_run(p, &p->preload_waiters, -ECANCELED, "daemon shutting down");
        waiters_run(p, &p->stop_waiters, -ECANCELED, "daemon shutting down");
        probe_free(p->probe);
        engine_unit_free(p->unit);
        prepared_engine_free(p->prepared);
        free(p->id);
        free(p->pid_path);
        free(p->handoff_path);
        free(p->url);
        free(p->failure);
        return mfree(p);
}

static int build_spec_and_start(Pool *p) {
        const PreparedEngine *pe = p->prepared;
        const Config *c = p->manager->config;
        _cleanup_strv_free_ char **argv = NULL, **env = NULL;
        _cleanup_free_ char *description = NULL, *ident = NULL, *log_file = NULL, *cvd = NULL;
        EngineUnitSpec spec;
        int r;

        r = strv_extend(&argv, pe->binary_path);
        if (r < 0)
                return r;
        STRV_FOREACH(f, pe->flags) {
                r = strv_extend(&argv, *f);
                if (r < 0)
                        return r;
        }

        env = strv_copy(pe->env);
        if (!env)
                return -ENOMEM;
        r = device_mask_to_cuda_visible_devices(pe->device_mask, &cvd);
        if (r < 0)
                return r;
        if (cvd) {
                _cleanup_free_ char *a = NULL;

                if (asprintf(&a, "CUDA_VISIBLE_DEVICES=%s", cvd) < 0)
                        return -ENOMEM;
                r = strv_push(&env, a);
                if (r < 0)
                        return r;
                TAKE_PTR(a);
        }
        /* Let engines and their tools know which pool they serve. */
        {
                _cleanup_free_ char *a = NULL;

                if (asprintf(&a, "POOL_ID=%s", pe->pool_id) < 0)
                        return -ENOMEM;
                r = strv_push(&env, a);
                if (r < 0)
                        return r;
                TAKE_PTR(a);
        }

        if (asprintf(&description, "LLM engine %s for pool %s", engine_kind_to_string(pe->engine),
                     pe->pool_id) < 0 ||
            asprintf(&ident, "pool-engine-%s", pe->pool_id) < 0)
                return -ENOMEM;

        if (c->engine_logs == ENGINE_LOGS_FILE) {
                _cleanup_free_ char *name = NULL;

                if (asprintf(&name, "%s.log", pe->pool_id) < 0)
                        return -ENOMEM;
                log_file = path_join(p->manager->logs_dir, name);
                if (!log_file)
                        return -ENOMEM;
        }

        spec = (EngineUnitSpec) {
                .description = description,
                .slice = "pool-engines.slice",
                .syslog_identifier = ident,
                .argv = argv,
                .environment = env,
                .log_file = log_file,
                .stop_timeout = c->stop_timeout,
                .sandbox = c->engine_sandbox != ENGINE_SANDBOX_OFF,
                .protect_kernel = c->engine_sandbox == ENGINE_SANDBOX_FULL,
        };
        return engine_unit_start(p->unit, &spec);
}

int pool_preload(Pool *p, PreparedEngine **prepared, PoolDoneCallback cb, void *userdata, char **ret_error) {
        int r;

        if (pool_is_active(p)) {
                if (asprintf(ret_error, "pool %s is already %s", p->id, pool_state_to_string(p->state)) < 0)
                        *ret_error = NULL;
                return -EBUSY;
        }

        if (access((*prepared)->binary_path, X_OK) < 0) {
                if ((errno == ENOENT ?
                     asprintf(ret_error, "engine binary not found: %s", (*prepared)->binary_path) :
                     asprintf(ret_error, "engine binary %s is not executable: %s", (*prepared)->binary_path,
                              strerror(errno))) < 0)
                        *ret_error = NULL;
                /* Recorded like any other preload failure (OC-POOL-3003). */
                (void) registry_ensure(p->manager->registry, p->id, NULL);
                (void) registry_set_last_error(p->manager->registry, p->id, *ret_error);
                pool_log_failure(p, strna(*ret_error));
                p->failure = mfree(p->failure);
                pool_set_state(p, POOL_FAILED);
                return -ENOENT;
        }

        prepared_engine_free(p->prepared);
        p->prepared = TAKE_PTR(*prepared);
        p->failure = mfree(p->failure);
        p->url = mfree(p->url);
        r = prepared_engine_base_url(p->prepared, &p->url);
        if (r < 0)
                return r;

        r = waiter_add(&p->preload_waiters, cb, userdata);
        if (r < 0)
                return r;

        p->start_usec = now(CLOCK_MONOTONIC);
        {
                PoolEntry *e;

                r = registry_ensure(p->manager->registry, p->id, &e);
                if (r < 0)
                        return r;
                (void) free_and_strdup(&e->replica_id, p->prepared->replica_id);
                (void) free_and_strdup(&e->unit, p->unit->name);
                (void) free_and_strdup(&e->url, p->url);
                (void) free_and_strdup(&e->engine_version, p->prepared->engine_version);
                (void) free_and_strdup(&e->device_mask, p->prepared->device_mask);
                (void) free_and_strdup(&e->handoff_path, NULL);
                if (p->prepared->slots_total >= 0)
                        (void) registry_set_slots(p->manager->registry, p->id, p->prepared->slots_total,
                                                  p->prepared->slots_total);
                e->main_pid = 0;
                e->started_at_usec = now(CLOCK_REALTIME);
                e->ready_at_usec = 0;
        }

        log_struct(LOG_INFO,
                   LOG_MESSAGE_ID(MESSAGE_ENGINE_STARTING),
                   "POOL_ID=%s", p->id,
                   "UNIT=%s", p->unit->name,
                   "ENGINE=%s", engine_kind_to_string(p->prepared->engine),
                   "ENGINE_VERSION=%s", strempty(p->prepared->engine_version),
                   "ENGINE_BINARY=%s", p->prepared->binary_path,
                   "DEVICE_MASK=%s", strempty(p->prepared->device_mask),
                   LOG_MESSAGE("Pool \"%s\": starting engine %s as %s", p->id, p->prepared->binary_path,
                               p->unit->name),
                   NULL);

        pool_set_state(p, POOL_STARTING);
        r = build_spec_and_start(p);
        if (r < 0) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "failed to ask systemd to start %s: %s", p->unit->name, strerror(-r)) < 0)
                        msg = NULL;
                pool_fail(p, msg ?: "failed to start unit");
        }
        return 0;
}

int pool_stop(Pool *p, PoolDoneCallback cb, void *userdata, char **ret_error) {
        int r;

        if (!pool_is_active(p)) {
                if (asprintf(ret_error, "pool %s is not running (%s)", p->id, pool_state_to_string(p->state)) < 0)
                        *ret_error = NULL;
                return -ESRCH;
        }

        r = waiter_add(&p->stop_waiters, cb, userdata);
        if (r < 0)
                return r;
        if (p->state == POOL_STOPPING || p->state == POOL_FAILING)
                return 0;

        probe_free(TAKE_PTR(p->probe));
        pool_set_state(p, POOL_STOPPING);
        r = engine_unit_stop(p->unit);
        if (r < 0) {
                pool_on_stopped(p, strerror(-r));
                return 0;
        }
        return 0;
}
