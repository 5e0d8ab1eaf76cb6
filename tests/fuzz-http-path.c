/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Fuzzes the HTTP API's path parser (src/http-route.c) with the request paths a client can send:
 * any bytes up to the first NUL. A path is split into %-decoded segments or refused; no decoded
 * segment holds a NUL byte; splitting never loses a "/" (one segment more than the path has
 * slashes); a matched {id} is one of the segments; and the routes' patterns never match a path
 * with another number of segments.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http-route.h"
#include "shared/macro.h"
#include "shared/strv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const patterns[] = {
        "/health", "/pools", "/pools/{id}/status", "/pools/{id}/preload", "/pools/{id}/leases",
        "/devices", "/devices/{id}/uncordon", "/fleet/pools",
};

static void check(bool b, const char *what, const char *path) {
        if (!b) {
                fprintf(stderr, "fuzz-http-path: %s: \"%s\"\n", what, path);
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_strv_free_ char **segments = NULL;
        _cleanup_free_ char *path = NULL;
        size_t slashes = 0;
        int r;

        if (size > 16384)
                return 0;
        path = strndup((const char *) data, size);
        if (!path)
                return 0;

        r = http_path_split(path, &segments);
        if (r == -ENOMEM)
                return 0;
        if (path[0] != '/') {
                check(r == -EINVAL, "a relative path was accepted", path);
                return 0;
        }
        check(r == 0, "an absolute path was refused", path);

        for (const char *p = path; *p; p++)
                slashes += *p == '/';
        check(strv_length(segments) == slashes, "segments do not match the slashes", path);
        STRV_FOREACH(s, segments)
                check(strlen(*s) <= strlen(path), "a segment grew in decoding", path);

        for (size_t i = 0; i < ELEMENTSOF(patterns); i++) {
                const char *id = NULL, *q;
                size_t parts = 0;
                bool found = false;

                if (!http_path_match(patterns[i], segments, &id))
                        continue;
                for (q = patterns[i]; *q; q++)
                        parts += *q == '/';
                check(parts == strv_length(segments), "matched with another number of segments", path);
                if (strstr(patterns[i], "{id}")) {
                        STRV_FOREACH(s, segments)
                                found = found || *s == id;
                        check(id && found, "the id is not a segment", path);
                } else
                        check(!id, "an id without {id}", path);
        }
        return 0;
}
