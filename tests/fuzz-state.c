/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Fuzzes the reader of a pool's saved state (<StateDirectory>/pools/<id>.json), which a crash, a
 * full disk or an editor may have damaged. Whatever it accepts is a whole PreparedEngine of the
 * pool it is named after; whatever it refuses (other than for OOM) comes with an error message
 * and leaves nothing behind.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pool-state.h"
#include "shared/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool b, const char *what, const char *detail) {
        if (!b) {
                fprintf(stderr, "fuzz-state: %s%s%s\n", what, detail ? ": " : "", detail ?: "");
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *err = NULL;
        SavedPool s = {};
        int r;

        r = pool_state_parse((const char *) data, size, "fuzz", &s, &err);
        if (r < 0) {
                check(r == -ENOMEM || err, "refused without an error message", NULL);
                check(!s.prepared && !s.supervisor, "refused but filled the state", err);
                return 0;
        }
        check(s.prepared && s.prepared->pool_id && streq(s.prepared->pool_id, "fuzz"),
              "accepted a state of another pool, or none", NULL);
        check(s.prepared->binary_path && s.prepared->port > 0, "accepted without binary_path or port", NULL);
        pool_state_done(&s);
        return 0;
}
