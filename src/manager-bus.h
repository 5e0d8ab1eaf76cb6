/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* org.llorch.PoolManager1.Manager on /org/llorch/PoolManager1, plus the ObjectManager. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

typedef struct Manager Manager;

extern const sd_bus_vtable manager_vtable[];

/* Method bodies shared by the Manager and the Pool interfaces (a pool's own Stop() is the
 * manager's Stop(id)). They check authorization and validate the id. */
int bus_method_stop(Manager *m, sd_bus_message *message, const char *id, sd_bus_error *error);
int bus_method_drain(Manager *m, sd_bus_message *message, const char *id, uint64_t deadline_ms,
                     sd_bus_error *error);
int bus_method_reload(Manager *m, sd_bus_message *message, const char *id, const char *json,
                      sd_bus_error *error);
int bus_method_lease(Manager *m, sd_bus_message *message, const char *id, bool allocate, sd_bus_error *error);
int bus_method_reset(Manager *m, sd_bus_message *message, const char *id, sd_bus_error *error);

/*
 * The sd-bus handler name() of a method whose pool ID comes from get_id(message, &id, error)
 * (the "s" argument of a Manager method, or a pool object's path) and whose body is
 * call(manager, message, id, extra arguments..., error).
 */
#define DEFINE_BUS_POOL_METHOD(name, get_id, call, ...)                                          \
        static int name(sd_bus_message *message, void *userdata, sd_bus_error *error) {           \
                _cleanup_free_ char *id = NULL;                                                   \
                int r;                                                                            \
                                                                                                  \
                r = get_id(message, &id, error);                                                  \
                if (r < 0)                                                                        \
                        return r;                                                                 \
                return call(userdata, message, id, ##__VA_ARGS__, error);                          \
        }

/* Registers the manager object, the pool objects and the object manager. */
int manager_bus_register(Manager *m);
