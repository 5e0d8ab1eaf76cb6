/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "test-util.h"
#include "vram.h"

#define GiB (1ULL << 30)

/* Two 24 GiB GPUs; GPU1 runs one process of pool "old" using 4 GiB. */
static GpuDevice *devices(size_t *ret_n) {
        GpuDevice *d = calloc(2, sizeof(GpuDevice));

        ASSERT_NOT_NULL(d);
        d[0] = (GpuDevice) { .index = 0, .uuid = strdup("GPU-0"), .minor_known = true,
                             .memory_total = 24 * GiB, .memory_free = 20 * GiB, .memory_used = 4 * GiB };
        d[1] = (GpuDevice) { .index = 1, .uuid = strdup("GPU-1"), .minor = 1, .minor_known = true,
                             .memory_total = 24 * GiB, .memory_free = 24 * GiB };
        *ret_n = 2;
        return d;
}

static DeviceMask *mask(const GpuDevice *d, size_t n, const char *spec) {
        DeviceMask *m = NULL;
        _cleanup_free_ char *error = NULL;

        ASSERT_OK(device_mask_resolve(spec, d, n, NULL, true, &m, &error));
        return m;
}

TEST(admit_and_promised_counts_as_used) {
        _cleanup_(vram_ledger_done) VramLedger l = {};
        _cleanup_free_ char *error = NULL;
        size_t n;
        GpuDevice *d = devices(&n);
        _cleanup_(device_mask_freep) DeviceMask *m0 = mask(d, n, "0");
        const uint64_t need16[] = { 16 * GiB }, need6[] = { 6 * GiB };
        uint64_t f;

        ASSERT_OK(vram_admit(&l, d, n, m0, need16, "a", "pool-engine-a.service", &error));
        ASSERT_EQ(l.n, 1U);
        ASSERT_OK(vram_effective_free(&l, d, n, "GPU-0", NULL, &f));
        ASSERT_EQ(f, 4 * GiB);

        /* NVML still shows 20 GiB free: the promise is what refuses pool b. */
        ASSERT_ERROR(vram_admit(&l, d, n, m0, need6, "b", "pool-engine-b.service", &error), ENOSPC);
        ASSERT_CONTAINS(error, "INSUFFICIENT_VRAM: device GPU-0 (GPU0) has 4.0 GiB free (4294967296 bytes: "
                               "20.0 GiB by NVML, less 16.0 GiB promised to pools still starting), 6.0 GiB "
                               "(6442450944 bytes) required");
        ASSERT_EQ(l.n, 1U);

        /* The engine of a starts and NVML sees 10 GiB of it: 6 GiB remain promised. */
        d[0].processes = calloc(1, sizeof(GpuProcess));
        d[0].processes[0] = (GpuProcess) { .pid = 42, .used_memory = 10 * GiB, .unit = strdup("pool-engine-a.service") };
        d[0].n_processes = 1;
        d[0].memory_free = 10 * GiB;
        ASSERT_EQ(vram_ledger_outstanding(&l, d, n, "GPU-0", NULL), 6 * GiB);
        ASSERT_OK(vram_effective_free(&l, d, n, "GPU-0", NULL, &f));
        ASSERT_EQ(f, 4 * GiB);

        /* All loaded: nothing promised any more, whatever the ledger says. */
        d[0].processes[0].used_memory = 17 * GiB;
        d[0].memory_free = 3 * GiB;
        ASSERT_EQ(vram_ledger_outstanding(&l, d, n, "GPU-0", NULL), 0U);

        vram_ledger_release(&l, "a");
        ASSERT_EQ(l.n, 0U);
        gpu_device_array_free(d, n);
}

TEST(readmit_replaces_and_split_is_all_or_nothing) {
        _cleanup_(vram_ledger_done) VramLedger l = {};
        _cleanup_free_ char *error = NULL;
        size_t n;
        GpuDevice *d = devices(&n);
        _cleanup_(device_mask_freep) DeviceMask *m01 = mask(d, n, "0,1");
        const uint64_t ok[] = { 10 * GiB, 10 * GiB }, again[] = { 18 * GiB, 12 * GiB }, too_much[] = { 1 * GiB, 25 * GiB };

        ASSERT_OK(vram_admit(&l, d, n, m01, ok, "a", "pool-engine-a.service", &error));
        ASSERT_EQ(l.n, 2U);
        /* The pool's own promise does not count against it: a new plan replaces the old one. */
        ASSERT_OK(vram_admit(&l, d, n, m01, again, "a", "pool-engine-a.service", &error));
        ASSERT_EQ(l.n, 2U);
        ASSERT_EQ(vram_ledger_outstanding(&l, d, n, "GPU-0", NULL), 18 * GiB);
        ASSERT_EQ(vram_ledger_outstanding(&l, d, n, "GPU-0", "a"), 0U);

        /* GPU0 would fit, GPU1 not: nothing is reserved for b. */
        ASSERT_ERROR(vram_admit(&l, d, n, m01, too_much, "b", "pool-engine-b.service", &error), ENOSPC);
        ASSERT_CONTAINS(error, "device GPU-1 (GPU1) has 12.0 GiB free");
        ASSERT_EQ(l.n, 2U);
        gpu_device_array_free(d, n);
}

TEST(unknown_memory) {
        _cleanup_(vram_ledger_done) VramLedger l = {};
        _cleanup_free_ char *error = NULL;
        size_t n;
        GpuDevice *d = devices(&n);
        _cleanup_(device_mask_freep) DeviceMask *m1 = mask(d, n, "1");
        const uint64_t need[] = { 1 };
        uint64_t f;

        d[1].memory_free = GPU_MEMORY_UNKNOWN;
        ASSERT_ERROR(vram_admit(&l, d, n, m1, need, "a", "u", &error), ENOSPC);
        ASSERT_CONTAINS(error, "NVML reports no memory figures");
        ASSERT_ERROR(vram_effective_free(&l, d, n, "GPU-9", NULL, &f), ENODEV);
        gpu_device_array_free(d, n);
}

DEFINE_TEST_MAIN
