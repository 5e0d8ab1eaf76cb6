/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * poolctl: the command-line client of pool-managerd, in the spirit of systemctl. It talks to
 * org.llorch.PoolManager1 on the system bus (or the user bus with --user) with synchronous
 * sd-bus calls, prints tables, status views or JSON, and maps D-Bus errors onto a small set of
 * documented exit statuses (see poolctl(1)). "logs" does not go through the daemon at all: it
 * execs journalctl for the engine's unit, so it works while the daemon is down too.
 */

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>

#include "build-config.h"
#include "escape.h"
#include "fileio.h"
#include "gpu-device.h"
#include "json-util.h"
#include "macro.h"
#include "pool-error.h"
#include "pool-properties.h"
#include "string-util.h"
#include "strv.h"
#include "time-util.h"

#define BUS_NAME "org.llorch.PoolManager1"
#define MANAGER_PATH "/org/llorch/PoolManager1"
#define MANAGER_IFACE "org.llorch.PoolManager1.Manager"
#define POOL_PATH_PREFIX "/org/llorch/PoolManager1/pool"
#define POOL_IFACE "org.llorch.PoolManager1.Pool"

/* Exit statuses, documented in poolctl(1): the daemon's errors map through the table of
 * shared/pool-error.c; these are poolctl's own. */
#define EXIT_USAGE POOL_EXIT_USAGE
#define EXIT_NOT_RUNNING POOL_EXIT_NOT_RUNNING
#define EXIT_ACCESS_DENIED POOL_EXIT_ACCESS_DENIED

/* Preload replies only once the engine is ready or has failed, which can take minutes (model
 * loading); the other state-changing calls wait for units to stop. sd-bus's default of 25 s is
 * too short for all of them. */
#define LONG_CALL_TIMEOUT_USEC (10 * USEC_PER_MINUTE)
/* Extra time granted to a Drain call beyond its own deadline, for the stop that follows it. */
#define DRAIN_CALL_SLACK_USEC (1 * USEC_PER_MINUTE)
#define DEFAULT_DRAIN_DEADLINE_MS 30000
#define PREPARED_JSON_MAX (64U * 1024U)
#define DEFAULT_LOG_LINES 100

static bool arg_user = false;
static bool arg_json = false;
static bool arg_legend = true;
static usec_t arg_timeout = 0;                  /* 0: the per-call default */
static uint64_t arg_deadline_ms = DEFAULT_DRAIN_DEADLINE_MS;
static bool arg_deadline_set = false;
static bool arg_follow = false;
static unsigned arg_lines = DEFAULT_LOG_LINES;
static bool arg_lines_set = false;

/* Messages go to stderr as "poolctl: message", whatever the verb. */
_printf_(1, 0)
static void log_errorv(const char *format, va_list ap) {
        fprintf(stderr, "%s: ", program_invocation_short_name);
        vfprintf(stderr, format, ap);
        fputc('\n', stderr);
}

_printf_(1, 2)
static void log_error(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        log_errorv(format, ap);
        va_end(ap);
}

/* Sets errno for %m and returns r (a negative errno). */
_printf_(2, 3)
static int log_error_errno(int r, const char *format, ...) {
        va_list ap;

        errno = r < 0 ? -r : r;
        va_start(ap, format);
        log_errorv(format, ap);
        va_end(ap);
        return r < 0 ? r : -r;
}

static int log_oom(void) {
        return log_error_errno(-ENOMEM, "Out of memory.");
}

/* Logs a usage error and returns the exit status for it. */
_printf_(1, 2)
static int log_usage(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        log_errorv(format, ap);
        va_end(ap);
        return EXIT_USAGE;
}

static const char *bus_error_message(const sd_bus_error *e, int r) {
        if (e && e->message)
                return e->message;
        return strerror(r < 0 ? -r : r);
}

/*
 * Logs a failed call ("<what>: <the daemon's message>") and returns the exit status for it,
 * like systemctl's translate_bus_error_to_exit_status(). The daemon's InvalidArgument is a
 * usage error: its message names the offending field of what the user passed.
 */
_printf_(3, 4)
static int log_bus_error(int r, const sd_bus_error *e, const char *format, ...) {
        _cleanup_free_ char *what = NULL;
        PoolErrorCode code;
        va_list ap;
        int k;

        /* ServiceUnknown when the bus would have to activate the name and cannot (the user bus,
         * or no activation file), NameHasNoOwner when activation is off for the call. */
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
            sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                log_error("pool-managerd is not running on the %s bus.", arg_user ? "user" : "system");
                return EXIT_NOT_RUNNING;
        }

        va_start(ap, format);
        k = vasprintf(&what, format, ap);
        va_end(ap);
        if (k < 0)
                return log_oom();

        log_error("%s: %s", what, bus_error_message(e, r));

        /* The daemon's error names map to exit statuses through the one table. */
        code = pool_error_code_from_bus_name(e ? e->name : NULL);
        if (code >= 0)
                return pool_error_info(code)->exit_status;
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED))
                return EXIT_ACCESS_DENIED;
        return EXIT_FAILURE;
}

static bool on_tty(void) {
        return isatty(STDOUT_FILENO) > 0;
}

static bool colors_enabled(void) {
        const char *term = getenv("TERM");

        return on_tty() && !getenv("NO_COLOR") && term && !streq(term, "dumb");
}

static size_t columns(void) {
        const char *e = getenv("COLUMNS");
        struct winsize ws = {};

        if (e) {
                char *end;
                unsigned long c;

                errno = 0;
                c = strtoul(e, &end, 10);
                if (errno == 0 && end != e && *end == '\0' && c > 0 && c < 100000)
                        return c;
        }
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) >= 0 && ws.ws_col > 0)
                return ws.ws_col;
        return 80;
}

/* Display width of a UTF-8 string: its code points (good enough for ids, versions, messages). */
static size_t utf8_width(const char *s) {
        size_t n = 0;

        for (; *s; s++)
                if (((unsigned char) *s & 0xC0) != 0x80)
                        n++;
        return n;
}

/*
 * A copy of s fit for one line of a table or status view: control characters (a multi-line
 * engine error) become spaces, and with width != SIZE_MAX it is cut to width code points,
 * the last three being "...".
 */
static char *one_line(const char *s, size_t width) {
        size_t n = 0, cut = SIZE_MAX, i, w = 0;
        char *t;

        if (width != SIZE_MAX && utf8_width(s) > width) {
                size_t keep = width > 3 ? width - 3 : 0;

                for (i = 0; s[i]; i++) {
                        if (((unsigned char) s[i] & 0xC0) != 0x80) {
                                if (w == keep)
                                        break;
                                w++;
                        }
                }
                cut = i;
        }

        t = malloc(strlen(s) + 4);
        if (!t)
                return NULL;
        for (i = 0; s[i] && i < cut; i++)
                t[n++] = (unsigned char) s[i] < 0x20 || s[i] == 0x7F ? ' ' : s[i];
        if (cut != SIZE_MAX) {
                memcpy(t + n, "...", 3);
                n += 3;
        }
        t[n] = '\0';
        return t;
}

/* What the Pool interface's properties say about one pool. */
typedef struct PoolInfo {
        char *path;
        char *pool_id;
        char *replica_id;
        char *state;
        int live;
        int ready;
        int draining;
        char *last_error;
        uint32_t active_leases;
        int32_t slots_total;
        int32_t slots_free;
        char *engine_version;
        char *device_mask;
        char *unit;
        uint32_t main_pid;
        char *url;
        char *handoff_path;
        uint64_t last_heartbeat_usec;

        /* Every property the daemon published, by the index of the table of pool-properties.c:
         * what status and --json show. */
        PoolPropertyValue values[POOL_PROPERTIES_MAX];
        char *strings[POOL_PROPERTIES_MAX];
} PoolInfo;

