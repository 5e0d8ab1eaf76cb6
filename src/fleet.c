/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The fleet client. Phases of the connection to etcd:
 *
 *   idle --> auth (only with CredentialsFile=) --> lease (keepalive of the lease we had, if any,
 *   else a grant) --> ready: keepalive every TTL/3, node and pool keys written, watch running
 *
 * Any request that fails for a reason other than the two below (transport error, HTTP error,
 * an answer that does not parse) drops everything in flight and goes back to idle, to retry
 * after a backoff on the next endpoint. "Lease not found" (or a keepalive TTL of 0) grants a
 * new lease and rewrites every key; "invalid auth token" authenticates again.
 *
 * Each key has a slot: what we believe etcd holds for it (the value last written, or nothing),
 * its FleetWrite coalescing state and a timer for the next write. Registration forgets what
 * etcd holds (the lease may be new) and marks every slot dirty; a range of this node's pool keys
 * finds keys of pools this instance does not run (a previous instance's) and deletes them.
 *
 * curl callbacks never change the fleet's state: the write callback of the watch only parses
 * and updates the cache (and aborts its own transfer by returning 0), everything else happens in
 * the done callback, outside libcurl, where requests may be added and cancelled.
 */

#include <inttypes.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#include <curl/curl.h>

#include "build-config.h"
#include "bus-common.h"
#include "curl-dl.h"
#include "etcd-api.h"
#include "fleet-cache.h"
#include "fleet-policy.h"
#include "fleet.h"
#include "http-api.h"
#include "http.h"
#include "log.h"
#include "manager.h"
#include "shared/event-util.h"
#include "shared/fileio.h"
#include "shared/json-util.h"
#include "shared/list.h"
#include "shared/string-table.h"
#include "shared/string-util.h"
#include "shared/strv.h"
#include "shared/time-util.h"

/* At most one write per key per this interval. */
#define FLEET_WRITE_INTERVAL_USEC (50 * USEC_PER_MSEC)
/* Transactions of key writes in flight at once; what comes due beyond waits for one to end. */
#ifndef FLEET_WRITES_IN_FLIGHT_MAX
#define FLEET_WRITES_IN_FLIGHT_MAX 1U
#endif
#define FLEET_BACKOFF_INITIAL_USEC (200 * USEC_PER_MSEC)
#define FLEET_BACKOFF_MAX_USEC (5 * USEC_PER_SEC)
#define FLEET_CREDENTIALS_MAX 4096U

typedef enum FleetPhase {
        PHASE_IDLE,
        PHASE_AUTH,
        PHASE_LEASE,
        PHASE_READY,
} FleetPhase;

typedef struct FleetRequest FleetRequest;
typedef struct FleetSlot FleetSlot;

/* r: 0, or -EIO (transport), -EINVAL (bad answer), -EREMOTEIO (etcd's error: resp->error_code),
 * -ENOMEM; error says what in words. */
typedef void (*FleetRequestDone)(Fleet *f, FleetRequest *req, int r, EtcdResponse *resp, const char *error);

struct FleetRequest {
        Fleet *fleet;
        CURL *easy;                     /* owned by the glue while running */
        struct curl_slist *headers;
        EtcdCall call;
        FleetRequestDone done;

        FleetSlot **slots;              /* a write: the keys of its transaction */
        size_t n_slots;

        char *buf;                      /* the answer */
        size_t size;
        bool too_large;

        EtcdStream stream;              /* the watch: one message per line */
        char *stream_error;             /* why the watch aborted its own transfer */

        FleetRequest *prev, *next;
};

struct FleetSlot {
        Fleet *fleet;
        char *pool_id;                  /* NULL: the node key */
        char *key;
        FleetWrite write;
        sd_event_source *timer;
        char *written;                  /* what etcd holds (comparable form); NULL: nothing */
        bool present;                   /* etcd holds the key */
        FleetRequest *request;          /* the write in flight */
        char *pending;                  /* what it writes (comparable form); NULL: a delete */
};

struct Fleet {
        Manager *manager;
        CurlGlue *curl;                 /* the manager's, from fleet_start() on: libcurl is loaded */

        char **endpoints;
        size_t n_endpoints, endpoint;   /* the one in use */
        char *node;
        char *prefix;                   /* KeyPrefix= */
        char *prefix_end;
        char *pools_prefix;             /* <prefix>pools/<node>/ */
        usec_t ttl;                     /* LeaseTTL= */
        char *user, *password, *token;
        usec_t started_at;              /* CLOCK_REALTIME */
        json_object *devices;

        FleetState state;
        FleetPhase phase;
        bool startup_complete;          /* the manager knows every pool */
        bool pools_synced;              /* since registration: pool slots marked, own keys ranged */
        bool outage_logged;
        int64_t lease_id;               /* 0: none */
        int64_t granted_ttl;            /* seconds */
        unsigned failures;              /* in a row, for the backoff */
        unsigned recoveries;            /* leases re-granted, re-authentications since the last write */

        sd_event_source *retry_timer;
        sd_event_source *keepalive_timer;
        sd_event_source *watch_timer;
        unsigned watch_failures;

        FleetRequest *requests_head, *requests_tail;
        FleetRequest *keepalive;        /* in flight */
        FleetRequest *watch;            /* the watch stream, or the range before it */
        unsigned n_writing;             /* transactions of key writes in flight */

        FleetSlot **slots;              /* [0] is the node key */
        size_t n_slots;

        FleetCache *cache;
};

static const char *const fleet_state_table[_FLEET_STATE_MAX] = {
        [FLEET_OFF] = "off",
        [FLEET_DISCONNECTED] = "disconnected",
        [FLEET_CONNECTED] = "connected",
};

DEFINE_STRING_TABLE_LOOKUP(fleet_state, FleetState);

static const char *fleet_endpoint(const Fleet *f) {
        return f->endpoints[f->endpoint];
}

static sd_event *fleet_event(const Fleet *f) {
        return f->manager->event;
}

/* The clock itself, not sd_event_now(): the loop's wake-up time can be milliseconds old, and a write
 * stamped with it could follow the previous one by less than the interval. */
static usec_t fleet_now(const Fleet *f) {
        return now(CLOCK_MONOTONIC);
}

static uint64_t random_u64(void) {
        uint64_t r = 0;

        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t) sizeof r)
                r = now(CLOCK_MONOTONIC);
        return r;
}

