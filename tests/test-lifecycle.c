/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Engine lifecycle against the real thing: a systemd --user manager, its bus and journald,
 * started by tests/sandbox. The Manager is driven in-process (preload/stop with completion
 * callbacks, the real sd-event loop); what it did is checked from the outside: unit
 * properties read from systemd over D-Bus, pid and handoff files, the journal, processes.
 *
 * Needs $FAKE_ENGINE (tests/fake-engine) and a session bus with systemd on it; without them
 * it exits 77 (skipped).
 */

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "handoff.h"
#include "log.h"
#include "manager.h"
#include "shared/fileio.h"
#include "shared/strv.h"
#include "test-util.h"

static const char *fake_engine;
static Manager *manager;
static char *tmpdir;

typedef struct Done {
        bool done;
        int r;
        PoolErrorCode code;
        char *error;
} Done;

static void on_done(Pool *p, const PoolError *error, void *userdata) {
        Done *d = userdata;

        d->done = true;
        d->r = error ? -pool_error_info(error->code)->errno_value : 0;
        d->code = error ? error->code : _POOL_ERROR_INVALID;
        d->error = error ? strdup(pool_error_message(error)) : NULL;
}

/* Runs the event loop until *flag is set or timeout passes. */
static bool run_until(bool *flag, usec_t timeout) {
        usec_t end = now(CLOCK_MONOTONIC) + timeout;

        while (!*flag) {
                if (now(CLOCK_MONOTONIC) >= end)
                        return false;
                ASSERT_OK(sd_event_run(manager->event, 10 * USEC_PER_MSEC));
        }
        return true;
}

static void run_for(usec_t t) {
        bool never = false;

        (void) run_until(&never, t);
}

/* A free port below the ephemeral range (see tests/free-port for why), never the same twice. */
static uint16_t free_port(void) {
        static uint16_t next = 0;

        if (next == 0)
                next = 20000 + (uint16_t) (getpid() % 10000);
        for (;;) {
                struct sockaddr_in a = {
                        .sin_family = AF_INET,
                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                        .sin_port = htons(next++),
                };
                int fd, r;

                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                ASSERT_TRUE(fd >= 0);
                r = bind(fd, (struct sockaddr *) &a, sizeof(a));
                close(fd);
                if (r >= 0)
                        return ntohs(a.sin_port);
        }
}

/* Builds a PreparedEngine for the fake engine with extra flags and JSON members. */
static PreparedEngine *prepare(const char *pool_id, uint16_t port, const char *flags_json, const char *extra) {
        _cleanup_free_ char *json = NULL, *error = NULL;
        PreparedEngine *p = NULL;
        int r;

        ASSERT_TRUE(asprintf(&json,
                             "{\"binary_path\":\"%s\",\"flags\":[\"--port\",\"%u\"%s%s],\"port\":%u,"
                             "\"host\":\"127.0.0.1\",\"pool_id\":\"%s\",\"engine_version\":\"fake-1.0\","
                             "\"model_path\":\"/models/tiny.gguf\"%s%s}",
                             fake_engine, port, flags_json ? "," : "", flags_json ?: "", port, pool_id,
                             extra ? "," : "", extra ?: "") >= 0);
        r = prepared_engine_from_json(json, strlen(json), &p, &error);
        if (r < 0)
                fprintf(stderr, "prepare: %s\n%s\n", error, json);
        ASSERT_OK(r);
        return p;
}

static void preload_and_wait(PreparedEngine *pe, Done *d, usec_t timeout) {
        PoolError error = POOL_ERROR_NULL;
        int r;

        r = manager_preload(manager, &pe, on_done, d, &error);
        if (r < 0) {
                d->done = true;
                d->r = r;
                d->code = error.code;
                d->error = TAKE_PTR(error.message);
                prepared_engine_free(pe);
                return;
        }
        ASSERT_TRUE(run_until(&d->done, timeout));
}

static void stop_and_wait(const char *id) {
        _cleanup_(pool_error_done) PoolError error = POOL_ERROR_NULL;
        Done d = {};

        ASSERT_OK(manager_stop(manager, id, on_done, &d, &error));
        ASSERT_TRUE(run_until(&d.done, 30 * USEC_PER_SEC));
        ASSERT_OK(d.r);
        free(d.error);
}

/* Reads a property of a unit from systemd, synchronously (fine in a test). */
static int unit_property(const char *unit, const char *interface, const char *property, const char *type,
                         sd_bus_message **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        ASSERT_OK(sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &path));
        r = sd_bus_get_property(manager->bus, "org.freedesktop.systemd1", path, interface, property, &e, ret,
                                type);
        return r;
}

