/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * One transient engine unit, seen through systemd's D-Bus API. systemd does the process
 * work: it forks and execs the engine (Type=exec, so a failed exec fails the start job),
 * logs its output to the journal, sends SIGTERM, waits TimeoutStopSec and sends SIGKILL to the
 * whole cgroup. We only follow its state: the unit's PropertiesChanged signals and its jobs'
 * JobRemoved signals.
 */

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "engine-unit.h"
#include "log.h"
#include "shared/fileio.h"
#include "shared/strv.h"

#define SYSTEMD_SERVICE "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"

static int engine_unit_watch(EngineUnit *u);

static void engine_unit_emit(EngineUnit *u, EngineUnitEvent event, const char *error) {
        u->callback(u, event, error, u->userdata);
}

static int on_evaluate(sd_event_source *s, void *userdata) {
        EngineUnit *u = userdata;

        /* Wait for the start job's verdict first: a failed exec also fails the unit, and the
         * job result is the better explanation. */
        if (u->starting && !u->start_done)
                return 0;
        if (u->exited || !u->active_state)
                return 0;
        if (!streq(u->active_state, "inactive") && !streq(u->active_state, "failed"))
                return 0;

        u->exited = true;
        engine_unit_emit(u, ENGINE_UNIT_EXITED, NULL);
        return 0;
}

static void engine_unit_schedule_evaluate(EngineUnit *u) {
        int r;

        /* Deferred at idle priority: systemd emits the Service interface's PropertiesChanged
         * (Result, ExecMainStatus) and the Unit's (ActiveState) as separate messages; evaluating
         * once the bus queue is drained sees both. */
        if (!u->evaluate) {
                r = sd_event_add_defer(u->event, &u->evaluate, on_evaluate, u);
                if (r < 0) {
                        log_warning_errno(r, "Failed to schedule state evaluation of %s: %m", u->name);
                        return;
                }
                (void) sd_event_source_set_priority(u->evaluate, SD_EVENT_PRIORITY_IDLE);
                (void) sd_event_source_set_description(u->evaluate, "engine-unit-evaluate");
        }
        (void) sd_event_source_set_enabled(u->evaluate, SD_EVENT_ONESHOT);
}

static void engine_unit_set_main_pid(EngineUnit *u, pid_t pid) {
        bool first = u->main_pid <= 0 && pid > 0;

        if (pid > 0)
                u->main_pid = pid;
        if (first)
                engine_unit_emit(u, ENGINE_UNIT_MAIN_PID, NULL);
}

/* 16 bytes from the bus as 32 hex digits; anything else (the empty array of a unit that is
 * not running) clears it. */
static void engine_unit_set_invocation_id(EngineUnit *u, const uint8_t *id, size_t n) {
        u->invocation_id[0] = '\0';
        if (n != 16)
                return;
        for (size_t i = 0; i < n; i++)
                (void) snprintf(u->invocation_id + 2 * i, 3, "%02x", id[i]);
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        EngineUnit *u = userdata;
        const char *interface;
        int r;

        r = sd_bus_message_read(m, "s", &interface);
        if (r < 0)
                goto fail;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                goto fail;

        for (;;) {
                const char *name, *contents;
                char type;

                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r < 0)
                        goto fail;
                if (r == 0)
                        break;
                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        goto fail;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        goto fail;

                if (streq(contents, "s") &&
                    (streq(name, "ActiveState") || streq(name, "SubState") || streq(name, "Result"))) {
                        const char *v;

                        r = sd_bus_message_read(m, "v", "s", &v);
                        if (r < 0)
                                goto fail;
                        r = free_and_strdup(streq(name, "ActiveState") ? &u->active_state :
                                            streq(name, "SubState") ? &u->sub_state : &u->result, v);
                        if (r < 0)
                                return r;
                } else if (streq(contents, "u") && streq(name, "MainPID")) {
                        uint32_t pid;

                        r = sd_bus_message_read(m, "v", "u", &pid);
                        if (r < 0)
                                goto fail;
                        engine_unit_set_main_pid(u, (pid_t) pid);
                } else if (streq(contents, "ay") && streq(name, "InvocationID")) {
                        const void *id;
                        size_t n;

                        r = sd_bus_message_enter_container(m, 'v', "ay");
                        if (r < 0)
                                goto fail;
                        r = sd_bus_message_read_array(m, 'y', &id, &n);
                        if (r < 0)
                                goto fail;
                        r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                goto fail;
                        engine_unit_set_invocation_id(u, id, n);
                } else if (streq(contents, "i") &&
                           (streq(name, "ExecMainCode") || streq(name, "ExecMainStatus"))) {
                        int32_t v;

                        r = sd_bus_message_read(m, "v", "i", &v);
                        if (r < 0)
                                goto fail;
                        if (streq(name, "ExecMainCode"))
                                u->exec_main_code = v;
                        else
                                u->exec_main_status = v;
                } else {
                        r = sd_bus_message_skip(m, "v");
                        if (r < 0)
                                goto fail;
                }

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        goto fail;
        }

        engine_unit_schedule_evaluate(u);
        return 0;

