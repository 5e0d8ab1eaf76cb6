/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Route handlers of the HTTP API. The dispatcher does what every route shares (token, route
 * and method lookup, the body cap, the pool id in the path); each handler parses its body,
 * calls one manager operation and maps its result to a status code. Preload and stop answer
 * when the manager's callback runs; their connection is suspended meanwhile (see http.c).
 * Drain and reload answer when done too (drain?wait=false: 202 at once).
 *
 * Success is 200 (202 for drain?wait=false). Every error is {"error": message, "code": CODE},
 * its status decided by the code alone (shared/pool-error.c): 400/422 bad input, 401 token, 404
 * unknown route or pool, 405 wrong method (with Allow:), 409 conflicts with the pool's or node's
 * state, 413 body over 64 KiB, 502/504 the engine failed, 500 the daemon's own failures.
 */

#include <microhttpd.h>
#include <sys/random.h>

#include "build-config.h"
#include "fleet.h"
#include "http-api.h"
#include "http-events.h"
#include "http-route.h"
#include "pool-properties.h"
#include "log.h"
#include "manager.h"
#include "metrics-export.h"
#include "prepared-engine.h"
#include "shared/json-util.h"
#include "shared/string-util.h"
#include "shared/strv.h"
#include "status-page.h"

typedef enum RouteFlags {
        ROUTE_PUBLIC = 1 << 0,          /* no token needed */
} RouteFlags;

/* id: the decoded, validated {id} of the path, NULL for routes without one. A handler either
 * answers (http_request_reply*) or defers; a negative return without an answer becomes 500. */
typedef int (*RouteHandler)(HttpRequest *r, const char *id);

typedef struct Route {
        const char *method;
        const char *path;               /* "{id}" matches one segment: the pool id */
        RouteHandler handler;
        RouteFlags flags;
} Route;



int pools_to_json(const Registry *reg, json_object **ret) {
        _cleanup_json_ json_object *a = NULL;
        int k;

        a = json_object_new_array();
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < registry_size(reg); i++) {
                json_object *o;

                k = pool_entry_to_json(registry_nth(reg, i), &o);
                if (k < 0)
                        return k;
                if (json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(a);
        return 0;
}

int pool_entry_to_json(const PoolEntry *e, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        int k;

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;

        /* Every property of the table, then the last drain's outcome (HTTP only). */
        for (size_t i = 0; i < pool_properties_n; i++) {
                PoolPropertyValue v;

                pool_properties[i].get(e, &v);
                k = pool_property_to_json(&pool_properties[i], &v, o);
                if (k < 0)
                        return k;
        }

        if (!e->has_last_drain) {
                if (json_object_object_add(o, "last_drain", NULL) < 0)
                        return -ENOMEM;
        } else {
                _cleanup_json_ json_object *d = json_object_new_object();

                if (!d ||
                    json_add_bool(d, "force_stopped", e->last_drain_force_stopped) < 0 ||
                    json_add_int(d, "duration_ms", (int64_t) e->last_drain_duration_ms) < 0 ||
                    json_add_int(d, "final_lease_count", e->last_drain_final_lease_count) < 0 ||
                    json_object_object_add(o, "last_drain", d) < 0)
                        return -ENOMEM;
                TAKE_PTR(d);
        }

        *ret = TAKE_PTR(o);
        return 0;
}

/* ---- request bodies ---- */

/* The body as a JSON object. Answers 400 itself and returns -EINVAL when it is not one. */
static int body_parse_object(HttpRequest *r, json_object **ret) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *error = NULL;
        int k;

        k = json_parse_document(strempty(r->body), r->body_size, HTTP_BODY_MAX, &o, &error);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                (void) http_request_reply_error(r, POOL_ERROR_INVALID_REQUEST, "%s",
                                                error ?: "invalid JSON");
                return -EINVAL;
        }
        if (!o || !json_object_is_type(o, json_type_object)) {
                (void) http_request_reply_error(r, POOL_ERROR_INVALID_REQUEST,
                                                "request body must be a JSON object");
                return -EINVAL;
        }

        *ret = TAKE_PTR(o);
        return 0;
}

