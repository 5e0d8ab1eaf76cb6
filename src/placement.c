/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "gguf.h"
#include "gpu.h"
#include "placement.h"
#include "shared/string-util.h"
#include "shared/strv.h"

Placement *placement_free(Placement *p) {
        if (!p)
                return NULL;
        device_mask_free(p->mask);
        split_plan_free(p->plan);
        strv_free(p->engine_flags);
        free(p->vram_source);
        free(p->tensor_split);
        free(p->warning);
        return mfree(p);
}

static int parse_u32(const char *s, uint32_t *ret) {
        char *end;
        unsigned long long v;

        if (isempty(s) || strspn(s, "0123456789") != strlen(s))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || v > UINT32_MAX)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

/* The value of option long_name/short_name in flags ("-c 4096", "--ctx-size 4096",
 * "--ctx-size=4096"); the last one wins, as for llama.cpp's own parser. NULL: absent. */
static const char *flag_value(char * const *flags, const char *short_name, const char *long_name) {
        const char *v = NULL;
        size_t n = strlen(long_name);

        for (size_t i = 0; flags && flags[i]; i++) {
                if ((streq(flags[i], short_name) || streq(flags[i], long_name)) && flags[i + 1])
                        v = flags[++i];
                else if (strneq(flags[i], long_name, n) && flags[i][n] == '=')
                        v = flags[i] + n + 1;
        }
        return v;
}

int llamacpp_flags_context(char * const *flags, uint32_t *ret_n_ctx, uint32_t *ret_kv_type) {
        const char *c = flag_value(flags, "-c", "--ctx-size"), *k = flag_value(flags, "-ctk", "--cache-type-k");
        uint32_t n_ctx = 0, kv = GGML_TYPE_F16;

        if (c && parse_u32(c, &n_ctx) < 0)
                return -EINVAL;
        if (k && ggml_type_from_name(k, &kv) < 0)
                return -EINVAL;
        *ret_n_ctx = n_ctx;
        *ret_kv_type = kv;
        return 0;
}