/* Arms (or creates) a one-shot timer at usec; accuracy 1 ms: writes and reconnects are latency. */
static int timer_arm(Fleet *f, sd_event_source **s, usec_t usec, sd_event_time_handler_t cb, void *userdata,
                     const char *description) {
        return event_reset_time(fleet_event(f), s, CLOCK_MONOTONIC, usec, USEC_PER_MSEC, cb, userdata,
                                description);
}

static void timer_disarm(sd_event_source *s) {
        if (s)
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

static void fleet_set_state(Fleet *f, FleetState s) {
        if (f->state == s)
                return;
        f->state = s;
        if (f->manager->bus)
                (void) sd_bus_emit_properties_changed(f->manager->bus, POOL_MANAGER_PATH,
                                                      POOL_MANAGER_INTERFACE, "FleetState", NULL);
}

/* ---- requests ---- */

static FleetRequest *fleet_request_free(FleetRequest *req) {
        if (!req)
                return NULL;
        sym_curl_slist_free_all(req->headers);
        free(req->slots);
        free(req->buf);
        etcd_stream_done(&req->stream);
        free(req->stream_error);
        return mfree(req);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(FleetRequest *, fleet_request_free);

/* Unlinks a request from everything that points at it. */
static void fleet_request_detach(Fleet *f, FleetRequest *req) {
        LIST_REMOVE(f->requests_head, f->requests_tail, req);
        if (f->keepalive == req)
                f->keepalive = NULL;
        if (f->watch == req)
                f->watch = NULL;
        if (req->n_slots > 0)
                f->n_writing--;
        for (size_t i = 0; i < req->n_slots; i++) {
                req->slots[i]->request = NULL;
                req->slots[i]->write.in_flight = false;
        }
}

static void fleet_request_cancel(Fleet *f, FleetRequest *req) {
        fleet_request_detach(f, req);
        for (size_t i = 0; i < req->n_slots; i++)
                /* Not written after all. */
                req->slots[i]->write.dirty = true;
        curl_glue_cancel(f->curl, req->easy);
        req->easy = NULL;
        fleet_request_free(req);
}

/* Every request but the watch (keep_watch) or all of them. */
static void fleet_cancel_requests(Fleet *f, bool keep_watch) {
        FleetRequest *req = f->requests_head;

        while (req) {
                FleetRequest *next = req->next;

                if (!(keep_watch && req == f->watch))
                        fleet_request_cancel(f, req);
                req = next;
        }
}

static int on_watch_line(const char *line, size_t size, void *userdata);

static size_t on_request_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        FleetRequest *req = userdata;
        size_t n = size * nmemb;
        int r;

        if (req->call == ETCD_CALL_WATCH) {
                /* Only the cache changes here; a returned 0 aborts this transfer, and the done
                 * callback, outside libcurl, starts over. */
                r = etcd_stream_feed(&req->stream, ptr, n, on_watch_line, req);
                if (r < 0) {
                        if (!req->stream_error &&
                            asprintf(&req->stream_error, "%s",
                                     r == -EFBIG ? "a watch message larger than 32 MiB" : strerror(-r)) < 0)
                                req->stream_error = NULL;
                        return 0;
                }
                return n;
        }

        if (n > ETCD_RESPONSE_MAX - req->size) {
                req->too_large = true;
                return 0;
        }
        char *b = realloc(req->buf, req->size + n + 1);
        if (!b)
                return 0;
        req->buf = b;
        memcpy(req->buf + req->size, ptr, n);
        req->size += n;
        req->buf[req->size] = '\0';
        return n;
}

static void fleet_watch_ended(Fleet *f, FleetRequest *req, CURLcode result);

static void on_request_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        _cleanup_(fleet_request_freep) FleetRequest *req = userdata;
        _cleanup_(etcd_response_done) EtcdResponse resp = {};
        _cleanup_free_ char *error = NULL;
        Fleet *f = req->fleet;
        long status = 0;
        int r;

        req->easy = NULL;               /* the glue frees it after this returns */
        fleet_request_detach(f, req);

        if (req->call == ETCD_CALL_WATCH)
                return fleet_watch_ended(f, req, result);

        (void) sym_curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        if (result != CURLE_OK) {
                r = -EIO;
                if (asprintf(&error, "%s", req->too_large ? "an answer larger than 32 MiB" :
                             sym_curl_easy_strerror(result)) < 0)
                        error = NULL;
        } else {
                r = etcd_response_parse(req->call, strempty(req->buf), req->size, &resp, &error);
                if (r == -EINVAL && status != 200) {
                        /* Not the gateway talking (a proxy, another server): say what came. */
                        _cleanup_free_ char *e = TAKE_PTR(error);

                        if (asprintf(&error, "HTTP status %ld and no etcd answer (%s)", status,
                                     strna(e)) < 0)
                                error = NULL;
                        r = -EIO;
                } else if (r >= 0 && status != 200) {
                        if (asprintf(&error, "HTTP status %ld", status) < 0)
                                error = NULL;
                        r = -EIO;
                } else if (r < 0 && r != -EREMOTEIO && r != -ENOMEM)
                        r = -EINVAL;
        }

        req->done(f, req, r, &resp, error ?: "out of memory");
}

