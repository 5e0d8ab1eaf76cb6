/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Fuzzes the parser of engines' HTTP answers (src/http-response.c): any bytes, fed whole and
 * again split in two at a point the input picks, must give the same result, a body no larger
 * than allowed, and never a crash or a read past what was fed; then the end of the connection.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http-response.h"
#include "shared/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run(const char *p, size_t size, size_t split, size_t body_max, HttpResponse *r) {
        int k;

        http_response_init(r, body_max);
        k = http_response_feed(r, p, split);
        if (k == 0)
                k = http_response_feed(r, p + split, size - split);
        if (k == 0)
                k = http_response_eof(r);
        return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        HttpResponse whole, parts;
        size_t split, body_max;
        char *copy;
        int a, b;

        if (size < 2)
                return 0;
        split = data[0] % (size - 1);
        body_max = data[1] & 1 ? 0 : 4096;
        copy = malloc(size - 2 ?: 1);
        if (!copy)
                return 0;
        memcpy(copy, data + 2, size - 2);

        a = run(copy, size - 2, 0, body_max, &whole);
        b = run(copy, size - 2, MIN(split, size - 2), body_max, &parts);
        if (a != b || (a < 0 && strcmp(whole.error, parts.error) != 0))
                abort();
        if (a > 0 && (whole.status != parts.status || whole.size != parts.size ||
                      (whole.size > 0 && memcmp(whole.body, parts.body, whole.size) != 0)))
                abort();
        if (whole.size > body_max || (a > 0 && (whole.status < 200 || whole.status > 999)))
                abort();
        http_response_done(&whole);
        http_response_done(&parts);
        free(copy);
        return 0;
}
