/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The server-sent events of GET /events (see http-events.h). What each pool last looked like to
 * the clients is kept (its status JSON less the heartbeat, as text), so an event goes out exactly
 * when that changes, wherever the change came from: the pool's one state setter, a lease, a probe
 * that saw other slots (each reported through manager_pool_changed()), a removal. The setter reports through manager_pool_changed() at once, so a
 * crash shows as its own transitions (ready -> backoff -> starting -> ...) and not only as their
 * sum at the end of the loop iteration. Nothing is kept while nobody listens.
 */

#include <microhttpd.h>

#include "gpu.h"
#include "http-api.h"
#include "http-events.h"
#include "log.h"
#include "manager.h"
#include "shared/json-util.h"
#include "shared/list.h"
#include "shared/strv.h"

typedef struct EventClient EventClient;
struct EventClient {
        HttpEvents *events;
        HttpRequest *request;
        EventClient *prev, *next;
};

struct HttpEvents {
        Manager *manager;
        EventClient *clients_head, *clients_tail;
        unsigned n_clients;
        uint64_t seq;                   /* the id of the last event sent */
        json_object *sent;              /* pool id -> what the clients last got (text); NULL: no clients */
        sd_event_source *keepalive_timer;
};

static EventClient *event_client_free(EventClient *c) {
        HttpEvents *e;

        if (!c)
                return NULL;
        e = c->events;
        LIST_REMOVE(e->clients_head, e->clients_tail, c);
        e->n_clients--;
        if (e->n_clients == 0) {
                /* Nobody listens: nothing to compare with until the next snapshot. */
                json_object_put(TAKE_PTR(e->sent));
                (void) sd_event_source_set_enabled(e->keepalive_timer, SD_EVENT_OFF);
        }
        return mfree(c);
}

/* The stream ended: the client went away, was too slow, or the server stops. */
static void on_stream_close(HttpRequest *r, void *userdata) {
        EventClient *c = userdata;

        log_debug("HTTP event stream to %s closed.", r->client);
        event_client_free(c);
}

/* Writes text to one client; a client that cannot take it is dropped (its stream ends, and
 * on_stream_close() frees it later, from MHD). */
static void event_client_write(EventClient *c, const char *text, size_t size) {
        int r;

        r = http_request_stream_write(c->request, text, size);
        if (r == -ENOBUFS)
                log_notice("HTTP event stream to %s dropped: the client reads slower than events come "
                           "(more than %zu bytes queued).", c->request->client, HTTP_STREAM_BUFFER_MAX);
        else if (r == -ENOMEM)
                log_oom();
}

static void events_broadcast(HttpEvents *e, const char *text, size_t size) {
        for (EventClient *c = e->clients_head, *next; c; c = next) {
                next = c->next;
                event_client_write(c, text, size);
        }
}

/* "event: NAME\nid: N\ndata: JSON\n\n", after "retry: MS\n" when asked; the JSON is printed on one
 * line, as one data line must be. */