static void pool_info_done(PoolInfo *p) {
        for (size_t i = 0; i < POOL_PROPERTIES_MAX; i++)
                free(p->strings[i]);
        free(p->path);
        free(p->pool_id);
        free(p->replica_id);
        free(p->state);
        free(p->last_error);
        free(p->engine_version);
        free(p->device_mask);
        free(p->unit);
        free(p->url);
        free(p->handoff_path);
}

#define POOL_INFO_INIT { .slots_total = -1, .slots_free = -1 }

typedef struct PoolInfoArray {
        PoolInfo *pools;
        size_t n;
} PoolInfoArray;

static void pool_info_array_done(PoolInfoArray *a) {
        for (size_t i = 0; i < a->n; i++)
                pool_info_done(&a->pools[i]);
        free(a->pools);
}

typedef struct PropertyMap {
        const char *name;
        char type;              /* D-Bus type of the property: s, b, u, i or t */
        size_t offset;
} PropertyMap;

static const PropertyMap pool_properties_map[] = {
        { "PoolId",            's', offsetof(PoolInfo, pool_id)             },
        { "ReplicaId",         's', offsetof(PoolInfo, replica_id)          },
        { "State",             's', offsetof(PoolInfo, state)               },
        { "Live",              'b', offsetof(PoolInfo, live)                },
        { "Ready",             'b', offsetof(PoolInfo, ready)               },
        { "Draining",          'b', offsetof(PoolInfo, draining)            },
        { "LastError",         's', offsetof(PoolInfo, last_error)          },
        { "ActiveLeases",      'u', offsetof(PoolInfo, active_leases)       },
        { "SlotsTotal",        'i', offsetof(PoolInfo, slots_total)         },
        { "SlotsFree",         'i', offsetof(PoolInfo, slots_free)          },
        { "EngineVersion",     's', offsetof(PoolInfo, engine_version)      },
        { "DeviceMask",        's', offsetof(PoolInfo, device_mask)         },
        { "Unit",              's', offsetof(PoolInfo, unit)                },
        { "MainPID",           'u', offsetof(PoolInfo, main_pid)            },
        { "Url",               's', offsetof(PoolInfo, url)                 },
        { "HandoffPath",       's', offsetof(PoolInfo, handoff_path)        },
        { "LastHeartbeatUSec", 't', offsetof(PoolInfo, last_heartbeat_usec) },
        {}
};

static void pool_info_set_typed(PoolInfo *info, const char *name, const PoolPropertyValue *v);

/*
 * Reads the variant of a property of the table into info->values (and, for the properties the
 * list shows, its typed field). Returns 1 when read, 0 when the daemon sent another type (an
 * older or newer daemon: the caller skips it).
 */
static int read_table_value(sd_bus_message *m, const PoolProperty *pp, PoolInfo *info) {
        const char *sig = pool_property_signature(pp);
        size_t i = (size_t) (pp - pool_properties);
        PoolPropertyValue v = { .set = true };
        int r;

        r = sd_bus_message_enter_container(m, 'v', sig);
        if (r == -ENXIO)
                return 0;
        if (r < 0)
                return r;
        switch (pp->type) {
        case POOL_PROPERTY_STRING: {
                const char *t;

                r = sd_bus_message_read_basic(m, 's', &t);
                if (r < 0)
                        return r;
                r = free_and_strdup(&info->strings[i], t);
                if (r < 0)
                        return r;
                v.s = info->strings[i];
                v.set = !isempty(t);
                break;
        }
        case POOL_PROPERTY_BOOL: {
                int b;

                r = sd_bus_message_read_basic(m, 'b', &b);
                v.b = b;
                break;
        }
        case POOL_PROPERTY_UINT32: {
                uint32_t u;

                r = sd_bus_message_read_basic(m, 'u', &u);
                v.u = u;
                v.i = u;
                break;
        }
        case POOL_PROPERTY_INT32: {
                int32_t x;

                r = sd_bus_message_read_basic(m, 'i', &x);
                v.i = x;
                v.u = (uint64_t) x;
                v.set = x >= 0;
                break;
        }
        default:
                r = sd_bus_message_read_basic(m, 't', &v.u);
                v.i = (int64_t) v.u;
                break;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        /* 0 is "none" for PIDs and times on the bus. */
        if ((pp->type == POOL_PROPERTY_UINT32 && streq(pp->bus_name, "MainPID")) ||
            (pp->flags & POOL_PROPERTY_TIMESTAMP))
                v.set = v.u > 0;
        info->values[i] = v;
        pool_info_set_typed(info, pp->bus_name, &v);
        return 1;
}

/* The typed fields the list (and the fleet list) use, from a value of the table. */
static void pool_info_set_typed(PoolInfo *info, const char *name, const PoolPropertyValue *v) {
        for (const PropertyMap *p = pool_properties_map; p->name; p++) {
                void *field = (uint8_t *) info + p->offset;

                if (!streq(p->name, name))
                        continue;
                switch (p->type) {
                case 's':
                        (void) free_and_strdup(field, v->s);
                        break;
                case 'b':
                        *(int *) field = v->b;
                        break;
                case 'u':
                        *(uint32_t *) field = (uint32_t) v->u;
                        break;
                case 'i':
                        *(int32_t *) field = (int32_t) v->i;
                        break;
                case 't':
                        *(uint64_t *) field = v->u;
                        break;
                }
        }
}

/* Reads the a{sv} of a GetAll reply into userdata through map; unknown properties are skipped,
 * so that the daemon may add some without breaking older clients. */
static int map_properties(sd_bus_message *m, const PropertyMap map[], void *userdata) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;

        for (;;) {
                const PropertyMap *p;
                const char *name;

                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                r = sd_bus_message_read_basic(m, 's', &name);
                if (r < 0)
                        return r;

                for (p = map; p->name; p++)
                        if (streq(p->name, name))
                                break;

                /* A property of the table: its value kept for status and --json. */
                if (map == pool_properties_map) {
                        const PoolProperty *pp = pool_property_by_bus_name(name);

                        if (pp) {
                                r = read_table_value(m, pp, userdata);
                                if (r < 0)
                                        return r;
                                if (r > 0) {
                                        r = sd_bus_message_exit_container(m);
                                        if (r < 0)
                                                return r;
                                        continue;
                                }
                        }
                }

                if (!p->name) {
                        r = sd_bus_message_skip(m, "v");
                        if (r < 0)
                                return r;
                } else {
                        char signature[2] = { p->type, '\0' };
                        void *field = (uint8_t *) userdata + p->offset;

                        r = sd_bus_message_enter_container(m, 'v', signature);
                        if (r == -ENXIO)
                                return log_error_errno(-EBADMSG, "Property %s has an unexpected type.",
                                                       name);
                        if (r < 0)
                                return r;

                        if (p->type == 's') {
                                const char *s;

                                r = sd_bus_message_read_basic(m, 's', &s);
                                if (r < 0)
                                        return r;
                                r = free_and_strdup(field, s);
                        } else
                                r = sd_bus_message_read_basic(m, p->type, field);
                        if (r < 0)
                                return r;

                        r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                return r;
                }

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }

        return sd_bus_message_exit_container(m);
}

static int bus_connect(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = arg_user ? sd_bus_open_user(&bus) : sd_bus_open_system(&bus);
        if (r < 0) {
                log_error_errno(r, "pool-managerd is not reachable: failed to connect to the %s bus: %m",
                                arg_user ? "user" : "system");
                return EXIT_NOT_RUNNING;
        }

        *ret = TAKE_PTR(bus);
        return 0;
}

/* Calls a method of the Manager interface with the given timeout (0: sd-bus's default). */
static int call_manager(sd_bus *bus, const char *method, usec_t timeout, sd_bus_error *error,
                        sd_bus_message **reply, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, method);
        if (r < 0)
                return r;

        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        if (r < 0)
                return r;

        return sd_bus_call(bus, m, timeout, error, reply);
}

/* The timeout of the calls that wait for engines: --timeout=, else LONG_CALL_TIMEOUT_USEC. */
static usec_t long_call_timeout(void) {
        return arg_timeout > 0 ? arg_timeout : LONG_CALL_TIMEOUT_USEC;
}

