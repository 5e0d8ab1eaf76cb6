/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "shared/json-util.h"
#include "shared/string-util.h"
#include "shared/strv.h"
#include "split-plan.h"

SplitPlan *split_plan_free(SplitPlan *p) {
        if (!p)
                return NULL;
        free(p->index);
        free(p->bytes);
        free(p->ratio);
        return mfree(p);
}

static uint64_t device_capacity(const SplitDevice *d) {
        return d->capacity > 0 ? d->capacity : d->free;
}

static int refuse_too_large(const SplitDevice *devices, size_t n, uint64_t model_bytes, unsigned __int128 total_free,
                            char **ret_error) {
        _cleanup_free_ char *list = NULL;

        for (size_t i = 0; i < n; i++)
                if (strextendf(&list, "%sGPU%u%s%s%s: %s free", i > 0 ? ", " : "", devices[i].index,
                               devices[i].uuid ? " (" : "", strempty(devices[i].uuid), devices[i].uuid ? ")" : "",
                               FORMAT_BYTES(devices[i].free)) < 0)
                        return -ENOMEM;
        if (asprintf(ret_error, "the model needs %s (%" PRIu64 " bytes) of VRAM, more than the %zu masked device%s "
                     "have free together: %s (%s)", FORMAT_BYTES(model_bytes), model_bytes, n, n == 1 ? "" : "s",
                     FORMAT_BYTES((uint64_t) total_free), list) < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return -ENOSPC;
}

/* Shares in 1/10000 by the largest remainder, so that they sum to exactly 10000. */
static void compute_ratios(SplitPlan *p) {
        unsigned sum = 0;
        uint64_t *rest = calloc(p->n, sizeof(uint64_t));

        for (size_t i = 0; i < p->n; i++) {
                unsigned __int128 x = (unsigned __int128) p->bytes[i] * SPLIT_RATIO_ONE;

                p->ratio[i] = (unsigned) (x / p->model_bytes);
                if (rest)
                        rest[i] = (uint64_t) (x % p->model_bytes);
                sum += p->ratio[i];
        }
        while (sum < SPLIT_RATIO_ONE) {
                size_t best = 0;

                for (size_t i = 1; rest && i < p->n; i++)
                        if (rest[i] > rest[best])
                                best = i;
                p->ratio[best]++;
                if (rest)
                        rest[best] = 0;
                sum++;
        }
        free(rest);
}

int split_plan_compute(const SplitDevice *devices, size_t n, uint64_t model_bytes, SplitPlan **ret,
                       char **ret_error) {
        _cleanup_(split_plan_freep) SplitPlan *p = NULL;
        _cleanup_free_ bool *fixed = NULL;
        unsigned __int128 total_free = 0;
        uint64_t remaining = model_bytes;
        bool capped = false;

        if (n == 0 || model_bytes == 0) {
                if (asprintf(ret_error, n == 0 ? "a split needs at least one device" : "the model size is 0") < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }

        for (size_t i = 0; i < n; i++)
                total_free += devices[i].free;
        if (model_bytes > total_free)
                return refuse_too_large(devices, n, model_bytes, total_free, ret_error);

        p = calloc(1, sizeof(SplitPlan));
        fixed = calloc(n, sizeof(bool));
        if (!p || !fixed)
                return -ENOMEM;
        p->n = n;
        p->model_bytes = model_bytes;
        p->index = calloc(n, sizeof(unsigned));
        p->bytes = calloc(n, sizeof(uint64_t));
        p->ratio = calloc(n, sizeof(unsigned));
        if (!p->index || !p->bytes || !p->ratio)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                p->index[i] = devices[i].index;

        /* Water-filling: shares proportional to capacity; a device whose share does not fit gets
         * its free VRAM, and the others share the rest in the next round. At most n rounds. */
        for (size_t round = 0; round <= n; round++) {
                unsigned __int128 cap_sum = 0;
                uint64_t assigned = 0;
                bool capped_now = false;

                for (size_t i = 0; i < n; i++)
                        if (!fixed[i])
                                cap_sum += device_capacity(&devices[i]);
                if (cap_sum == 0)
                        break;

                for (size_t i = 0; i < n; i++) {
                        uint64_t share;

                        if (fixed[i])
                                continue;
                        share = (uint64_t) ((unsigned __int128) remaining * device_capacity(&devices[i]) / cap_sum);
                        if (share > devices[i].free) {
                                p->bytes[i] = devices[i].free;
                                fixed[i] = true;
                                capped_now = true;
                                assigned += devices[i].free;
                        }
                }
                if (capped_now) {
                        capped = true;
                        remaining -= assigned;
                        continue;
                }

                for (size_t i = 0; i < n; i++)
                        if (!fixed[i]) {
                                p->bytes[i] = (uint64_t) ((unsigned __int128) remaining *
                                                          device_capacity(&devices[i]) / cap_sum);
                                assigned += p->bytes[i];
                        }
                /* The bytes lost to rounding (fewer than n) go where there is room. */
                for (size_t i = 0; assigned < remaining && i < n; i++)
                        if (!fixed[i] && p->bytes[i] < devices[i].free) {
                                uint64_t k = MIN(remaining - assigned, devices[i].free - p->bytes[i]);

                                p->bytes[i] += k;
                                assigned += k;
                        }
                remaining -= assigned;
                break;
        }
        if (remaining != 0)     /* cannot happen: the total fits */
                return refuse_too_large(devices, n, model_bytes, total_free, ret_error);

        p->even = !capped;
        for (size_t i = 1; p->even && i < n; i++)
                if (device_capacity(&devices[i]) != device_capacity(&devices[0]))
                        p->even = false;
        compute_ratios(p);

        *ret = TAKE_PTR(p);
        return 0;
}

int split_plan_ratios_string(const SplitPlan *p, char **ret) {
        _cleanup_free_ char *s = NULL;

        for (size_t i = 0; i < p->n; i++)
                if (strextendf(&s, "%s%u.%04u", i > 0 ? "," : "", p->ratio[i] / SPLIT_RATIO_ONE,
                               p->ratio[i] % SPLIT_RATIO_ONE) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 0;
}

int split_plan_engine_flags(const SplitPlan *p, EngineKind engine, char ***ret, char **ret_error) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *ratios = NULL;
        int r;

        r = split_plan_ratios_string(p, &ratios);
        if (r < 0)
                return r;

        switch (engine) {
        case ENGINE_LLAMACPP:
                /* One device: nothing to split. */
                if (p->n > 1 && (strv_extend(&l, "--tensor-split") < 0 || strv_extend(&l, ratios) < 0 ||
                                 strv_extend(&l, "--split-mode") < 0 || strv_extend(&l, "layer") < 0))
                        return -ENOMEM;
                break;

        case ENGINE_VLLM: {
                char n[32];

                if (!p->even) {
                        if (asprintf(ret_error, "vLLM's tensor parallelism needs equal shards, and the split over "
                                     "these devices is uneven (%s): mask GPUs of equal capacity with enough free "
                                     "VRAM each, or use llama.cpp", ratios) < 0)
                                *ret_error = NULL;
                        return -EINVAL;
                }
                (void) snprintf(n, sizeof(n), "%zu", p->n);
                if (p->n > 1 && (strv_extend(&l, "--tensor-parallel-size") < 0 || strv_extend(&l, n) < 0))
                        return -ENOMEM;
                break;
        }

        default:
                if (asprintf(ret_error, "\"split\": \"auto\" is supported for llama.cpp and vLLM engines only") < 0)
                        *ret_error = NULL;
                return -EOPNOTSUPP;
        }

        if (!l && !(l = strv_copy(STRV_MAKE(NULL))))
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

int split_plan_to_json(const SplitPlan *p, json_object **ret) {
        _cleanup_json_ json_object *o = NULL, *a = NULL;
        _cleanup_free_ char *ratios = NULL;

        o = json_object_new_object();
        a = json_object_new_array();
        if (!o || !a || split_plan_ratios_string(p, &ratios) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < p->n; i++) {
                _cleanup_json_ json_object *d = json_object_new_object();

                if (!d || json_add_int(d, "index", p->index[i]) < 0 ||
                    json_add_int(d, "ratio_permyriad", p->ratio[i]) < 0 ||
                    json_add_uint64(d, "bytes", p->bytes[i]) < 0 ||
                    json_object_array_add(a, d) < 0)
                        return -ENOMEM;
                TAKE_PTR(d);
        }
        if (json_add_take(o, "devices", TAKE_PTR(a)) < 0 ||
            json_add_string(o, "tensor_split", ratios) < 0 ||
            json_add_bool(o, "even", p->even) < 0 ||
            json_add_uint64(o, "model_bytes", p->model_bytes) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}