/* Routes that take no parameters accept an empty body or "{}". */
static int body_parse_empty(HttpRequest *r) {
        _cleanup_json_ json_object *o = NULL;
        int k;

        if (r->body_size == 0)
                return 0;
        k = body_parse_object(r, &o);
        if (k < 0)
                return k;
        if (json_object_object_length(o) > 0) {
                (void) http_request_reply_error(r, POOL_ERROR_INVALID_REQUEST,
                                                "this request takes no parameters: send no body or {}");
                return -EINVAL;
        }
        return 0;
}

/* Stores the member itself (borrowed from the document). */
static int dispatch_object(const JsonDispatch *d, const char *name, json_object *v, void *field,
                           char **ret_error) {
        *(json_object **) field = v;
        return 0;
}

/* {"prepared": PreparedEngine} whose pool_id is the one in the path. Answers 400 itself. */
static int body_parse_prepared(HttpRequest *r, const char *id, PreparedEngine **ret) {
        static const JsonDispatch table[] = {
                { "prepared", json_type_object, dispatch_object, 0, JSON_MANDATORY },
                {}
        };
        _cleanup_(prepared_engine_freep) PreparedEngine *pe = NULL;
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *error = NULL;
        json_object *prepared = NULL;
        int k;

        k = body_parse_object(r, &o);
        if (k < 0)
                return k;

        k = json_dispatch(o, NULL, table, 0, &prepared, &error);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                (void) http_request_reply_error(r, POOL_ERROR_INVALID_REQUEST, "%s", strna(error));
                return -EINVAL;
        }

        k = prepared_engine_from_object(prepared, &pe, &error);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                (void) http_request_reply_error(r, POOL_ERROR_INVALID_PREPARED_ENGINE, "prepared: %s",
                                                strna(error));
                return -EINVAL;
        }

        if (!streq(pe->pool_id, id)) {
                (void) http_request_reply_error(r, POOL_ERROR_INVALID_PREPARED_ENGINE,
                                                "pool id in the path (%s) differs from prepared.pool_id (%s)",
                                                id, pe->pool_id);
                return -EINVAL;
        }

        *ret = TAKE_PTR(pe);
        return 0;
}

/* ---- deferred requests ---- */

static void request_abandon(HttpRequest *r) {
        Pool *p;

        /* The client is gone: the operation goes on, but must not call back into a freed request. */
        p = manager_get_pool(r->manager, r->pool_id);
        if (p)
                pool_forget_waiter(p, r);
}

/* The operation's callback answers; r->pool_id (set by route_request()) says whose waiter to drop
 * if the client goes first. */
static void request_defer_on_pool(HttpRequest *r) {
        http_request_defer(r, request_abandon);
}

/* After an immediate failure: a waiter may have been registered before the error. */
static void request_undefer(HttpRequest *r) {
        request_abandon(r);
        r->deferred = false;
        r->abandon = NULL;
}

/* An answer that could not be built (out of memory). */
static void reply_internal_error(HttpRequest *r) {
        (void) http_request_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
}

/* Replies to a failed operation; prefix ("preload failed") goes before the message of the
 * engine's failures, where the message alone would not say what failed. */
static void reply_failure(HttpRequest *r, const PoolError *e, const char *prefix) {
        _cleanup_free_ char *msg = NULL;

        if (prefix && pool_error_info(e->code)->http_status >= 500 &&
            asprintf(&msg, "%s: %s", prefix, pool_error_message(e)) >= 0) {
                (void) http_request_reply_pool_error(r, &(PoolError) { .code = e->code, .message = msg });
                return;
        }
        (void) http_request_reply_pool_error(r, e);
}

/* The answer of an operation that ended: its failure, or 200 with {"pool_id": ...} and what
 * outcome() adds. */
static void reply_outcome(HttpRequest *r, const Pool *p, const PoolError *error, const char *failed,
                          int (*outcome)(HttpRequest *r, const Pool *p, json_object *o)) {
        _cleanup_json_ json_object *o = NULL;

        if (error)
                return reply_failure(r, error, failed);
        o = json_object_new_object();
        if (!o || json_add_string(o, "pool_id", p->id) < 0 || outcome(r, p, o) < 0)
                return reply_internal_error(r);
        (void) http_request_reply(r, MHD_HTTP_OK, o);
}

