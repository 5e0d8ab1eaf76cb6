/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "shared/strv.h"
#include "test-util.h"

/* ---- Helpers ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void rm_rf(const char *path) {
        ASSERT_OK(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS));
}

static char *make_tmpdir(void) {
        char *d = strdup("/tmp/test-config.XXXXXX");

        ASSERT_NOT_NULL(d);
        ASSERT_NOT_NULL(mkdtemp(d));
        return d;
}

static char *pathf(const char *format, ...) _printf_(1, 2);
static char *pathf(const char *format, ...) {
        va_list ap;
        char *p;

        va_start(ap, format);
        ASSERT_TRUE(vasprintf(&p, format, ap) >= 0);
        va_end(ap);
        return p;
}

static void write_file(const char *path, const char *content) {
        FILE *f = fopen(path, "we");

        ASSERT_NOT_NULL(f);
        ASSERT_EQ(fwrite(content, 1, strlen(content), f), strlen(content));
        ASSERT_EQ(fclose(f), 0);
}

/* A fresh system Config loaded from a main file with the given content. */
static Config *load_string(const char *content) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = pathf("%s/pool-managerd.conf", dir);
        Config *c;

        write_file(path, content);
        ASSERT_OK(config_new(&c, false));
        ASSERT_OK(config_load(c, path));
        rm_rf(dir);
        return c;
}

static void assert_config_equal(const Config *a, const Config *b) {
        ASSERT_STREQ(a->runtime_directory, b->runtime_directory);
        ASSERT_STREQ(a->state_directory, b->state_directory);
        ASSERT_STREQ(a->pools_directory, b->pools_directory);
        ASSERT_STREQ(a->listen, b->listen);
        ASSERT_TRUE(streq_ptr(a->api_token_file, b->api_token_file));
        ASSERT_EQ(a->http_max_connections, b->http_max_connections);
        ASSERT_EQ(a->http_max_per_address, b->http_max_per_address);
        ASSERT_EQ(a->http_request_timeout, b->http_request_timeout);
        ASSERT_EQ(a->gpu_only, b->gpu_only);
        ASSERT_EQ(a->health_interval, b->health_interval);
        ASSERT_EQ(a->health_timeout, b->health_timeout);
        ASSERT_EQ(a->stop_timeout, b->stop_timeout);
        ASSERT_EQ(a->engine_metrics_interval, b->engine_metrics_interval);
        ASSERT_EQ(a->engine_metrics_timeout, b->engine_metrics_timeout);
        ASSERT_EQ(a->engine_logs, b->engine_logs);
        ASSERT_EQ(a->engine_sandbox, b->engine_sandbox);
}

static void assert_system_defaults(const Config *c) {
        ASSERT_STREQ(c->runtime_directory, "/run/pool-managerd");
        ASSERT_STREQ(c->state_directory, "/var/lib/pool-managerd");
        ASSERT_STREQ(c->pools_directory, "/etc/pool-managerd/pools.d");
        ASSERT_STREQ(c->listen, "127.0.0.1:9200");
        ASSERT_NULL(c->api_token_file);
        ASSERT_EQ(c->http_max_connections, 1024U);
        ASSERT_EQ(c->http_max_per_address, 256U);
        ASSERT_EQ(c->http_request_timeout, 10 * USEC_PER_SEC);
        ASSERT_EQ(c->engine_metrics_interval, 5 * USEC_PER_SEC);
        ASSERT_EQ(c->engine_metrics_timeout, 2 * USEC_PER_SEC);
        ASSERT_TRUE(c->gpu_only);
        ASSERT_EQ(c->health_interval, 500 * USEC_PER_MSEC);
        ASSERT_EQ(c->health_timeout, 120 * USEC_PER_SEC);
        ASSERT_EQ(c->stop_timeout, 5 * USEC_PER_SEC);
        ASSERT_EQ(c->startup_timeout, 10 * USEC_PER_SEC);
        ASSERT_EQ(c->engine_logs, ENGINE_LOGS_JOURNAL);
        ASSERT_EQ(c->engine_sandbox, ENGINE_SANDBOX_FULL);
        ASSERT_NULL(c->fleet_etcd);
        ASSERT_NULL(c->fleet_node_name);
        ASSERT_EQ(c->fleet_lease_ttl, 10 * USEC_PER_SEC);
        ASSERT_STREQ(c->fleet_key_prefix, "/pool-managerd/");
        ASSERT_NULL(c->fleet_trusted_certificate_file);
        ASSERT_NULL(c->fleet_credentials_file);
}

/* Redirects stderr (where log.c writes outside the journal) into a file, to check messages. */
typedef struct Capture {
        int saved;
        FILE *f;
} Capture;

static void capture_begin(Capture *cap) {
        fflush(stderr);
        cap->f = tmpfile();
        ASSERT_NOT_NULL(cap->f);
        cap->saved = dup(STDERR_FILENO);
        ASSERT_TRUE(cap->saved >= 0);
        ASSERT_TRUE(dup2(fileno(cap->f), STDERR_FILENO) >= 0);
}

static char *capture_end(Capture *cap) {
        char *buf;
        long n;

        fflush(stderr);
        ASSERT_TRUE(dup2(cap->saved, STDERR_FILENO) >= 0);
        close(cap->saved);
        ASSERT_EQ(fseek(cap->f, 0, SEEK_END), 0);
        n = ftell(cap->f);
        ASSERT_TRUE(n >= 0);
        rewind(cap->f);
        buf = calloc(1, (size_t) n + 1);
        ASSERT_NOT_NULL(buf);
        ASSERT_EQ(fread(buf, 1, (size_t) n, cap->f), (size_t) n);
        fclose(cap->f);
        fputs(buf, stderr);     /* Still show them. */
        return buf;
}

/* Saves and restores the environment variables a user instance looks at. */
static const char *const xdg_vars[] = { "XDG_RUNTIME_DIR", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "HOME" };

static void env_save(char *saved[]) {
        for (size_t i = 0; i < ELEMENTSOF(xdg_vars); i++) {
                const char *e = getenv(xdg_vars[i]);

                saved[i] = e ? strdup(e) : NULL;
        }
}