static int fleet_request_start(Fleet *f, EtcdCall call, const char *path, const char *body,
                               FleetRequestDone done, FleetRequest **ret) {
        _cleanup_(fleet_request_freep) FleetRequest *req = NULL;
        _cleanup_free_ char *url = NULL, *auth = NULL;
        const Config *c = f->manager->config;
        usec_t timeout;
        long timeout_ms, connect_ms;
        CURL *easy;
        int r;

        req = calloc(1, sizeof(FleetRequest));
        if (!req)
                return -ENOMEM;
        *req = (FleetRequest) { .fleet = f, .call = call, .done = done };

        if (asprintf(&url, "%s%s", fleet_endpoint(f), path) < 0)
                return -ENOMEM;
        req->headers = sym_curl_slist_append(NULL, "Content-Type: application/json");
        /* No "Expect: 100-continue" round trip for larger bodies. */
        if (req->headers && !sym_curl_slist_append(req->headers, "Expect:"))
                return -ENOMEM;
        if (req->headers && f->token) {
                if (asprintf(&auth, "Authorization: %s", f->token) < 0)
                        return -ENOMEM;
                if (!sym_curl_slist_append(req->headers, auth))
                        return -ENOMEM;
        }
        if (!req->headers)
                return -ENOMEM;

        easy = sym_curl_easy_init();
        if (!easy)
                return -ENOMEM;
        req->easy = easy;

        /* An answer later than the TTL (but at least 2 s, at most 10 s) is of no use: a keepalive
         * would come too late for the lease, and the node be registered with a stale state. */
        timeout = CLAMP(f->ttl, 2 * USEC_PER_SEC, 10 * USEC_PER_SEC);
        timeout_ms = (long) (timeout / USEC_PER_MSEC);
        connect_ms = (long) (MIN(timeout, 3 * USEC_PER_SEC) / USEC_PER_MSEC);
        if (sym_curl_easy_setopt(easy, CURLOPT_URL, url) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_USERAGENT, "pool-managerd/" PACKAGE_VERSION) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_HTTPHEADER, req->headers) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, body) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_request_write) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_WRITEDATA, req) != CURLE_OK ||
            sym_curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms) != CURLE_OK)
                r = -EINVAL;
        else if (call == ETCD_CALL_WATCH)
                /* A stream without end: no overall timeout, but TCP keepalives notice a dead peer. */
                r = sym_curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
                        sym_curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, 10L) != CURLE_OK ||
                        sym_curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 5L) != CURLE_OK ? -EINVAL : 0;
        else
                r = sym_curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK ? -EINVAL : 0;
        if (r >= 0 &&
            ((c->fleet_trusted_certificate_file &&
              sym_curl_easy_setopt(easy, CURLOPT_CAINFO, c->fleet_trusted_certificate_file) != CURLE_OK) ||
             (c->fleet_certificate_file &&
              sym_curl_easy_setopt(easy, CURLOPT_SSLCERT, c->fleet_certificate_file) != CURLE_OK) ||
             (c->fleet_key_file && sym_curl_easy_setopt(easy, CURLOPT_SSLKEY, c->fleet_key_file) != CURLE_OK)))
                r = -EINVAL;
        if (r < 0) {
                sym_curl_easy_cleanup(TAKE_PTR(req->easy));
                return r;
        }

        r = curl_glue_add(f->curl, easy, on_request_done, req);
        if (r < 0) {
                sym_curl_easy_cleanup(TAKE_PTR(req->easy));
                return r;
        }

        LIST_APPEND(f->requests_head, f->requests_tail, req);
        *ret = TAKE_PTR(req);
        return 0;
}

/* ---- failure handling ---- */

static void fleet_connect(Fleet *f);

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        fleet_connect(userdata);
        return 0;
}

/* Everything in flight dropped; reconnect after the backoff, on the next endpoint. */
static void fleet_fail(Fleet *f, const char *what, const char *error) {
        usec_t delay;
        int r;

        fleet_cancel_requests(f, /* keep_watch= */ false);
        timer_disarm(f->keepalive_timer);
        timer_disarm(f->watch_timer);
        for (size_t i = 0; i < f->n_slots; i++)
                timer_disarm(f->slots[i]->timer);
        f->phase = PHASE_IDLE;
        f->pools_synced = false;
        f->failures++;
        delay = fleet_backoff(f->failures, FLEET_BACKOFF_INITIAL_USEC, FLEET_BACKOFF_MAX_USEC, random_u64());

        /* Once per outage: an etcd that stays away must not fill the journal. */
        if (!f->outage_logged) {
                log_struct(LOG_WARNING,
                           LOG_MESSAGE_ID(MESSAGE_FLEET_DISCONNECTED),
                           "ETCD_ENDPOINT=%s", fleet_endpoint(f),
                           "FLEET_NODE=%s", f->node,
                           "ERROR=%s", error,
                           LOG_MESSAGE("Fleet: etcd at %s failed (%s: %s); node \"%s\" is not registered. "
                                       "Local operation continues; retrying with backoff.",
                                       fleet_endpoint(f), what, error, f->node),
                           NULL);
                f->outage_logged = true;
        } else
                log_debug("Fleet: etcd at %s failed again (%s: %s); next try in %llu ms.", fleet_endpoint(f),
                          what, error, (unsigned long long) (delay / USEC_PER_MSEC));
        fleet_set_state(f, FLEET_DISCONNECTED);

        f->endpoint = (f->endpoint + 1) % f->n_endpoints;
        r = timer_arm(f, &f->retry_timer, fleet_now(f) + delay, on_retry_timer, f, "fleet-retry");
        if (r < 0)
                log_error_errno(r, "Fleet: failed to schedule reconnecting to etcd, staying "
                                "disconnected: %m");
}

static void fleet_acquire_lease(Fleet *f);

/* A lease lost, or a token refused, once more before anything could be written with the new one:
 * not a hiccup to recover from at once but a failure, retried with backoff. */
static bool fleet_recovering_too_often(Fleet *f, const char *what) {
        if (++f->recoveries <= 1)
                return false;
        fleet_fail(f, what, "lost again before anything could be written");
        return true;
}

static void fleet_lease_lost(Fleet *f, const char *how) {
        if (fleet_recovering_too_often(f, "lease"))
                return;
        log_struct(LOG_WARNING,
                   LOG_MESSAGE_ID(MESSAGE_FLEET_LEASE_LOST),
                   "FLEET_NODE=%s", f->node,
                   "FLEET_LEASE=%" PRIx64, (uint64_t) f->lease_id,
                   LOG_MESSAGE("Fleet: lease %" PRIx64 " of node \"%s\" is gone (%s): granting a new one "
                               "and writing every key again.", (uint64_t) f->lease_id, f->node, how),
                   NULL);
        fleet_cancel_requests(f, /* keep_watch= */ true);
        timer_disarm(f->keepalive_timer);
        f->lease_id = 0;
        f->pools_synced = false;
        fleet_acquire_lease(f);
}

