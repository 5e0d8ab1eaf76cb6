/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The request path of the HTTP API: split into %-decoded segments and matched against the
 * route patterns. Pure (outside input, fuzzed by tests/fuzz-http-path.c).
 */

#include <stdlib.h>
#include <string.h>

#include "http-route.h"
#include "shared/macro.h"
#include "shared/strv.h"

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -EINVAL;
}

/* Decodes %XX in one path segment. A bad escape or %00 keeps the segment as it came, which
 * matches no literal segment and is no valid pool id. */
static char *segment_decode(const char *s, size_t n) {
        char *d, *t;

        d = t = malloc(n + 1);
        if (!d)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;

                if (s[i] != '%') {
                        *t++ = s[i];
                        continue;
                }
                if (n - i < 3)
                        goto raw;
                hi = unhex(s[i + 1]);
                lo = unhex(s[i + 2]);
                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                        goto raw;
                *t++ = (char) (hi << 4 | lo);
                i += 2;
        }
        *t = '\0';
        return d;

raw:
        memcpy(d, s, n);
        d[n] = '\0';
        return d;
}

/* "/pools/a%2Fb/status" -> { "pools", "a/b", "status" }. "/" -> { "" }. */
int http_path_split(const char *path, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        const char *p;
        int k;

        if (path[0] != '/')
                return -EINVAL;

        for (p = path + 1;; ) {
                size_t n = strcspn(p, "/");
                char *seg;

                seg = segment_decode(p, n);
                if (!seg)
                        return -ENOMEM;
                k = strv_push(&l, seg);
                if (k < 0) {
                        free(seg);
                        return k;
                }
                if (p[n] == '\0')
                        break;
                p += n + 1;
        }

        *ret = TAKE_PTR(l);
        return 0;
}

bool http_path_match(const char *pattern, char **segments, const char **ret_id) {
        const char *p = pattern + 1, *id = NULL;

        STRV_FOREACH(s, segments) {
                size_t n;

                if (!p)
                        return false;
                n = strcspn(p, "/");
                if (n == 4 && strneq(p, "{id}", 4))
                        id = *s;
                else if (strlen(*s) != n || !strneq(p, *s, n))
                        return false;
                p = p[n] == '/' ? p + n + 1 : NULL;
        }
        if (p)
                return false;

        *ret_id = id;
        return true;
}