static void env_restore(char *saved[]) {
        for (size_t i = 0; i < ELEMENTSOF(xdg_vars); i++) {
                if (saved[i])
                        ASSERT_OK(setenv(xdg_vars[i], saved[i], 1));
                else
                        ASSERT_OK(unsetenv(xdg_vars[i]));
                free(saved[i]);
        }
}

/* ---- Defaults ---- */

TEST(defaults_system) {
        _cleanup_(config_freep) Config *c = NULL;

        ASSERT_OK(config_new(&c, false));
        assert_system_defaults(c);
        ASSERT_EQ(c->n_warnings, 0);
}

TEST(defaults_user) {
        char *saved[ELEMENTSOF(xdg_vars)];
        Config *c = NULL;

        env_save(saved);

        ASSERT_OK(setenv("XDG_RUNTIME_DIR", "/run/user/4711", 1));
        ASSERT_OK(setenv("XDG_STATE_HOME", "/srv/state", 1));
        ASSERT_OK(setenv("XDG_CONFIG_HOME", "/srv/config", 1));
        ASSERT_OK(setenv("HOME", "/home/alice", 1));
        ASSERT_OK(config_new(&c, true));
        ASSERT_STREQ(c->runtime_directory, "/run/user/4711/pool-managerd");
        ASSERT_STREQ(c->state_directory, "/srv/state/pool-managerd");
        ASSERT_STREQ(c->pools_directory, "/srv/config/pool-managerd/pools.d");
        /* Everything else as for the system instance. */
        ASSERT_STREQ(c->listen, "127.0.0.1:9200");
        ASSERT_NULL(c->api_token_file);
        ASSERT_TRUE(c->gpu_only);
        ASSERT_EQ(c->health_interval, 500 * USEC_PER_MSEC);
        ASSERT_EQ(c->health_timeout, 120 * USEC_PER_SEC);
        ASSERT_EQ(c->stop_timeout, 5 * USEC_PER_SEC);
        ASSERT_EQ(c->engine_logs, ENGINE_LOGS_JOURNAL);
        ASSERT_EQ(c->engine_sandbox, ENGINE_SANDBOX_FULL);
        c = config_free(c);

        /* Unset, empty or relative XDG_STATE_HOME/XDG_CONFIG_HOME fall back to $HOME. */
        ASSERT_OK(unsetenv("XDG_STATE_HOME"));
        ASSERT_OK(unsetenv("XDG_CONFIG_HOME"));
        ASSERT_OK(config_new(&c, true));
        ASSERT_STREQ(c->state_directory, "/home/alice/.local/state/pool-managerd");
        ASSERT_STREQ(c->pools_directory, "/home/alice/.config/pool-managerd/pools.d");
        c = config_free(c);

        ASSERT_OK(setenv("XDG_STATE_HOME", "", 1));
        ASSERT_OK(setenv("XDG_CONFIG_HOME", "relative/config", 1));
        ASSERT_OK(config_new(&c, true));
        ASSERT_STREQ(c->state_directory, "/home/alice/.local/state/pool-managerd");
        ASSERT_STREQ(c->pools_directory, "/home/alice/.config/pool-managerd/pools.d");
        c = config_free(c);

        /* No runtime directory, no user instance. */
        ASSERT_OK(unsetenv("XDG_RUNTIME_DIR"));
        ASSERT_ERROR(config_new(&c, true), ENXIO);
        ASSERT_NULL(c);
        ASSERT_OK(setenv("XDG_RUNTIME_DIR", "", 1));
        ASSERT_ERROR(config_new(&c, true), ENXIO);
        ASSERT_OK(setenv("XDG_RUNTIME_DIR", "run/user/1", 1));
        ASSERT_ERROR(config_new(&c, true), ENXIO);

        /* The system instance does not care. */
        ASSERT_OK(config_new(&c, false));
        assert_system_defaults(c);
        c = config_free(c);

        env_restore(saved);
}

TEST(default_path) {
        char *saved[ELEMENTSOF(xdg_vars)];
        char *p;

        env_save(saved);

        ASSERT_OK(config_default_path(false, &p));
        ASSERT_STREQ(p, "/etc/pool-managerd/pool-managerd.conf");
        free(p);

        ASSERT_OK(setenv("XDG_CONFIG_HOME", "/srv/config", 1));
        ASSERT_OK(config_default_path(true, &p));
        ASSERT_STREQ(p, "/srv/config/pool-managerd/pool-managerd.conf");
        free(p);

        ASSERT_OK(unsetenv("XDG_CONFIG_HOME"));
        ASSERT_OK(setenv("HOME", "/home/bob", 1));
        ASSERT_OK(config_default_path(true, &p));
        ASSERT_STREQ(p, "/home/bob/.config/pool-managerd/pool-managerd.conf");
        free(p);

        env_restore(saved);
}

TEST(engine_logs_strings) {
        ASSERT_STREQ(engine_logs_to_string(ENGINE_LOGS_JOURNAL), "journal");
        ASSERT_STREQ(engine_logs_to_string(ENGINE_LOGS_FILE), "file");
        ASSERT_NULL(engine_logs_to_string(_ENGINE_LOGS_MAX));
        ASSERT_NULL(engine_logs_to_string(_ENGINE_LOGS_INVALID));

        ASSERT_EQ(engine_logs_from_string("journal"), ENGINE_LOGS_JOURNAL);
        ASSERT_EQ(engine_logs_from_string("file"), ENGINE_LOGS_FILE);
        ASSERT_EQ(engine_logs_from_string("Journal"), _ENGINE_LOGS_INVALID);
        ASSERT_EQ(engine_logs_from_string(""), _ENGINE_LOGS_INVALID);
        ASSERT_EQ(engine_logs_from_string("syslog"), _ENGINE_LOGS_INVALID);
        ASSERT_EQ(engine_logs_from_string(NULL), _ENGINE_LOGS_INVALID);
}