static int preload_outcome(HttpRequest *r, const Pool *p, json_object *o) {
        const PoolEntry *e = registry_get(r->manager->registry, p->id);
        int k;

        k = json_add_int(o, "pid", e ? e->main_pid : 0);
        return k < 0 ? k : json_add_string(o, "handoff_path", e ? e->handoff_path : NULL);
}

static void on_preload_done(Pool *p, const PoolError *error, void *userdata) {
        reply_outcome(userdata, p, error, "preload failed", preload_outcome);
}

static int stop_outcome(HttpRequest *r, const Pool *p, json_object *o) {
        return json_add_bool(o, "stopped", true);
}

static void on_stop_done(Pool *p, const PoolError *error, void *userdata) {
        reply_outcome(userdata, p, error, "stop failed", stop_outcome);
}

static int drain_outcome(HttpRequest *r, const Pool *p, json_object *o) {
        if (json_add_bool(o, "force_stopped", p->drain_outcome.force_stopped) < 0 ||
            json_add_int(o, "duration_ms", (int64_t) p->drain_outcome.duration_ms) < 0)
                return -ENOMEM;
        return json_add_int(o, "final_lease_count", p->drain_outcome.final_lease_count);
}

static void on_drain_done(Pool *p, const PoolError *error, void *userdata) {
        reply_outcome(userdata, p, error, "drain failed", drain_outcome);
}

static void on_reload_done(Pool *p, const PoolError *error, void *userdata) {
        HttpRequest *r = userdata;
        const ReloadOutcome *ro = &p->reload_outcome;
        _cleanup_json_ json_object *o = NULL;

        o = json_object_new_object();
        if (!o || json_add_string(o, "pool_id", p->id) < 0 ||
            json_add_bool(o, "success", !error) < 0 ||
            json_add_bool(o, "rolled_back", ro->rolled_back) < 0 ||
            json_add_string(o, "engine_version", ro->engine_version) < 0 ||
            json_add_string(o, "error", error ? pool_error_message(error) : NULL) < 0 ||
            (error && json_add_string(o, "code", pool_error_code_to_string(error->code)) < 0))
                return reply_internal_error(r);
        /* 200 with success=true; otherwise the code's status (502 rolled back or failed, 409
         * aborted or canceled) with the outcome. */
        (void) http_request_reply(r, error ? pool_error_info(error->code)->http_status : MHD_HTTP_OK, o);
}

/* ---- routes ---- */

/* 200 with what was built into *o, or k, the error of building it. */
static int reply_built(HttpRequest *r, int k, json_object **o) {
        return k < 0 ? k : http_request_reply(r, MHD_HTTP_OK, *o);
}

static int reply_pool_leases(HttpRequest *r, const char *id, uint32_t leases) {
        _cleanup_json_ json_object *o = NULL;

        o = json_object_new_object();
        if (!o || json_add_string(o, "pool_id", id) < 0 || json_add_int(o, "active_leases", leases) < 0)
                return -ENOMEM;
        return http_request_reply(r, MHD_HTTP_OK, o);
}

/* A synchronous refusal of a manager operation (unknown pool, wrong state, ...): k < 0 with e set,
 * or -ENOMEM and the like without it. */
static int reply_refusal(HttpRequest *r, int k, const PoolError *e) {
        if (!pool_error_is_set(e))
                return k;       /* -ENOMEM and other failures without a PoolError: 500 by the caller */
        return http_request_reply_pool_error(r, e);
}

/* The answer of a route that started an operation on its deferred request: nothing yet, the
 * operation's callback replies when it ends; or, if it was refused at once, the refusal now. */
static int reply_started(HttpRequest *r, int k, const PoolError *e) {
        if (k >= 0)
                return 0;
        request_undefer(r);
        return reply_refusal(r, k, e);
}

