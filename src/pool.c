/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <arpa/inet.h>
#include <assert.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <systemd/sd-journal.h>

#include "handoff.h"
#include "journal-tail.h"
#include "log.h"
#include "manager.h"
#include "placement.h"
#include "pool.h"
#include "probe-trigger.h"
#include "shared/cgroup-util.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/string-table.h"
#include "shared/string-util.h"
#include "shared/strv.h"
#include "sock-diag.h"

static const char *pool_engine_name(const Pool *p) {
        return p->prepared ? strempty(engine_kind_to_string(p->prepared->engine)) : "";
}

/* A journal entry about one pool: every one carries POOL_ID=, UNIT=, ENGINE=, ENGINE_VERSION=
 * and DEVICE_MASK= (empty when there is none), and CORRELATION_ID= while an operation a
 * request started is under way, so that journalctl POOL_ID=... (or CORRELATION_ID=...) finds
 * them all. A field that formats to nothing is left out (log.c). */
#define log_pool_struct(level, p, ...)                                                  \
        log_struct((level),                                                             \
                   "POOL_ID=%s", (p)->id,                                               \
                   "UNIT=%s", (p)->unit ? (p)->unit->name : "",                         \
                   "ENGINE=%s", pool_engine_name(p),                                    \
                   "ENGINE_VERSION=%s", (p)->prepared ? strempty((p)->prepared->engine_version) : "", \
                   "DEVICE_MASK=%s", (p)->prepared ? strempty((p)->prepared->device_mask) : "", \
                   "%s%s", (p)->correlation_id ? "CORRELATION_ID=" : "", strempty((p)->correlation_id), \
                   __VA_ARGS__)

