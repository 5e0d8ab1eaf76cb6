/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool-error.h"
#include "string-util.h"

#define BUS(name) POOL_ERROR_BUS_PREFIX name
#define BUS_FAILED "org.freedesktop.DBus.Error.Failed"
#define BUS_ACCESS_DENIED "org.freedesktop.DBus.Error.AccessDenied"

static const PoolErrorInfo table[_POOL_ERROR_MAX] = {
        [POOL_ERROR_INVALID_REQUEST]         = { "INVALID_REQUEST",         BUS("InvalidArgument"),       400, POOL_EXIT_USAGE,          EINVAL },
        [POOL_ERROR_INVALID_POOL_ID]         = { "INVALID_POOL_ID",         BUS("InvalidArgument"),       400, POOL_EXIT_USAGE,          EINVAL },
        [POOL_ERROR_INVALID_PREPARED_ENGINE] = { "INVALID_PREPARED_ENGINE", BUS("InvalidPreparedEngine"), 422, POOL_EXIT_USAGE,          EINVAL },
        [POOL_ERROR_BINARY_NOT_FOUND]        = { "BINARY_NOT_FOUND",        BUS("BinaryNotFound"),        422, POOL_EXIT_USAGE,          ENOENT },
        [POOL_ERROR_BINARY_NOT_EXECUTABLE]   = { "BINARY_NOT_EXECUTABLE",   BUS("BinaryNotExecutable"),   422, POOL_EXIT_USAGE,          EACCES },
        [POOL_ERROR_NO_SUCH_POOL]            = { "NO_SUCH_POOL",            BUS("NoSuchPool"),            404, POOL_EXIT_NO_SUCH_POOL,   ENOENT },
        [POOL_ERROR_NO_SUCH_DEVICE]          = { "NO_SUCH_DEVICE",          BUS("NoSuchDevice"),          404, POOL_EXIT_NO_SUCH_POOL,   ENODEV },
        [POOL_ERROR_NOT_RUNNING]             = { "NOT_RUNNING",             BUS("NotRunning"),            409, POOL_EXIT_CONFLICT,       ESRCH },
        [POOL_ERROR_ALREADY_RUNNING]         = { "ALREADY_RUNNING",         BUS("AlreadyRunning"),        409, POOL_EXIT_CONFLICT,       EBUSY },
        [POOL_ERROR_BUSY]                    = { "BUSY",                    BUS("Busy"),                  409, POOL_EXIT_CONFLICT,       EBUSY },
        [POOL_ERROR_DRAINING]                = { "DRAINING",                BUS("Draining"),              409, POOL_EXIT_CONFLICT,       EBUSY },
        [POOL_ERROR_ORPHAN_UNIT]             = { "ORPHAN_UNIT",             BUS("OrphanUnit"),            409, POOL_EXIT_CONFLICT,       EBUSY },
        [POOL_ERROR_PORT_IN_USE]             = { "PORT_IN_USE",             BUS("PortInUse"),             409, POOL_EXIT_CONFLICT,       EADDRINUSE },
        [POOL_ERROR_HANDOFF_IN_USE]          = { "HANDOFF_IN_USE",          BUS("HandoffInUse"),          409, POOL_EXIT_CONFLICT,       EEXIST },
        [POOL_ERROR_GPU_REQUIRED]            = { "GPU_REQUIRED",            BUS("GpuRequired"),           409, POOL_EXIT_CONFLICT,       ENODEV },
        [POOL_ERROR_INSUFFICIENT_VRAM]       = { "INSUFFICIENT_VRAM",       BUS("InsufficientVram"),      409, POOL_EXIT_CONFLICT,       ENOSPC },
        [POOL_ERROR_DEVICE_LOST]             = { "DEVICE_LOST",             BUS("DeviceLost"),            409, POOL_EXIT_CONFLICT,       EBUSY },
        [POOL_ERROR_CANCELED]                = { "CANCELED",                BUS("Canceled"),              409, POOL_EXIT_CONFLICT,       ECANCELED },
        [POOL_ERROR_RELOAD_ABORTED]          = { "RELOAD_ABORTED",          BUS("ReloadAborted"),         409, POOL_EXIT_CONFLICT,       ETIMEDOUT },
        [POOL_ERROR_ENGINE_FAILED]           = { "ENGINE_FAILED",           BUS("EngineFailed"),          502, POOL_EXIT_ENGINE_FAILED,  EIO },
        [POOL_ERROR_HEALTH_TIMEOUT]          = { "HEALTH_TIMEOUT",          BUS("HealthTimeout"),         504, POOL_EXIT_ENGINE_FAILED,  ETIMEDOUT },
        [POOL_ERROR_RELOAD_FAILED]           = { "RELOAD_FAILED",           BUS("ReloadFailed"),          502, POOL_EXIT_ENGINE_FAILED,  EIO },
        [POOL_ERROR_ACCESS_DENIED]           = { "ACCESS_DENIED",           BUS_ACCESS_DENIED,            403, POOL_EXIT_ACCESS_DENIED,  EACCES },
        [POOL_ERROR_STARTING]                = { "STARTING",                BUS("Starting"),              503, POOL_EXIT_FAILURE,        EAGAIN },
        [POOL_ERROR_INVALID_CONFIGURATION]   = { "INVALID_CONFIGURATION",   BUS("InvalidConfiguration"),  422, POOL_EXIT_FAILURE,        EINVAL },
        [POOL_ERROR_FLEET_OFF]               = { "FLEET_OFF",               BUS("FleetOff"),              404, POOL_EXIT_FAILURE,        EOPNOTSUPP },
        [POOL_ERROR_FLEET_UNAVAILABLE]       = { "FLEET_UNAVAILABLE",       BUS("FleetUnavailable"),      503, POOL_EXIT_FAILURE,        ENODATA },
        [POOL_ERROR_INTERNAL]                = { "INTERNAL",                BUS_FAILED,                   500, POOL_EXIT_FAILURE,        EIO },
        [POOL_ERROR_UNAUTHORIZED]            = { "UNAUTHORIZED",            NULL,                         401, POOL_EXIT_ACCESS_DENIED,  EACCES },
        [POOL_ERROR_NOT_FOUND]               = { "NOT_FOUND",               NULL,                         404, POOL_EXIT_FAILURE,        ENOENT },
        [POOL_ERROR_METHOD_NOT_ALLOWED]      = { "METHOD_NOT_ALLOWED",      NULL,                         405, POOL_EXIT_FAILURE,        EINVAL },
        [POOL_ERROR_REQUEST_TIMEOUT]         = { "REQUEST_TIMEOUT",         NULL,                         408, POOL_EXIT_FAILURE,        ETIMEDOUT },
        [POOL_ERROR_BODY_TOO_LARGE]          = { "BODY_TOO_LARGE",          NULL,                         413, POOL_EXIT_FAILURE,        EFBIG },
        [POOL_ERROR_TOO_MANY_CONNECTIONS]    = { "TOO_MANY_CONNECTIONS",    NULL,                         503, POOL_EXIT_FAILURE,        EAGAIN },
};