fail:
        log_warning_errno(r, "Failed to parse PropertiesChanged of %s: %m", u->name);
        return 0;
}

static int on_main_pid(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        EngineUnit *u = userdata;
        uint32_t pid;
        int r;

        u->pid_slot = sd_bus_slot_unref(u->pid_slot);

        if (sd_bus_message_is_method_error(m, NULL)) {
                /* The unit may be gone already (it exited and was collected); the exit is
                 * reported through PropertiesChanged. */
                log_debug("Failed to read MainPID of %s: %s", u->name, sd_bus_message_get_error(m)->message);
                return 0;
        }
        r = sd_bus_message_read(m, "v", "u", &pid);
        if (r < 0) {
                log_warning_errno(r, "Failed to parse MainPID of %s: %m", u->name);
                return 0;
        }
        engine_unit_set_main_pid(u, (pid_t) pid);
        return 0;
}

/* The job of a successful StartTransientUnit or StopUnit reply; NULL (logged) if unreadable. */
static const char *reply_job(sd_bus_message *m, const EngineUnit *u, const char *method) {
        const char *job;
        int r;

        r = sd_bus_message_read(m, "o", &job);
        if (r < 0) {
                log_warning_errno(r, "Failed to parse %s reply for %s: %m", method, u->name);
                return NULL;
        }
        return job;
}

static int on_start_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        EngineUnit *u = userdata;
        const char *job;

        u->call_slot = sd_bus_slot_unref(u->call_slot);

        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);
                _cleanup_free_ char *msg = NULL;

                u->start_done = true;
                u->exited = true;
                if (asprintf(&msg, "systemd refused to start %s: %s", u->name, e->message ?: e->name) < 0)
                        msg = NULL;
                engine_unit_emit(u, ENGINE_UNIT_START_FAILED, msg ?: e->name);
                return 0;
        }

        /* JobRemoved may only follow the reply: systemd runs the job after answering. */
        job = reply_job(m, u, "StartTransientUnit");
        if (job && !u->start_done)
                (void) free_and_strdup(&u->start_job, job);
        return 0;
}

static int on_stop_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        EngineUnit *u = userdata;
        const char *job;

        u->call_slot = sd_bus_slot_unref(u->call_slot);

        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);

                u->stopping = false;
                if (sd_bus_message_is_method_error(m, "org.freedesktop.systemd1.NoSuchUnit")) {
                        /* Already gone (exited and collected): that is what we wanted. */
                        engine_unit_emit(u, ENGINE_UNIT_STOPPED, NULL);
                        return 0;
                }
                engine_unit_emit(u, ENGINE_UNIT_STOP_FAILED, e->message ?: e->name);
                return 0;
        }

        job = reply_job(m, u, "StopUnit");
        if (job && u->stopping)
                (void) free_and_strdup(&u->stop_job, job);
        return 0;
}