#define log_pool(level, p, fmt, ...)                                                   \
        log_pool_struct((level), (p), LOG_MESSAGE("Pool \"%s\": " fmt, (p)->id, ##__VA_ARGS__), NULL)

static const char *const pool_state_table[_POOL_STATE_MAX] = {
        [POOL_STOPPED] = "stopped",
        [POOL_STARTING] = "starting",
        [POOL_PROBING] = "probing",
        [POOL_READY] = "ready",
        [POOL_STOPPING] = "stopping",
        [POOL_FAILING] = "failing",
        [POOL_FAILED] = "failed",
        [POOL_BACKOFF] = "backoff",
        [POOL_ORPHAN] = "orphan",
};

DEFINE_STRING_TABLE_LOOKUP(pool_state, PoolState);

static const char *const pool_operation_table[_POOL_OP_MAX] = {
        [POOL_OP_NONE] = "none",
        [POOL_OP_PRELOAD] = "preload",
        [POOL_OP_RESTART] = "restart",
        [POOL_OP_ADOPT] = "adopt",
        [POOL_OP_HEALTH_STOP] = "health-stop",
        [POOL_OP_STOP] = "stop",
        [POOL_OP_DRAIN] = "drain",
        [POOL_OP_RELOAD_DRAIN] = "reload-drain",
        [POOL_OP_RELOAD_NEW] = "reload-new",
        [POOL_OP_ROLLBACK] = "rollback",
};

DEFINE_STRING_TABLE_LOOKUP_TO_STRING(pool_operation, PoolOperation);

/* Operations that start an engine: what a failed start leads to depends on which. */
static bool op_is_start(PoolOperation o) {
        return o == POOL_OP_PRELOAD || o == POOL_OP_RESTART || o == POOL_OP_ADOPT ||
                o == POOL_OP_RELOAD_NEW || o == POOL_OP_ROLLBACK;
}

static bool op_is_drain(PoolOperation o) {
        return o == POOL_OP_DRAIN || o == POOL_OP_RELOAD_DRAIN;
}

/* States in which an engine unit exists, is being created or removed, or will be restarted. */
static bool state_is_active(PoolState s) {
        return s == POOL_STARTING || s == POOL_PROBING || s == POOL_READY || s == POOL_STOPPING ||
                s == POOL_FAILING || s == POOL_BACKOFF || s == POOL_ORPHAN;
}

static int64_t now_epoch_ms(void) {
        return (int64_t) (now(CLOCK_REALTIME) / USEC_PER_MSEC);
}

static const SupervisionPolicy *policy(Pool *p) {
        return &p->manager->config->supervision;
}

/* ---- The engine's own load (its /metrics) ---- */

static void on_engine_scraped(EngineScraper *s, int r, const EngineLoad *load, const char *error,
                              void *userdata) {
        Pool *p = userdata;
        PoolMetrics *m = &p->metrics;
        _cleanup_free_ char *why = NULL;

        if (r > 0) {
                m->engine_load = *load;
                (void) sd_event_now(p->manager->event, CLOCK_MONOTONIC, &m->engine_load_usec);
        } else {
                why = strdup(r == 0 ? "no load metrics known for llama.cpp or vLLM" : strna(error));
                if (!why)
                        return (void) log_oom();
                /* An answer without them (a 404, a body without the names): none. A transfer that
                 * failed or timed out keeps the last values until they are stale. */
                if (r == 0 || r == -ENOENT || r == -EFBIG) {
                        engine_load_init(&m->engine_load);
                        m->engine_load_usec = 0;
                }
        }

        /* Debug only, once per change: an engine without metrics is no error for the pool. */
        if (!streq_ptr(why, m->engine_load_error)) {
                if (why)
                        log_pool(LOG_DEBUG, p, "no engine load from %s/metrics: %s.", p->url, why);
                else
                        log_pool(LOG_DEBUG, p, "engine load read from %s/metrics.", p->url);
                free(m->engine_load_error);
                m->engine_load_error = TAKE_PTR(why);
        }
}

static void pool_engine_metrics_stop(Pool *p) {
        p->engine_scraper = engine_scraper_free(p->engine_scraper);
        engine_load_init(&p->metrics.engine_load);
        p->metrics.engine_load_usec = 0;
        p->metrics.engine_load_error = mfree(p->metrics.engine_load_error);
}

/* Scrapes while the engine serves: ready and not draining, with a base URL. */
static void pool_engine_metrics_update(Pool *p) {
        const Config *c = p->manager->config;
        _cleanup_free_ char *url = NULL;
        int r;

        if (p->state != POOL_READY || pool_is_draining(p) || !p->url || c->engine_metrics_interval == 0) {
                if (p->engine_scraper)
                        pool_engine_metrics_stop(p);
                return;
        }
        if (p->engine_scraper)
                return;

        if (asprintf(&url, "%s/metrics", p->url) < 0)
                return (void) log_oom();
        r = engine_scraper_new(&p->engine_scraper, p->manager->event, url,
                               c->engine_metrics_interval, c->engine_metrics_timeout, on_engine_scraped, p);
        if (r >= 0)
                r = engine_scraper_start(p->engine_scraper);
        if (r < 0) {
                p->engine_scraper = engine_scraper_free(p->engine_scraper);
                log_warning_errno(r, "Pool \"%s\": failed to start reading the engine's metrics: %m", p->id);
        }
}

void pool_engine_metrics_restart(Pool *p) {
        if (p->engine_scraper)
                pool_engine_metrics_stop(p);
        pool_engine_metrics_update(p);
}

bool pool_engine_load(const Pool *p, usec_t now_usec, EngineLoad *ret) {
        const PoolMetrics *m = &p->metrics;
        const Config *c = p->manager->config;
        usec_t max_age;

        if (!p->engine_scraper || m->engine_load_usec == 0 || !engine_load_is_set(&m->engine_load) ||
            c->engine_metrics_interval == 0)
                return false;
        /* Three reads missed; the timeout added, so that an engine answering slowly, but
         * answering, does not flicker. */
        max_age = c->engine_metrics_interval > (USEC_INFINITY - c->engine_metrics_timeout) / 3 ?
                  USEC_INFINITY : 3 * c->engine_metrics_interval + c->engine_metrics_timeout;
        if (now_usec > m->engine_load_usec && now_usec - m->engine_load_usec > max_age)
                return false;
        *ret = m->engine_load;
        return true;
}

static void pool_mirror(Pool *p) {
        PoolEntry *e;

        /* Follows the state and the drain, as the registry does. */
        pool_engine_metrics_update(p);

        if (registry_ensure(p->manager->registry, p->id, &e) < 0)
                return (void) log_oom();
        (void) free_and_strdup(&e->state, pool_state_to_string(p->state));
        /* live: the engine process runs and is ours to serve; ready: it answered its health check. */
        e->health.live = p->state == POOL_PROBING || p->state == POOL_READY;
        /* Ready only while every listener on the engine's port is the engine's own. */
        e->health.ready = p->state == POOL_READY && !p->foreign_listener && !p->gpu_unhealthy;
        /* MainPID is the engine's current pid: none once the unit is gone. */
        if (p->state == POOL_STOPPED || p->state == POOL_FAILED || p->state == POOL_BACKOFF)
                e->main_pid = 0;
        e->draining = pool_is_draining(p);
        e->crash_count = p->supervisor.crash_count;
        e->restart_count = p->supervisor.restart_count;
        e->backoff_ms = p->supervisor.last_backoff / USEC_PER_MSEC;
        e->next_restart_usec = p->state == POOL_BACKOFF ? p->supervisor.next_restart_at : 0;
        e->circuit = circuit_state_to_string(p->supervisor.circuit);
        manager_pool_changed(p->manager, p->id);
}

/*
 * The one place where the state changes. Entering a state releases what the states left
 * behind owned, as systemd's service_set_state() does, so that no transition can leave a
 * timer or probe armed for a state the pool is no longer in:
 *
 *   probe           probing (readiness) and ready (one liveness check)
 *   liveness_timer  ready
 *   restart_timer   backoff (the restart), failed (the circuit's next tick), ready (half-open:
 *                   the tick that closes the circuit)
 *   drain_timer     starting, probing, ready: the drain deadline of a running engine
 *   adoption        probing: a re-adopted engine not yet probed once
 *   log_watch       probing: the engine's journal lines trigger readiness probes
 */
static void pool_set_state(Pool *p, PoolState s) {
        PoolState old = p->state;

        if (s != POOL_PROBING && s != POOL_READY)
                p->probe = probe_free(p->probe);
        if (s != POOL_READY)
                p->liveness_timer = sd_event_source_disable_unref(p->liveness_timer);
        if (s != POOL_BACKOFF && s != POOL_FAILED && s != POOL_READY)
                p->restart_timer = sd_event_source_disable_unref(p->restart_timer);
        if (s != POOL_STARTING && s != POOL_PROBING && s != POOL_READY)
                p->drain_timer = sd_event_source_disable_unref(p->drain_timer);
        /* A re-adopted engine is accounted for once it left probing (ready, failed, gone). */
        if (s != POOL_PROBING) {
                p->adoption_pending = false;
                p->log_watch = journal_watch_slot_free(p->log_watch);
        }
        /* VRAM is promised from placement until the engine is gone. */
        if (s == POOL_STOPPED || s == POOL_FAILED || s == POOL_BACKOFF || s == POOL_ORPHAN)
                gpu_inventory_release(p->manager->gpus, p->id);

        p->state = s;
        if (old != s)
                log_debug("Pool \"%s\": %s -> %s (operation %s)", p->id, pool_state_to_string(old),
                          pool_state_to_string(s), pool_operation_to_string(p->op));
        pool_mirror(p);
}

/* The operation a request starts takes the request's correlation id (Manager.correlation_id,
 * set by the HTTP layer around the call) into its journal entries, until supervision or the end
 * of the operation takes over. */
static void pool_take_correlation_id(Pool *p) {
        if (!p->manager->correlation_id)
                return;
        (void) free_and_strdup(&p->correlation_id, p->manager->correlation_id);
}

static void pool_set_op(Pool *p, PoolOperation o) {
        if (o == POOL_OP_NONE || o == POOL_OP_RESTART || o == POOL_OP_ADOPT || o == POOL_OP_HEALTH_STOP)
                p->correlation_id = mfree(p->correlation_id);
        if (p->op == o)
                return;
        log_debug("Pool \"%s\": operation %s -> %s", p->id, pool_operation_to_string(p->op),
                  pool_operation_to_string(o));
        p->op = o;
}

/* Saves what a restarted daemon needs: the engine, whether it should run, the supervision. */
static void pool_save(Pool *p, bool running) {
        _cleanup_json_ json_object *sup = NULL;
        int r;

        /* This write supersedes one that was waiting. */
        (void) sd_event_source_set_enabled(p->save_event, SD_EVENT_OFF);
        if (!p->prepared || !p->manager->config->state_directory)
                return;
        r = supervisor_to_json(&p->supervisor, &sup);
        if (r >= 0)
                r = pool_state_save(p->manager->config->state_directory, p->prepared, running, sup);
        if (r < 0)
                log_warning_errno(r, "Pool \"%s\": failed to save state in %s: %m", p->id,
                                  p->manager->config->state_directory);
}

static int on_save_event(sd_event_source *s, void *userdata) {
        Pool *p = userdata;

        pool_save(p, p->save_running);
        return 0;
}

/*
 * pool_save() once nothing else waits in the event loop: the state file's fsync blocks the loop
 * for a disk's flush (milliseconds, more on a busy disk), which must not stand between a change
 * and those who learn of it (D-Bus, HTTP, the fleet). Saves asked for in the meantime make one.
 */
static void pool_save_soon(Pool *p, bool running) {
        int r;

        p->save_running = running;
        if (!p->save_event) {
                r = sd_event_add_defer(p->manager->event, &p->save_event, on_save_event, p);
                if (r >= 0)
                        r = sd_event_source_set_priority(p->save_event, SD_EVENT_PRIORITY_IDLE);
                if (r >= 0)
                        (void) sd_event_source_set_description(p->save_event, "pool-save");
                if (r < 0) {
                        p->save_event = sd_event_source_disable_unref(p->save_event);
                        return pool_save(p, running);
                }
        }
        r = sd_event_source_set_enabled(p->save_event, SD_EVENT_ONESHOT);
        if (r < 0)
                pool_save(p, running);
}

/* error NULL: success. */
static void waiters_run(Pool *p, PoolWaiter **list, const PoolError *error) {
        PoolWaiter *w = TAKE_PTR(*list);

        /* Detach the list first: a callback may start a new operation on this pool. */
        while (w) {
                PoolWaiter *next = w->next;

                if (w->callback)
                        w->callback(p, error, w->userdata);
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

/* Runs the waiters of list with a failure: code and message. */
_printf_(4, 5)
static void waiters_fail(Pool *p, PoolWaiter **list, PoolErrorCode code, const char *format, ...) {
        _cleanup_(pool_error_done) PoolError e = { .code = code };
        va_list ap;

        if (!*list)
                return;
        va_start(ap, format);
        if (vasprintf(&e.message, format, ap) < 0)
                e.message = NULL;
        va_end(ap);
        waiters_run(p, list, &e);
}

void pool_forget_waiter(Pool *p, void *userdata) {
        waiters_forget(&p->preload_waiters, userdata);
        waiters_forget(&p->stop_waiters, userdata);
        waiters_forget(&p->drain_waiters, userdata);
        waiters_forget(&p->reload_waiters, userdata);
}

bool pool_is_active(const Pool *p) {
        return state_is_active(p->state) || p->preload_pending;
}

bool pool_is_draining(const Pool *p) {
        return op_is_drain(p->op);
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
        log_pool_struct(LOG_ERR, p,
                   LOG_MESSAGE_ID(MESSAGE_ENGINE_FAILED),
                   "ERROR=%s", error,
                   "LAST_ERROR=%s", error,
                   LOG_MESSAGE("Pool \"%s\": %s failed: %s", p->id,
                               p->op == POOL_OP_RESTART ? "restart" :
                               p->op == POOL_OP_ADOPT ? "re-adoption" :
                               p->op == POOL_OP_RELOAD_NEW ? "reload" :
                               p->op == POOL_OP_ROLLBACK ? "rollback" : "preload", error),
                   NULL);
}

static int pool_start_engine(Pool *p, PoolOperation op);
static void pool_start_finished(Pool *p, const PoolError *error);
static void pool_schedule_restart_timer(Pool *p, usec_t at_realtime);
static void pool_crashed(Pool *p, CrashReason reason, const char *error);

/* Starting failed: stop the unit (if systemd knows it), then report code and error. */
static void pool_fail(Pool *p, PoolErrorCode code, const char *error) {
        int r;

        p->probe = probe_free(p->probe);
        (void) pool_error_set(&p->failure, code, "%s", error);
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
        pool_start_finished(p, &p->failure);
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

/* ---- Who listens on the engine's port ---- */

/* The engine unit's processes and cgroup id, from its main process's cgroup2 path. */
static int pool_engine_processes(Pool *p, pid_t **ret_pids, size_t *ret_n, uint64_t *ret_cgroup_id) {
        _cleanup_free_ char *cg = NULL;
        pid_t pid = p->unit->main_pid;

        *ret_cgroup_id = 0;
        if (pid <= 0)
                return -ESRCH;
        if (cg_pid_get_path(pid, &cg) > 0 && cg_path_get_pids(cg, ret_pids, ret_n) >= 0 && *ret_n > 0) {
                (void) cg_path_get_id(cg, ret_cgroup_id);
                return 0;
        }
        /* No cgroup2 view: the main process alone. */
        *ret_pids = calloc(1, sizeof(pid_t));
        if (!*ret_pids)
                return -ENOMEM;
        (*ret_pids)[0] = pid;
        *ret_n = 1;
        return 0;
}

/*
 * Someone else listening on pe's host:port: 1 with *ret_who ("127.0.0.1:8080 held by PID 7
 * (python3) ..."), 0 when nobody else does. mine_allowed: only listeners outside the engine's
 * unit count (by the kernel's cgroup id of the socket, or its holder's PID). When the
 * kernel cannot be asked, 0 and a debug message: the check is a safeguard, not a precondition.
 */
static int pool_port_foreign(Pool *p, const PreparedEngine *pe, bool mine_allowed, char **ret_who) {
        _cleanup_free_ char *error = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        PortListener *l = NULL;
        const PortListener *f;
        size_t n = 0, n_pids = 0;
        uint64_t cgroup_id = 0;
        int r;

        *ret_who = NULL;
        /* The engine's own processes are looked at first: the scan of /proc for the holders of
         * other sockets is then needed only for a foreign one. */
        if (mine_allowed && pool_engine_processes(p, &pids, &n_pids, &cgroup_id) < 0)
                n_pids = 0;
        r = port_listeners_find_with_candidates(pe->host, pe->port, pids, n_pids, &l, &n, &error);
        if (r < 0) {
                log_pool(LOG_WARNING, p, "cannot tell who listens on port %u: %s", pe->port, strna(error));
                return 0;
        }
        if (n == 0)
                return 0;
        f = mine_allowed ? port_listeners_first_foreign(l, n, pids, n_pids, cgroup_id) : &l[0];
        if (f) {
                *ret_who = port_listener_describe(f);
                r = *ret_who ? 1 : -ENOMEM;
        } else
                r = 0;
        port_listeners_free(l, n);
        return r;
}

/* Before a start: the port must be free. -EADDRINUSE with *ret_error naming the holder. */
static int pool_check_port_free(Pool *p, const PreparedEngine *pe, char **ret_error) {
        _cleanup_free_ char *who = NULL;
        int r;

        r = pool_port_foreign(p, pe, false, &who);
        if (r < 0)
                return r;
        if (r == 0)
                return 0;
        if (asprintf(ret_error, "port %u is in use: %s", pe->port, who) < 0)
                *ret_error = NULL;
        return -EADDRINUSE;
}

/*
 * Checks the engine's port for listeners outside its unit and records what it finds in
 * p->foreign_listener, LastError and the log (on changes only). Returns 1 when there is one.
 */
static int pool_note_foreign_listener(Pool *p) {
        _cleanup_free_ char *who = NULL, *msg = NULL;
        int r;

        r = pool_port_foreign(p, p->prepared, true, &who);
        if (r < 0)
                return r;
        if (r == 0) {
                if (p->foreign_listener) {
                        log_pool(LOG_NOTICE, p, "the foreign listener on port %u (%s) is gone.", p->prepared->port,
                                 p->foreign_listener);
                        p->foreign_listener = mfree(p->foreign_listener);
                        (void) registry_set_last_error(p->manager->registry, p->id, NULL);
                        pool_mirror(p);
                }
                return 0;
        }
        if (!streq_ptr(p->foreign_listener, who)) {
                if (asprintf(&msg, "not ready: another process listens on the engine's port %u: %s (with "
                             "SO_REUSEPORT the kernel spreads connections over both listeners, so answers may "
                             "come from it)", p->prepared->port, who) < 0)
                        return -ENOMEM;
                log_pool(LOG_WARNING, p, "%s.", msg);
                (void) registry_set_last_error(p->manager->registry, p->id, msg);
                free(p->foreign_listener);
                p->foreign_listener = TAKE_PTR(who);
                pool_mirror(p);
        }
        return 1;
}

/* ---- Liveness: once ready, a probe every LivenessInterval=; LivenessFailures= in a row fail. */

static int pool_schedule_liveness(Pool *p);

static void on_liveness_done(Probe *probe, int r, void *userdata) {
        Pool *p = userdata;
        /* A single attempt cut off by the deadline leaves no error of its own. */
        _cleanup_free_ char *last = strdup(probe_last_error(probe) ?: r == -ETIMEDOUT ?
                                           "no answer within the probe timeout" : "n/a");
        int k;

        p->probe = probe_free(p->probe);
        if (p->state != POOL_READY)
                return;

        if (r >= 0) {
                if (p->liveness_failed > 0)
                        log_pool(LOG_INFO, p, "liveness probe answers again.");
                p->liveness_failed = 0;
                (void) registry_set_heartbeat(p->manager->registry, p->id, now_epoch_ms());
                /* A stray that started listening on the port since makes the pool unready, until
                 * it is gone. */
                (void) pool_note_foreign_listener(p);
                manager_pool_changed(p->manager, p->id);
        } else if (++p->liveness_failed >= policy(p)->liveness_failures) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "engine failed %u liveness probes in a row (last: %s)", p->liveness_failed,
                             strna(last)) < 0)
                        return (void) log_oom();
                log_pool(LOG_ERR, p, "%s; stopping it.", msg);
                (void) registry_set_last_error(p->manager->registry, p->id, msg);
                /* A drain wanted it stopped anyway: its stop it is. Otherwise supervision's. */
                if (!pool_is_draining(p))
                        pool_set_op(p, POOL_OP_HEALTH_STOP);
                pool_set_state(p, POOL_STOPPING);
                k = engine_unit_stop(p->unit);
                if (k < 0)
                        pool_crashed(p, CRASH_HEALTH_FAILURE, msg);
                return;
        } else if (p->liveness_failed == 1)
                /* Logged once per state change, not once per probe. */
                log_pool(LOG_WARNING, p, "liveness probe failed (%s).", strna(last));

        (void) pool_schedule_liveness(p);
}

static int on_liveness_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Pool *p = userdata;
        _cleanup_free_ char *url = NULL;
        usec_t t = MIN(policy(p)->liveness_interval, 2 * USEC_PER_SEC);
        int r;

        p->liveness_timer = sd_event_source_disable_unref(p->liveness_timer);
        if (p->state != POOL_READY || p->probe)
                return 0;

        if (asprintf(&url, "%s%s", p->url, p->prepared->health_path) < 0)
                return log_oom();
        /* One attempt: the deadline comes before a second slot. */
        r = probe_new(&p->probe, p->manager->event, url, 2 * t, t, on_liveness_done, p);
        if (r >= 0)
                r = probe_start(p->probe);
        if (r < 0) {
                p->probe = probe_free(p->probe);
                log_warning_errno(r, "Pool \"%s\": failed to start liveness probe: %m", p->id);
                (void) pool_schedule_liveness(p);
        }
        return 0;
}

static int pool_schedule_liveness(Pool *p) {
        int r;

        p->liveness_timer = sd_event_source_disable_unref(p->liveness_timer);
        r = sd_event_add_time_relative(p->manager->event, &p->liveness_timer, CLOCK_MONOTONIC,
                                       policy(p)->liveness_interval, USEC_PER_MSEC, on_liveness_timer, p);
        if (r < 0)
                return log_warning_errno(r, "Pool \"%s\": failed to schedule liveness probe: %m", p->id);
        (void) sd_event_source_set_description(p->liveness_timer, "pool-liveness");
        return 0;
}

/* ---- Readiness ---- */

static int pool_start_probe(Pool *p);

static void on_probe_done(Probe *probe, int r, void *userdata) {
        Pool *p = userdata;
        usec_t ready_usec = probe_ready_usec(probe);
        _cleanup_free_ char *msg = NULL;
        PoolEntry *e;

        if (r == -ETIMEDOUT) {
                const char *last = probe_last_error(probe);
                uint64_t ms = (p->prepared->health_timeout_ms > 0 ? p->prepared->health_timeout_ms :
                               p->manager->config->health_timeout / USEC_PER_MSEC);

                if (p->foreign_listener ?
                    asprintf(&msg, "health check timed out after %" PRIu64 " ms: the engine answered, but "
                             "another process listens on its port %u: %s", ms, p->prepared->port,
                             p->foreign_listener) < 0 :
                    asprintf(&msg, "health check timed out after %" PRIu64 " ms%s%s%s", ms,
                             last ? " (last probe: " : "", strempty(last), last ? ")" : "") < 0)
                        return (void) log_oom();
                p->probe = probe_free(p->probe);
                pool_fail(p, p->foreign_listener ? POOL_ERROR_PORT_IN_USE : POOL_ERROR_HEALTH_TIMEOUT, msg);
                return;
        }

        /* A 200 counts only if it can only have come from the engine: with SO_REUSEPORT a
         * stray process can listen on the same host:port and answer in its place. */
        if (pool_note_foreign_listener(p) > 0) {
                p->probe = probe_free(p->probe);
                r = pool_start_probe(p);
                if (r < 0)
                        pool_fail(p, POOL_ERROR_INTERNAL, "failed to start health probe");
                return;
        }

        r = pool_write_handoff(p);
        p->probe = probe_free(p->probe);
        if (r < 0) {
                if (asprintf(&msg, "failed to write handoff file: %s", strerror(-r)) < 0)
                        return (void) log_oom();
                pool_fail(p, POOL_ERROR_INTERNAL, msg);
                return;
        }

        e = registry_get(p->manager->registry, p->id);
        if (e) {
                (void) free_and_strdup(&e->handoff_path, p->handoff_path);
                e->ready_at_usec = now(CLOCK_REALTIME);
        }
        supervisor_on_ready(&p->supervisor, policy(p), now(CLOCK_REALTIME));
        p->liveness_failed = 0;
        pool_set_state(p, POOL_READY);
        pool_save_soon(p, true);
        (void) pool_schedule_liveness(p);
        if (p->supervisor.circuit == CIRCUIT_HALF_OPEN)
                pool_schedule_restart_timer(p, supervisor_next_tick(&p->supervisor, policy(p)));

        log_pool_struct(LOG_INFO, p,
                   LOG_MESSAGE_ID(MESSAGE_ENGINE_READY),
                   "ENGINE_PID=%d", (int) p->unit->main_pid,
                   "ENGINE_URL=%s", p->url,
                   "HANDOFF_PATH=%s", p->handoff_path,
                   "TIME_TO_READY_MSEC=%llu", (unsigned long long) ((ready_usec - p->start_usec) / USEC_PER_MSEC),
                   LOG_MESSAGE("Pool \"%s\" is ready: engine %s (pid %d) serves %s after %llu ms%s", p->id,
                               p->unit->name, (int) p->unit->main_pid, p->url,
                               (unsigned long long) ((ready_usec - p->start_usec) / USEC_PER_MSEC),
                               p->op == POOL_OP_ADOPT ? " (re-adopted)" : ""),
                   NULL);

        pool_start_finished(p, NULL);
}

/* A re-adopted engine's first probe did not answer 200 (it may still be loading): it is
 * reported as probing, and start-up need not wait for it any longer. */
static void on_adoption_probe_attempt(Probe *probe, int r, void *userdata) {
        Pool *p = userdata;

        probe_set_attempt_callback(probe, NULL);
        if (!p->adoption_pending)
                return;
        p->adoption_pending = false;
        manager_pool_changed(p->manager, p->id);
}

/* A line from the engine: it may just have started to answer. */
static void on_engine_line(const char *message, size_t size, void *userdata) {
        Pool *p = userdata;

        if (p->state == POOL_PROBING && p->probe)
                probe_trigger(p->probe, probe_trigger_is_ready_line(message, size));
}

/* While probing, the engine's journal lines trigger probes besides the grid (EngineLogs=file:
 * the grid alone). The unit's InvocationID, once systemd told it, keeps another run's lines out. */
static void pool_watch_engine_log(Pool *p) {
        int r;

        if (p->log_watch || !p->manager->journal_watch || p->manager->config->engine_logs != ENGINE_LOGS_JOURNAL)
                return;
        r = journal_watch_add(p->manager->journal_watch, &p->log_watch, p->unit->name, p->unit->invocation_id,
                              on_engine_line, p);
        if (r < 0)
                log_pool(LOG_DEBUG, p, "cannot watch the engine's journal (%s), probing on the grid alone.",
                         strerror(-r));
        else
                log_pool(LOG_DEBUG, p, "its engine's journal lines trigger probes (invocation %s).",
                         isempty(p->unit->invocation_id) ? "not known yet" : p->unit->invocation_id);
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
        r = probe_new(&p->probe, p->manager->event, url, interval,
                      timeout - MIN(timeout, now(CLOCK_MONOTONIC) - p->start_usec), on_probe_done, p);
        if (r < 0)
                return r;
        if (p->adoption_pending)
                probe_set_attempt_callback(p->probe, on_adoption_probe_attempt);
        r = probe_start(p->probe);
        if (r < 0)
                return r;
        pool_watch_engine_log(p);
        return 0;
}

static void pool_on_main_pid(Pool *p) {
        _cleanup_free_ char *content = NULL;
        PoolEntry *e;
        int r;

        if (registry_ensure(p->manager->registry, p->id, &e) >= 0)
                e->main_pid = p->unit->main_pid;
        if (p->unit->main_pid > 0)
                p->main_pid_seen = p->unit->main_pid;
        manager_pool_changed(p->manager, p->id);

        if (p->state != POOL_PROBING || p->probe)
                return;

        /* The pid file is written before health checking starts (predecessor contract). */
        if (asprintf(&content, "%d\n", (int) p->unit->main_pid) < 0)
                return pool_fail(p, POOL_ERROR_INTERNAL, "out of memory");
        r = write_file_atomic_flags(p->pid_path, content, strlen(content), 0644, /* flags= */ 0);
        if (r < 0) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "failed to write pid file %s: %s", p->pid_path, strerror(-r)) < 0)
                        msg = NULL;
                return pool_fail(p, POOL_ERROR_INTERNAL, msg ?: "failed to write pid file");
        }

        r = pool_start_probe(p);
        if (r < 0)
                return pool_fail(p, POOL_ERROR_INTERNAL, "failed to start health probe");
}

