/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <dirent.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>

#include <systemd/sd-daemon.h>

#include "build-config.h"
#include "bus-common.h"
#include "curl-dl.h"
#include "fleet.h"
#include "devices-bus.h"
#include "handoff.h"
#include "http.h"
#include "http-events.h"
#include "log.h"
#include "manager-bus.h"
#include "manager.h"
#include "notify.h"
#include "pool-bus.h"
#include "shared/event-util.h"
#include "shared/fileio.h"
#include "shared/strv.h"
#include "shared/string-util.h"

int manager_read_config(bool user, const char *path, const char *runtime_dir, const char *listen,
                        Config **ret) {
        _cleanup_(config_freep) Config *c = NULL;
        int r;

        r = config_new(&c, user);
        if (r < 0)
                return log_error_errno(r, "Failed to set up default configuration: %m");
        if (path) {
                r = config_load(c, path);       /* logs itself */
                if (r < 0)
                        return r;
        }
        if (runtime_dir) {
                r = config_set(c, "Manager", "RuntimeDirectory", runtime_dir);
                if (r < 0)
                        return log_error_errno(r, "Invalid --runtime-dir=%s: expected an absolute path", runtime_dir);
        }
        if (listen) {
                r = config_set(c, "Manager", "Listen", listen);
                if (r < 0)
                        return log_error_errno(r, "Invalid --listen=%s: expected HOST:PORT", listen);
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int manager_new(Manager **ret, bool user, Config *config, const char *config_path,
                const char *override_runtime_dir, const char *override_listen) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m) {
                config_free(config);
                return -ENOMEM;
        }
        m->user = user;
        m->config = config;
        m->cuda.nvml_gpus = -1;
        m->api_gid = (gid_t) -1;
        if ((config_path && !(m->config_path = strdup(config_path))) ||
            (override_runtime_dir && !(m->override_runtime_dir = strdup(override_runtime_dir))) ||
            (override_listen && !(m->override_listen = strdup(override_listen))))
                return -ENOMEM;

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;
        r = registry_new(&m->registry);
        if (r < 0)
                return r;
        r = notifier_new(&m->notifier, m->event);
        if (r < 0)
                return r;
        r = journal_watch_new(&m->journal_watch, m->event, user, POOL_ENGINES_SLICE);
        if (r < 0)
                return r;

        m->engines_dir = path_join(config->runtime_directory, "engines");
        m->logs_dir = path_join(config->runtime_directory, "logs");
        if (!m->engines_dir || !m->logs_dir)
                return -ENOMEM;

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;

        /* Pools first: they hold bus slots, probes (curl transfers) and event sources. Engines
         * keep running: they belong to systemd. */
        for (size_t i = 0; i < m->n_pools; i++)
                pool_free(m->pools[i]);
        m->pools = mfree(m->pools);
        m->n_pools = 0;

        /* Its requests are transfers of m->curl. The keys stay in etcd until the lease expires. */
        m->fleet = fleet_free(m->fleet);
        pool_entry_array_free(m->published, m->n_published);
        sd_bus_slot_unref(m->name_slot);
        if (m->journal)
                sd_journal_close(m->journal);
        sd_event_source_disable_unref(m->journal_idle_source);
        journal_watch_free(m->journal_watch);
        sd_bus_slot_unref(m->job_removed_slot);
        sd_bus_slot_unref(m->list_units_slot);
        sd_bus_slot_unref(m->subscribe_slot);
        sd_event_source_disable_unref(m->sigterm_source);
        sd_event_source_disable_unref(m->sigint_source);
        sd_event_source_disable_unref(m->sighup_source);
        sd_event_source_disable_unref(m->status_source);
        notifier_free(m->notifier);
        sd_event_source_disable_unref(m->startup_timer);
        /* The server first: stopping it closes the event streams, which leave m->events. */
        http_server_free(m->http);
        http_events_free(m->events);
        curl_glue_free(m->curl);
        sd_bus_flush_close_unref(m->bus);
        registry_free(m->registry);
        gpu_inventory_free(m->gpus);
        cuda_info_done(&m->cuda);
        config_free(m->config);
        free(m->config_path);
        free(m->override_runtime_dir);
        free(m->override_listen);
        free(m->engines_dir);
        free(m->logs_dir);
        sd_event_unref(m->event);
        return mfree(m);
}

int manager_get_curl(Manager *m, CurlGlue **ret) {
        int r;

        if (!m->curl) {
                r = dlopen_curl();
                if (r < 0)
                        return r;
                r = curl_glue_new(&m->curl, m->event);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up libcurl's multi handle: %m");
        }
        *ret = m->curl;
        return 0;
}

static int pool_compare_id(const void *key, const void *elem) {
        return strcmp(key, (*(Pool * const *) elem)->id);
}

