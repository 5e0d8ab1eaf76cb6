/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The daemon configuration: pool-managerd.conf plus pool-managerd.conf.d/ *.conf drop-ins
 * (lexical order, later files win), read with inih into a typed table. Unknown keys and
 * bad values are warnings naming file:line; the previous value is kept.
 */

#include <stdbool.h>

#include "shared/macro.h"
#include "shared/time-util.h"
#include "supervision.h"

typedef enum EngineLogs {
        ENGINE_LOGS_JOURNAL,
        ENGINE_LOGS_FILE,
        _ENGINE_LOGS_MAX,
        _ENGINE_LOGS_INVALID = -EINVAL,
} EngineLogs;

const char *engine_logs_to_string(EngineLogs l);
EngineLogs engine_logs_from_string(const char *s);

/* How engine units are sandboxed. */
typedef enum EngineSandbox {
        ENGINE_SANDBOX_FULL,            /* every setting, including ProtectKernelTunables/Logs */
        ENGINE_SANDBOX_CONTAINER,       /* all but those that remount /proc (for containers, VMs) */
        ENGINE_SANDBOX_OFF,
        _ENGINE_SANDBOX_MAX,
        _ENGINE_SANDBOX_INVALID = -EINVAL,
} EngineSandbox;

const char *engine_sandbox_to_string(EngineSandbox s);
EngineSandbox engine_sandbox_from_string(const char *s);

typedef struct Config {
        char *runtime_directory;        /* /run/pool-managerd or $XDG_RUNTIME_DIR/pool-managerd */
        char *state_directory;          /* /var/lib/pool-managerd or $XDG_STATE_HOME/pool-managerd */
        char *pools_directory;          /* /etc/pool-managerd/pools.d */
        char *listen;                   /* 127.0.0.1:9200 */
        char *api_token_file;           /* NULL: none */
        /* [HTTP] */
        unsigned http_max_connections;  /* 1024: past it the oldest incomplete request goes, or 503 */
        unsigned http_max_per_address;  /* 256, 0: no limit */
        usec_t http_request_timeout;    /* 10s: to receive a request's headers and body */
        bool gpu_only;                  /* yes */
        usec_t health_interval;         /* 500ms */
        usec_t health_timeout;          /* 120s */
        usec_t stop_timeout;            /* 5s */
        usec_t startup_timeout;         /* 10s: how long requests wait for re-adoption at start */
        EngineLogs engine_logs;         /* journal */
        EngineSandbox engine_sandbox;   /* full */
        usec_t reload_drain_timeout;    /* 30s: how long a reload waits for leases to finish */
        usec_t engine_metrics_interval; /* 5s: how often an engine's /metrics is read; 0: never */
        usec_t engine_metrics_timeout;  /* 2s: of each of those reads */
        char *engine_user;              /* User= of engine units (system instance); NULL: unset */
        char *nvml_library;             /* libnvidia-ml.so.1: dlopen()ed for the GPU inventory */
        usec_t gpu_refresh_interval;    /* [GPU] RefreshInterval=, 2s */

        SupervisionPolicy supervision;  /* [Supervision], defaults from supervision_policy_init() */

        /* [Fleet]: the node's pools in etcd (fleet.h) */
        char **fleet_etcd;              /* endpoints "http[s]://host:port"; NULL: off (the default) */
        char *fleet_node_name;          /* NULL: the hostname */
        usec_t fleet_lease_ttl;         /* 10s, whole seconds */
        char *fleet_key_prefix;         /* "/pool-managerd/" */
        char *fleet_trusted_certificate_file;   /* TLS: the CA to check etcd against; NULL: system's */
        char *fleet_certificate_file;   /* TLS client certificate, NULL: none */
        char *fleet_key_file;           /* its private key */
        char *fleet_credentials_file;   /* "USER:PASSWORD" for etcd's auth, NULL: none */

        unsigned n_warnings;            /* warnings emitted by the last load */
} Config;

/* Defaults for the system instance, or for a user instance (XDG directories) when user. */
int config_new(Config **ret, bool user);
Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);

/* The default main config path: /etc/pool-managerd/pool-managerd.conf, or
 * $XDG_CONFIG_HOME/pool-managerd/pool-managerd.conf for a user instance. */
int config_default_path(bool user, char **ret);

/*
 * Loads path (a missing file is fine) and then every *.conf in "<path>.d/" in lexical order.
 * Returns negative errno only for I/O errors other than ENOENT and for OOM. Logs everything
 * itself (warnings with file:line, and the error it returns), so callers need not log again.
 * On error c may hold part of the files: load into a fresh Config and swap on success.
 */
int config_load(Config *c, const char *path);

/* Parses one "key=value" for section [Manager]; used by config_load and the tests. */
int config_set(Config *c, const char *section, const char *key, const char *value);
