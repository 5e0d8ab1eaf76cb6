/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * What the GPU inventory knows about one GPU: identity (index, UUID, PCI bus id, minor number),
 * memory, MIG devices, the processes using it, and its health (XIDs, lost, cordon). Plain data:
 * filled by src/nvml.c, kept and published by src/gpu.c, read by the device-mask resolver, the
 * split planner and VRAM admission. No NVML, no event loop here.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "shared/macro.h"

#define GPU_MEMORY_UNKNOWN UINT64_MAX

typedef enum GpuHealth {
        GPU_HEALTH_HEALTHY,
        GPU_HEALTH_UNHEALTHY,           /* an XID that is not the application's; cordoned */
        GPU_HEALTH_LOST,                /* NVML_ERROR_GPU_IS_LOST: fallen off the bus */
        _GPU_HEALTH_MAX,
        _GPU_HEALTH_INVALID = -EINVAL,
} GpuHealth;

const char *gpu_health_to_string(GpuHealth h);
GpuHealth gpu_health_from_string(const char *s);

/* XIDs 13, 31, 43, 45 and 68 are the application's (a kernel exception, an MMU fault, a killed
 * context, a preemptive cleanup, a video decoder error): the GPU stays healthy. */
bool xid_is_application_error(uint64_t xid);

typedef struct GpuProcess {
        uint32_t pid;
        uint64_t used_memory;           /* bytes; GPU_MEMORY_UNKNOWN when the driver cannot tell */
        char *unit;                     /* the systemd unit of the process, or NULL */
} GpuProcess;

typedef struct MigDevice {
        unsigned index;                 /* MIG device index within its GPU */
        char *uuid;                     /* "MIG-..." */
        char *name;
        unsigned gpu_instance_id;
        unsigned compute_instance_id;
        uint64_t memory_total, memory_used, memory_free;
        char **cap_paths;               /* /dev/nvidia-caps/nvidia-cap<N> of its GPU and compute
                                         * instance; NULL when the minors are unknown */
        GpuProcess *processes;
        size_t n_processes;
} MigDevice;

typedef struct GpuDevice {
        unsigned index;                 /* NVML index (PCI bus order) */
        char *uuid;                     /* "GPU-..." */
        char *name;
        char *pci_bus_id;               /* "00000000:3B:00.0" */
        int cc_major, cc_minor;         /* CUDA compute capability; -1 when unknown */
        unsigned minor;                 /* /dev/nvidia<minor> */
        bool minor_known;
        uint64_t memory_total, memory_used, memory_free;
        bool mig_enabled;
        MigDevice *mig;
        size_t n_mig;
        GpuProcess *processes;
        size_t n_processes;
        char *error;                    /* the last query that failed for this GPU, or NULL */

        /* Health, kept by the inventory across refreshes (keyed by UUID). */
        GpuHealth health;
        char *health_reason;            /* "XID 79", "GPU is lost", or NULL */
        bool cordoned;                  /* no new pools until uncordoned */
        uint64_t last_xid;              /* 0: none seen */
        unsigned xid_count;
        unsigned driver_resets;         /* XIDs that made it unhealthy, and losses */
} GpuDevice;

void gpu_process_done(GpuProcess *p);
void mig_device_done(MigDevice *m);
void gpu_device_done(GpuDevice *d);
GpuDevice *gpu_device_array_free(GpuDevice *a, size_t n);

/* A deep copy. */
int gpu_device_copy(const GpuDevice *d, GpuDevice *ret);

/*
 * The MIG devices' capability nodes, from the text of /proc/driver/nvidia-caps/mig-minors
 * ("gpu<minor>/gi<id>/access <cap minor>", "gpu<minor>/gi<id>/ci<id>/access <cap minor>"): sets
 * cap_paths of every MIG device of d whose GPU and compute instance are listed. Unlisted ones
 * keep NULL. Lines it does not understand are skipped.
 */
int gpu_device_set_mig_caps(GpuDevice *d, const char *mig_minors);

/* The JSON form published by GET /devices (see pool-managerd(8)). */
int gpu_device_to_json(const GpuDevice *d, json_object **ret);