/* What every request's failure leads to. */
static void fleet_request_failed(Fleet *f, FleetRequest *req, int r, const EtcdResponse *resp,
                                 const char *error) {
        const char *what = etcd_call_to_string(req->call);

        if (r == -EREMOTEIO && resp->error_code == ETCD_CODE_NOT_FOUND && req->call == ETCD_CALL_TXN &&
            strstr(strempty(resp->error_message), "lease not found"))
                return fleet_lease_lost(f, "a write said \"lease not found\"");
        if (r == -EREMOTEIO && resp->error_code == ETCD_CODE_UNAUTHENTICATED && f->user &&
            req->call != ETCD_CALL_AUTHENTICATE) {
                /* The token expired: authenticate again, at once. */
                if (fleet_recovering_too_often(f, "authenticate"))
                        return;
                log_info("Fleet: etcd at %s no longer takes our auth token (%s); authenticating again.",
                         fleet_endpoint(f), error);
                f->token = mfree(f->token);
                fleet_cancel_requests(f, /* keep_watch= */ false);
                timer_disarm(f->keepalive_timer);
                f->pools_synced = false;
                return fleet_connect(f);
        }
        if (r == -EINVAL)
                log_error("Fleet: etcd at %s gave a bad answer to %s: %s; changing nothing.",
                          fleet_endpoint(f), what, error);
        fleet_fail(f, what, error);
}

/* ---- key slots ---- */

static FleetSlot *fleet_slot_free(FleetSlot *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->timer);
        free(s->pool_id);
        free(s->key);
        free(s->written);
        free(s->pending);
        return mfree(s);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(FleetSlot *, fleet_slot_free);

static FleetSlot *fleet_find_slot(Fleet *f, const char *pool_id) {
        for (size_t i = 1; i < f->n_slots; i++)
                if (streq(f->slots[i]->pool_id, pool_id))
                        return f->slots[i];
        return NULL;
}

static int fleet_add_slot(Fleet *f, const char *pool_id, FleetSlot **ret) {
        _cleanup_(fleet_slot_freep) FleetSlot *s = NULL;
        FleetSlot **a;
        int r;

        s = calloc(1, sizeof(FleetSlot));
        if (!s)
                return -ENOMEM;
        s->fleet = f;
        if (pool_id) {
                s->pool_id = strdup(pool_id);
                if (!s->pool_id)
                        return -ENOMEM;
                r = fleet_pool_key(f->prefix, f->node, pool_id, &s->key);
        } else
                r = fleet_node_key(f->prefix, f->node, &s->key);
        if (r < 0)
                return r;

        a = reallocarray(f->slots, f->n_slots + 1, sizeof(FleetSlot *));
        if (!a)
                return -ENOMEM;
        f->slots = a;
        f->slots[f->n_slots++] = s;
        *ret = TAKE_PTR(s);
        return 0;
}

static int fleet_slot_get(Fleet *f, const char *pool_id, FleetSlot **ret) {
        FleetSlot *s = fleet_find_slot(f, pool_id);

        if (s) {
                *ret = s;
                return 0;
        }
        return fleet_add_slot(f, pool_id, ret);
}

static bool slot_can_write(const FleetSlot *s) {
        const Fleet *f = s->fleet;

        return f->phase == PHASE_READY && (!s->pool_id || f->pools_synced);
}

static void fleet_flush(Fleet *f);

static int on_slot_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        FleetSlot *s = userdata;

        fleet_flush(s->fleet);
        return 0;
}

static void slot_schedule(FleetSlot *s) {
        Fleet *f = s->fleet;
        usec_t due;
        int r;

        due = fleet_write_due(&s->write, fleet_now(f), FLEET_WRITE_INTERVAL_USEC);
        if (due == USEC_INFINITY || !slot_can_write(s))
                return timer_disarm(s->timer);
        r = timer_arm(f, &s->timer, due, on_slot_timer, s, "fleet-write");
        if (r < 0)
                log_error_errno(r, "Fleet: failed to schedule the write of %s: %m", s->key);
}

static void slot_changed(FleetSlot *s) {
        (void) fleet_write_changed(&s->write, fleet_now(s->fleet), FLEET_WRITE_INTERVAL_USEC);
        slot_schedule(s);
}

