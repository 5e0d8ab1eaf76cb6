/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The etcd v3 JSON gateway's messages. Answers are parsed with json_dispatch() tables into the
 * typed EtcdResponse; unknown members are ignored (newer etcd versions add some), members we
 * use must have the type the gateway writes. Int64 fields come as strings ("revision": "12")
 * but numbers are accepted too. Nothing of a response is kept unless the whole response is
 * valid: parsing goes into a scratch EtcdResponse that is handed over only at the end.
 */

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "etcd-api.h"
#include "shared/buffer.h"
#include "shared/json-util.h"
#include "shared/string-table.h"

static const char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_encode(const void *data, size_t size, char **ret) {
        const uint8_t *p = data;
        char *s, *t;

        if (size > (SIZE_MAX - 1) / 4 * 3 - 2)
                return -EFBIG;
        s = t = malloc((size + 2) / 3 * 4 + 1);
        if (!s)
                return -ENOMEM;

        for (size_t i = 0; i < size; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16;

                if (i + 1 < size)
                        v |= (uint32_t) p[i + 1] << 8;
                if (i + 2 < size)
                        v |= p[i + 2];
                *t++ = base64_alphabet[(v >> 18) & 63];
                *t++ = base64_alphabet[(v >> 12) & 63];
                *t++ = i + 1 < size ? base64_alphabet[(v >> 6) & 63] : '=';
                *t++ = i + 2 < size ? base64_alphabet[v & 63] : '=';
        }
        *t = '\0';
        *ret = s;
        return 0;
}

static int base64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -EINVAL;
}

int base64_decode(const char *s, size_t n, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t k = 0;

        if (n % 4 != 0)
                return -EINVAL;
        buf = malloc(n / 4 * 3 + 1);
        if (!buf)
                return -ENOMEM;

        for (size_t i = 0; i < n; i += 4) {
                int v[4];
                size_t pad = 0;

                for (size_t j = 0; j < 4; j++) {
                        if (s[i + j] == '=' && i + 4 == n && j >= 2) {
                                v[j] = 0;
                                pad++;
                                continue;
                        }
                        /* Nothing but padding may follow padding. */
                        if (pad > 0)
                                return -EINVAL;
                        v[j] = base64_value(s[i + j]);
                        if (v[j] < 0)
                                return -EINVAL;
                }
                uint32_t x = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 | (uint32_t) v[2] << 6 |
                        (uint32_t) v[3];
                /* Bits below the last full byte must be zero: one encoding per byte string. */
                if ((pad == 1 && (x & 0xff) != 0) || (pad == 2 && (x & 0xffff) != 0))
                        return -EINVAL;
                buf[k++] = (char) (x >> 16);
                if (pad < 2)
                        buf[k++] = (char) (x >> 8);
                if (pad < 1)
                        buf[k++] = (char) x;
        }
        buf[k] = '\0';

        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = k;
        return 0;
}

int etcd_prefix_range_end(const char *prefix, char **ret) {
        _cleanup_free_ char *end = NULL;
        size_t n;

        if (isempty(prefix))
                return -EINVAL;
        end = strdup(prefix);
        if (!end)
                return -ENOMEM;
        for (n = strlen(end); n > 0; n--) {
                if ((uint8_t) end[n - 1] != 0xff) {
                        end[n - 1] = (char) ((uint8_t) end[n - 1] + 1);
                        end[n] = '\0';
                        *ret = TAKE_PTR(end);
                        return 0;
                }
        }
        return -EINVAL;
}

/* ---- request bodies ---- */

static int json_add_base64(json_object *o, const char *name, const char *s) {
        _cleanup_free_ char *b = NULL;
        int r;

        r = base64_encode(s, strlen(s), &b);
        if (r < 0)
                return r;
        return json_add_string(o, name, b);
}

/* int64 members go out as strings, as the gateway writes them itself. */
static int json_add_int64_string(json_object *o, const char *name, int64_t v) {
        char buf[32];

        (void) snprintf(buf, sizeof buf, "%" PRIi64, v);
        return json_add_string(o, name, buf);
}