/* ---- Supervision ---- */

static int on_restart_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void pool_schedule_restart_timer(Pool *p, usec_t at_realtime) {
        usec_t now_rt = now(CLOCK_REALTIME), delay;
        int r;

        p->restart_timer = sd_event_source_disable_unref(p->restart_timer);
        if (at_realtime == USEC_INFINITY)
                return;
        delay = at_realtime > now_rt ? at_realtime - now_rt : 0;
        /* Accuracy 1 ms: a backoff is a promise about when the engine comes back. */
        r = sd_event_add_time_relative(p->manager->event, &p->restart_timer, CLOCK_MONOTONIC, delay,
                                       USEC_PER_MSEC, on_restart_timer, p);
        if (r < 0)
                log_error_errno(r, "Pool \"%s\": failed to schedule restart: %m", p->id);
        else
                (void) sd_event_source_set_description(p->restart_timer, "pool-restart");
}

static int on_restart_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Pool *p = userdata;
        usec_t t = now(CLOCK_REALTIME);

        p->restart_timer = sd_event_source_disable_unref(p->restart_timer);

        if (p->state == POOL_BACKOFF) {
                supervisor_on_restart(&p->supervisor, policy(p), t);
                log_pool(LOG_INFO, p, "restarting engine (restart %u, after %llu ms backoff).",
                         p->supervisor.restart_count,
                         (unsigned long long) (p->supervisor.last_backoff / USEC_PER_MSEC));
                if (pool_start_engine(p, POOL_OP_RESTART) < 0)
                        pool_crashed(p, _CRASH_REASON_INVALID, "failed to ask systemd to restart the engine");
                return 0;
        }

        /* Circuit open: time passes, maybe half-open now. */
        if (p->state == POOL_FAILED && supervisor_tick(&p->supervisor, policy(p), t)) {
                log_pool_struct(LOG_WARNING, p,
                           "OLD_STATE=open", "NEW_STATE=half-open",
                           "FAILURE_COUNT=%u", p->supervisor.consecutive_failures,
                           LOG_MESSAGE("Pool \"%s\": circuit half-open, one trial restart.", p->id),
                           NULL);
                supervisor_on_restart(&p->supervisor, policy(p), t);
                pool_save(p, true);
                if (pool_start_engine(p, POOL_OP_RESTART) < 0)
                        pool_crashed(p, _CRASH_REASON_INVALID, "failed to ask systemd to restart the engine");
                return 0;
        }
        /* Half-open and serving: after BreakerCloseAfter= of stable running the circuit closes. */
        if (p->state == POOL_READY) {
                CircuitState old = p->supervisor.circuit;

                (void) supervisor_tick(&p->supervisor, policy(p), t);
                if (old != p->supervisor.circuit) {
                        log_pool_struct(LOG_NOTICE, p,
                                   "OLD_STATE=%s", circuit_state_to_string(old),
                                   "NEW_STATE=%s", circuit_state_to_string(p->supervisor.circuit),
                                   LOG_MESSAGE("Pool \"%s\": circuit %s after stable running.", p->id,
                                               circuit_state_to_string(p->supervisor.circuit)),
                                   NULL);
                        pool_mirror(p);
                        pool_save(p, true);
                }
        }
        if (p->state == POOL_FAILED || (p->state == POOL_READY && p->supervisor.circuit != CIRCUIT_CLOSED))
                pool_schedule_restart_timer(p, supervisor_next_tick(&p->supervisor, policy(p)));
        return 0;
}

