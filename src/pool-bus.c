/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <stdlib.h>

#include "bus-common.h"
#include "log.h"
#include "manager-bus.h"
#include "manager.h"
#include "pool-bus.h"
#include "pool-properties.h"
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

/* Every property through the table (pool-properties.c): the value of the entry the path names. */
static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const PoolProperty *pp = pool_property_by_bus_name(property);
        const PoolEntry *e = entry_from_path(userdata, path);
        PoolPropertyValue v;

        if (!e)
                return bus_error_set(error, POOL_ERROR_NO_SUCH_POOL, "pool is gone");
        if (!pp)
                return -ENOENT;
        pp->get(e, &v);
        switch (pp->type) {
        case POOL_PROPERTY_STRING:
                return sd_bus_message_append_basic(reply, 's', v.set ? strempty(v.s) : "");
        case POOL_PROPERTY_BOOL: {
                int b = v.b;

                return sd_bus_message_append_basic(reply, 'b', &b);
        }
        case POOL_PROPERTY_UINT32: {
                uint32_t u = v.set ? (uint32_t) v.u : 0;

                return sd_bus_message_append_basic(reply, 'u', &u);
        }
        case POOL_PROPERTY_INT32: {
                int32_t i = v.set ? (int32_t) v.i : -1;

                return sd_bus_message_append_basic(reply, 'i', &i);
        }
        default: {
                uint64_t t = v.set ? v.u : 0;

                return sd_bus_message_append_basic(reply, 't', &t);
        }
        }
}

/* The pool ID of a pool object's method: its path's (the DEFINE_BUS_POOL_METHOD() convention). */
static int pool_method_id(sd_bus_message *message, char **ret_id, sd_bus_error *error) {
        int r;

        r = pool_id_from_path(sd_bus_message_get_path(message), ret_id);
        if (r == -ENOENT)
                return bus_error_set(error, POOL_ERROR_NO_SUCH_POOL, "no such pool");
        return r;
}

DEFINE_BUS_POOL_METHOD(method_stop, pool_method_id, bus_method_stop)

static int method_drain(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *id = NULL;
        uint64_t deadline;
        int r;

        r = sd_bus_message_read(message, "t", &deadline);
        if (r < 0)
                return r;
        r = pool_method_id(message, &id, error);
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
        r = pool_method_id(message, &id, error);
        if (r < 0)
                return r;
        return bus_method_reload(userdata, message, id, json, error);
}

DEFINE_BUS_POOL_METHOD(method_allocate_lease, pool_method_id, bus_method_lease, true)
DEFINE_BUS_POOL_METHOD(method_release_lease, pool_method_id, bus_method_lease, false)

DEFINE_BUS_POOL_METHOD(method_reset, pool_method_id, bus_method_reset)

/* The vtable: one property per line of the table, then the methods. Built once. */
const sd_bus_vtable *pool_bus_vtable(void) {
        static const sd_bus_vtable methods[] = {
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
        };
        static sd_bus_vtable vtable[1 + POOL_PROPERTIES_MAX + ELEMENTSOF(methods) + 1];
        size_t n = 0;

        if (vtable[0].type != 0)
                return vtable;
        if (pool_properties_n > POOL_PROPERTIES_MAX)
                return NULL;
        vtable[n++] = (sd_bus_vtable) SD_BUS_VTABLE_START(0);
        for (size_t i = 0; i < pool_properties_n; i++) {
                const PoolProperty *pp = &pool_properties[i];

                vtable[n++] = (sd_bus_vtable) SD_BUS_PROPERTY(pp->bus_name, pool_property_signature(pp), property_get,
                                                              0, (pp->flags & POOL_PROPERTY_CONST) ?
                                                              SD_BUS_VTABLE_PROPERTY_CONST :
                                                              SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE);
        }
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                vtable[n++] = methods[i];
        vtable[n++] = (sd_bus_vtable) SD_BUS_VTABLE_END;
        return vtable;
}

/* Names of the properties whose values differ between two snapshots of one pool. */
static int changed_properties(const PoolEntry *a, const PoolEntry *b, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        for (size_t i = 0; i < pool_properties_n; i++) {
                const PoolProperty *pp = &pool_properties[i];
                PoolPropertyValue va, vb;

                if (pp->flags & POOL_PROPERTY_CONST)
                        continue;
                pp->get(a, &va);
                pp->get(b, &vb);
                if (pool_property_value_equal(pp, &va, &vb))
                        continue;
                r = strv_extend(&l, pp->bus_name);
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
