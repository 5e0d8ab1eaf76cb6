/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>

#include "bus-common.h"
#include "log.h"
#include "manager-bus.h"
#include "manager.h"
#include "pool-bus.h"
#include "shared/strv.h"

static int pool_id_from_path(const char *path, char **ret) {
        _cleanup_free_ char *id = NULL;
        int r;

        r = sd_bus_path_decode(path, POOL_MANAGER_POOL_PREFIX, &id);
        if (r < 0)
                return r;
        if (r == 0 || isempty(id))
                return -ENOENT;
        *ret = TAKE_PTR(id);
        return 0;
}

/* The entry a property or method call on path refers to; NULL when it is gone. */
static const PoolEntry *entry_from_path(Manager *m, const char *path) {
        _cleanup_free_ char *id = NULL;

        if (pool_id_from_path(path, &id) < 0)
                return NULL;
        return registry_get(m->registry, id);
}

int pool_bus_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                  sd_bus_error *error) {
        Manager *m = userdata;

        if (!entry_from_path(m, path))
                return 0;
        /* Handlers get the Manager and find the entry again from the path: registry entries move
         * in memory when pools are added, so no pointer to one is kept. */
        *found = m;
        return 1;
}

int pool_bus_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        _cleanup_strv_free_ char **l = NULL;
        Manager *m = userdata;
        int r;

        for (size_t i = 0; i < registry_size(m->registry); i++) {
                char *p;

                r = pool_bus_path(registry_nth(m->registry, i)->pool_id, &p);
                if (r < 0)
                        return r;
                r = strv_push(&l, p);
                if (r < 0) {
                        free(p);
                        return r;
                }
        }
        *nodes = TAKE_PTR(l);
        return 1;
}

#define DEFINE_POOL_PROPERTY(name, type, expr)                                                          \
        static int property_get_##name(sd_bus *bus, const char *path, const char *interface,            \
                                       const char *property, sd_bus_message *reply, void *userdata,     \
                                       sd_bus_error *error) {                                           \
                const PoolEntry *e = entry_from_path(userdata, path);                                   \
                if (!e)                                                                                 \
                        return bus_error_set(error, POOL_ERROR_NO_SUCH_POOL, "pool is gone");       \
                return sd_bus_message_append(reply, type, expr);                                        \
        }

DEFINE_POOL_PROPERTY(pool_id, "s", e->pool_id);
DEFINE_POOL_PROPERTY(replica_id, "s", e->replica_id ?: "r0");
DEFINE_POOL_PROPERTY(state, "s", e->state ?: "stopped");
DEFINE_POOL_PROPERTY(live, "b", (int) e->health.live);
DEFINE_POOL_PROPERTY(ready, "b", (int) e->health.ready);
DEFINE_POOL_PROPERTY(draining, "b", (int) e->draining);
DEFINE_POOL_PROPERTY(last_error, "s", strempty(e->last_error));
DEFINE_POOL_PROPERTY(active_leases, "u", e->active_leases);
DEFINE_POOL_PROPERTY(slots_total, "i", e->slots_total);
DEFINE_POOL_PROPERTY(slots_free, "i", e->slots_free);
DEFINE_POOL_PROPERTY(engine_version, "s", strempty(e->engine_version));
DEFINE_POOL_PROPERTY(device_mask, "s", strempty(e->device_mask));
DEFINE_POOL_PROPERTY(unit, "s", strempty(e->unit));
DEFINE_POOL_PROPERTY(main_pid, "u", (uint32_t) MAX(e->main_pid, 0));
DEFINE_POOL_PROPERTY(url, "s", strempty(e->url));
DEFINE_POOL_PROPERTY(handoff_path, "s", strempty(e->handoff_path));
DEFINE_POOL_PROPERTY(last_heartbeat_usec, "t", (uint64_t) e->last_heartbeat_ms * 1000U);
DEFINE_POOL_PROPERTY(crash_count, "u", e->crash_count);
DEFINE_POOL_PROPERTY(restart_count, "u", e->restart_count);
DEFINE_POOL_PROPERTY(backoff_msec, "t", e->backoff_ms);
DEFINE_POOL_PROPERTY(next_restart_usec, "t", e->next_restart_usec);
DEFINE_POOL_PROPERTY(circuit_state, "s", e->circuit ?: "closed");