static int body_finish(json_object *o, char **ret) {
        const char *s;
        char *t;

        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        t = strdup(s);
        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

static int txn_op(const EtcdTxnOp *op, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object(), *request = json_object_new_object();

        if (!o || !request || json_add_base64(request, "key", op->key) < 0)
                return -ENOMEM;
        if (op->value &&
            (json_add_base64(request, "value", op->value) < 0 ||
             (op->lease != 0 && json_add_int64_string(request, "lease", op->lease) < 0)))
                return -ENOMEM;
        if (json_object_object_add(o, op->value ? "request_put" : "request_delete_range", request) < 0)
                return -ENOMEM;
        TAKE_PTR(request);
        *ret = TAKE_PTR(o);
        return 0;
}

int etcd_body_txn(const EtcdTxnOp *ops, size_t n, char **ret) {
        _cleanup_json_ json_object *o = json_object_new_object(), *success = json_object_new_array();
        int r;

        if (n == 0 || n > ETCD_TXN_OPS_MAX)
                return -EINVAL;
        if (!o || !success)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *op;

                r = txn_op(&ops[i], &op);
                if (r < 0)
                        return r;
                if (json_object_array_add(success, op) < 0) {
                        json_object_put(op);
                        return -ENOMEM;
                }
        }
        if (json_object_object_add(o, "success", success) < 0)
                return -ENOMEM;
        TAKE_PTR(success);
        return body_finish(o, ret);
}

int etcd_body_range(const char *key, const char *range_end, bool keys_only, char **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();

        if (!o || json_add_base64(o, "key", key) < 0 ||
            (range_end && json_add_base64(o, "range_end", range_end) < 0) ||
            (keys_only && json_add_bool(o, "keys_only", true) < 0))
                return -ENOMEM;
        return body_finish(o, ret);
}

int etcd_body_grant(int64_t ttl_sec, char **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();

        if (!o || json_add_int64_string(o, "TTL", ttl_sec) < 0)
                return -ENOMEM;
        return body_finish(o, ret);
}

int etcd_body_keepalive(int64_t lease, char **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();

        if (!o || json_add_int64_string(o, "ID", lease) < 0)
                return -ENOMEM;
        return body_finish(o, ret);
}

int etcd_body_watch(const char *key, const char *range_end, int64_t start_revision, char **ret) {
        _cleanup_json_ json_object *o = json_object_new_object(), *c = json_object_new_object();

        if (!o || !c || json_add_base64(c, "key", key) < 0 ||
            (range_end && json_add_base64(c, "range_end", range_end) < 0) ||
            (start_revision > 0 && json_add_int64_string(c, "start_revision", start_revision) < 0))
                return -ENOMEM;
        if (json_object_object_add(o, "create_request", c) < 0)
                return -ENOMEM;
        TAKE_PTR(c);
        return body_finish(o, ret);
}

int etcd_body_authenticate(const char *name, const char *password, char **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();

        if (!o || json_add_string(o, "name", name) < 0 || json_add_string(o, "password", password) < 0)
                return -ENOMEM;
        return body_finish(o, ret);
}

/* ---- answers ---- */

static const char *const etcd_call_table[_ETCD_CALL_MAX] = {
        [ETCD_CALL_AUTHENTICATE] = "authenticate",
        [ETCD_CALL_GRANT] = "lease grant",
        [ETCD_CALL_KEEPALIVE] = "lease keepalive",
        [ETCD_CALL_TXN] = "txn",
        [ETCD_CALL_RANGE] = "range",
        [ETCD_CALL_WATCH] = "watch",
};

DEFINE_STRING_TABLE_LOOKUP_TO_STRING(etcd_call, EtcdCall);

void etcd_key_value_done(EtcdKeyValue *kv) {
        if (!kv)
                return;
        kv->key = mfree(kv->key);
        kv->value = mfree(kv->value);
        kv->key_size = kv->value_size = 0;
}

void etcd_response_done(EtcdResponse *r) {
        if (!r)
                return;
        free(r->error_message);
        free(r->token);
        for (size_t i = 0; i < r->n_kvs; i++)
                etcd_key_value_done(&r->kvs[i]);
        free(r->kvs);
        free(r->cancel_reason);
        for (size_t i = 0; i < r->n_events; i++)
                etcd_key_value_done(&r->events[i].kv);
        free(r->events);
        *r = (EtcdResponse) {};
}