/* The VRAM pe needs: stated, or estimated from its GGUF model; 0 with *source saying why not. */
static int placement_vram_required(const PreparedEngine *pe, uint64_t *ret, char **ret_source) {
        _cleanup_(gguf_info_freep) GgufInfo *g = NULL;
        _cleanup_free_ char *error = NULL;
        VramEstimate est;
        uint32_t n_ctx, kv;
        int r;

        *ret = 0;
        if (pe->vram_required_bytes > 0) {
                *ret = pe->vram_required_bytes;
                return free_and_strdup(ret_source, "vram_required_bytes");
        }
        if (pe->engine != ENGINE_LLAMACPP || !pe->model_path)
                return free_and_strdup(ret_source, "unknown: no vram_required_bytes and no GGUF model_path of a "
                                       "llama.cpp engine");
        r = llamacpp_flags_context(pe->flags, &n_ctx, &kv);
        if (r < 0)
                return asprintf(ret_source, "unknown: the engine's --ctx-size or --cache-type-k is not "
                                "understood") < 0 ? -ENOMEM : 0;
        r = gguf_read_file(pe->model_path, &g, &error);
        if (r == -ENOMEM)
                return r;
        if (r >= 0)
                r = gguf_estimate_vram(g, n_ctx, kv, &est, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return asprintf(ret_source, "unknown: no GGUF estimate for %s: %s", pe->model_path,
                                error ?: strerror(-r)) < 0 ? -ENOMEM : 0;
        *ret = est.total;
        return asprintf(ret_source, "GGUF estimate: weights %" PRIu64 " + KV cache %" PRIu64 " (n_ctx %" PRIu32
                        ", %s) + compute %" PRIu64, est.weights, est.kv_cache, est.n_ctx, ggml_type_name(kv),
                        est.compute) < 0 ? -ENOMEM : 0;
}

/* The DeviceAllow= nodes that do not exist now: systemd would drop their rules silently. */
static int missing_nodes(char * const *nodes, char **ret) {
        _cleanup_free_ char *s = NULL;

        STRV_FOREACH(n, (char **) nodes)
                if (access(*n, F_OK) < 0 && strextendf(&s, "%s%s", s ? ", " : "", *n) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 0;
}

static PoolErrorCode mask_error_code(int r) {
        switch (r) {
        case -ENOENT:
                return POOL_ERROR_NO_SUCH_DEVICE;
        case -ENODEV:
        case -ENXIO:
                return POOL_ERROR_GPU_REQUIRED;
        case -EBUSY:
                return POOL_ERROR_DEVICE_LOST;
        default:
                return POOL_ERROR_INVALID_PREPARED_ENGINE;
        }
}

int placement_compute(GpuInventory *g, const PreparedEngine *pe, bool gpu_only, const char *unit,
                      PlacementMode mode, Placement **ret, PoolError *ret_error) {
        _cleanup_(placement_freep) Placement *p = NULL;
        _cleanup_free_ uint64_t *required = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        p = calloc(1, sizeof(Placement));
        if (!p)
                return -ENOMEM;
        p->engine_flags = calloc(1, sizeof(char *));
        if (!p->engine_flags)
                return -ENOMEM;

        if (pe->device_mask) {
                if (g)
                        r = gpu_inventory_resolve_mask(g, pe->device_mask, gpu_only, &p->mask, &error);
                else
                        r = device_mask_resolve(pe->device_mask, NULL, 0, "no NVML: no GPU inventory", gpu_only,
                                                &p->mask, &error);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return pool_error_set(ret_error, mask_error_code(r), "%s", error ?: strerror(-r));
                if (!p->mask->enforced) {
                        /* No inventory, GpuOnly=no: passed on as before issue 9, canonical indices. */
                        _cleanup_free_ char *cvd = NULL;

                        r = device_mask_to_cuda_visible_devices(pe->device_mask, &cvd);
                        if (r == -ENOMEM)
                                return r;
                        if (r >= 0) {
                                free(p->mask->cuda_visible_devices);
                                p->mask->cuda_visible_devices = TAKE_PTR(cvd);
                        }
                        if (asprintf(&p->warning, "device_mask \"%s\" is not enforced: %s", pe->device_mask,
                                     g ? strna(gpu_inventory_error(g)) : "no GPU inventory") < 0)
                                return -ENOMEM;
                } else {
                        _cleanup_free_ char *missing = NULL;

                        r = missing_nodes(p->mask->device_allow, &missing);
                        if (r < 0)
                                return r;
                        if (missing &&
                            asprintf(&p->warning, "device nodes missing now: %s; systemd drops their DeviceAllow= "
                                     "rules, so the engine cannot open them", missing) < 0)
                                return -ENOMEM;
                }
        }

        r = placement_vram_required(pe, &p->vram_required, &p->vram_source);
        if (r < 0)
                return r;

        if (pe->split_auto && mode != PLACEMENT_ADOPT) {
                _cleanup_strv_free_ char **flags = NULL;

                if (!p->mask || !p->mask->enforced)
                        return pool_error_set(ret_error, POOL_ERROR_GPU_REQUIRED,
                                              "split: \"auto\" needs the masked GPUs' free VRAM from the GPU "
                                              "inventory (%s)", g ? strna(gpu_inventory_error(g)) :
                                                                    "no GPU inventory");
                if (p->vram_required == 0)
                        return pool_error_set(ret_error, POOL_ERROR_INVALID_PREPARED_ENGINE,
                                              "split: \"auto\" needs the model's size: vram_required_bytes, or a "
                                              "GGUF model_path of a llama.cpp engine (%s)", p->vram_source);
                r = gpu_inventory_plan_split(g, p->mask, p->vram_required, pe->pool_id, &p->plan, &error);
                if (r == -ENOMEM)
                        return r;
                if (r == -ENOSPC)
                        return pool_error_set(ret_error, POOL_ERROR_INSUFFICIENT_VRAM, "split: %s",
                                              error ?: "the model does not fit");
                if (r < 0)
                        return pool_error_set(ret_error, POOL_ERROR_INVALID_PREPARED_ENGINE, "split: %s",
                                              error ?: strerror(-r));
                r = split_plan_engine_flags(p->plan, pe->engine, &flags, &error);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return pool_error_set(ret_error, POOL_ERROR_INVALID_PREPARED_ENGINE, "split: %s",
                                              error ?: strerror(-r));
                strv_free(p->engine_flags);
                p->engine_flags = TAKE_PTR(flags);
                r = split_plan_ratios_string(p->plan, &p->tensor_split);
                if (r < 0)
                        return r;
        }

        if (p->mask && p->mask->enforced && p->vram_required > 0) {
                size_t n = p->mask->n_entries;

                required = calloc(n, sizeof(uint64_t));
                if (!required)
                        return -ENOMEM;
                /* A plan says each device's share; without one the engine's own default is an
                 * even spread, so each device must hold its n-th (one device: all of it). */
                for (size_t i = 0; i < n; i++)
                        required[i] = p->plan ? p->plan->bytes[i] : (p->vram_required + n - 1) / n;
                if (mode == PLACEMENT_ADMIT) {
                        r = gpu_inventory_admit(g, p->mask, required, pe->pool_id, unit, &error);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return pool_error_set(ret_error, POOL_ERROR_INSUFFICIENT_VRAM, "%s",
                                                      error ?: strerror(-r));
                } else if (mode == PLACEMENT_ADOPT) {
                        r = gpu_inventory_record(g, p->mask, required, pe->pool_id, unit);
                        if (r < 0)
                                return r;
                }
        }

        *ret = TAKE_PTR(p);
        return 0;
}