TEST(engine_sandbox_strings) {
        ASSERT_STREQ(engine_sandbox_to_string(ENGINE_SANDBOX_FULL), "full");
        ASSERT_STREQ(engine_sandbox_to_string(ENGINE_SANDBOX_CONTAINER), "container");
        ASSERT_STREQ(engine_sandbox_to_string(ENGINE_SANDBOX_OFF), "off");
        ASSERT_NULL(engine_sandbox_to_string(_ENGINE_SANDBOX_MAX));
        ASSERT_NULL(engine_sandbox_to_string(_ENGINE_SANDBOX_INVALID));

        for (EngineSandbox s = 0; s < _ENGINE_SANDBOX_MAX; s++)
                ASSERT_EQ(engine_sandbox_from_string(engine_sandbox_to_string(s)), s);
        ASSERT_EQ(engine_sandbox_from_string("Full"), _ENGINE_SANDBOX_INVALID);
        ASSERT_EQ(engine_sandbox_from_string("no"), _ENGINE_SANDBOX_INVALID);
        ASSERT_EQ(engine_sandbox_from_string(""), _ENGINE_SANDBOX_INVALID);
        ASSERT_EQ(engine_sandbox_from_string(NULL), _ENGINE_SANDBOX_INVALID);
}

/* ---- config_set() ---- */

TEST(nvml_library) {
        _cleanup_(config_freep) Config *c = NULL;

        ASSERT_OK(config_new(&c, false));
        ASSERT_STREQ(c->nvml_library, "libnvidia-ml.so.1");
        ASSERT_OK(config_set(c, "Manager", "NvmlLibrary", "/opt/test/libfake-nvml.so"));
        ASSERT_STREQ(c->nvml_library, "/opt/test/libfake-nvml.so");
        ASSERT_OK(config_set(c, "Manager", "NvmlLibrary", "libnvidia-ml.so"));
        ASSERT_STREQ(c->nvml_library, "libnvidia-ml.so");
        /* Relative paths depend on the working directory; the old value stays. */
        ASSERT_ERROR(config_set(c, "Manager", "NvmlLibrary", "lib/libnvidia-ml.so.1"), EINVAL);
        ASSERT_ERROR(config_set(c, "Manager", "NvmlLibrary", ""), EINVAL);
        ASSERT_ERROR(config_set(c, "Manager", "NvmlLibrary", "/opt/../lib/x.so"), EINVAL);
        ASSERT_STREQ(c->nvml_library, "libnvidia-ml.so");

        ASSERT_EQ(c->gpu_refresh_interval, 2 * USEC_PER_SEC);
        ASSERT_OK(config_set(c, "GPU", "RefreshInterval", "250ms"));
        ASSERT_EQ(c->gpu_refresh_interval, 250 * USEC_PER_MSEC);
        ASSERT_ERROR(config_set(c, "GPU", "RefreshInterval", "10ms"), EINVAL);
        ASSERT_EQ(c->gpu_refresh_interval, 250 * USEC_PER_MSEC);
}