static char *unit_property_string(const char *unit, const char *interface, const char *property) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *s;

        ASSERT_OK(unit_property(unit, interface, property, "s", &m));
        ASSERT_OK(sd_bus_message_read(m, "s", &s));
        return strdup(s);
}

static void assert_unit_string(const char *unit, const char *interface, const char *property,
                               const char *expected) {
        _cleanup_free_ char *i = NULL, *s = NULL;

        ASSERT_TRUE(asprintf(&i, "org.freedesktop.systemd1.%s", interface) >= 0);
        s = unit_property_string(unit, i, property);
        ASSERT_STREQ(s, expected);
}

static uint64_t unit_property_u64(const char *unit, const char *interface, const char *property) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        uint64_t v;

        ASSERT_OK(unit_property(unit, interface, property, "t", &m));
        ASSERT_OK(sd_bus_message_read(m, "t", &v));
        return v;
}

static uint32_t unit_main_pid(const char *unit) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        uint32_t v;

        ASSERT_OK(unit_property(unit, "org.freedesktop.systemd1.Service", "MainPID", "u", &m));
        ASSERT_OK(sd_bus_message_read(m, "u", &v));
        return v;
}

static char *active_state(const char *unit) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const char *s;

        /* A collected unit is reported as inactive by systemd (LoadState=not-found). */
        if (unit_property(unit, "org.freedesktop.systemd1.Unit", "ActiveState", "s", &m) < 0)
                return strdup("gone");
        ASSERT_OK(sd_bus_message_read(m, "s", &s));
        return strdup(s);
}

static pid_t read_pid_file(const char *path) {
        _cleanup_free_ char *s = NULL;

        if (read_full_file(path, 64, &s, NULL) < 0)
                return -1;
        return (pid_t) atoi(s);
}

static bool file_exists(const char *path) {
        return access(path, F_OK) >= 0;
}

/* Waits (bounded) for a journal entry with field=value whose MESSAGE contains needle. */
static bool journal_has(const char *match, const char *needle, usec_t timeout) {
        usec_t end = now(CLOCK_MONOTONIC) + timeout;

        do {
                sd_journal *j = NULL;
                bool found = false;

                if (sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY) >= 0) {
                        const void *data;
                        size_t l;

                        (void) sd_journal_add_match(j, match, 0);
                        SD_JOURNAL_FOREACH(j)
                                if (sd_journal_get_data(j, "MESSAGE", &data, &l) >= 0 &&
                                    memmem(data, l, needle, strlen(needle))) {
                                        found = true;
                                        break;
                                }
                        sd_journal_close(j);
                }
                if (found)
                        return true;
                run_for(100 * USEC_PER_MSEC);
        } while (now(CLOCK_MONOTONIC) < end);
        return false;
}

