/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * GET /events: the registry as server-sent events, for the status page and for orchestrators.
 * A client gets a snapshot of every pool at once, then one "pool" event whenever a pool's status
 * JSON changes (state, readiness, leases, slots, crash and restart counts, last error; the
 * heartbeat alone is no change) and one "removed" event when a pool leaves the registry. Each
 * event has an id from one sequence per daemon run; a comment line every
 * HTTP_EVENTS_KEEPALIVE_USEC keeps proxies from closing the stream and finds clients that went
 * away. Streams are capped (HTTP_EVENTS_CLIENTS_MAX, and half of MaxConnections=) so that they
 * cannot take every connection, and a client that does not read is dropped (http.h).
 */

#include "http.h"
#include "shared/macro.h"
#include "shared/time-util.h"

typedef struct HttpEvents HttpEvents;

#define HTTP_EVENTS_CONTENT_TYPE "text/event-stream"
#define HTTP_EVENTS_CLIENTS_MAX 64U
#define HTTP_EVENTS_KEEPALIVE_USEC (15 * USEC_PER_SEC)
/* The reconnection delay EventSource clients are told ("retry:"), in ms. */
#define HTTP_EVENTS_RETRY_MSEC 1000U

int http_events_new(HttpEvents **ret, Manager *m);
/* Ends the streams still open. */
HttpEvents *http_events_free(HttpEvents *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpEvents *, http_events_free);

/* Answers GET /events: the stream, starting with a snapshot (also for a reconnecting client that
 * sends Last-Event-ID: what it missed is in the snapshot); 503 past the cap. */
int http_events_subscribe(HttpEvents *e, HttpRequest *r);

/* A pool's entry in the registry may have changed: a "pool" event, or "removed" when it is gone,
 * if it differs from what the clients last got. Cheap without clients. */
void http_events_pool_changed(HttpEvents *e, const char *id);
/* "removed" for every pool the clients know that the registry no longer has. */
void http_events_sync(HttpEvents *e);

unsigned http_events_n_clients(const HttpEvents *e);
