/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "shared/json-util.h"
#include "shared/string-util.h"
#include "shared/strv.h"
#include "split-plan.h"
#include "test-util.h"

#define GiB (1ULL << 30)

static SplitPlan *plan_ok(const SplitDevice *d, size_t n, uint64_t model) {
        SplitPlan *p = NULL;
        char *error = NULL;
        uint64_t sum = 0;
        unsigned ratios = 0;

        ASSERT_OK(split_plan_compute(d, n, model, &p, &error));
        ASSERT_NULL(error);
        ASSERT_EQ(p->n, n);
        /* B-HETERO-001: the shares are the model, the ratios sum to 1; no device gets more than it has free. */
        for (size_t i = 0; i < n; i++) {
                sum += p->bytes[i];
                ratios += p->ratio[i];
                ASSERT_TRUE(p->bytes[i] <= d[i].free);
                ASSERT_EQ(p->index[i], d[i].index);
        }
        ASSERT_EQ(sum, model);
        ASSERT_EQ(ratios, SPLIT_RATIO_ONE);
        return p;
}

static char *flags_string(const SplitPlan *p, EngineKind e) {
        _cleanup_strv_free_ char **l = NULL;
        char *s = NULL, *error = NULL;

        ASSERT_OK(split_plan_engine_flags(p, e, &l, &error));
        STRV_FOREACH(f, l)
                ASSERT_OK(strextendf(&s, "%s%s", s ? " " : "", *f));
        return s ?: strdup("");
}

TEST(equal_gpus_split_evenly) {
        const SplitDevice d[] = {
                { .index = 0, .capacity = 24 * GiB, .free = 24 * GiB },
                { .index = 1, .capacity = 24 * GiB, .free = 24 * GiB },
        };
        _cleanup_(split_plan_freep) SplitPlan *p = plan_ok(d, 2, 30 * GiB);
        _cleanup_free_ char *ratios = NULL, *llama = NULL, *vllm = NULL;

        ASSERT_EQ(p->bytes[0], 15 * GiB);
        ASSERT_EQ(p->bytes[1], 15 * GiB);
        ASSERT_TRUE(p->even);
        ASSERT_OK(split_plan_ratios_string(p, &ratios));
        ASSERT_STREQ(ratios, "0.5000,0.5000");
        llama = flags_string(p, ENGINE_LLAMACPP);
        ASSERT_STREQ(llama, "--tensor-split 0.5000,0.5000 --split-mode layer");
        vllm = flags_string(p, ENGINE_VLLM);
        ASSERT_STREQ(vllm, "--tensor-parallel-size 2");
}

TEST(proportional_to_capacity) {
        /* B-HETERO-002: 48 GiB and 24 GiB GPUs, both free: 2:1. */
        const SplitDevice d[] = {
                { .index = 0, .capacity = 48 * GiB, .free = 48 * GiB },
                { .index = 1, .capacity = 24 * GiB, .free = 24 * GiB },
        };
        _cleanup_(split_plan_freep) SplitPlan *p = plan_ok(d, 2, 36 * GiB);
        _cleanup_free_ char *llama = NULL;

        ASSERT_EQ(p->bytes[0], 24 * GiB);
        ASSERT_EQ(p->bytes[1], 12 * GiB);
        ASSERT_EQ(p->ratio[0], 6667U);
        ASSERT_EQ(p->ratio[1], 3333U);
        ASSERT_FALSE(p->even);
        llama = flags_string(p, ENGINE_LLAMACPP);
        ASSERT_STREQ(llama, "--tensor-split 0.6667,0.3333 --split-mode layer");
}

TEST(capped_for_the_smallest_free) {
        /* B-HETERO-003: equal capacity, but GPU1 has only 6 GiB free: it gets 6, GPU0 the rest. */
        const SplitDevice d[] = {
                { .index = 0, .capacity = 24 * GiB, .free = 24 * GiB },
                { .index = 1, .capacity = 24 * GiB, .free = 6 * GiB },
        };
        _cleanup_(split_plan_freep) SplitPlan *p = plan_ok(d, 2, 20 * GiB);
        _cleanup_free_ char *error = NULL;
        _cleanup_strv_free_ char **l = NULL;

        ASSERT_EQ(p->bytes[1], 6 * GiB);
        ASSERT_EQ(p->bytes[0], 14 * GiB);
        ASSERT_EQ(p->ratio[0], 7000U);
        ASSERT_EQ(p->ratio[1], 3000U);
        ASSERT_FALSE(p->even);

        /* B-HETERO-005: vLLM refuses an uneven split. */
        ASSERT_ERROR(split_plan_engine_flags(p, ENGINE_VLLM, &l, &error), EINVAL);
        ASSERT_CONTAINS(error, "vLLM's tensor parallelism needs equal shards");
        ASSERT_CONTAINS(error, "0.7000,0.3000");
}

