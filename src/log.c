/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Logging to the journal with structured fields, or to stderr. The target is chosen once:
 * journal when /run/systemd/journal/socket exists and stderr is not a terminal (the daemon
 * under systemd), console otherwise (a developer at a terminal, the unit tests).
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"

static int log_max_level = LOG_INFO;
static LogTarget log_target = LOG_TARGET_AUTO;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit", [LOG_ERR] = "error",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_setup(LogTarget target) {
        const char *e;

        e = getenv("POOL_MANAGERD_LOG_LEVEL");
        if (e)
                for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                        if (streq(e, level_names[i]))
                                log_max_level = (int) i;

        e = getenv("POOL_MANAGERD_LOG_TARGET");
        if (target == LOG_TARGET_AUTO && e) {
                if (streq(e, "journal"))
                        target = LOG_TARGET_JOURNAL;
                else if (streq(e, "console"))
                        target = LOG_TARGET_CONSOLE;
        }
        if (target == LOG_TARGET_AUTO)
                target = access("/run/systemd/journal/socket", W_OK) >= 0 && !isatty(STDERR_FILENO) ?
                        LOG_TARGET_JOURNAL : LOG_TARGET_CONSOLE;
        log_target = target;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

bool log_to_journal(void) {
        return log_target == LOG_TARGET_JOURNAL;
}

static void log_console(int level, const char *message) {
        fprintf(stderr, "%s: %s\n", level_names[level & 7], message);
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        int r;

        if (error < 0)
                error = -error;
        if (level > log_max_level)
                return -error;

        errno = error;
        va_start(ap, format);
        r = vasprintf(&m, format, ap);
        va_end(ap);
        if (r < 0)
                return -error;

        if (log_target == LOG_TARGET_JOURNAL) {
                char code_file[256], code_line[32];

                (void) snprintf(code_file, sizeof(code_file), "CODE_FILE=%s", strempty(file));
                (void) snprintf(code_line, sizeof(code_line), "CODE_LINE=%i", line);
                if (sd_journal_send_with_location(code_file, code_line, strempty(func),
                                                  "MESSAGE=%s", m,
                                                  "PRIORITY=%i", level,
                                                  "SYSLOG_IDENTIFIER=%s", program_invocation_short_name,
                                                  error > 0 ? "ERRNO=%i" : NULL, error,
                                                  NULL) >= 0)
                        return -error;
        }

        log_console(level, m);
        return -error;
}

int log_struct_internal(int level, int error, const char *file, int line, const char *func,
                        const char *format, ...) {
        struct iovec iov[64];
        char *fields[64] = {};
        size_t n = 0;
        const char *message = NULL;
        va_list ap;

        if (error < 0)
                error = -error;
        if (level > log_max_level)
                return -error;

        /* Format every "FIELD=fmt", args... pair into its own string. Each pair consumes
         * exactly the arguments its format names, which vasprintf() with a va_copy cannot
         * skip, so the formats are restricted to the common conversions handled below. */
        va_start(ap, format);
        for (const char *f = format; f && n < ELEMENTSOF(fields) - 3; f = va_arg(ap, const char *)) {
                va_list aq;
                char *s;

                errno = error;
                va_copy(aq, ap);
                if (vasprintf(&s, f, aq) < 0) {
                        va_end(aq);
                        break;
                }
                va_end(aq);
                fields[n++] = s;

                /* Advance ap past the arguments consumed by this format. */
                for (const char *p = f; (p = strchr(p, '%')); ) {
                        p++;
                        if (*p == '%') {
                                p++;
                                continue;
                        }
                        bool l = false, ll = false, z = false;
                        while (strchr("-+ #0123456789.", *p))
                                p++;
                        if (*p == 'l') {
                                l = true;
                                p++;
                                if (*p == 'l') {
                                        ll = true;
                                        p++;
                                }
                        } else if (*p == 'z' || *p == 'j') {
                                z = true;
                                p++;
                        } else if (*p == 'h') {
                                p++;
                                if (*p == 'h')
                                        p++;
                        }
                        switch (*p) {
                        case 's': case 'p':
                                (void) va_arg(ap, void *);
                                break;
                        case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': case 'c':
                                if (ll)
                                        (void) va_arg(ap, long long);
                                else if (l)
                                        (void) va_arg(ap, long);
                                else if (z)
                                        (void) va_arg(ap, size_t);
                                else
                                        (void) va_arg(ap, int);
                                break;
                        case 'f': case 'g': case 'e':
                                (void) va_arg(ap, double);
                                break;
                        case 'm':
                        default:
                                break;
                        }
                        if (*p)
                                p++;
                }
        }
        va_end(ap);

        for (size_t i = 0; i < n; i++)
                if (strneq(fields[i], "MESSAGE=", 8))
                        message = fields[i] + 8;

        if (log_target == LOG_TARGET_JOURNAL) {
                char prio[32], err[32], ident[128], code_file[256], code_line[32];
                size_t k = 0;

                /* A field that formats to nothing ("%s%s" with "", "") is left out. */
                for (size_t i = 0; i < n; i++)
                        if (fields[i][0])
                                iov[k++] = (struct iovec) { fields[i], strlen(fields[i]) };
                (void) snprintf(prio, sizeof(prio), "PRIORITY=%i", level);
                iov[k++] = (struct iovec) { prio, strlen(prio) };
                (void) snprintf(ident, sizeof(ident), "SYSLOG_IDENTIFIER=%s", program_invocation_short_name);
                iov[k++] = (struct iovec) { ident, strlen(ident) };
                if (error > 0) {
                        (void) snprintf(err, sizeof(err), "ERRNO=%i", error);
                        iov[k++] = (struct iovec) { err, strlen(err) };
                }
                (void) snprintf(code_file, sizeof(code_file), "CODE_FILE=%s", strempty(file));
                (void) snprintf(code_line, sizeof(code_line), "CODE_LINE=%i", line);

                if (sd_journal_sendv_with_location(code_file, code_line, strempty(func), iov, (int) k) >= 0)
                        goto finish;
        }

        log_console(level, message ?: "(no message)");
finish:
        for (size_t i = 0; i < n; i++)
                free(fields[i]);
        return -error;
}
