/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "device-mask.h"
#include "shared/strv.h"
#include "test-util.h"

#define UUID0 "GPU-11111111-2222-3333-4444-000000000000"
#define UUID1 "GPU-11111111-2222-3333-4444-000000000001"
#define UUID2 "GPU-11111111-2222-3333-4444-000000000002"
#define MIG_A "MIG-aaaaaaaa-2222-3333-4444-000000000000"
#define MIG_B "MIG-bbbbbbbb-2222-3333-4444-000000000000"

/* Three GPUs: 0 and 1 plain (minors 0 and 1), 2 in MIG mode with two MIG devices (minor 4). */
static GpuDevice *make_devices(size_t *ret_n) {
        GpuDevice *d = calloc(3, sizeof(GpuDevice));
        const char *uuids[] = { UUID0, UUID1, UUID2 };
        const unsigned minors[] = { 0, 1, 4 };

        ASSERT_NOT_NULL(d);
        for (unsigned i = 0; i < 3; i++)
                d[i] = (GpuDevice) {
                        .index = i,
                        .uuid = strdup(uuids[i]),
                        .minor = minors[i],
                        .minor_known = true,
                        .memory_total = 80ULL << 30,
                        .memory_free = 80ULL << 30,
                };
        d[2].mig_enabled = true;
        d[2].mig = calloc(2, sizeof(MigDevice));
        d[2].n_mig = 2;
        d[2].mig[0] = (MigDevice) { .index = 0, .uuid = strdup(MIG_A), .gpu_instance_id = 1, .compute_instance_id = 0 };
        d[2].mig[1] = (MigDevice) { .index = 1, .uuid = strdup(MIG_B), .gpu_instance_id = 2, .compute_instance_id = 0 };
        ASSERT_OK(gpu_device_set_mig_caps(&d[2],
                                          "config 1\nmonitor 2\n"
                                          "gpu4/gi1/access 12\ngpu4/gi1/ci0/access 13\n"
                                          "gpu4/gi2/access 21\ngpu4/gi2/ci0/access 22\n"
                                          "gpu0/gi1/access 99\ngarbage line\n"));
        *ret_n = 3;
        return d;
}

static DeviceMask *resolve_ok(const char *spec) {
        GpuDevice *d;
        DeviceMask *m = NULL;
        char *error = NULL;
        size_t n;
        int r;

        d = make_devices(&n);
        r = device_mask_resolve(spec, d, n, NULL, true, &m, &error);
        if (r < 0)
                fprintf(stderr, "unexpected error for \"%s\": %s\n", spec, strna(error));
        ASSERT_OK(r);
        ASSERT_NULL(error);
        gpu_device_array_free(d, n);
        return m;
}

/* Resolves a mask that must fail with err; returns the message. */
static char *resolve_error(const char *spec, int err) {
        _cleanup_(device_mask_freep) DeviceMask *m = NULL;
        char *error = NULL;
        GpuDevice *d;
        size_t n;

        d = make_devices(&n);
        ASSERT_ERROR(device_mask_resolve(spec, d, n, NULL, true, &m, &error), err);
        ASSERT_NULL(m);
        ASSERT_NOT_NULL(error);
        gpu_device_array_free(d, n);
        fprintf(stderr, "\"%s\": %s\n", spec, error);
        return error;
}

TEST(index_forms) {
        static const char *const specs[] = { "0,1", "GPU0,GPU1", UUID0 "," UUID1, "0, GPU1", " 0 ,\t1 " };

        for (size_t i = 0; i < ELEMENTSOF(specs); i++) {
                _cleanup_(device_mask_freep) DeviceMask *m = resolve_ok(specs[i]);

                ASSERT_TRUE(m->enforced);
                ASSERT_EQ(m->n_entries, 2U);
                ASSERT_EQ(m->entries[0].index, 0U);
                ASSERT_EQ(m->entries[1].index, 1U);
                ASSERT_EQ(m->entries[0].mig, -1);
                ASSERT_STREQ(m->cuda_visible_devices, UUID0 "," UUID1);
                ASSERT_EQ(strv_length(m->device_allow), 5U);
                ASSERT_STREQ(m->device_allow[0], "/dev/nvidiactl");
                ASSERT_STREQ(m->device_allow[1], "/dev/nvidia-uvm");
                ASSERT_STREQ(m->device_allow[2], "/dev/nvidia-uvm-tools");
                ASSERT_STREQ(m->device_allow[3], "/dev/nvidia0");
                ASSERT_STREQ(m->device_allow[4], "/dev/nvidia1");
        }
}

TEST(order_kept_and_uuid_case) {
        _cleanup_(device_mask_freep) DeviceMask *m = resolve_ok("GPU1,gpu-11111111-2222-3333-4444-000000000000");

        /* CUDA numbers the visible devices in the order of CUDA_VISIBLE_DEVICES. */
        ASSERT_STREQ(m->cuda_visible_devices, UUID1 "," UUID0);
        ASSERT_STREQ(m->device_allow[3], "/dev/nvidia1");
        ASSERT_STREQ(m->device_allow[4], "/dev/nvidia0");
        ASSERT_FALSE(strv_contains(m->device_allow, "char-nvidia"));
}