TEST(preload_becomes_ready_only_after_health_200) {
        /* OC-POOL-3001: 503 while loading, 200 after 1.5 s; never ready before. */
        uint16_t port = free_port();
        _cleanup_free_ char *probe_log = NULL;
        PreparedEngine *pe;
        Pool *p;
        Done d = {};
        PoolEntry *e;
        usec_t t0;
        bool saw_pid_file_while_probing = false;

        ASSERT_TRUE(asprintf(&probe_log, "%s/probes-ready.log", tmpdir) >= 0);
        {
                _cleanup_free_ char *flags = NULL;

                ASSERT_TRUE(asprintf(&flags, "\"--ready-after=1500\",\"--probe-log=%s\"", probe_log) >= 0);
                pe = prepare("ready", port, flags, "\"health\":{\"interval_ms\":200}");
        }

        t0 = now(CLOCK_MONOTONIC);
        {
                _cleanup_(pool_error_done) PoolError error = POOL_ERROR_NULL;
                ASSERT_OK(manager_preload(manager, &pe, on_done, &d, &error));
        }
        p = manager_get_pool(manager, "ready");
        ASSERT_NOT_NULL(p);

        /* While probing: the pid file exists and equals MainPID, and the pool is not ready. */
        while (!d.done) {
                ASSERT_TRUE(now(CLOCK_MONOTONIC) - t0 < 20 * USEC_PER_SEC);
                ASSERT_OK(sd_event_run(manager->event, 10 * USEC_PER_MSEC));
                e = registry_get(manager->registry, "ready");
                if (!d.done && p->probe && probe_attempts(p->probe) >= 2) {
                        ASSERT_FALSE(e->health.ready);
                        ASSERT_TRUE(e->health.live);
                        ASSERT_TRUE(file_exists(p->pid_path));
                        ASSERT_EQ(read_pid_file(p->pid_path), p->unit->main_pid);
                        saw_pid_file_while_probing = true;
                }
        }
        ASSERT_OK(d.r);
        ASSERT_TRUE(saw_pid_file_while_probing);
        ASSERT_TRUE(now(CLOCK_MONOTONIC) - t0 >= 1500 * USEC_PER_MSEC);

        e = registry_get(manager->registry, "ready");
        ASSERT_TRUE(e->health.live);
        ASSERT_TRUE(e->health.ready);
        ASSERT_NULL(e->last_error);
        ASSERT_STREQ(e->engine_version, "fake-1.0");
        ASSERT_TRUE(e->last_heartbeat_ms > 0);
        ASSERT_STREQ(e->unit, "pool-engine-ready.service");
        ASSERT_EQ(e->main_pid, unit_main_pid("pool-engine-ready.service"));
        ASSERT_EQ(read_pid_file(p->pid_path), e->main_pid);

        /* The engine saw 503s, then a 200, from our probes. */
        {
                _cleanup_free_ char *log = NULL;

                ASSERT_OK(read_full_file(probe_log, 1 << 20, &log, NULL));
                ASSERT_CONTAINS(log, " 503");
                ASSERT_CONTAINS(log, " 200");
        }

        /* The handoff file. */
        {
                Handoff h = HANDOFF_INIT;
                _cleanup_free_ char *error = NULL, *url = NULL;

                ASSERT_NOT_NULL(p->handoff_path);
                ASSERT_CONTAINS(p->handoff_path, "/engines/ready-r0.json");
                ASSERT_OK(handoff_read(p->handoff_path, &h, &error));
                ASSERT_STREQ(h.pool_id, "ready");
                ASSERT_STREQ(h.replica_id, "r0");
                ASSERT_STREQ(h.engine, "llamacpp");
                ASSERT_STREQ(h.engine_version, "fake-1.0");
                ASSERT_TRUE(asprintf(&url, "http://127.0.0.1:%u", port) >= 0);
                ASSERT_STREQ(h.url, url);
                ASSERT_STREQ(h.model_path, "/models/tiny.gguf");
                ASSERT_EQ(h.pid, e->main_pid);
                ASSERT_STREQ(h.unit, "pool-engine-ready.service");
                ASSERT_NOT_NULL(h.ready_at);
                ASSERT_TRUE(strv_contains(h.flags, "--ready-after=1500"));
                handoff_done(&h);
        }

        ASSERT_TRUE(journal_has("MESSAGE_ID=" MESSAGE_ENGINE_READY, "Pool \"ready\" is ready", 5 * USEC_PER_SEC));

        stop_and_wait("ready");
        free(d.error);
}

TEST(unit_has_the_requested_properties) {
        uint16_t port = free_port();
        PreparedEngine *pe;
        Done d = {};
        const char *unit = "pool-engine-props.service";

        pe = prepare("props", port, "\"--stdout-line=hello from props\"",
                     "\"device_mask\":\"GPU0,GPU1\",\"env\":{\"LLAMA_ARG_CTX\":\"4096\"},\"engine\":\"vllm\"");
        preload_and_wait(pe, &d, 20 * USEC_PER_SEC);
        ASSERT_OK(d.r);

        {
                _cleanup_free_ char *s = unit_property_string(unit, "org.freedesktop.systemd1.Unit",
                                                              "Description");
                ASSERT_CONTAINS(s, "props");
        }
        assert_unit_string(unit, "Service", "Slice", "pool-engines.slice");
        assert_unit_string(unit, "Service", "KillMode", "control-group");
        assert_unit_string(unit, "Service", "Type", "exec");
        assert_unit_string(unit, "Unit", "CollectMode", "inactive-or-failed");
        assert_unit_string(unit, "Service", "SyslogIdentifier", "pool-engine-props");
        assert_unit_string(unit, "Service", "StandardOutput", "journal");
        assert_unit_string(unit, "Service", "StandardError", "journal");
        assert_unit_string(unit, "Service", "ProtectSystem", "full");
        ASSERT_EQ(unit_property_u64(unit, "org.freedesktop.systemd1.Service", "TimeoutStopUSec"),
                  manager->config->stop_timeout);

        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                _cleanup_strv_free_ char **env = NULL;
                int32_t sig;

                ASSERT_OK(unit_property(unit, "org.freedesktop.systemd1.Service", "KillSignal", "i", &m));
                ASSERT_OK(sd_bus_message_read(m, "i", &sig));
                ASSERT_EQ(sig, SIGTERM);
                m = sd_bus_message_unref(m);

                ASSERT_OK(unit_property(unit, "org.freedesktop.systemd1.Service", "Environment", "as", &m));
                ASSERT_OK(sd_bus_message_read_strv(m, &env));
                ASSERT_TRUE(strv_contains(env, "CUDA_VISIBLE_DEVICES=0,1"));
                ASSERT_TRUE(strv_contains(env, "LLAMA_ARG_CTX=4096"));
        }

        /* ExecStart is binary_path + flags verbatim. */
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                _cleanup_strv_free_ char **argv = NULL;
                const char *path;

                ASSERT_OK(unit_property(unit, "org.freedesktop.systemd1.Service", "ExecStart",
                                        "a(sasbttttuii)", &m));
                ASSERT_OK(sd_bus_message_enter_container(m, 'a', "(sasbttttuii)"));
                ASSERT_OK(sd_bus_message_enter_container(m, 'r', "sasbttttuii"));
                ASSERT_OK(sd_bus_message_read(m, "s", &path));
                ASSERT_STREQ(path, fake_engine);
                ASSERT_OK(sd_bus_message_read_strv(m, &argv));
                ASSERT_EQ(strv_length(argv), 4);
                ASSERT_STREQ(argv[0], fake_engine);
                ASSERT_STREQ(argv[1], "--port");
                ASSERT_STREQ(argv[3], "--stdout-line=hello from props");
        }

        /* Engine output goes to the journal under its unit's identifier. */
        ASSERT_TRUE(journal_has("SYSLOG_IDENTIFIER=pool-engine-props", "hello from props", 10 * USEC_PER_SEC));

        stop_and_wait("props");
        free(d.error);
}

