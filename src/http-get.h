/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * One HTTP/1.1 GET to an engine on this node, on the event loop: the health probes and the
 * engine-metrics scrapes. No thread, no blocking call, no library: a non-blocking TCP
 * connection, one request with "Connection: close", the answer parsed as it comes
 * (src/http-response.c), the whole within a timeout.
 *
 * URLs are those prepared_engine_base_url() makes: "http://" an IPv4 literal, a bracketed IPv6
 * literal or "localhost" (127.0.0.1, then ::1), ":" port, then a path. Nothing is resolved.
 *
 * The connection's own port is picked before connecting, and never the engine's port: a
 * connect from host:P to host:P while nothing listens on P yet connects to itself (TCP
 * simultaneous open) and then holds the port the engine is about to bind.
 */

#include <stddef.h>

#include <systemd/sd-event.h>

#include "http-response.h"
#include "shared/macro.h"
#include "shared/string-util.h"
#include "shared/time-util.h"

typedef struct HttpGet HttpGet;

/*
 * Called once, when the answer is complete (r == 0: `response` holds the status and, up to
 * body_max, the body) or when the request failed (r < 0: -ECONNREFUSED and other connect
 * errors, -ETIMEDOUT, -EBADMSG for an answer that is not HTTP, -EFBIG for a body over
 * body_max; `error` says it in words: "Connection refused", "timed out after 1000 ms", ...).
 * The callback may free the request.
 */
typedef void (*HttpGetCallback)(HttpGet *g, int r, const HttpResponse *response, const char *error,
                                void *userdata);

/* Starts the request at once. body_max 0: the body is read and dropped. -EINVAL for a URL of
 * another form. */
int http_get_start(HttpGet **ret, sd_event *event, const char *url, usec_t timeout, size_t body_max,
                   HttpGetCallback cb, void *userdata);
/* Cancels a request still running (the callback is not called). */
HttpGet *http_get_free(HttpGet *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpGet *, http_get_free);

/* The parts of such a URL. Exposed for the tests. */
typedef struct HttpUrl {
        HostPort address;               /* the addresses to try, in order, and the port */
        char *host;                     /* for the Host header: "127.0.0.1:8080", "[::1]:8080" */
        char *path;                     /* "/health" */
} HttpUrl;

int http_url_parse(const char *url, HttpUrl *ret);
void http_url_done(HttpUrl *u);