/* Reads the last lines the engine wrote (journal or log file), for crash classification. */
static char **pool_last_log_lines(Pool *p);
static char *pool_with_engine_words(Pool *p, const char *what, char * const *lines);

/* What the unit and the engine's last log lines say about an exit. */
static CrashReason pool_classify(Pool *p, char * const *lines) {
        return crash_classify(&(CrashFacts) {
                .result = p->unit->result,
                .exec_main_code = p->unit->exec_main_code,
                .exec_main_status = p->unit->exec_main_status,
                .log_lines = (char **) lines,
        });
}

/* reason: _CRASH_REASON_INVALID to classify from the unit's exit and the engine's last lines. */
static void pool_crashed(Pool *p, CrashReason reason, const char *error) {
        SupervisionDecision d;
        CircuitState old_circuit = p->supervisor.circuit;
        uint64_t random_u64 = 0;
        usec_t t = now(CLOCK_REALTIME);
        uint64_t uptime = p->supervisor.running_since > 0 && t > p->supervisor.running_since ?
                (t - p->supervisor.running_since) / USEC_PER_SEC : 0;

        if (reason < 0) {
                _cleanup_strv_free_ char **lines = pool_last_log_lines(p);

                reason = pool_classify(p, lines);
        }
        /* Whatever was under way ends with the engine: supervision decides what follows. */
        pool_set_op(p, POOL_OP_NONE);
        pool_remove_files(p);
        /* The jitter's randomness; none (0) should the kernel have none to give yet. A (void)
         * cast does not silence warn_unused_result, which _FORTIFY_SOURCE (Debian's build) sets. */
        if (getrandom(&random_u64, sizeof(random_u64), GRND_NONBLOCK) != (ssize_t) sizeof(random_u64))
                random_u64 = 0;

        supervisor_on_crash(&p->supervisor, policy(p), reason, t, random_u64, &d);
        (void) registry_set_last_error(p->manager->registry, p->id, error);

        log_pool_struct(reason == CRASH_OUT_OF_MEMORY ? LOG_CRIT : LOG_ERR, p,
                   LOG_MESSAGE_ID(MESSAGE_ENGINE_EXITED),
                   "CRASH_REASON=%s", crash_reason_to_string(reason),
                   "UPTIME_SECONDS=%llu", (unsigned long long) uptime,
                   "EXIT_CODE=%d", p->unit->exec_main_code,
                   "EXIT_STATUS=%d", p->unit->exec_main_status,
                   "UNIT_RESULT=%s", strna(p->unit->result),
                   "CRASH_COUNT=%u", p->supervisor.crash_count,
                   "RESTART_COUNT=%u", p->supervisor.restart_count,
                   "BACKOFF_MS=%llu", (unsigned long long) (d.delay / USEC_PER_MSEC),
                   "ERROR=%s", error,
                   "LAST_ERROR=%s", error,
                   LOG_MESSAGE("Pool \"%s\": %s (%s, crash %u)", p->id, error, crash_reason_to_string(reason),
                               p->supervisor.crash_count),
                   NULL);

        if (d.storm_warning && !d.storm)
                log_pool(LOG_WARNING, p, "%u restarts within %llu s.", d.restarts_in_window,
                            (unsigned long long) (policy(p)->storm_window / USEC_PER_SEC));

        if (d.restart) {
                char ts[FORMAT_TIMESTAMP_MAX];

                log_pool_struct(LOG_NOTICE, p,
                           "BACKOFF_MS=%llu", (unsigned long long) (d.delay / USEC_PER_MSEC),
                           "CRASH_COUNT=%u", p->supervisor.crash_count,
                           "RESTART_COUNT=%u", p->supervisor.restart_count,
                           "NEXT_RESTART_AT=%s", format_timestamp_rfc3339(ts, sizeof(ts), t + d.delay),
                           LOG_MESSAGE("Pool \"%s\": restart in %llu ms.", p->id,
                                       (unsigned long long) (d.delay / USEC_PER_MSEC)),
                           NULL);
                pool_set_state(p, POOL_BACKOFF);
                pool_schedule_restart_timer(p, t + d.delay);
                histogram_observe(&p->metrics.backoff_delay, &histogram_duration_bounds,
                                  (double) d.delay / USEC_PER_SEC);
        } else {
                if (d.circuit_opened)
                        log_pool_struct(LOG_CRIT, p,
                                   "OLD_STATE=%s", circuit_state_to_string(old_circuit),
                                   "NEW_STATE=open",
                                   "FAILURE_COUNT=%u", p->supervisor.consecutive_failures,
                                   LOG_MESSAGE("Pool \"%s\": circuit open after %u consecutive failures%s; "
                                               "no restarts until %llu s have passed or a reset.", p->id,
                                               p->supervisor.consecutive_failures,
                                               d.storm ? " (restart storm)" : "",
                                               (unsigned long long) (p->supervisor.circuit_timeout / USEC_PER_SEC)),
                                   NULL);
                pool_set_state(p, POOL_FAILED);
                pool_schedule_restart_timer(p, supervisor_next_tick(&p->supervisor, policy(p)));
        }
        pool_save(p, true);
}

static void pool_on_stopped(Pool *p, const char *error);

static void pool_on_exited(Pool *p) {
        _cleanup_free_ char *exit = NULL, *what = NULL, *msg = NULL;
        _cleanup_strv_free_ char **lines = NULL;

        (void) engine_unit_describe_exit(p->unit, &exit);

        switch (p->state) {

        case POOL_STARTING:
        case POOL_PROBING:
                /* The engine's own words say why: "...: \"error: failed to load model\"". */
                lines = pool_last_log_lines(p);
                if (asprintf(&what, "engine %s before becoming ready", strna(exit)) < 0 ||
                    !(msg = pool_with_engine_words(p, what, lines)))
                        return (void) log_oom();
                pool_fail(p, POOL_ERROR_ENGINE_FAILED, msg);
                return;

        case POOL_READY: {
                PoolEntry *e = registry_get(p->manager->registry, p->id);

                /* Readers learn first: unready now, before the crash is classified and saved
                 * (journal reads and fsync have no upper bound on a busy node). */
                if (e) {
                        e->health.live = e->health.ready = false;
                        e->main_pid = 0;
                }
                manager_flush_changes(p->manager);

                if (asprintf(&what, "engine %s", strna(exit)) < 0)
                        return (void) log_oom();
                if (pool_is_draining(p)) {
                        /* A drain (or a reload's drain) wanted it gone anyway. */
                        log_pool(LOG_WARNING, p, "%s while draining.", what);
                        pool_on_stopped(p, NULL);
                        return;
                }
                /* Whatever the status: an end nobody asked for is a crash (issue 16). A clean
                 * one says so, since it is the kind an operator wonders about. */
                if (engine_unit_exit_was_clean(p->unit) && strextendf(&what, ", without being asked to") < 0)
                        return (void) log_oom();
                lines = pool_last_log_lines(p);
                msg = pool_with_engine_words(p, what, lines);
                if (!msg)
                        return (void) log_oom();
                pool_crashed(p, pool_classify(p, lines), msg);
                return;
        }

        case POOL_ORPHAN:
                if (asprintf(&msg, "orphan engine unit %s %s", p->unit->name, strna(exit)) < 0)
                        return (void) log_oom();
                log_pool(LOG_NOTICE, p, "%s.", msg);
                (void) registry_set_last_error(p->manager->registry, p->id, msg);
                pool_remove_files(p);
                pool_set_op(p, POOL_OP_NONE);
                pool_set_state(p, POOL_STOPPED);
                waiters_run(p, &p->stop_waiters, NULL);
                return;

        default:
                /* Stopping or failing: the exit was asked for; the stop job reports. */
                return;
        }
}

/* ---- Start and its outcome ---- */

static void pool_reload_finish(Pool *p, PoolErrorCode code, bool rolled_back, const char *error);
static void pool_on_stopped(Pool *p, const char *error);

/* A caller's preload ended (code: _POOL_ERROR_INVALID for ready): counted once, and the time
 * from the request to ready observed. */
static void pool_preload_ended(Pool *p, PoolErrorCode code) {
        PoolMetrics *m = &p->metrics;

        if (!m->preload_open)
                return;
        m->preload_open = false;
        if (code < 0) {
                m->preloads_succeeded++;
                histogram_observe(&m->preload_duration, &histogram_duration_bounds,
                                  (double) (now(CLOCK_MONOTONIC) - m->preload_start_usec) / USEC_PER_SEC);
        } else if (code < _POOL_ERROR_MAX)
                m->preloads_failed[code]++;
}

static void pool_preload_opened(Pool *p) {
        p->metrics.preload_open = true;
        p->metrics.preload_start_usec = now(CLOCK_MONOTONIC);
}

/* The start of the operation in progress succeeded (error NULL) or failed. */
static void pool_start_finished(Pool *p, const PoolError *error) {
        switch (p->op) {

        case POOL_OP_PRELOAD:
                pool_set_op(p, POOL_OP_NONE);
                pool_preload_ended(p, error ? error->code : _POOL_ERROR_INVALID);
                if (error) {
                        pool_set_state(p, POOL_FAILED);
                        pool_save(p, false);
                }
                waiters_run(p, &p->preload_waiters, error);
                return;

        case POOL_OP_RESTART:
        case POOL_OP_ADOPT:
                if (error)
                        pool_crashed(p, _CRASH_REASON_INVALID, pool_error_message(error));
                else {
                        pool_set_op(p, POOL_OP_NONE);
                        waiters_run(p, &p->preload_waiters, NULL);
                }
                return;

        case POOL_OP_RELOAD_NEW:
                if (!error) {
                        pool_set_op(p, POOL_OP_NONE);
                        p->rollback = prepared_engine_free(p->rollback);
                        pool_reload_finish(p, _POOL_ERROR_INVALID, false, NULL);
                        return;
                }
                /* Roll back: the old engine again, under the same pool id. */
                log_pool(LOG_WARNING, p, "new engine failed (%s); rolling back.", pool_error_message(error));
                (void) free_and_strdup(&p->reload_outcome.error, pool_error_message(error));
                prepared_engine_free(p->prepared);
                p->prepared = TAKE_PTR(p->rollback);
                if (pool_start_engine(p, POOL_OP_ROLLBACK) < 0) {
                        pool_set_op(p, POOL_OP_NONE);
                        pool_set_state(p, POOL_FAILED);
                        pool_reload_finish(p, POOL_ERROR_RELOAD_FAILED, false, "rollback could not be started");
                }
                return;

        case POOL_OP_ROLLBACK: {
                _cleanup_free_ char *msg = NULL;

                pool_set_op(p, POOL_OP_NONE);
                if (!error) {
                        pool_reload_finish(p, POOL_ERROR_RELOAD_FAILED, true, p->reload_outcome.error);
                        return;
                }
                if (asprintf(&msg, "%s; rollback failed too: %s", strna(p->reload_outcome.error),
                             pool_error_message(error)) < 0)
                        msg = NULL;
                pool_set_state(p, POOL_FAILED);
                pool_save(p, false);
                pool_reload_finish(p, POOL_ERROR_RELOAD_FAILED, false, msg ?: pool_error_message(error));
                return;
        }

        default:
                /* A drain or stop superseded the start (and answered its requester then): a failed
                 * start just ends the engine sooner. */
                if (error)
                        pool_on_stopped(p, NULL);
                return;
        }
}