/* The node key's value. */
static int fleet_node_value(Fleet *f, json_object **ret) {
        _cleanup_json_ json_object *o = json_object_new_object();
        _cleanup_free_ char *url = NULL;
        char ts[FORMAT_TIMESTAMP_MAX];
        const char *address = f->manager->http ? http_server_address(f->manager->http) : NULL;

        if (address && asprintf(&url, "http://%s", address) < 0)
                return -ENOMEM;
        if (!o || json_add_string(o, "node", f->node) < 0 ||
            json_add_string(o, "version", PACKAGE_VERSION) < 0 ||
            json_add_string(o, "url", url) < 0)
                return -ENOMEM;
        if (json_object_object_add(o, "devices", json_object_get(f->devices)) < 0) {
                json_object_put(f->devices);
                return -ENOMEM;
        }
        if (json_add_string(o, "started_at", format_timestamp_rfc3339(ts, sizeof ts, f->started_at)) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

/*
 * A pool key's value: the pool's status as GET /pools/{id}/status has it, with the node and the
 * engine kind, without the heartbeat (it moves with every liveness probe; the lease says the
 * node lives). NULL: the key should not exist (stopped, or never started).
 */
static int fleet_pool_value(Fleet *f, const char *pool_id, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        const PoolEntry *e = registry_get(f->manager->registry, pool_id);
        const Pool *p = manager_get_pool(f->manager, pool_id);
        const char *engine = p && p->prepared ? engine_kind_to_string(p->prepared->engine) : NULL;
        int r;

        if (!e || !e->state || streq(e->state, "stopped")) {
                *ret = NULL;
                return 0;
        }
        r = pool_entry_to_json(e, &o);
        if (r < 0)
                return r;
        json_object_object_del(o, "last_heartbeat_ms");
        if (json_add_string(o, "node", f->node) < 0 ||
            json_add_string(o, "engine", engine) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

static const char *json_text(json_object *o) {
        return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static void fleet_registered(Fleet *f) {
        log_struct(LOG_INFO,
                   LOG_MESSAGE_ID(MESSAGE_FLEET_CONNECTED),
                   "ETCD_ENDPOINT=%s", fleet_endpoint(f),
                   "FLEET_NODE=%s", f->node,
                   "FLEET_LEASE=%" PRIx64, (uint64_t) f->lease_id,
                   LOG_MESSAGE("Fleet: node \"%s\" registered in etcd at %s (lease %" PRIx64 ", TTL "
                               "%" PRIi64 " s).", f->node, fleet_endpoint(f), (uint64_t) f->lease_id,
                               f->granted_ttl),
                   NULL);
        f->outage_logged = false;
        fleet_set_state(f, FLEET_CONNECTED);
}

static void on_keys_written(Fleet *f, FleetRequest *req, int r, EtcdResponse *resp, const char *error) {
        usec_t n = fleet_now(f);
        bool node = false;

        if (r < 0) {
                for (size_t i = 0; i < req->n_slots; i++) {
                        req->slots[i]->write.dirty = true;  /* to be written again once reconnected */
                        (void) fleet_write_done(&req->slots[i]->write, n, FLEET_WRITE_INTERVAL_USEC);
                }
                return fleet_request_failed(f, req, r, resp, error);
        }

        for (size_t i = 0; i < req->n_slots; i++) {
                FleetSlot *s = req->slots[i];

                (void) fleet_write_done(&s->write, n, FLEET_WRITE_INTERVAL_USEC);
                s->present = !!s->pending;
                free(s->written);
                s->written = TAKE_PTR(s->pending);
                node = node || !s->pool_id;
        }
        f->failures = 0;
        f->recoveries = 0;
        if (node && f->state != FLEET_CONNECTED)
                fleet_registered(f);

        for (size_t i = 0; i < req->n_slots; i++)
                slot_schedule(req->slots[i]);
        /* What came due while this was in flight goes now. */
        fleet_flush(f);
}

/*
 * What one key's write is: its value (json, NULL for a delete) and the comparable form of it.
 * 0: nothing to write (etcd holds this already), 1: a write.
 */
static int slot_prepare(FleetSlot *s, json_object **ret_value, char **ret_compare) {
        _cleanup_json_ json_object *value = NULL;
        _cleanup_free_ char *compare = NULL;
        Fleet *f = s->fleet;
        int r;

        r = s->pool_id ? fleet_pool_value(f, s->pool_id, &value) : fleet_node_value(f, &value);
        if (r < 0)
                return r;
        if (value) {
                compare = strdup(json_text(value));
                if (!compare)
                        return -ENOMEM;
        }
        if ((!value && !s->present) || (value && s->present && streq_ptr(compare, s->written)))
                return 0;

        if (value && s->pool_id) {
                char ts[FORMAT_TIMESTAMP_MAX];

                if (json_add_string(value, "updated_at",
                                    format_timestamp_rfc3339(ts, sizeof ts, now(CLOCK_REALTIME))) < 0)
                        return -ENOMEM;
        }
        *ret_value = TAKE_PTR(value);
        *ret_compare = TAKE_PTR(compare);
        return 1;
}

/*
 * Every key whose write is due goes in one transaction (up to etcd's limit of operations), and
 * one transaction at a time: what comes due while one is in flight waits for it and goes in the
 * next. A burst of changes (a node's pools turning ready together) so costs etcd a request and a
 * commit, not one per pool; a lone change still goes at once.
 */
static void fleet_flush(Fleet *f) {
        _cleanup_free_ EtcdTxnOp *ops = NULL;
        _cleanup_free_ FleetSlot **slots = NULL;
        _cleanup_free_ char *body = NULL;
        json_object *values[ETCD_TXN_OPS_MAX] = {};
        char *compares[ETCD_TXN_OPS_MAX] = {};
        usec_t n = fleet_now(f);
        FleetRequest *req;
        size_t k = 0;
        int r = 0;

        if (f->n_writing >= FLEET_WRITES_IN_FLIGHT_MAX || f->phase != PHASE_READY)
                return;

        ops = calloc(ETCD_TXN_OPS_MAX, sizeof(EtcdTxnOp));
        slots = calloc(ETCD_TXN_OPS_MAX, sizeof(FleetSlot *));
        if (!ops || !slots)
                return (void) log_oom();

        for (size_t i = 0; i < f->n_slots && k < ETCD_TXN_OPS_MAX; i++) {
                FleetSlot *s = f->slots[i];

                if (!slot_can_write(s) || fleet_write_due(&s->write, n, FLEET_WRITE_INTERVAL_USEC) > n)
                        continue;
                r = slot_prepare(s, &values[k], &compares[k]);
                if (r < 0)
                        break;
                if (r == 0) {
                        s->write.dirty = false;
                        timer_disarm(s->timer);
                        continue;
                }
                slots[k] = s;
                ops[k] = (EtcdTxnOp) {
                        .key = s->key,
                        .value = values[k] ? json_text(values[k]) : NULL,
                        .lease = f->lease_id,
                };
                k++;
        }
        if (r >= 0 && k > 0)
                r = etcd_body_txn(ops, k, &body);
        for (size_t i = 0; i < k; i++)
                json_object_put(values[i]);
        if (r < 0 || k == 0) {
                for (size_t i = 0; i < k; i++)
                        free(compares[i]);
                if (r < 0)
                        log_oom();
                return;
        }

        r = fleet_request_start(f, ETCD_CALL_TXN, "/v3/kv/txn", body, on_keys_written, &req);
        if (r < 0) {
                for (size_t i = 0; i < k; i++)
                        free(compares[i]);
                return fleet_fail(f, "txn", strerror(-r));
        }
        for (size_t i = 0; i < k; i++) {
                FleetSlot *s = slots[i];

                free(s->pending);
                s->pending = compares[i];
                s->request = req;
                fleet_write_started(&s->write, n);
                timer_disarm(s->timer);
                log_debug("Fleet: %s %s.", s->pending ? "writing" : "deleting", s->key);
        }
        req->slots = TAKE_PTR(slots);
        req->n_slots = k;
        f->n_writing++;
}

/* ---- this node's pool keys ---- */

static void on_own_keys(Fleet *f, FleetRequest *req, int r, EtcdResponse *resp, const char *error) {
        if (r < 0)
                return fleet_request_failed(f, req, r, resp, error);

        for (size_t i = 0; i < resp->n_kvs; i++) {
                _cleanup_free_ char *node = NULL, *pool = NULL;
                FleetKeyKind kind;
                FleetSlot *s;

                r = fleet_key_parse(f->prefix, resp->kvs[i].key, resp->kvs[i].key_size, &kind, &node, &pool,
                                    NULL);
                if (r == -ENOMEM)
                        return (void) log_oom();
                if (r <= 0 || kind != FLEET_KEY_POOL || !streq(node, f->node))
                        continue;
                if (fleet_slot_get(f, pool, &s) < 0)
                        return (void) log_oom();
                /* Ours, maybe of a previous instance: the slot decides whether it stays. */
                s->present = true;
                free(s->written);
                s->written = NULL;
                slot_changed(s);
        }
}

/* Start-up complete and registered: every pool gets its key, stale keys go. */
static void fleet_sync_pools(Fleet *f) {
        _cleanup_free_ char *body = NULL, *end = NULL;
        Registry *reg = f->manager->registry;
        FleetRequest *req;
        int r;

        if (f->pools_synced || !f->startup_complete || f->phase != PHASE_READY)
                return;
        f->pools_synced = true;

        for (size_t i = 0; i < registry_size(reg); i++) {
                FleetSlot *s;

                if (fleet_slot_get(f, registry_nth(reg, i)->pool_id, &s) < 0)
                        return (void) log_oom();
        }
        for (size_t i = 1; i < f->n_slots; i++)
                slot_changed(f->slots[i]);

        r = etcd_prefix_range_end(f->pools_prefix, &end);
        if (r >= 0)
                r = etcd_body_range(f->pools_prefix, end, /* keys_only= */ true, &body);
        if (r >= 0)
                r = fleet_request_start(f, ETCD_CALL_RANGE, "/v3/kv/range", body, on_own_keys, &req);
        if (r < 0)
                fleet_fail(f, "range", strerror(-r));
}

/* ---- the watch cache ---- */

static void fleet_watch_start(Fleet *f);

static int on_watch_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        fleet_watch_start(userdata);
        return 0;
}

static void fleet_watch_retry(Fleet *f) {
        usec_t delay;
        int r;

        if (f->phase != PHASE_READY)
                return;         /* registration starts it again */
        delay = fleet_backoff(++f->watch_failures, FLEET_BACKOFF_INITIAL_USEC, FLEET_BACKOFF_MAX_USEC,
                              random_u64());
        r = timer_arm(f, &f->watch_timer, fleet_now(f) + delay, on_watch_timer, f, "fleet-watch-retry");
        if (r < 0)
                log_error_errno(r, "Fleet: failed to schedule the watch: %m");
}

static void on_cache_warning(const char *key, const char *problem, void *userdata) {
        Fleet *f = userdata;

        log_warning("Fleet: ignoring key \"%s\" from etcd at %s: %s.", key, fleet_endpoint(f), problem);
}

static int on_watch_line(const char *line, size_t size, void *userdata) {
        _cleanup_(etcd_response_done) EtcdResponse resp = {};
        _cleanup_free_ char *error = NULL;
        FleetRequest *req = userdata;
        Fleet *f = req->fleet;
        int r;

        r = etcd_response_parse(ETCD_CALL_WATCH, line, size, &resp, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (asprintf(&req->stream_error, "%s %s",
                             r == -EREMOTEIO ? "etcd sent" : "bad watch message:", strna(error)) < 0)
                        req->stream_error = NULL;
                return -EBADMSG;
        }
        if (resp.canceled) {
                if ((resp.compact_revision > 0 ?
                     asprintf(&req->stream_error, "revision %" PRIi64 " was compacted away",
                              fleet_cache_revision(f->cache) + 1) :
                     asprintf(&req->stream_error, "etcd cancelled it (%s)", strna(resp.cancel_reason))) < 0)
                        req->stream_error = NULL;
                return -ECANCELED;
        }
        if (resp.created) {
                f->watch_failures = 0;
                log_debug("Fleet: watching %s from revision %" PRIi64 ".", f->prefix,
                          fleet_cache_revision(f->cache) + 1);
        }
        return fleet_cache_apply(f->cache, resp.events, resp.n_events, resp.revision, on_cache_warning, f);
}

static void fleet_watch_ended(Fleet *f, FleetRequest *req, CURLcode result) {
        if (req->stream_error)
                log_warning("Fleet: the watch on etcd at %s ended: %s; reading the keys again.",
                            fleet_endpoint(f), req->stream_error);
        else
                log_debug("Fleet: the watch on etcd at %s ended: %s.", fleet_endpoint(f),
                          result == CURLE_OK ? "the stream ended" : sym_curl_easy_strerror(result));
        fleet_watch_retry(f);
}

static void on_cache_range(Fleet *f, FleetRequest *req, int r, EtcdResponse *resp, const char *error) {
        _cleanup_free_ char *body = NULL, *end = NULL;
        FleetRequest *w;

        if (r == -EINVAL || (r == -EREMOTEIO && resp->error_code != ETCD_CODE_UNAUTHENTICATED)) {
                /* etcd is there but the answer is unusable: keep the cache, try again later. */
                log_error("Fleet: etcd at %s gave a bad answer to the range of %s: %s; keeping the cache "
                          "as it is.", fleet_endpoint(f), f->prefix, error);
                return fleet_watch_retry(f);
        }
        if (r < 0)
                return fleet_request_failed(f, req, r, resp, error);

        r = fleet_cache_load(f->cache, resp->kvs, resp->n_kvs, resp->revision, on_cache_warning, f);
        if (r < 0)
                return (void) log_oom();

        r = etcd_prefix_range_end(f->prefix, &end);
        if (r >= 0)
                r = etcd_body_watch(f->prefix, end, resp->revision + 1, &body);
        if (r >= 0)
                r = fleet_request_start(f, ETCD_CALL_WATCH, "/v3/watch", body, NULL, &w);
        if (r < 0) {
                log_error_errno(r, "Fleet: failed to start the watch: %m");
                return fleet_watch_retry(f);
        }
        f->watch = w;
}

static void fleet_watch_start(Fleet *f) {
        _cleanup_free_ char *body = NULL;
        FleetRequest *req;
        int r;

        if (f->watch || f->phase != PHASE_READY)
                return;
        r = etcd_body_range(f->prefix, f->prefix_end, /* keys_only= */ false, &body);
        if (r >= 0)
                r = fleet_request_start(f, ETCD_CALL_RANGE, "/v3/kv/range", body, on_cache_range, &req);
        if (r < 0) {
                log_error_errno(r, "Fleet: failed to read %s: %m", f->prefix);
                return fleet_watch_retry(f);
        }
        f->watch = req;
}

/* ---- lease ---- */

static void fleet_send_keepalive(Fleet *f);

static int on_keepalive_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Fleet *f = userdata;
        int r;

        r = timer_arm(f, &f->keepalive_timer, usec + MAX(f->granted_ttl, 1) * USEC_PER_SEC / 3,
                      on_keepalive_timer, f, "fleet-keepalive");
        if (r < 0)
                log_error_errno(r, "Fleet: failed to schedule the next keepalive: %m");
        fleet_send_keepalive(f);
        return 0;
}

/* Registered: keepalives, the node key, the pool keys (once start-up is complete), the watch. */
static void fleet_ready(Fleet *f) {
        int r;

        f->phase = PHASE_READY;
        f->pools_synced = false;
        r = timer_arm(f, &f->keepalive_timer, fleet_now(f) + MAX(f->granted_ttl, 1) * USEC_PER_SEC / 3,
                      on_keepalive_timer, f, "fleet-keepalive");
        if (r < 0)
                return fleet_fail(f, "keepalive", strerror(-r));

        /* The lease may be new: etcd holds nothing of ours we can vouch for. */
        for (size_t i = 0; i < f->n_slots; i++) {
                FleetSlot *s = f->slots[i];

                s->present = false;
                s->written = mfree(s->written);
                s->write = (FleetWrite) {};
        }
        slot_changed(f->slots[0]);
        fleet_sync_pools(f);
        fleet_watch_start(f);
}

static void on_keepalive_done(Fleet *f, FleetRequest *req, int r, EtcdResponse *resp, const char *error) {
        if (r < 0)
                return fleet_request_failed(f, req, r, resp, error);
        if (resp->ttl <= 0)
                return fleet_lease_lost(f, "the keepalive said TTL 0");
}

static void fleet_send_keepalive(Fleet *f) {
        _cleanup_free_ char *body = NULL;
        int r;

        if (f->phase != PHASE_READY || f->keepalive)
                return;
        r = etcd_body_keepalive(f->lease_id, &body);
        if (r >= 0)
                r = fleet_request_start(f, ETCD_CALL_KEEPALIVE, "/v3/lease/keepalive", body,
                                        on_keepalive_done, &f->keepalive);
        if (r < 0)
                fleet_fail(f, "keepalive", strerror(-r));
}

static void on_granted(Fleet *f, FleetRequest *req, int r, EtcdResponse *resp, const char *error) {
        if (r < 0)
                return fleet_request_failed(f, req, r, resp, error);
        f->lease_id = resp->lease_id;
        f->granted_ttl = resp->ttl;
        log_debug("Fleet: lease %" PRIx64 " granted, TTL %" PRIi64 " s.", (uint64_t) f->lease_id,
                  f->granted_ttl);
        fleet_ready(f);
}

/* After a reconnect: is the lease we had still alive? Then its keys are too. */
static void on_lease_checked(Fleet *f, FleetRequest *req, int r, EtcdResponse *resp, const char *error) {
        if (r < 0)
                return fleet_request_failed(f, req, r, resp, error);
        if (resp->ttl <= 0) {
                log_info("Fleet: lease %" PRIx64 " expired while etcd was away; granting a new one.",
                         (uint64_t) f->lease_id);
                f->lease_id = 0;
                return fleet_acquire_lease(f);
        }
        f->granted_ttl = resp->ttl;
        fleet_ready(f);
}

static void fleet_acquire_lease(Fleet *f) {
        _cleanup_free_ char *body = NULL;
        FleetRequest *req;
        int r;

        f->phase = PHASE_LEASE;
        if (f->lease_id > 0) {
                r = etcd_body_keepalive(f->lease_id, &body);
                if (r >= 0)
                        r = fleet_request_start(f, ETCD_CALL_KEEPALIVE, "/v3/lease/keepalive", body,
                                                on_lease_checked, &req);
        } else {
                r = etcd_body_grant((int64_t) (f->ttl / USEC_PER_SEC), &body);
                if (r >= 0)
                        r = fleet_request_start(f, ETCD_CALL_GRANT, "/v3/lease/grant", body, on_granted,
                                                &req);
        }
        if (r < 0)
                fleet_fail(f, "lease", strerror(-r));
}

static void on_authenticated(Fleet *f, FleetRequest *req, int r, EtcdResponse *resp, const char *error) {
        if (r < 0)
                return fleet_request_failed(f, req, r, resp, error);
        free(f->token);
        f->token = TAKE_PTR(resp->token);
        fleet_acquire_lease(f);
}

static void fleet_connect(Fleet *f) {
        _cleanup_free_ char *body = NULL;
        FleetRequest *req;
        int r;

        if (f->state == FLEET_OFF)
                return;
        timer_disarm(f->retry_timer);
        if (f->user && !f->token) {
                f->phase = PHASE_AUTH;
                r = etcd_body_authenticate(f->user, f->password, &body);
                if (r >= 0)
                        r = fleet_request_start(f, ETCD_CALL_AUTHENTICATE, "/v3/auth/authenticate", body,
                                                on_authenticated, &req);
                if (r < 0)
                        fleet_fail(f, "authenticate", strerror(-r));
                return;
        }
        fleet_acquire_lease(f);
}

/* ---- set-up ---- */

static int read_credentials(const char *path, char **ret_user, char **ret_password) {
        _cleanup_free_ char *text = NULL, *user = NULL, *password = NULL;
        const char *colon;
        size_t size;
        int r;

        r = read_full_file(path, FLEET_CREDENTIALS_MAX, &text, &size);
        if (r < 0)
                return log_error_errno(r, "Failed to read CredentialsFile=%s: %m", path);
        if (memchr(text, '\0', size))
                return log_error_errno(EINVAL, "CredentialsFile=%s contains a NUL byte.", path);
        text[strcspn(text, "\r\n")] = '\0';
        colon = strchr(text, ':');
        if (!colon || colon == text)
                return log_error_errno(EINVAL, "CredentialsFile=%s must hold USER:PASSWORD on its first "
                                       "line.", path);
        user = strndup(text, (size_t) (colon - text));
        password = strdup(colon + 1);
        if (!user || !password)
                return log_oom();
        *ret_user = TAKE_PTR(user);
        *ret_password = TAKE_PTR(password);
        return 0;
}

int fleet_new(Fleet **ret, Manager *m) {
        _cleanup_(fleet_freep) Fleet *f = NULL;
        const Config *c = m->config;
        FleetSlot *node_slot;
        int r;

        f = calloc(1, sizeof(Fleet));
        if (!f)
                return log_oom();
        f->manager = m;
        f->state = FLEET_OFF;

        if (strv_length(c->fleet_etcd) == 0) {
                *ret = TAKE_PTR(f);
                return 0;
        }

        f->endpoints = strv_copy(c->fleet_etcd);
        if (!f->endpoints)
                return log_oom();
        f->n_endpoints = strv_length(f->endpoints);
        f->endpoint = random_u64() % f->n_endpoints;   /* nodes spread over the endpoints */

        if (c->fleet_node_name)
                f->node = strdup(c->fleet_node_name);
        else {
                char host[HOST_NAME_MAX + 1] = {};

                if (gethostname(host, sizeof host - 1) < 0)
                        return log_error_errno(errno, "Failed to get the hostname for the fleet's node "
                                               "name: %m");
                if (!fleet_node_name_is_valid(host))
                        return log_error_errno(EINVAL, "The hostname \"%s\" is no valid node name for the "
                                               "fleet: set NodeName= in [Fleet].", host);
                f->node = strdup(host);
        }
        f->prefix = strdup(c->fleet_key_prefix);
        if (!f->node || !f->prefix)
                return log_oom();
        r = etcd_prefix_range_end(f->prefix, &f->prefix_end);
        if (r >= 0)
                r = fleet_node_pools_prefix(f->prefix, f->node, &f->pools_prefix);
        if (r < 0)
                return log_oom();
        f->ttl = c->fleet_lease_ttl;
        f->started_at = now(CLOCK_REALTIME);
        f->devices = json_object_new_array();
        if (!f->devices)
                return log_oom();

        if (c->fleet_credentials_file) {
                r = read_credentials(c->fleet_credentials_file, &f->user, &f->password);
                if (r < 0)
                        return r;
        }

        r = fleet_cache_new(&f->cache, f->prefix);
        if (r < 0)
                return log_oom();
        r = fleet_add_slot(f, NULL, &node_slot);
        if (r < 0)
                return log_oom();

        f->state = FLEET_DISCONNECTED;
        *ret = TAKE_PTR(f);
        return 0;
}

Fleet *fleet_free(Fleet *f) {
        if (!f)
                return NULL;
        fleet_cancel_requests(f, /* keep_watch= */ false);
        for (size_t i = 0; i < f->n_slots; i++)
                fleet_slot_free(f->slots[i]);
        free(f->slots);
        sd_event_source_disable_unref(f->retry_timer);
        sd_event_source_disable_unref(f->keepalive_timer);
        sd_event_source_disable_unref(f->watch_timer);
        fleet_cache_free(f->cache);
        json_object_put(f->devices);
        strv_free(f->endpoints);
        free(f->node);
        free(f->prefix);
        free(f->prefix_end);
        free(f->pools_prefix);
        free(f->user);
        if (f->password)
                explicit_bzero(f->password, strlen(f->password));
        free(f->password);
        free(f->token);
        return mfree(f);
}

int fleet_start(Fleet *f) {
        _cleanup_free_ char *list = NULL;
        int r;

        if (f->state == FLEET_OFF) {
                log_debug("Fleet: off (no Etcd= in [Fleet]).");
                return 0;
        }
        /* libcurl is loaded here, for the fleet alone: a daemon without Etcd= never maps it. Missing,
         * it is a broken installation, not an outage of etcd: start-up fails, as for a bad
         * NodeName= or credentials file. */
        r = manager_get_curl(f->manager, &f->curl);
        if (r < 0)
                return log_error_errno(r, "Fleet: cannot reach etcd (Etcd= in [Fleet]) without libcurl: %m");
        STRV_FOREACH(e, f->endpoints)
                if (strextendf(&list, "%s%s", list ? ", " : "", *e) < 0)
                        return log_oom();
        log_info("Fleet: registering node \"%s\" under %s in etcd at %s (lease TTL %llu s).", f->node,
                 f->prefix, list, (unsigned long long) (f->ttl / USEC_PER_SEC));
        /* At once, but from the event loop: the HTTP listener (the node's URL) is up by then. */
        r = timer_arm(f, &f->retry_timer, 0, on_retry_timer, f, "fleet-connect");
        if (r < 0)
                return log_error_errno(r, "Fleet: failed to schedule connecting to etcd: %m");
        return 0;
}

void fleet_startup_complete(Fleet *f) {
        if (!f || f->startup_complete)
                return;
        f->startup_complete = true;
        if (f->state != FLEET_OFF)
                fleet_sync_pools(f);
}

void fleet_pool_changed(Fleet *f, const char *pool_id) {
        FleetSlot *s;

        if (!f || f->state == FLEET_OFF)
                return;
        if (fleet_slot_get(f, pool_id, &s) < 0)
                return (void) log_oom();
        slot_changed(s);
}

int fleet_set_devices(Fleet *f, json_object *devices) {
        json_object *d = devices ? json_object_get(devices) : json_object_new_array();

        if (!d)
                return -ENOMEM;
        json_object_put(f->devices);
        f->devices = d;
        if (f->state != FLEET_OFF)
                slot_changed(f->slots[0]);
        return 0;
}

FleetState fleet_get_state(const Fleet *f) {
        return f ? f->state : FLEET_OFF;
}

const char *fleet_node_name(const Fleet *f) {
        return f ? f->node : NULL;
}

int fleet_to_json(Fleet *f, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        int r;

        if (!f || f->state == FLEET_OFF)
                return -EOPNOTSUPP;
        if (!fleet_cache_is_loaded(f->cache))
                return -ENODATA;
        r = fleet_cache_to_json(f->cache, &o);
        if (r < 0)
                return r;
        if (json_add_string(o, "fleet", fleet_state_to_string(f->state)) < 0 ||
            json_add_string(o, "node", f->node) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}
