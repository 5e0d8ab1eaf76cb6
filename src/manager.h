/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The Manager owns the event loop, the bus connection to the service manager, the registry
 * and the pools. No protocol code lives here: D-Bus and HTTP front-ends call the manager_*
 * operations.
 */

#include <stdbool.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <systemd/sd-journal.h>

#include "config.h"
#include "curl-glue.h"
#include "journal-watch.h"
#include "gpu.h"
#include "pool.h"
#include "preflight.h"
#include "registry.h"

typedef struct HttpServer HttpServer;
typedef struct HttpEvents HttpEvents;
typedef struct Fleet Fleet;

struct Manager {
        sd_event *event;
        sd_bus *bus;                    /* to systemd (system bus, or the user bus with --user) */
        bool user;

        Config *config;
        char *config_path;
        char *override_runtime_dir;     /* --runtime-dir=, reapplied on reload */
        char *override_listen;          /* --listen=, reapplied on reload */
        Registry *registry;
        CurlGlue *curl;                 /* NULL until manager_get_curl(): libcurl loaded on first use */
        HttpServer *http;
        HttpEvents *events;             /* GET /events: the streams and what they were last sent */
        Fleet *fleet;                   /* the node's pools in etcd ([Fleet]); never NULL once started */
        CudaInfo cuda;
        GpuInventory *gpus;             /* NVML: devices, health, VRAM promised (issue 9) */

        Pool **pools;                   /* sorted by id */
        size_t n_pools;

        PoolEntry *published;           /* what the bus last saw (pool-bus.c) */
        size_t n_published;
        gid_t api_gid;                  /* group "pool-managerd", or (gid_t) -1 */
        bool name_acquired;
        bool running;                   /* the event loop runs */
        sd_bus_slot *name_slot;

        char *engines_dir;              /* <runtime>/engines */
        char *logs_dir;                 /* <runtime>/logs */

        sd_journal *journal;            /* for the last lines of crashed engines; closed when idle */
        sd_event_source *journal_idle_source;
        JournalWatch *journal_watch;    /* engines' lines as they come, while pools probe */
        sd_bus_slot *job_removed_slot;
        sd_bus_slot *list_units_slot;   /* re-adoption at start-up */
        bool adoption_done;             /* units listed, saved states read, pools created */
        /* Start-up is complete once every re-adopted engine answered its first probe (or failed,
         * or is gone). Until then nothing about pools is answered: the bus name is not yet
         * requested and HTTP requests are held; past StartupTimeout= they are refused (503,
         * ...Error.Starting) until it completes. */
        bool started;
        bool startup_timed_out;
        sd_event_source *startup_timer;
        usec_t startup_begin_usec;      /* CLOCK_MONOTONIC */
        bool exit_logged;               /* the reason the loop exits with an error was logged */
        sd_bus_slot *subscribe_slot;
        sd_event_source *sigterm_source, *sigint_source, *sighup_source;
        sd_event_source *status_source; /* deferred STATUS= update */
        struct Notifier *notifier;      /* READY=1, STATUS=... to the service manager */
        const char *correlation_id;     /* of the HTTP request being handled, only during the call */
};

/* Reads the configuration: defaults, the file and its drop-ins, then the command line
 * overrides (NULL: none). Logs what is wrong. */
int manager_read_config(bool user, const char *path, const char *runtime_dir, const char *listen,
                        Config **ret);

/* Takes ownership of config. The overrides are kept for reloads. */
int manager_new(Manager **ret, bool user, Config *config, const char *config_path,
                const char *override_runtime_dir, const char *override_listen);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Connects to the service manager, subscribes, creates directories, probes CUDA. */
int manager_startup(Manager *m);
/* Preloads every *.json in PoolsDirectory; bad files are logged and skipped. Runs once the
 * engines left running by a previous instance are re-adopted (manager_startup starts that). */
int manager_load_pools_directory(Manager *m);
int manager_run(Manager *m);
/* Rereads the configuration (SIGHUP, ReloadConfiguration()); on error keeps the old one and
 * returns negative errno with *ret_error. */
int manager_reload_config(Manager *m, char **ret_error);
/* Sends READY=1 once the bus name is acquired and the loop runs. */
void manager_notify_ready(Manager *m);

Pool *manager_get_pool(Manager *m, const char *id);
/* The shared CurlGlue, made on first use after loading libcurl (dlopen_curl()), so that a
 * daemon that never needs curl never maps it. Logs its errors; a libcurl that failed to load
 * fails every later call too, logged only the first time. */
int manager_get_curl(Manager *m, CurlGlue **ret);
/*
 * The operations of the API. Each fails with a PoolError (its code decides the HTTP status, the
 * D-Bus error and poolctl's exit status: shared/pool-error.h) and returns that code's errno,
 * negated; -ENOMEM comes without one. A callback may run before the call returns.
 */

/* Validation (binary, port, handoff file), GPU preflight and preload; the callback runs once
 * the engine is ready or the preload failed. */
int manager_preload(Manager *m, PreparedEngine **prepared, PoolDoneCallback cb, void *userdata,
                    PoolError *ret_error);
int manager_stop(Manager *m, const char *id, PoolDoneCallback cb, void *userdata, PoolError *ret_error);

/* Leases of a known pool; allocation is refused while it drains. */
int manager_allocate_lease(Manager *m, const char *id, uint32_t *ret_leases, PoolError *ret_error);
int manager_release_lease(Manager *m, const char *id, uint32_t *ret_leases, PoolError *ret_error);

/* Drain: leases refused, the engine stopped once they are released or at the deadline; the
 * callback runs then, with the result in p->drain_outcome. */
int manager_drain(Manager *m, const char *id, uint64_t deadline_ms, PoolDoneCallback cb, void *userdata,
                  PoolError *ret_error);
/* Reload with rollback; drain_deadline_ms 0: ReloadDrainTimeout=. The callback runs when the
 * new engine (or, after a failure, the old one again) is ready; see p->reload_outcome. */
int manager_reload(Manager *m, const char *id, PreparedEngine **prepared, uint64_t drain_deadline_ms,
                   PoolDoneCallback cb, void *userdata, PoolError *ret_error);
/* Manual circuit-breaker reset. */
int manager_reset(Manager *m, const char *id, PoolError *ret_error);

/* Called by pools on every state change: STATUS= and bus signals, coalesced at idle priority. */
void manager_pool_changed(Manager *m, const char *id);
/* The same, now: for changes readers must see without delay (an engine gone). */
void manager_flush_changes(Manager *m);
/* The journal, opened once and kept (NULL when it cannot be opened). */
sd_journal *manager_journal(Manager *m);