TEST(health_timeout_fails_and_cleans_up) {
        uint16_t port = free_port();
        PreparedEngine *pe;
        Pool *p;
        Done d = {};
        PoolEntry *e;

        pe = prepare("slow", port, "\"--never-ready\"", "\"health\":{\"interval_ms\":100,\"timeout_ms\":1500}");
        preload_and_wait(pe, &d, 20 * USEC_PER_SEC);
        ASSERT_ERROR(d.r, ETIMEDOUT);
        ASSERT_EQ(d.code, POOL_ERROR_HEALTH_TIMEOUT);
        ASSERT_CONTAINS(d.error, "health check timed out after 1500 ms");
        ASSERT_CONTAINS(d.error, "HTTP 503");

        p = manager_get_pool(manager, "slow");
        ASSERT_EQ(p->state, POOL_FAILED);
        ASSERT_FALSE(file_exists(p->pid_path));
        ASSERT_NULL(p->handoff_path);
        {
                _cleanup_free_ char *path = NULL;
                ASSERT_OK(handoff_path(manager->engines_dir, "slow", "r0", &path));
                ASSERT_FALSE(file_exists(path));
        }
        e = registry_get(manager->registry, "slow");
        ASSERT_FALSE(e->health.ready);
        ASSERT_FALSE(e->health.live);
        ASSERT_STREQ(e->last_error, d.error);
        {
                _cleanup_free_ char *s = active_state("pool-engine-slow.service");
                ASSERT_TRUE(streq(s, "inactive") || streq(s, "gone") || streq(s, "failed"));
        }
        free(d.error);
}

TEST(early_exit_is_reported_at_once) {
        uint16_t port = free_port();
        PreparedEngine *pe;
        Done d = {};
        usec_t t0 = now(CLOCK_MONOTONIC);

        /* The health timeout is 120 s; the failure must come as soon as the engine exits. */
        pe = prepare("early", port, "\"--never-ready\",\"--exit-after=300\",\"--exit-code=2\"", NULL);
        preload_and_wait(pe, &d, 20 * USEC_PER_SEC);
        ASSERT_ERROR(d.r, EIO);
        ASSERT_EQ(d.code, POOL_ERROR_ENGINE_FAILED);
        ASSERT_TRUE(strneq(d.error, "engine exited with status 2 before becoming ready", 49));
        ASSERT_TRUE(now(CLOCK_MONOTONIC) - t0 < 5 * USEC_PER_SEC);
        ASSERT_STREQ(registry_get(manager->registry, "early")->last_error, d.error);
        ASSERT_FALSE(file_exists(manager_get_pool(manager, "early")->pid_path));
        free(d.error);
}

