/* SPDX-License-Identifier: GPL-3.0-or-later */

/* The etcd v3 gateway's messages: answers as etcd 3.4 writes them (captured from a real one), and
 * what is refused. */

#include "etcd-api.h"
#include "test-util.h"

#define HEADER "\"header\":{\"cluster_id\":\"4222680601005926671\",\"member_id\":\"5252250293082023678\"," \
        "\"revision\":\"6\",\"raft_term\":\"2\"}"

static EtcdResponse parse_ok(EtcdCall call, const char *text) {
        _cleanup_free_ char *error = NULL;
        EtcdResponse r = {};
        int k;

        k = etcd_response_parse(call, text, strlen(text), &r, &error);
        if (k < 0)
                fprintf(stderr, "unexpected error: %s\n", error);
        ASSERT_OK(k);
        ASSERT_NULL(error);
        return r;
}

static void assert_refused(EtcdCall call, const char *text, int error, const char *contains) {
        _cleanup_free_ char *message = NULL;
        EtcdResponse r = {};

        ASSERT_ERROR(etcd_response_parse(call, text, strlen(text), &r, &message), error);
        ASSERT_CONTAINS(message, contains);
        if (error != EREMOTEIO) {
                /* Nothing handed out. */
                ASSERT_NULL(r.kvs);
                ASSERT_NULL(r.events);
                ASSERT_NULL(r.token);
                ASSERT_EQ(r.revision, 0);
        }
        etcd_response_done(&r);
}

TEST(base64) {
        static const struct {
                const char *plain, *encoded;
        } t[] = {
                { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
                { "/pool-managerd/pools/n1/p0", "L3Bvb2wtbWFuYWdlcmQvcG9vbHMvbjEvcDA=" },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_free_ char *e = NULL, *d = NULL;
                size_t n;

                ASSERT_OK(base64_encode(t[i].plain, strlen(t[i].plain), &e));
                ASSERT_STREQ(e, t[i].encoded);
                ASSERT_OK(base64_decode(e, strlen(e), &d, &n));
                ASSERT_EQ(n, strlen(t[i].plain));
                ASSERT_STREQ(d, t[i].plain);
        }

        /* Binary, NUL included. */
        _cleanup_free_ char *e = NULL, *d = NULL;
        size_t n;
        ASSERT_OK(base64_encode("\0\xff\x01", 3, &e));
        ASSERT_STREQ(e, "AP8B");
        ASSERT_OK(base64_decode(e, 4, &d, &n));
        ASSERT_EQ(n, 3);
        ASSERT_TRUE(memcmp(d, "\0\xff\x01", 3) == 0);

        /* Strict. */
        static const char *const bad[] = { "Zg", "Zg=", "Z===", "Zm9v=", "Zh==", "Zm9=", "Zg==Zg==", "Zm 9",
                                           "Zm9v\n", "Z-9v", "=Zm9" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *x = NULL;

                ASSERT_ERROR(base64_decode(bad[i], strlen(bad[i]), &x, &n), EINVAL);
                ASSERT_NULL(x);
        }
}

TEST(prefix_range_end) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        ASSERT_OK(etcd_prefix_range_end("/pool-managerd/", &a));
        ASSERT_STREQ(a, "/pool-managerd0");
        ASSERT_OK(etcd_prefix_range_end("a\xff", &b));
        ASSERT_STREQ(b, "b");
        ASSERT_OK(etcd_prefix_range_end("/p/n1/", &c));
        ASSERT_STREQ(c, "/p/n10");
        ASSERT_ERROR(etcd_prefix_range_end("", &a), EINVAL);
        ASSERT_ERROR(etcd_prefix_range_end("\xff\xff", &a), EINVAL);
}