/*
 * Fetches all properties of the pool object at path. Returns 0, or an exit status (logged), or
 * with missing_ok -ENOENT (not logged) when the object is gone: a pool stopped and removed
 * between ListPools and GetAll is no error for "list".
 */
static int pool_info_get(sd_bus *bus, const char *path, bool missing_ok, PoolInfo *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll",
                               &error, &reply, "s", POOL_IFACE);
        if (r < 0 && missing_ok && sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT))
                return -ENOENT;
        if (r < 0)
                return log_bus_error(r, &error, "Failed to get properties of %s", path);

        r = map_properties(reply, pool_properties_map, ret);
        if (r < 0)
                return log_error_errno(r, "Failed to parse properties of %s: %m", path);

        ret->path = strdup(path);
        if (!ret->path)
                return log_oom();
        return 0;
}

static int pool_info_compare(const void *a, const void *b) {
        const PoolInfo *x = a, *y = b;

        return strcmp(strempty(x->pool_id), strempty(y->pool_id));
}

/* The pool as the HTTP API's status has it: every property of the table, same keys. */
static json_object *pool_info_to_json(const PoolInfo *p) {
        _cleanup_json_ json_object *o = NULL;

        o = json_object_new_object();
        if (!o)
                return NULL;
        for (size_t i = 0; i < pool_properties_n; i++)
                if (pool_property_to_json(&pool_properties[i], &p->values[i], o) < 0)
                        return NULL;
        return TAKE_PTR(o);
}

static int print_json(json_object *j) {
        const char *s;

        s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return log_oom();
        puts(s);
        return 0;
}

static int verify_pool_id(const char *id) {
        if (!pool_id_is_valid(id))
                return log_usage("Invalid pool ID \"%s\": expected [A-Za-z0-9][A-Za-z0-9_.-]{0,63}.", id);
        return 0;
}

/* Looks the pool's object up with GetPool (so that an unknown id gives NoSuchPool). */
static int get_pool_path(sd_bus *bus, const char *id, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        char *p;
        int r;

        r = call_manager(bus, "GetPool", 0, &error, &reply, "s", id);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to get pool %s", id);

        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return log_error_errno(r, "Failed to parse GetPool reply: %m");

        p = strdup(path);
        if (!p)
                return log_oom();
        *ret = p;
        return 0;
}

/* Reads the PreparedEngine JSON of FILE ("-": standard input). Returns 0 or an exit status. */
static int read_prepared_json(const char *file, char **ret) {
        const char *path = streq(file, "-") ? "/dev/stdin" : file;
        int r;

        r = read_full_file(path, PREPARED_JSON_MAX, ret, NULL);
        if (r == -EFBIG) {
                log_error("%s: larger than %u KiB.", streq(file, "-") ? "standard input" : file,
                          PREPARED_JSON_MAX / 1024);
                return EXIT_USAGE;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to read %s: %m", streq(file, "-") ? "standard input" : file);
                return r == -EACCES ? EXIT_ACCESS_DENIED : EXIT_FAILURE;
        }
        return 0;
}

static const char *yes_no(bool b) {
        return b ? "yes" : "no";
}

static const char *dash_if_empty(const char *s) {
        return isempty(s) ? "-" : s;
}

/* --- list ------------------------------------------------------------------------------------ */

enum {
        COLUMN_POOL,
        COLUMN_STATE,
        COLUMN_READY,
        COLUMN_LIVE,
        COLUMN_LEASES,
        COLUMN_SLOTS,
        COLUMN_ENGINE,
        COLUMN_UNIT,
        COLUMN_PID,
        COLUMN_LAST_ERROR,
        _COLUMN_MAX,
};

static const char *const column_headers[_COLUMN_MAX] = {
        [COLUMN_POOL]       = "POOL",
        [COLUMN_STATE]      = "STATE",
        [COLUMN_READY]      = "READY",
        [COLUMN_LIVE]       = "LIVE",
        [COLUMN_LEASES]     = "LEASES",
        [COLUMN_SLOTS]      = "SLOTS",
        [COLUMN_ENGINE]     = "ENGINE",
        [COLUMN_UNIT]       = "UNIT",
        [COLUMN_PID]        = "PID",
        [COLUMN_LAST_ERROR] = "LAST ERROR",
};

typedef char *Row[_COLUMN_MAX];

static void row_done(Row row) {
        for (size_t i = 0; i < _COLUMN_MAX; i++)
                row[i] = mfree(row[i]);
}

static int row_fill(Row row, const PoolInfo *p) {
        const char *slots_free_str = "?";
        char free_buf[16];

        if (p->slots_free >= 0) {
                (void) snprintf(free_buf, sizeof free_buf, "%" PRIi32, p->slots_free);
                slots_free_str = free_buf;
        }

        row[COLUMN_POOL] = one_line(dash_if_empty(p->pool_id), SIZE_MAX);
        row[COLUMN_STATE] = strdup(dash_if_empty(p->state));
        row[COLUMN_READY] = strdup(yes_no(p->ready));
        row[COLUMN_LIVE] = strdup(yes_no(p->live));
        if (asprintf(&row[COLUMN_LEASES], "%" PRIu32, p->active_leases) < 0)
                row[COLUMN_LEASES] = NULL;
        if (p->slots_total < 0)
                row[COLUMN_SLOTS] = strdup("-");
        else if (asprintf(&row[COLUMN_SLOTS], "%s/%" PRIi32, slots_free_str, p->slots_total) < 0)
                row[COLUMN_SLOTS] = NULL;
        row[COLUMN_ENGINE] = one_line(dash_if_empty(p->engine_version), SIZE_MAX);
        row[COLUMN_UNIT] = one_line(dash_if_empty(p->unit), SIZE_MAX);
        if (p->main_pid == 0)
                row[COLUMN_PID] = strdup("-");
        else if (asprintf(&row[COLUMN_PID], "%" PRIu32, p->main_pid) < 0)
                row[COLUMN_PID] = NULL;
        row[COLUMN_LAST_ERROR] = one_line(dash_if_empty(p->last_error), SIZE_MAX);

        for (size_t i = 0; i < _COLUMN_MAX; i++)
                if (!row[i])
                        return -ENOMEM;
        return 0;
}

static void print_row(char *const cells[], const size_t widths[], size_t last_width) {
        for (size_t i = 0; i < _COLUMN_MAX; i++) {
                if (i == _COLUMN_MAX - 1) {
                        _cleanup_free_ char *t = NULL;

                        /* Only the last column is cut; on OOM print it whole. */
                        t = last_width != SIZE_MAX ? one_line(cells[i], last_width) : NULL;
                        fputs(t ?: cells[i], stdout);
                        break;
                }
                fputs(cells[i], stdout);
                for (size_t w = utf8_width(cells[i]); w < widths[i] + 1; w++)
                        fputc(' ', stdout);
        }
        fputc('\n', stdout);
}

static int fetch_pools(sd_bus *bus, PoolInfoArray *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **paths = NULL;
        size_t n;
        int r;

        r = call_manager(bus, "ListPools", 0, &error, &reply, "");
        if (r < 0)
                return log_bus_error(r, &error, "Failed to list pools");

        r = sd_bus_message_read_strv(reply, &paths);
        if (r < 0)
                return log_error_errno(r, "Failed to parse ListPools reply: %m");

        n = strv_length(paths);
        ret->pools = calloc(MAX(n, 1U), sizeof(PoolInfo));
        if (!ret->pools)
                return log_oom();

        STRV_FOREACH(path, paths) {
                PoolInfo *p = &ret->pools[ret->n];

                *p = (PoolInfo) POOL_INFO_INIT;
                r = pool_info_get(bus, *path, /* missing_ok= */ true, p);
                if (r != 0) {
                        pool_info_done(p);
                        if (r == -ENOENT)
                                continue;
                        return r;
                }
                ret->n++;
        }

        qsort(ret->pools, ret->n, sizeof(PoolInfo), pool_info_compare);
        return 0;
}