TEST(usage_error_exit_before_ready) {
        uint16_t port = free_port();
        PreparedEngine *pe;
        Done d = {};

        /* An unknown flag: the engine exits 2 at once, as a real one would. */
        pe = prepare("badflag", port, "\"--no-such-flag\"", NULL);
        preload_and_wait(pe, &d, 20 * USEC_PER_SEC);
        ASSERT_ERROR(d.r, EIO);
        /* With the engine's own words, when journald had them in time (issue 16). */
        ASSERT_TRUE(streq(d.error, "engine exited with status 2 before becoming ready") ||
                    (strneq(d.error, "engine exited with status 2 before becoming ready: \"", 52) &&
                     strstr(d.error, "unrecognized option '--no-such-flag'")));
        free(d.error);
}

TEST(missing_binary_is_refused) {
        _cleanup_free_ char *json = NULL, *error = NULL, *dir = NULL, *plain = NULL;
        _cleanup_(pool_error_done) PoolError perr = POOL_ERROR_NULL;
        PreparedEngine *pe = NULL;
        int r;

        /* Validation: refused with its code, nothing registered, no unit asked for. */
        ASSERT_TRUE(asprintf(&json, "{\"binary_path\":\"/nonexistent/llama-server\",\"port\":%u,"
                             "\"pool_id\":\"nobin\"}", free_port()) >= 0);
        ASSERT_OK(prepared_engine_from_json(json, strlen(json), &pe, &error));
        r = manager_preload(manager, &pe, NULL, NULL, &perr);
        ASSERT_ERROR(r, ENOENT);
        ASSERT_EQ(perr.code, POOL_ERROR_BINARY_NOT_FOUND);
        ASSERT_STREQ(perr.message, "binary_path: engine binary not found: /nonexistent/llama-server");
        ASSERT_NULL(registry_get(manager->registry, "nobin"));
        prepared_engine_free(pe);

        /* A directory and a file without execute bit: BINARY_NOT_EXECUTABLE. */
        ASSERT_TRUE(asprintf(&dir, "%s", tmpdir) >= 0);
        json = mfree(json);
        ASSERT_TRUE(asprintf(&json, "{\"binary_path\":\"%s\",\"port\":%u,\"pool_id\":\"dirbin\"}", dir,
                             free_port()) >= 0);
        ASSERT_OK(prepared_engine_from_json(json, strlen(json), &pe, &error));
        ASSERT_ERROR(manager_preload(manager, &pe, NULL, NULL, &perr), EACCES);
        ASSERT_EQ(perr.code, POOL_ERROR_BINARY_NOT_EXECUTABLE);
        ASSERT_CONTAINS(perr.message, "is a directory");
        ASSERT_NULL(registry_get(manager->registry, "dirbin"));
        prepared_engine_free(pe);

        ASSERT_TRUE(asprintf(&plain, "%s/plain-file", tmpdir) >= 0);
        ASSERT_OK(write_file_atomic(plain, "#!/bin/sh\n", 10, 0644));
        json = mfree(json);
        ASSERT_TRUE(asprintf(&json, "{\"binary_path\":\"%s\",\"port\":%u,\"pool_id\":\"noexec\"}", plain,
                             free_port()) >= 0);
        ASSERT_OK(prepared_engine_from_json(json, strlen(json), &pe, &error));
        ASSERT_ERROR(manager_preload(manager, &pe, NULL, NULL, &perr), EACCES);
        ASSERT_EQ(perr.code, POOL_ERROR_BINARY_NOT_EXECUTABLE);
        ASSERT_CONTAINS(perr.message, "is not executable");
        ASSERT_NULL(registry_get(manager->registry, "noexec"));
        prepared_engine_free(pe);
}

TEST(exec_failure_fails_the_start_job) {
        _cleanup_free_ char *bin = NULL, *json = NULL, *error = NULL;
        PreparedEngine *pe = NULL;
        Done d = {};

        /* Executable bit but no valid format: execve() fails inside systemd (203/EXEC). */
        ASSERT_TRUE(asprintf(&bin, "%s/not-an-elf", tmpdir) >= 0);
        ASSERT_OK(write_file_atomic(bin, "garbage\n", 8, 0755));
        ASSERT_TRUE(asprintf(&json, "{\"binary_path\":\"%s\",\"port\":%u,\"pool_id\":\"badexec\"}", bin,
                             free_port()) >= 0);
        ASSERT_OK(prepared_engine_from_json(json, strlen(json), &pe, &error));
        preload_and_wait(pe, &d, 20 * USEC_PER_SEC);
        ASSERT_ERROR(d.r, EIO);
        ASSERT_EQ(d.code, POOL_ERROR_ENGINE_FAILED);
        ASSERT_CONTAINS(d.error, "203/EXEC");
        ASSERT_EQ(manager_get_pool(manager, "badexec")->state, POOL_FAILED);
        free(d.error);
}