TEST(set_every_key) {
        _cleanup_(config_freep) Config *c = NULL;

        ASSERT_OK(config_new(&c, false));

        ASSERT_OK(config_set(c, "Manager", "RuntimeDirectory", "/run/pm"));
        ASSERT_STREQ(c->runtime_directory, "/run/pm");
        ASSERT_OK(config_set(c, "Manager", "StateDirectory", "/var/lib/pm"));
        ASSERT_STREQ(c->state_directory, "/var/lib/pm");
        ASSERT_OK(config_set(c, "Manager", "PoolsDirectory", "/etc/pm/pools.d/"));
        ASSERT_STREQ(c->pools_directory, "/etc/pm/pools.d/");

        ASSERT_OK(config_set(c, "Manager", "Listen", "0.0.0.0:80"));
        ASSERT_STREQ(c->listen, "0.0.0.0:80");
        ASSERT_OK(config_set(c, "Manager", "Listen", "[::1]:9300"));
        ASSERT_STREQ(c->listen, "[::1]:9300");
        ASSERT_OK(config_set(c, "Manager", "Listen", "[::]:1"));
        ASSERT_STREQ(c->listen, "[::]:1");
        ASSERT_OK(config_set(c, "Manager", "Listen", "[fd00:1:2::3]:65535"));
        ASSERT_STREQ(c->listen, "[fd00:1:2::3]:65535");
        ASSERT_OK(config_set(c, "Manager", "Listen", "localhost:8080"));
        ASSERT_STREQ(c->listen, "localhost:8080");

        ASSERT_OK(config_set(c, "Manager", "ApiTokenFile", "/etc/pool-managerd/token"));
        ASSERT_STREQ(c->api_token_file, "/etc/pool-managerd/token");
        ASSERT_OK(config_set(c, "Manager", "ApiTokenFile", ""));
        ASSERT_NULL(c->api_token_file);

        ASSERT_OK(config_set(c, "HTTP", "MaxConnections", "1"));
        ASSERT_EQ(c->http_max_connections, 1U);
        ASSERT_OK(config_set(c, "HTTP", "MaxConnections", "65536"));
        ASSERT_EQ(c->http_max_connections, 65536U);
        ASSERT_OK(config_set(c, "HTTP", "MaxConnectionsPerAddress", "0"));
        ASSERT_EQ(c->http_max_per_address, 0U);
        ASSERT_OK(config_set(c, "HTTP", "RequestTimeoutSec", "2.5s"));
        ASSERT_EQ(c->http_request_timeout, 2500 * USEC_PER_MSEC);
        ASSERT_ERROR(config_set(c, "HTTP", "MaxConnections", "0"), EINVAL);
        ASSERT_ERROR(config_set(c, "HTTP", "MaxConnections", "1000001"), EINVAL);
        ASSERT_ERROR(config_set(c, "HTTP", "MaxConnections", "many"), EINVAL);
        ASSERT_ERROR(config_set(c, "HTTP", "MaxConnectionsPerAddress", "-1"), EINVAL);
        ASSERT_ERROR(config_set(c, "HTTP", "RequestTimeoutSec", "99ms"), EINVAL);
        ASSERT_ERROR(config_set(c, "HTTP", "RequestTimeoutSec", "infinity"), EINVAL);
        /* Not a [Manager] key. */
        ASSERT_ERROR(config_set(c, "Manager", "MaxConnections", "10"), EOPNOTSUPP);
        ASSERT_EQ(c->http_max_connections, 65536U);

        static const struct {
                const char *s;
                bool b;
        } bools[] = {
                { "no", false }, { "yes", true }, { "false", false }, { "true", true },
                { "0", false }, { "1", true }, { "off", false }, { "on", true },
                { "NO", false }, { "Yes", true }, { "OFF", false }, { "True", true },
        };
        for (size_t i = 0; i < ELEMENTSOF(bools); i++) {
                ASSERT_OK(config_set(c, "Manager", "GpuOnly", bools[i].s));
                ASSERT_EQ(c->gpu_only, bools[i].b);
        }

        ASSERT_OK(config_set(c, "Manager", "HealthInterval", "2s"));
        ASSERT_EQ(c->health_interval, 2 * USEC_PER_SEC);
        ASSERT_OK(config_set(c, "Manager", "HealthInterval", "10ms"));
        ASSERT_EQ(c->health_interval, 10 * USEC_PER_MSEC);
        ASSERT_OK(config_set(c, "Manager", "HealthInterval", "1min 30s"));
        ASSERT_EQ(c->health_interval, 90 * USEC_PER_SEC);

        /* 0 turns the engines' metrics off; otherwise at least 100ms. */
        ASSERT_OK(config_set(c, "Manager", "EngineMetricsInterval", "0"));
        ASSERT_EQ(c->engine_metrics_interval, 0);
        ASSERT_OK(config_set(c, "Manager", "EngineMetricsInterval", "100ms"));
        ASSERT_EQ(c->engine_metrics_interval, 100 * USEC_PER_MSEC);
        ASSERT_OK(config_set(c, "Manager", "EngineMetricsInterval", "1min"));
        ASSERT_EQ(c->engine_metrics_interval, USEC_PER_MINUTE);
        ASSERT_OK(config_set(c, "Manager", "EngineMetricsTimeout", "10ms"));
        ASSERT_EQ(c->engine_metrics_timeout, 10 * USEC_PER_MSEC);
        ASSERT_OK(config_set(c, "Manager", "EngineMetricsTimeout", "30s"));
        ASSERT_EQ(c->engine_metrics_timeout, 30 * USEC_PER_SEC);

        ASSERT_OK(config_set(c, "Manager", "HealthTimeout", "100ms"));
        ASSERT_EQ(c->health_timeout, 100 * USEC_PER_MSEC);
        ASSERT_OK(config_set(c, "Manager", "HealthTimeout", "10min"));
        ASSERT_EQ(c->health_timeout, 10 * USEC_PER_MINUTE);

        /* 0 would mean "no timeout" to systemd: refused, the old value stays. */
        ASSERT_ERROR(config_set(c, "Manager", "StopTimeout", "0"), EINVAL);
        ASSERT_OK(config_set(c, "Manager", "StopTimeout", "1ms"));
        ASSERT_EQ(c->stop_timeout, USEC_PER_MSEC);
        ASSERT_OK(config_set(c, "Manager", "StopTimeout", "1.5"));
        ASSERT_EQ(c->stop_timeout, 1500 * USEC_PER_MSEC);

        ASSERT_ERROR(config_set(c, "Manager", "StartupTimeout", "0"), EINVAL);
        ASSERT_ERROR(config_set(c, "Manager", "StartupTimeout", "infinity"), EINVAL);
        ASSERT_OK(config_set(c, "Manager", "StartupTimeout", "200ms"));
        ASSERT_EQ(c->startup_timeout, 200 * USEC_PER_MSEC);

        ASSERT_OK(config_set(c, "Manager", "EngineLogs", "file"));
        ASSERT_EQ(c->engine_logs, ENGINE_LOGS_FILE);
        ASSERT_OK(config_set(c, "Manager", "EngineLogs", "journal"));
        ASSERT_EQ(c->engine_logs, ENGINE_LOGS_JOURNAL);

        ASSERT_OK(config_set(c, "Manager", "EngineSandbox", "container"));
        ASSERT_EQ(c->engine_sandbox, ENGINE_SANDBOX_CONTAINER);
        ASSERT_OK(config_set(c, "Manager", "EngineSandbox", "off"));
        ASSERT_EQ(c->engine_sandbox, ENGINE_SANDBOX_OFF);
        ASSERT_OK(config_set(c, "Manager", "EngineSandbox", "full"));
        ASSERT_EQ(c->engine_sandbox, ENGINE_SANDBOX_FULL);

        ASSERT_EQ(c->n_warnings, 0);
}

/* Values refused by each key; the defaults must survive all of them. */
static const struct {
        const char *key;
        const char *value;
} bad_values[] = {
        { "RuntimeDirectory", "" },
        { "RuntimeDirectory", "run/pool-managerd" },
        { "RuntimeDirectory", "/run/../etc" },
        { "RuntimeDirectory", "/run/./pm" },
        { "StateDirectory", "~/state" },
        { "StateDirectory", "/var/lib/.." },
        { "PoolsDirectory", "pools.d" },
        { "PoolsDirectory", "" },
        { "Listen", "" },
        { "Listen", "9200" },
        { "Listen", ":9200" },
        { "Listen", "127.0.0.1" },
        { "Listen", "127.0.0.1:" },
        { "Listen", "127.0.0.1:0" },
        { "Listen", "127.0.0.1:65536" },
        { "Listen", "127.0.0.1:99999999" },
        { "Listen", "127.0.0.1:-1" },
        { "Listen", "127.0.0.1:+80" },
        { "Listen", "127.0.0.1:80x" },
        { "Listen", "127.0.0.1:80:80" },
        { "Listen", "256.0.0.1:80" },
        { "Listen", "example.com:80" },
        { "Listen", "::1:9200" },
        { "Listen", "[::1]" },
        { "Listen", "[::1]9200" },
        { "Listen", "[127.0.0.1]:9200" },
        { "Listen", "[::1:9200" },
        { "Listen", "[fe80::1%eth0]:80" },
        { "Listen", "localhost" },
        { "Listen", "LOCALHOST:80" },
        { "ApiTokenFile", "token" },
        { "ApiTokenFile", "/etc/../token" },
        { "GpuOnly", "" },
        { "GpuOnly", "maybe" },
        { "GpuOnly", "2" },
        { "GpuOnly", "y" },
        { "GpuOnly", "yes please" },
        { "HealthInterval", "" },
        { "HealthInterval", "9ms" },
        { "HealthInterval", "0" },
        { "HealthInterval", "infinity" },
        { "HealthInterval", "-1s" },
        { "HealthInterval", "fast" },
        { "HealthInterval", "5 parsecs" },
        { "HealthTimeout", "99ms" },
        { "HealthTimeout", "99999us" },
        { "HealthTimeout", "infinity" },
        { "HealthTimeout", "99999999999999999999s" },
        { "EngineMetricsInterval", "" },
        { "EngineMetricsInterval", "99ms" },
        { "EngineMetricsInterval", "1us" },
        { "EngineMetricsInterval", "infinity" },
        { "EngineMetricsInterval", "-5s" },
        { "EngineMetricsInterval", "off" },
        { "EngineMetricsTimeout", "" },
        { "EngineMetricsTimeout", "0" },
        { "EngineMetricsTimeout", "9ms" },
        { "EngineMetricsTimeout", "infinity" },
        { "StopTimeout", "" },
        { "StopTimeout", "infinity" },
        { "StopTimeout", "5x" },
        { "EngineLogs", "" },
        { "EngineLogs", "syslog" },
        { "EngineLogs", "Journal" },
        { "EngineSandbox", "" },
        { "EngineSandbox", "no" },
        { "EngineSandbox", "strict" },
        { "EngineSandbox", "Container" },
};