typedef struct RowArray {
        Row *rows;
        size_t n;
} RowArray;

static void row_array_done(RowArray *a) {
        for (size_t i = 0; i < a->n; i++)
                row_done(a->rows[i]);
        free(a->rows);
}

/* Column widths for the rows of t (and the headers, with the legend); on a terminal, the width of
 * LAST ERROR (the free-text column) that keeps a line within the right margin, at least that of
 * its header, with used_before columns taken by others first; piped output stays complete for
 * grep (SIZE_MAX). */
static void table_layout(const RowArray *t, size_t used_before, size_t widths[], size_t *ret_last_width) {
        size_t used = used_before, cols;

        for (size_t c = 0; c < _COLUMN_MAX; c++) {
                widths[c] = arg_legend ? utf8_width(column_headers[c]) : 0;
                for (size_t i = 0; i < t->n; i++)
                        widths[c] = MAX(widths[c], utf8_width(t->rows[i][c]));
        }

        *ret_last_width = SIZE_MAX;
        if (!on_tty())
                return;
        cols = columns();
        for (size_t c = 0; c < _COLUMN_MAX - 1; c++)
                used += widths[c] + 1;
        *ret_last_width = MAX(cols > used ? cols - used : 0, utf8_width(column_headers[COLUMN_LAST_ERROR]));
}

static int verb_list(sd_bus *bus, char **args) {
        _cleanup_(pool_info_array_done) PoolInfoArray a = {};
        _cleanup_(row_array_done) RowArray t = {};
        size_t widths[_COLUMN_MAX] = {}, last_width = SIZE_MAX;
        int r;

        r = fetch_pools(bus, &a);
        if (r != 0)
                return r;

        if (arg_json) {
                _cleanup_json_ json_object *array = NULL;

                array = json_object_new_array();
                if (!array)
                        return log_oom();
                for (size_t i = 0; i < a.n; i++) {
                        json_object *o = pool_info_to_json(&a.pools[i]);

                        if (!o || json_object_array_add(array, o) < 0) {
                                json_object_put(o);
                                return log_oom();
                        }
                }
                return print_json(array);
        }

        t.rows = calloc(MAX(a.n, 1U), sizeof(Row));
        if (!t.rows)
                return log_oom();
        for (; t.n < a.n; t.n++) {
                r = row_fill(t.rows[t.n], &a.pools[t.n]);
                if (r < 0) {
                        row_done(t.rows[t.n]);
                        return log_oom();
                }
        }

        table_layout(&t, 0, widths, &last_width);

        if (arg_legend)
                print_row((char *const *) column_headers, widths, last_width);
        for (size_t i = 0; i < t.n; i++)
                print_row(t.rows[i], widths, last_width);
        if (arg_legend)
                printf("%zu pools listed.\n", t.n);
        return 0;
}

/* --- fleet ----------------------------------------------------------------------------------- */

/* One pool of the fleet document (ListFleetPools(), the same as GET /fleet/pools) as a PoolInfo;
 * the daemon has checked the types of these members. */
static int pool_info_from_fleet(json_object *o, PoolInfo *p) {
        static const struct {
                const char *name;
                size_t offset;
        } strings[] = {
                { "pool_id",        offsetof(PoolInfo, pool_id)        },
                { "state",          offsetof(PoolInfo, state)          },
                { "last_error",     offsetof(PoolInfo, last_error)     },
                { "engine_version", offsetof(PoolInfo, engine_version) },
                { "device_mask",    offsetof(PoolInfo, device_mask)    },
                { "unit",           offsetof(PoolInfo, unit)           },
                { "url",            offsetof(PoolInfo, url)            },
        };
        json_object *v;

        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                char **field = (char **) ((uint8_t *) p + strings[i].offset);

                if (!json_object_object_get_ex(o, strings[i].name, &v) ||
                    !json_object_is_type(v, json_type_string))
                        continue;
                *field = strdup(json_object_get_string(v));
                if (!*field)
                        return -ENOMEM;
        }
        p->live = json_object_object_get_ex(o, "live", &v) && json_object_get_boolean(v);
        p->ready = json_object_object_get_ex(o, "ready", &v) && json_object_get_boolean(v);
        p->draining = json_object_object_get_ex(o, "draining", &v) && json_object_get_boolean(v);
        if (json_object_object_get_ex(o, "active_leases", &v) && json_object_is_type(v, json_type_int))
                p->active_leases = (uint32_t) CLAMP(json_object_get_int64(v), 0, UINT32_MAX);
        if (json_object_object_get_ex(o, "slots_total", &v) && json_object_is_type(v, json_type_int))
                p->slots_total = (int32_t) CLAMP(json_object_get_int64(v), -1, INT32_MAX);
        if (json_object_object_get_ex(o, "slots_free", &v) && json_object_is_type(v, json_type_int))
                p->slots_free = (int32_t) CLAMP(json_object_get_int64(v), -1, INT32_MAX);
        if (json_object_object_get_ex(o, "pid", &v) && json_object_is_type(v, json_type_int))
                p->main_pid = (uint32_t) CLAMP(json_object_get_int64(v), 0, UINT32_MAX);
        return 0;
}

/* Every node's pools, as the local daemon's watch cache of etcd has them: `list` with a NODE
 * column. */
static int verb_fleet(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(row_array_done) RowArray t = {};
        _cleanup_json_ json_object *doc = NULL;
        _cleanup_free_ char **nodes = NULL;
        _cleanup_free_ char *parse_error = NULL;
        size_t widths[_COLUMN_MAX] = {}, node_width, last_width = SIZE_MAX, n;
        json_object *pools, *v;
        const char *text;
        int r;

        r = call_manager(bus, "ListFleetPools", 0, &error, &reply, "");
        if (r < 0)
                return log_bus_error(r, &error, "Failed to list the fleet's pools");
        r = sd_bus_message_read(reply, "s", &text);
        if (r < 0)
                return log_error_errno(r, "Failed to parse ListFleetPools reply: %m");
        r = json_parse_document(text, strlen(text), SIZE_MAX / 2, &doc, &parse_error);
        if (r < 0 || !json_object_object_get_ex(doc, "pools", &pools) ||
            !json_object_is_type(pools, json_type_array))
                return log_error_errno(r < 0 ? r : -EBADMSG, "ListFleetPools returned no fleet document: %s",
                                       strna(parse_error));

        if (json_object_object_get_ex(doc, "fleet", &v) &&
            !streq_ptr(json_object_get_string(v), "connected"))
                log_error("Warning: pool-managerd is %s from etcd; this is the last state it saw.",
                          strna(json_object_get_string(v)));

        if (arg_json)
                return print_json(pools);

        n = json_object_array_length(pools);
        t.rows = calloc(MAX(n, 1U), sizeof(Row));
        nodes = calloc(MAX(n, 1U), sizeof(char *));
        if (!t.rows || !nodes)
                return log_oom();
        node_width = arg_legend ? utf8_width("NODE") : 0;
        for (; t.n < n; t.n++) {
                json_object *o = json_object_array_get_idx(pools, t.n);
                _cleanup_(pool_info_done) PoolInfo p = POOL_INFO_INIT;

                /* Borrowed from the document, which outlives the table. */
                nodes[t.n] = (char *) dash_if_empty(json_object_object_get_ex(o, "node", &v) ?
                                                    json_object_get_string(v) : NULL);
                node_width = MAX(node_width, utf8_width(nodes[t.n]));
                if (pool_info_from_fleet(o, &p) < 0 || row_fill(t.rows[t.n], &p) < 0) {
                        row_done(t.rows[t.n]);
                        return log_oom();
                }
        }

        table_layout(&t, node_width + 1, widths, &last_width);

        if (arg_legend) {
                printf("%-*s ", (int) node_width, "NODE");
                print_row((char *const *) column_headers, widths, last_width);
        }
        for (size_t i = 0; i < t.n; i++) {
                fputs(nodes[i], stdout);
                for (size_t w = utf8_width(nodes[i]); w < node_width + 1; w++)
                        fputc(' ', stdout);
                print_row(t.rows[i], widths, last_width);
        }
        if (arg_legend) {
                size_t n_nodes = 0;

                if (json_object_object_get_ex(doc, "nodes", &v) && json_object_is_type(v, json_type_array))
                        n_nodes = json_object_array_length(v);
                printf("%zu pools listed, %zu nodes registered.\n", t.n, n_nodes);
        }
        return 0;
}