TEST(gpu_only_refuses_without_cuda) {
        _cleanup_free_ char *dir = NULL, *smi = NULL;
        _cleanup_(pool_error_done) PoolError error = POOL_ERROR_NULL;
        CudaInfo saved = manager->cuda, none = {}, fake = {};
        PreparedEngine *pe;
        Done d = {};
        int r;

        /* OC-POOL-3012: no nvcc, no nvidia-smi, no NVML -> refused, no CPU fallback. */
        ASSERT_OK(cuda_info_probe("/nonexistent", "libnvidia-ml-missing.so.1", &none));
        ASSERT_FALSE(cuda_info_available(&none));
        manager->cuda = none;
        manager->config->gpu_only = true;

        pe = prepare("gpuonly", free_port(), NULL, NULL);
        r = manager_preload(manager, &pe, on_done, &d, &error);
        ASSERT_ERROR(r, ENODEV);
        ASSERT_EQ(error.code, POOL_ERROR_GPU_REQUIRED);
        ASSERT_CONTAINS(error.message, "GPU-only enforcement");
        ASSERT_CONTAINS(error.message, "nvcc");
        ASSERT_CONTAINS(error.message, "nvidia-smi");
        ASSERT_NULL(manager_get_pool(manager, "gpuonly"));
        ASSERT_FALSE(d.done);
        prepared_engine_free(pe);
        cuda_info_done(&none);

        /* A (fake) nvidia-smi on PATH makes CUDA available and the preload goes ahead. */
        ASSERT_TRUE(asprintf(&dir, "%s/bin", tmpdir) >= 0);
        ASSERT_OK(mkdir_p(dir, 0755));
        smi = path_join(dir, "nvidia-smi");
        ASSERT_OK(write_file_atomic(smi, "#!/bin/sh\nexit 0\n", 17, 0755));
        ASSERT_OK(cuda_info_probe(dir, "libnvidia-ml-missing.so.1", &fake));
        ASSERT_TRUE(cuda_info_available(&fake));
        manager->cuda = fake;

        pe = prepare("gpuonly", free_port(), NULL, NULL);
        preload_and_wait(pe, &d, 20 * USEC_PER_SEC);
        ASSERT_OK(d.r);
        stop_and_wait("gpuonly");

        manager->config->gpu_only = false;
        manager->cuda = saved;
        cuda_info_done(&fake);
        free(d.error);
}

TEST(stop_of_engine_ignoring_sigterm_takes_stop_timeout) {
        uint16_t port = free_port();
        PreparedEngine *pe;
        Pool *p;
        Done d = {};
        pid_t pid;
        usec_t t0, elapsed;
        _cleanup_free_ char *handoff = NULL;

        manager->config->stop_timeout = 2 * USEC_PER_SEC;
        pe = prepare("stubborn", port, "\"--ignore-sigterm\"", NULL);
        preload_and_wait(pe, &d, 20 * USEC_PER_SEC);
        ASSERT_OK(d.r);
        p = manager_get_pool(manager, "stubborn");
        pid = p->unit->main_pid;
        ASSERT_TRUE(pid > 0);
        ASSERT_OK(kill(pid, 0));
        handoff = strdup(p->handoff_path);
        ASSERT_TRUE(file_exists(handoff));

        t0 = now(CLOCK_MONOTONIC);
        stop_and_wait("stubborn");
        elapsed = now(CLOCK_MONOTONIC) - t0;
        fprintf(stderr, "stop took %llu ms\n", (unsigned long long) (elapsed / USEC_PER_MSEC));
        /* SIGTERM ignored; systemd sends SIGKILL after TimeoutStopSec=2s. */
        ASSERT_TRUE(elapsed >= 1800 * USEC_PER_MSEC);
        ASSERT_TRUE(elapsed <= 5 * USEC_PER_SEC);
        ASSERT_TRUE(kill(pid, 0) < 0 && errno == ESRCH);
        ASSERT_FALSE(file_exists(p->pid_path));
        ASSERT_FALSE(file_exists(handoff));
        ASSERT_FALSE(registry_get(manager->registry, "stubborn")->health.live);
        ASSERT_FALSE(registry_get(manager->registry, "stubborn")->health.ready);

        manager->config->stop_timeout = 5 * USEC_PER_SEC;
        free(d.error);
}