static int pool_method_with_id(sd_bus_message *message, void *userdata, sd_bus_error *error, char **ret_id) {
        int r;

        r = pool_id_from_path(sd_bus_message_get_path(message), ret_id);
        if (r == -ENOENT)
                return bus_error_set(error, POOL_ERROR_NO_SUCH_POOL, "no such pool");
        return r;
}

static int method_stop(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *id = NULL;
        int r;

        r = pool_method_with_id(message, userdata, error, &id);
        if (r < 0)
                return r;
        return bus_method_stop(userdata, message, id, error);
}

static int method_drain(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *id = NULL;
        uint64_t deadline;
        int r;

        r = sd_bus_message_read(message, "t", &deadline);
        if (r < 0)
                return r;
        r = pool_method_with_id(message, userdata, error, &id);
        if (r < 0)
                return r;
        return bus_method_drain(userdata, message, id, deadline, error);
}

static int method_reload(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *id = NULL;
        const char *json;
        int r;

        r = sd_bus_message_read(message, "s", &json);
        if (r < 0)
                return r;
        r = pool_method_with_id(message, userdata, error, &id);
        if (r < 0)
                return r;
        return bus_method_reload(userdata, message, id, json, error);
}

static int method_lease(sd_bus_message *message, void *userdata, sd_bus_error *error, bool allocate) {
        _cleanup_free_ char *id = NULL;
        int r;

        r = pool_method_with_id(message, userdata, error, &id);
        if (r < 0)
                return r;
        return bus_method_lease(userdata, message, id, allocate, error);
}

static int method_allocate_lease(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return method_lease(message, userdata, error, true);
}

static int method_reset(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *id = NULL;
        int r;

        r = pool_method_with_id(message, userdata, error, &id);
        if (r < 0)
                return r;
        return bus_method_reset(userdata, message, id, error);
}

static int method_release_lease(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return method_lease(message, userdata, error, false);
}

#define POOL_PROPERTY(name, type, getter) \
        SD_BUS_PROPERTY(name, type, getter, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)