/* --- status ---------------------------------------------------------------------------------- */

static void print_field(const char *label, const char *value) {
        _cleanup_free_ char *v = one_line(value, SIZE_MAX);

        printf("%12s: %s\n", label, v ?: value);
}

static void print_timestamp(const char *label, usec_t t) {
        char ts[FORMAT_TIMESTAMP_MAX], ago[FORMAT_DURATION_MAX];
        _cleanup_free_ char *s = NULL;
        usec_t n = now(CLOCK_REALTIME);
        int r;

        if (t == 0) {
                print_field(label, streq(label, "Heartbeat") ? "never" : "-");
                return;
        }
        if (!format_timestamp_rfc3339(ts, sizeof ts, t)) {
                print_field(label, "invalid");
                return;
        }

        /* Whole seconds: below that, "how long ago" is noise next to the probe interval. A
         * timestamp ahead of our clock (the daemon's is ahead) gets no age. */
        if (n < t)
                r = asprintf(&s, "%s", ts);
        else if (n - t < USEC_PER_SEC)
                r = asprintf(&s, "%s; just now", ts);
        else
                r = asprintf(&s, "%s; %s ago", ts,
                             format_duration(ago, sizeof ago, (n - t) / USEC_PER_SEC * USEC_PER_SEC));
        print_field(label, r < 0 ? ts : s);
}

static void print_status(const PoolInfo *p) {
        const char *on = "", *off = "";
        char buf[64];

        if (colors_enabled()) {
                off = "\x1B[0m";
                if (p->ready)
                        on = "\x1B[0;1;32m";
                else if (streq_ptr(p->state, "failed") || streq_ptr(p->state, "failing"))
                        on = "\x1B[0;1;31m";
                else
                        off = "";
        }

        printf("%s\u25CF%s %s - %s\n", on, off, strna(p->pool_id), strna(p->state));

        /* Every property the daemon has, in the table's order (pool-properties.c). */
        for (size_t i = 0; i < pool_properties_n; i++) {
                const PoolProperty *pp = &pool_properties[i];
                const PoolPropertyValue *v = &p->values[i];

                if (!pp->label || streq(pp->bus_name, "SlotsFree"))
                        continue;
                if ((pp->flags & POOL_PROPERTY_IF_SET) && !v->set)
                        continue;
                if (streq(pp->bus_name, "SlotsTotal")) {
                        if (p->slots_total < 0)
                                snprintf(buf, sizeof buf, "-");
                        else if (p->slots_free < 0)
                                snprintf(buf, sizeof buf, "%" PRIi32 " total", p->slots_total);
                        else
                                snprintf(buf, sizeof buf, "%" PRIi32 " free of %" PRIi32, p->slots_free,
                                         p->slots_total);
                        print_field(pp->label, buf);
                        continue;
                }
                if (pp->flags & POOL_PROPERTY_TIMESTAMP) {
                        print_timestamp(pp->label, v->set ? v->u : 0);
                        continue;
                }
                switch (pp->type) {
                case POOL_PROPERTY_STRING:
                        print_field(pp->label, dash_if_empty(v->set ? v->s : NULL));
                        break;
                case POOL_PROPERTY_BOOL:
                        print_field(pp->label, yes_no(v->b));
                        break;
                default:
                        if (!v->set)
                                snprintf(buf, sizeof buf, "-");
                        else
                                snprintf(buf, sizeof buf, "%" PRIi64, v->i);
                        print_field(pp->label, buf);
                }
        }
}

#define STATUS_LOG_LINES 10

/* The engine's last journal lines under the status, as systemctl status shows a unit's: "Dec 06
 * 03:05:03 pool-engine-x[1234]: text", control characters escaped. Nothing when the journal has
 * none; a hint when it cannot be read (journal access needs root or group systemd-journal). */
static void print_engine_journal(const char *unit) {
        _cleanup_strv_free_ char **lines = NULL;
        char match[256];
        sd_journal *j = NULL;
        size_t n = 0;
        int r;

        if (isempty(unit))
                return;
        r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
        if (r < 0) {
                printf("\nHint: the engine's journal cannot be read (%s).\n", strerror(-r));
                return;
        }
        (void) snprintf(match, sizeof(match), "%s=%s", arg_user ? "_SYSTEMD_USER_UNIT" : "_SYSTEMD_UNIT", unit);
        r = sd_journal_add_match(j, match, 0);
        if (r >= 0)
                r = sd_journal_seek_tail(j);
        while (r >= 0 && n < STATUS_LOG_LINES && sd_journal_previous(j) > 0) {
                _cleanup_free_ char *text = NULL, *line = NULL;
                const void *data, *ident = NULL, *pid = NULL;
                size_t len, ident_len = 0, pid_len = 0;
                char ts[32] = "";
                uint64_t t;
                time_t sec;
                struct tm tm;

                if (sd_journal_get_data(j, "MESSAGE", &data, &len) < 0 || len < 8)
                        continue;
                text = escape_text((const char *) data + 8, len - 8);
                if (sd_journal_get_data(j, "SYSLOG_IDENTIFIER", &ident, &ident_len) < 0 || ident_len < 18)
                        ident = NULL;
                if (sd_journal_get_data(j, "_PID", &pid, &pid_len) < 0 || pid_len < 5)
                        pid = NULL;
                if (sd_journal_get_realtime_usec(j, &t) >= 0) {
                        sec = (time_t) (t / USEC_PER_SEC);
                        if (localtime_r(&sec, &tm))
                                (void) strftime(ts, sizeof(ts), "%b %d %H:%M:%S", &tm);
                }
                if (!text || asprintf(&line, "%s %.*s[%.*s]: %s", ts,
                                      ident ? (int) ident_len - 18 : (int) strlen(unit), ident ? (const char *) ident + 18 : unit,
                                      pid ? (int) pid_len - 5 : 1, pid ? (const char *) pid + 5 : "?", text) < 0 ||
                    strv_push(&lines, line) < 0)
                        break;
                TAKE_PTR(line);
                n++;
        }
        sd_journal_close(j);
        if (n == 0)
                return;
        printf("\n");
        for (size_t i = n; i > 0; i--)          /* collected newest first */
                printf("%s\n", lines[i - 1]);
}

static int verb_status(sd_bus *bus, char **args) {
        _cleanup_(pool_info_done) PoolInfo p = POOL_INFO_INIT;
        _cleanup_free_ char *path = NULL;
        int r;

        r = get_pool_path(bus, args[1], &path);
        if (r != 0)
                return r;

        r = pool_info_get(bus, path, /* missing_ok= */ false, &p);
        if (r != 0)
                return r;

        if (arg_json) {
                _cleanup_json_ json_object *o = pool_info_to_json(&p);

                if (!o)
                        return log_oom();
                return print_json(o);
        }

        print_status(&p);
        print_engine_journal(p.unit);
        return 0;
}

/* --- operations ------------------------------------------------------------------------------ */

static int verb_preload(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *json = NULL, *id = NULL;
        const char *path, *handoff;
        uint32_t pid;
        int r;

        r = read_prepared_json(args[1], &json);
        if (r != 0)
                return r;

        r = call_manager(bus, "Preload", long_call_timeout(), &error, &reply, "s", json);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to preload %s",
                                     streq(args[1], "-") ? "pool from standard input" : args[1]);

        r = sd_bus_message_read(reply, "ous", &path, &pid, &handoff);
        if (r < 0)
                return log_error_errno(r, "Failed to parse Preload reply: %m");

        /* The reply names the pool by its object path; its last element is the id. */
        r = sd_bus_path_decode(path, POOL_PATH_PREFIX, &id);
        if (r < 0)
                return log_oom();

        printf("Pool %s ready: pid %" PRIu32 ", handoff %s\n", id ?: path, pid, dash_if_empty(handoff));
        return 0;
}

