/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>

#include "pool-properties.h"
#include "shared/json-util.h"
#include "shared/macro.h"

#define VALUE_S(x) *ret = (PoolPropertyValue) { .set = (x) != NULL, .s = (x) }
#define VALUE_B(x) *ret = (PoolPropertyValue) { .set = true, .b = (x) }
#define VALUE_I(x, is_set) *ret = (PoolPropertyValue) { .set = (is_set), .i = (x), .u = (uint64_t) (x) }

static void get_pool_id(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_S(e->pool_id); }
static void get_replica_id(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_S(e->replica_id ?: "r0"); }
static void get_state(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_S(e->state ?: "stopped"); }
static void get_ready(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_B(e->health.ready); }
static void get_live(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_B(e->health.live); }
static void get_unit(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_S(e->unit); }
static void get_main_pid(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_I(MAX(e->main_pid, 0), e->main_pid > 0); }
static void get_url(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_S(e->url); }
static void get_engine_version(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_S(e->engine_version); }
static void get_device_mask(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_S(e->device_mask); }
static void get_slots_total(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_I(e->slots_total, e->slots_total >= 0); }
static void get_slots_free(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_I(e->slots_free, e->slots_free >= 0); }
static void get_active_leases(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_I(e->active_leases, true); }
static void get_draining(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_B(e->draining); }
static void get_handoff_path(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_S(e->handoff_path); }
static void get_heartbeat(const PoolEntry *e, PoolPropertyValue *ret) {
        VALUE_I(e->last_heartbeat_ms * 1000, e->last_heartbeat_ms > 0);
}
static void get_crash_count(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_I(e->crash_count, true); }
static void get_restart_count(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_I(e->restart_count, true); }
static void get_backoff(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_I(e->backoff_ms, true); }
static void get_next_restart(const PoolEntry *e, PoolPropertyValue *ret) {
        VALUE_I(e->next_restart_usec, e->next_restart_usec > 0);
}
static void get_circuit(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_S(e->circuit ?: "closed"); }
static void get_devices(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_S(e->devices); }
static void get_vram_required(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_I(e->vram_required, e->vram_required > 0); }
static void get_vram_used(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_I(e->vram_used, e->devices != NULL); }
static void get_tensor_split(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_S(e->tensor_split); }
static void get_placement_warning(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_S(e->placement_warning); }
static void get_last_error(const PoolEntry *e, PoolPropertyValue *ret) { VALUE_S(e->last_error); }

