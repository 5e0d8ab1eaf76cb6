/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Logging: structured journal entries through sd_journal_send() when journald is reachable
 * and stderr is not a terminal, plain "<level>: message" lines on stderr otherwise.
 *
 *   log_info("Listening on %s", addr);
 *   return log_error_errno(r, "Failed to start unit \"%s\": %m", unit);
 *   log_struct(LOG_INFO,
 *              LOG_MESSAGE_ID(MESSAGE_ENGINE_READY),
 *              "POOL_ID=%s", id,
 *              LOG_MESSAGE("Pool \"%s\" is ready", id),
 *              NULL);
 *
 * The *_errno variants set errno for %m and return -abs(error).
 */

#include <stdarg.h>
#include <syslog.h>

#include "shared/macro.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO,
        LOG_TARGET_JOURNAL,
        LOG_TARGET_CONSOLE,
} LogTarget;

void log_setup(LogTarget target);
void log_set_max_level(int level);
int log_get_max_level(void);
/* True when entries go to the journal (as opposed to stderr). */
bool log_to_journal(void);

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(6, 7);
/* Variadic list of "FIELD=format" strings each followed by its arguments, ending with NULL. */
int log_struct_internal(int level, int error, const char *file, int line, const char *func,
                        const char *format, ...) _sentinel_;

#define log_full_errno(level, error, ...) \
        log_internal((level), (error), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full(level, ...) log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, (error), __VA_ARGS__)
#define log_info_errno(error, ...) log_full_errno(LOG_INFO, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, (error), __VA_ARGS__)

#define log_oom() log_error_errno(ENOMEM, "Out of memory.")

#define log_struct_errno(level, error, ...) \
        log_struct_internal((level), (error), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_struct(level, ...) log_struct_errno((level), 0, __VA_ARGS__)

#define LOG_MESSAGE(fmt, ...) "MESSAGE=" fmt, ##__VA_ARGS__
#define LOG_MESSAGE_ID(id) "MESSAGE_ID=" id

/* MESSAGE_IDs for lifecycle events (generated with systemd-id128 new). */
#define MESSAGE_DAEMON_STARTED          "4c88de0def93488a8c692a3670440358"
#define MESSAGE_ENGINE_STARTING         "b27c621a55f7417f8338f85e48bdd652"
#define MESSAGE_ENGINE_READY            "0c1727b0c5214e3f8210c1af028737e1"
#define MESSAGE_ENGINE_FAILED           "11fb3b6e511549e6bfb033c32882c031"
#define MESSAGE_ENGINE_EXITED           "a9c67e90bd4f4c2abc598512cf3a98d3"
#define MESSAGE_ENGINE_STOPPED          "2b4d85210c80474f9127f27ff694e7bc"
#define MESSAGE_FLEET_CONNECTED         "57153978f8b848d89cdc94e35178395a"
#define MESSAGE_FLEET_DISCONNECTED      "fb19f8f1fced4feaae6104da270b9833"
#define MESSAGE_FLEET_LEASE_LOST        "700d219aa47c4322822f337215a48fe2"
