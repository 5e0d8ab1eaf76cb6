/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * VRAM admission (OC-POOL-3002): a preload on devices without enough free VRAM fails fast with
 * INSUFFICIENT_VRAM naming the device, its free and the required figure. NVML's free figure lags
 * an engine's allocations (a model loads for seconds to minutes), so VRAM promised to a pool
 * counts as used until its engine's own processes are seen using it: a reservation holds
 * max(0, promised - what the processes of the pool's unit use on that device, per NVML). Pure:
 * the caller passes the inventory's devices.
 */

#include <stdint.h>

#include "device-mask.h"
#include "gpu-device.h"

typedef struct VramReservation {
        char *pool_id;
        char *unit;                     /* the engine's unit: its processes' usage is subtracted */
        char *uuid;                     /* GPU or MIG device */
        uint64_t bytes;                 /* promised */
} VramReservation;

typedef struct VramLedger {
        VramReservation *reservations;
        size_t n;
} VramLedger;

void vram_ledger_done(VramLedger *l);

/* Drops every reservation of the pool (stop, failure, or once the engine is ready and NVML shows it). */
void vram_ledger_release(VramLedger *l, const char *pool_id);

/* What the reservations on uuid still hold, other than those of exclude_pool (NULL: none). */
uint64_t vram_ledger_outstanding(const VramLedger *l, const GpuDevice *devices, size_t n, const char *uuid,
                                 const char *exclude_pool);

/* The free VRAM of the device uuid for a new engine: NVML's free less what is still promised.
 * -ENODEV when uuid is not in devices, -ENODATA when NVML gave no memory figure. */
int vram_effective_free(const VramLedger *l, const GpuDevice *devices, size_t n, const char *uuid,
                        const char *exclude_pool, uint64_t *ret);

/*
 * Admits pool_id on the devices of mask, required[i] bytes on mask->entries[i]: each device must
 * have that much effectively free. On success the pool's previous reservations are replaced by
 * these (all or nothing). -ENOSPC with *ret_error "INSUFFICIENT_VRAM: ..." naming the first
 * device that lacks it, its free and the required bytes; nothing is changed then.
 */
int vram_admit(VramLedger *l, const GpuDevice *devices, size_t n, const DeviceMask *mask, const uint64_t *required,
               const char *pool_id, const char *unit, char **ret_error);
/* The recording half of vram_admit(), without its check: a re-adopted engine already holds its
 * VRAM (NVML counts it used), so its reservation is recorded, never refused. */
int vram_record(VramLedger *l, const DeviceMask *mask, const uint64_t *required, const char *pool_id,
                const char *unit);