static int verb_stop(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = call_manager(bus, "Stop", long_call_timeout(), &error, NULL, "s", args[1]);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to stop pool %s", args[1]);
        return 0;
}

static int verb_drain(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint64_t duration_ms;
        uint32_t leases;
        usec_t timeout;
        int force_stopped, r;

        /* Without --timeout=, wait for the drain's own deadline plus the stop after it. */
        timeout = arg_timeout;
        if (timeout == 0) {
                timeout = LONG_CALL_TIMEOUT_USEC;
                if (arg_deadline_ms < (USEC_INFINITY - DRAIN_CALL_SLACK_USEC) / USEC_PER_MSEC)
                        timeout = MAX(timeout, arg_deadline_ms * USEC_PER_MSEC + DRAIN_CALL_SLACK_USEC);
        }

        r = call_manager(bus, "Drain", timeout, &error, &reply, "st", args[1], arg_deadline_ms);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to drain pool %s", args[1]);

        r = sd_bus_message_read(reply, "btu", &force_stopped, &duration_ms, &leases);
        if (r < 0)
                return log_error_errno(r, "Failed to parse Drain reply: %m");

        if (force_stopped)
                printf("Pool %s force-stopped at the %" PRIu64 "ms deadline after %" PRIu64
                       "ms, %" PRIu32 " leases still held.\n",
                       args[1], arg_deadline_ms, duration_ms, leases);
        else
                printf("Pool %s drained in %" PRIu64 "ms, %" PRIu32 " leases left.\n",
                       args[1], duration_ms, leases);
        return 0;
}

static int verb_reload(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *json = NULL;
        const char *version, *message;
        int success, rolled_back, r;

        r = read_prepared_json(args[2], &json);
        if (r != 0)
                return r;

        r = call_manager(bus, "Reload", long_call_timeout(), &error, &reply, "ss", args[1], json);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to reload pool %s", args[1]);

        r = sd_bus_message_read(reply, "bbss", &success, &rolled_back, &version, &message);
        if (r < 0)
                return log_error_errno(r, "Failed to parse Reload reply: %m");

        if (!success) {
                log_error("Failed to reload pool %s: %s%s", args[1],
                          isempty(message) ? "unknown error" : message,
                          rolled_back ? " (rolled back to the previous engine)" : "");
                return EXIT_FAILURE;
        }

        printf("Pool %s reloaded: engine %s\n", args[1], dash_if_empty(version));
        return 0;
}

static int verb_lease(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        bool allocate = streq(args[0], "lease");
        uint32_t leases;
        int r;

        r = call_manager(bus, allocate ? "AllocateLease" : "ReleaseLease", 0, &error, &reply,
                         "s", args[1]);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to %s a lease of pool %s",
                                     allocate ? "allocate" : "release", args[1]);

        r = sd_bus_message_read(reply, "u", &leases);
        if (r < 0)
                return log_error_errno(r, "Failed to parse lease reply: %m");

        printf("Active leases of pool %s: %" PRIu32 "\n", args[1], leases);
        return 0;
}

static int verb_reset(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = call_manager(bus, "ResetPool", 0, &error, &reply, "s", args[1]);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to reset pool %s", args[1]);

        printf("Pool %s reset: circuit closed.\n", args[1]);
        return 0;
}

/* --- devices --------------------------------------------------------------------------------- */

