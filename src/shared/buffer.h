/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * A growing byte buffer kept NUL-terminated, as the parsers of streamed input need it (an HTTP
 * answer's body, etcd's watch stream). Header only: the parsers are built alone into their tests
 * and fuzz targets.
 */

#include "macro.h"

/*
 * Appends n bytes of p to *buf, which holds *size bytes (+ the NUL) in *allocated. The buffer
 * grows by doubling, to min bytes at first and never past max + 1 (the caller refuses input that
 * would make *size exceed max). -ENOMEM leaves it as it was.
 */
static inline int buffer_append(char **buf, size_t *size, size_t *allocated, const void *p, size_t n,
                                size_t min, size_t max) {
        if (*size + n + 1 > *allocated) {
                size_t a = MAX(*size + n + 1, MIN(max + 1, MAX(*allocated * 2, min)));
                char *b = realloc(*buf, a);

                if (!b)
                        return -ENOMEM;
                *buf = b;
                *allocated = a;
        }
        memcpy(*buf + *size, p, n);
        *size += n;
        (*buf)[*size] = '\0';
        return 0;
}
