/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * etcd's v3 JSON gateway (etcd 3.4: POST /v3/kv/txn, /v3/kv/range, /v3/lease/grant, /v3/lease/keepalive, /v3/watch, /v3/auth/authenticate) as messages: request
 * bodies built, answers parsed completely into typed structs before anyone acts on them. Keys
 * and values travel base64-encoded; 64-bit integers as JSON strings (the proto3 JSON mapping)
 * or numbers; fields with their zero value are left out by the gateway. Pure: no I/O, no
 * logging. A parser either fills its result and returns 0, or returns negative errno with
 * *ret_error saying what was wrong, and leaves the result empty.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shared/macro.h"

/* A whole answer (a range of many keys included), and one message of a stream. */
#define ETCD_RESPONSE_MAX (32U * 1024U * 1024U)

/* gRPC status codes the gateway reports in "code" (errors of unary calls) or "grpc_code"
 * (errors inside a stream). */
#define ETCD_CODE_INVALID_ARGUMENT 3
#define ETCD_CODE_NOT_FOUND 5                   /* "etcdserver: requested lease not found" */
#define ETCD_CODE_PERMISSION_DENIED 7
#define ETCD_CODE_UNAUTHENTICATED 16            /* "etcdserver: invalid auth token" */

/* Standard base64 with padding, as Go's encoding/json writes []byte. The decoder is strict:
 * length a multiple of 4, padding only at the end. The decoded buffer is NUL-terminated (not
 * counted in ret_size). */
int base64_encode(const void *data, size_t size, char **ret);
int base64_decode(const char *s, size_t n, char **ret, size_t *ret_size);

/* The range_end that selects every key starting with prefix (its last byte that is not 0xff,
 * plus one). -EINVAL for an empty prefix or one of 0xff bytes only. */
int etcd_prefix_range_end(const char *prefix, char **ret);

/* Request bodies, as JSON text. */

/* etcd's default --max-txn-ops: more operations in one transaction are refused. */
#define ETCD_TXN_OPS_MAX 128U

/* One operation of a transaction without conditions: a put (value set) or a delete (value NULL). */
typedef struct EtcdTxnOp {
        const char *key;
        const char *value;
        int64_t lease;                  /* puts; 0: none */
} EtcdTxnOp;

/* A transaction that always applies ops, in one revision: -EINVAL for none, or more than
 * ETCD_TXN_OPS_MAX. etcd refuses a transaction that names the same key twice. */
int etcd_body_txn(const EtcdTxnOp *ops, size_t n, char **ret);
/* range_end NULL: the key alone. */
int etcd_body_range(const char *key, const char *range_end, bool keys_only, char **ret);
int etcd_body_grant(int64_t ttl_sec, char **ret);
int etcd_body_keepalive(int64_t lease, char **ret);
int etcd_body_watch(const char *key, const char *range_end, int64_t start_revision, char **ret);
int etcd_body_authenticate(const char *name, const char *password, char **ret);

typedef struct EtcdKeyValue {
        char *key;                      /* decoded, NUL-terminated; may contain NUL bytes */
        size_t key_size;
        char *value;                    /* decoded, NUL-terminated; NULL when absent (a delete) */
        size_t value_size;
        int64_t create_revision;
        int64_t mod_revision;
        int64_t version;
        int64_t lease;                  /* 0: none */
} EtcdKeyValue;

typedef enum EtcdEventType {
        ETCD_EVENT_PUT,
        ETCD_EVENT_DELETE,
        _ETCD_EVENT_TYPE_MAX,
        _ETCD_EVENT_TYPE_INVALID = -EINVAL,
} EtcdEventType;

typedef struct EtcdEvent {
        EtcdEventType type;
        EtcdKeyValue kv;
} EtcdEvent;

/* Which answer a text is expected to be. */
typedef enum EtcdCall {
        ETCD_CALL_AUTHENTICATE,
        ETCD_CALL_GRANT,
        ETCD_CALL_KEEPALIVE,            /* {"result": {...}}: one message of the stream */
        ETCD_CALL_TXN,
        ETCD_CALL_RANGE,
        ETCD_CALL_WATCH,                /* {"result": {...}}: one message of the stream */
        _ETCD_CALL_MAX,
        _ETCD_CALL_INVALID = -EINVAL,
} EtcdCall;

const char *etcd_call_to_string(EtcdCall c);

typedef struct EtcdResponse {
        int64_t revision;               /* header.revision, 0 when absent */

        /* An error answer ({"error": "...", "code": N} or {"error": {"grpc_code": N, ...}}):
         * the parser returns -EREMOTEIO with these set and nothing else. */
        int error_code;
        char *error_message;

        char *token;                    /* authenticate */
        int64_t lease_id;               /* grant, keepalive */
        int64_t ttl;                    /* grant, keepalive; <= 0: the lease is gone */
        EtcdKeyValue *kvs;              /* range */
        size_t n_kvs;
        bool more;                      /* range: more keys than returned */
        bool succeeded;                 /* txn */

        /* watch */
        bool created;
        bool canceled;
        int64_t compact_revision;       /* > 0: the requested revision was compacted away */
        char *cancel_reason;
        EtcdEvent *events;
        size_t n_events;
} EtcdResponse;

/*
 * Parses an answer of the gateway to call. -EINVAL (with *ret_error) for anything that is not
 * such an answer: malformed JSON, a missing or mistyped field, bad base64. -EREMOTEIO for an
 * error answer (ret->error_code, ret->error_message and *ret_error set), -EFBIG past
 * ETCD_RESPONSE_MAX.
 */
int etcd_response_parse(EtcdCall call, const char *text, size_t size, EtcdResponse *ret, char **ret_error);
void etcd_response_done(EtcdResponse *r);
void etcd_key_value_done(EtcdKeyValue *kv);

/*
 * The gateway streams (watch, keepalive) as one JSON message per line. Bytes go in as they
 * come; each complete line (without its newline; blank lines skipped) goes to the callback.
 * A callback's negative return stops the feed and is returned. -EFBIG when a line grows past
 * max bytes (the stream is then unusable).
 */
typedef int (*EtcdStreamLine)(const char *line, size_t size, void *userdata);

typedef struct EtcdStream {
        char *buf;
        size_t size, allocated;
        size_t max;                     /* 0: ETCD_RESPONSE_MAX */
} EtcdStream;

int etcd_stream_feed(EtcdStream *s, const void *data, size_t size, EtcdStreamLine cb, void *userdata);
void etcd_stream_done(EtcdStream *s);