const PoolErrorInfo *pool_error_info(PoolErrorCode code) {
        if (code < 0 || code >= _POOL_ERROR_MAX)
                return &table[POOL_ERROR_INTERNAL];
        return &table[code];
}

const char *pool_error_code_to_string(PoolErrorCode code) {
        if (code < 0 || code >= _POOL_ERROR_MAX)
                return NULL;
        return table[code].code;
}

PoolErrorCode pool_error_code_from_string(const char *s) {
        for (PoolErrorCode i = 0; i < _POOL_ERROR_MAX; i++)
                if (streq_ptr(s, table[i].code))
                        return i;
        return _POOL_ERROR_INVALID;
}

PoolErrorCode pool_error_code_from_bus_name(const char *name) {
        /* Several codes share InvalidArgument: the first one is the generic one. */
        for (PoolErrorCode i = 0; i < _POOL_ERROR_MAX; i++)
                if (table[i].bus_name && streq_ptr(name, table[i].bus_name))
                        return i;
        return _POOL_ERROR_INVALID;
}

void pool_error_done(PoolError *e) {
        if (!e)
                return;
        e->message = mfree(e->message);
        e->code = _POOL_ERROR_INVALID;
}

int pool_error_setv(PoolError *e, PoolErrorCode code, const char *format, va_list ap) {
        if (e) {
                free(e->message);
                e->code = code;
                if (vasprintf(&e->message, format, ap) < 0)
                        e->message = NULL;
        }
        return -pool_error_info(code)->errno_value;
}

int pool_error_set(PoolError *e, PoolErrorCode code, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = pool_error_setv(e, code, format, ap);
        va_end(ap);
        return r;
}

int pool_error_copy(PoolError *e, const PoolError *src) {
        char *m = NULL;

        if (src->message) {
                m = strdup(src->message);
                if (!m)
                        return -ENOMEM;
        }
        free(e->message);
        e->message = m;
        e->code = src->code;
        return 0;
}

const char *pool_error_message(const PoolError *e) {
        if (!e)
                return "unknown error";
        return e->message ?: pool_error_code_to_string(e->code) ?: "unknown error";
}