Pool *manager_get_pool(Manager *m, const char *id) {
        Pool **p;

        if (!id || m->n_pools == 0)
                return NULL;
        p = bsearch(id, m->pools, m->n_pools, sizeof(Pool *), pool_compare_id);
        return p ? *p : NULL;
}

static int manager_add_pool(Manager *m, const char *id, Pool **ret) {
        _cleanup_(pool_freep) Pool *p = NULL;
        Pool **n;
        size_t i;
        int r;

        r = pool_new(&p, m, id);
        if (r < 0)
                return r;

        n = reallocarray(m->pools, m->n_pools + 1, sizeof(Pool *));
        if (!n)
                return -ENOMEM;
        m->pools = n;
        for (i = 0; i < m->n_pools && strcmp(m->pools[i]->id, id) < 0; i++)
                ;
        memmove(m->pools + i + 1, m->pools + i, (m->n_pools - i) * sizeof(Pool *));
        m->pools[i] = p;
        m->n_pools++;

        *ret = TAKE_PTR(p);
        return 0;
}

static int on_status_update(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        size_t ready = 0, n = registry_size(m->registry);
        char status[64];

        for (size_t i = 0; i < n; i++)
                if (registry_nth(m->registry, i)->health.ready)
                        ready++;

        (void) snprintf(status, sizeof status, "STATUS=%zu pool%s, %zu ready", n, n == 1 ? "" : "s", ready);
        (void) notifier_send(m->notifier, status);
        pool_bus_publish_changes(m);
        /* Pools gone from the registry. */
        http_events_sync(m->events);
        return 0;
}

void manager_flush_changes(Manager *m) {
        (void) on_status_update(NULL, m);
}

/* The journal handle maps windows of the journal files and keeps them: each crash reads the
 * newest entries, so over many crashes more and more pages of the growing files stay mapped
 * (file-backed RSS: +4 MiB over 200 crashes, seen with bench/soak). A handle unused for this long
 * is closed, which unmaps them; a burst of crashes keeps it open, reopening costs milliseconds. */
#define JOURNAL_IDLE_CLOSE_USEC (10 * USEC_PER_SEC)

static int on_journal_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        if (m->journal) {
                sd_journal_close(m->journal);
                m->journal = NULL;
        }
        return 0;
}

sd_journal *manager_journal(Manager *m) {
        if (!m->journal && sd_journal_open(&m->journal, SD_JOURNAL_LOCAL_ONLY) < 0)
                return NULL;
        /* Pick up rotated and new journal files. */
        (void) sd_journal_process(m->journal);

        (void) event_reset_time_relative(m->event, &m->journal_idle_source, CLOCK_MONOTONIC,
                                         JOURNAL_IDLE_CLOSE_USEC, USEC_PER_SEC, on_journal_idle, m,
                                         "journal-idle-close");
        return m->journal;
}

static void manager_check_startup(Manager *m);

void manager_pool_changed(Manager *m, const char *id) {
        int r;

        /* An engine started or stopped: its VRAM shows in NVML soon. */
        gpu_inventory_refresh_soon(m->gpus);

        if (!m->started)
                manager_check_startup(m);
        fleet_pool_changed(m->fleet, id);
        /* At once, not coalesced: event stream clients see each transition of a crash. */
        http_events_pool_changed(m->events, id);

        /* Coalesce: many pools changing in one loop iteration give one STATUS= update. */
        if (!m->status_source) {
                r = sd_event_add_defer(m->event, &m->status_source, on_status_update, m);
                if (r < 0)
                        return;
                (void) sd_event_source_set_priority(m->status_source, SD_EVENT_PRIORITY_IDLE);
                (void) sd_event_source_set_description(m->status_source, "status-update");
        }
        (void) sd_event_source_set_enabled(m->status_source, SD_EVENT_ONESHOT);
}

static int on_job_removed(sd_bus_message *message, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;
        const char *job, *unit, *result;
        uint32_t id;
        int r;

        r = sd_bus_message_read(message, "uoss", &id, &job, &unit, &result);
        if (r < 0) {
                log_warning_errno(r, "Failed to parse JobRemoved signal: %m");
                return 0;
        }

        /* Engine units are named after their pool; find the pool with that unit. */
        for (size_t i = 0; i < m->n_pools; i++)
                if (streq(m->pools[i]->unit->name, unit)) {
                        engine_unit_job_removed(m->pools[i]->unit, job, result);
                        break;
                }
        return 0;
}

static int on_subscribed(sd_bus_message *message, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;

        m->subscribe_slot = sd_bus_slot_unref(m->subscribe_slot);
        if (sd_bus_message_is_method_error(message, NULL))
                log_error("Failed to subscribe to systemd's signals: %s",
                          sd_bus_message_get_error(message)->message);
        return 0;
}

static int on_terminate(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        log_info("Received SIG%s, exiting; engines keep running under systemd.", sigabbrev_np(si->ssi_signo));
        (void) notifier_send(m->notifier, "STOPPING=1\nSTATUS=Shutting down");
        return sd_event_exit(m->event, 0);
}