TEST(single_device_only_its_node) {
        _cleanup_(device_mask_freep) DeviceMask *m = resolve_ok("1");

        ASSERT_STREQ(m->cuda_visible_devices, UUID1);
        ASSERT_EQ(strv_length(m->device_allow), 4U);
        ASSERT_FALSE(strv_contains(m->device_allow, "/dev/nvidia0"));
        ASSERT_TRUE(strv_contains(m->device_allow, "/dev/nvidia1"));
}

TEST(mig) {
        _cleanup_(device_mask_freep) DeviceMask *m = resolve_ok(MIG_B);

        ASSERT_EQ(m->n_entries, 1U);
        ASSERT_EQ(m->entries[0].gpu, 2U);
        ASSERT_EQ(m->entries[0].mig, 1);
        ASSERT_STREQ(m->cuda_visible_devices, MIG_B);
        /* The parent GPU's node and the GPU and compute instance capabilities, nothing else. */
        ASSERT_EQ(strv_length(m->device_allow), 6U);
        ASSERT_STREQ(m->device_allow[3], "/dev/nvidia4");
        ASSERT_STREQ(m->device_allow[4], "/dev/nvidia-caps/nvidia-cap21");
        ASSERT_STREQ(m->device_allow[5], "/dev/nvidia-caps/nvidia-cap22");
        ASSERT_FALSE(strv_contains(m->device_allow, "/dev/nvidia-caps/nvidia-cap12"));
}

TEST(two_migs_share_the_parent_node) {
        _cleanup_(device_mask_freep) DeviceMask *m = resolve_ok(MIG_A "," MIG_B ",0");

        ASSERT_STREQ(m->cuda_visible_devices, MIG_A "," MIG_B "," UUID0);
        ASSERT_EQ(strv_length(m->device_allow), 9U);
        ASSERT_STREQ(m->device_allow[3], "/dev/nvidia4");
        ASSERT_STREQ(m->device_allow[4], "/dev/nvidia-caps/nvidia-cap12");
        ASSERT_STREQ(m->device_allow[5], "/dev/nvidia-caps/nvidia-cap13");
        ASSERT_STREQ(m->device_allow[6], "/dev/nvidia-caps/nvidia-cap21");
        ASSERT_STREQ(m->device_allow[7], "/dev/nvidia-caps/nvidia-cap22");
        ASSERT_STREQ(m->device_allow[8], "/dev/nvidia0");
}

TEST(empty_elements) {
        _cleanup_free_ char *a = resolve_error("", EINVAL), *b = resolve_error("0,,1", EINVAL),
                            *c = resolve_error("0,", EINVAL), *d = resolve_error(" , 1", EINVAL);

        ASSERT_CONTAINS(a, "element 1 is empty");
        ASSERT_CONTAINS(b, "device_mask \"0,,1\": element 2 is empty");
        ASSERT_CONTAINS(c, "element 2 is empty");
        ASSERT_CONTAINS(d, "element 1 is empty");
}

TEST(unknown_devices) {
        _cleanup_free_ char *a = resolve_error("0,7", ENOENT), *b = resolve_error("GPU3", ENOENT),
                            *c = resolve_error("GPU-deadbeef", ENOENT), *d = resolve_error("MIG-0ee0", ENOENT),
                            *e = resolve_error("99999", EINVAL);

        ASSERT_CONTAINS(a, "element 2: unknown device \"7\": this node has GPU0 (" UUID0 "), GPU1");
        ASSERT_CONTAINS(b, "unknown device \"GPU3\"");
        ASSERT_CONTAINS(c, "unknown device \"GPU-deadbeef\"");
        ASSERT_CONTAINS(d, "unknown device \"MIG-0ee0\"");
        ASSERT_CONTAINS(e, "not understood");
}

TEST(syntax) {
        static const char *const bad[] = { "-1", "+1", "01", "GPU", "GPU 0", "gpu0x", "cuda:0", "all", "0x1",
                                           "GPU-1;rm", "1 2", "\"0\"" };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *e = resolve_error(bad[i], EINVAL);

                ASSERT_CONTAINS(e, "device_mask");
        }
}

TEST(duplicates_and_overlaps) {
        _cleanup_free_ char *a = resolve_error("0,GPU0", EINVAL), *b = resolve_error("1," UUID1, EINVAL),
                            *c = resolve_error(MIG_A "," MIG_A, EINVAL), *d = resolve_error("1,0,1", EINVAL);

        ASSERT_CONTAINS(a, "element 2 (\"GPU0\") duplicates GPU0 (" UUID0 "), already named by element 1");
        ASSERT_CONTAINS(b, "duplicates GPU1");
        ASSERT_CONTAINS(c, "duplicates MIG device " MIG_A " of GPU2");
        ASSERT_CONTAINS(d, "element 3 (\"1\") duplicates GPU1 (" UUID1 "), already named by element 1");
}

