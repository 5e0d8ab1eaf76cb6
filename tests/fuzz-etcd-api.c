/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Fuzzes the parser of etcd's answers, which come over the network from whatever listens at Etcd=.
 * The first byte picks the call the answer is for (and how it is delivered: whole, or as a watch
 * stream cut into lines); the rest is the answer. Whatever is accepted is complete (every key and
 * value decoded, events typed) and goes into the fleet cache, whose JSON must come out; whatever
 * is refused comes with a message and hands nothing out.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "etcd-api.h"
#include "fleet-cache.h"
#include "shared/json-util.h"
#include "shared/macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool b, const char *what, const char *detail) {
        if (!b) {
                fprintf(stderr, "fuzz-etcd-api: %s%s%s\n", what, detail ? ": " : "", detail ?: "");
                abort();
        }
}

static void check_kv(const EtcdKeyValue *kv) {
        check(kv->key && kv->key[kv->key_size] == '\0', "key not decoded or not terminated", NULL);
        check(kv->value && kv->value[kv->value_size] == '\0', "value not decoded or not terminated", NULL);
}

static void warn(const char *key, const char *problem, void *userdata) {
        check(key && problem, "warning without key or problem", NULL);
}

static void parse_one(EtcdCall call, const char *text, size_t size, FleetCache *cache) {
        _cleanup_free_ char *error = NULL;
        EtcdResponse r = {};
        int k;

        k = etcd_response_parse(call, text, size, &r, &error);
        if (k < 0) {
                check(k == -ENOMEM || error, "refused without an error message", NULL);
                check(!r.kvs && !r.events && !r.token && !r.cancel_reason,
                      "refused but handed something out", error);
                if (k == -EREMOTEIO)
                        check(r.error_message, "an error answer without its message", error);
                else
                        check(!r.error_message, "error message set for a malformed answer", error);
                etcd_response_done(&r);
                return;
        }
        check(!error, "accepted with an error message", error);
        for (size_t i = 0; i < r.n_kvs; i++)
                check_kv(&r.kvs[i]);
        for (size_t i = 0; i < r.n_events; i++) {
                check(r.events[i].type == ETCD_EVENT_PUT || r.events[i].type == ETCD_EVENT_DELETE,
                      "bad event type",
                      NULL);
                check_kv(&r.events[i].kv);
        }
        if (call == ETCD_CALL_GRANT)
                check(r.lease_id > 0 && r.ttl > 0, "grant without lease or TTL", NULL);
        if (call == ETCD_CALL_AUTHENTICATE)
                check(!isempty(r.token), "authenticated without a token", NULL);

        if (call == ETCD_CALL_RANGE)
                check(fleet_cache_load(cache, r.kvs, r.n_kvs, r.revision, warn, NULL) >= 0,
                      "cache load failed", NULL);
        if (call == ETCD_CALL_WATCH)
                check(fleet_cache_apply(cache, r.events, r.n_events, r.revision, warn, NULL) >= 0,
                      "cache apply failed",
                      NULL);
        etcd_response_done(&r);
}

typedef struct StreamState {
        FleetCache *cache;
} StreamState;

static int on_line(const char *line, size_t size, void *userdata) {
        StreamState *s = userdata;

        check(size > 0 && !memchr(line, '\n', size), "a line with a newline, or empty", NULL);
        parse_one(ETCD_CALL_WATCH, line, size, s->cache);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(fleet_cache_freep) FleetCache *cache = NULL;
        _cleanup_json_ json_object *j = NULL;
        EtcdCall call;

        if (size < 1 || size > 1024 * 1024)
                return 0;
        if (fleet_cache_new(&cache, "/pool-managerd/") < 0)
                return 0;

        if (data[0] == 'S') {
                /* A watch stream, fed in pieces of 7 bytes. */
                EtcdStream s = { .max = 64 * 1024 };
                StreamState st = { .cache = cache };
                int k = 0;

                for (size_t i = 1; i < size && k >= 0; i += 7)
                        k = etcd_stream_feed(&s, data + i, MIN((size_t) 7, size - i), on_line, &st);
                check(k >= 0 || k == -EFBIG || k == -ENOMEM, "stream failed otherwise", NULL);
                etcd_stream_done(&s);
        } else {
                call = (EtcdCall) (data[0] % _ETCD_CALL_MAX);
                parse_one(call, (const char *) data + 1, size - 1, cache);
        }

        check(fleet_cache_to_json(cache, &j) >= 0, "cache to JSON failed", NULL);
        check(json_object_to_json_string(j) != NULL, "cache JSON not printable", NULL);
        return 0;
}