const sd_bus_vtable pool_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("PoolId", "s", property_get_pool_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        POOL_PROPERTY("ReplicaId", "s", property_get_replica_id),
        POOL_PROPERTY("State", "s", property_get_state),
        POOL_PROPERTY("Live", "b", property_get_live),
        POOL_PROPERTY("Ready", "b", property_get_ready),
        POOL_PROPERTY("Draining", "b", property_get_draining),
        POOL_PROPERTY("LastError", "s", property_get_last_error),
        POOL_PROPERTY("ActiveLeases", "u", property_get_active_leases),
        POOL_PROPERTY("SlotsTotal", "i", property_get_slots_total),
        POOL_PROPERTY("SlotsFree", "i", property_get_slots_free),
        POOL_PROPERTY("EngineVersion", "s", property_get_engine_version),
        POOL_PROPERTY("DeviceMask", "s", property_get_device_mask),
        POOL_PROPERTY("Unit", "s", property_get_unit),
        POOL_PROPERTY("MainPID", "u", property_get_main_pid),
        POOL_PROPERTY("Url", "s", property_get_url),
        POOL_PROPERTY("HandoffPath", "s", property_get_handoff_path),
        POOL_PROPERTY("LastHeartbeatUSec", "t", property_get_last_heartbeat_usec),
        POOL_PROPERTY("CrashCount", "u", property_get_crash_count),
        POOL_PROPERTY("RestartCount", "u", property_get_restart_count),
        POOL_PROPERTY("BackoffMSec", "t", property_get_backoff_msec),
        POOL_PROPERTY("NextRestartUSec", "t", property_get_next_restart_usec),
        POOL_PROPERTY("CircuitState", "s", property_get_circuit_state),
        SD_BUS_METHOD("Stop", "", "", method_stop, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Drain", "t", SD_BUS_PARAM(deadline_ms),
                                 "btu", SD_BUS_PARAM(force_stopped) SD_BUS_PARAM(duration_ms)
                                 SD_BUS_PARAM(final_lease_count),
                                 method_drain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Reload", "s", SD_BUS_PARAM(prepared_json),
                                 "bbss", SD_BUS_PARAM(success) SD_BUS_PARAM(rolled_back)
                                 SD_BUS_PARAM(engine_version) SD_BUS_PARAM(error),
                                 method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Reset", "", "", method_reset, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("AllocateLease", "", , "u", SD_BUS_PARAM(leases),
                                 method_allocate_lease, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ReleaseLease", "", , "u", SD_BUS_PARAM(leases),
                                 method_release_lease, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

/* Names of the properties whose values differ between two snapshots of one pool. */
static int changed_properties(const PoolEntry *a, const PoolEntry *b, char ***ret) {
        const struct {
                const char *name;
                bool changed;
        } t[] = {
                { "ReplicaId", !streq_ptr(a->replica_id, b->replica_id) },
                { "State", !streq_ptr(a->state, b->state) },
                { "Live", a->health.live != b->health.live },
                { "Ready", a->health.ready != b->health.ready },
                { "Draining", a->draining != b->draining },
                { "LastError", !streq_ptr(a->last_error, b->last_error) },
                { "ActiveLeases", a->active_leases != b->active_leases },
                { "SlotsTotal", a->slots_total != b->slots_total },
                { "SlotsFree", a->slots_free != b->slots_free },
                { "EngineVersion", !streq_ptr(a->engine_version, b->engine_version) },
                { "DeviceMask", !streq_ptr(a->device_mask, b->device_mask) },
                { "Unit", !streq_ptr(a->unit, b->unit) },
                { "MainPID", a->main_pid != b->main_pid },
                { "Url", !streq_ptr(a->url, b->url) },
                { "HandoffPath", !streq_ptr(a->handoff_path, b->handoff_path) },
                { "LastHeartbeatUSec", a->last_heartbeat_ms != b->last_heartbeat_ms },
                { "CrashCount", a->crash_count != b->crash_count },
                { "RestartCount", a->restart_count != b->restart_count },
                { "BackoffMSec", a->backoff_ms != b->backoff_ms },
                { "NextRestartUSec", a->next_restart_usec != b->next_restart_usec },
                { "CircuitState", !streq_ptr(a->circuit, b->circuit) },
        };
        _cleanup_strv_free_ char **l = NULL;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                if (t[i].changed) {
                        r = strv_extend(&l, t[i].name);
                        if (r < 0)
                                return r;
                }
        *ret = TAKE_PTR(l);
        return 0;
}

static void emit(Manager *m, const PoolEntry *old, const PoolEntry *new) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = pool_bus_path((new ?: old)->pool_id, &path);
        if (r < 0)
                return (void) log_oom();

        if (!old)
                r = sd_bus_emit_object_added(m->bus, path);
        else if (!new)
                r = sd_bus_emit_object_removed(m->bus, path);
        else {
                _cleanup_strv_free_ char **names = NULL;

                r = changed_properties(old, new, &names);
                if (r >= 0 && names)
                        r = sd_bus_emit_properties_changed_strv(m->bus, path, POOL_INTERFACE, names);
        }
        if (r < 0)
                log_debug_errno(r, "Failed to emit change signal for %s: %m", path);
}

void pool_bus_publish_changes(Manager *m) {
        PoolEntry *now_entries = NULL;
        size_t n_now = 0, i = 0, j = 0;
        int r;

        if (!m->bus)
                return;

        r = registry_snapshot(m->registry, &now_entries, &n_now);
        if (r < 0)
                return (void) log_oom();

        /* Both arrays are sorted by pool id: one merge pass finds added, removed, changed. */
        while (i < m->n_published || j < n_now) {
                int c = i >= m->n_published ? 1 : j >= n_now ? -1 :
                        strcmp(m->published[i].pool_id, now_entries[j].pool_id);

                if (c < 0)
                        emit(m, &m->published[i++], NULL);
                else if (c > 0)
                        emit(m, NULL, &now_entries[j++]);
                else
                        emit(m, &m->published[i++], &now_entries[j++]);
        }

        if (m->n_published != n_now)
                (void) sd_bus_emit_properties_changed(m->bus, POOL_MANAGER_PATH, POOL_MANAGER_INTERFACE,
                                                      "PoolCount", NULL);

        pool_entry_array_free(m->published, m->n_published);
        m->published = now_entries;
        m->n_published = n_now;
}
