/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * org.llorch.PoolManager1.Pool: one object per registry entry, served through a fallback
 * vtable (the path names the pool). What the bus has seen is kept as a snapshot; after every
 * change the registry is compared with it, and the difference goes out as InterfacesAdded,
 * InterfacesRemoved and PropertiesChanged naming exactly the properties that changed.
 */

#include <systemd/sd-bus.h>

typedef struct Manager Manager;

/* The Pool interface, its properties from the table of pool-properties.c. */
const sd_bus_vtable *pool_bus_vtable(void);

int pool_bus_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                  sd_bus_error *error);
int pool_bus_enumerate(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error);

/* Emits the signals for everything that changed since the last call. */
void pool_bus_publish_changes(Manager *m);
