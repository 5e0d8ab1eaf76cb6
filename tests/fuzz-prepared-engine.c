/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Fuzzes the PreparedEngine parser. Whatever it accepts must serialise, parse again to the
 * same document, copy faithfully, and give a base URL and a CUDA_VISIBLE_DEVICES value;
 * whatever it refuses (other than for OOM) must come with an error message.
 */

#include <stddef.h>
#include <stdint.h>

#include "prepared-engine.h"
#include "shared/json-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool b, const char *what, const char *detail) {
        if (!b) {
                fprintf(stderr, "fuzz-prepared-engine: %s%s%s\n", what, detail ? ": " : "", detail ?: "");
                abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(prepared_engine_freep) PreparedEngine *p = NULL, *q = NULL, *c = NULL;
        _cleanup_json_ json_object *o = NULL, *o2 = NULL, *o3 = NULL;
        _cleanup_free_ char *err = NULL, *url = NULL, *cuda = NULL;
        const char *s;
        int r;

        r = prepared_engine_from_json((const char *) data, size, &p, &err);
        if (r < 0) {
                check(r == -ENOMEM || err, "refused without an error message", NULL);
                check(!p, "refused but returned an object", err);
                return 0;
        }

        check(prepared_engine_to_json(p, &o) >= 0, "to_json failed", NULL);
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        check(s, "serialising failed", NULL);

        /* Defaults and escaping can make the output longer than the accepted input. */
        if (strlen(s) > PREPARED_ENGINE_MAX_SIZE)
                return 0;

        r = prepared_engine_from_json(s, strlen(s), &q, &err);
        check(r >= 0, "re-parsing our own output failed", err);
        check(prepared_engine_to_json(q, &o2) >= 0, "to_json failed", NULL);
        check(json_object_equal(o, o2), "round trip changed the document", s);

        check(prepared_engine_copy(p, &c) >= 0, "copy failed", NULL);
        check(prepared_engine_to_json(c, &o3) >= 0, "to_json failed", NULL);
        check(json_object_equal(o, o3), "copy differs", s);

        check(prepared_engine_base_url(p, &url) >= 0, "no base URL", s);
        check(device_mask_to_cuda_visible_devices(p->device_mask, &cuda) >= 0, "bad device mask", s);
        return 0;
}