static int route_health(HttpRequest *r, const char *id) {
        _cleanup_json_ json_object *o = NULL;

        o = json_object_new_object();
        if (!o || json_add_string(o, "status", "ok") < 0 || json_add_string(o, "version", PACKAGE_VERSION) < 0 ||
            json_add_string(o, "fleet", fleet_state_to_string(fleet_get_state(r->manager->fleet))) < 0)
                return -ENOMEM;
        return http_request_reply(r, MHD_HTTP_OK, o);
}

/* The Prometheus exposition, built from what the daemon knows now (no waiting). */
static int route_metrics(HttpRequest *r, const char *id) {
        char *text = NULL;
        int k;

        k = metrics_export(r->manager, &text, NULL);
        if (k < 0)
                return k;
        return http_request_reply_text(r, MHD_HTTP_OK, METRICS_CONTENT_TYPE, text);
}

/* Every node's pools, from the fleet's watch cache (see fleet.h). */
static int route_fleet_pools(HttpRequest *r, const char *id) {
        _cleanup_json_ json_object *o = NULL;
        int k;

        k = fleet_to_json(r->manager->fleet, &o);
        if (k == -EOPNOTSUPP)
                return http_request_reply_error(r, POOL_ERROR_FLEET_OFF,
                                                "the fleet is off: no Etcd= in [Fleet] of pool-managerd.conf");
        if (k == -ENODATA)
                return http_request_reply_pool_error_full(r, &(PoolError) { POOL_ERROR_FLEET_UNAVAILABLE, (char *)
                                                          "the fleet's keys have not been read from etcd yet "
                                                          "(etcd unreachable since start-up); retry later" },
                                                          MHD_HTTP_HEADER_RETRY_AFTER, "1");
        return reply_built(r, k, &o);
}

static int route_pools(HttpRequest *r, const char *id) {
        _cleanup_json_ json_object *a = NULL;

        return reply_built(r, pools_to_json(r->manager->registry, &a), &a);
}

/* The server-sent events (http-events.c): a snapshot, then every change. */
static int route_events(HttpRequest *r, const char *id) {
        return http_events_subscribe(r->manager->events, r);
}

/* The status page: public (it holds no data; what it shows comes from /events and /devices, with
 * the token the page is given in its URL fragment). Only its own inline code may run. */
static int route_page(HttpRequest *r, const char *id) {
        static const char *const headers[] = {
                "Content-Security-Policy", status_page_csp,
                "X-Content-Type-Options", "nosniff",
                "X-Frame-Options", "DENY",
                "Referrer-Policy", "no-referrer",
                NULL
        };

        return http_request_reply_static(r, MHD_HTTP_OK, "text/html; charset=utf-8", status_page_html,
                                         status_page_html_size, headers);
}

static int route_status(HttpRequest *r, const char *id) {
        _cleanup_json_ json_object *o = NULL;
        const PoolEntry *e;
        int k;

        k = body_parse_empty(r);
        if (k < 0)
                return k;

        e = registry_get(r->manager->registry, id);
        if (!e)
                return http_request_reply_error(r, POOL_ERROR_NO_SUCH_POOL, "pool %s not found", id);
        return reply_built(r, pool_entry_to_json(e, &o), &o);
}

/* Preload and reload: a PreparedEngine in the body; the answer comes when the operation ends. */
static int route_prepared(HttpRequest *r, const char *id, bool reload) {
        _cleanup_(prepared_engine_freep) PreparedEngine *pe = NULL;
        _cleanup_(pool_error_done) PoolError error = POOL_ERROR_NULL;
        int k;

        k = body_parse_prepared(r, id, &pe);
        if (k < 0)
                return k;

        /* Deferred first: the callback may run before the operation's call returns. */
        request_defer_on_pool(r);
        k = reload ? manager_reload(r->manager, id, &pe, 0, on_reload_done, r, &error) :
                manager_preload(r->manager, &pe, on_preload_done, r, &error);
        return reply_started(r, k, &error);
}

static int route_preload(HttpRequest *r, const char *id) {
        return route_prepared(r, id, false);
}

