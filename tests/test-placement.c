/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "gguf.h"
#include "placement.h"
#include "test-util.h"

static PreparedEngine *engine(const char *json) {
        PreparedEngine *p = NULL;
        char *error = NULL;

        ASSERT_OK(prepared_engine_from_json(json, strlen(json), &p, &error));
        return p;
}

#define BASE "\"binary_path\":\"/bin/true\",\"port\":8080,\"pool_id\":\"a\""

TEST(flags_context) {
        char *none[] = { NULL };
        char *c[] = { (char *) "-m", (char *) "x", (char *) "-c", (char *) "4096", NULL };
        char *eq[] = { (char *) "--ctx-size=8192", (char *) "--cache-type-k", (char *) "q8_0", NULL };
        char *last[] = { (char *) "-c", (char *) "1", (char *) "--ctx-size", (char *) "2", NULL };
        char *bad[] = { (char *) "-c", (char *) "lots", NULL };
        char *badk[] = { (char *) "-ctk", (char *) "f99", NULL };
        uint32_t n, k;

        ASSERT_OK(llamacpp_flags_context(none, &n, &k));
        ASSERT_EQ(n, 0U);
        ASSERT_EQ(k, (uint32_t) GGML_TYPE_F16);
        ASSERT_OK(llamacpp_flags_context(c, &n, &k));
        ASSERT_EQ(n, 4096U);
        ASSERT_OK(llamacpp_flags_context(eq, &n, &k));
        ASSERT_EQ(n, 8192U);
        ASSERT_EQ(k, (uint32_t) GGML_TYPE_Q8_0);
        ASSERT_OK(llamacpp_flags_context(last, &n, &k));
        ASSERT_EQ(n, 2U);
        ASSERT_ERROR(llamacpp_flags_context(bad, &n, &k), EINVAL);
        ASSERT_ERROR(llamacpp_flags_context(badk, &n, &k), EINVAL);
}

TEST(no_mask) {
        _cleanup_(prepared_engine_freep) PreparedEngine *pe = engine("{" BASE ",\"vram_required_bytes\":1024}");
        _cleanup_(placement_freep) Placement *p = NULL;
        PoolError e = POOL_ERROR_NULL;

        ASSERT_OK(placement_compute(NULL, pe, true, "u.service", PLACEMENT_ADMIT, &p, &e));
        ASSERT_NULL(p->mask);
        ASSERT_NULL(p->plan);
        ASSERT_EQ(p->vram_required, UINT64_C(1024));
        ASSERT_STREQ(p->vram_source, "vram_required_bytes");
        ASSERT_NULL(p->engine_flags[0]);
}

TEST(no_inventory) {
        _cleanup_(prepared_engine_freep) PreparedEngine *pe = engine("{" BASE ",\"device_mask\":\"GPU0,1\"}");
        _cleanup_(placement_freep) Placement *p = NULL;
        PoolError e = POOL_ERROR_NULL;

        /* GpuOnly=yes: refused, nothing placed. */
        ASSERT_ERROR(placement_compute(NULL, pe, true, "u.service", PLACEMENT_ADMIT, &p, &e), ENODEV);
        ASSERT_EQ(e.code, POOL_ERROR_GPU_REQUIRED);
        ASSERT_CONTAINS(e.message, "cannot be checked");
        ASSERT_NULL(p);
        pool_error_done(&e);

        /* GpuOnly=no: passed on as indices, unenforced, said so. */
        ASSERT_OK(placement_compute(NULL, pe, false, "u.service", PLACEMENT_ADMIT, &p, &e));
        ASSERT_FALSE(p->mask->enforced);
        ASSERT_STREQ(p->mask->cuda_visible_devices, "0,1");
        ASSERT_NULL(p->mask->device_allow);
        ASSERT_CONTAINS(p->warning, "device_mask \"GPU0,1\" is not enforced");
        ASSERT_STREQ(p->vram_source, "unknown: no vram_required_bytes and no GGUF model_path of a llama.cpp engine");
}

TEST(split_needs_inventory_and_size) {
        _cleanup_(prepared_engine_freep) PreparedEngine *pe =
                engine("{" BASE ",\"device_mask\":\"0,1\",\"split\":\"auto\",\"vram_required_bytes\":1}");
        _cleanup_(placement_freep) Placement *p = NULL;
        PoolError e = POOL_ERROR_NULL;

        ASSERT_ERROR(placement_compute(NULL, pe, false, "u.service", PLACEMENT_ADMIT, &p, &e), ENODEV);
        ASSERT_EQ(e.code, POOL_ERROR_GPU_REQUIRED);
        ASSERT_CONTAINS(e.message, "split: \"auto\" needs the masked GPUs' free VRAM");
        pool_error_done(&e);
}

TEST(gguf_missing_is_not_an_error) {
        _cleanup_(prepared_engine_freep) PreparedEngine *pe =
                engine("{" BASE ",\"model_path\":\"/nonexistent/model.gguf\",\"flags\":[\"-c\",\"512\"]}");
        _cleanup_(placement_freep) Placement *p = NULL;
        PoolError e = POOL_ERROR_NULL;

        ASSERT_OK(placement_compute(NULL, pe, false, "u.service", PLACEMENT_ADMIT, &p, &e));
        ASSERT_EQ(p->vram_required, UINT64_C(0));
        ASSERT_CONTAINS(p->vram_source, "unknown: no GGUF estimate for /nonexistent/model.gguf");
}

DEFINE_TEST_MAIN
