/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine-load.h"

static const struct {
        const char *name;
        EngineLoadField field;
} known_names[] = {
        { "llamacpp:requests_processing",  ENGINE_LOAD_REQUESTS_RUNNING },
        { "llamacpp:requests_deferred",    ENGINE_LOAD_REQUESTS_WAITING },
        { "llamacpp:kv_cache_usage_ratio", ENGINE_LOAD_KV_CACHE_USAGE_RATIO },
        { "vllm:num_requests_running",     ENGINE_LOAD_REQUESTS_RUNNING },
        { "vllm:num_requests_waiting",     ENGINE_LOAD_REQUESTS_WAITING },
        { "vllm:gpu_cache_usage_perc",     ENGINE_LOAD_KV_CACHE_USAGE_RATIO },
        { "vllm:kv_cache_usage_perc",      ENGINE_LOAD_KV_CACHE_USAGE_RATIO },  /* vLLM >= 0.10 */
};

void engine_load_init(EngineLoad *l) {
        for (size_t i = 0; i < _ENGINE_LOAD_FIELD_MAX; i++)
                l->value[i] = NAN;
}

bool engine_load_is_set(const EngineLoad *l) {
        for (size_t i = 0; i < _ENGINE_LOAD_FIELD_MAX; i++)
                if (!isnan(l->value[i]))
                        return true;
        return false;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

static bool is_name_char(char c, bool first) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
               (!first && c >= '0' && c <= '9');
}

/* Skips a label set "{name="value",...}" starting at *p (at the '{'); false if malformed. */
static bool skip_labels(const char **p, const char *end) {
        const char *c = *p + 1;

        for (;;) {
                while (c < end && is_blank(*c))
                        c++;
                if (c >= end)
                        return false;
                if (*c == '}')
                        break;
                /* A label name (no ':' in label names). */
                if (!is_name_char(*c, true) || *c == ':')
                        return false;
                while (c < end && is_name_char(*c, false) && *c != ':')
                        c++;
                while (c < end && is_blank(*c))
                        c++;
                if (c >= end || *c != '=')
                        return false;
                c++;
                while (c < end && is_blank(*c))
                        c++;
                if (c >= end || *c != '"')
                        return false;
                for (c++;; c++) {
                        if (c >= end)
                                return false;
                        if (*c == '\\') {
                                c++;
                                if (c >= end || !strchr("\\\"n", *c))
                                        return false;
                        } else if (*c == '"')
                                break;
                }
                c++;
                while (c < end && is_blank(*c))
                        c++;
                if (c < end && *c == ',') {
                        c++;
                        continue;               /* a trailing comma before '}' is allowed */
                }
                if (c < end && *c == '}')
                        break;
                return false;
        }
        *p = c + 1;
        return true;
}

/* A value as Go's ParseFloat reads the format's: decimal or exponent notation, "NaN",
 * "+Inf", "-Inf". No hex floats, no "infinity", no locale. */
static bool parse_value(const char *s, size_t n, double *ret) {
        char buf[64], *e;
        size_t digits = 0;

        if (n == 0 || n >= sizeof(buf))
                return false;
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (streq(buf, "NaN")) {
                *ret = NAN;
                return true;
        }
        if (streq(buf, "+Inf") || streq(buf, "Inf")) {
                *ret = INFINITY;
                return true;
        }
        if (streq(buf, "-Inf")) {
                *ret = -INFINITY;
                return true;
        }
        for (size_t i = 0; i < n; i++) {
                if (buf[i] >= '0' && buf[i] <= '9')
                        digits++;
                else if (!strchr("+-.eE", buf[i]))
                        return false;
        }
        if (digits == 0)
                return false;
        *ret = strtod(buf, &e);
        return *e == '\0';
}

/* An optional timestamp: an integer (milliseconds). */
static bool is_timestamp(const char *s, size_t n) {
        if (n > 0 && (*s == '-' || *s == '+'))
                s++, n--;
        if (n == 0 || n > 20)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

/* One line, without its '\n'. Returns the field and value of a known sample, or -ENOENT for
 * anything else (comments, other names, garbage). */
static int parse_line(const char *line, size_t n, double *ret_value) {
        const char *c = line, *end = line + n, *name, *v;
        EngineLoadField field = _ENGINE_LOAD_FIELD_INVALID;
        size_t name_len;
        double value;

        while (c < end && is_blank(*c))
                c++;
        if (c >= end || *c == '#')
                return -ENOENT;

        name = c;
        if (!is_name_char(*c, true))
                return -ENOENT;
        while (c < end && is_name_char(*c, false))
                c++;
        name_len = c - name;
        for (size_t i = 0; i < ELEMENTSOF(known_names); i++)
                if (strlen(known_names[i].name) == name_len &&
                    memcmp(known_names[i].name, name, name_len) == 0) {
                        field = known_names[i].field;
                        break;
                }
        if (field < 0)
                return -ENOENT;

        /* Blanks may come before the label set; the value must come after one. */
        v = c;
        while (c < end && is_blank(*c))
                c++;
        if (c < end && *c == '{') {
                if (!skip_labels(&c, end))
                        return -ENOENT;
        } else
                c = v;
        if (c >= end || !is_blank(*c))
                return -ENOENT;
        while (c < end && is_blank(*c))
                c++;

        v = c;
        while (c < end && !is_blank(*c))
                c++;
        if (!parse_value(v, c - v, &value))
                return -ENOENT;

        while (c < end && is_blank(*c))
                c++;
        if (c < end) {
                const char *t = c;

                while (c < end && !is_blank(*c))
                        c++;
                if (!is_timestamp(t, c - t))
                        return -ENOENT;
                while (c < end && is_blank(*c))
                        c++;
                if (c < end)
                        return -ENOENT;
        }

        /* A load is a finite, non-negative number; NaN (no value yet) and the rest are skipped. */
        if (!isfinite(value) || value < 0)
                return -ENOENT;
        *ret_value = value;
        return field;
}

int engine_load_parse(const char *text, size_t size, EngineLoad *ret) {
        EngineLoad l;
        int n = 0;

        engine_load_init(&l);
        for (const char *c = text, *end = text + size; c < end;) {
                const char *nl = memchr(c, '\n', end - c);
                size_t len = (nl ?: end) - c;
                double value;
                int field;

                if (len > 0 && c[len - 1] == '\r')
                        len--;
                /* A NUL byte makes the line garbage, as does a line too long. */
                if (len <= ENGINE_LOAD_LINE_MAX && !memchr(c, '\0', len)) {
                        field = parse_line(c, len, &value);
                        if (field >= 0) {
                                double *f = &l.value[field];

                                if (isnan(*f))
                                        *f = value;
                                else if (field == ENGINE_LOAD_KV_CACHE_USAGE_RATIO)
                                        *f = MAX(*f, value);
                                else if (isfinite(*f + value))
                                        *f += value;
                                n++;
                        }
                }
                if (!nl)
                        break;
                c = nl + 1;
        }

        *ret = l;
        return n;
}
