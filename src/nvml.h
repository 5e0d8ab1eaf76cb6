/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * NVML, opened with dlopen() at run time so that the daemon runs where no driver is installed:
 * the library named by NvmlLibrary=, its entry points (src/nvml-api.h) resolved with dlsym(),
 * nvmlInit_v2() once. Reads the devices into GpuDevice snapshots and polls XID events with a
 * timeout of 0, so nothing here waits for the GPU. Each read is bounded: at most
 * NVML_MAX_DEVICES GPUs, NVML_MAX_MIG MIG devices each, NVML_MAX_PROCESSES processes per device.
 * No logging: errors are returned as messages for the inventory to log once per change.
 */

#include <stdint.h>

#include "gpu-device.h"

#define NVML_MAX_DEVICES 64
#define NVML_MAX_MIG 16
#define NVML_MAX_PROCESSES 1024

typedef struct Nvml Nvml;

/* dlopen, dlsym, nvmlInit_v2 and an XID event set. On failure *ret_error says which step and why
 * ("libnvidia-ml.so.1: cannot open shared object file: No such file or directory",
 * "nvmlInit_v2() failed: Driver Not Loaded"). */
int nvml_open(const char *library, Nvml **ret, char **ret_error);
Nvml *nvml_close(Nvml *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(Nvml *, nvml_close);

/* nvmlSystemGetDriverVersion(), or NULL. */
const char *nvml_driver_version(Nvml *n);
/* Whether XID events can be polled (the event set exists), and why not. */
const char *nvml_events_error(Nvml *n);

/*
 * Reads every device. A failure of the whole (nvmlDeviceGetCount_v2) is -EIO with *ret_error;
 * a GPU that fails its queries is listed with its error, and with health GPU_HEALTH_LOST when
 * NVML says NVML_ERROR_GPU_IS_LOST (its UUID may then be unknown: NULL). Health fields other
 * than that are left at their defaults for the inventory to fill in.
 */
int nvml_read_devices(Nvml *n, GpuDevice **ret, size_t *ret_n, char **ret_error);

/* One pending XID event, without waiting: 1 with the GPU's index and the XID, 0 when none,
 * -EIO with *ret_error when NVML fails (-ENODEV: lost GPU). */
int nvml_poll_event(Nvml *n, unsigned *ret_index, uint64_t *ret_xid, char **ret_error);
