/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "string-util.h"
#include "macro.h"

static bool char_is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool pool_id_is_valid(const char *s) {
        size_t n;

        if (isempty(s) || !char_is_alnum(s[0]))
                return false;
        for (n = 1; s[n]; n++) {
                if (n >= POOL_ID_MAX)
                        return false;
                if (!char_is_alnum(s[n]) && !strchr("_.-", s[n]))
                        return false;
        }
        return true;
}

bool env_name_is_valid(const char *s) {
        if (isempty(s) || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
                        return false;
        return true;
}

bool host_is_valid(const char *s) {
        unsigned char buf[sizeof(struct in6_addr)];

        if (isempty(s))
                return false;
        if (streq(s, "localhost"))
                return true;
        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int host_port_parse(const char *s, const char **ret_end, HostPort *ret) {
        char host[INET6_ADDRSTRLEN];
        const char *end, *port;
        HostPort hp = {};
        bool bracketed;
        unsigned p = 0;
        size_t n;

        if (!s)
                return -EINVAL;
        bracketed = s[0] == '[';
        if (bracketed) {
                end = strchr(s, ']');
                if (!end)
                        return -EINVAL;
                s++;
                port = end + 1;
        } else {
                end = s + strcspn(s, ":/");
                port = end;
        }
        n = (size_t) (end - s);
        if (n == 0 || n >= sizeof(host))
                return -EINVAL;
        memcpy(host, s, n);
        host[n] = '\0';

        if (bracketed) {
                if (inet_pton(AF_INET6, host, hp.addresses[0]) != 1)
                        return -EINVAL;
                hp.families[0] = AF_INET6;
        } else if (streq(host, "localhost")) {
                hp.families[0] = AF_INET;
                (void) inet_pton(AF_INET, "127.0.0.1", hp.addresses[0]);
                hp.families[1] = AF_INET6;
                (void) inet_pton(AF_INET6, "::1", hp.addresses[1]);
        } else if (inet_pton(AF_INET, host, hp.addresses[0]) == 1)
                hp.families[0] = AF_INET;
        else
                return -EINVAL;

        if (*port != ':')
                return -EINVAL;
        n = strspn(port + 1, "0123456789");
        if (n < 1 || n > 5)
                return -EINVAL;
        for (size_t i = 1; i <= n; i++)
                p = p * 10 + (unsigned) (port[i] - '0');
        if (p < 1 || p > 65535)
                return -EINVAL;
        hp.port = (uint16_t) p;

        *ret_end = port + 1 + n;
        *ret = hp;
        return 0;
}

bool host_is_loopback(const char *s) {
        struct in_addr a4;
        struct in6_addr a6;

        if (isempty(s))
                return false;
        if (streq(s, "localhost"))
                return true;
        if (inet_pton(AF_INET, s, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (inet_pton(AF_INET6, s, &a6) == 1)
                return IN6_IS_ADDR_LOOPBACK(&a6);
        return false;
}

int unit_name_escape(const char *s, char **ret) {
        _cleanup_free_ char *e = NULL;
        char *t;

        e = malloc(strlen(s) * 4 + 1);
        if (!e)
                return -ENOMEM;
        t = e;
        for (const char *p = s; *p; p++) {
                /* A leading dot would make a hidden-looking name; systemd-escape escapes it too. */
                if (char_is_alnum(*p) || strchr(":_-", *p) || (*p == '.' && p != s))
                        *t++ = *p;
                else
                        t += sprintf(t, "\\x%02x", (unsigned char) *p);
        }
        *t = '\0';
        *ret = TAKE_PTR(e);
        return 0;
}

bool streq_consttime(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b);
        unsigned char d = la != lb;

        /* Walk the full length of a whatever b is, so timing depends only on a's length. */
        for (size_t i = 0; i < la; i++)
                d |= (unsigned char) a[i] ^ (unsigned char) (lb > 0 ? b[i % lb] : 0);
        return d == 0;
}

int strextendf(char **buf, const char *format, ...) {
        _cleanup_free_ char *add = NULL;
        size_t old = *buf ? strlen(*buf) : 0;
        va_list ap;
        char *n;
        int k;

        va_start(ap, format);
        k = vasprintf(&add, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;

        n = realloc(*buf, old + (size_t) k + 1);
        if (!n)
                return -ENOMEM;
        memcpy(n + old, add, (size_t) k + 1);
        *buf = n;
        return 0;
}

char *strstrip_trailing(char *s) {
        size_t n = strlen(s);

        while (n > 0 && strchr(" \t\r\n", s[n - 1]))
                s[--n] = '\0';
        return s;
}

char *format_bytes(char *buf, size_t size, uint64_t bytes) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        double v = (double) bytes;
        size_t u = 0;

        if (bytes < 1024) {
                (void) snprintf(buf, size, "%" PRIu64 " B", bytes);
                return buf;
        }
        for (v /= 1024; v >= 1024 && u + 1 < ELEMENTSOF(units); u++)
                v /= 1024;
        (void) snprintf(buf, size, "%.1f %s", v, units[u]);
        return buf;
}

int pool_unit_name(const char *id, char **ret) {
        _cleanup_free_ char *e = NULL;
        char *s;
        int r;

        r = unit_name_escape(id, &e);
        if (r < 0)
                return r;
        if (asprintf(&s, ENGINE_UNIT_PREFIX "%s.service", e) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}
