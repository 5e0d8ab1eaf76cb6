/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * pool-managerd.conf: systemd-style INI files read with inih. Every known assignment is an
 * entry of config_table, {section, key, parser, ltype, offset}; a parser validates the whole
 * value before it writes its field, so a bad value leaves the previous one in place. Future
 * sections ([Supervision], [GPU]) are further rows of the same table.
 *
 * inih is fed through a line reader of our own. It counts lines (Debian's inih is built
 * without INI_HANDLER_LINENO), strips leading whitespace so that an indented line is never
 * taken as a Python-style continuation of the previous value, and turns every line that
 * inih would reject (syntax errors, lines too long for its fixed buffer, NUL bytes) into an
 * empty line after warning about it: inih itself reports only the first bad line. inih's
 * line buffer is fixed at 200 bytes, so longer lines are refused rather than split.
 */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <ini.h>

#include "config.h"
#include "log.h"
#include "shared/string-table.h"
#include "shared/string-util.h"
#include "shared/strv.h"

#define SYSTEM_CONFIG_PATH "/etc/pool-managerd/pool-managerd.conf"

static const char *const engine_logs_table[_ENGINE_LOGS_MAX] = {
        [ENGINE_LOGS_JOURNAL] = "journal",
        [ENGINE_LOGS_FILE] = "file",
};

DEFINE_STRING_TABLE_LOOKUP(engine_logs, EngineLogs);

static const char *const engine_sandbox_table[_ENGINE_SANDBOX_MAX] = {
        [ENGINE_SANDBOX_FULL] = "full",
        [ENGINE_SANDBOX_CONTAINER] = "container",
        [ENGINE_SANDBOX_OFF] = "off",
};

DEFINE_STRING_TABLE_LOOKUP(engine_sandbox, EngineSandbox);

/* ---- Value parsers: 0 and the field written, or -EINVAL/-ENOMEM and the field untouched. ---- */

typedef int (*ConfigParser)(const char *value, uint64_t ltype, void *data);

/* ltype of config_parse_path(): an empty value resets the field to NULL ("unset"). */
#define CONFIG_PATH_EMPTY_UNSETS UINT64_C(1)

static bool path_is_absolute_normalized(const char *p) {
        if (!p || p[0] != '/' || strlen(p) >= PATH_MAX)
                return false;

        /* "." and ".." components are refused: the directories end up in unit properties and
         * in paths handed to engines, where they should mean exactly what they say. */
        for (const char *c = p;;) {
                size_t n;

                c += strspn(c, "/");
                if (*c == '\0')
                        return true;
                n = strcspn(c, "/");
                if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c += n;
        }
}

/* Every string setting: *p = value if valid(value) says so; an empty value unsets it (NULL)
 * where empty_unsets. */
static int config_set_string(char **p, const char *value, bool (*valid)(const char *s), bool empty_unsets) {
        if (isempty(value) && empty_unsets)
                return free_and_strdup(p, NULL);
        if (!valid(value))
                return -EINVAL;
        return free_and_strdup(p, value);
}

static int config_parse_path(const char *value, uint64_t ltype, void *data) {
        return config_set_string(data, value, path_is_absolute_normalized, ltype & CONFIG_PATH_EMPTY_UNSETS);
}

/* NvmlLibrary=: an absolute path, or a bare file name that dlopen() looks up in the library path. */
static bool library_is_valid(const char *s) {
        if (isempty(s) || strlen(s) >= PATH_MAX)
                return false;
        return strchr(s, '/') ? path_is_absolute_normalized(s) : !streq(s, ".") && !streq(s, "..");
}

static int config_parse_library(const char *value, uint64_t ltype, void *data) {
        return config_set_string(data, value, library_is_valid, false);
}

/* Listen=: see host_port_parse(), with nothing after the port. */
static bool listen_address_is_valid(const char *s) {
        const char *end;
        HostPort hp;

        return host_port_parse(s, &end, &hp) >= 0 && *end == '\0';
}

static int config_parse_listen(const char *value, uint64_t ltype, void *data) {
        return config_set_string(data, value, listen_address_is_valid, false);
}

static int config_parse_bool(const char *value, uint64_t ltype, void *data) {
        static const char *const yes[] = { "yes", "true", "on", "1" };
        static const char *const no[] = { "no", "false", "off", "0" };
        bool *b = data;

        if (!value)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(value, yes[i]) == 0) {
                        *b = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(value, no[i]) == 0) {
                        *b = false;
                        return 0;
                }
        return -EINVAL;
}