static int route_stop(HttpRequest *r, const char *id) {
        _cleanup_(pool_error_done) PoolError error = POOL_ERROR_NULL;
        int k;

        k = body_parse_empty(r);
        if (k < 0)
                return k;

        request_defer_on_pool(r);
        k = manager_stop(r->manager, id, on_stop_done, r, &error);
        return reply_started(r, k, &error);
}

static int route_drain(HttpRequest *r, const char *id) {
        static const JsonDispatch table[] = {
                { "deadline_ms", json_type_int, json_dispatch_uint64, 0, JSON_MANDATORY },
                {}
        };
        _cleanup_json_ json_object *o = NULL, *reply = NULL;
        _cleanup_(pool_error_done) PoolError error = POOL_ERROR_NULL;
        _cleanup_free_ char *bad = NULL;
        uint64_t deadline_ms = 0;
        int k;

        k = body_parse_object(r, &o);
        if (k < 0)
                return k;
        k = json_dispatch(o, NULL, table, 0, &deadline_ms, &bad);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                return http_request_reply_error(r, POOL_ERROR_INVALID_REQUEST, "%s", strna(bad));

        /* ?wait=false: answer 202 at once; the drain goes on. Otherwise answer when done. */
        if (streq_ptr(MHD_lookup_connection_value(r->connection, MHD_GET_ARGUMENT_KIND, "wait"), "false")) {
                k = manager_drain(r->manager, id, deadline_ms, NULL, NULL, &error);
                if (k < 0)
                        return reply_refusal(r, k, &error);
                reply = json_object_new_object();
                if (!reply || json_add_string(reply, "pool_id", id) < 0 ||
                    json_add_bool(reply, "draining", true) < 0 ||
                    json_add_int(reply, "deadline_ms", (int64_t) deadline_ms) < 0)
                        return -ENOMEM;
                return http_request_reply(r, MHD_HTTP_ACCEPTED, reply);
        }

        request_defer_on_pool(r);
        k = manager_drain(r->manager, id, deadline_ms, on_drain_done, r, &error);
        return reply_started(r, k, &error);
}

static int route_reload(HttpRequest *r, const char *id) {
        return route_prepared(r, id, true);
}

static int route_reset(HttpRequest *r, const char *id) {
        _cleanup_json_ json_object *reply = NULL;
        _cleanup_(pool_error_done) PoolError error = POOL_ERROR_NULL;
        int k;

        k = body_parse_empty(r);
        if (k < 0)
                return k;
        k = manager_reset(r->manager, id, &error);
        if (k < 0)
                return reply_refusal(r, k, &error);
        reply = json_object_new_object();
        if (!reply || json_add_string(reply, "pool_id", id) < 0 || json_add_string(reply, "circuit", "closed") < 0)
                return -ENOMEM;
        return http_request_reply(r, MHD_HTTP_OK, reply);
}

static int route_lease(HttpRequest *r, const char *id, bool allocate) {
        _cleanup_(pool_error_done) PoolError error = POOL_ERROR_NULL;
        uint32_t leases = 0;
        int k;

        k = body_parse_empty(r);
        if (k < 0)
                return k;
        k = allocate ? manager_allocate_lease(r->manager, id, &leases, &error) :
                manager_release_lease(r->manager, id, &leases, &error);
        if (k < 0)
                return reply_refusal(r, k, &error);
        return reply_pool_leases(r, id, leases);
}

static int route_lease_allocate(HttpRequest *r, const char *id) {
        return route_lease(r, id, true);
}

static int route_lease_release(HttpRequest *r, const char *id) {
        return route_lease(r, id, false);
}

/* ---- devices (issue 9): the GPU inventory, read-only but for uncordon ---- */

static int route_devices(HttpRequest *r, const char *id) {
        _cleanup_json_ json_object *o = NULL;

        return reply_built(r, gpu_inventory_to_json(r->manager->gpus, &o), &o);
}