/* An int64 as the gateway writes it ("12", "-1"), or as a plain JSON integer. */
static int dispatch_int64(const JsonDispatch *d, const char *name, json_object *v, void *field,
                          char **ret_error) {
        int64_t *p = field;

        if (json_object_is_type(v, json_type_int)) {
                errno = 0;
                int64_t i = json_object_get_int64(v);
                if (errno != 0)
                        return json_error(ret_error, "%s: integer out of range", name);
                *p = i;
                return 0;
        }
        if (json_object_is_type(v, json_type_string)) {
                const char *s = json_object_get_string(v);
                size_t n = (size_t) json_object_get_string_len(v);
                long long ll;
                char *end;

                if (n == 0 || n > 20 || strlen(s) != n || !strchr("-0123456789", s[0]))
                        return json_error(ret_error, "%s: must be an integer", name);
                errno = 0;
                ll = strtoll(s, &end, 10);
                if (errno != 0 || *end != '\0' || (s[0] == '-' && n == 1))
                        return json_error(ret_error, "%s: must be an integer", name);
                *p = ll;
                return 0;
        }
        return json_error(ret_error, "%s: must be an integer (or a string of one)", name);
}

static int dispatch_bool(const JsonDispatch *d, const char *name, json_object *v, void *field,
                         char **ret_error) {
        *(bool *) field = json_object_get_boolean(v);
        return 0;
}

static int dispatch_int(const JsonDispatch *d, const char *name, json_object *v, void *field,
                        char **ret_error) {
        int64_t i = 0;
        int r;

        r = json_get_int_in_range(name, v, INT_MIN, INT_MAX, &i, ret_error);
        if (r < 0)
                return r;
        *(int *) field = (int) i;
        return 0;
}

typedef struct Bytes {
        char *data;
        size_t size;
} Bytes;

static int dispatch_base64(const JsonDispatch *d, const char *name, json_object *v, void *field,
                           char **ret_error) {
        Bytes *b = field;
        char *data;
        size_t size;
        int r;

        r = base64_decode(json_object_get_string(v), (size_t) json_object_get_string_len(v), &data, &size);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return json_error(ret_error, "%s: invalid base64", name);
        free(b->data);
        b->data = data;
        b->size = size;
        return 0;
}

typedef struct KeyValueScratch {
        Bytes key, value;
        bool has_value;
        int64_t create_revision, mod_revision, version, lease;
} KeyValueScratch;

static int dispatch_value(const JsonDispatch *d, const char *name, json_object *v, void *field,
                          char **ret_error) {
        KeyValueScratch *s = (KeyValueScratch *) ((uint8_t *) field - offsetof(KeyValueScratch, value));

        s->has_value = true;
        return dispatch_base64(d, name, v, field, ret_error);
}

/* A "kv" object into ret; name is its path for messages ("kvs[3]"). */
static int parse_key_value(json_object *o, const char *name, EtcdKeyValue *ret, char **ret_error) {
        static const JsonDispatch table[] = {
#define KV(field) offsetof(KeyValueScratch, field)
                { "key",             json_type_string, dispatch_base64, KV(key),   JSON_MANDATORY },
                { "value",           json_type_string, dispatch_value,  KV(value)                 },
                { "create_revision", JSON_TYPE_ANY,    dispatch_int64,  KV(create_revision)       },
                { "mod_revision",    JSON_TYPE_ANY,    dispatch_int64,  KV(mod_revision)          },
                { "version",         JSON_TYPE_ANY,    dispatch_int64,  KV(version)               },
                { "lease",           JSON_TYPE_ANY,    dispatch_int64,  KV(lease)                 },
#undef KV
                {}
        };
        KeyValueScratch s = {};
        int r;

        r = json_dispatch(o, name, table, JSON_ALLOW_UNKNOWN, &s, ret_error);
        if (r < 0) {
                free(s.key.data);
                free(s.value.data);
                return r;
        }
        /* A put of an empty value leaves "value" out (proto3 zero value): that is an empty value. */
        if (!s.has_value) {
                s.value.data = strdup("");
                if (!s.value.data) {
                        free(s.key.data);
                        return -ENOMEM;
                }
        }
        *ret = (EtcdKeyValue) {
                .key = s.key.data,
                .key_size = s.key.size,
                .value = s.value.data,
                .value_size = s.value.size,
                .create_revision = s.create_revision,
                .mod_revision = s.mod_revision,
                .version = s.version,
                .lease = s.lease,
        };
        return 0;
}

