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

/* Registers the manager object, the pool objects and the object manager. */
int manager_bus_register(Manager *m);
