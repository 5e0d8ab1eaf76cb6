/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * The GPU inventory on the Manager interface: the Devices and DeviceInventoryState properties
 * and UncordonDevice() (see org.llorch.PoolManager1(5), "DEVICES"). Read-only publication; the
 * vtable lines live in manager-bus.c with the rest of the interface.
 */

#include <systemd/sd-bus.h>

typedef struct Manager Manager;

/* One struct per GPU: index, uuid, name, pci_bus_id, compute_capability, minor, memory
 * total/used/free, mig_enabled, health, health_reason, cordoned, last_xid, xid_count,
 * driver_resets, MIG devices (index, uuid, name, gpu_instance_id, compute_instance_id, memory
 * total/used/free), processes (pid, used_memory, unit). */
#define DEVICE_MIG_SIGNATURE "(ussuuttt)"
#define DEVICE_PROCESS_SIGNATURE "(uts)"
#define DEVICE_FIELDS "ussssutttbssbuuu" "a" DEVICE_MIG_SIGNATURE "a" DEVICE_PROCESS_SIGNATURE
#define DEVICES_SIGNATURE "a(" DEVICE_FIELDS ")"

int property_get_devices(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error);
int property_get_device_inventory_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                                        sd_bus_message *reply, void *userdata, sd_bus_error *error);
int method_uncordon_device(sd_bus_message *message, void *userdata, sd_bus_error *error);

/* PropertiesChanged for Devices (invalidated) and DeviceInventoryState. */
void devices_bus_emit_changed(Manager *m);