static int route_device_uncordon(HttpRequest *r, const char *id) {
        _cleanup_json_ json_object *o = NULL;
        _cleanup_free_ char *error = NULL;
        unsigned index = 0;
        int k;

        k = body_parse_empty(r);
        if (k < 0)
                return k;
        k = gpu_inventory_uncordon(r->manager->gpus, id, &index, &error);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                return http_request_reply_error(r, k == -EINVAL || k == -ENOENT ? POOL_ERROR_NO_SUCH_DEVICE :
                                                k == -EBUSY ? POOL_ERROR_DEVICE_LOST : POOL_ERROR_GPU_REQUIRED,
                                                "%s", error ?: strerror(-k));
        o = json_object_new_object();
        if (!o || json_add_int(o, "index", index) < 0 || json_add_bool(o, "cordoned", false) < 0)
                return -ENOMEM;
        return http_request_reply(r, MHD_HTTP_OK, o);
}

static const Route routes[] = {
        { "GET",    "/",                  route_page,           ROUTE_PUBLIC },
        { "GET",    "/health",            route_health,         ROUTE_PUBLIC },
        { "GET",    "/events",            route_events                       },
        { "GET",    "/pools",             route_pools                        },
        { "GET",    "/pools/{id}/status", route_status                       },
        { "POST",   "/pools/{id}/status", route_status                       },
        { "POST",   "/pools/{id}/preload", route_preload                     },
        { "POST",   "/pools/{id}/stop",   route_stop                         },
        { "POST",   "/pools/{id}/drain",  route_drain                        },
        { "POST",   "/pools/{id}/reload", route_reload                       },
        { "POST",   "/pools/{id}/reset",  route_reset                        },
        { "POST",   "/pools/{id}/leases", route_lease_allocate               },
        { "DELETE", "/pools/{id}/leases", route_lease_release                },
        { "GET",    "/fleet/pools",       route_fleet_pools                  },
        { "GET",    "/devices",           route_devices                      },
        { "GET",    "/metrics",           route_metrics                      },
        { "POST",   "/devices/{id}/uncordon", route_device_uncordon          },
};

/* ---- dispatch ---- */