TEST(whole_gpu_in_mig_mode) {
        _cleanup_free_ char *a = resolve_error("2", EINVAL), *b = resolve_error(UUID2, EINVAL);

        ASSERT_CONTAINS(a, "GPU2 is in MIG mode; name one of its MIG devices");
        ASSERT_CONTAINS(b, "GPU2 is in MIG mode");
}

TEST(too_many_elements) {
        _cleanup_free_ char *spec = NULL, *e = NULL;

        for (int i = 0; i < DEVICE_MASK_MAX_ELEMENTS + 1; i++) {
                ASSERT_OK(asprintf(&e, "%s%s0", spec ?: "", spec ? "," : ""));
                free(spec);
                spec = TAKE_PTR(e);
        }
        e = resolve_error(spec, EINVAL);
        ASSERT_CONTAINS(e, "more than 64 elements");
}

TEST(no_inventory) {
        _cleanup_(device_mask_freep) DeviceMask *m = NULL;
        _cleanup_free_ char *error = NULL;

        /* GpuOnly=yes: refused, naming why there is no inventory. */
        ASSERT_ERROR(device_mask_resolve("0,1", NULL, 0, "no NVML: libnvidia-ml.so.1: cannot open shared object file",
                                         true, &m, &error), ENODEV);
        ASSERT_CONTAINS(error, "device_mask \"0,1\" cannot be checked: no NVML: libnvidia-ml.so.1");
        ASSERT_CONTAINS(error, "GpuOnly=yes");
        error = mfree(error);

        /* Syntax errors are errors either way. */
        ASSERT_ERROR(device_mask_resolve("0,,1", NULL, 0, "no NVML: x", false, &m, &error), EINVAL);
        ASSERT_CONTAINS(error, "element 2 is empty");
        error = mfree(error);

        /* GpuOnly=no: passed on as given, not enforced. */
        ASSERT_OK(device_mask_resolve("0,GPU1", NULL, 0, "no NVML: x", false, &m, &error));
        ASSERT_FALSE(m->enforced);
        ASSERT_STREQ(m->cuda_visible_devices, "0,GPU1");
        ASSERT_NULL(m->device_allow);
}

TEST(cordoned) {
        _cleanup_(device_mask_freep) DeviceMask *m = NULL;
        _cleanup_free_ char *error = NULL;
        GpuDevice *d;
        size_t n;

        d = make_devices(&n);
        d[1].health = GPU_HEALTH_UNHEALTHY;
        d[1].cordoned = true;
        d[1].health_reason = strdup("XID 79");
        ASSERT_ERROR(device_mask_resolve("0,1", d, n, NULL, true, &m, &error), EBUSY);
        ASSERT_CONTAINS(error, "element 2 (\"1\"): GPU1 (" UUID1 ") is cordoned (XID 79)");
        ASSERT_CONTAINS(error, "poolctl device uncordon 1");
        error = mfree(error);
        ASSERT_OK(device_mask_resolve("0", d, n, NULL, true, &m, &error));
        gpu_device_array_free(d, n);
}

TEST(unknown_nodes) {
        _cleanup_(device_mask_freep) DeviceMask *m = NULL;
        _cleanup_free_ char *error = NULL;
        GpuDevice *d;
        size_t n;

        d = make_devices(&n);
        d[0].minor_known = false;
        ASSERT_ERROR(device_mask_resolve("0", d, n, NULL, true, &m, &error), ENXIO);
        ASSERT_CONTAINS(error, "cannot be enforced");
        error = mfree(error);
        d[2].mig[0].cap_paths = strv_free(d[2].mig[0].cap_paths);
        ASSERT_ERROR(device_mask_resolve(MIG_A, d, n, NULL, true, &m, &error), ENXIO);
        ASSERT_CONTAINS(error, "mig-minors");
        gpu_device_array_free(d, n);
}

TEST(find_element) {
        _cleanup_free_ char *error = NULL;
        GpuDevice *d;
        size_t n, gpu;
        int mig;

        d = make_devices(&n);
        ASSERT_OK(device_mask_find_element("GPU1", d, n, &gpu, &mig, &error));
        ASSERT_EQ(gpu, 1U);
        ASSERT_EQ(mig, -1);
        ASSERT_OK(device_mask_find_element(MIG_A, d, n, &gpu, &mig, &error));
        ASSERT_EQ(gpu, 2U);
        ASSERT_EQ(mig, 0);
        ASSERT_ERROR(device_mask_find_element("5", d, n, &gpu, &mig, &error), ENOENT);
        ASSERT_CONTAINS(error, "unknown device \"5\"");
        gpu_device_array_free(d, n);
}

TEST(no_gpus) {
        _cleanup_(device_mask_freep) DeviceMask *m = NULL;
        _cleanup_free_ char *error = NULL;

        ASSERT_ERROR(device_mask_resolve("0", NULL, 0, NULL, true, &m, &error), ENOENT);
        ASSERT_CONTAINS(error, "unknown device \"0\": this node has no GPU");
}

DEFINE_TEST_MAIN