TEST(bodies) {
        _cleanup_free_ char *range = NULL, *keys = NULL, *grant = NULL, *ka = NULL, *watch = NULL,
                *auth = NULL;

        ASSERT_OK(etcd_body_range("foo", "fop", false, &range));
        ASSERT_STREQ(range, "{\"key\":\"Zm9v\",\"range_end\":\"Zm9w\"}");
        ASSERT_OK(etcd_body_range("foo", "fop", true, &keys));
        ASSERT_STREQ(keys, "{\"key\":\"Zm9v\",\"range_end\":\"Zm9w\",\"keys_only\":true}");
        ASSERT_OK(etcd_body_grant(10, &grant));
        ASSERT_STREQ(grant, "{\"TTL\":\"10\"}");
        ASSERT_OK(etcd_body_keepalive(42, &ka));
        ASSERT_STREQ(ka, "{\"ID\":\"42\"}");
        ASSERT_OK(etcd_body_watch("foo", "fop", 13, &watch));
        ASSERT_STREQ(watch,
                     "{\"create_request\":{\"key\":\"Zm9v\",\"range_end\":\"Zm9w\","
                     "\"start_revision\":\"13\"}}");
        ASSERT_OK(etcd_body_authenticate("root", "pa\"ss", &auth));
        ASSERT_STREQ(auth, "{\"name\":\"root\",\"password\":\"pa\\\"ss\"}");
}

TEST(grant_keepalive_auth) {
        EtcdResponse r;

        r = parse_ok(ETCD_CALL_GRANT, "{" HEADER ",\"ID\":\"7421547673751079941\",\"TTL\":\"5\"}");
        ASSERT_EQ(r.revision, 6);
        ASSERT_EQ(r.lease_id, 7421547673751079941LL);
        ASSERT_EQ(r.ttl, 5);
        etcd_response_done(&r);

        r = parse_ok(ETCD_CALL_KEEPALIVE,
                     "{\"result\":{" HEADER ",\"ID\":\"7421547673751079941\",\"TTL\":\"5\"}}");
        ASSERT_EQ(r.ttl, 5);
        etcd_response_done(&r);
        /* An unknown lease: TTL left out (zero). */
        r = parse_ok(ETCD_CALL_KEEPALIVE, "{\"result\":{" HEADER ",\"ID\":\"12345\"}}");
        ASSERT_EQ(r.lease_id, 12345);
        ASSERT_EQ(r.ttl, 0);
        etcd_response_done(&r);
        /* Numbers instead of strings are fine too. */
        r = parse_ok(ETCD_CALL_GRANT, "{\"header\":{\"revision\":6},\"ID\":99,\"TTL\":2}");
        ASSERT_EQ(r.lease_id, 99);
        etcd_response_done(&r);

        r = parse_ok(ETCD_CALL_AUTHENTICATE, "{" HEADER ",\"token\":\"eTjDbCXXlrXZTMrr.20\"}");
        ASSERT_STREQ(r.token, "eTjDbCXXlrXZTMrr.20");
        etcd_response_done(&r);

        assert_refused(ETCD_CALL_GRANT, "{" HEADER ",\"TTL\":\"5\"}", EINVAL,
                       "ID: must be a positive lease id");
        assert_refused(ETCD_CALL_GRANT, "{" HEADER ",\"ID\":\"x1\",\"TTL\":\"5\"}", EINVAL,
                       "ID: must be an integer");
        assert_refused(ETCD_CALL_GRANT, "{" HEADER ",\"ID\":true,\"TTL\":\"5\"}", EINVAL,
                       "ID: must be an integer");
        assert_refused(ETCD_CALL_GRANT, "{" HEADER ",\"ID\":\"99999999999999999999\",\"TTL\":\"5\"}", EINVAL,
                       "ID: must be an integer");
        assert_refused(ETCD_CALL_KEEPALIVE, "{" HEADER ",\"TTL\":\"5\"}", EINVAL, "result: is required");
        assert_refused(ETCD_CALL_AUTHENTICATE, "{" HEADER "}", EINVAL, "token: is required");
        assert_refused(ETCD_CALL_AUTHENTICATE, "{" HEADER ",\"token\":5}", EINVAL,
                       "token: must be a string");
}

