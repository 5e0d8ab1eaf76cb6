/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Device masks (B-DEVICE, B-CONFIG-010..012, OC-POOL-3020): a PreparedEngine's "device_mask"
 * names the GPUs its engine may use, as a comma-separated list of elements:
 *
 *   "0", "1"            NVML index
 *   "GPU0", "GPU1"      the same, spelled like nvidia-smi's column
 *   "GPU-<uuid>"        a whole GPU by UUID
 *   "MIG-<uuid>"        one MIG device by UUID
 *
 * Resolved against the inventory into the devices, the CUDA_VISIBLE_DEVICES value (UUIDs: the
 * device cgroup makes CUDA number the visible GPUs from 0, so host indices would name the wrong
 * ones) and the device nodes for DeviceAllow= under DevicePolicy=closed: /dev/nvidiactl,
 * /dev/nvidia-uvm, /dev/nvidia-uvm-tools, /dev/nvidia<minor> of each GPU (of the parent GPU for a
 * MIG device) and the /dev/nvidia-caps nodes of each MIG device. Never "char-nvidia", which
 * allows every GPU. Pure: no NVML, no files.
 */

#include <stdbool.h>
#include <stddef.h>

#include "gpu-device.h"

#define DEVICE_MASK_MAX_ELEMENTS 64

typedef struct DeviceMaskEntry {
        size_t gpu;                     /* position in the device array given to the resolver */
        int mig;                        /* position in that GPU's MIG devices, -1: the whole GPU */
        char *uuid;                     /* the device's UUID ("GPU-..." or "MIG-...") */
        unsigned index;                 /* the GPU's NVML index */
} DeviceMaskEntry;

typedef struct DeviceMask {
        char *spec;                     /* as given */
        DeviceMaskEntry *entries;       /* in the order of the mask */
        size_t n_entries;
        bool enforced;                  /* false: no inventory (GpuOnly=no), the mask is passed on as
                                         * it is, no DeviceAllow= */
        char *cuda_visible_devices;     /* "GPU-...,MIG-..." (or the mask verbatim when not enforced) */
        char **device_allow;            /* device node paths for DeviceAllow= (rw); NULL when not enforced */
} DeviceMask;

DeviceMask *device_mask_free(DeviceMask *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(DeviceMask *, device_mask_free);

/*
 * Resolves spec against devices (n may be 0). inventory_error is NULL when the inventory is
 * usable, else why not ("no NVML: ..."): then a mask is refused with -ENODEV when gpu_only, and
 * passed on unenforced otherwise. Errors, with *ret_error naming the element:
 *   -EINVAL  empty element, unknown syntax, duplicate or overlapping device, a whole GPU in MIG
 *            mode, too many elements
 *   -ENOENT  an element names no device of the inventory
 *   -ENODEV  no inventory and gpu_only
 *   -EBUSY   a named GPU is cordoned (unhealthy or lost, until uncordoned)
 *   -ENXIO   a MIG device whose /dev/nvidia-caps nodes are unknown (cannot be enforced)
 */
int device_mask_resolve(const char *spec, const GpuDevice *devices, size_t n, const char *inventory_error,
                        bool gpu_only, DeviceMask **ret, char **ret_error);

/*
 * Finds the device one element names ("1", "GPU1", "GPU-...", "MIG-..."): its GPU's position in
 * devices and the MIG position (-1 for a whole GPU). -EINVAL (syntax) or -ENOENT (no such device) with *ret_error otherwise.
 */
int device_mask_find_element(const char *element, const GpuDevice *devices, size_t n, size_t *ret_gpu,
                             int *ret_mig, char **ret_error);