void engine_unit_job_removed(EngineUnit *u, const char *job, const char *result) {
        int r;

        if (u->starting && !u->start_done && (!u->start_job || streq(job, u->start_job))) {
                u->start_done = true;
                u->start_job = mfree(u->start_job);

                if (u->stopping)        /* a stop replaced the start job; the stop job reports */
                        return;

                if (!streq(result, "done")) {
                        _cleanup_free_ char *msg = NULL, *exit = NULL;

                        u->exited = true;
                        if (u->exec_main_code != 0)
                                (void) engine_unit_describe_exit(u, &exit);
                        if (asprintf(&msg, "start job for %s %s%s%s", u->name,
                                     streq(result, "failed") ? "failed" : result,
                                     exit ? ": engine " : "", strempty(exit)) < 0)
                                msg = NULL;
                        engine_unit_emit(u, ENGINE_UNIT_START_FAILED, msg ?: result);
                        return;
                }

                engine_unit_emit(u, ENGINE_UNIT_STARTED, NULL);

                if (u->main_pid <= 0 && !u->pid_slot) {
                        r = sd_bus_call_method_async(u->bus, &u->pid_slot, SYSTEMD_SERVICE, u->path,
                                                     "org.freedesktop.DBus.Properties", "Get",
                                                     on_main_pid, u, "ss",
                                                     "org.freedesktop.systemd1.Service", "MainPID");
                        if (r < 0)
                                log_warning_errno(r, "Failed to ask for MainPID of %s: %m", u->name);
                }
                engine_unit_schedule_evaluate(u);
                return;
        }

        if (u->stopping && (!u->stop_job || streq(job, u->stop_job))) {
                u->stopping = false;
                u->stop_job = mfree(u->stop_job);
                if (streq(result, "done") || streq(result, "skipped"))
                        engine_unit_emit(u, ENGINE_UNIT_STOPPED, NULL);
                else
                        engine_unit_emit(u, ENGINE_UNIT_STOP_FAILED, result);
        }
}

int engine_unit_new(EngineUnit **ret, sd_bus *bus, sd_event *event, const char *name,
                    EngineUnitCallback cb, void *userdata) {
        _cleanup_(engine_unit_freep) EngineUnit *u = NULL;
        int r;

        u = calloc(1, sizeof(EngineUnit));
        if (!u)
                return -ENOMEM;
        u->bus = sd_bus_ref(bus);
        u->event = sd_event_ref(event);
        u->callback = cb;
        u->userdata = userdata;
        u->name = strdup(name);
        if (!u->name)
                return -ENOMEM;
        r = sd_bus_path_encode("/org/freedesktop/systemd1/unit", name, &u->path);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(u);
        return 0;
}

EngineUnit *engine_unit_free(EngineUnit *u) {
        if (!u)
                return NULL;
        sd_bus_slot_unref(u->properties_slot);
        sd_bus_slot_unref(u->call_slot);
        sd_bus_slot_unref(u->pid_slot);
        sd_bus_slot_unref(u->state_slot);
        sd_bus_slot_unref(u->check_slot);
        sd_event_source_disable_unref(u->evaluate);
        sd_bus_unref(u->bus);
        sd_event_unref(u->event);
        free(u->name);
        free(u->path);
        free(u->start_job);
        free(u->stop_job);
        free(u->active_state);
        free(u->sub_state);
        free(u->result);
        return mfree(u);
}

static int append_property_bool(sd_bus_message *m, const char *name, bool b) {
        return sd_bus_message_append(m, "(sv)", name, "b", (int) b);
}

static int append_property_string(sd_bus_message *m, const char *name, const char *s) {
        return sd_bus_message_append(m, "(sv)", name, "s", s);
}

/* A property whose value is built piece by piece: (sv) open with the variant of signature. */
static int property_open(sd_bus_message *m, const char *name, const char *signature) {
        int r;

        r = sd_bus_message_open_container(m, 'r', "sv");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", name);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', signature);
        return r;
}

