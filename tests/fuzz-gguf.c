/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Feeds arbitrary bytes to the GGUF reader as a whole model file, and estimates the VRAM of
 * whatever it accepts. Errors are expected; crashes, leaks, hangs and overflows are not.
 */

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(gguf_info_freep) GgufInfo *g = NULL;
        _cleanup_free_ char *error = NULL, *error2 = NULL;
        VramEstimate e;

        if (gguf_parse(data, size, &g, &error) < 0)
                return 0;
        (void) gguf_estimate_vram(g, 0, GGML_TYPE_F16, &e, &error2);
        error2 = mfree(error2);
        (void) gguf_estimate_vram(g, UINT32_MAX, GGML_TYPE_Q8_0, &e, &error2);
        return 0;
}