static void pool_preload_begin(Pool *p, PreparedEngine **prepared);

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
                        pool_fail(p, POOL_ERROR_ENGINE_FAILED, error);
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

        case ENGINE_UNIT_NOT_LOADED:
                if (p->preload_pending)
                        pool_preload_begin(p, &p->preload_pending);
                return;

        case ENGINE_UNIT_LOADED: {
                _cleanup_free_ char *msg = NULL;

                if (!p->preload_pending)
                        return;
                p->preload_pending = prepared_engine_free(p->preload_pending);
                if (asprintf(&msg, "engine unit %s is already loaded in systemd, but not as this daemon's "
                             "engine: tracked as an orphan; stop it first (poolctl stop %s)", u->name, p->id) < 0)
                        return (void) log_oom();
                if (pool_adopt_orphan(p, msg) < 0)
                        log_pool(LOG_WARNING, p, "failed to follow unit %s.", u->name);
                pool_preload_ended(p, POOL_ERROR_ORPHAN_UNIT);
                waiters_fail(p, &p->preload_waiters, POOL_ERROR_ORPHAN_UNIT, "%s", msg);
                return;
        }
        }
}

static int build_spec_and_start(Pool *p) {
        const PreparedEngine *pe = p->prepared;
        const Placement *pl = p->placement;
        const DeviceMask *mask = pl ? pl->mask : NULL;
        const Config *c = p->manager->config;
        _cleanup_strv_free_ char **argv = NULL, **env = NULL;
        _cleanup_free_ char *description = NULL, *ident = NULL, *log_file = NULL, *cvd = NULL, *pool_env = NULL,
                *work_directory = NULL;
        const char *pool_field = NULL;
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
        /* The split plan's flags (--tensor-split ...), after the engine's own. */
        STRV_FOREACH(f, pl ? pl->engine_flags : NULL) {
                r = strv_extend(&argv, *f);
                if (r < 0)
                        return r;
        }

        env = strv_copy(pe->env);
        if (!env)
                return -ENOMEM;
        if (mask) {
                /* UUIDs (or the mask as given when it cannot be checked), in the PCI bus order
                 * NVML and nvidia-smi number GPUs in, not CUDA's fastest-first. */
                if (asprintf(&cvd, "CUDA_VISIBLE_DEVICES=%s", strempty(mask->cuda_visible_devices)) < 0)
                        return -ENOMEM;
                r = strv_push(&env, cvd);
                if (r < 0)
                        return r;
                TAKE_PTR(cvd);
                r = strv_extend(&env, "CUDA_DEVICE_ORDER=PCI_BUS_ID");
                if (r < 0)
                        return r;
        }
        /* Let engines and their tools know which pool they serve. */
        if (asprintf(&pool_env, "POOL_ID=%s", pe->pool_id) < 0)
                return -ENOMEM;
        r = strv_push(&env, pool_env);
        if (r < 0)
                return r;
        pool_field = TAKE_PTR(pool_env);        /* owned by env now; also the journal field */

        if (asprintf(&description, "LLM engine %s for pool %s", engine_kind_to_string(pe->engine),
                     pe->pool_id) < 0 ||
            asprintf(&ident, ENGINE_UNIT_PREFIX "%s", pe->pool_id) < 0 ||
            asprintf(&work_directory, "pool-engines/%s", pe->pool_id) < 0)
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
                .slice = POOL_ENGINES_SLICE,
                .syslog_identifier = ident,
                .argv = argv,
                .environment = env,
                .log_extra_fields = STRV_MAKE(pool_field),
                .log_file = log_file,
                .stop_timeout = c->stop_timeout,
                /* A user manager runs everything as its user; User= is for the system one. */
                .user = p->manager->user ? NULL : c->engine_user,
                .sandbox = c->engine_sandbox != ENGINE_SANDBOX_OFF,
                .protect_kernel = c->engine_sandbox == ENGINE_SANDBOX_FULL,
                .work_directory = work_directory,
                /* The device cgroup: only the masked GPUs' nodes (never char-nvidia). */
                .device_allow = mask && mask->enforced ? mask->device_allow : NULL,
        };
        return engine_unit_start(p->unit, &spec);
}

/* Registry facts of a starting engine. */
static int pool_registry_starting(Pool *p) {
        PoolEntry *e;
        int r;

        r = registry_ensure(p->manager->registry, p->id, &e);
        if (r < 0)
                return r;
        if (free_and_strdup(&e->replica_id, p->prepared->replica_id) < 0 ||
            free_and_strdup(&e->unit, p->unit->name) < 0 ||
            free_and_strdup(&e->url, p->url) < 0 ||
            free_and_strdup(&e->engine_version, p->prepared->engine_version) < 0 ||
            free_and_strdup(&e->device_mask, p->prepared->device_mask) < 0)
                return -ENOMEM;
        e->handoff_path = mfree(e->handoff_path);
        if (p->prepared->slots_total >= 0)
                (void) registry_set_slots(p->manager->registry, p->id, p->prepared->slots_total,
                                          p->prepared->slots_total);
        e->main_pid = 0;
        e->started_at_usec = now(CLOCK_REALTIME);
        e->ready_at_usec = 0;
        return 0;
}

/* Registry facts of the engine's placement: devices, VRAM promised, split, warning. */
static int pool_registry_placement(Pool *p) {
        const Placement *pl = p->placement;
        PoolEntry *e;
        int r;

        r = registry_ensure(p->manager->registry, p->id, &e);
        if (r < 0)
                return r;
        if (free_and_strdup(&e->devices, pl && pl->mask ? pl->mask->cuda_visible_devices : NULL) < 0 ||
            free_and_strdup(&e->tensor_split, pl ? pl->tensor_split : NULL) < 0 ||
            free_and_strdup(&e->placement_warning, pl ? pl->warning : NULL) < 0)
                return -ENOMEM;
        e->vram_required = pl && pl->mask && pl->mask->enforced ? pl->vram_required : 0;
        e->vram_used = 0;
        manager_pool_changed(p->manager, p->id);
        return 0;
}

/* Places pe (src/placement.h): on success p->placement is the new placement and, unless only
 * checked, its VRAM promised to the pool; on failure nothing changed. A warning is logged once
 * here. */
static int pool_place(Pool *p, const PreparedEngine *pe, PlacementMode mode, PoolError *ret_error) {
        _cleanup_(placement_freep) Placement *pl = NULL;
        int r;

        r = placement_compute(p->manager->gpus, pe, p->manager->config->gpu_only, p->unit->name, mode, &pl,
                              ret_error);
        if (r < 0)
                return r;
        if (pl->warning)
                log_pool(LOG_WARNING, p, "%s", pl->warning);
        if (mode != PLACEMENT_CHECK) {
                placement_free(p->placement);
                p->placement = TAKE_PTR(pl);
        }
        return 0;
}

/* Starts p->prepared as the pool's unit. Failures end in pool_start_finished(). */
static int pool_start_engine(Pool *p, PoolOperation op) {
        int r;

        assert(op_is_start(op));
        pool_set_op(p, op);
        pool_error_done(&p->failure);
        p->foreign_listener = mfree(p->foreign_listener);
        p->main_pid_seen = 0;
        p->url = mfree(p->url);
        r = prepared_engine_base_url(p->prepared, &p->url);
        if (r < 0)
                return r;
        p->start_usec = now(CLOCK_MONOTONIC);
        r = pool_registry_starting(p);
        if (r < 0)
                return r;

        log_pool_struct(LOG_INFO, p,
                   LOG_MESSAGE_ID(MESSAGE_ENGINE_STARTING),
                   "ENGINE_BINARY=%s", p->prepared->binary_path,
                   "OPERATION=%s", pool_operation_to_string(op),
                   "RESTART_COUNT=%u", p->supervisor.restart_count,
                   "BACKOFF_MS=%llu", (unsigned long long) (p->supervisor.last_backoff / USEC_PER_MSEC),
                   LOG_MESSAGE("Pool \"%s\": starting engine %s as %s", p->id, p->prepared->binary_path,
                               p->unit->name),
                   NULL);

        /* Starting releases what the previous state held: a failed pool's circuit tick, a
         * backoff's timer (a preload supersedes both). */
        pool_set_state(p, POOL_STARTING);
        pool_save(p, true);

        {
                _cleanup_free_ char *busy = NULL;

                if (pool_check_port_free(p, p->prepared, &busy) == -EADDRINUSE) {
                        pool_fail(p, POOL_ERROR_PORT_IN_USE, busy ?: "port in use");
                        return 0;
                }
        }

        /* A preload placed its engine before anything changed; every other start (restart,
         * reload, rollback, resume) places it again, against the GPUs as they are now. */
        p->gpu_unhealthy = false;
        if (op != POOL_OP_PRELOAD || !p->placement) {
                _cleanup_(pool_error_done) PoolError e = POOL_ERROR_NULL;

                r = pool_place(p, p->prepared, PLACEMENT_ADMIT, &e);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        pool_fail(p, e.code, pool_error_message(&e));
                        return 0;
                }
        }
        r = pool_registry_placement(p);
        if (r < 0)
                return r;

        r = build_spec_and_start(p);
        if (r < 0) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "failed to ask systemd to start %s: %s", p->unit->name, strerror(-r)) < 0)
                        msg = NULL;
                pool_fail(p, POOL_ERROR_INTERNAL, msg ?: "failed to start unit");
        }
        return 0;
}

/* ---- Stop, drain, reload ---- */

static void pool_drain_finish(Pool *p, bool stopped);