static int dispatch_header(const JsonDispatch *d, const char *name, json_object *v, void *field,
                           char **ret_error) {
        static const JsonDispatch table[] = {
                { "revision", JSON_TYPE_ANY, dispatch_int64, 0 },
                {}
        };

        return json_dispatch(v, name, table, JSON_ALLOW_UNKNOWN, field, ret_error);
}

typedef int (*ItemParser)(json_object *o, const char *name, void *item, char **ret_error);

/* The elements of the array v, each parsed by parse into an item of item_size bytes. The array is
 * handed out at once (with *ret_n counting the items done) so that the caller frees it on error. */
static int parse_array(json_object *v, const char *name, size_t item_size, ItemParser parse,
                       void **ret_items, size_t *ret_n, char **ret_error) {
        size_t n = json_object_array_length(v);
        uint8_t *items;

        if (*ret_items)
                return json_error(ret_error, "%s: given twice", name);
        items = calloc(MAX(n, 1U), item_size);
        if (!items)
                return -ENOMEM;
        *ret_items = items;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *item = NULL;
                int r;

                if (asprintf(&item, "%s[%zu]", name, i) < 0) {
                        item = NULL;
                        return -ENOMEM;
                }
                r = parse(json_object_array_get_idx(v, i), item, items + i * item_size, ret_error);
                if (r < 0)
                        return r;
                (*ret_n)++;
        }
        return 0;
}

static int parse_kv_item(json_object *o, const char *name, void *item, char **ret_error) {
        return parse_key_value(o, name, item, ret_error);
}

static int dispatch_kvs(const JsonDispatch *d, const char *name, json_object *v, void *field,
                        char **ret_error) {
        EtcdResponse *resp = (EtcdResponse *) ((uint8_t *) field - offsetof(EtcdResponse, kvs));

        return parse_array(v, name, sizeof(EtcdKeyValue), parse_kv_item, (void **) &resp->kvs, &resp->n_kvs,
                           ret_error);
}

typedef struct EventScratch {
        char *type;
        json_object *kv;
} EventScratch;

static int dispatch_object_ref(const JsonDispatch *d, const char *name, json_object *v, void *field,
                               char **ret_error) {
        *(json_object **) field = v;
        return 0;
}

static int parse_event_item(json_object *o, const char *name, void *item, char **ret_error) {
        static const JsonDispatch table[] = {
                { "type", json_type_string, json_dispatch_string, offsetof(EventScratch, type) },
                { "kv",   json_type_object, dispatch_object_ref,  offsetof(EventScratch, kv),
                  JSON_MANDATORY },
                {}
        };
        _cleanup_free_ char *kv_name = NULL;
        EtcdEvent *event = item;
        EventScratch s = {};
        EtcdEventType type;
        int r;

        r = json_dispatch(o, name, table, JSON_ALLOW_UNKNOWN, &s, ret_error);
        if (r < 0) {
                free(s.type);
                return r;
        }
        /* PUT is the zero value of the enum: the gateway leaves it out. */
        type = !s.type || streq(s.type, "PUT") ? ETCD_EVENT_PUT :
                streq(s.type, "DELETE") ? ETCD_EVENT_DELETE : _ETCD_EVENT_TYPE_INVALID;
        if (type < 0) {
                _cleanup_free_ char *q = json_escape_for_message(s.type);

                free(s.type);
                if (!q)
                        return -ENOMEM;
                return json_error(ret_error, "%s.type: unknown event type \"%s\"", name, q);
        }
        free(s.type);

        if (asprintf(&kv_name, "%s.kv", name) < 0) {
                kv_name = NULL;
                return -ENOMEM;
        }
        r = parse_key_value(s.kv, kv_name, &event->kv, ret_error);
        if (r < 0)
                return r;
        event->type = type;
        return 0;
}