int manager_reload_config(Manager *m, char **ret_error) {
        _cleanup_(config_freep) Config *c = NULL;
        bool gpu_only_changed, engine_metrics_changed;
        int r;

        r = manager_read_config(m->user, m->config_path, m->override_runtime_dir, m->override_listen, &c);
        if (r < 0) {
                log_error("Failed to reload configuration, keeping the old one.");
                if (asprintf(ret_error, "failed to reload the configuration from %s, keeping the old one "
                             "(see the journal for what is wrong)", strna(m->config_path)) < 0)
                        *ret_error = NULL;
                return r;
        }

        /* Running pools are not touched. Directories stay: pid and handoff files of running
         * pools live there. */
        if (!streq(c->runtime_directory, m->config->runtime_directory)) {
                log_warning("RuntimeDirectory= changed; the new value takes effect after a restart.");
                (void) free_and_strdup(&c->runtime_directory, m->config->runtime_directory);
        }
        /* The saved state of running pools lives there: moving it under them would orphan
         * their engines at the next start. */
        if (!streq_ptr(c->state_directory, m->config->state_directory)) {
                log_warning("StateDirectory= changed; the new value takes effect after a restart.");
                (void) free_and_strdup(&c->state_directory, m->config->state_directory);
        }
        if (!streq_ptr(c->listen, m->config->listen) || !streq_ptr(c->api_token_file, m->config->api_token_file) ||
            c->http_max_connections != m->config->http_max_connections ||
            c->http_max_per_address != m->config->http_max_per_address ||
            c->http_request_timeout != m->config->http_request_timeout)
                log_warning("Listen=, ApiTokenFile= and [HTTP] changes take effect after a restart.");
        if (!strv_equal(c->fleet_etcd, m->config->fleet_etcd) ||
            !streq_ptr(c->fleet_node_name, m->config->fleet_node_name) ||
            c->fleet_lease_ttl != m->config->fleet_lease_ttl ||
            !streq_ptr(c->fleet_key_prefix, m->config->fleet_key_prefix) ||
            !streq_ptr(c->fleet_trusted_certificate_file, m->config->fleet_trusted_certificate_file) ||
            !streq_ptr(c->fleet_certificate_file, m->config->fleet_certificate_file) ||
            !streq_ptr(c->fleet_key_file, m->config->fleet_key_file) ||
            !streq_ptr(c->fleet_credentials_file, m->config->fleet_credentials_file)) {
                /* The fleet client reads the TLS files with each request: keep them as they were. */
                log_warning("[Fleet] changes take effect after a restart.");
                strv_free(c->fleet_etcd);
                c->fleet_etcd = strv_copy(m->config->fleet_etcd);
                if (!c->fleet_etcd ||
                    free_and_strdup(&c->fleet_node_name, m->config->fleet_node_name) < 0 ||
                    free_and_strdup(&c->fleet_key_prefix, m->config->fleet_key_prefix) < 0 ||
                    free_and_strdup(&c->fleet_trusted_certificate_file,
                                    m->config->fleet_trusted_certificate_file) < 0 ||
                    free_and_strdup(&c->fleet_certificate_file, m->config->fleet_certificate_file) < 0 ||
                    free_and_strdup(&c->fleet_key_file, m->config->fleet_key_file) < 0 ||
                    free_and_strdup(&c->fleet_credentials_file, m->config->fleet_credentials_file) < 0)
                        return log_oom();
                c->fleet_lease_ttl = m->config->fleet_lease_ttl;
        }
        gpu_only_changed = c->gpu_only != m->config->gpu_only;
        engine_metrics_changed = c->engine_metrics_interval != m->config->engine_metrics_interval ||
                                 c->engine_metrics_timeout != m->config->engine_metrics_timeout;
        config_free(m->config);
        m->config = TAKE_PTR(c);
        if (engine_metrics_changed)
                for (size_t i = 0; i < m->n_pools; i++)
                        pool_engine_metrics_restart(m->pools[i]);
        if (gpu_only_changed)
                (void) sd_bus_emit_properties_changed(m->bus, POOL_MANAGER_PATH, POOL_MANAGER_INTERFACE,
                                                      "GpuOnly", NULL);
        log_info("Configuration reloaded.");
        return 0;
}

static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *error = NULL;

        (void) notifier_send(m->notifier, "RELOADING=1");
        (void) manager_reload_config(m, &error);
        (void) notifier_send(m->notifier, "READY=1");
        return 0;
}

static int manager_adopt_engines(Manager *m);
static void manager_check_startup(Manager *m);

