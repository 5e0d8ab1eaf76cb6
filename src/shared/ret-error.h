/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Functions that do not log but must say what went wrong take `char **ret_error` (may be NULL, else
 * pointing to NULL) and end with
 *
 *         return ret_error_set(ret_error, -EBADMSG, "truncated netlink message (%zu bytes)", n);
 *
 * The message is for the caller to put into its own log line or last_error. On OOM *ret_error
 * stays NULL; the error code is returned either way.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "macro.h"

_printf_(3, 4) static inline int ret_error_set(char **ret_error, int r, const char *format, ...) {
        va_list ap;
        int saved_errno = errno;        /* for %m */

        if (!ret_error)
                return r;
        free(*ret_error);
        errno = saved_errno;
        va_start(ap, format);
        if (vasprintf(ret_error, format, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return r;
}