static int dispatch_events(const JsonDispatch *d, const char *name, json_object *v, void *field,
                           char **ret_error) {
        EtcdResponse *resp = (EtcdResponse *) ((uint8_t *) field - offsetof(EtcdResponse, events));

        return parse_array(v, name, sizeof(EtcdEvent), parse_event_item, (void **) &resp->events,
                           &resp->n_events, ret_error);
}

/* Every member any answer may have: one table, the call decides what must be there. */
#define R(field) offsetof(EtcdResponse, field)
static const JsonDispatch response_table[] = {
        { "header",           json_type_object,  dispatch_header,      R(revision)         },
        { "token",            json_type_string,  json_dispatch_string, R(token)            },
        { "ID",               JSON_TYPE_ANY,     dispatch_int64,       R(lease_id)         },
        { "TTL",              JSON_TYPE_ANY,     dispatch_int64,       R(ttl)              },
        { "kvs",              json_type_array,   dispatch_kvs,         R(kvs)              },
        { "more",             json_type_boolean, dispatch_bool,        R(more)             },
        { "succeeded",        json_type_boolean, dispatch_bool,        R(succeeded)        },
        { "created",          json_type_boolean, dispatch_bool,        R(created)          },
        { "canceled",         json_type_boolean, dispatch_bool,        R(canceled)         },
        { "compact_revision", JSON_TYPE_ANY,     dispatch_int64,       R(compact_revision) },
        { "cancel_reason",    json_type_string,  json_dispatch_string, R(cancel_reason)    },
        { "events",           json_type_array,   dispatch_events,      R(events)           },
        {}
};
#undef R

typedef struct ErrorScratch {
        char *error;                    /* unary: the message; streams: an object (see below) */
        char *message;
        int code;
} ErrorScratch;

/* {"error": "text", "message": "text", "code": N} of a unary call, or
 * {"error": {"grpc_code": N, "http_code": N, "message": "text", "http_status": "text"}} inside a
 * stream. Returns 1 and fills ret when o is one, 0 when it is not. */
static int parse_error(json_object *o, EtcdResponse *ret, char **ret_error) {
        static const JsonDispatch unary[] = {
                { "error",   json_type_string, json_dispatch_string, offsetof(ErrorScratch, error) },
                { "message", json_type_string, json_dispatch_string, offsetof(ErrorScratch, message) },
                { "code",    json_type_int,    dispatch_int,         offsetof(ErrorScratch, code) },
                {}
        };
        static const JsonDispatch stream[] = {
                { "message",   json_type_string, json_dispatch_string, offsetof(ErrorScratch, message) },
                { "grpc_code", json_type_int,    dispatch_int,         offsetof(ErrorScratch, code) },
                {}
        };
        ErrorScratch s = {};
        json_object *e;
        int r;

        if (!json_object_object_get_ex(o, "error", &e))
                return 0;
        if (json_object_is_type(e, json_type_object))
                r = json_dispatch(e, "error", stream, JSON_ALLOW_UNKNOWN, &s, ret_error);
        else
                r = json_dispatch(o, NULL, unary, JSON_ALLOW_UNKNOWN, &s, ret_error);
        if (r < 0) {
                free(s.error);
                free(s.message);
                return r;
        }

        ret->error_code = s.code;
        ret->error_message = s.message ?: s.error;
        if (s.message)
                free(s.error);
        if (!ret->error_message && !(ret->error_message = strdup("unknown error")))
                return -ENOMEM;
        return 1;
}

static bool call_is_streamed(EtcdCall call) {
        return call == ETCD_CALL_KEEPALIVE || call == ETCD_CALL_WATCH;
}