static void pool_on_stopped(Pool *p, const char *error) {
        PoolState old = p->state;

        pool_remove_files(p);

        if (error) {
                log_pool(LOG_WARNING, p, "stopping %s failed: %s", p->unit->name, error);
                /* Keep the state: the unit may still run. */
                pool_set_state(p, p->unit->exited ? POOL_STOPPED : old);
                waiters_fail(p, &p->stop_waiters, POOL_ERROR_INTERNAL, "%s", error);
                p->drain_timer = sd_event_source_disable_unref(p->drain_timer);
                waiters_fail(p, &p->drain_waiters, POOL_ERROR_INTERNAL, "%s", error);
                return;
        }

        if (old == POOL_FAILING && op_is_start(p->op)) {
                /* The failed start's unit is gone: now report the failure. */
                pool_start_finished(p, &p->failure);
                waiters_run(p, &p->stop_waiters, NULL);
                return;
        }

        if (p->op == POOL_OP_HEALTH_STOP) {
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "engine failed %u liveness probes in a row and was stopped",
                             p->liveness_failed) < 0)
                        return (void) log_oom();
                pool_crashed(p, CRASH_HEALTH_FAILURE, msg);
                return;
        }

        log_pool_struct(LOG_INFO, p,
                   LOG_MESSAGE_ID(MESSAGE_ENGINE_STOPPED),
                   LOG_MESSAGE("Pool \"%s\": engine %s stopped", p->id, p->unit->name),
                   NULL);

        /* A reload stops the old engine and starts the new one. */
        if (p->op == POOL_OP_RELOAD_DRAIN) {
                pool_drain_finish(p, true);
                prepared_engine_free(p->prepared);
                p->prepared = TAKE_PTR(p->reload_new);
                if (pool_start_engine(p, POOL_OP_RELOAD_NEW) < 0) {
                        PoolError e = { POOL_ERROR_INTERNAL, (char *) "failed to start the new engine" };

                        pool_start_finished(p, &e);
                }
                return;
        }

        pool_set_op(p, POOL_OP_NONE);
        pool_set_state(p, POOL_STOPPED);
        pool_save(p, false);
        pool_drain_finish(p, true);
        if (p->reload_waiters) {
                /* Stopped in the middle of a reload: it will not finish. */
                p->reload_new = prepared_engine_free(p->reload_new);
                p->rollback = prepared_engine_free(p->rollback);
                pool_reload_finish(p, POOL_ERROR_CANCELED, false, "reload canceled: the pool was stopped");
        }
        /* A preload interrupted by a stop fails. */
        pool_preload_ended(p, POOL_ERROR_CANCELED);
        waiters_fail(p, &p->preload_waiters, POOL_ERROR_CANCELED, "preload canceled: the pool was stopped");
        waiters_run(p, &p->stop_waiters, NULL);
}

static int pool_stop_engine(Pool *p) {
        int r;

        if (p->state == POOL_BACKOFF || p->state == POOL_FAILED) {
                /* No unit right now: stopped at once. */
                pool_on_stopped(p, NULL);
                return 0;
        }
        pool_set_state(p, POOL_STOPPING);
        r = engine_unit_stop(p->unit);
        if (r < 0)
                pool_on_stopped(p, strerror(-r));
        return 0;
}

int pool_stop(Pool *p, PoolDoneCallback cb, void *userdata, PoolError *ret_error) {
        int r;

        pool_take_correlation_id(p);
        if (p->preload_pending && !state_is_active(p->state)) {
                /* Nothing started yet: the preload ends here, and the pool is stopped. */
                p->preload_pending = prepared_engine_free(p->preload_pending);
                pool_set_op(p, POOL_OP_NONE);
                pool_preload_ended(p, POOL_ERROR_CANCELED);
                waiters_fail(p, &p->preload_waiters, POOL_ERROR_CANCELED, "preload canceled: the pool was stopped");
                if (p->state != POOL_STOPPED) {
                        pool_set_state(p, POOL_STOPPED);
                        pool_save(p, false);
                }
                if (cb)
                        cb(p, NULL, userdata);
                return 0;
        }

        if ((!pool_is_active(p) && p->state != POOL_FAILED) || (p->state == POOL_FAILED && !p->restart_timer))
                return pool_error_set(ret_error, POOL_ERROR_NOT_RUNNING, "pool %s is not running (%s)", p->id,
                                      pool_state_to_string(p->state));

        r = waiter_add(&p->stop_waiters, cb, userdata);
        if (r < 0)
                return r;
        if (p->state == POOL_STOPPING || p->state == POOL_FAILING)
                return 0;
        /* An explicit stop ends a reload's plans too; a plain drain completes with it. */
        p->reload_new = prepared_engine_free(p->reload_new);
        if (p->op != POOL_OP_DRAIN)
                pool_set_op(p, POOL_OP_STOP);
        return pool_stop_engine(p);
}

/* Records the drain's outcome and answers its waiters; stopped: the engine is gone, else the
 * drain was aborted. The operation is the caller's to change. */
static void pool_drain_finish(Pool *p, bool stopped) {
        usec_t t = now(CLOCK_MONOTONIC);
        PoolEntry *e;

        if (p->drain_start_usec == 0)
                return;
        p->drain_timer = sd_event_source_disable_unref(p->drain_timer);
        p->drain_outcome.duration_ms = (t - p->drain_start_usec) / USEC_PER_MSEC;
        p->drain_outcome.final_lease_count = registry_get_active_leases(p->manager->registry, p->id);
        p->metrics.drains[!stopped ? DRAIN_END_ABORTED :
                          p->drain_outcome.force_stopped ? DRAIN_END_FORCED : DRAIN_END_COMPLETED]++;
        histogram_observe(&p->metrics.drain_duration, &histogram_duration_bounds,
                          (double) (t - p->drain_start_usec) / USEC_PER_SEC);
        p->drain_start_usec = 0;

        /* Kept as the pool's last drain outcome, for status readers. */
        e = registry_get(p->manager->registry, p->id);
        if (e) {
                e->has_last_drain = true;
                e->last_drain_force_stopped = p->drain_outcome.force_stopped;
                e->last_drain_duration_ms = p->drain_outcome.duration_ms;
                e->last_drain_final_lease_count = p->drain_outcome.final_lease_count;
        }
        manager_pool_changed(p->manager, p->id);

        log_pool_struct(p->drain_outcome.force_stopped ? LOG_WARNING : LOG_INFO, p,
                   "DURATION_MS=%llu", (unsigned long long) p->drain_outcome.duration_ms,
                   "FORCE_STOPPED=%d", (int) p->drain_outcome.force_stopped,
                   "FINAL_LEASE_COUNT=%u", p->drain_outcome.final_lease_count,
                   LOG_MESSAGE("Pool \"%s\": drain %s after %llu ms%s", p->id,
                               stopped ? "done" : "aborted",
                               (unsigned long long) p->drain_outcome.duration_ms,
                               p->drain_outcome.force_stopped ? " (force-stopped with leases in flight)" : ""),
                   NULL);
        if (stopped)
                waiters_run(p, &p->drain_waiters, NULL);
        else
                waiters_fail(p, &p->drain_waiters, POOL_ERROR_BUSY, "drain deadline passed");
}

static int on_drain_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Pool *p = userdata;
        uint32_t leases = registry_get_active_leases(p->manager->registry, p->id);

        p->drain_timer = sd_event_source_disable_unref(p->drain_timer);

        if (p->op == POOL_OP_RELOAD_DRAIN) {
                _cleanup_free_ char *msg = NULL;

                /* A reload does not force: the old engine keeps serving. */
                pool_set_op(p, POOL_OP_NONE);
                p->reload_new = prepared_engine_free(p->reload_new);
                p->rollback = prepared_engine_free(p->rollback);
                p->drain_outcome.force_stopped = false;
                pool_drain_finish(p, false);
                pool_mirror(p);
                if (asprintf(&msg, "reload aborted: drain deadline passed with %u active lease%s; "
                             "the old engine keeps serving", leases, leases == 1 ? "" : "s") < 0)
                        msg = NULL;
                pool_reload_finish(p, POOL_ERROR_RELOAD_ABORTED, false, msg ?: "reload aborted: drain deadline passed");
                return 0;
        }

        log_pool(LOG_WARNING, p, "drain deadline passed with %u active lease%s; stopping the engine anyway.",
                 leases, leases == 1 ? "" : "s");
        p->drain_outcome.force_stopped = true;
        (void) pool_stop_engine(p);
        return 0;
}

/* op: POOL_OP_DRAIN or POOL_OP_RELOAD_DRAIN. */
static int pool_begin_drain(Pool *p, uint64_t deadline_ms, PoolOperation op) {
        int r;

        assert(op_is_drain(op));
        r = sd_event_add_time_relative(p->manager->event, &p->drain_timer, CLOCK_MONOTONIC,
                                       deadline_ms * USEC_PER_MSEC, USEC_PER_MSEC, on_drain_deadline, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->drain_timer, "pool-drain");

        pool_set_op(p, op);
        p->drain_outcome = (DrainOutcome) {};
        p->drain_start_usec = now(CLOCK_MONOTONIC);
        pool_mirror(p);

        if (registry_get_active_leases(p->manager->registry, p->id) == 0) {
                p->drain_timer = sd_event_source_disable_unref(p->drain_timer);
                return pool_stop_engine(p);
        }
        return 0;
}

void pool_leases_changed(Pool *p) {
        if (!pool_is_draining(p) || !p->drain_timer)
                return;
        if (registry_get_active_leases(p->manager->registry, p->id) > 0)
                return;
        /* The last lease is released: the engine can go. */
        p->drain_timer = sd_event_source_disable_unref(p->drain_timer);
        (void) pool_stop_engine(p);
}

int pool_drain(Pool *p, uint64_t deadline_ms, PoolDoneCallback cb, void *userdata, PoolError *ret_error) {
        int r;

        if (p->state != POOL_READY && p->state != POOL_PROBING && p->state != POOL_STARTING)
                return pool_error_set(ret_error, POOL_ERROR_NOT_RUNNING, "pool %s is not running (%s)", p->id,
                                      pool_state_to_string(p->state));
        if (pool_is_draining(p))
                return pool_error_set(ret_error, POOL_ERROR_BUSY, "pool %s is already draining", p->id);
        if (p->op == POOL_OP_RELOAD_NEW || p->op == POOL_OP_ROLLBACK)
                return pool_error_set(ret_error, POOL_ERROR_BUSY, "pool %s is being reloaded", p->id);

        r = waiter_add(&p->drain_waiters, cb, userdata);
        if (r < 0)
                return r;
        pool_take_correlation_id(p);
        log_pool(LOG_INFO, p, "draining, deadline %llu ms, %u active lease(s).",
                 (unsigned long long) deadline_ms, registry_get_active_leases(p->manager->registry, p->id));
        /* A drain supersedes a start in progress: whoever asked for it learns so now. */
        if (op_is_start(p->op)) {
                pool_preload_ended(p, POOL_ERROR_CANCELED);
                waiters_fail(p, &p->preload_waiters, POOL_ERROR_CANCELED,
                             "preload canceled: the pool is being drained");
        }
        r = pool_begin_drain(p, deadline_ms, POOL_OP_DRAIN);
        if (r < 0) {
                waiters_forget(&p->drain_waiters, userdata);
                return r;
        }
        return 0;
}