/* The order is poolctl status's. */
const PoolProperty pool_properties[] = {
        { "PoolId",            "pool_id",           NULL,           POOL_PROPERTY_STRING, POOL_PROPERTY_CONST, get_pool_id },
        { "State",             "state",             NULL,           POOL_PROPERTY_STRING, 0, get_state },
        { "ReplicaId",         "replica_id",        "Replica",      POOL_PROPERTY_STRING, 0, get_replica_id },
        { "Ready",             "ready",             "Ready",        POOL_PROPERTY_BOOL,   0, get_ready },
        { "Live",              "live",              "Live",         POOL_PROPERTY_BOOL,   0, get_live },
        { "Unit",              "unit",              "Unit",         POOL_PROPERTY_STRING, 0, get_unit },
        { "MainPID",           "pid",               "Main PID",     POOL_PROPERTY_UINT32, 0, get_main_pid },
        { "Url",               "url",               "URL",          POOL_PROPERTY_STRING, 0, get_url },
        { "EngineVersion",     "engine_version",    "Engine",       POOL_PROPERTY_STRING, 0, get_engine_version },
        { "DeviceMask",        "device_mask",       "Device mask",  POOL_PROPERTY_STRING, 0, get_device_mask },
        { "Devices",           "devices",           "Devices",      POOL_PROPERTY_STRING, POOL_PROPERTY_IF_SET, get_devices },
        { "VramRequiredBytes", "vram_required_bytes", "VRAM needed",  POOL_PROPERTY_UINT64, POOL_PROPERTY_IF_SET,
          get_vram_required },
        { "VramUsedBytes",     "vram_used_bytes",   "VRAM used",    POOL_PROPERTY_UINT64, POOL_PROPERTY_IF_SET,
          get_vram_used },
        { "TensorSplit",       "tensor_split",      "Tensor split", POOL_PROPERTY_STRING, POOL_PROPERTY_IF_SET,
          get_tensor_split },
        { "PlacementWarning",  "placement_warning", "Placement",    POOL_PROPERTY_STRING, POOL_PROPERTY_IF_SET,
          get_placement_warning },
        { "SlotsTotal",        "slots_total",       "Slots",        POOL_PROPERTY_INT32,  0, get_slots_total },
        { "SlotsFree",         "slots_free",        "Slots free",   POOL_PROPERTY_INT32,  0, get_slots_free },
        { "ActiveLeases",      "active_leases",     "Leases",       POOL_PROPERTY_UINT32, 0, get_active_leases },
        { "Draining",          "draining",          "Draining",     POOL_PROPERTY_BOOL,   0, get_draining },
        { "HandoffPath",       "handoff_path",      "Handoff",      POOL_PROPERTY_STRING, 0, get_handoff_path },
        { "LastHeartbeatUSec", "last_heartbeat_ms", "Heartbeat",    POOL_PROPERTY_UINT64,
          POOL_PROPERTY_JSON_MSEC | POOL_PROPERTY_TIMESTAMP, get_heartbeat },
        { "CrashCount",        "crash_count",       "Crashes",      POOL_PROPERTY_UINT32, 0, get_crash_count },
        { "RestartCount",      "restart_count",     "Restarts",     POOL_PROPERTY_UINT32, 0, get_restart_count },
        { "BackoffMSec",       "backoff_ms",        "Backoff ms",   POOL_PROPERTY_UINT64, 0, get_backoff },
        { "NextRestartUSec",   "next_restart_usec", "Next restart", POOL_PROPERTY_UINT64,
          POOL_PROPERTY_TIMESTAMP | POOL_PROPERTY_IF_SET, get_next_restart },
        { "CircuitState",      "circuit_state",     "Circuit",      POOL_PROPERTY_STRING, 0, get_circuit },
        { "LastError",         "last_error",        "Last error",   POOL_PROPERTY_STRING, POOL_PROPERTY_IF_SET,
          get_last_error },
};

const size_t pool_properties_n = ELEMENTSOF(pool_properties);

const PoolProperty *pool_property_by_bus_name(const char *name) {
        for (size_t i = 0; i < pool_properties_n; i++)
                if (streq_ptr(pool_properties[i].bus_name, name))
                        return &pool_properties[i];
        return NULL;
}

const char *pool_property_signature(const PoolProperty *p) {
        static const char *const signatures[_POOL_PROPERTY_TYPE_MAX] = {
                [POOL_PROPERTY_STRING] = "s",
                [POOL_PROPERTY_BOOL] = "b",
                [POOL_PROPERTY_UINT32] = "u",
                [POOL_PROPERTY_INT32] = "i",
                [POOL_PROPERTY_UINT64] = "t",
        };

        return signatures[p->type];
}

bool pool_property_value_equal(const PoolProperty *p, const PoolPropertyValue *a, const PoolPropertyValue *b) {
        if (a->set != b->set)
                return false;
        if (!a->set)
                return true;
        switch (p->type) {
        case POOL_PROPERTY_STRING:
                return streq_ptr(a->s, b->s);
        case POOL_PROPERTY_BOOL:
                return a->b == b->b;
        default:
                return a->u == b->u;
        }
}

int pool_property_to_json(const PoolProperty *p, const PoolPropertyValue *v, json_object *o) {
        if (!v->set || (p->type == POOL_PROPERTY_STRING && !v->s))
                return json_object_object_add(o, p->json_key, NULL) < 0 ? -ENOMEM : 0;
        switch (p->type) {
        case POOL_PROPERTY_STRING:
                return json_add_string(o, p->json_key, v->s);
        case POOL_PROPERTY_BOOL:
                return json_add_bool(o, p->json_key, v->b);
        case POOL_PROPERTY_UINT64:
                if (p->flags & POOL_PROPERTY_JSON_MSEC)
                        return json_add_int(o, p->json_key, (int64_t) (v->u / 1000));
                return json_add_int(o, p->json_key, (int64_t) v->u);
        default:
                return json_add_int(o, p->json_key, v->i);
        }
}