TEST(set_bad_values) {
        _cleanup_(config_freep) Config *c = NULL, *defaults = NULL;

        ASSERT_OK(config_new(&c, false));
        ASSERT_OK(config_new(&defaults, false));

        for (size_t i = 0; i < ELEMENTSOF(bad_values); i++) {
                ASSERT_ERROR(config_set(c, "Manager", bad_values[i].key, bad_values[i].value), EINVAL);
                assert_config_equal(c, defaults);
        }

        /* A bad value keeps a non-default previous value, too. */
        ASSERT_OK(config_set(c, "Manager", "ApiTokenFile", "/token"));
        ASSERT_ERROR(config_set(c, "Manager", "ApiTokenFile", "token"), EINVAL);
        ASSERT_STREQ(c->api_token_file, "/token");
        ASSERT_OK(config_set(c, "Manager", "HealthInterval", "1s"));
        ASSERT_ERROR(config_set(c, "Manager", "HealthInterval", "1ms"), EINVAL);
        ASSERT_EQ(c->health_interval, USEC_PER_SEC);

        ASSERT_ERROR(config_set(c, "Manager", "Listen", NULL), EINVAL);
        ASSERT_EQ(c->n_warnings, 0);    /* config_set() neither logs nor counts. */
}

TEST(set_unknown) {
        _cleanup_(config_freep) Config *c = NULL, *defaults = NULL;

        ASSERT_OK(config_new(&c, false));
        ASSERT_OK(config_new(&defaults, false));

        ASSERT_ERROR(config_set(c, "Manager", "Frobnicate", "yes"), EOPNOTSUPP);
        ASSERT_ERROR(config_set(c, "Manager", "healthinterval", "1s"), EOPNOTSUPP);
        ASSERT_ERROR(config_set(c, "Manager", "", "1s"), EOPNOTSUPP);
        ASSERT_ERROR(config_set(c, "Supervision", "HealthInterval", "1s"), EOPNOTSUPP);
        ASSERT_ERROR(config_set(c, "manager", "HealthInterval", "1s"), EOPNOTSUPP);
        ASSERT_ERROR(config_set(c, "", "HealthInterval", "1s"), EOPNOTSUPP);
        /* Unknown wins over bad: there is nothing to parse the value with. */
        ASSERT_ERROR(config_set(c, "Manager", "Frobnicate", NULL), EOPNOTSUPP);
        assert_config_equal(c, defaults);
        ASSERT_EQ(c->n_warnings, 0);
}

/* ---- config_load() ---- */

TEST(load_every_key) {
        _cleanup_(config_freep) Config *c = NULL;

        c = load_string("[Manager]\n"
                        "RuntimeDirectory=/run/pm\n"
                        "StateDirectory=/var/lib/pm\n"
                        "PoolsDirectory=/srv/pools\n"
                        "Listen=[::1]:9300\n"
                        "ApiTokenFile=/etc/pm/token\n"
                        "GpuOnly=no\n"
                        "HealthInterval=250ms\n"
                        "HealthTimeout=1min 30s\n"
                        "StopTimeout=10s\n"
                        "EngineLogs=file\n"
                        "EngineSandbox=container\n");
        ASSERT_STREQ(c->runtime_directory, "/run/pm");
        ASSERT_STREQ(c->state_directory, "/var/lib/pm");
        ASSERT_STREQ(c->pools_directory, "/srv/pools");
        ASSERT_STREQ(c->listen, "[::1]:9300");
        ASSERT_STREQ(c->api_token_file, "/etc/pm/token");
        ASSERT_FALSE(c->gpu_only);
        ASSERT_EQ(c->health_interval, 250 * USEC_PER_MSEC);
        ASSERT_EQ(c->health_timeout, 90 * USEC_PER_SEC);
        ASSERT_EQ(c->stop_timeout, 10 * USEC_PER_SEC);
        ASSERT_EQ(c->engine_logs, ENGINE_LOGS_FILE);
        ASSERT_EQ(c->engine_sandbox, ENGINE_SANDBOX_CONTAINER);
        ASSERT_EQ(c->n_warnings, 0);
}

TEST(load_bad_values) {
        _cleanup_(config_freep) Config *defaults = NULL;

        ASSERT_OK(config_new(&defaults, false));

        for (size_t i = 0; i < ELEMENTSOF(bad_values); i++) {
                _cleanup_free_ char *s = pathf("[Manager]\n%s=%s\n", bad_values[i].key, bad_values[i].value);
                _cleanup_(config_freep) Config *c = load_string(s);

                ASSERT_EQ(c->n_warnings, 1);
                assert_config_equal(c, defaults);
        }
}

TEST(load_bad_value_keeps_earlier_value) {
        _cleanup_(config_freep) Config *c = NULL;

        c = load_string("[Manager]\n"
                        "HealthInterval=2s\n"
                        "HealthInterval=1ms\n"
                        "Listen=localhost:1234\n"
                        "Listen=localhost:0\n");
        ASSERT_EQ(c->health_interval, 2 * USEC_PER_SEC);
        ASSERT_STREQ(c->listen, "localhost:1234");
        ASSERT_EQ(c->n_warnings, 2);
}