static int event_format(const char *name, uint64_t id, bool retry, json_object *data, char **ret) {
        const char *text;
        int k;

        text = json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return -ENOMEM;
        if (retry)
                k = asprintf(ret, "retry: %u\nevent: %s\nid: %" PRIu64 "\ndata: %s\n\n", HTTP_EVENTS_RETRY_MSEC,
                             name, id, text);
        else
                k = asprintf(ret, "event: %s\nid: %" PRIu64 "\ndata: %s\n\n", name, id, text);
        if (k < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* A pool's status as the clients compare it: without the heartbeat, which moves with every
 * probe. */
static int entry_compare_text(json_object *status, char **ret) {
        _cleanup_json_ json_object *copy = NULL;
        const char *text;
        char *s;

        if (json_object_deep_copy(status, &copy, NULL) < 0)
                return -ENOMEM;
        json_object_object_del(copy, "last_heartbeat_ms");
        text = json_object_to_json_string_ext(copy, JSON_C_TO_STRING_PLAIN);
        if (!text)
                return -ENOMEM;
        s = strdup(text);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Records what the clients see of a pool; 1 when that differs from what they saw. */
static int sent_update(HttpEvents *e, const char *id, json_object *status) {
        _cleanup_free_ char *text = NULL;
        json_object *old;
        int r;

        r = entry_compare_text(status, &text);
        if (r < 0)
                return r;
        if (json_object_object_get_ex(e->sent, id, &old) && streq(json_object_get_string(old), text))
                return 0;
        r = json_add_string(e->sent, id, text);
        if (r < 0)
                return r;
        return 1;
}

static int events_emit_pool(HttpEvents *e, const char *id) {
        _cleanup_json_ json_object *status = NULL, *removed = NULL;
        _cleanup_free_ char *text = NULL;
        const PoolEntry *entry;
        int r;

        entry = registry_get(e->manager->registry, id);
        if (!entry) {
                if (!json_object_object_get_ex(e->sent, id, NULL))
                        return 0;
                json_object_object_del(e->sent, id);
                removed = json_object_new_object();
                if (!removed || json_add_string(removed, "pool_id", id) < 0)
                        return -ENOMEM;
                r = event_format("removed", ++e->seq, false, removed, &text);
        } else {
                r = pool_entry_to_json(entry, &status);
                if (r < 0)
                        return r;
                r = sent_update(e, id, status);
                if (r <= 0)
                        return r;
                r = event_format("pool", ++e->seq, false, status, &text);
        }
        if (r < 0)
                return r;
        events_broadcast(e, text, strlen(text));
        return 0;
}

void http_events_pool_changed(HttpEvents *e, const char *id) {
        if (!e || !e->sent || !id)
                return;
        if (events_emit_pool(e, id) < 0)
                log_oom();
}

/* Changes come through http_events_pool_changed() (every write to the registry is followed by
 * manager_pool_changed()); only removals are looked for here, which is cheap with many pools. */
void http_events_sync(HttpEvents *e) {
        _cleanup_strv_free_ char **gone = NULL;
        Registry *reg;

        if (!e || !e->sent)
                return;
        reg = e->manager->registry;

        json_object_object_foreach(e->sent, id, v) {
                (void) v;
                if (!registry_get(reg, id) && strv_extend(&gone, id) < 0)
                        return (void) log_oom();
        }
        STRV_FOREACH(g, gone)
                http_events_pool_changed(e, *g);
}

/* {"pools": [... as GET /pools ...], "devices": {... as GET /devices ...}} and the clients' view
 * of every pool recorded. */
static int events_snapshot(HttpEvents *e, json_object **ret) {
        _cleanup_json_ json_object *o = NULL, *pools = NULL, *devices = NULL;
        int r;

        r = pools_to_json(e->manager->registry, &pools);
        if (r < 0)
                return r;
        if (!e->sent) {
                e->sent = json_object_new_object();
                if (!e->sent)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < json_object_array_length(pools); i++) {
                json_object *status = json_object_array_get_idx(pools, i), *id;

                if (!json_object_object_get_ex(status, "pool_id", &id))
                        continue;
                r = sent_update(e, json_object_get_string(id), status);
                if (r < 0)
                        return r;
        }
        if (e->manager->gpus) {
                r = gpu_inventory_to_json(e->manager->gpus, &devices);
                if (r < 0)
                        return r;
        }

        o = json_object_new_object();
        if (!o || json_add_take(o, "pools", TAKE_PTR(pools)) < 0 ||
            json_add_take(o, "devices", TAKE_PTR(devices)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

static int on_keepalive(sd_event_source *source, uint64_t usec, void *userdata) {
        HttpEvents *e = userdata;
        static const char comment[] = ": keepalive\n\n";

        events_broadcast(e, comment, strlen(comment));
        if (e->n_clients > 0 &&
            (sd_event_source_set_time(source, usec + HTTP_EVENTS_KEEPALIVE_USEC) < 0 ||
             sd_event_source_set_enabled(source, SD_EVENT_ON) < 0))
                log_warning("Failed to arm the HTTP event stream keepalive timer.");
        return 0;
}

int http_events_subscribe(HttpEvents *e, HttpRequest *r) {
        _cleanup_json_ json_object *snapshot = NULL;
        _cleanup_free_ char *text = NULL;
        const char *last_id;
        EventClient *c;
        unsigned cap;
        usec_t t;
        int k;

        /* Streams are never evicted to make room: keep half of the connections for requests. */
        cap = MIN(HTTP_EVENTS_CLIENTS_MAX, MAX(http_server_connection_limit(r->server) / 2, 1U));
        if (e->n_clients >= cap)
                return http_request_reply_pool_error_full(r, &(PoolError) { POOL_ERROR_TOO_MANY_CONNECTIONS, (char *)
                                                          "too many event streams open; retry later" },
                                                          MHD_HTTP_HEADER_RETRY_AFTER, "5");

        /* Whatever a reconnecting client missed is in the snapshot. */
        last_id = http_request_header(r, "Last-Event-ID");
        if (last_id)
                log_debug("HTTP event stream from %s resumes after event %s: sending a snapshot.", r->client,
                          last_id);

        k = events_snapshot(e, &snapshot);
        if (k < 0)
                return k;
        /* The snapshot carries the id of the last event sent: later ones are newer. */
        k = event_format("snapshot", e->seq, true, snapshot, &text);
        if (k < 0)
                return k;

        c = calloc(1, sizeof(EventClient));
        if (!c)
                return -ENOMEM;
        *c = (EventClient) {
                .events = e,
                .request = r,
        };
        k = http_request_reply_stream(r, HTTP_EVENTS_CONTENT_TYPE, on_stream_close, c);
        if (k < 0) {
                free(c);
                return k;
        }
        LIST_APPEND(e->clients_head, e->clients_tail, c);
        e->n_clients++;
        event_client_write(c, text, strlen(text));

        if (e->n_clients == 1) {
                t = now(CLOCK_MONOTONIC) + HTTP_EVENTS_KEEPALIVE_USEC;
                if (sd_event_source_set_time(e->keepalive_timer, t) < 0 ||
                    sd_event_source_set_enabled(e->keepalive_timer, SD_EVENT_ON) < 0)
                        log_warning("Failed to arm the HTTP event stream keepalive timer.");
        }
        log_debug("HTTP event stream to %s opened (%u open).", r->client, e->n_clients);
        return 0;
}

unsigned http_events_n_clients(const HttpEvents *e) {
        return e ? e->n_clients : 0;
}

int http_events_new(HttpEvents **ret, Manager *m) {
        _cleanup_(http_events_freep) HttpEvents *e = NULL;
        int r;

        e = calloc(1, sizeof(HttpEvents));
        if (!e)
                return -ENOMEM;
        e->manager = m;

        r = sd_event_add_time(m->event, &e->keepalive_timer, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_SEC,
                              on_keepalive, e);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(e->keepalive_timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(e->keepalive_timer, "http-events-keepalive");

        *ret = TAKE_PTR(e);
        return 0;
}

HttpEvents *http_events_free(HttpEvents *e) {
        if (!e)
                return NULL;

        /* Only streams the HTTP server did not close already (it is freed first): they end, and
         * forget us. */
        while (e->clients_head) {
                EventClient *c = e->clients_head;

                c->request->stream_close = NULL;
                http_request_stream_end(c->request);
                event_client_free(c);
        }
        e->keepalive_timer = sd_event_source_disable_unref(e->keepalive_timer);
        json_object_put(e->sent);
        return mfree(e);
}