/* code: _POOL_ERROR_INVALID for success, else what the reload's waiters get with error. */
static void pool_reload_finish(Pool *p, PoolErrorCode code, bool rolled_back, const char *error) {
        ReloadOutcome *o = &p->reload_outcome;
        bool success = code < 0;

        p->metrics.reloads[success ? RELOAD_END_SUCCESS : rolled_back ? RELOAD_END_ROLLED_BACK : RELOAD_END_FAILED]++;
        if (p->metrics.reload_start_usec > 0)
                histogram_observe(&p->metrics.reload_duration, &histogram_duration_bounds,
                                  (double) (now(CLOCK_MONOTONIC) - p->metrics.reload_start_usec) / USEC_PER_SEC);
        p->metrics.reload_start_usec = 0;

        o->success = success;
        o->rolled_back = rolled_back;
        (void) free_and_strdup(&o->engine_version, p->prepared ? p->prepared->engine_version : NULL);
        /* error may be o->error itself (a rollback reports the new engine's failure). */
        if (error != o->error)
                (void) free_and_strdup(&o->error, error);
        error = o->error;

        log_pool_struct(success ? LOG_INFO : LOG_WARNING, p,
                   "RELOAD_SUCCESS=%d", (int) success,
                   "ROLLED_BACK=%d", (int) rolled_back,
                   "ENGINE_VERSION=%s", strempty(o->engine_version),
                   LOG_MESSAGE("Pool \"%s\": reload %s%s%s", p->id,
                               success ? "succeeded" : rolled_back ? "failed and was rolled back" : "failed",
                               error ? ": " : "", strempty(error)),
                   NULL);
        if (success)
                waiters_run(p, &p->reload_waiters, NULL);
        else
                waiters_fail(p, &p->reload_waiters, code, "%s", strna(error));
}

/* Whether path can be an engine: an existing regular file with an execute bit that this
 * process may execute (root passes access(X_OK) for any file with one x bit, and for a
 * directory, which systemd would only refuse as 203/EXEC after creating the unit). 0, or
 * negative errno with *ret_why ("not found", "a directory", ...). */
static int engine_binary_check(const char *path, const char **ret_why) {
        struct stat st;

        if (stat(path, &st) < 0) {
                *ret_why = errno == ENOENT ? "not found" : strerror(errno);
                return -errno;
        }
        if (S_ISDIR(st.st_mode)) {
                *ret_why = "is a directory, not a program";
                return -EISDIR;
        }
        if (!S_ISREG(st.st_mode)) {
                *ret_why = "is not a regular file";
                return -EACCES;
        }
        if ((st.st_mode & 0111) == 0 || access(path, X_OK) < 0) {
                *ret_why = "is not executable";
                return -EACCES;
        }
        return 0;
}

/* BINARY_NOT_FOUND or BINARY_NOT_EXECUTABLE when the PreparedEngine's binary cannot be run:
 * validation, before anything is created or changed. */
static int pool_check_binary(const PreparedEngine *pe, PoolError *ret_error) {
        const char *why = NULL;
        int r;

        r = engine_binary_check(pe->binary_path, &why);
        if (r == -ENOENT)
                return pool_error_set(ret_error, POOL_ERROR_BINARY_NOT_FOUND,
                                      "binary_path: engine binary not found: %s", pe->binary_path);
        if (r < 0)
                return pool_error_set(ret_error, POOL_ERROR_BINARY_NOT_EXECUTABLE,
                                      "binary_path: engine binary %s %s", pe->binary_path, why);
        return 0;
}

int pool_reload(Pool *p, PreparedEngine **prepared, uint64_t drain_deadline_ms, PoolDoneCallback cb,
                void *userdata, PoolError *ret_error) {
        int r;

        if (p->state != POOL_READY)
                return pool_error_set(ret_error, POOL_ERROR_NOT_RUNNING,
                                      "pool %s is not ready (%s); reload needs a serving engine", p->id,
                                      pool_state_to_string(p->state));
        if (p->op != POOL_OP_NONE)
                return pool_error_set(ret_error, POOL_ERROR_BUSY, "pool %s is already draining or reloading",
                                      p->id);
        /* Refused before anything changes: the old engine keeps serving. */
        r = pool_check_binary(*prepared, ret_error);
        if (r < 0)
                return r;
        pool_take_correlation_id(p);

        r = prepared_engine_copy(p->prepared, &p->rollback);
        if (r < 0)
                return r;
        /* The device mask stays unless the new engine sets one. */
        if (!(*prepared)->device_mask && p->prepared->device_mask) {
                (*prepared)->device_mask = strdup(p->prepared->device_mask);
                if (!(*prepared)->device_mask)
                        return -ENOMEM;
        }
        /* Its mask and split are checked now; its VRAM once the old engine has freed its own. */
        r = pool_place(p, *prepared, PLACEMENT_CHECK, ret_error);
        if (r < 0) {
                p->rollback = prepared_engine_free(p->rollback);
                return r;
        }
        r = waiter_add(&p->reload_waiters, cb, userdata);
        if (r < 0)
                return r;
        p->reload_new = TAKE_PTR(*prepared);
        free(p->reload_outcome.engine_version);
        free(p->reload_outcome.error);
        p->reload_outcome = (ReloadOutcome) {};
        p->metrics.reload_start_usec = now(CLOCK_MONOTONIC);

        log_pool(LOG_INFO, p, "reloading to engine %s, draining first (up to %llu ms).",
                 strna(p->reload_new->engine_version), (unsigned long long) drain_deadline_ms);
        r = pool_begin_drain(p, drain_deadline_ms, POOL_OP_RELOAD_DRAIN);
        if (r < 0) {
                waiters_forget(&p->reload_waiters, userdata);
                p->reload_new = prepared_engine_free(p->reload_new);
                p->rollback = prepared_engine_free(p->rollback);
                return r;
        }
        return 0;
}

/* ---- GPU health ---- */

static bool pool_uses_gpu(const Pool *p, const GpuDevice *d) {
        const DeviceMask *mask = p->placement ? p->placement->mask : NULL;

        if (!mask || !mask->enforced)
                return false;
        for (size_t i = 0; i < mask->n_entries; i++) {
                if (streq_ptr(mask->entries[i].uuid, d->uuid))
                        return true;
                for (size_t j = 0; j < d->n_mig; j++)
                        if (streq_ptr(mask->entries[i].uuid, d->mig[j].uuid))
                                return true;
        }
        return false;
}

void pool_gpu_unhealthy(Pool *p, const GpuDevice *d) {
        _cleanup_(pool_error_done) PoolError e = POOL_ERROR_NULL;
        _cleanup_free_ char *msg = NULL;
        int r;

        if (!pool_uses_gpu(p, d) || !(p->state == POOL_STARTING || p->state == POOL_PROBING || p->state == POOL_READY))
                return;
        if (asprintf(&msg, "GPU%u (%s) is %s (%s): the pool is not ready and is drained", d->index,
                     strna(d->uuid), gpu_health_to_string(d->health), strna(d->health_reason)) < 0)
                return (void) log_oom();
        log_pool(LOG_ERR, p, "%s.", msg);
        p->gpu_unhealthy = true;
        (void) registry_set_last_error(p->manager->registry, p->id, msg);
        pool_mirror(p);
        if (pool_is_draining(p))
                return;
        r = pool_drain(p, p->manager->config->reload_drain_timeout / USEC_PER_MSEC, NULL, NULL, &e);
        if (r < 0 && r != -ENOMEM)
                log_pool(LOG_WARNING, p, "cannot drain: %s", pool_error_message(&e));
}

/* ---- Preload, adoption, reset ---- */

/* The preload proper, once no unit of the pool's name is loaded. */
static void pool_preload_begin(Pool *p, PreparedEngine **prepared) {
        int r;

        prepared_engine_free(p->prepared);
        p->prepared = TAKE_PTR(*prepared);
        /* A new preload is a fresh start for supervision; crash and restart counts stay. */
        supervisor_reset(&p->supervisor, policy(p), now(CLOCK_REALTIME));

        r = pool_start_engine(p, POOL_OP_PRELOAD);
        if (r < 0) {
                PoolError e = { POOL_ERROR_INTERNAL, (char *) "failed to start the engine" };

                pool_start_finished(p, &e);
        }
}

int pool_busy_error(const Pool *p, PoolError *ret_error) {
        if (p->state == POOL_ORPHAN)
                return pool_error_set(ret_error, POOL_ERROR_ORPHAN_UNIT,
                                      "pool %s has an orphan engine unit %s (PID %i) that this daemon did not "
                                      "start or lost track of: stop it first (poolctl stop %s)", p->id,
                                      p->unit->name, (int) p->unit->main_pid, p->id);
        if (p->preload_pending)
                return pool_error_set(ret_error, POOL_ERROR_BUSY, "pool %s is already being preloaded", p->id);
        return pool_error_set(ret_error, POOL_ERROR_ALREADY_RUNNING, "pool %s is already %s", p->id,
                              pool_state_to_string(p->state));
}

int pool_preload(Pool *p, PreparedEngine **prepared, PoolDoneCallback cb, void *userdata,
                 PoolError *ret_error) {
        _cleanup_free_ char *busy = NULL;
        int r;

        if (pool_is_active(p))
                return pool_busy_error(p, ret_error);
        pool_take_correlation_id(p);

        /* Validation: a binary that cannot run is the caller's mistake, refused before any unit
         * exists, and nothing changes. */
        pool_preload_opened(p);
        r = pool_check_binary(*prepared, ret_error);
        if (r < 0) {
                log_pool(LOG_WARNING, p, "preload refused: %s", pool_error_message(ret_error));
                pool_preload_ended(p, ret_error ? ret_error->code : POOL_ERROR_INVALID_PREPARED_ENGINE);
                return r;
        }

        /* Someone else on the engine's port: refused, nothing changed. */
        r = pool_check_port_free(p, *prepared, &busy);
        if (r == -EADDRINUSE) {
                log_pool(LOG_WARNING, p, "preload refused: %s", strna(busy));
                pool_preload_ended(p, POOL_ERROR_PORT_IN_USE);
                return pool_error_set(ret_error, POOL_ERROR_PORT_IN_USE, "%s", strna(busy));
        }

        /* Placement: the device mask against the GPUs, the VRAM they have free. Refused with
         * nothing changed; on success the VRAM is promised to the pool. */
        r = pool_place(p, *prepared, PLACEMENT_ADMIT, ret_error);
        if (r < 0) {
                if (r != -ENOMEM)
                        log_pool(LOG_WARNING, p, "preload refused: %s", pool_error_message(ret_error));
                pool_preload_ended(p, r == -ENOMEM ? POOL_ERROR_INTERNAL :
                                      ret_error ? ret_error->code : POOL_ERROR_INVALID_PREPARED_ENGINE);
                return r;
        }

        r = waiter_add(&p->preload_waiters, cb, userdata);
        if (r < 0) {
                gpu_inventory_release(p->manager->gpus, p->id);
                p->metrics.preload_open = false;
                return r;
        }

        /* Is there a unit of this name already (someone else's, or one whose state was lost)?
         * Asked first, so that such a unit is tracked and the preload refused with nothing
         * changed, rather than StartTransientUnit failing after the state was written. */
        r = engine_unit_check(p->unit);
        if (r >= 0) {
                /* The preload supersedes a failed pool's pending circuit tick. */
                p->restart_timer = sd_event_source_disable_unref(p->restart_timer);
                pool_set_op(p, POOL_OP_PRELOAD);
                p->preload_pending = TAKE_PTR(*prepared);
                return 0;
        }
        log_pool(LOG_DEBUG, p, "cannot ask systemd about %s (%s); starting it right away.", p->unit->name,
                 strerror(-r));
        pool_preload_begin(p, prepared);
        return 0;
}