int etcd_response_parse(EtcdCall call, const char *text, size_t size, EtcdResponse *ret, char **ret_error) {
        _cleanup_(etcd_response_done) EtcdResponse r = {};
        _cleanup_json_ json_object *doc = NULL;
        _cleanup_free_ char *error = NULL;
        json_object *o;
        int k;

        if (call < 0 || call >= _ETCD_CALL_MAX)
                return -EINVAL;

        k = json_parse_document(text, size, ETCD_RESPONSE_MAX, &doc, &error);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                if (ret_error)
                        *ret_error = TAKE_PTR(error);
                return k;
        }
        if (!json_object_is_type(doc, json_type_object))
                return json_error(ret_error, "answer must be a JSON object");

        k = parse_error(doc, &r, ret_error);
        if (k < 0)
                return k;
        if (k > 0) {
                _cleanup_free_ char *q = json_escape_for_message(r.error_message);

                if (!q)
                        return -ENOMEM;
                if (ret_error &&
                    asprintf(ret_error, "etcd answered error %d: \"%s\"", r.error_code, q) < 0) {
                        *ret_error = NULL;
                        return -ENOMEM;
                }
                *ret = (EtcdResponse) {
                        .error_code = r.error_code,
                        .error_message = TAKE_PTR(r.error_message),
                };
                return -EREMOTEIO;
        }

        /* Streamed calls wrap each message: {"result": {...}}. */
        o = doc;
        if (call_is_streamed(call)) {
                if (!json_object_object_get_ex(doc, "result", &o))
                        return json_error(ret_error, "result: is required");
                if (!json_object_is_type(o, json_type_object))
                        return json_error(ret_error, "result: must be an object");
        }

        k = json_dispatch(o, call_is_streamed(call) ? "result" : NULL, response_table, JSON_ALLOW_UNKNOWN,
                          &r, ret_error);
        if (k < 0)
                return k;

        switch (call) {
        case ETCD_CALL_AUTHENTICATE:
                if (isempty(r.token))
                        return json_error(ret_error, "token: is required");
                break;
        case ETCD_CALL_GRANT:
                if (r.lease_id <= 0)
                        return json_error(ret_error, "ID: must be a positive lease id");
                if (r.ttl <= 0)
                        return json_error(ret_error, "TTL: must be positive for a granted lease");
                break;
        case ETCD_CALL_KEEPALIVE:
                /* TTL absent or <= 0: the lease is gone; the caller decides. */
                break;
        case ETCD_CALL_RANGE:
                if (r.revision <= 0)
                        return json_error(ret_error, "header.revision: is required");
                break;
        case ETCD_CALL_TXN:
                if (r.revision <= 0)
                        return json_error(ret_error, "header.revision: is required");
                /* Ours have no conditions: one that did not apply is not an answer to them. */
                if (!r.succeeded)
                        return json_error(ret_error, "succeeded: must be true for a transaction "
                                          "without conditions");
                break;
        case ETCD_CALL_WATCH:
                if (r.revision < 0)
                        return json_error(ret_error, "result.header.revision: must not be negative");
                break;
        default:
                break;
        }

        *ret = r;
        r = (EtcdResponse) {};
        return 0;
}

/* ---- streams ---- */

/* A line without its newline (and a CR before it); blank lines are keep-alive noise. */
static int stream_emit(const char *line, size_t n, EtcdStreamLine cb, void *userdata) {
        if (n > 0 && line[n - 1] == '\r')
                n--;
        if (n == 0)
                return 0;
        return cb(line, n, userdata);
}

int etcd_stream_feed(EtcdStream *s, const void *data, size_t size, EtcdStreamLine cb, void *userdata) {
        const char *p = data;
        size_t max = s->max > 0 ? s->max : ETCD_RESPONSE_MAX;
        int r;

        while (size > 0) {
                const char *nl = memchr(p, '\n', size);
                size_t n = nl ? (size_t) (nl - p) : size;

                if (s->size + n > max)
                        return -EFBIG;

                if (nl && s->size == 0) {
                        /* A whole line in the input: no copy. */
                        r = stream_emit(p, n, cb, userdata);
                        if (r < 0)
                                return r;
                } else {
                        r = buffer_append(&s->buf, &s->size, &s->allocated, p, n, 4096, max);
                        if (r < 0)
                                return r;
                        if (nl) {
                                size_t len = s->size;

                                s->size = 0;
                                r = stream_emit(s->buf, len, cb, userdata);
                                if (r < 0)
                                        return r;
                        }
                }
                if (!nl)
                        break;
                p = nl + 1;
                size -= n + 1;
        }
        return 0;
}

void etcd_stream_done(EtcdStream *s) {
        if (!s)
                return;
        s->buf = mfree(s->buf);
        s->size = s->allocated = 0;
}