TEST(txn_body) {
        _cleanup_free_ char *one = NULL, *mixed = NULL, *none = NULL;
        EtcdTxnOp ops[ETCD_TXN_OPS_MAX + 1];

        ASSERT_OK(etcd_body_txn(&(EtcdTxnOp) { "foo", "bar", 7587862038521553670LL }, 1, &one));
        ASSERT_STREQ(one, "{\"success\":[{\"request_put\":{\"key\":\"Zm9v\",\"value\":\"YmFy\","
                     "\"lease\":\"7587862038521553670\"}}]}");

        /* A put without a lease, a delete (its lease ignored), in order. */
        ops[0] = (EtcdTxnOp) { "foo", "{\"a\":\"/\"}", 0 };
        ops[1] = (EtcdTxnOp) { "gone", NULL, 5 };
        ASSERT_OK(etcd_body_txn(ops, 2, &mixed));
        ASSERT_STREQ(mixed, "{\"success\":[{\"request_put\":{\"key\":\"Zm9v\",\"value\":\"eyJhIjoiLyJ9\"}},"
                     "{\"request_delete_range\":{\"key\":\"Z29uZQ==\"}}]}");

        /* Nothing, or more than etcd takes in one transaction. */
        ASSERT_ERROR(etcd_body_txn(ops, 0, &none), EINVAL);
        for (size_t i = 0; i < ELEMENTSOF(ops); i++)
                ops[i] = (EtcdTxnOp) { "k", "v", 0 };
        ASSERT_ERROR(etcd_body_txn(ops, ETCD_TXN_OPS_MAX + 1, &none), EINVAL);
        ASSERT_NULL(none);
}

TEST(txn) {
        EtcdResponse r;

        r = parse_ok(ETCD_CALL_TXN, "{" HEADER ",\"succeeded\":true,\"responses\":[{\"response_put\":"
                     "{" HEADER "}},{\"response_delete_range\":{" HEADER ",\"deleted\":\"1\"}}]}");
        ASSERT_EQ(r.revision, 6);
        ASSERT_TRUE(r.succeeded);
        etcd_response_done(&r);

        /* Without conditions a transaction applies: one that says otherwise is no answer to ours. */
        assert_refused(ETCD_CALL_TXN, "{" HEADER "}", EINVAL, "succeeded: must be true");
        assert_refused(ETCD_CALL_TXN, "{" HEADER ",\"succeeded\":\"yes\"}", EINVAL,
                       "succeeded: must be a boolean");
        assert_refused(ETCD_CALL_TXN, "{\"succeeded\":true}", EINVAL, "header.revision: is required");
        assert_refused(ETCD_CALL_TXN, "{\"header\":[]}", EINVAL, "header: must be an object");
        assert_refused(ETCD_CALL_TXN, "{\"header\":{\"revision\":\"-\"}}", EINVAL,
                       "header.revision: must be an integer");
}

TEST(errors) {
        _cleanup_free_ char *message = NULL;
        EtcdResponse r = {};
        const char *t = "{\"error\":\"etcdserver: requested lease not found\","
                        "\"message\":\"etcdserver: requested lease not found\",\"code\":5}";

        ASSERT_ERROR(etcd_response_parse(ETCD_CALL_TXN, t, strlen(t), &r, &message), EREMOTEIO);
        ASSERT_EQ(r.error_code, ETCD_CODE_NOT_FOUND);
        ASSERT_STREQ(r.error_message, "etcdserver: requested lease not found");
        ASSERT_STREQ(message, "etcd answered error 5: \"etcdserver: requested lease not found\"");
        etcd_response_done(&r);

        /* Inside a stream. */
        t = "{\"error\":{\"grpc_code\":16,\"http_code\":401,\"message\":\"etcdserver: invalid auth token\","
            "\"http_status\":\"Unauthorized\"}}";
        message = mfree(message);
        ASSERT_ERROR(etcd_response_parse(ETCD_CALL_WATCH, t, strlen(t), &r, &message), EREMOTEIO);
        ASSERT_EQ(r.error_code, ETCD_CODE_UNAUTHENTICATED);
        ASSERT_STREQ(r.error_message, "etcdserver: invalid auth token");
        etcd_response_done(&r);

        assert_refused(ETCD_CALL_TXN, "{\"error\":5}", EINVAL, "error: must be a string");
        assert_refused(ETCD_CALL_TXN, "{\"error\":\"x\",\"code\":\"5\"}", EINVAL,
                       "code: must be an integer");
}