/* ltype is the minimum. "infinity" is refused: the values are added to timestamps and handed
 * to libcurl and sd-event, where an infinite interval or timeout has no sensible meaning. */
static int config_parse_duration(const char *value, uint64_t ltype, void *data) {
        usec_t *u = data, t;
        int r;

        r = parse_duration(value, &t);
        if (r < 0)
                return -EINVAL;
        if (t == USEC_INFINITY || t < ltype)
                return -EINVAL;
        *u = t;
        return 0;
}

/* A duration of at least ltype, or 0: off. */
static int config_parse_duration_or_off(const char *value, uint64_t ltype, void *data) {
        usec_t *u = data, t;

        if (parse_duration(value, &t) < 0 || t == USEC_INFINITY || (t != 0 && t < ltype))
                return -EINVAL;
        *u = t;
        return 0;
}

/* A user name as systemd accepts it for User= (or a numeric uid). */
static bool user_is_valid(const char *s) {
        if (strlen(s) > 31 || s[0] == '-')
                return false;
        for (const char *c = s; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      *c == '_' || *c == '-'))
                        return false;
        return true;
}

/* EngineUser=: empty unsets. */
static int config_parse_user(const char *value, uint64_t ltype, void *data) {
        return config_set_string(data, value, user_is_valid, true);
}

/* ltype is the minimum; at most 1000000. */
static int config_parse_unsigned(const char *value, uint64_t ltype, void *data) {
        unsigned *u = data;
        unsigned long v;
        char *end;

        if (isempty(value) || !strchr("0123456789", value[0]))
                return -EINVAL;
        errno = 0;
        v = strtoul(value, &end, 10);
        if (errno != 0 || *end != '\0' || v < ltype || v > 1000000)
                return -EINVAL;
        *u = (unsigned) v;
        return 0;
}

/* A key whose value is one of an enum's strings (systemd's DEFINE_CONFIG_PARSE_ENUM). */
#define DEFINE_CONFIG_PARSE_ENUM(function, name, type)                                    \
        static int function(const char *value, uint64_t ltype, void *data) {              \
                type *ret = data, v;                                                      \
                                                                                          \
                v = name##_from_string(value);                                            \
                if (v < 0)                                                                \
                        return -EINVAL;                                                   \
                *ret = v;                                                                 \
                return 0;                                                                 \
        }

DEFINE_CONFIG_PARSE_ENUM(config_parse_engine_logs, engine_logs, EngineLogs);
DEFINE_CONFIG_PARSE_ENUM(config_parse_engine_sandbox, engine_sandbox, EngineSandbox);

/* Etcd=: comma-separated (or space-separated) "http://host:port" or "https://host:port"
 * endpoints, a trailing "/" dropped; empty: off. */
static bool etcd_endpoint_is_valid(const char *s) {
        const char *host;

        if (strneq(s, "http://", 7))
                host = s + 7;
        else if (strneq(s, "https://", 8))
                host = s + 8;
        else
                return false;
        if (isempty(host) || strlen(host) > 255)
                return false;
        /* host[:port] only: no path, query, user info or whitespace. */
        for (const char *c = host; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      strchr(".-_:[]", *c)))
                        return false;
        return true;
}

static int config_parse_etcd(const char *value, uint64_t ltype, void *data) {
        _cleanup_strv_free_ char **l = NULL;
        char ***p = data;
        int r;

        for (const char *c = strempty(value);;) {
                size_t n;
                char *e;

                c += strspn(c, ", \t");
                if (*c == '\0')
                        break;
                n = strcspn(c, ", \t");
                e = strndup(c, n);
                if (!e)
                        return -ENOMEM;
                if (n > 0 && e[n - 1] == '/')
                        e[n - 1] = '\0';
                if (!etcd_endpoint_is_valid(e)) {
                        free(e);
                        return -EINVAL;
                }
                r = strv_push(&l, e);
                if (r < 0) {
                        free(e);
                        return r;
                }
                c += n;
        }
        strv_free(*p);
        *p = TAKE_PTR(l);
        return 0;
}