TEST(stop_of_unknown_or_stopped_pool_is_an_error) {
        _cleanup_(pool_error_done) PoolError error = POOL_ERROR_NULL;
        PreparedEngine *pe;
        Done d = {};

        ASSERT_ERROR(manager_stop(manager, "never-heard-of", NULL, NULL, &error), ENOENT);
        ASSERT_EQ(error.code, POOL_ERROR_NO_SUCH_POOL);
        ASSERT_STREQ(error.message, "pool never-heard-of not found");
        pool_error_done(&error);

        pe = prepare("twice", free_port(), NULL, NULL);
        preload_and_wait(pe, &d, 20 * USEC_PER_SEC);
        ASSERT_OK(d.r);
        stop_and_wait("twice");
        ASSERT_ERROR(manager_stop(manager, "twice", NULL, NULL, &error), ESRCH);
        ASSERT_EQ(error.code, POOL_ERROR_NOT_RUNNING);
        ASSERT_CONTAINS(error.message, "not running");
        free(d.error);
}

TEST(preload_of_running_pool_is_refused) {
        _cleanup_(pool_error_done) PoolError error = POOL_ERROR_NULL;
        PreparedEngine *pe;
        Done d = {};

        pe = prepare("dup", free_port(), NULL, NULL);
        preload_and_wait(pe, &d, 20 * USEC_PER_SEC);
        ASSERT_OK(d.r);

        pe = prepare("dup", free_port(), NULL, NULL);
        ASSERT_ERROR(manager_preload(manager, &pe, NULL, NULL, &error), EBUSY);
        ASSERT_EQ(error.code, POOL_ERROR_ALREADY_RUNNING);
        ASSERT_STREQ(error.message, "pool dup is already ready");
        ASSERT_TRUE(registry_get(manager->registry, "dup")->health.ready);
        prepared_engine_free(pe);
        stop_and_wait("dup");
        free(d.error);
}

TEST(handoff_file_collision_is_refused) {
        _cleanup_(pool_error_done) PoolError error = POOL_ERROR_NULL;
        PreparedEngine *pe;
        Done d = {};

        /* Pool "a-r1" replica "r0" and pool "a" replica "r1-r0" would share a-r1-r0.json. */
        pe = prepare("a-r1", free_port(), NULL, NULL);
        preload_and_wait(pe, &d, 20 * USEC_PER_SEC);
        ASSERT_OK(d.r);
        pe = prepare("a", free_port(), NULL, "\"replica_id\":\"r1-r0\"");
        ASSERT_ERROR(manager_preload(manager, &pe, NULL, NULL, &error), EEXIST);
        ASSERT_EQ(error.code, POOL_ERROR_HANDOFF_IN_USE);
        ASSERT_CONTAINS(error.message, "a-r1-r0.json is already used by pool a-r1");
        ASSERT_NULL(manager_get_pool(manager, "a"));
        prepared_engine_free(pe);
        stop_and_wait("a-r1");
        free(d.error);
}

TEST(exit_after_ready_marks_pool_unready_at_once_and_restarts) {
        PreparedEngine *pe;
        Pool *p;
        Done d = {};
        PoolEntry *e;
        bool crashed = false, back = false;
        pid_t first_pid;
        usec_t end, crash_at = 0;

        pe = prepare("crashy", free_port(), "\"--crash-after=1000\",\"--crash-signal=SEGV\"", NULL);
        preload_and_wait(pe, &d, 20 * USEC_PER_SEC);
        ASSERT_OK(d.r);
        p = manager_get_pool(manager, "crashy");
        ASSERT_EQ(p->state, POOL_READY);
        first_pid = p->unit->main_pid;

        /* Unready at once: the registry changes in the same loop iteration as the exit. */
        end = now(CLOCK_MONOTONIC) + 10 * USEC_PER_SEC;
        while (!crashed && now(CLOCK_MONOTONIC) < end) {
                run_for(5 * USEC_PER_MSEC);
                crashed = p->state == POOL_BACKOFF;
        }
        ASSERT_TRUE(crashed);
        crash_at = now(CLOCK_MONOTONIC);
        e = registry_get(manager->registry, "crashy");
        ASSERT_FALSE(e->health.live);
        ASSERT_FALSE(e->health.ready);
        /* "(core dumped)" follows where the core limit allows one. */
        ASSERT_CONTAINS(e->last_error, "engine was killed by signal SIGSEGV");
        ASSERT_EQ(e->crash_count, 1);
        ASSERT_EQ(e->main_pid, 0);
        ASSERT_FALSE(file_exists(p->pid_path));
        ASSERT_TRUE(e->next_restart_usec > 0);
        /* First backoff: 1000 ms +- 10 %. */
        ASSERT_TRUE(e->backoff_ms >= 900 && e->backoff_ms <= 1100);

        /* Supervision restarts it after the backoff: a new process, ready again. */
        end = now(CLOCK_MONOTONIC) + 10 * USEC_PER_SEC;
        while (!back && now(CLOCK_MONOTONIC) < end) {
                run_for(5 * USEC_PER_MSEC);
                back = p->state == POOL_READY;
        }
        ASSERT_TRUE(back);
        ASSERT_TRUE(now(CLOCK_MONOTONIC) - crash_at >= 850 * USEC_PER_MSEC);
        e = registry_get(manager->registry, "crashy");
        ASSERT_EQ(e->restart_count, 1);
        ASSERT_TRUE(e->main_pid > 0 && e->main_pid != first_pid);
        ASSERT_TRUE(e->health.ready);
        stop_and_wait("crashy");
        free(d.error);
}