TEST(range) {
        EtcdResponse r;

        r = parse_ok(ETCD_CALL_RANGE, "{" HEADER ",\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\","
                     "\"mod_revision\":\"5\",\"version\":\"3\",\"value\":\"YmFy\",\"lease\":\"77\"},"
                     "{\"key\":\"Zm9w\",\"create_revision\":\"6\",\"mod_revision\":\"6\","
                     "\"version\":\"1\"}],"
                     "\"count\":\"2\"}");
        ASSERT_EQ(r.n_kvs, 2);
        ASSERT_STREQ(r.kvs[0].key, "foo");
        ASSERT_EQ(r.kvs[0].key_size, 3);
        ASSERT_STREQ(r.kvs[0].value, "bar");
        ASSERT_EQ(r.kvs[0].mod_revision, 5);
        ASSERT_EQ(r.kvs[0].version, 3);
        ASSERT_EQ(r.kvs[0].lease, 77);
        /* An empty value (keys_only, or put of ""), left out by the gateway. */
        ASSERT_STREQ(r.kvs[1].value, "");
        ASSERT_EQ(r.kvs[1].lease, 0);
        etcd_response_done(&r);

        /* No keys at all: "kvs" left out. */
        r = parse_ok(ETCD_CALL_RANGE, "{" HEADER "}");
        ASSERT_EQ(r.n_kvs, 0);
        etcd_response_done(&r);

        assert_refused(ETCD_CALL_RANGE, "{" HEADER ",\"kvs\":[{\"key\":\"Zm9v\"},{\"key\":\"Zm9\"}]}",
                       EINVAL,
                       "kvs[1].key: invalid base64");
        assert_refused(ETCD_CALL_RANGE, "{" HEADER ",\"kvs\":[{\"value\":\"Zm9v\"}]}", EINVAL,
                       "kvs[0].key: is required");
        assert_refused(ETCD_CALL_RANGE, "{" HEADER ",\"kvs\":{}}", EINVAL, "kvs: must be an array");
        assert_refused(ETCD_CALL_RANGE, "{" HEADER ",\"kvs\":[5]}", EINVAL, "kvs[0]: must be an object");
        assert_refused(ETCD_CALL_RANGE, "{" HEADER ",\"kvs\":[{\"key\":\"Zm9v\",\"lease\":[]}]}", EINVAL,
                       "kvs[0].lease: must be an integer");
        assert_refused(ETCD_CALL_RANGE, "{" HEADER ",\"kvs\":[{\"key\":\"Zm9v\",\"value\":7}]}", EINVAL,
                       "kvs[0].value: must be a string");
        assert_refused(ETCD_CALL_RANGE, "[1]", EINVAL, "answer must be a JSON object");
        assert_refused(ETCD_CALL_RANGE, "{" HEADER, EINVAL, "invalid JSON at offset");
        assert_refused(ETCD_CALL_RANGE, "", EINVAL, "invalid JSON");
}

