/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The one error vocabulary of pool-managerd: every failure an operation can report has a name
 * here, and that name alone decides what the outside sees of it: the machine-readable "code"
 * of an HTTP error body, the HTTP status, the D-Bus error name, poolctl's exit status. Nothing
 * above this table maps errno values to answers (-ENOENT used to mean both "unknown pool" and
 * "missing binary").
 *
 * Operations fill a PoolError (code + message) and return the code's errno, negated, so that
 * callers which only care whether it failed can test r < 0, and -ENOMEM stays -ENOMEM without a
 * PoolError. pool-errors(7)-style table: man/org.llorch.PoolManager1.5.scd, "ERRORS".
 */

#include <stdarg.h>
#include <stdbool.h>

#include "macro.h"

typedef enum PoolErrorCode {
        /* The request is wrong: fix it and try again. */
        POOL_ERROR_INVALID_REQUEST,             /* malformed body, unknown parameter, bad value */
        POOL_ERROR_INVALID_POOL_ID,
        POOL_ERROR_INVALID_PREPARED_ENGINE,     /* unknown/duplicate field, wrong type, port range ... */
        POOL_ERROR_BINARY_NOT_FOUND,
        POOL_ERROR_BINARY_NOT_EXECUTABLE,       /* a directory, not a regular file, no execute bit */
        POOL_ERROR_NO_SUCH_POOL,
        POOL_ERROR_NO_SUCH_DEVICE,              /* no GPU of that index or UUID */
        /* The request conflicts with the state of the pool or the node. */
        POOL_ERROR_NOT_RUNNING,
        POOL_ERROR_ALREADY_RUNNING,
        POOL_ERROR_BUSY,                        /* a drain, reload or preload is under way */
        POOL_ERROR_DRAINING,                    /* new leases are refused */
        POOL_ERROR_ORPHAN_UNIT,                 /* an engine unit this daemon did not start */
        POOL_ERROR_PORT_IN_USE,
        POOL_ERROR_HANDOFF_IN_USE,              /* another pool writes the same handoff file */
        POOL_ERROR_GPU_REQUIRED,                /* GpuOnly=yes and no usable GPU */
        POOL_ERROR_INSUFFICIENT_VRAM,
        POOL_ERROR_DEVICE_LOST,                 /* NVML cannot reach the GPU */
        POOL_ERROR_CANCELED,                    /* a stop ended the operation */
        POOL_ERROR_RELOAD_ABORTED,              /* the drain deadline passed; the old engine serves */
        /* The engine failed. */
        POOL_ERROR_ENGINE_FAILED,
        POOL_ERROR_HEALTH_TIMEOUT,
        POOL_ERROR_RELOAD_FAILED,
        /* The daemon. */
        POOL_ERROR_ACCESS_DENIED,
        POOL_ERROR_STARTING,                    /* start-up (re-adoption) is not complete yet */
        POOL_ERROR_INVALID_CONFIGURATION,       /* ReloadConfiguration(): the new files are bad */
        POOL_ERROR_FLEET_OFF,                   /* no Etcd= in [Fleet] */
        POOL_ERROR_FLEET_UNAVAILABLE,           /* etcd not read since start-up */
        POOL_ERROR_INTERNAL,
        /* HTTP only: the request never reached an operation. */
        POOL_ERROR_UNAUTHORIZED,                /* no or wrong bearer token */
        POOL_ERROR_NOT_FOUND,                   /* no such route */
        POOL_ERROR_METHOD_NOT_ALLOWED,
        POOL_ERROR_REQUEST_TIMEOUT,             /* [HTTP] RequestTimeoutSec= passed */
        POOL_ERROR_BODY_TOO_LARGE,
        POOL_ERROR_TOO_MANY_CONNECTIONS,        /* [HTTP] MaxConnections= */
        _POOL_ERROR_MAX,
        _POOL_ERROR_INVALID = -EINVAL,
} PoolErrorCode;

#define POOL_ERROR_BUS_PREFIX "org.llorch.PoolManager1.Error."

/* poolctl's exit statuses (poolctl(1), EXIT STATUS). */
#define POOL_EXIT_FAILURE 1
#define POOL_EXIT_USAGE 2
#define POOL_EXIT_NO_SUCH_POOL 3
#define POOL_EXIT_NOT_RUNNING 4                 /* the daemon is not reachable */
#define POOL_EXIT_ACCESS_DENIED 5
#define POOL_EXIT_CONFLICT 6                    /* the pool's or node's state refuses it */
#define POOL_EXIT_ENGINE_FAILED 7

typedef struct PoolErrorInfo {
        const char *code;                       /* "BINARY_NOT_FOUND" */
        const char *bus_name;                   /* full D-Bus error name; NULL: HTTP only */
        unsigned http_status;
        int exit_status;                        /* poolctl */
        int errno_value;                        /* what the operation returns, negated */
} PoolErrorInfo;

const PoolErrorInfo *pool_error_info(PoolErrorCode code);
const char *pool_error_code_to_string(PoolErrorCode code);
PoolErrorCode pool_error_code_from_string(const char *s);
/* The code whose D-Bus error name is name; _POOL_ERROR_INVALID for foreign names. */
PoolErrorCode pool_error_code_from_bus_name(const char *name);

typedef struct PoolError {
        PoolErrorCode code;
        char *message;                          /* may be NULL on OOM */
} PoolError;

#define POOL_ERROR_NULL ((PoolError) { .code = _POOL_ERROR_INVALID })

void pool_error_done(PoolError *e);
static inline bool pool_error_is_set(const PoolError *e) {
        return e && e->code >= 0;
}
/* Sets *e (may be NULL: nothing is kept) and returns the code's errno, negated. */
int pool_error_set(PoolError *e, PoolErrorCode code, const char *format, ...) _printf_(3, 4);
int pool_error_setv(PoolError *e, PoolErrorCode code, const char *format, va_list ap) _printf_(3, 0);
/* Copies src into *e. */
int pool_error_copy(PoolError *e, const PoolError *src);
/* The message, or the code's name when there is none. */
const char *pool_error_message(const PoolError *e);