/* Reads one process list "a(uts)" of the Devices property. */
static int read_processes(sd_bus_message *m, GpuProcess **ret, size_t *ret_n) {
        uint32_t pid;
        uint64_t used;
        const char *unit;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(uts)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "(uts)", &pid, &used, &unit)) > 0) {
                GpuProcess *a = reallocarray(*ret, *ret_n + 1, sizeof(GpuProcess));

                if (!a)
                        return -ENOMEM;
                *ret = a;
                a[*ret_n] = (GpuProcess) { .pid = pid, .used_memory = used };
                if (!isempty(unit) && !(a[*ret_n].unit = strdup(unit)))
                        return -ENOMEM;
                (*ret_n)++;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* Reads one GPU of the Devices property (org.llorch.PoolManager1(5)) into d. */
static int read_device(sd_bus_message *m, GpuDevice *d) {
        const char *uuid, *name, *bus_id, *cc, *health, *reason;
        uint32_t minor, last_xid;
        int mig_enabled, cordoned, r;

        r = sd_bus_message_enter_container(m, 'r', "ussssutttbssbuuua(ussuuttt)a(uts)");
        if (r <= 0)
                return r;
        r = sd_bus_message_read(m, "ussssutttbssbuuu", &d->index, &uuid, &name, &bus_id, &cc, &minor,
                                &d->memory_total, &d->memory_used, &d->memory_free, &mig_enabled, &health,
                                &reason, &cordoned, &last_xid, &d->xid_count, &d->driver_resets);
        if (r < 0)
                return r;
        d->minor = minor;
        d->minor_known = minor != UINT32_MAX;
        d->mig_enabled = mig_enabled;
        d->cordoned = cordoned;
        d->last_xid = last_xid;
        d->health = gpu_health_from_string(health);
        if (d->health < 0)
                d->health = GPU_HEALTH_UNHEALTHY;
        if (sscanf(cc, "%d.%d", &d->cc_major, &d->cc_minor) != 2)
                d->cc_major = d->cc_minor = -1;
        if (!(d->uuid = strdup(uuid)) || !(d->name = strdup(name)) || !(d->pci_bus_id = strdup(bus_id)) ||
            (!isempty(reason) && !(d->health_reason = strdup(reason))))
                return -ENOMEM;

        r = sd_bus_message_enter_container(m, 'a', "(ussuuttt)");
        if (r < 0)
                return r;
        for (;;) {
                const char *mig_uuid, *mig_name;
                MigDevice *a, *mig;

                r = sd_bus_message_enter_container(m, 'r', "ussuuttt");
                if (r <= 0)
                        break;
                a = reallocarray(d->mig, d->n_mig + 1, sizeof(MigDevice));
                if (!a)
                        return -ENOMEM;
                d->mig = a;
                mig = &a[d->n_mig++];
                *mig = (MigDevice) {};
                r = sd_bus_message_read(m, "ussuuttt", &mig->index, &mig_uuid, &mig_name, &mig->gpu_instance_id,
                                        &mig->compute_instance_id, &mig->memory_total, &mig->memory_used,
                                        &mig->memory_free);
                if (r < 0)
                        return r;
                if (!(mig->uuid = strdup(mig_uuid)) || !(mig->name = strdup(mig_name)))
                        return -ENOMEM;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        r = read_processes(m, &d->processes, &d->n_processes);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

typedef struct DeviceList {
        GpuDevice *devices;
        size_t n;
        char *state;
} DeviceList;

static void device_list_done(DeviceList *l) {
        gpu_device_array_free(l->devices, l->n);
        free(l->state);
}

static int fetch_devices(sd_bus *bus, DeviceList *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_get_property_string(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "DeviceInventoryState",
                                       &error, &ret->state);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to read the GPU inventory");
        r = sd_bus_get_property(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Devices", &error, &reply,
                                "a(ussssutttbssbuuua(ussuuttt)a(uts))");
        if (r < 0)
                return log_bus_error(r, &error, "Failed to read the GPU inventory");
        r = sd_bus_message_enter_container(reply, 'a', "(ussssutttbssbuuua(ussuuttt)a(uts))");
        while (r >= 0) {
                GpuDevice *a = reallocarray(ret->devices, ret->n + 1, sizeof(GpuDevice));

                if (!a)
                        return log_oom();
                ret->devices = a;
                a[ret->n] = (GpuDevice) {};
                r = read_device(reply, &a[ret->n]);
                if (r <= 0)
                        break;
                ret->n++;
        }
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "Failed to parse the Devices property: %m");
        return 0;
}

static char *format_memory(uint64_t bytes) {
        return strdup(bytes == GPU_MEMORY_UNKNOWN ? "-" : FORMAT_BYTES(bytes));
}

#define DEVICE_COLUMNS 8

static int verb_devices(sd_bus *bus, char **args) {
        static const char *const headers[DEVICE_COLUMNS] = {
                "INDEX", "NAME", "UUID", "MEMORY", "FREE", "HEALTH", "XIDS", "PROCESSES",
        };
        _cleanup_(device_list_done) DeviceList l = {};
        _cleanup_free_ char **cells = NULL;
        size_t widths[DEVICE_COLUMNS] = {};
        int r;

        r = fetch_devices(bus, &l);
        if (r != 0)
                return r;

        if (arg_json) {
                _cleanup_json_ json_object *o = json_object_new_object(), *a = json_object_new_array();

                if (!o || !a || json_add_string(o, "state", l.state) < 0)
                        return log_oom();
                for (size_t i = 0; i < l.n; i++) {
                        json_object *d;

                        if (gpu_device_to_json(&l.devices[i], &d) < 0)
                                return log_oom();
                        if (json_object_array_add(a, d) < 0) {
                                json_object_put(d);
                                return log_oom();
                        }
                }
                if (json_add_take(o, "devices", TAKE_PTR(a)) < 0)
                        return log_oom();
                return print_json(o);
        }

        cells = calloc((l.n + 1) * DEVICE_COLUMNS, sizeof(char *));
        if (!cells)
                return log_oom();
        for (size_t c = 0; c < DEVICE_COLUMNS; c++)
                cells[c] = (char *) headers[c];
        for (size_t i = 0; i < l.n; i++) {
                const GpuDevice *d = &l.devices[i];
                char **row = cells + (i + 1) * DEVICE_COLUMNS;
                _cleanup_free_ char *used = format_memory(d->memory_used), *total = format_memory(d->memory_total);

                if (asprintf(&row[0], "%u", d->index) < 0 || !used || !total)
                        row[0] = NULL;
                row[1] = one_line(dash_if_empty(d->name), SIZE_MAX);
                row[2] = strdup(dash_if_empty(d->uuid));
                if (asprintf(&row[3], "%s / %s", strna(used), strna(total)) < 0)
                        row[3] = NULL;
                row[4] = format_memory(d->memory_free);
                if (asprintf(&row[5], "%s%s", gpu_health_to_string(d->health), d->cordoned ? ",cordoned" : "") < 0)
                        row[5] = NULL;
                if (d->xid_count == 0)
                        row[6] = strdup("-");
                else if (asprintf(&row[6], "%u (last %" PRIu64 ")", d->xid_count, d->last_xid) < 0)
                        row[6] = NULL;
                if (asprintf(&row[7], "%zu", d->n_processes) < 0)
                        row[7] = NULL;
                for (size_t c = 0; c < DEVICE_COLUMNS; c++)
                        if (!row[c])
                                r = -ENOMEM;
        }
        for (size_t i = arg_legend ? 0 : 1; i <= l.n; i++)
                for (size_t c = 0; c < DEVICE_COLUMNS; c++)
                        if (cells[i * DEVICE_COLUMNS + c])
                                widths[c] = MAX(widths[c], utf8_width(cells[i * DEVICE_COLUMNS + c]));
        for (size_t i = arg_legend ? 0 : 1; r >= 0 && i <= l.n; i++)
                for (size_t c = 0; c < DEVICE_COLUMNS; c++) {
                        const char *cell = cells[i * DEVICE_COLUMNS + c];

                        fputs(cell, stdout);
                        for (size_t w = utf8_width(cell); c + 1 < DEVICE_COLUMNS && w < widths[c] + 1; w++)
                                fputc(' ', stdout);
                        if (c + 1 == DEVICE_COLUMNS)
                                fputc('\n', stdout);
                }
        for (size_t i = DEVICE_COLUMNS; i < (l.n + 1) * DEVICE_COLUMNS; i++)
                free(cells[i]);
        if (r < 0)
                return log_oom();
        if (arg_legend)
                printf("%zu GPU%s listed. Inventory: %s.\n", l.n, l.n == 1 ? "" : "s", l.state);
        return 0;
}

static int verb_device(sd_bus *bus, char **args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint32_t index;
        int r;

        if (!streq(args[1], "uncordon"))
                return log_usage("Unknown device command \"%s\": expected \"uncordon\". See --help.", args[1]);
        r = call_manager(bus, "UncordonDevice", 0, &error, &reply, "s", args[2]);
        if (r < 0)
                return log_bus_error(r, &error, "Failed to uncordon device %s", args[2]);
        r = sd_bus_message_read(reply, "u", &index);
        if (r < 0)
                return log_error_errno(r, "Failed to parse UncordonDevice reply: %m");
        printf("GPU%" PRIu32 " uncordoned: it takes new engines again.\n", index);
        return 0;
}

/* --- logs ------------------------------------------------------------------------------------ */

/*
 * The engine's unit: the pool's Unit property when the daemon knows the pool, else the name the
 * daemon gives engine units. The fallback is silent on purpose: engines outlive the daemon, and
 * their logs are wanted most when the daemon is down.
 */
static char *engine_unit_name(const char *id) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *path;
        char *unit = NULL;

        if ((arg_user ? sd_bus_open_user(&bus) : sd_bus_open_system(&bus)) >= 0 &&
            call_manager(bus, "GetPool", 0, &error, &reply, "s", id) >= 0 &&
            sd_bus_message_read(reply, "o", &path) >= 0 &&
            sd_bus_get_property_string(bus, BUS_NAME, path, POOL_IFACE, "Unit", &error, &unit) >= 0) {
                if (!isempty(unit))
                        return unit;
                unit = mfree(unit);
        }

        if (pool_unit_name(id, &unit) < 0)
                return NULL;
        return unit;
}

static int verb_logs(sd_bus *bus, char **args) {
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *unit = NULL, *match = NULL, *lines = NULL;

        unit = engine_unit_name(args[1]);
        if (!unit)
                return log_oom();

        /* journalctl -u matches _SYSTEMD_UNIT=, which for a user unit is the user manager's
         * user@UID.service; --user-unit= matches _SYSTEMD_USER_UNIT= and also finds entries
         * of the user's journal file when there is one. */
        if (asprintf(&match, arg_user ? "--user-unit=%s" : "--unit=%s", unit) < 0 ||
            asprintf(&lines, "--lines=%u", arg_lines) < 0)
                return log_oom();

        if (strv_extend(&argv, "journalctl") < 0 ||
            strv_extend(&argv, match) < 0 ||
            strv_extend(&argv, lines) < 0 ||
            (arg_follow && strv_extend(&argv, "--follow") < 0))
                return log_oom();

        fflush(stdout);
        execvp(argv[0], argv);
        return log_error_errno(-errno, "Failed to execute journalctl: %m");
}

/* --- main ------------------------------------------------------------------------------------ */

typedef enum VerbFlags {
        VERB_POOL_ID  = 1 << 0,         /* args[1] is a pool id, validated before any call */
        VERB_NO_BUS   = 1 << 1,         /* connects by itself, if at all */
        VERB_DEADLINE = 1 << 2,         /* takes --deadline= */
        VERB_LOGS     = 1 << 3,         /* takes --follow, --lines= */
        VERB_JSON     = 1 << 4,         /* takes --json */
} VerbFlags;

typedef struct Verb {
        const char *name;
        unsigned min_args, max_args;    /* counting the verb itself */
        VerbFlags flags;
        int (*dispatch)(sd_bus *bus, char **args);
} Verb;

static const Verb verbs[] = {
        { "list",    1, 1, VERB_JSON,                  verb_list    },
        { "status",  2, 2, VERB_POOL_ID | VERB_JSON,   verb_status  },
        { "preload", 2, 2, 0,                          verb_preload },
        { "stop",    2, 2, VERB_POOL_ID,               verb_stop    },
        { "drain",   2, 2, VERB_POOL_ID | VERB_DEADLINE, verb_drain },
        { "reload",  3, 3, VERB_POOL_ID,               verb_reload  },
        { "lease",   2, 2, VERB_POOL_ID,               verb_lease   },
        { "release", 2, 2, VERB_POOL_ID,               verb_lease   },
        { "reset",   2, 2, VERB_POOL_ID,               verb_reset   },
        { "logs",    2, 2, VERB_POOL_ID | VERB_NO_BUS | VERB_LOGS, verb_logs },
        { "fleet",   1, 1, VERB_JSON,                  verb_fleet   },
        { "devices", 1, 1, VERB_JSON,                  verb_devices },
        { "device",  3, 3, 0,                          verb_device  },
        {}
};

static void help(void) {
        printf("%1$s [OPTIONS...] COMMAND ...\n\n"
               "Query and control pool-managerd, the pool manager for LLM inference engines.\n\n"
               "Commands:\n"
               "  list                    List pools (the default command)\n"
               "  status ID               Show the state of one pool\n"
               "  preload FILE            Start a pool from a PreparedEngine JSON file (\"-\": stdin)\n"
               "                          and wait until it is ready\n"
               "  stop ID                 Stop a pool's engine\n"
               "  drain ID                Stop taking leases, wait for held ones, then stop\n"
               "  reload ID FILE          Replace a pool's engine, rolling back on failure\n"
               "  lease ID                Allocate a lease on a pool\n"
               "  release ID              Release a lease of a pool\n"
               "  reset ID                Close the circuit breaker of a pool, restart it if failed\n"
               "  logs ID                 Show the journal of a pool's engine\n"
               "  fleet                   List every node's pools, from etcd (through the daemon)\n\n"
               "  devices                 List the GPUs: memory, health, processes\n"
               "  device uncordon GPU     Return a cordoned GPU (index or UUID) to service\n\n"
               "Options:\n"
               "  -h --help               Show this help\n"
               "     --version            Show package version\n"
               "     --user               Talk to the daemon on the user bus\n"
               "     --system             Talk to the daemon on the system bus (default)\n"
               "     --json               list, status, fleet, devices: print JSON\n"
               "     --no-legend          list, fleet, devices: print neither header nor footer\n"
               "     --timeout=SEC        preload, stop, drain, reload: give up after SEC\n"
               "                          (default: 10min)\n"
               "     --deadline=MS        drain: force the stop after MS milliseconds\n"
               "                          (default: %2$d)\n"
               "  -f --follow             logs: follow the journal\n"
               "  -n --lines=N            logs: show the last N lines (default: %3$d)\n\n"
               "See poolctl(1).\n",
               program_invocation_short_name, DEFAULT_DRAIN_DEADLINE_MS, DEFAULT_LOG_LINES);
}

/* Returns 1 to go on, 0 to exit successfully (--help), or an exit status > 1. */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_USER,
                ARG_SYSTEM,
                ARG_JSON,
                ARG_NO_LEGEND,
                ARG_TIMEOUT,
                ARG_DEADLINE,
        };
        static const struct option options[] = {
                { "help",      no_argument,       NULL, 'h'           },
                { "version",   no_argument,       NULL, ARG_VERSION   },
                { "user",      no_argument,       NULL, ARG_USER      },
                { "system",    no_argument,       NULL, ARG_SYSTEM    },
                { "json",      no_argument,       NULL, ARG_JSON      },
                { "no-legend", no_argument,       NULL, ARG_NO_LEGEND },
                { "timeout",   required_argument, NULL, ARG_TIMEOUT   },
                { "deadline",  required_argument, NULL, ARG_DEADLINE  },
                { "follow",    no_argument,       NULL, 'f'           },
                { "lines",     required_argument, NULL, 'n'           },
                {}
        };
        int c, r;

        /* No "+": options may follow the command, as with systemctl ("drain ID --deadline=5000"). */
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hfn:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("poolctl %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_USER:
                        arg_user = true;
                        break;
                case ARG_SYSTEM:
                        arg_user = false;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_NO_LEGEND:
                        arg_legend = false;
                        break;
                case ARG_TIMEOUT:
                        r = parse_duration(optarg, &arg_timeout);
                        if (r < 0 || arg_timeout == 0)
                                return log_usage("Invalid --timeout= value \"%s\": expected a positive "
                                                 "duration such as 90, 90s or 5min.", optarg);
                        break;
                case ARG_DEADLINE: {
                        usec_t u;
                        char *end;

                        /* A bare number is milliseconds, the unit of the D-Bus argument; a duration
                         * with a unit ("30s") is accepted too. */
                        errno = 0;
                        arg_deadline_ms = strtoull(optarg, &end, 10);
                        if (optarg[0] >= '0' && optarg[0] <= '9' && *end == '\0' && errno == 0) {
                                arg_deadline_set = true;
                                break;
                        }
                        r = parse_duration(optarg, &u);
                        if (r < 0 || optarg[0] < '0' || optarg[0] > '9')
                                return log_usage("Invalid --deadline= value \"%s\": expected milliseconds "
                                                 "or a duration such as 30s.", optarg);
                        arg_deadline_ms = u / USEC_PER_MSEC;
                        arg_deadline_set = true;
                        break;
                }
                case 'f':
                        arg_follow = true;
                        break;
                case 'n': {
                        char *end;
                        unsigned long n;

                        errno = 0;
                        n = strtoul(optarg, &end, 10);
                        if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || errno != 0 ||
                            n > UINT32_MAX)
                                return log_usage("Invalid --lines= value \"%s\".", optarg);
                        arg_lines = n;
                        arg_lines_set = true;
                        break;
                }
                case ':':
                        return log_usage("Option %s requires an argument. See --help.", argv[optind - 1]);
                case '?':
                        if (optopt > 0 && optopt < 0x100)
                                return log_usage("Unknown option -%c. See --help.", optopt);
                        return log_usage("Unknown option %s. See --help.", argv[optind - 1]);
                default:
                        return log_usage("Unexpected option.");
                }

        return 1;
}