static int property_close(sd_bus_message *m) {
        int r;

        r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

/* An array property, "a" + element, left open for its elements; property_close_array() ends it. */
static int property_open_array(sd_bus_message *m, const char *name, const char *element) {
        char signature[16];
        int r;

        if (snprintf(signature, sizeof(signature), "a%s", element) >= (int) sizeof(signature))
                return -EINVAL;
        r = property_open(m, name, signature);
        return r < 0 ? r : sd_bus_message_open_container(m, 'a', element);
}

static int property_close_array(sd_bus_message *m) {
        int r = sd_bus_message_close_container(m);

        return r < 0 ? r : property_close(m);
}

/* systemd expands $VAR and ${VAR} in ExecStart= arguments when it starts the process; flags are
 * passed verbatim, so every '$' goes out as "$$", which systemd turns back into one '$'. */
static int append_argv_verbatim(sd_bus_message *m, char **argv) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "s");
        if (r < 0)
                return r;
        STRV_FOREACH(a, argv) {
                _cleanup_free_ char *e = NULL;
                size_t n = 0;
                char *t;

                for (const char *c = *a; *c; c++)
                        n += *c == '$' ? 2 : 1;
                e = malloc(n + 1);
                if (!e)
                        return -ENOMEM;
                t = e;
                for (const char *c = *a; *c; c++) {
                        *t++ = *c;
                        if (*c == '$')
                                *t++ = '$';
                }
                *t = '\0';
                r = sd_bus_message_append(m, "s", e);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

/* The directory under which the service manager that runs the unit creates RuntimeDirectory=:
 * /run for the system instance, $XDG_RUNTIME_DIR for a user instance (%t in a unit file; no
 * specifier is expanded in a property sent over the bus). The bus we ask systemd on tells which. */
static int manager_runtime_root(sd_bus *bus, const char **ret) {
        const char *scope, *e;
        int r;

        r = sd_bus_get_scope(bus, &scope);
        if (r < 0)
                return r;
        if (streq(scope, "system")) {
                *ret = "/run";
                return 0;
        }
        e = getenv("XDG_RUNTIME_DIR");
        if (!e || e[0] != '/')
                return -ENXIO;
        *ret = e;
        return 0;
}

/* work_directory: the absolute path of spec->work_directory, or NULL. */
static int append_properties(sd_bus_message *m, const EngineUnitSpec *spec, const char *work_directory) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r < 0)
                return r;

        r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)",
                                  "Description", "s", spec->description,
                                  "Slice", "s", spec->slice,
                                  "Type", "s", "exec",
                                  "SyslogIdentifier", "s", spec->syslog_identifier,
                                  "KillMode", "s", "control-group",
                                  "KillSignal", "i", (int32_t) SIGTERM,
                                  "TimeoutStopUSec", "t", (uint64_t) spec->stop_timeout,
                                  "CollectMode", "s", "inactive-or-failed");
        if (r < 0)
                return r;

        if (spec->user) {
                r = append_property_string(m, "User", spec->user);
                if (r < 0)
                        return r;
        }

        /* systemd opens the log file itself (append:), before the sandbox applies. */
        if (spec->log_file) {
                r = append_property_string(m, "StandardOutputFileToAppend", spec->log_file);
                if (r >= 0)
                        r = append_property_string(m, "StandardErrorFileToAppend", spec->log_file);
        } else {
                r = append_property_string(m, "StandardOutput", "journal");
                if (r >= 0)
                        r = append_property_string(m, "StandardError", "journal");
        }
        if (r < 0)
                return r;

        /* Sandboxing (B-SEC). Engines read models from anywhere and may write caches under their
         * home (vLLM, TGI), need /dev/nvidia* and JIT memory (CUDA), so: no PrivateDevices, no
         * MemoryDenyWriteExecute, ProtectSystem=full (/usr, /boot, /etc read-only) rather than
         * strict. What they get: no capabilities, even as root; no new privileges; the system
         * calls of an ordinary service, a forbidden one failing with EPERM rather than killing
         * the engine; IPv4, IPv6 and AF_UNIX sockets only; a private /tmp; a working directory
         * of their own, removed when the unit stops. */
        if (spec->sandbox) {
                static const char *const bools[] = {
                        "NoNewPrivileges", "PrivateTmp", "ProtectKernelModules", "RestrictSUIDSGID",
                        "LockPersonality", "RestrictRealtime",
                };
                /* These remount parts of /proc and /sys, which some containers and VMs refuse or
                 * get wrong (the engine fails with status 226/NAMESPACE, or sees a different /run);
                 * EngineSandbox=container drops them. */
                static const char *const kernel[] = {
                        "ProtectKernelTunables", "ProtectKernelLogs", "ProtectControlGroups",
                };

                for (size_t i = 0; r >= 0 && i < ELEMENTSOF(bools); i++)
                        r = append_property_bool(m, bools[i], true);
                for (size_t i = 0; r >= 0 && spec->protect_kernel && i < ELEMENTSOF(kernel); i++)
                        r = append_property_bool(m, kernel[i], true);
                if (r >= 0)
                        r = append_property_string(m, "ProtectSystem", "full");
                if (r >= 0)
                        r = sd_bus_message_append(m, "(sv)", "CapabilityBoundingSet", "t", UINT64_C(0));
                if (r >= 0)
                        r = sd_bus_message_append(m, "(sv)", "SystemCallFilter", "(bas)",
                                                  1, 1, "@system-service");
                if (r >= 0)
                        r = sd_bus_message_append(m, "(sv)", "SystemCallArchitectures", "as", 1, "native");
                if (r >= 0)
                        r = sd_bus_message_append(m, "(sv)", "SystemCallErrorNumber", "i", (int32_t) EPERM);
                if (r >= 0)
                        r = sd_bus_message_append(m, "(sv)", "RestrictAddressFamilies", "(bas)",
                                                  1, 3, "AF_UNIX", "AF_INET", "AF_INET6");
                if (r >= 0 && work_directory) {
                        r = sd_bus_message_append(m, "(sv)", "RuntimeDirectory", "as", 1, spec->work_directory);
                        if (r >= 0)
                                r = sd_bus_message_append(m, "(sv)", "RuntimeDirectoryMode", "u", 0700U);
                        if (r >= 0)
                                r = append_property_string(m, "WorkingDirectory", work_directory);
                }
                if (r < 0)
                        return r;
        }

        /* Device masks (issue 9): the device cgroup lets the engine open only the masked GPUs'
         * nodes and the common ones, whatever CUDA_VISIBLE_DEVICES says. systemd resolves each
         * path when the unit starts and drops a rule whose node is missing (placement warns). */
        if (spec->device_allow) {
                r = append_property_string(m, "DevicePolicy", "closed");
                if (r >= 0)
                        r = property_open_array(m, "DeviceAllow", "(ss)");
                for (char **d = spec->device_allow; r >= 0 && *d; d++)
                        r = sd_bus_message_append(m, "(ss)", *d, "rw");
                if (r >= 0)
                        r = property_close_array(m);
                if (r < 0)
                        return r;
        }

        r = property_open(m, "Environment", "as");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, spec->environment);
        if (r >= 0)
                r = property_close(m);
        if (r < 0)
                return r;

        /* LogExtraFields= (aay): journalctl POOL_ID=x shows the engine's lines with the daemon's. */
        if (spec->log_extra_fields && spec->log_extra_fields[0]) {
                r = property_open_array(m, "LogExtraFields", "ay");
                for (char **f = spec->log_extra_fields; r >= 0 && *f; f++)
                        r = sd_bus_message_append_array(m, 'y', *f, strlen(*f));
                if (r >= 0)
                        r = property_close_array(m);
                if (r < 0)
                        return r;
        }

        r = property_open_array(m, "ExecStart", "(sasb)");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "sasb");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", spec->argv[0]);
        if (r >= 0)
                r = append_argv_verbatim(m, spec->argv);
        if (r >= 0)
                r = sd_bus_message_append(m, "b", 0);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = property_close_array(m);
        if (r < 0)
                return r;

        return sd_bus_message_close_container(m);
}

