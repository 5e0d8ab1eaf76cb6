/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>

#include "build-config.h"
#include "bus-common.h"
#include "fleet.h"
#include "devices-bus.h"
#include "log.h"
#include "manager-bus.h"
#include "manager.h"
#include "pool-bus.h"
#include "shared/json-util.h"
#include "shared/strv.h"
#include "shared/string-util.h"

/* An asynchronous method call waiting for a pool operation to finish. */
typedef struct BusRequest {
        Manager *manager;
        sd_bus_message *message;
        char *pool_id;
} BusRequest;

static BusRequest *bus_request_free(BusRequest *req) {
        if (!req)
                return NULL;
        sd_bus_message_unref(req->message);
        free(req->pool_id);
        return mfree(req);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(BusRequest *, bus_request_free);

static int bus_request_new(Manager *manager, sd_bus_message *message, const char *pool_id, BusRequest **ret) {
        _cleanup_(bus_request_freep) BusRequest *req = NULL;

        req = calloc(1, sizeof(BusRequest));
        if (!req)
                return -ENOMEM;
        req->manager = manager;
        req->message = sd_bus_message_ref(message);
        req->pool_id = strdup(pool_id);
        if (!req->pool_id)
                return -ENOMEM;
        *ret = TAKE_PTR(req);
        return 0;
}

static int validate_pool_id(const char *id, sd_bus_error *error) {
        if (!pool_id_is_valid(id))
                return bus_error_set(error, POOL_ERROR_INVALID_POOL_ID,
                                     "pool id \"%s\" is invalid: must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}", id);
        return 0;
}

/* What every mutating method on a pool does first: the caller may, the id is valid, and (for a
 * call answered later) the request is kept. */
static int bus_method_begin(Manager *m, sd_bus_message *message, const char *id, BusRequest **ret_req,
                            sd_bus_error *error) {
        int r;

        r = bus_check_authorized(m, message, error);
        if (r < 0)
                return r;
        r = validate_pool_id(id, error);
        if (r < 0)
                return r;
        return ret_req ? bus_request_new(m, message, id, ret_req) : 0;
}

static int parse_prepared(const char *json, PreparedEngine **ret, sd_bus_error *error) {
        _cleanup_free_ char *message = NULL;
        int r;

        r = prepared_engine_from_json(json, strlen(json), ret, &message);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return bus_error_set(error, POOL_ERROR_INVALID_PREPARED_ENGINE, "invalid PreparedEngine: %s",
                                     message ?: strerror(-r));
        return 0;
}

/* The answer of a method that started an operation: the refusal now, or nothing yet (1) and the
 * request handed to the pool's waiter list, whose callback replies when the operation ends. */
static int bus_reply_started(sd_bus_message *message, int r, const PoolError *perr, BusRequest **req) {
        if (r < 0)
                return bus_reply_refusal(message, r, perr);
        *req = NULL;
        return 1;
}

static void on_preload_done(Pool *p, const PoolError *error, void *userdata) {
        _cleanup_(bus_request_freep) BusRequest *req = userdata;
        _cleanup_free_ char *path = NULL;
        const PoolEntry *e;

        if (error) {
                (void) bus_reply_pool_error(req->message, error);
                return;
        }

        e = registry_get(req->manager->registry, req->pool_id);
        if (pool_bus_path(req->pool_id, &path) < 0) {
                (void) sd_bus_reply_method_errno(req->message, ENOMEM, NULL);
                return;
        }
        (void) sd_bus_reply_method_return(req->message, "ous", path, e ? (uint32_t) e->main_pid : 0,
                                          e ? strempty(e->handoff_path) : "");
}

static int bus_method_preload(Manager *m, sd_bus_message *message, const char *json, sd_bus_error *error) {
        _cleanup_(prepared_engine_freep) PreparedEngine *pe = NULL;
        _cleanup_(bus_request_freep) BusRequest *req = NULL;
        _cleanup_(pool_error_done) PoolError perr = POOL_ERROR_NULL;
        int r;

        r = bus_check_authorized(m, message, error);
        if (r < 0)
                return r;
        r = parse_prepared(json, &pe, error);
        if (r < 0)
                return r;
        r = bus_request_new(m, message, pe->pool_id, &req);
        if (r < 0)
                return r;

        r = manager_preload(m, &pe, on_preload_done, req, &perr);
        return bus_reply_started(message, r, &perr, &req);
}

static int method_preload(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        const char *json;
        int r;

        r = sd_bus_message_read(message, "s", &json);
        if (r < 0)
                return r;
        return bus_method_preload(userdata, message, json, error);
}

/* The pool ID argument of a Manager method, copied (the DEFINE_BUS_POOL_METHOD() convention). */
static int read_pool_id(sd_bus_message *message, char **ret, sd_bus_error *error) {
        const char *id;
        int r;

        r = sd_bus_message_read(message, "s", &id);
        if (r < 0)
                return r;
        *ret = strdup(id);
        return *ret ? 0 : -ENOMEM;
}

static int method_list_pools(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "o");
        if (r < 0)
                return r;
        for (size_t i = 0; i < registry_size(m->registry); i++) {
                _cleanup_free_ char *path = NULL;

                r = pool_bus_path(registry_nth(m->registry, i)->pool_id, &path);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "o", path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_pool(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *path = NULL;
        Manager *m = userdata;
        const char *id;
        int r;

        r = sd_bus_message_read(message, "s", &id);
        if (r < 0)
                return r;
        r = validate_pool_id(id, error);
        if (r < 0)
                return r;
        if (!registry_get(m->registry, id))
                return bus_error_set(error, POOL_ERROR_NO_SUCH_POOL, "pool %s not found", id);
        r = pool_bus_path(id, &path);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, "o", path);
}

static void on_stop_done(Pool *p, const PoolError *error, void *userdata) {
        _cleanup_(bus_request_freep) BusRequest *req = userdata;

        if (error)
                (void) bus_reply_pool_error(req->message, error);
        else
                (void) sd_bus_reply_method_return(req->message, NULL);
}

static void on_drain_done(Pool *p, const PoolError *error, void *userdata) {
        _cleanup_(bus_request_freep) BusRequest *req = userdata;

        if (error) {
                (void) bus_reply_pool_error(req->message, error);
                return;
        }
        (void) sd_bus_reply_method_return(req->message, "btu", p->drain_outcome.force_stopped,
                                          p->drain_outcome.duration_ms, p->drain_outcome.final_lease_count);
}

/* Stop, or drain (no new leases, the engine stopped once they are released or deadline_ms has
 * passed): the answer comes when the engine is gone. */
static int bus_method_stop_or_drain(Manager *m, sd_bus_message *message, const char *id, bool drain,
                                    uint64_t deadline_ms, sd_bus_error *error) {
        _cleanup_(bus_request_freep) BusRequest *req = NULL;
        _cleanup_(pool_error_done) PoolError perr = POOL_ERROR_NULL;
        int r;

        r = bus_method_begin(m, message, id, &req, error);
        if (r < 0)
                return r;
        r = drain ? manager_drain(m, id, deadline_ms, on_drain_done, req, &perr) :
                manager_stop(m, id, on_stop_done, req, &perr);
        return bus_reply_started(message, r, &perr, &req);
}

int bus_method_stop(Manager *m, sd_bus_message *message, const char *id, sd_bus_error *error) {
        return bus_method_stop_or_drain(m, message, id, false, 0, error);
}

DEFINE_BUS_POOL_METHOD(method_stop, read_pool_id, bus_method_stop)

int bus_method_drain(Manager *m, sd_bus_message *message, const char *id, uint64_t deadline_ms,
                     sd_bus_error *error) {
        return bus_method_stop_or_drain(m, message, id, true, deadline_ms, error);
}

static int method_drain(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        const char *id;
        uint64_t deadline;
        int r;

        r = sd_bus_message_read(message, "st", &id, &deadline);
        if (r < 0)
                return r;
        return bus_method_drain(userdata, message, id, deadline, error);
}

static void on_reload_done(Pool *p, const PoolError *error, void *userdata) {
        _cleanup_(bus_request_freep) BusRequest *req = userdata;
        const ReloadOutcome *o = &p->reload_outcome;

        /* A failed reload is an answer, not an error: the caller learns whether it rolled back. */
        (void) sd_bus_reply_method_return(req->message, "bbss", !error, o->rolled_back,
                                          strempty(o->engine_version), error ? pool_error_message(error) : "");
}

int bus_method_reload(Manager *m, sd_bus_message *message, const char *id, const char *json,
                      sd_bus_error *error) {
        _cleanup_(prepared_engine_freep) PreparedEngine *pe = NULL;
        _cleanup_(bus_request_freep) BusRequest *req = NULL;
        _cleanup_(pool_error_done) PoolError perr = POOL_ERROR_NULL;
        int r;

        r = bus_method_begin(m, message, id, &req, error);
        if (r < 0)
                return r;
        r = parse_prepared(json, &pe, error);
        if (r < 0)
                return r;
        /* A PreparedEngine for another pool is refused by manager_reload() (InvalidArgument). */
        r = manager_reload(m, id, &pe, 0, on_reload_done, req, &perr);
        return bus_reply_started(message, r, &perr, &req);
}

static int method_reload(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        const char *id, *json;
        int r;

        r = sd_bus_message_read(message, "ss", &id, &json);
        if (r < 0)
                return r;
        return bus_method_reload(userdata, message, id, json, error);
}

int bus_method_lease(Manager *m, sd_bus_message *message, const char *id, bool allocate, sd_bus_error *error) {
        _cleanup_(pool_error_done) PoolError perr = POOL_ERROR_NULL;
        uint32_t leases = 0;
        int r;

        r = bus_method_begin(m, message, id, NULL, error);
        if (r < 0)
                return r;
        r = allocate ? manager_allocate_lease(m, id, &leases, &perr) : manager_release_lease(m, id, &leases, &perr);
        if (r < 0)
                return bus_reply_refusal(message, r, &perr);
        return sd_bus_reply_method_return(message, "u", leases);
}

int bus_method_reset(Manager *m, sd_bus_message *message, const char *id, sd_bus_error *error) {
        _cleanup_(pool_error_done) PoolError perr = POOL_ERROR_NULL;
        int r;

        r = bus_method_begin(m, message, id, NULL, error);
        if (r < 0)
                return r;
        r = manager_reset(m, id, &perr);
        if (r < 0)
                return bus_reply_refusal(message, r, &perr);
        return sd_bus_reply_method_return(message, NULL);
}

/* The configuration again, like SIGHUP; `systemctl reload` calls this through busctl. Root only
 * on the system bus (the policy says the same). */
static int method_reload_configuration(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        _cleanup_free_ char *msg = NULL;
        Manager *m = userdata;
        uid_t uid;
        int r;

        if (!m->user) {
                r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_EUID, &creds);
                if (r < 0)
                        return r;
                r = sd_bus_creds_get_euid(creds, &uid);
                if (r < 0)
                        return r;
                if (uid != 0)
                        return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                "only root may reload the configuration");
        }

        r = manager_reload_config(m, &msg);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return bus_error_set(error, POOL_ERROR_INVALID_CONFIGURATION, "%s",
                                     msg ?: "failed to reload the configuration");
        return sd_bus_reply_method_return(message, NULL);
}