static int on_name_acquired(sd_bus_message *message, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;
        uint32_t result = 0;

        m->name_slot = sd_bus_slot_unref(m->name_slot);

        if (sd_bus_message_is_method_error(message, NULL) ||
            sd_bus_message_read(message, "u", &result) < 0 || result != 1 /* PRIMARY_OWNER */) {
                const sd_bus_error *e = sd_bus_message_get_error(message);

                if (sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.AccessDenied"))
                        log_error("Cannot own " POOL_MANAGER_BUS_NAME ": the %s bus does not allow it. The D-Bus "
                                  "policy file " POOL_MANAGER_BUS_NAME ".conf is not installed where the bus "
                                  "reads it (%s), or it does not name this user. (%s)",
                                  m->user ? "user" : "system",
                                  m->user ? "the session bus needs no policy file; check its configuration" :
                                  "/usr/share/dbus-1/system.d/ or /etc/dbus-1/system.d/",
                                  e->message ?: e->name);
                else
                        log_error("Failed to acquire bus name " POOL_MANAGER_BUS_NAME ": %s",
                                  e ? e->message : result == 3 ? "another instance owns it" : "unexpected reply");
                m->exit_logged = true;
                return sd_event_exit(m->event, -EADDRINUSE);
        }

        m->name_acquired = true;
        manager_notify_ready(m);
        return 0;
}

void manager_notify_ready(Manager *m) {
        /* READY=1 only once the API is reachable: the bus name is ours (and the HTTP listener,
         * started before the event loop runs, is up). */
        if (!m->name_acquired || !m->running)
                return;
        (void) notifier_send(m->notifier, "READY=1");
        (void) on_status_update(NULL, m);
        log_struct(LOG_INFO,
                   LOG_MESSAGE_ID(MESSAGE_DAEMON_STARTED),
                   LOG_MESSAGE("pool-managerd " PACKAGE_VERSION " started (%s instance), serving "
                               POOL_MANAGER_BUS_NAME ".", m->user ? "user" : "system"),
                   NULL);
}

/* ---- Start-up: nothing about pools is answered before the engines are re-adopted ---- */

static int manager_request_name(Manager *m) {
        int r;

        if (m->name_slot || m->name_acquired)
                return 0;
        /* Flags 0: no queueing, no replacement; a second instance must fail, not wait. Requested
         * only now: a bus-activating call waits in the bus until the name is owned, and is then
         * answered with every pool in place. */
        r = sd_bus_request_name_async(m->bus, &m->name_slot, POOL_MANAGER_BUS_NAME, 0, on_name_acquired, m);
        if (r < 0) {
                log_error_errno(r, "Failed to request bus name " POOL_MANAGER_BUS_NAME ": %m");
                m->exit_logged = true;
                return sd_event_exit(m->event, r);
        }
        return 0;
}

static void manager_check_startup(Manager *m) {
        size_t adopted = 0, orphans = 0;
        usec_t took;

        if (m->started || !m->adoption_done)
                return;
        for (size_t i = 0; i < m->n_pools; i++) {
                if (m->pools[i]->adoption_pending)
                        return;
                if (m->pools[i]->readopted && m->pools[i]->state != POOL_ORPHAN)
                        adopted++;
                if (m->pools[i]->state == POOL_ORPHAN)
                        orphans++;
        }

        m->started = true;
        m->startup_timer = sd_event_source_disable_unref(m->startup_timer);
        took = now(CLOCK_MONOTONIC) - m->startup_begin_usec;
        log_info("Start-up complete after %llu ms: %zu pool%s, %zu engine%s re-adopted, %zu orphan%s.",
                 (unsigned long long) (took / USEC_PER_MSEC), m->n_pools, m->n_pools == 1 ? "" : "s",
                 adopted, adopted == 1 ? "" : "s", orphans, orphans == 1 ? "" : "s");
        (void) manager_request_name(m);
        if (m->http)
                http_server_release_held(m->http);
        fleet_startup_complete(m->fleet);
}

static int on_startup_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        m->startup_timer = sd_event_source_disable_unref(m->startup_timer);
        if (m->started)
                return 0;
        log_warning("Start-up not complete after StartupTimeout=%llu ms (%s); answering requests about pools "
                    "with \"starting\" errors until it is.",
                    (unsigned long long) (m->config->startup_timeout / USEC_PER_MSEC),
                    m->adoption_done ? "waiting for the first probe of re-adopted engines" :
                    "systemd has not listed the engine units yet");
        m->startup_timed_out = true;
        /* Every pool is known once the units are listed; only first probes are outstanding. */
        if (m->adoption_done)
                fleet_startup_complete(m->fleet);
        (void) manager_request_name(m);
        if (m->http)
                http_server_release_held(m->http);
        return 0;
}

/* The GPU inventory changed beyond memory figures. A GPU that became unhealthy takes no new engines
 * (the mask resolver refuses it) and the pools on it are drained. */
