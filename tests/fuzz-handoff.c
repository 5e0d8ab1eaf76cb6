/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Fuzzes the handoff reader. Whatever it accepts must be written by our writer (unless the
 * pretty-printed form outgrows the size limit) and read back to the same document; whatever
 * it refuses (other than for OOM) must come with an error message.
 */

#include <stddef.h>
#include <stdint.h>

#include "handoff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool b, const char *what, const char *detail) {
        if (!b) {
                fprintf(stderr, "fuzz-handoff: %s%s%s\n", what, detail ? ": " : "", detail ?: "");
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(handoff_done) Handoff h = HANDOFF_INIT, h2 = HANDOFF_INIT;
        _cleanup_free_ char *err = NULL, *text = NULL, *text2 = NULL;
        int r;

        r = handoff_from_json_string((const char *) data, size, &h, &err);
        if (r < 0) {
                check(r == -ENOMEM || err, "refused without an error message", NULL);
                check(!h.url && !h.pool_id, "refused but filled the struct", err);
                return 0;
        }
        check(h.url && h.pool_id && h.replica_id, "accepted without url, pool_id or replica_id", NULL);

        r = handoff_to_json_string(&h, &text);
        if (r == -EFBIG)
                return 0;
        check(r >= 0, "writing an accepted handoff failed", NULL);

        r = handoff_from_json_string(text, strlen(text), &h2, &err);
        check(r >= 0, "re-reading our own output failed", err);

        check(handoff_to_json_string(&h2, &text2) >= 0, "writing failed", NULL);
        check(streq(text, text2), "round trip changed the document", text);
        return 0;
}