DEFINE_BUS_POOL_METHOD(method_reset_pool, read_pool_id, bus_method_reset)

DEFINE_BUS_POOL_METHOD(method_allocate_lease, read_pool_id, bus_method_lease, true)

DEFINE_BUS_POOL_METHOD(method_release_lease, read_pool_id, bus_method_lease, false)

static int property_get_gpu_only(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "b", (int) m->config->gpu_only);
}

static int property_get_pool_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                                   sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "u", (uint32_t) registry_size(m->registry));
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static int property_get_fleet_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", fleet_state_to_string(fleet_get_state(m->fleet)));
}

/* The document GET /fleet/pools serves, for poolctl fleet. */
static int method_list_fleet_pools(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_json_ json_object *o = NULL;
        Manager *m = userdata;
        int r;

        r = fleet_to_json(m->fleet, &o);
        if (r == -EOPNOTSUPP)
                return bus_error_set(error, POOL_ERROR_FLEET_OFF,
                                     "the fleet is off: no Etcd= in [Fleet] of pool-managerd.conf");
        if (r == -ENODATA)
                return bus_error_set(error, POOL_ERROR_FLEET_UNAVAILABLE,
                                     "the fleet's keys have not been read from etcd yet (etcd unreachable "
                                     "since start-up); retry later");
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, "s",
                                          json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
}

