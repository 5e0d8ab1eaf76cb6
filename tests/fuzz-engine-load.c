/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Fuzzes the parser of an engine's /metrics (the Prometheus text format): any body must give
 * values that are absent (NaN) or finite and not negative, and never a crash or a read past
 * the body, which is copied to exactly its size and not NUL-terminated, as curl hands it over.
 */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine-load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        EngineLoad l;
        char *copy;
        int n;

        copy = malloc(size ?: 1);
        if (!copy)
                return 0;
        memcpy(copy, data, size);
        n = engine_load_parse(copy, size, &l);
        if (n < 0)
                abort();
        for (size_t i = 0; i < _ENGINE_LOAD_FIELD_MAX; i++)
                if (!isnan(l.value[i]) && (!isfinite(l.value[i]) || l.value[i] < 0)) {
                        fprintf(stderr, "fuzz-engine-load: field %zu is %g\n", i, l.value[i]);
                        abort();
                }
        if ((n == 0) != !engine_load_is_set(&l))
                abort();
        free(copy);
        return 0;
}