static int pool_take_state(Pool *p, SavedPool *state) {
        if (state->supervisor &&
            supervisor_from_json(state->supervisor, policy(p), &p->supervisor) < 0)
                log_pool(LOG_WARNING, p, "saved supervision state is damaged, starting afresh.");
        prepared_engine_free(p->prepared);
        p->prepared = TAKE_PTR(state->prepared);
        pool_state_done(state);
        return prepared_engine_base_url(p->prepared, &p->url);
}

/* A re-adopted engine's placement, on the GPUs as they are now: its devices in the status, its
 * VRAM on the ledger, its GPUs' health watched (drained when one fails). A mask that does not
 * resolve any more (a GPU gone, cordoned) is said, never a reason to drop a running engine. */
static int pool_adopt_placement(Pool *p) {
        _cleanup_(pool_error_done) PoolError e = POOL_ERROR_NULL;
        int r;

        r = pool_place(p, p->prepared, PLACEMENT_ADOPT, &e);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                log_pool(LOG_WARNING, p, "re-adopted engine's device_mask \"%s\" no longer matches the GPUs: %s; "
                         "its GPUs are not watched until it is started again.", strna(p->prepared->device_mask),
                         pool_error_message(&e));
        return pool_registry_placement(p);
}

int pool_adopt(Pool *p, SavedPool *state) {
        int r;

        r = pool_take_state(p, state);
        if (r < 0)
                return r;
        pool_set_op(p, POOL_OP_ADOPT);
        p->readopted = true;
        p->start_usec = now(CLOCK_MONOTONIC);
        r = pool_registry_starting(p);
        if (r < 0)
                return r;
        r = pool_adopt_placement(p);
        if (r < 0)
                return r;

        log_pool(LOG_INFO, p, "re-adopting running unit %s.", p->unit->name);
        /* Already started: probe once MainPID is known (same path as a fresh start). Start-up
         * is complete once its first probe has answered. */
        pool_set_state(p, POOL_PROBING);
        p->adoption_pending = true;
        return engine_unit_adopt(p->unit);
}

int pool_adopt_orphan(Pool *p, const char *why) {
        PoolEntry *e;
        int r;

        r = registry_ensure(p->manager->registry, p->id, &e);
        if (r < 0)
                return r;
        if (free_and_strdup(&e->unit, p->unit->name) < 0)
                return -ENOMEM;
        e->main_pid = 0;
        (void) registry_set_last_error(p->manager->registry, p->id, why);

        log_pool(LOG_WARNING, p, "%s", why);
        pool_set_op(p, POOL_OP_NONE);
        pool_set_state(p, POOL_ORPHAN);
        return engine_unit_adopt(p->unit);
}

int pool_resume(Pool *p, SavedPool *state) {
        int r;

        r = pool_take_state(p, state);
        if (r < 0)
                return r;
        /* Supervision's verdict outlives the daemon: an open circuit stays open, a pending
         * backoff is waited out. Otherwise the engine died while the daemon was away: restart. */
        if (p->supervisor.circuit == CIRCUIT_OPEN) {
                log_pool(LOG_NOTICE, p, "circuit open, not restarting it before %s.",
                           "the breaker timeout");
                pool_set_state(p, POOL_FAILED);
                pool_schedule_restart_timer(p, supervisor_next_tick(&p->supervisor, policy(p)));
                return 0;
        }
        if (p->supervisor.next_restart_at > now(CLOCK_REALTIME)) {
                pool_set_state(p, POOL_BACKOFF);
                pool_schedule_restart_timer(p, p->supervisor.next_restart_at);
                return 0;
        }
        log_pool(LOG_NOTICE, p, "its engine is gone; restarting it.");
        supervisor_on_restart(&p->supervisor, policy(p), now(CLOCK_REALTIME));
        return pool_start_engine(p, POOL_OP_RESTART);
}

int pool_reset(Pool *p, PoolError *ret_error) {
        if (p->state == POOL_ORPHAN || p->preload_pending)
                return pool_busy_error(p, ret_error);

        supervisor_reset(&p->supervisor, policy(p), now(CLOCK_REALTIME));
        pool_take_correlation_id(p);
        log_pool_struct(LOG_NOTICE, p,
                   "NEW_STATE=closed",
                   LOG_MESSAGE("Pool \"%s\": circuit reset by request.", p->id),
                   NULL);
        pool_mirror(p);
        pool_save(p, pool_is_active(p) || p->state == POOL_FAILED);

        if (p->state == POOL_FAILED && p->prepared && p->restart_timer) {
                /* A failed pool under supervision: try again now. */
                p->restart_timer = sd_event_source_disable_unref(p->restart_timer);
                supervisor_on_restart(&p->supervisor, policy(p), now(CLOCK_REALTIME));
                return pool_start_engine(p, POOL_OP_RESTART);
        }
        return 0;
}

/* ---- Logs for classification ---- */

/* The tail of EngineLogs=file's log file, split into lines. */
static char **log_file_tail(const char *path) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        char **l = NULL, *state = NULL;
        off_t size;
        ssize_t n;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return NULL;
        size = lseek(fd, 0, SEEK_END);
        if (size < 0 || lseek(fd, size > 16384 ? size - 16384 : 0, SEEK_SET) < 0)
                return NULL;
        buf = malloc(16384 + 1);
        if (!buf)
                return NULL;
        n = read(fd, buf, 16384);
        if (n <= 0)
                return NULL;
        buf[n] = '\0';
        for (char *line = strtok_r(buf, "\n", &state); line; line = strtok_r(NULL, "\n", &state))
                if (strv_extend(&l, line) < 0)
                        break;
        return l;
}

/* The engine's last log lines of its current run, oldest first, as crash_classify() wants. */
static char **pool_last_log_lines(Pool *p) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *error = NULL;
        const PoolEntry *e = registry_get(p->manager->registry, p->id);
        usec_t since = e ? e->started_at_usec : 0;
        sd_journal *j = NULL;
        int r;

        p->log_read_error = mfree(p->log_read_error);
        if (p->manager->config->engine_logs == ENGINE_LOGS_FILE) {
                _cleanup_free_ char *name = NULL, *path = NULL;

                if (asprintf(&name, "%s.log", p->id) < 0)
                        return NULL;
                path = path_join(p->manager->logs_dir, name);
                l = path ? log_file_tail(path) : NULL;
                if (!l && path && access(path, R_OK) < 0 &&
                    asprintf(&p->log_read_error, "its log file %s cannot be read: %s", path, strerror(errno)) < 0)
                        p->log_read_error = NULL;
                return TAKE_PTR(l);
        }

        /* The journal is read directly (mmap'ed files, a few entries): no IPC, no waiting. Lines
         * written just before the exit can lose their unit fields (journald looks the cgroup up
         * after the process is gone), so the pid matches too. Only this run's lines count. The
         * handle stays open: opening it costs milliseconds once journald has many files. */
        j = manager_journal(p->manager);
        if (!j) {
                p->log_read_error = strdup("the journal cannot be opened");
                return NULL;
        }
        r = journal_tail_lines(j, &(JournalTailMatch) {
                        .unit_field = p->manager->user ? "_SYSTEMD_USER_UNIT" : "_SYSTEMD_UNIT",
                        .unit = p->unit->name,
                        .pid = p->main_pid_seen,
                        .since_usec = since,
                }, CRASH_LOG_LINES_MAX, 4096, &l, &error);
        if (r < 0) {
                log_pool(LOG_DEBUG, p, "cannot read the engine's journal: %s", strna(error));
                if (asprintf(&p->log_read_error, "its journal cannot be read: %s", strna(error)) < 0)
                        p->log_read_error = NULL;
                return NULL;
        }
        return TAKE_PTR(l);
}

/* "<what>: \"<the engine's last lines>\"", what alone when the engine said nothing, or
 * "<what> (no engine output: <why>)" when its output could not be read. */
static char *pool_with_engine_words(Pool *p, const char *what, char * const *lines) {
        _cleanup_strv_free_ char **tail = NULL;
        _cleanup_free_ char *quoted = NULL;
        size_t n = lines ? strv_length((char **) lines) : 0;
        char *s;

        if (n == 0 && p->log_read_error) {
                if (asprintf(&s, "%s (no engine output: %s)", what, p->log_read_error) < 0)
                        return NULL;
                return s;
        }
        if (n == 0)
                return strdup(what);
        tail = strv_copy((char **) lines + (n > JOURNAL_TAIL_LINES ? n - JOURNAL_TAIL_LINES : 0));
        if (!tail || journal_lines_quote(tail, JOURNAL_TAIL_BYTES, &quoted) <= 0)
                return strdup(what);
        if (asprintf(&s, "%s: %s", what, quoted) < 0)
                return NULL;
        return s;
}

/* ---- Object ---- */

int pool_new(Pool **ret, Manager *m, const char *id) {
        _cleanup_(pool_freep) Pool *p = NULL;
        _cleanup_free_ char *unit = NULL, *name = NULL;
        int r;

        p = calloc(1, sizeof(Pool));
        if (!p)
                return -ENOMEM;
        p->manager = m;
        p->state = POOL_STOPPED;
        p->failure = POOL_ERROR_NULL;
        engine_load_init(&p->metrics.engine_load);
        supervisor_init(&p->supervisor, &m->config->supervision);
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
        /* Freeing cancels every callback: the unit's bus slots, the probe and the timers go with it. */
        waiters_fail(p, &p->preload_waiters, POOL_ERROR_CANCELED, "daemon shutting down");
        waiters_fail(p, &p->stop_waiters, POOL_ERROR_CANCELED, "daemon shutting down");
        waiters_fail(p, &p->drain_waiters, POOL_ERROR_CANCELED, "daemon shutting down");
        waiters_fail(p, &p->reload_waiters, POOL_ERROR_CANCELED, "daemon shutting down");
        /* A save still waiting for an idle loop is written now. */
        if (p->save_event && sd_event_source_get_enabled(p->save_event, NULL) > 0)
                pool_save(p, p->save_running);
        sd_event_source_disable_unref(p->save_event);
        sd_event_source_disable_unref(p->restart_timer);
        sd_event_source_disable_unref(p->liveness_timer);
        sd_event_source_disable_unref(p->drain_timer);
        probe_free(p->probe);
        engine_scraper_free(p->engine_scraper);
        free(p->metrics.engine_load_error);
        journal_watch_slot_free(p->log_watch);
        engine_unit_free(p->unit);
        prepared_engine_free(p->prepared);
        prepared_engine_free(p->preload_pending);
        prepared_engine_free(p->reload_new);
        prepared_engine_free(p->rollback);
        placement_free(p->placement);
        free(p->reload_outcome.engine_version);
        free(p->reload_outcome.error);
        free(p->correlation_id);
        free(p->metrics.cgroup);
        free(p->id);
        free(p->pid_path);
        free(p->handoff_path);
        free(p->url);
        pool_error_done(&p->failure);
        free(p->foreign_listener);
        free(p->log_read_error);
        return mfree(p);
}