int engine_unit_start(EngineUnit *u, const EngineUnitSpec *spec) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *work_directory = NULL;
        int r;

        if ((u->starting && !u->start_done) || u->stopping || u->call_slot)
                return -EBUSY;

        r = engine_unit_watch(u);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_call(u->bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           "StartTransientUnit");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "ss", u->name, "fail");
        if (r < 0)
                return r;
        if (spec->sandbox && spec->work_directory) {
                const char *root;

                r = manager_runtime_root(u->bus, &root);
                if (r < 0)
                        return r;
                work_directory = path_join(root, spec->work_directory);
                if (!work_directory)
                        return -ENOMEM;
        }
        r = append_properties(m, spec, work_directory);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r < 0)
                return r;

        r = sd_bus_call_async(u->bus, &u->call_slot, m, on_start_reply, u, 0);
        if (r < 0)
                return r;

        u->starting = true;
        u->start_done = false;
        u->exited = false;
        u->main_pid = 0;
        u->exec_main_code = u->exec_main_status = 0;
        u->active_state = mfree(u->active_state);
        u->result = mfree(u->result);
        return 0;
}

static int on_active_state(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        EngineUnit *u = userdata;
        const char *state = "inactive";

        u->state_slot = sd_bus_slot_unref(u->state_slot);

        /* An error means the unit is gone (exited and collected since it was listed). */
        if (!sd_bus_message_is_method_error(m, NULL) && sd_bus_message_read(m, "v", "s", &state) < 0)
                state = "inactive";
        if (!u->active_state || !u->exited)
                (void) free_and_strdup(&u->active_state, state);
        engine_unit_schedule_evaluate(u);
        return 0;
}