TEST(cascading_caps) {
        /* Two rounds: GPU2 is capped first, then GPU1 in the next round. */
        const SplitDevice d[] = {
                { .index = 0, .capacity = 80 * GiB, .free = 80 * GiB },
                { .index = 1, .capacity = 80 * GiB, .free = 20 * GiB },
                { .index = 2, .capacity = 80 * GiB, .free = 1 * GiB },
        };
        _cleanup_(split_plan_freep) SplitPlan *p = plan_ok(d, 3, 90 * GiB);

        ASSERT_EQ(p->bytes[2], 1 * GiB);
        ASSERT_EQ(p->bytes[1], 20 * GiB);
        ASSERT_EQ(p->bytes[0], 69 * GiB);
}

TEST(exact_fit_and_rounding) {
        const SplitDevice d[] = {
                { .index = 3, .capacity = 3, .free = 3 },
                { .index = 5, .capacity = 3, .free = 3 },
                { .index = 7, .capacity = 3, .free = 3 },
        };
        _cleanup_(split_plan_freep) SplitPlan *p = plan_ok(d, 3, 9), *q = plan_ok(d, 3, 7);

        ASSERT_EQ(p->bytes[0], 3U);
        /* 7 bytes over three: 2 + 2 + 2 and one left over. Ratios still sum to 1. */
        ASSERT_EQ(q->bytes[0] + q->bytes[1] + q->bytes[2], 7U);
        ASSERT_EQ(q->ratio[0] + q->ratio[1] + q->ratio[2], SPLIT_RATIO_ONE);
}

TEST(does_not_fit) {
        /* B-HETERO-004: refused, naming each device's free VRAM. */
        const SplitDevice d[] = {
                { .index = 0, .uuid = "GPU-a", .capacity = 24 * GiB, .free = 20 * GiB },
                { .index = 1, .uuid = "GPU-b", .capacity = 16 * GiB, .free = 10 * GiB },
        };
        _cleanup_(split_plan_freep) SplitPlan *p = NULL;
        _cleanup_free_ char *error = NULL;

        ASSERT_ERROR(split_plan_compute(d, 2, 31 * GiB, &p, &error), ENOSPC);
        ASSERT_NULL(p);
        ASSERT_CONTAINS(error, "the model needs 31.0 GiB (33285996544 bytes) of VRAM, more than the 2 masked "
                               "devices have free together: 30.0 GiB (GPU0 (GPU-a): 20.0 GiB free, "
                               "GPU1 (GPU-b): 10.0 GiB free)");
}

TEST(single_device) {
        const SplitDevice d[] = { { .index = 2, .capacity = 24 * GiB, .free = 10 * GiB } };
        _cleanup_(split_plan_freep) SplitPlan *p = plan_ok(d, 1, 8 * GiB);
        _cleanup_free_ char *llama = NULL, *vllm = NULL;

        ASSERT_EQ(p->ratio[0], SPLIT_RATIO_ONE);
        ASSERT_TRUE(p->even);
        llama = flags_string(p, ENGINE_LLAMACPP);
        ASSERT_STREQ(llama, "");
        vllm = flags_string(p, ENGINE_VLLM);
        ASSERT_STREQ(vllm, "");
}

TEST(invalid) {
        const SplitDevice d[] = { { .index = 0, .capacity = 1, .free = 1 } };
        _cleanup_(split_plan_freep) SplitPlan *p = NULL;
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL;
        _cleanup_strv_free_ char **l = NULL;

        ASSERT_ERROR(split_plan_compute(d, 0, 1, &p, &e1), EINVAL);
        ASSERT_ERROR(split_plan_compute(d, 1, 0, &p, &e2), EINVAL);
        ASSERT_OK(split_plan_compute(d, 1, 1, &p, &e3));
        /* B-HETERO-006: engines without known split flags. */
        ASSERT_ERROR(split_plan_engine_flags(p, ENGINE_TGI, &l, &e3), EOPNOTSUPP);
        ASSERT_CONTAINS(e3, "llama.cpp and vLLM");
}

TEST(huge_values_do_not_overflow) {
        const SplitDevice d[] = {
                { .index = 0, .capacity = UINT64_MAX, .free = UINT64_MAX },
                { .index = 1, .capacity = UINT64_MAX / 2, .free = UINT64_MAX },
        };
        _cleanup_(split_plan_freep) SplitPlan *p = plan_ok(d, 2, UINT64_MAX);
        _cleanup_json_ json_object *j = NULL;

        ASSERT_OK(split_plan_to_json(p, &j));
        ASSERT_CONTAINS(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN), "\"tensor_split\":\"0.6667,0.3333\"");
}

TEST(capacity_zero_uses_free) {
        const SplitDevice d[] = {
                { .index = 0, .free = 30 },
                { .index = 1, .free = 10 },
        };
        _cleanup_(split_plan_freep) SplitPlan *p = plan_ok(d, 2, 20);

        ASSERT_EQ(p->bytes[0], 15U);
        ASSERT_EQ(p->bytes[1], 5U);
}

DEFINE_TEST_MAIN