/* NodeName=: a node name (the alphabet of pool ids); empty: the hostname. */
static int config_parse_node_name(const char *value, uint64_t ltype, void *data) {
        return config_set_string(data, value, pool_id_is_valid, true);
}

/* KeyPrefix=: "/" ... "/", printable ASCII. */
static bool key_prefix_is_valid(const char *s) {
        size_t n = strlen(strempty(s));

        if (n < 1 || n > 200 || s[0] != '/' || s[n - 1] != '/')
                return false;
        for (const char *c = s; *c; c++)
                if (*c <= ' ' || *c >= 0x7f)
                        return false;
        return true;
}

static int config_parse_key_prefix(const char *value, uint64_t ltype, void *data) {
        return config_set_string(data, value, key_prefix_is_valid, false);
}

/* LeaseTTL=: etcd counts leases in whole seconds; 1s at least. */
static int config_parse_lease_ttl(const char *value, uint64_t ltype, void *data) {
        usec_t *u = data, t;

        if (parse_duration(value, &t) < 0 || t == USEC_INFINITY || t < USEC_PER_SEC ||
            t > 3600 * USEC_PER_SEC || t % USEC_PER_SEC != 0)
                return -EINVAL;
        *u = t;
        return 0;
}

typedef struct ConfigTableItem {
        const char *section;
        const char *key;
        ConfigParser parse;
        uint64_t ltype;         /* parser-specific: flags, or a minimum */
        size_t offset;          /* of the field in Config */
} ConfigTableItem;