TEST(load_unknown) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *out = NULL;
        Capture cap;

        capture_begin(&cap);
        c = load_string("HealthInterval=5s\n"                 /* 1: outside of a section */
                        "[Manager]\n"                           /* 2 */
                        "Frobnicate=yes\n"                      /* 3: unknown key */
                        "HealthInterval=1s\n"                   /* 4 */
                        "[Policy]\n"                            /* 5: unknown section, one warning */
                        "RestartSec=1s\n"                       /* 6 */
                        "StartLimitBurst=5\n"                   /* 7 */
                        "[Manager]\n"                           /* 8 */
                        "HealthTimeout=1s\n"                    /* 9 */
                        "[Cluster]\n"                           /* 10: another one */
                        "Devices=all\n"                         /* 11 */
                        "[Manager]\n"                           /* 12 */
                        "StopTimeout=7s\n");                    /* 13 */
        out = capture_end(&cap);

        ASSERT_EQ(c->n_warnings, 4);
        ASSERT_EQ(c->health_interval, USEC_PER_SEC);
        ASSERT_EQ(c->health_timeout, USEC_PER_SEC);
        ASSERT_EQ(c->stop_timeout, 7 * USEC_PER_SEC);

        ASSERT_CONTAINS(out, "pool-managerd.conf:1: Assignment to \"HealthInterval\" outside of any section");
        ASSERT_CONTAINS(out, "pool-managerd.conf:3: Unknown key \"Frobnicate\" in section [Manager], ignoring.");
        ASSERT_CONTAINS(out, "pool-managerd.conf:6: Unknown section [Policy], ignoring.");
        ASSERT_CONTAINS(out, "pool-managerd.conf:11: Unknown section [Cluster], ignoring.");
        ASSERT_NULL(strstr(out, "RestartSec"));
        ASSERT_NULL(strstr(out, "StartLimitBurst"));
}

TEST(supervision_section) {
        _cleanup_(config_freep) Config *c = NULL;

        c = load_string("[Supervision]\n"
                        "BackoffInitial=250ms\n"
                        "BackoffMax=10s\n"
                        "BreakerThreshold=3\n"
                        "BreakerTimeout=2s\n"
                        "StormLimit=4\n"
                        "LivenessInterval=200ms\n"
                        "LivenessFailures=2\n"
                        "BackoffJitter=0\n"
                        "BreakerThreshold=-1\n"                /* bad: the 3 stays */
                        "LivenessInterval=1ms\n"               /* bad: below 10ms */
                        "[Manager]\n"
                        "ReloadDrainTimeout=5s\n"
                        "EngineUser=llm-engine\n"
                        "EngineUser=bad user\n");      /* bad: the first stays */
        ASSERT_EQ(c->supervision.backoff_initial, 250 * USEC_PER_MSEC);
        ASSERT_EQ(c->supervision.backoff_max, 10 * USEC_PER_SEC);
        ASSERT_EQ(c->supervision.breaker_threshold, 3);
        ASSERT_EQ(c->supervision.breaker_timeout, 2 * USEC_PER_SEC);
        ASSERT_EQ(c->supervision.storm_limit, 4);
        ASSERT_EQ(c->supervision.liveness_interval, 200 * USEC_PER_MSEC);
        ASSERT_EQ(c->supervision.liveness_failures, 2);
        ASSERT_EQ(c->supervision.jitter_percent, 0);
        ASSERT_EQ(c->reload_drain_timeout, 5 * USEC_PER_SEC);
        ASSERT_STREQ(c->engine_user, "llm-engine");
        ASSERT_EQ(c->n_warnings, 3);
        /* Untouched keys keep the defaults. */
        ASSERT_EQ(c->supervision.stable_after, 300 * USEC_PER_SEC);
        ASSERT_EQ(c->supervision.storm_window, 60 * USEC_PER_SEC);
}

TEST(fleet_section) {
        _cleanup_(config_freep) Config *c = NULL;

        c = load_string("[Fleet]\n"
                        "Etcd=http://10.0.0.1:2379, https://etcd.example:2379/ http://[::1]:2379\n"
                        "NodeName=gpu-07\n"
                        "LeaseTTL=2s\n"
                        "KeyPrefix=/llorch/\n"
                        "TrustedCertificateFile=/etc/etcd/ca.pem\n"
                        "CertificateFile=/etc/etcd/client.pem\n"
                        "KeyFile=/etc/etcd/client.key\n"
                        "CredentialsFile=/etc/pool-managerd/etcd-credentials\n"
                        "LeaseTTL=1500ms\n"            /* bad: whole seconds only, the 2s stays */
                        "LeaseTTL=0\n"                 /* bad */
                        "NodeName=a/b\n"               /* bad: '/' separates key parts */
                        "KeyPrefix=llorch\n"           /* bad: must start and end with '/' */
                        "Etcd=etcd:2379\n"             /* bad: no scheme; the list stays */
                        "Etcd=http://a:1/path\n");     /* bad: a path */
        ASSERT_EQ(strv_length(c->fleet_etcd), 3U);
        ASSERT_STREQ(c->fleet_etcd[0], "http://10.0.0.1:2379");
        ASSERT_STREQ(c->fleet_etcd[1], "https://etcd.example:2379");
        ASSERT_STREQ(c->fleet_etcd[2], "http://[::1]:2379");
        ASSERT_STREQ(c->fleet_node_name, "gpu-07");
        ASSERT_EQ(c->fleet_lease_ttl, 2 * USEC_PER_SEC);
        ASSERT_STREQ(c->fleet_key_prefix, "/llorch/");
        ASSERT_STREQ(c->fleet_trusted_certificate_file, "/etc/etcd/ca.pem");
        ASSERT_STREQ(c->fleet_certificate_file, "/etc/etcd/client.pem");
        ASSERT_STREQ(c->fleet_key_file, "/etc/etcd/client.key");
        ASSERT_STREQ(c->fleet_credentials_file, "/etc/pool-managerd/etcd-credentials");
        ASSERT_EQ(c->n_warnings, 6);

        /* Empty: off again, and the hostname. */
        ASSERT_OK(config_set(c, "Fleet", "Etcd", ""));
        ASSERT_NULL(c->fleet_etcd);
        ASSERT_OK(config_set(c, "Fleet", "NodeName", ""));
        ASSERT_NULL(c->fleet_node_name);
        ASSERT_OK(config_set(c, "Fleet", "CredentialsFile", ""));
        ASSERT_NULL(c->fleet_credentials_file);
}