const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("GpuOnly", "b", property_get_gpu_only, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PoolCount", "u", property_get_pool_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("FleetState", "s", property_get_fleet_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_NAMES("Preload", "s", SD_BUS_PARAM(prepared_json),
                                 "ous", SD_BUS_PARAM(pool) SD_BUS_PARAM(pid) SD_BUS_PARAM(handoff_path),
                                 method_preload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListPools", "", , "ao", SD_BUS_PARAM(pools),
                                 method_list_pools, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetPool", "s", SD_BUS_PARAM(id), "o", SD_BUS_PARAM(pool),
                                 method_get_pool, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Stop", "s", SD_BUS_PARAM(id), "", ,
                                 method_stop, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Drain", "st", SD_BUS_PARAM(id) SD_BUS_PARAM(deadline_ms),
                                 "btu", SD_BUS_PARAM(force_stopped) SD_BUS_PARAM(duration_ms)
                                 SD_BUS_PARAM(final_lease_count),
                                 method_drain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Reload", "ss", SD_BUS_PARAM(id) SD_BUS_PARAM(prepared_json),
                                 "bbss", SD_BUS_PARAM(success) SD_BUS_PARAM(rolled_back)
                                 SD_BUS_PARAM(engine_version) SD_BUS_PARAM(error),
                                 method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ResetPool", "s", SD_BUS_PARAM(id), "", ,
                                 method_reset_pool, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("ReloadConfiguration", "", "", method_reload_configuration, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("AllocateLease", "s", SD_BUS_PARAM(id), "u", SD_BUS_PARAM(leases),
                                 method_allocate_lease, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ReleaseLease", "s", SD_BUS_PARAM(id), "u", SD_BUS_PARAM(leases),
                                 method_release_lease, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListFleetPools", "", , "s", SD_BUS_PARAM(fleet_json),
                                 method_list_fleet_pools, SD_BUS_VTABLE_UNPRIVILEGED),
        /* The GPU inventory (devices-bus.c). */
        SD_BUS_PROPERTY("Devices", DEVICES_SIGNATURE, property_get_devices, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_PROPERTY("DeviceInventoryState", "s", property_get_device_inventory_state, 0,
                        SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_NAMES("UncordonDevice", "s", SD_BUS_PARAM(device), "u", SD_BUS_PARAM(index),
                                 method_uncordon_device, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

/* Before start-up is complete (re-adoption of running engines), calls about pools are answered
 * ...Error.Starting: the bus name is only requested once it is complete, so only a caller that
 * uses the unique name, or any caller after StartupTimeout=, gets here early. */
static int on_bus_filter(sd_bus_message *message, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;
        const char *path;
        uint8_t type;

        if (m->started || sd_bus_message_get_type(message, &type) < 0 || type != SD_BUS_MESSAGE_METHOD_CALL)
                return 0;
        path = sd_bus_message_get_path(message);
        if (!path || !(streq(path, POOL_MANAGER_PATH) || strneq(path, POOL_MANAGER_POOL_PREFIX "/", strlen(POOL_MANAGER_POOL_PREFIX "/"))))
                return 0;
        /* Introspection and Peer stay available. */
        if (sd_bus_message_is_method_call(message, "org.freedesktop.DBus.Introspectable", NULL) ||
            sd_bus_message_is_method_call(message, "org.freedesktop.DBus.Peer", NULL))
                return 0;
        (void) sd_bus_reply_method_errorf(message, pool_error_info(POOL_ERROR_STARTING)->bus_name,
                                          "pool-managerd is starting: the engines that already run are not all "
                                          "re-adopted yet; retry later");
        return 1;
}

int manager_bus_register(Manager *m) {
        int r;

        r = sd_bus_add_filter(m->bus, NULL, on_bus_filter, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the start-up bus filter: %m");

        r = sd_bus_add_object_vtable(m->bus, NULL, POOL_MANAGER_PATH, POOL_MANAGER_INTERFACE, manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register manager object: %m");
        r = sd_bus_add_fallback_vtable(m->bus, NULL, POOL_MANAGER_POOL_PREFIX, POOL_INTERFACE, pool_bus_vtable(),
                                       pool_bus_find, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register pool objects: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, POOL_MANAGER_POOL_PREFIX, pool_bus_enumerate, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register pool enumerator: %m");
        r = sd_bus_add_object_manager(m->bus, NULL, POOL_MANAGER_PATH);
        if (r < 0)
                return log_error_errno(r, "Failed to register object manager: %m");
        return 0;
}