static const ConfigTableItem config_table[] = {
        { "Manager", "RuntimeDirectory", config_parse_path,        0,
          offsetof(Config, runtime_directory) },
        { "Manager", "StateDirectory",   config_parse_path,        0,
          offsetof(Config, state_directory) },
        { "Manager", "PoolsDirectory",   config_parse_path,        0,
          offsetof(Config, pools_directory) },
        { "Manager", "Listen",           config_parse_listen,      0,
          offsetof(Config, listen) },
        { "Manager", "ApiTokenFile",     config_parse_path,        CONFIG_PATH_EMPTY_UNSETS,
          offsetof(Config, api_token_file) },
        { "Manager", "GpuOnly",          config_parse_bool,        0,
          offsetof(Config, gpu_only) },
        { "Manager", "HealthInterval",   config_parse_duration,    10 * USEC_PER_MSEC,
          offsetof(Config, health_interval) },
        { "Manager", "HealthTimeout",    config_parse_duration,    100 * USEC_PER_MSEC,
          offsetof(Config, health_timeout) },
        { "Manager", "StopTimeout",      config_parse_duration,    USEC_PER_MSEC,
          offsetof(Config, stop_timeout) },
        { "Manager", "StartupTimeout",   config_parse_duration,    USEC_PER_MSEC,
          offsetof(Config, startup_timeout) },
        { "Manager", "EngineLogs",       config_parse_engine_logs, 0,
          offsetof(Config, engine_logs) },
        { "Manager", "EngineSandbox",    config_parse_engine_sandbox, 0,
          offsetof(Config, engine_sandbox) },
        { "Manager", "EngineUser",       config_parse_user,        0,
          offsetof(Config, engine_user) },
        { "Manager", "ReloadDrainTimeout", config_parse_duration,  0,
          offsetof(Config, reload_drain_timeout) },
        { "Manager", "EngineMetricsInterval", config_parse_duration_or_off, 100 * USEC_PER_MSEC,
          offsetof(Config, engine_metrics_interval) },
        { "Manager", "EngineMetricsTimeout", config_parse_duration, 10 * USEC_PER_MSEC,
          offsetof(Config, engine_metrics_timeout) },
        { "Manager", "NvmlLibrary",      config_parse_library,     0,
          offsetof(Config, nvml_library) },

        { "GPU", "RefreshInterval",           config_parse_duration, 100 * USEC_PER_MSEC,
          offsetof(Config, gpu_refresh_interval) },

        { "HTTP", "MaxConnections",           config_parse_unsigned, 1, offsetof(Config, http_max_connections) },
        { "HTTP", "MaxConnectionsPerAddress", config_parse_unsigned, 0, offsetof(Config, http_max_per_address) },
        { "HTTP", "RequestTimeoutSec",        config_parse_duration, 100 * USEC_PER_MSEC,
          offsetof(Config, http_request_timeout) },

#define SUP(field) offsetof(Config, supervision) + offsetof(SupervisionPolicy, field)
        { "Supervision", "BackoffInitial",    config_parse_duration, USEC_PER_MSEC, SUP(backoff_initial) },
        { "Supervision", "BackoffMax",        config_parse_duration, USEC_PER_MSEC, SUP(backoff_max) },
        { "Supervision", "BackoffMin",        config_parse_duration, 0,             SUP(backoff_min) },
        { "Supervision", "BackoffJitter",     config_parse_unsigned, 0,             SUP(jitter_percent) },
        { "Supervision", "CudaBackoffFactor", config_parse_unsigned, 1,             SUP(cuda_factor) },
        { "Supervision", "StableAfter",       config_parse_duration, USEC_PER_MSEC, SUP(stable_after) },
        { "Supervision", "BreakerThreshold",  config_parse_unsigned, 1,             SUP(breaker_threshold) },
        { "Supervision", "BreakerTimeout",    config_parse_duration, USEC_PER_MSEC, SUP(breaker_timeout) },
        { "Supervision", "BreakerCloseAfter", config_parse_duration, USEC_PER_MSEC, SUP(breaker_close_after) },
        { "Supervision", "StormWindow",       config_parse_duration, USEC_PER_MSEC, SUP(storm_window) },
        { "Supervision", "StormWarn",         config_parse_unsigned, 1,             SUP(storm_warn) },
        { "Supervision", "StormLimit",        config_parse_unsigned, 1,             SUP(storm_limit) },
        { "Supervision", "LivenessInterval",  config_parse_duration, 10 * USEC_PER_MSEC, SUP(liveness_interval) },
        { "Supervision", "LivenessFailures",  config_parse_unsigned, 1,             SUP(liveness_failures) },
#undef SUP

        { "Fleet", "Etcd",      config_parse_etcd,       0, offsetof(Config, fleet_etcd) },
        { "Fleet", "NodeName",  config_parse_node_name,  0, offsetof(Config, fleet_node_name) },
        { "Fleet", "LeaseTTL",  config_parse_lease_ttl,  0, offsetof(Config, fleet_lease_ttl) },
        { "Fleet", "KeyPrefix", config_parse_key_prefix, 0, offsetof(Config, fleet_key_prefix) },
        { "Fleet", "TrustedCertificateFile", config_parse_path, CONFIG_PATH_EMPTY_UNSETS,
          offsetof(Config, fleet_trusted_certificate_file) },
        { "Fleet", "CertificateFile",        config_parse_path, CONFIG_PATH_EMPTY_UNSETS,
          offsetof(Config, fleet_certificate_file) },
        { "Fleet", "KeyFile",                config_parse_path, CONFIG_PATH_EMPTY_UNSETS,
          offsetof(Config, fleet_key_file) },
        { "Fleet", "CredentialsFile",        config_parse_path, CONFIG_PATH_EMPTY_UNSETS,
          offsetof(Config, fleet_credentials_file) },
};

static bool config_section_is_known(const char *section) {
        for (size_t i = 0; i < ELEMENTSOF(config_table); i++)
                if (streq_ptr(config_table[i].section, section))
                        return true;
        return false;
}

int config_set(Config *c, const char *section, const char *key, const char *value) {
        if (!c || !section || !key)
                return -EINVAL;

        for (size_t i = 0; i < ELEMENTSOF(config_table); i++) {
                const ConfigTableItem *t = config_table + i;

                if (!streq(t->section, section) || !streq(t->key, key))
                        continue;
                if (!value)
                        return -EINVAL;
                return t->parse(value, t->ltype, (uint8_t *) c + t->offset);
        }

        return -EOPNOTSUPP;
}

/* ---- Defaults ---- */