static int reply_unauthorized(HttpRequest *r) {
        /* Never the token itself. */
        log_debug("HTTP %s %s from %s: unauthorized (%s Authorization header).", r->method, r->path,
                  r->client, http_request_header(r, MHD_HTTP_HEADER_AUTHORIZATION) ? "wrong" : "no");

        return http_request_reply_pool_error_full(r, &(PoolError) { POOL_ERROR_UNAUTHORIZED, (char *) "unauthorized" },
                                                  MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
}

static int reply_method_not_allowed(HttpRequest *r, const char *quoted_path, const char *allow) {
        _cleanup_free_ char *message = NULL;

        if (asprintf(&message, "method %s not allowed for %s (allowed: %s)", r->method, quoted_path, allow) < 0)
                return -ENOMEM;
        return http_request_reply_pool_error_full(r, &(PoolError) { POOL_ERROR_METHOD_NOT_ALLOWED, message },
                                                  MHD_HTTP_HEADER_ALLOW, allow);
}

static int reply_starting(HttpRequest *r) {
        return http_request_reply_pool_error_full(r, &(PoolError) { POOL_ERROR_STARTING, (char *)
                                                  "pool-managerd is starting: the engines that already run are "
                                                  "not all re-adopted yet; retry later" },
                                                  MHD_HTTP_HEADER_RETRY_AFTER, "1");
}

/* X-Correlation-Id: the client's (1 to 128 of [A-Za-z0-9._:/+=-], anything else is refused
 * rather than written into the journal), or a new one; kept on the request, echoed in the
 * answer and logged as CORRELATION_ID= with the operation the request starts. */
static int request_correlation_id(HttpRequest *r) {
        const char *h = http_request_header(r, HTTP_HEADER_CORRELATION_ID);
        uint8_t random[16];
        char hex[sizeof(random) * 2 + 1];

        if (r->correlation_id)
                return 0;               /* a held request, routed again */
        if (h) {
                size_t n = strlen(h);

                if (n == 0 || n > 128 || strspn(h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                   "0123456789._:/+=-") != n)
                        return -EINVAL;
                r->correlation_id = strdup(h);
                return r->correlation_id ? 0 : -ENOMEM;
        }
        if (getrandom(random, sizeof(random), GRND_NONBLOCK) != (ssize_t) sizeof(random))
                return 0;               /* no entropy yet: no id, nothing else changes */
        for (size_t i = 0; i < sizeof(random); i++)
                snprintf(hex + i * 2, 3, "%02x", random[i]);
        r->correlation_id = strdup(hex);
        return r->correlation_id ? 0 : -ENOMEM;
}

static int route_request(HttpRequest *r) {
        _cleanup_strv_free_ char **segments = NULL;
        _cleanup_free_ char *allow = NULL, *quoted = NULL, *quoted_id = NULL;
        const Route *route = NULL;
        const char *id = NULL;
        bool path_known = false, path_public = false;
        int k;

        k = request_correlation_id(r);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                return http_request_reply_error(r, POOL_ERROR_INVALID_REQUEST,
                                                "invalid %s header: expected 1 to 128 characters of "
                                                "[A-Za-z0-9._:/+=-]", HTTP_HEADER_CORRELATION_ID);

        k = http_path_split(r->path, &segments);
        if (k == -ENOMEM)
                return k;

        for (size_t i = 0; k >= 0 && i < ELEMENTSOF(routes); i++) {
                const char *rid;

                if (!http_path_match(routes[i].path, segments, &rid))
                        continue;
                path_known = true;
                if (routes[i].flags & ROUTE_PUBLIC)
                        path_public = true;
                if (streq(routes[i].method, r->method)) {
                        route = &routes[i];
                        id = rid;
                } else if (!allow || !strstr(allow, routes[i].method)) {
                        if (strextendf(&allow, "%s%s", allow ? ", " : "", routes[i].method) < 0)
                                return -ENOMEM;
                }
        }

        /* The token first: without it nothing is revealed, not even which routes exist. A public
         * path (/health) is no secret: a wrong method there is 405 with Allow:, token or not. */
        if (!(route && (route->flags & ROUTE_PUBLIC)) && !(path_public && !route) &&
            !http_request_authorized(r))
                return reply_unauthorized(r);

        quoted = json_escape_for_message(r->path);
        if (!quoted)
                return -ENOMEM;
        if (!path_known)
                return http_request_reply_error(r, POOL_ERROR_NOT_FOUND, "no such route: %s %s", r->method, quoted);
        if (!route)
                return reply_method_not_allowed(r, quoted, allow);

        if (r->body_too_large)
                return http_request_reply_error(r, POOL_ERROR_BODY_TOO_LARGE,
                                                "request body too large (limit %u bytes)", HTTP_BODY_MAX);

        if (strstr(route->path, "{id}") && !pool_id_is_valid(id)) {
                quoted_id = json_escape_for_message(id);
                if (!quoted_id)
                        return -ENOMEM;
                return http_request_reply_error(r, POOL_ERROR_INVALID_POOL_ID,
                                                "invalid pool id \"%s\": expected 1 to %u characters of "
                                                "[A-Za-z0-9_.-], starting with a letter or digit",
                                                quoted_id, POOL_ID_MAX);
        }
        if (strstr(route->path, "{id}") && free_and_strdup(&r->pool_id, id) < 0)
                return -ENOMEM;

        /* Nothing about pools before the engines of a previous instance are re-adopted. */
        if (!(route->flags & ROUTE_PUBLIC) && !r->manager->started) {
                if (r->manager->startup_timed_out)
                        return reply_starting(r);
                http_request_hold(r);
                return 0;
        }

        /* The operation the handler starts takes the id into its journal entries. */
        r->manager->correlation_id = r->correlation_id;
        k = route->handler(r, id);
        r->manager->correlation_id = NULL;
        return k;
}

void http_api_handle(HttpRequest *r) {
        int k;

        k = route_request(r);
        if (k < 0 && !r->replied) {
                if (k == -ENOMEM)
                        log_oom();
                r->deferred = false;
                (void) http_request_reply_error(r, POOL_ERROR_INTERNAL, "internal error: %s",
                                                strerror(-k));
        }
}