TEST(load_warning_names_file_and_line) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = pathf("%s/main.conf", dir),
                *dropins = pathf("%s/main.conf.d", dir), *dropin = pathf("%s/main.conf.d/50-x.conf", dir),
                *out = NULL, *expect1 = NULL, *expect2 = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        Capture cap;

        write_file(path, "# comment\n\n[Manager]\nGpuOnly=perhaps\n");
        ASSERT_OK(mkdir(dropins, 0755));
        write_file(dropin, "[Manager]\nEngineLogs=syslog\n");

        ASSERT_OK(config_new(&c, false));
        capture_begin(&cap);
        ASSERT_OK(config_load(c, path));
        out = capture_end(&cap);

        ASSERT_EQ(c->n_warnings, 2);
        expect1 = pathf("%s:4: Invalid value \"perhaps\" for GpuOnly= in section [Manager], ignoring.", path);
        expect2 = pathf("%s:2: Invalid value \"syslog\" for EngineLogs= in section [Manager], ignoring.", dropin);
        ASSERT_CONTAINS(out, expect1);
        ASSERT_CONTAINS(out, expect2);

        /* The count is per load. */
        write_file(path, "[Manager]\nGpuOnly=no\n");
        ASSERT_OK(unlink(dropin));
        ASSERT_OK(config_load(c, path));
        ASSERT_EQ(c->n_warnings, 0);
        ASSERT_FALSE(c->gpu_only);

        rm_rf(dir);
}

TEST(load_syntax_errors) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *out = NULL;
        Capture cap;

        capture_begin(&cap);
        c = load_string("[Manager\n"                            /* 1: no closing bracket */
                        "HealthInterval=1s\n"                   /* 2: still in no section */
                        "[Manager]\n"                           /* 3 */
                        "just some words\n"                     /* 4: no '=' */
                        "HealthTimeout ;= 5s\n"                 /* 5: '=' is inside a comment */
                        "StopTimeout=3s\n"                      /* 6 */
                        "[Manager ; comment]\n"                 /* 7: ']' inside a comment */
                        "EngineLogs=file\n");                   /* 8 */
        out = capture_end(&cap);

        ASSERT_EQ(c->n_warnings, 5);
        ASSERT_CONTAINS(out, "pool-managerd.conf:1: Syntax error");
        ASSERT_CONTAINS(out, "pool-managerd.conf:2: Assignment to \"HealthInterval\" outside of any section");
        ASSERT_CONTAINS(out, "pool-managerd.conf:4: Syntax error");
        ASSERT_CONTAINS(out, "pool-managerd.conf:5: Syntax error");
        ASSERT_CONTAINS(out, "pool-managerd.conf:7: Syntax error");
        ASSERT_EQ(c->health_interval, 500 * USEC_PER_MSEC);
        ASSERT_EQ(c->health_timeout, 120 * USEC_PER_SEC);
        ASSERT_EQ(c->stop_timeout, 3 * USEC_PER_SEC);
        ASSERT_EQ(c->engine_logs, ENGINE_LOGS_FILE);    /* Still in [Manager]. */
}

TEST(load_comments_and_whitespace) {
        _cleanup_(config_freep) Config *c = NULL;

        c = load_string("\xEF\xBB\xBF# A comment\n"
                        "; another comment\n"
                        "\n"
                        "   \t\n"
                        "  [Manager]  \n"
                        "  # indented comment\n"
                        "HealthInterval = 2s\n"
                        "    HealthTimeout=30s\n"       /* Indented: an assignment, not a continuation. */
                        "\tStopTimeout\t=\t1min   \r\n"
                        "Listen=localhost:9300 ; inline comment\n"
                        "PoolsDirectory: /srv/pools\n"
                        "ApiTokenFile=\n"
                        "GpuOnly=off\n"
                        "EngineLogs=file");             /* No final newline. */
        ASSERT_EQ(c->n_warnings, 0);
        ASSERT_EQ(c->health_interval, 2 * USEC_PER_SEC);
        ASSERT_EQ(c->health_timeout, 30 * USEC_PER_SEC);
        ASSERT_EQ(c->stop_timeout, USEC_PER_MINUTE);
        ASSERT_STREQ(c->listen, "localhost:9300");
        ASSERT_STREQ(c->pools_directory, "/srv/pools");
        ASSERT_NULL(c->api_token_file);
        ASSERT_FALSE(c->gpu_only);
        ASSERT_EQ(c->engine_logs, ENGINE_LOGS_FILE);
}

TEST(load_empty_and_comment_only) {
        _cleanup_(config_freep) Config *a = NULL, *b = NULL;

        a = load_string("");
        assert_system_defaults(a);
        ASSERT_EQ(a->n_warnings, 0);

        b = load_string("# Nothing but comments\n[Manager]\n#HealthInterval=1s\n");
        assert_system_defaults(b);
        ASSERT_EQ(b->n_warnings, 0);
}

TEST(load_long_lines_and_nul) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = pathf("%s/pool-managerd.conf", dir),
                *content = NULL, *long_path = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        FILE *f;

        /* A path that makes the line exceed inih's 200 byte line buffer. */
        long_path = calloc(1, 256);
        ASSERT_NOT_NULL(long_path);
        long_path[0] = '/';
        memset(long_path + 1, 'a', 220);

        f = fopen(path, "we");
        ASSERT_NOT_NULL(f);
        fprintf(f, "[Manager]\nStateDirectory=%s\nHealthInterval=1s\n", long_path);
        fputs("StopTimeout=", f);
        fputc('\0', f);
        fputs("1s\nHealthTimeout=1s\n", f);
        ASSERT_EQ(fclose(f), 0);

        ASSERT_OK(config_new(&c, false));
        ASSERT_OK(config_load(c, path));
        ASSERT_EQ(c->n_warnings, 2);
        ASSERT_STREQ(c->state_directory, "/var/lib/pool-managerd");
        ASSERT_EQ(c->health_interval, USEC_PER_SEC);
        ASSERT_EQ(c->stop_timeout, 5 * USEC_PER_SEC);
        ASSERT_EQ(c->health_timeout, USEC_PER_SEC);

        /* Leading whitespace does not count against the limit. */
        long_path[180] = '\0';
        content = pathf("[Manager]\n%*sStateDirectory=%s\n", 100, "", long_path);
        write_file(path, content);
        ASSERT_OK(config_load(c, path));
        ASSERT_EQ(c->n_warnings, 0);
        ASSERT_STREQ(c->state_directory, long_path);

        rm_rf(dir);
}