static int get_home_dir(char **ret) {
        _cleanup_free_ char *buf = NULL;
        struct passwd pw, *result = NULL;
        const char *e;
        long bufsize;
        char *h;
        int r;

        e = getenv("HOME");
        if (e && e[0] == '/') {
                h = strdup(e);
                if (!h)
                        return -ENOMEM;
                *ret = h;
                return 0;
        }

        bufsize = sysconf(_SC_GETPW_R_SIZE_MAX);
        if (bufsize <= 0)
                bufsize = 4096;
        for (;;) {
                buf = malloc((size_t) bufsize);
                if (!buf)
                        return -ENOMEM;
                r = getpwuid_r(getuid(), &pw, buf, (size_t) bufsize, &result);
                if (r != ERANGE)
                        break;
                buf = mfree(buf);
                if (bufsize > 1024 * 1024)
                        return -ERANGE;
                bufsize *= 2;
        }
        if (r > 0)
                return -r;
        if (!result || !result->pw_dir || result->pw_dir[0] != '/')
                return -ENXIO;

        h = strdup(result->pw_dir);
        if (!h)
                return -ENOMEM;
        *ret = h;
        return 0;
}

/* $<env>/<suffix> if env is set to an absolute path (the XDG base directory spec says to
 * ignore relative ones), otherwise ~/<fallback>/<suffix>. */
static int xdg_dir(const char *env, const char *fallback, const char *suffix, char **ret) {
        _cleanup_free_ char *home = NULL;
        const char *e;
        char *p;
        int r;

        e = getenv(env);
        if (e && e[0] == '/')
                r = asprintf(&p, "%s/%s", e, suffix);
        else {
                r = get_home_dir(&home);
                if (r < 0)
                        return r;
                r = asprintf(&p, "%s/%s/%s", home, fallback, suffix);
        }
        if (r < 0)
                return -ENOMEM;

        *ret = p;
        return 0;
}