static int engine_unit_watch(EngineUnit *u) {
        if (u->properties_slot)
                return 0;
        /* Install the PropertiesChanged match before starting: otherwise an engine that exits
         * at once could change state before we listen (dbus-broker's launcher does the same).
         * Match installation is asynchronous but goes out on the same connection before the
         * next call, and the bus keeps the order. */
        return sd_bus_match_signal_async(u->bus, &u->properties_slot, SYSTEMD_SERVICE, u->path,
                                         "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                         on_properties_changed, NULL, u);
}

int engine_unit_adopt(EngineUnit *u) {
        int r;

        r = engine_unit_watch(u);
        if (r < 0)
                return r;

        u->starting = true;
        u->start_done = true;
        u->stopping = false;
        u->exited = false;
        u->main_pid = 0;

        r = sd_bus_call_method_async(u->bus, &u->pid_slot, SYSTEMD_SERVICE, u->path,
                                     "org.freedesktop.DBus.Properties", "Get", on_main_pid, u, "ss",
                                     "org.freedesktop.systemd1.Service", "MainPID");
        if (r < 0)
                return r;
        return sd_bus_call_method_async(u->bus, &u->state_slot, SYSTEMD_SERVICE, u->path,
                                        "org.freedesktop.DBus.Properties", "Get", on_active_state, u, "ss",
                                        "org.freedesktop.systemd1.Unit", "ActiveState");
}

static int on_get_unit(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        EngineUnit *u = userdata;
        const sd_bus_error *e;

        u->check_slot = sd_bus_slot_unref(u->check_slot);

        if (!sd_bus_message_is_method_error(m, NULL)) {
                engine_unit_emit(u, ENGINE_UNIT_LOADED, NULL);
                return 0;
        }
        e = sd_bus_message_get_error(m);
        if (sd_bus_error_has_name(e, "org.freedesktop.systemd1.NoSuchUnit")) {
                engine_unit_emit(u, ENGINE_UNIT_NOT_LOADED, NULL);
                return 0;
        }
        /* Cannot tell: let StartTransientUnit decide (it refuses a loaded unit itself). */
        log_debug("GetUnit(%s) failed: %s", u->name, e->message ?: e->name);
        engine_unit_emit(u, ENGINE_UNIT_NOT_LOADED, NULL);
        return 0;
}

int engine_unit_check(EngineUnit *u) {
        if (u->check_slot)
                return -EBUSY;
        return sd_bus_call_method_async(u->bus, &u->check_slot, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                        "GetUnit", on_get_unit, u, "s", u->name);
}

int engine_unit_stop(EngineUnit *u) {
        int r;

        if (u->stopping)
                return 0;

        /* A start call still in flight: its reply would race with ours; cancel our interest in
         * it, the stop job replaces the start job on systemd's side. */
        u->call_slot = sd_bus_slot_unref(u->call_slot);

        r = sd_bus_call_method_async(u->bus, &u->call_slot, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                     "StopUnit", on_stop_reply, u, "ss", u->name, "replace");
        if (r < 0)
                return r;
        u->stopping = true;
        return 0;
}

int engine_unit_describe_exit(const EngineUnit *u, char **ret) {
        char *s;
        int k;

        if (streq_ptr(u->result, "oom-kill"))
                k = asprintf(&s, "was killed by the OOM killer");
        else if (u->exec_main_code == CLD_EXITED && u->exec_main_status == 203)
                k = asprintf(&s, "could not be executed (status 203/EXEC)");
        else if (u->exec_main_code == CLD_EXITED)
                k = asprintf(&s, "exited with status %d", u->exec_main_status);
        else if (u->exec_main_code == CLD_KILLED || u->exec_main_code == CLD_DUMPED)
                k = asprintf(&s, "was killed by signal SIG%s%s",
                             sigabbrev_np(u->exec_main_status) ?: "UNKNOWN",
                             u->exec_main_code == CLD_DUMPED ? " (core dumped)" : "");
        else
                k = asprintf(&s, "stopped (result: %s)", strna(u->result));
        if (k < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

bool engine_unit_exit_was_clean(const EngineUnit *u) {
        return streq_ptr(u->result, "success");
}