TEST(load_missing) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = pathf("%s/nonexistent.conf", dir);
        _cleanup_(config_freep) Config *c = NULL;

        ASSERT_OK(config_new(&c, false));
        ASSERT_OK(config_load(c, path));
        assert_system_defaults(c);
        ASSERT_EQ(c->n_warnings, 0);

        ASSERT_OK(config_load(c, "/nonexistent-dir/pool-managerd.conf"));
        assert_system_defaults(c);

        rm_rf(dir);
}

TEST(load_dropin_precedence) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = pathf("%s/pool-managerd.conf", dir),
                *dropins = pathf("%s/pool-managerd.conf.d", dir), *p = NULL;
        _cleanup_(config_freep) Config *c = NULL;

        write_file(path, "[Manager]\nHealthInterval=1s\nHealthTimeout=10s\nStopTimeout=1s\n");
        ASSERT_OK(mkdir(dropins, 0755));

        /* Written out of order, so that directory order does not happen to be lexical. */
        p = pathf("%s/20-b.conf", dropins);
        write_file(p, "[Manager]\nHealthInterval=3s\n");
        free(p);
        p = pathf("%s/10-a.conf", dropins);
        write_file(p, "[Manager]\nHealthInterval=2s\nHealthTimeout=20s\n");
        free(p);
        /* Not *.conf, or hidden: ignored. */
        p = pathf("%s/30-c.conf.bak", dropins);
        write_file(p, "[Manager]\nHealthInterval=9s\nStopTimeout=9s\n");
        free(p);
        p = pathf("%s/40-d.txt", dropins);
        write_file(p, "[Manager]\nHealthInterval=9s\nStopTimeout=9s\n");
        free(p);
        p = pathf("%s/.50-e.conf", dropins);
        write_file(p, "[Manager]\nHealthInterval=9s\nStopTimeout=9s\n");
        free(p);
        p = pathf("%s/.conf", dropins);
        write_file(p, "[Manager]\nHealthInterval=9s\nStopTimeout=9s\n");
        free(p);
        p = pathf("%s/conf", dropins);
        write_file(p, "[Manager]\nHealthInterval=9s\nStopTimeout=9s\n");
        free(p);

        ASSERT_OK(config_new(&c, false));
        ASSERT_OK(config_load(c, path));
        ASSERT_EQ(c->health_interval, 3 * USEC_PER_SEC);        /* 20-b.conf */
        ASSERT_EQ(c->health_timeout, 20 * USEC_PER_SEC);        /* 10-a.conf */
        ASSERT_EQ(c->stop_timeout, USEC_PER_SEC);               /* main file */
        ASSERT_EQ(c->n_warnings, 0);

        /* Lexical, not numeric, order: "100" sorts before "20". */
        p = pathf("%s/100-z.conf", dropins);
        write_file(p, "[Manager]\nHealthInterval=7s\n");
        free(p);
        config_free(c);
        ASSERT_OK(config_new(&c, false));
        ASSERT_OK(config_load(c, path));
        ASSERT_EQ(c->health_interval, 3 * USEC_PER_SEC);

        p = NULL;
        rm_rf(dir);
}

TEST(load_dropins_without_main) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = pathf("%s/pool-managerd.conf", dir),
                *dropins = pathf("%s/pool-managerd.conf.d", dir), *p = pathf("%s/10-a.conf", dropins);
        _cleanup_(config_freep) Config *c = NULL;

        ASSERT_OK(mkdir(dropins, 0755));
        write_file(p, "[Manager]\nEngineLogs=file\nListen=127.0.0.2:9201\n");

        ASSERT_OK(config_new(&c, false));
        ASSERT_OK(config_load(c, path));
        ASSERT_EQ(c->engine_logs, ENGINE_LOGS_FILE);
        ASSERT_STREQ(c->listen, "127.0.0.2:9201");
        ASSERT_EQ(c->n_warnings, 0);

        rm_rf(dir);
}

TEST(load_not_regular) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = pathf("%s/pool-managerd.conf", dir),
                *dropins = pathf("%s/pool-managerd.conf.d", dir), *sub = pathf("%s/10-dir.conf", dropins),
                *p = pathf("%s/20-a.conf", dropins);
        _cleanup_(config_freep) Config *c = NULL;

        /* The main path being a directory, and a directory among the drop-ins: warnings. */
        ASSERT_OK(mkdir(path, 0755));
        ASSERT_OK(mkdir(dropins, 0755));
        ASSERT_OK(mkdir(sub, 0755));
        write_file(p, "[Manager]\nGpuOnly=no\n");

        ASSERT_OK(config_new(&c, false));
        ASSERT_OK(config_load(c, path));
        ASSERT_EQ(c->n_warnings, 2);
        ASSERT_FALSE(c->gpu_only);

        rm_rf(dir);
}

TEST(load_io_errors) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = pathf("%s/pool-managerd.conf", dir),
                *dropins = pathf("%s/pool-managerd.conf.d", dir), *file = pathf("%s/file", dir),
                *below_file = pathf("%s/file/pool-managerd.conf", dir);
        _cleanup_(config_freep) Config *c = NULL;

        ASSERT_OK(config_new(&c, false));

        /* "<path>.d" that is not a directory. */
        write_file(path, "[Manager]\n");
        write_file(dropins, "[Manager]\n");
        ASSERT_ERROR(config_load(c, path), ENOTDIR);

        /* A path through a regular file. */
        write_file(file, "");
        ASSERT_ERROR(config_load(c, below_file), ENOTDIR);

        ASSERT_ERROR(config_load(c, ""), EINVAL);
        ASSERT_ERROR(config_load(c, NULL), EINVAL);

        rm_rf(dir);
}

DEFINE_TEST_MAIN