int config_new(Config **ret, bool user) {
        _cleanup_(config_freep) Config *c = NULL;
        int r;

        if (!ret)
                return -EINVAL;

        c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;

        *c = (Config) {
                .gpu_only = true,
                .health_interval = 500 * USEC_PER_MSEC,
                .health_timeout = 120 * USEC_PER_SEC,
                .stop_timeout = 5 * USEC_PER_SEC,
                .startup_timeout = 10 * USEC_PER_SEC,
                .engine_logs = ENGINE_LOGS_JOURNAL,
                .engine_sandbox = ENGINE_SANDBOX_FULL,
                .reload_drain_timeout = 30 * USEC_PER_SEC,
                .engine_metrics_interval = 5 * USEC_PER_SEC,
                .engine_metrics_timeout = 2 * USEC_PER_SEC,
        };
        supervision_policy_init(&c->supervision);

        c->http_max_connections = 1024;
        c->http_max_per_address = 256;
        c->http_request_timeout = 10 * USEC_PER_SEC;
        c->fleet_lease_ttl = 10 * USEC_PER_SEC;
        c->gpu_refresh_interval = 2 * USEC_PER_SEC;
        c->listen = strdup("127.0.0.1:9200");
        c->fleet_key_prefix = strdup("/pool-managerd/");
        c->nvml_library = strdup("libnvidia-ml.so.1");
        if (!c->listen || !c->fleet_key_prefix || !c->nvml_library)
                return -ENOMEM;

        if (user) {
                const char *e;

                /* There is no sensible fallback for the runtime directory: it must be the
                 * per-login tmpfs that systemd-logind creates, or the user manager's. */
                e = getenv("XDG_RUNTIME_DIR");
                if (!e || e[0] != '/')
                        return -ENXIO;
                if (asprintf(&c->runtime_directory, "%s/pool-managerd", e) < 0) {
                        c->runtime_directory = NULL;
                        return -ENOMEM;
                }

                r = xdg_dir("XDG_STATE_HOME", ".local/state", "pool-managerd", &c->state_directory);
                if (r < 0)
                        return r;
                r = xdg_dir("XDG_CONFIG_HOME", ".config", "pool-managerd/pools.d", &c->pools_directory);
                if (r < 0)
                        return r;
        } else {
                c->runtime_directory = strdup("/run/pool-managerd");
                c->state_directory = strdup("/var/lib/pool-managerd");
                c->pools_directory = strdup("/etc/pool-managerd/pools.d");
                if (!c->runtime_directory || !c->state_directory || !c->pools_directory)
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(c);
        return 0;
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;

        free(c->runtime_directory);
        free(c->state_directory);
        free(c->pools_directory);
        free(c->listen);
        free(c->api_token_file);
        free(c->engine_user);
        strv_free(c->fleet_etcd);
        free(c->fleet_node_name);
        free(c->fleet_key_prefix);
        free(c->fleet_trusted_certificate_file);
        free(c->fleet_certificate_file);
        free(c->fleet_key_file);
        free(c->fleet_credentials_file);
        free(c->nvml_library);
        return mfree(c);
}

int config_default_path(bool user, char **ret) {
        char *p;

        if (!ret)
                return -EINVAL;

        if (user)
                return xdg_dir("XDG_CONFIG_HOME", ".config", "pool-managerd/pool-managerd.conf", ret);

        p = strdup(SYSTEM_CONFIG_PATH);
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

/* ---- Loading ---- */

typedef struct ConfigParseState {
        Config *config;
        const char *path;
        FILE *f;
        unsigned line;
        char *buf;
        size_t bufsize;
        char *unknown_section;  /* the last unknown section warned about */
        int error;              /* a read error or -ENOMEM, which ends the parse */
} ConfigParseState;

static void config_parse_state_done(ConfigParseState *st) {
        free(st->buf);
        free(st->unknown_section);
}

static bool char_is_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Like inih's find_chars_or_comment(): the first of chars, or an inline ';' comment (one that
 * follows whitespace), or the end of the string. */
static const char *find_chars_or_comment(const char *s, const char *chars) {
        bool was_space = false;

        for (; *s && !strchr(chars, *s) && !(was_space && *s == ';'); s++)
                was_space = char_is_space(*s);
        return s;
}

/* Whether inih will accept the (left-stripped, non-empty) line: a comment, a section header
 * with its closing bracket, or an assignment. */
static bool line_is_valid(const char *s) {
        if (strchr(";#", *s))
                return true;
        if (*s == '[')
                return *find_chars_or_comment(s + 1, "]") == ']';
        s = find_chars_or_comment(s, "=:");
        return *s == '=' || *s == ':';
}

static char *config_read_line(char *str, int num, void *userdata) {
        ConfigParseState *st = userdata;
        char *p;
        ssize_t n;
        size_t l;

        if (st->error < 0 || num < 2)
                return NULL;

        errno = 0;
        n = getline(&st->buf, &st->bufsize, st->f);
        if (n < 0) {
                if (!feof(st->f))
                        st->error = errno > 0 ? -errno : -EIO;
                return NULL;
        }
        st->line++;

        /* From here on, every physical line yields exactly one line for inih (possibly an
         * empty one), so that inih's own line count matches ours. */
        str[0] = '\0';

        if (memchr(st->buf, '\0', (size_t) n)) {
                log_warning("%s:%u: Line contains a NUL byte, ignoring.", st->path, st->line);
                st->config->n_warnings++;
                return str;
        }

        p = st->buf;
        if (st->line == 1 && strneq(p, "\xEF\xBB\xBF", 3))
                p += 3;
        while (char_is_space(*p))
                p++;
        l = strlen(p);
        while (l > 0 && char_is_space(p[l - 1]))
                p[--l] = '\0';

        if (l == 0)
                return str;

        if (l >= (size_t) num) {
                log_warning("%s:%u: Line longer than %i characters, ignoring.", st->path, st->line, num - 1);
                st->config->n_warnings++;
                return str;
        }

        if (!line_is_valid(p)) {
                log_warning("%s:%u: Syntax error, expected \"[Section]\" or \"Key=value\", ignoring line.",
                            st->path, st->line);
                st->config->n_warnings++;
                return str;
        }

        memcpy(str, p, l + 1);
        return str;
}

static void config_warn_value(ConfigParseState *st, int r, const char *section, const char *key,
                              const char *value) {
        if (r == -EOPNOTSUPP && isempty(section))
                log_warning("%s:%u: Assignment to \"%s\" outside of any section, ignoring.",
                            st->path, st->line, key);
        else if (r == -EOPNOTSUPP && !config_section_is_known(section)) {
                /* Once per section, not once per key in it. */
                if (streq_ptr(st->unknown_section, section))
                        return;
                if (free_and_strdup(&st->unknown_section, section) < 0) {
                        st->error = -ENOMEM;
                        return;
                }
                log_warning("%s:%u: Unknown section [%s], ignoring.", st->path, st->line, section);
        } else if (r == -EOPNOTSUPP)
                log_warning("%s:%u: Unknown key \"%s\" in section [%s], ignoring.",
                            st->path, st->line, key, section);
        else
                log_warning("%s:%u: Invalid value \"%s\" for %s= in section [%s], ignoring.",
                            st->path, st->line, value, key, section);

        st->config->n_warnings++;
}

#if INI_HANDLER_LINENO
static int config_handler(void *userdata, const char *section, const char *key, const char *value,
                          int lineno) {
#else
static int config_handler(void *userdata, const char *section, const char *key, const char *value) {
#endif
        ConfigParseState *st = userdata;
        int r;

        r = config_set(st->config, section, key, value);
        if (r == -ENOMEM) {
                st->error = r;
                return 0;
        }
        if (r < 0)
                config_warn_value(st, r, section, key, value);

        return 1;       /* Warned already: nothing for inih to report. */
}

/* Parses one file. Returns 0 also when the file is missing or not a regular file (warned). */
static int config_parse_file(Config *c, const char *path) {
        _cleanup_(config_parse_state_done) ConfigParseState st = {
                .config = c,
                .path = path,
        };
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_close_ int fd = -1;
        struct stat s;
        int r;

        /* O_NONBLOCK so that a FIFO cannot hang us before the type check below. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                return log_error_errno(errno, "Failed to open \"%s\": %m", path);
        }
        if (fstat(fd, &s) < 0)
                return log_error_errno(errno, "Failed to stat \"%s\": %m", path);
        if (!S_ISREG(s.st_mode)) {
                log_warning("%s: Not a regular file, ignoring.", path);
                c->n_warnings++;
                return 0;
        }

        f = fdopen(fd, "r");
        if (!f)
                return log_error_errno(errno, "Failed to open \"%s\": %m", path);
        TAKE_FD(fd);
        st.f = f;

        r = ini_parse_stream(config_read_line, &st, config_handler, &st);
        if (st.error == -ENOMEM || r == -2)
                return log_oom();
        if (st.error < 0)
                return log_error_errno(st.error, "Failed to read \"%s\": %m", path);
        if (r > 0) {
                /* Not expected, config_read_line() passes on valid lines only. */
                log_warning("%s:%i: Syntax error, ignoring line.", path, r);
                c->n_warnings++;
        }

        return 0;
}

static int string_compare(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

/* The paths of the *.conf files in dir, sorted by file name; none if dir does not exist. */
static int config_list_dropins(const char *dir, char ***ret) {
        _cleanup_strv_free_ char **files = NULL;
        DIR *d;
        int r = 0;

        d = opendir(dir);
        if (!d) {
                if (errno == ENOENT) {
                        *ret = NULL;
                        return 0;
                }
                return log_error_errno(errno, "Failed to open directory \"%s\": %m", dir);
        }

        for (;;) {
                struct dirent *de;
                size_t n;
                char *p;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno > 0)
                                r = log_error_errno(errno, "Failed to read directory \"%s\": %m", dir);
                        break;
                }

                /* Hidden files (editor backups, ".#" temporaries) are never configuration. */
                n = strlen(de->d_name);
                if (de->d_name[0] == '.' || n <= strlen(".conf") ||
                    !streq(de->d_name + n - strlen(".conf"), ".conf"))
                        continue;

                if (asprintf(&p, "%s/%s", dir, de->d_name) < 0) {
                        r = log_oom();
                        break;
                }
                r = strv_push(&files, p);
                if (r < 0) {
                        free(p);
                        r = log_oom();
                        break;
                }
        }
        (void) closedir(d);
        if (r < 0)
                return r;

        /* All files are in the same directory, so sorting the paths sorts the file names. strcmp()
         * rather than strcoll(): the order must not depend on the locale. */
        if (files)
                qsort(files, strv_length(files), sizeof(char *), string_compare);

        *ret = TAKE_PTR(files);
        return 0;
}

int config_load(Config *c, const char *path) {
        _cleanup_strv_free_ char **dropins = NULL;
        _cleanup_free_ char *dir = NULL;
        int r;

        if (!c || isempty(path))
                return -EINVAL;

        c->n_warnings = 0;

        r = config_parse_file(c, path);
        if (r < 0)
                return r;

        if (asprintf(&dir, "%s.d", path) < 0) {
                dir = NULL;
                return log_oom();
        }

        r = config_list_dropins(dir, &dropins);
        if (r < 0)
                return r;

        STRV_FOREACH(f, dropins) {
                r = config_parse_file(c, *f);
                if (r < 0)
                        return r;
        }

        return 0;
}
