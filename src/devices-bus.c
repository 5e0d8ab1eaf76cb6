/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "bus-common.h"
#include "devices-bus.h"
#include "gpu.h"
#include "log.h"
#include "manager.h"


static int append_processes(sd_bus_message *reply, const GpuProcess *p, size_t n) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', DEVICE_PROCESS_SIGNATURE);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, DEVICE_PROCESS_SIGNATURE, p[i].pid, p[i].used_memory, strempty(p[i].unit));
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

static int append_device(sd_bus_message *reply, const GpuDevice *d) {
        char cc[32] = "";
        int r;

        if (d->cc_major >= 0)
                (void) snprintf(cc, sizeof(cc), "%d.%d", d->cc_major, d->cc_minor);
        r = sd_bus_message_open_container(reply, 'r', DEVICE_FIELDS);
        if (r >= 0)
                r = sd_bus_message_append(reply, "ussssutttbssbuuu", d->index, strempty(d->uuid), strempty(d->name),
                                          strempty(d->pci_bus_id), cc, d->minor_known ? d->minor : UINT32_MAX,
                                          d->memory_total, d->memory_used, d->memory_free, (int) d->mig_enabled,
                                          gpu_health_to_string(d->health), strempty(d->health_reason),
                                          (int) d->cordoned, (uint32_t) MIN(d->last_xid, (uint64_t) UINT32_MAX),
                                          d->xid_count, d->driver_resets);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', DEVICE_MIG_SIGNATURE);
        for (size_t i = 0; r >= 0 && i < d->n_mig; i++) {
                const MigDevice *m = &d->mig[i];

                r = sd_bus_message_append(reply, DEVICE_MIG_SIGNATURE, m->index, strempty(m->uuid), strempty(m->name),
                                          m->gpu_instance_id, m->compute_instance_id, m->memory_total,
                                          m->memory_used, m->memory_free);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = append_processes(reply, d->processes, d->n_processes);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

int property_get_devices(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const GpuDevice *devices = NULL;
        size_t n = 0;
        int r;

        if (m->gpus)
                devices = gpu_inventory_devices(m->gpus, &n);
        r = sd_bus_message_open_container(reply, 'a', "(" DEVICE_FIELDS ")");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = append_device(reply, &devices[i]);
        return r < 0 ? r : sd_bus_message_close_container(reply);
}

int property_get_device_inventory_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        return sd_bus_message_append(reply, "s", m->gpus ? gpu_inventory_state(m->gpus) : "no NVML: not opened yet");
}

int method_uncordon_device(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *msg = NULL;
        Manager *m = userdata;
        const char *device;
        unsigned index = 0;
        int r;

        r = sd_bus_message_read(message, "s", &device);
        if (r < 0)
                return r;
        r = bus_check_authorized(m, message, error);
        if (r < 0)
                return r;
        if (!m->gpus)
                return bus_error_set(error, POOL_ERROR_GPU_REQUIRED, "no GPU inventory");

        r = gpu_inventory_uncordon(m->gpus, device, &index, &msg);
        switch (r) {
        case 0:
                return sd_bus_reply_method_return(message, "u", (uint32_t) index);
        case -ENOMEM:
                return r;
        case -EINVAL:
        case -ENOENT:
                return bus_error_set(error, POOL_ERROR_NO_SUCH_DEVICE, "%s", strna(msg));
        case -EBUSY:
                return bus_error_set(error, POOL_ERROR_DEVICE_LOST, "%s", strna(msg));
        default:
                return bus_error_set(error, POOL_ERROR_GPU_REQUIRED, "%s", msg ?: strerror(-r));
        }
}

void devices_bus_emit_changed(Manager *m) {
        int r;

        if (!m->bus || !m->name_acquired)
                return;
        r = sd_bus_emit_properties_changed(m->bus, POOL_MANAGER_PATH, POOL_MANAGER_INTERFACE, "Devices",
                                           "DeviceInventoryState", NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to emit PropertiesChanged for Devices: %m");
}