static void on_gpus_changed(GpuInventory *g, const GpuDevice *unhealthy, void *userdata) {
        Manager *m = userdata;

        devices_bus_emit_changed(m);
        if (unhealthy)
                for (size_t i = 0; i < m->n_pools; i++)
                        pool_gpu_unhealthy(m->pools[i], unhealthy);
}

/* Per-process VRAM may have moved: each placed pool's engine usage, for its status. */
static void on_gpu_usage(GpuInventory *g, void *userdata) {
        Manager *m = userdata;

        for (size_t i = 0; i < m->n_pools; i++) {
                Pool *p = m->pools[i];
                PoolEntry *e = registry_get(m->registry, p->id);
                uint64_t used;

                if (!e || !e->devices || !p->unit)
                        continue;
                used = gpu_inventory_unit_usage(g, p->unit->name);
                if (used == e->vram_used)
                        continue;
                e->vram_used = used;
                manager_pool_changed(m, p->id);
        }
}

int manager_startup(Manager *m) {
        _cleanup_free_ char *cuda = NULL;
        int r;

        r = m->user ? sd_bus_open_user(&m->bus) : sd_bus_open_system(&m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the %s bus: %m", m->user ? "user" : "system");
        (void) sd_bus_set_description(m->bus, "pool-managerd");
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach bus to event loop: %m");

        r = sd_bus_match_signal_async(m->bus, &m->job_removed_slot, "org.freedesktop.systemd1",
                                      "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                      "JobRemoved", on_job_removed, NULL, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch systemd's JobRemoved signal: %m");

        /* Without Subscribe() systemd does not emit unit PropertiesChanged/JobRemoved signals. */
        r = sd_bus_call_method_async(m->bus, &m->subscribe_slot, "org.freedesktop.systemd1",
                                     "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                     "Subscribe", on_subscribed, m, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to systemd: %m");

        r = sd_event_add_signal(m->event, &m->sigterm_source, SIGTERM, on_terminate, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, &m->sigint_source, SIGINT, on_terminate, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, &m->sighup_source, SIGHUP, on_reload, m);
        if (r < 0)
                return log_error_errno(r, "Failed to install signal handlers: %m");

        r = manager_bus_register(m);
        if (r < 0)
                return r;

        if (!m->user) {
                struct group *g = getgrnam(POOL_MANAGER_GROUP);
                if (g)
                        m->api_gid = g->gr_gid;
        }

        r = mkdir_p(m->config->runtime_directory, 0755);
        if (r >= 0)
                r = mkdir_p(m->engines_dir, 0755);
        if (r >= 0)
                r = mkdir_p(m->logs_dir, 0750);
        if (r < 0)
                return log_error_errno(r, "Failed to create runtime directory %s: %m",
                                       m->config->runtime_directory);

        r = manager_adopt_engines(m);
        if (r < 0)
                return log_error_errno(r, "Failed to list engine units for re-adoption: %m");
        m->startup_begin_usec = now(CLOCK_MONOTONIC);
        r = sd_event_add_time_relative(m->event, &m->startup_timer, CLOCK_MONOTONIC,
                                       m->config->startup_timeout, USEC_PER_MSEC, on_startup_timeout, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the start-up timer: %m");
        (void) sd_event_source_set_description(m->startup_timer, "startup-timeout");

        /* Probed once: NVML initialisation can take a moment and GPUs do not come and go. */
        r = cuda_info_probe(NULL, m->config->nvml_library, &m->cuda);
        if (r < 0)
                return log_error_errno(r, "Failed to probe for CUDA: %m");
        (void) cuda_info_describe(&m->cuda, &cuda);
        log_info("CUDA %savailable (%s); GpuOnly=%s.", cuda_info_available(&m->cuda) ? "" : "not ",
                 strna(cuda), m->config->gpu_only ? "yes" : "no");

        r = fleet_new(&m->fleet, m);
        if (r < 0)
                return r;
        r = fleet_start(m->fleet);
        if (r < 0)
                return r;

        /* The inventory, refreshed on its timer; NVML missing is its state, not an error. */
        r = gpu_inventory_new(&m->gpus, m->event, m->config->nvml_library, m->config->gpu_refresh_interval,
                              on_gpus_changed, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the GPU inventory: %m");
        gpu_inventory_set_usage_callback(m->gpus, on_gpu_usage);
        r = gpu_inventory_start(m->gpus);
        if (r < 0)
                return r;

        return 0;
}

int manager_preload(Manager *m, PreparedEngine **prepared, PoolDoneCallback cb, void *userdata,
                    PoolError *ret_error) {
        Pool *p;
        int r;

        p = manager_get_pool(m, (*prepared)->pool_id);

        if (p && pool_is_active(p))
                return pool_busy_error(p, ret_error);

        /* "<pool>-<replica>.json" is ambiguous when ids contain dashes (pool "a-r1" replica "r0"
         * and pool "a" replica "r1-r0"): refuse a second pool that would share a handoff file. */
        for (size_t i = 0; i < m->n_pools; i++) {
                const PreparedEngine *o = m->pools[i]->prepared;
                _cleanup_free_ char *mine = NULL, *theirs = NULL;

                if (!o || streq(o->pool_id, (*prepared)->pool_id))
                        continue;
                if (handoff_path(m->engines_dir, (*prepared)->pool_id, (*prepared)->replica_id, &mine) < 0 ||
                    handoff_path(m->engines_dir, o->pool_id, o->replica_id, &theirs) < 0)
                        return -ENOMEM;
                if (streq(mine, theirs))
                        return pool_error_set(ret_error, POOL_ERROR_HANDOFF_IN_USE,
                                              "pool_id/replica_id: handoff file %s is already used by "
                                              "pool %s (replica %s)", mine, o->pool_id, o->replica_id);
        }

        if (m->config->gpu_only && !cuda_info_available(&m->cuda)) {
                _cleanup_free_ char *msg = NULL;

                r = cuda_info_gpu_only_error(&m->cuda, &msg);
                if (r < 0)
                        return r;
                log_struct(LOG_ERR,
                           LOG_MESSAGE_ID(MESSAGE_ENGINE_FAILED),
                           "POOL_ID=%s", (*prepared)->pool_id,
                           "ERROR=%s", msg,
                           LOG_MESSAGE("Pool \"%s\": preload refused: %s", (*prepared)->pool_id, msg),
                           NULL);
                (void) registry_set_last_error(m->registry, (*prepared)->pool_id, msg);
                manager_pool_changed(m, (*prepared)->pool_id);
                return pool_error_set(ret_error, POOL_ERROR_GPU_REQUIRED, "%s", msg);
        }

        if (!p) {
                r = manager_add_pool(m, (*prepared)->pool_id, &p);
                if (r < 0)
                        return r;
        }
        return pool_preload(p, prepared, cb, userdata, ret_error);
}

/* The error for an operation on a pool this daemon does not run: known to the registry (a
 * refused preload, leases) but never started, or unknown. */
static int pool_missing_error(Manager *m, const char *id, PoolError *ret_error) {
        if (registry_get(m->registry, id))
                return pool_error_set(ret_error, POOL_ERROR_NOT_RUNNING, "pool %s is not running", id);
        return pool_error_set(ret_error, POOL_ERROR_NO_SUCH_POOL, "pool %s not found", id);
}

int manager_stop(Manager *m, const char *id, PoolDoneCallback cb, void *userdata, PoolError *ret_error) {
        Pool *p;

        p = manager_get_pool(m, id);
        if (!p)
                return pool_missing_error(m, id, ret_error);
        return pool_stop(p, cb, userdata, ret_error);
}

static int lease_change(Manager *m, const char *id, bool allocate, uint32_t *ret_leases, PoolError *ret_error) {
        PoolEntry *e;
        int r;

        e = registry_get(m->registry, id);
        if (!e)
                return pool_error_set(ret_error, POOL_ERROR_NO_SUCH_POOL, "pool %s not found", id);

        r = allocate ? registry_allocate_lease(m->registry, id, ret_leases) :
                registry_release_lease(m->registry, id, ret_leases);
        if (r >= 0 && !allocate && manager_get_pool(m, id))
                pool_leases_changed(manager_get_pool(m, id));
        if (r == -EBUSY)
                return pool_error_set(ret_error, POOL_ERROR_DRAINING, "pool %s is draining: new leases are refused",
                                      id);
        if (r < 0)
                return r;

        manager_pool_changed(m, id);
        return 0;
}

int manager_allocate_lease(Manager *m, const char *id, uint32_t *ret_leases, PoolError *ret_error) {
        return lease_change(m, id, true, ret_leases, ret_error);
}

int manager_release_lease(Manager *m, const char *id, uint32_t *ret_leases, PoolError *ret_error) {
        return lease_change(m, id, false, ret_leases, ret_error);
}



int manager_drain(Manager *m, const char *id, uint64_t deadline_ms, PoolDoneCallback cb, void *userdata,
                  PoolError *ret_error) {
        Pool *p = manager_get_pool(m, id);

        if (!p)
                return pool_missing_error(m, id, ret_error);
        return pool_drain(p, deadline_ms, cb, userdata, ret_error);
}

int manager_reload(Manager *m, const char *id, PreparedEngine **prepared, uint64_t drain_deadline_ms,
                   PoolDoneCallback cb, void *userdata, PoolError *ret_error) {
        Pool *p = manager_get_pool(m, id);

        if (!p)
                return pool_missing_error(m, id, ret_error);
        if (!streq((*prepared)->pool_id, id))
                return pool_error_set(ret_error, POOL_ERROR_INVALID_PREPARED_ENGINE,
                                      "pool_id: \"%s\" in the PreparedEngine differs from the pool \"%s\"",
                                      (*prepared)->pool_id, id);
        if (m->config->gpu_only && !cuda_info_available(&m->cuda)) {
                _cleanup_free_ char *msg = NULL;
                int r = cuda_info_gpu_only_error(&m->cuda, &msg);

                if (r < 0)
                        return r;
                return pool_error_set(ret_error, POOL_ERROR_GPU_REQUIRED, "%s", msg);
        }
        return pool_reload(p, prepared, drain_deadline_ms > 0 ? drain_deadline_ms :
                           m->config->reload_drain_timeout / USEC_PER_MSEC, cb, userdata, ret_error);
}

int manager_reset(Manager *m, const char *id, PoolError *ret_error) {
        Pool *p = manager_get_pool(m, id);

        if (!p)
                return pool_missing_error(m, id, ret_error);
        return pool_reset(p, ret_error);
}

/* ---- Re-adoption of engines that outlived a previous instance ---- */

#define ENGINE_UNIT_SUFFIX ".service"

/* "pool-engine-<id>.service" -> id; NULL when it is not one of ours. */
static char *pool_id_from_unit(const char *unit) {
        size_t n = strlen(unit), lp = strlen(ENGINE_UNIT_PREFIX), ls = strlen(ENGINE_UNIT_SUFFIX);
        char *id;

        if (n <= lp + ls || !strneq(unit, ENGINE_UNIT_PREFIX, lp) || !streq(unit + n - ls, ENGINE_UNIT_SUFFIX))
                return NULL;
        id = strndup(unit + lp, n - lp - ls);
        if (id && !pool_id_is_valid(id))
                id = mfree(id);
        return id;
}

static void stop_unwanted_unit(Manager *m, const char *unit, const char *why) {
        int r;

        log_warning("Engine unit %s has %s; stopping it.", unit, why);
        r = sd_bus_call_method_async(m->bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager", "StopUnit", NULL, NULL, "ss", unit,
                                     "replace");
        if (r < 0)
                log_warning_errno(r, "Failed to stop unit %s: %m", unit);
}

/* A unit without usable saved state: shown as an orphan pool, never silently dropped. */
static void track_orphan_unit(Manager *m, const char *id, const char *unit, const char *why) {
        _cleanup_free_ char *msg = NULL;
        Pool *p = manager_get_pool(m, id);
        int r;

        if (asprintf(&msg, "engine unit %s runs, but %s: tracked as an orphan (stop it with poolctl stop %s, "
                     "then preload the pool again)", unit, why, id) < 0)
                return (void) log_oom();
        r = p ? 0 : manager_add_pool(m, id, &p);
        if (r >= 0)
                r = pool_adopt_orphan(p, msg);
        if (r < 0)
                log_error_errno(r, "Failed to track orphan unit %s: %m", unit);
}

static void adopt_unit(Manager *m, const char *unit, const char *active_state) {
        _cleanup_free_ char *id = pool_id_from_unit(unit), *error = NULL, *why = NULL, *state_path = NULL;
        SavedPool state = {};
        Pool *p;
        int r;

        if (!id)
                return;
        if (streq(active_state, "deactivating")) {
                /* On its way out (a stop the previous instance asked for, or someone else's). */
                track_orphan_unit(m, id, unit, "it is being stopped");
                return;
        }
        r = pool_state_load(m->config->state_directory, id, &state, &error);
        if (r < 0) {
                /* error names the file. */
                if (asprintf(&state_path, "%s/pools/%s.json", m->config->state_directory, id) < 0 ||
                    (r == -ENOENT ?
                     asprintf(&why, "it has no saved state (%s)", state_path) :
                     asprintf(&why, "its saved state is unusable: %s", error ?: state_path)) < 0)
                        return (void) log_oom();
                track_orphan_unit(m, id, unit, why);
                return;
        }
        if (!state.running) {
                pool_state_done(&state);
                stop_unwanted_unit(m, unit, "saved state saying it should be stopped");
                return;
        }
        r = manager_add_pool(m, id, &p);
        if (r >= 0)
                r = pool_adopt(p, &state);
        pool_state_done(&state);
        if (r < 0)
                log_error_errno(r, "Failed to re-adopt %s: %m", unit);
}

static int state_filter(const struct dirent *d) {
        size_t n = strlen(d->d_name);

        return d->d_name[0] != '.' && n > 5 && streq(d->d_name + n - 5, ".json");
}

/* Pools whose saved state says "running" but whose unit is gone: the engine died while the
 * daemon was away. They are restarted. */
static void resume_saved_pools(Manager *m) {
        _cleanup_free_ char *dir = path_join(m->config->state_directory, "pools");
        struct dirent **list = NULL;
        int n;

        if (!dir)
                return (void) log_oom();
        n = scandir(dir, &list, state_filter, alphasort);
        if (n < 0)
                return;
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *id = strndup(list[i]->d_name, strlen(list[i]->d_name) - 5), *error = NULL;
                SavedPool state = {};
                Pool *p;
                int r;

                free(list[i]);
                if (!id || !pool_id_is_valid(id) || manager_get_pool(m, id))
                        continue;
                r = pool_state_load(m->config->state_directory, id, &state, &error);
                if (r < 0) {
                        log_warning("Ignoring saved state of pool \"%s\": %s", id, error ?: strerror(-r));
                        continue;
                }
                if (state.running && manager_add_pool(m, id, &p) >= 0)
                        (void) pool_resume(p, &state);
                pool_state_done(&state);
        }
        free(list);
}

static int on_units_listed(sd_bus_message *message, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;
        const char *unit, *active;
        int r;

        m->list_units_slot = sd_bus_slot_unref(m->list_units_slot);

        if (sd_bus_message_is_method_error(message, NULL))
                log_error("Failed to list engine units, nothing re-adopted: %s",
                          sd_bus_message_get_error(message)->message);
        else {
                r = sd_bus_message_enter_container(message, 'a', "(ssssssouso)");
                while (r > 0) {
                        r = sd_bus_message_read(message, "(ssssssouso)", &unit, NULL, NULL, &active, NULL, NULL,
                                                NULL, NULL, NULL, NULL);
                        if (r <= 0)
                                break;
                        if (strv_contains(STRV_MAKE("active", "activating", "reloading", "deactivating"), active))
                                adopt_unit(m, unit, active);
                }
                if (r < 0)
                        log_error_errno(r, "Failed to parse the unit list: %m");
        }

        resume_saved_pools(m);
        m->adoption_done = true;
        manager_check_startup(m);
        return manager_load_pools_directory(m);
}

static int manager_adopt_engines(Manager *m) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *req = NULL;
        int r;

        /* Engines are units of their own and outlive the daemon: take them back before
         * PoolsDirectory is read, so a running pool is re-adopted rather than started twice. */
        r = sd_bus_message_new_method_call(m->bus, &req, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager", "ListUnitsByPatterns");
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(req, NULL);
        if (r >= 0)
                r = sd_bus_message_append_strv(req, STRV_MAKE(ENGINE_UNIT_PREFIX "*" ENGINE_UNIT_SUFFIX));
        if (r < 0)
                return r;
        return sd_bus_call_async(m->bus, &m->list_units_slot, req, on_units_listed, m, 0);
}

static int json_filter(const struct dirent *d) {
        size_t n = strlen(d->d_name);

        return d->d_name[0] != '.' && n > 5 && streq(d->d_name + n - 5, ".json");
}

int manager_load_pools_directory(Manager *m) {
        const char *dir = m->config->pools_directory;
        struct dirent **list = NULL;
        int n;

        n = scandir(dir, &list, json_filter, alphasort);
        if (n < 0) {
                if (errno == ENOENT) {
                        log_debug("Pools directory %s does not exist, nothing to preload.", dir);
                        return 0;
                }
                return log_error_errno(errno, "Failed to read pools directory %s: %m", dir);
        }

        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL, *text = NULL, *error = NULL;
                _cleanup_(prepared_engine_freep) PreparedEngine *pe = NULL;
                PoolError perror = POOL_ERROR_NULL;
                size_t size;
                Pool *p;
                int r;

                path = path_join(dir, list[i]->d_name);
                free(list[i]);
                if (!path) {
                        log_oom();
                        continue;
                }

                r = read_full_file(path, PREPARED_ENGINE_MAX_SIZE, &text, &size);
                if (r < 0) {
                        log_error_errno(r, "%s: failed to read: %m", path);
                        continue;
                }
                r = prepared_engine_from_json(text, size, &pe, &error);
                if (r < 0) {
                        log_error("%s: invalid PreparedEngine: %s", path, error ?: strerror(-r));
                        continue;
                }
                p = manager_get_pool(m, pe->pool_id);
                if (p && pool_is_active(p)) {
                        /* Re-adopted (or resumed) from a previous instance: keep it as it runs. */
                        log_info("%s: pool \"%s\" is already %s, kept as it is (use Reload to change "
                                 "its engine).", path, pe->pool_id, pool_state_to_string(p->state));
                        continue;
                }
                r = manager_preload(m, &pe, NULL, NULL, &perror);
                if (r < 0)
                        log_error("%s: preload of pool \"%s\" refused: %s", path, pe->pool_id,
                                  pool_error_is_set(&perror) ? pool_error_message(&perror) : strerror(-r));
                pool_error_done(&perror);
        }
        free(list);
        return 0;
}

int manager_run(Manager *m) {
        int r;

        r = notifier_start_watchdog(m->notifier);
        if (r < 0)
                log_warning_errno(r, "Failed to enable watchdog support: %m");

        m->running = true;
        manager_notify_ready(m);
        return sd_event_loop(m->event);
}
