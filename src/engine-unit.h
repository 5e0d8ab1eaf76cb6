/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Client side of org.freedesktop.systemd1 for one engine unit: StartTransientUnit, StopUnit,
 * the unit's PropertiesChanged signals and its jobs' JobRemoved signals. Every call is
 * asynchronous; the owner learns what happened through one callback with an event code.
 *
 * The manager-wide JobRemoved match and Subscribe() live in the Manager, which forwards
 * JobRemoved to the unit by name (engine_unit_job_removed()).
 */

#include <stdbool.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "shared/macro.h"
#include "shared/time-util.h"

typedef enum EngineUnitEvent {
        ENGINE_UNIT_STARTED,            /* start job done: the main process was exec'd */
        ENGINE_UNIT_START_FAILED,       /* the call or the start job failed; see error */
        ENGINE_UNIT_EXITED,             /* the unit went inactive/failed; see exit fields */
        ENGINE_UNIT_STOPPED,            /* the stop job completed (or the unit was already gone) */
        ENGINE_UNIT_STOP_FAILED,        /* StopUnit could not be issued; see error */
        ENGINE_UNIT_MAIN_PID,           /* main_pid became known */
        ENGINE_UNIT_LOADED,             /* engine_unit_check(): systemd has the unit loaded */
        ENGINE_UNIT_NOT_LOADED,         /* engine_unit_check(): no such unit, free to start */
} EngineUnitEvent;

typedef struct EngineUnit EngineUnit;
typedef void (*EngineUnitCallback)(EngineUnit *u, EngineUnitEvent event, const char *error, void *userdata);

/* What a transient engine unit is made of. */
typedef struct EngineUnitSpec {
        const char *description;
        const char *slice;
        const char *syslog_identifier;
        char **argv;                    /* argv[0] is the absolute binary path */
        char **environment;             /* "NAME=value" */
        char **log_extra_fields;        /* LogExtraFields=: "FIELD=value" on every journal entry */
        const char *log_file;           /* NULL: journal; else appended to (systemd's append:) */
        usec_t stop_timeout;
        const char *user;               /* User=, NULL: the manager's own (root for the system one) */
        bool sandbox;                   /* apply the sandboxing settings at all */
        bool protect_kernel;            /* ProtectKernel{Tunables,Logs}=, ProtectControlGroups= (remounts) */
        const char *work_directory;     /* with sandbox: RuntimeDirectory= (0700, the engine's own) and
                                         * WorkingDirectory=, relative to the manager's runtime
                                         * directory (/run, $XDG_RUNTIME_DIR); NULL: neither */
        char **device_allow;            /* DevicePolicy=closed and DeviceAllow=<node> rw for each; NULL:
                                         * no device policy */
} EngineUnitSpec;

struct EngineUnit {
        sd_bus *bus;
        sd_event *event;
        char *name;                     /* pool-engine-x.service */
        char *path;                     /* its object path */

        EngineUnitCallback callback;
        void *userdata;

        sd_bus_slot *properties_slot;
        sd_bus_slot *call_slot;         /* StartTransientUnit or StopUnit in flight */
        sd_bus_slot *pid_slot;
        sd_bus_slot *state_slot;
        sd_bus_slot *check_slot;        /* GetUnit of engine_unit_check() */
        sd_event_source *evaluate;      /* deferred evaluation of the unit's state */
        char *start_job;
        char *stop_job;
        bool starting, stopping, start_done, exited;

        /* Last known state from PropertiesChanged. */
        char *active_state;
        char *sub_state;
        char *result;
        pid_t main_pid;
        char invocation_id[33];         /* InvocationID as 32 hex digits, "" while not known */
        int exec_main_code;             /* CLD_EXITED, CLD_KILLED, CLD_DUMPED, 0 */
        int exec_main_status;
};

int engine_unit_new(EngineUnit **ret, sd_bus *bus, sd_event *event, const char *name,
                    EngineUnitCallback cb, void *userdata);
EngineUnit *engine_unit_free(EngineUnit *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(EngineUnit *, engine_unit_free);

/* Installs the PropertiesChanged match, then calls StartTransientUnit. */
int engine_unit_start(EngineUnit *u, const EngineUnitSpec *spec);
/* Follows a unit that already runs (started before a daemon restart): installs the match and
 * reads MainPID and ActiveState; a unit that is gone is reported as ENGINE_UNIT_EXITED. */
int engine_unit_adopt(EngineUnit *u);
/* Asks systemd whether a unit of this name is loaded (GetUnit): ENGINE_UNIT_LOADED or
 * ENGINE_UNIT_NOT_LOADED follows. A preload checks first, so that a unit this daemon does not
 * know (left by someone else) is tracked and refused instead of clashing with
 * StartTransientUnit. */
int engine_unit_check(EngineUnit *u);
/* StopUnit with mode "replace": systemd sends SIGTERM, waits TimeoutStopSec, then SIGKILL. */
int engine_unit_stop(EngineUnit *u);
/* Forwarded by the Manager's JobRemoved match. */
void engine_unit_job_removed(EngineUnit *u, const char *job, const char *result);

/* "exited with status 2", "killed by signal SEGV", "was killed by the OOM killer", ... */
int engine_unit_describe_exit(const EngineUnit *u, char **ret);
bool engine_unit_exit_was_clean(const EngineUnit *u);