static int dispatch_verb(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        static char *default_args[] = { (char *) "list", NULL };
        char **args = argv + optind;
        unsigned n = (unsigned) (argc - optind);
        const Verb *v;
        int r;

        if (n == 0) {
                args = default_args;
                n = 1;
        }

        for (v = verbs; v->name; v++)
                if (streq(v->name, args[0]))
                        break;
        if (!v->name)
                return log_usage("Unknown command \"%s\". See --help.", args[0]);

        if (n < v->min_args)
                return log_usage("Too few arguments for \"%s\". See --help.", v->name);
        if (n > v->max_args)
                return log_usage("Too many arguments for \"%s\". See --help.", v->name);
        if (arg_json && !(v->flags & VERB_JSON))
                return log_usage("--json is not supported by \"%s\".", v->name);
        if (arg_deadline_set && !(v->flags & VERB_DEADLINE))
                return log_usage("--deadline= is only valid for \"drain\".");
        if ((arg_follow || arg_lines_set) && !(v->flags & VERB_LOGS))
                return log_usage("--follow and --lines= are only valid for \"logs\".");

        if (v->flags & VERB_POOL_ID) {
                r = verify_pool_id(args[1]);
                if (r != 0)
                        return r;
        }

        if (!(v->flags & VERB_NO_BUS)) {
                r = bus_connect(&bus);
                if (r != 0)
                        return r;
        }

        return v->dispatch(bus, args);
}

int main(int argc, char *argv[]) {
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        if (r > 1)
                return r;

        r = dispatch_verb(argc, argv);
        return r < 0 ? EXIT_FAILURE : r;
}