TEST(watch) {
        EtcdResponse r;

        r = parse_ok(ETCD_CALL_WATCH, "{\"result\":{" HEADER ",\"created\":true}}");
        ASSERT_TRUE(r.created);
        ASSERT_EQ(r.n_events, 0);
        etcd_response_done(&r);

        r = parse_ok(ETCD_CALL_WATCH, "{\"result\":{" HEADER ",\"events\":[{\"kv\":{\"key\":\"Zm9v\","
                     "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\","
                     "\"value\":\"YmFy\"}},"
                     "{\"type\":\"DELETE\",\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":\"3\"}}]}}");
        ASSERT_EQ(r.n_events, 2);
        ASSERT_EQ(r.events[0].type, ETCD_EVENT_PUT);
        ASSERT_STREQ(r.events[0].kv.value, "bar");
        ASSERT_EQ(r.events[1].type, ETCD_EVENT_DELETE);
        ASSERT_EQ(r.events[1].kv.mod_revision, 3);
        etcd_response_done(&r);

        r = parse_ok(ETCD_CALL_WATCH, "{\"result\":{\"header\":{\"cluster_id\":\"1\",\"raft_term\":\"2\"},"
                     "\"canceled\":true,\"compact_revision\":\"5\"}}");
        ASSERT_TRUE(r.canceled);
        ASSERT_EQ(r.compact_revision, 5);
        etcd_response_done(&r);

        assert_refused(ETCD_CALL_WATCH,
                       "{\"result\":{\"events\":[{\"type\":\"MOVE\",\"kv\":{\"key\":\"Zm9v\"}}]}}",
                       EINVAL, "result.events[0].type: unknown event type \"MOVE\"");
        assert_refused(ETCD_CALL_WATCH, "{\"result\":{\"events\":[{\"type\":\"PUT\"}]}}", EINVAL,
                       "result.events[0].kv: is required");
        assert_refused(ETCD_CALL_WATCH,
                       "{\"result\":{\"events\":[{\"kv\":{\"key\":\"Zm9v\",\"value\":\"!!!!\"}}]}}",
                       EINVAL, "result.events[0].kv.value: invalid base64");
        assert_refused(ETCD_CALL_WATCH, "{\"result\":5}", EINVAL, "result: must be an object");
        assert_refused(ETCD_CALL_WATCH, "{\"result\":{\"created\":\"yes\"}}", EINVAL,
                       "result.created: must be a boolean");
}

typedef struct Lines {
        char *l[8];
        size_t n;
} Lines;

static int collect(const char *line, size_t size, void *userdata) {
        Lines *ls = userdata;

        ASSERT_TRUE(ls->n < ELEMENTSOF(ls->l));
        ASSERT_TRUE(!memchr(line, '\n', size));
        ls->l[ls->n] = strndup(line, size);
        ASSERT_NOT_NULL(ls->l[ls->n]);
        ls->n++;
        return 0;
}

static void lines_done(Lines *ls) {
        for (size_t i = 0; i < ls->n; i++)
                free(ls->l[i]);
        *ls = (Lines) {};
}

TEST(stream) {
        EtcdStream s = { .max = 16 };
        Lines ls = {};

        /* Split anywhere, CRLF, blank lines. */
        ASSERT_OK(etcd_stream_feed(&s, "{\"a\":", 5, collect, &ls));
        ASSERT_EQ(ls.n, 0);
        ASSERT_OK(etcd_stream_feed(&s, "1}\n\n{\"b\"", 8, collect, &ls));
        ASSERT_EQ(ls.n, 1);
        ASSERT_STREQ(ls.l[0], "{\"a\":1}");
        ASSERT_OK(etcd_stream_feed(&s, ":2}\r\n{}\n", 8, collect, &ls));
        ASSERT_EQ(ls.n, 3);
        ASSERT_STREQ(ls.l[1], "{\"b\":2}");
        ASSERT_STREQ(ls.l[2], "{}");
        lines_done(&ls);

        /* A line too long, whole or in pieces. */
        ASSERT_ERROR(etcd_stream_feed(&s, "01234567890123456789\n", 21, collect, &ls), EFBIG);
        etcd_stream_done(&s);
        s = (EtcdStream) { .max = 16 };
        ASSERT_OK(etcd_stream_feed(&s, "0123456789", 10, collect, &ls));
        ASSERT_ERROR(etcd_stream_feed(&s, "0123456789", 10, collect, &ls), EFBIG);
        ASSERT_EQ(ls.n, 0);
        etcd_stream_done(&s);
}

DEFINE_TEST_MAIN
