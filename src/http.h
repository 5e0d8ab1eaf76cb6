/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The HTTP front-end's transport: libmicrohttpd on the manager's sd-event loop. MHD runs in
 * epoll mode without threads of its own; its epoll fd is an sd-event io source and its
 * connection timeouts a one-shot timer re-armed after every MHD_run(). The listening socket is
 * the one systemd passed (socket activation) or one bound to Listen=.
 *
 * A request is collected here (headers, then the whole body up to HTTP_BODY_MAX) and handed to
 * http_api_handle() once complete. A handler answers at once with http_request_reply(), or
 * defers: the connection is suspended until a later http_request_reply() (from a manager
 * callback) resumes it. Routes and their JSON live in http-api.c.
 */

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "shared/macro.h"
#include "shared/pool-error.h"

typedef struct Manager Manager;
typedef struct HttpServer HttpServer;
typedef struct HttpRequest HttpRequest;

#define HTTP_HEADER_CORRELATION_ID "X-Correlation-Id"

/* Hard cap on request bodies; larger ones get 413 and are never parsed. */
#define HTTP_BODY_MAX (64U * 1024U)

/* A deferred request whose client went away before the answer: the handler's chance to
 * unregister whatever would call http_request_reply() later. */
typedef void (*HttpRequestAbandonCallback)(HttpRequest *r);
/* A streamed answer ended (client gone, stream ended or dropped, server stopped): the request is
 * freed right after the call. */
typedef void (*HttpStreamCloseCallback)(HttpRequest *r, void *userdata);

/* A streamed answer whose client does not read keeps at most this much queued; past it the
 * stream is dropped (http_request_stream_write() returns -ENOBUFS). */
#define HTTP_STREAM_BUFFER_MAX ((size_t) 1024U * 1024U)

struct HttpRequest {
        HttpServer *server;
        Manager *manager;
        struct MHD_Connection *connection;

        const char *method;             /* owned by MHD, valid for the request's life */
        const char *path;               /* raw (still percent-encoded), without the query */
        char *client;                   /* "127.0.0.1:41234", for log messages */

        char *body;                     /* NUL-terminated; NULL when empty */
        size_t body_size;
        bool body_too_large;            /* more than HTTP_BODY_MAX bytes came: body is discarded */
        size_t body_discarded;

        /* The answer, once known. */
        unsigned status;
        char *reply;
        char *reply_header_name, *reply_header_value;
        const char *reply_content_type; /* static; NULL: application/json */
        char *correlation_id;           /* X-Correlation-Id: the client's, or generated; echoed */
        bool replied;

                /* A streamed answer (http_request_reply_stream()): what is queued and not yet handed to
         * MHD is stream[stream_sent..stream_size). */
        bool streaming, stream_ended, stream_failed;
        char *stream;
        size_t stream_size, stream_sent;
        HttpStreamCloseCallback stream_close;
        void *stream_userdata;
        sd_event_source *stream_hangup_source;  /* the client closing its end, seen while suspended */
        /* Extra headers of a static answer: name, value, ..., NULL (static storage). */
        const char *const *reply_static_headers;
        const char *reply_static;       /* a static body (http_request_reply_static()) */
        size_t reply_static_size;

        /* Deferred: the connection is (or is about to be) suspended until replied. */
        bool deferred, suspended;
        HttpRequestAbandonCallback abandon;
        char *pool_id;                  /* the pool a deferred request waits for (http-api.c) */
        bool held;                      /* waits for the daemon's start-up to complete */

        HttpRequest *prev, *next;
};

/* Holds a request until the daemon's start-up is complete: http_server_release_held() routes it
 * again then (or, when start-up timed out, the handler sees manager->startup_timed_out). */
void http_request_hold(HttpRequest *r);
void http_server_release_held(HttpServer *s);

int http_server_new(HttpServer **ret, Manager *m);
/* Suspended requests are resumed and dropped first, as MHD requires. Free the pools first:
 * their pending callbacks complete the requests waiting on them. */
HttpServer *http_server_free(HttpServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpServer *, http_server_free);

/*
 * Reads the API token (ApiTokenFile=, else $LLORCH_API_TOKEN), takes the socket passed by
 * systemd or binds Listen=, and starts serving. Refuses to serve a non-loopback address
 * without a token. Logs its errors.
 */
int http_server_start(HttpServer *s);

/* What the server listens on ("127.0.0.1:9200", "[::1]:9200"), NULL before it started. */
const char *http_server_address(const HttpServer *s);

/* Whether the request carries "Authorization: Bearer <token>" with the configured token, or
 * no token is configured. Constant-time. */
bool http_request_authorized(HttpRequest *r);
/* A request header, NULL when absent. */
const char *http_request_header(HttpRequest *r, const char *name);

/*
 * Sets the answer: a JSON body (not consumed; NULL for none) and optionally one extra header.
 * From a handler the answer is sent when it returns; for a deferred request the connection is
 * resumed. Only the first answer counts. On -ENOMEM a bare 500 goes out instead.
 */
int http_request_reply_full(HttpRequest *r, unsigned status, json_object *body,
                            const char *header_name, const char *header_value);
static inline int http_request_reply(HttpRequest *r, unsigned status, json_object *body) {
        return http_request_reply_full(r, status, body, NULL, NULL);
}
/* A text body (taken over, freed with the request) of the given static Content-Type. */
int http_request_reply_text(HttpRequest *r, unsigned status, const char *content_type, char *text);
/* {"error": "<formatted message>", "code": "<code>"} with the code's HTTP status (the table of
 * shared/pool-error.c). */
int http_request_reply_error(HttpRequest *r, PoolErrorCode code, const char *format, ...) _printf_(3, 4);
int http_request_reply_pool_error_full(HttpRequest *r, const PoolError *e, const char *header_name,
                                       const char *header_value);
static inline int http_request_reply_pool_error(HttpRequest *r, const PoolError *e) {
        return http_request_reply_pool_error_full(r, e, NULL, NULL);
}

/* A static body (not copied, must outlive the request) with static extra headers (name, value,
 * ..., NULL; may be NULL). */
int http_request_reply_static(HttpRequest *r, unsigned status, const char *content_type, const char *body,
                              size_t size, const char *const *headers);

/*
 * A long-lived answer of unknown length (server-sent events): status 200 with the given static
 * Content-Type, sent chunked; its body is what http_request_stream_write() queues, until
 * http_request_stream_end(). While nothing is queued the connection is suspended (no polling, no
 * idle timeout: MHD takes it out of its epoll set), so a client that went away is noticed at the
 * next write only; writers send something periodically. on_close runs once when the stream ends
 * for any reason. The connection stays "being handled": RequestTimeoutSec= never evicts it, and
 * it counts against MaxConnections= (callers cap their streams).
 */
int http_request_reply_stream(HttpRequest *r, const char *content_type, HttpStreamCloseCallback on_close,
                              void *userdata);
/* Queues data; -ENOBUFS when the client is too slow (more than HTTP_STREAM_BUFFER_MAX queued): the
 * stream is then dropped, the connection closed. -EPIPE when the stream has ended already. */
int http_request_stream_write(HttpRequest *r, const char *data, size_t size);
/* Ends the stream once what is queued is sent. */
void http_request_stream_end(HttpRequest *r);

/* MaxConnections=, as fitted to RLIMIT_NOFILE: what callers size their stream caps by. */
unsigned http_server_connection_limit(const HttpServer *s);

/* From a handler: answer later. abandon (optional) runs if the request ends unanswered. */
void http_request_defer(HttpRequest *r, HttpRequestAbandonCallback abandon);