TEST(http10_engine_is_accepted) {
        PreparedEngine *pe;
        Done d = {};

        pe = prepare("http10", free_port(), "\"--http10\",\"--ready-after=300\"", NULL);
        preload_and_wait(pe, &d, 20 * USEC_PER_SEC);
        ASSERT_OK(d.r);
        stop_and_wait("http10");
        free(d.error);
}

TEST(engine_logs_file_appends_across_restarts) {
        _cleanup_free_ char *log = NULL, *content = NULL;
        PreparedEngine *pe;
        Done d = {};

        manager->config->engine_logs = ENGINE_LOGS_FILE;
        ASSERT_TRUE(asprintf(&log, "%s/filelog.log", manager->logs_dir) >= 0);
        (void) unlink_if_exists(log);

        for (int i = 0; i < 2; i++) {
                pe = prepare("filelog", free_port(), "\"--stdout-line=line-to-file\"", NULL);
                d = (Done) {};
                preload_and_wait(pe, &d, 20 * USEC_PER_SEC);
                ASSERT_OK(d.r);
                assert_unit_string("pool-engine-filelog.service", "Service", "StandardOutput", "append");
                stop_and_wait("filelog");
                free(d.error);
        }

        ASSERT_OK(read_full_file(log, 1 << 20, &content, NULL));
        {
                const char *first = strstr(content, "line-to-file");
                ASSERT_NOT_NULL(first);
                ASSERT_NOT_NULL(strstr(first + 1, "line-to-file"));
        }
        manager->config->engine_logs = ENGINE_LOGS_JOURNAL;
}

static int setup(void) {
        _cleanup_(config_freep) Config *c = NULL;
        sigset_t mask;

        fake_engine = getenv("FAKE_ENGINE");
        if (!fake_engine || !getenv("XDG_RUNTIME_DIR") || access("/run/systemd/system", F_OK) < 0) {
                fprintf(stderr, "Not inside tests/sandbox (need FAKE_ENGINE, XDG_RUNTIME_DIR, systemd --user).\n");
                return 77;
        }

        /* Structured entries (MESSAGE_ID=...) must reach journald: some tests look for them. */
        log_setup(LOG_TARGET_JOURNAL);
        /* Not under /tmp: engines run with PrivateTmp=yes and would not see it. */
        ASSERT_TRUE(asprintf(&tmpdir, "%s/test-lifecycle.XXXXXX", getenv("XDG_RUNTIME_DIR")) >= 0);
        ASSERT_NOT_NULL(mkdtemp(tmpdir));
        ASSERT_OK(chmod(tmpdir, 0755));

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        ASSERT_OK(sigprocmask(SIG_BLOCK, &mask, NULL));

        ASSERT_OK(config_new(&c, true));
        c->gpu_only = false;
        /* This sandbox's /proc cannot be remounted for ProtectKernelTunables=. */
        c->engine_sandbox = ENGINE_SANDBOX_CONTAINER;
        ASSERT_OK(manager_new(&manager, true, TAKE_PTR(c), NULL, NULL, NULL));
        ASSERT_OK(manager_startup(manager));
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned n = 0;
        int r;

        r = setup();
        if (r != 0)
                return r;

        for (const TestCase *t = __start_test_cases; t < __stop_test_cases; t++) {
                bool selected = argc <= 1;

                for (int i = 1; i < argc; i++)
                        if (streq(argv[i], t->name))
                                selected = true;
                if (!selected)
                        continue;
                fprintf(stderr, "/* %s */\n", t->name);
                t->func();
                n++;
                printf("ok %u - %s\n", n, t->name);
                fflush(stdout);
        }

        manager = manager_free(manager);
        fprintf(stderr, "%u test cases passed\n", n);
        return 0;
}
