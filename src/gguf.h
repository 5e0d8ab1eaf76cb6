/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * GGUF header reader and VRAM estimate for llama.cpp engines (OC-POOL-3002). A model file is
 * outside input: every count, length, type and offset is checked against the file's size before
 * use, so a hostile header costs at most one pass over the file's bytes (tests/fuzz-gguf.c).
 *
 * The estimate, in bytes (see pool-managerd(8), "VRAM ADMISSION"):
 *
 *   weights = sum over tensors of ggml_nbytes(type, shape)             (exactly what is loaded)
 *   kv      = n_ctx * sum over layers of (n_head_kv(l) * (key_length + value_length)) * kv_bytes
 *           = 2 * n_layer * n_ctx * n_embd_k_gqa * kv_bytes            when K and V heads are alike
 *   compute = 512 MiB + n_vocab * 512 * 4                               (CUDA context, scratch
 *                                                                        buffers, f32 logits of a
 *                                                                        512-token micro-batch)
 *   total   = weights + kv + compute
 *
 * with key_length/value_length defaulting to embedding_length / head_count, head_count_kv to
 * head_count (a per-layer array is summed layer by layer), kv_bytes the size of an element of
 * the KV cache type (2 for f16, llama.cpp's default) and n_ctx the context asked for (0: the
 * model's context_length).
 */

#include <stddef.h>
#include <stdint.h>

#include "shared/macro.h"

#define GGUF_COMPUTE_MARGIN_BASE (512ULL << 20)
#define GGUF_COMPUTE_UBATCH 512ULL

/* ggml tensor types (ggml.h's enum ggml_type) whose sizes are known here. */
typedef enum GgmlType {
        GGML_TYPE_F32 = 0,
        GGML_TYPE_F16 = 1,
        GGML_TYPE_Q4_0 = 2,
        GGML_TYPE_Q8_0 = 8,
        GGML_TYPE_BF16 = 30,
        _GGML_TYPE_MAX = 40,
} GgmlType;

/* Bytes of n elements of type, or -EINVAL for an unknown type or n not a multiple of its block. */
int ggml_type_nbytes(uint32_t type, uint64_t n, uint64_t *ret);
/* "f16", "q8_0", ...; NULL for unknown. */
const char *ggml_type_name(uint32_t type);
/* The type of a KV cache type name as llama.cpp's --cache-type-k takes it ("f16", "q8_0"). */
int ggml_type_from_name(const char *name, uint32_t *ret);

typedef struct GgufInfo {
        uint32_t version;               /* 2 or 3 */
        uint64_t n_tensors;
        uint64_t n_kv;
        char *architecture;             /* general.architecture */
        uint64_t weights_bytes;         /* sum of the tensors' sizes */
        uint32_t n_layer;               /* <arch>.block_count */
        uint32_t n_ctx_train;           /* <arch>.context_length */
        uint32_t n_embd;                /* <arch>.embedding_length */
        uint32_t n_head;                /* <arch>.attention.head_count */
        uint32_t n_head_kv;             /* <arch>.attention.head_count_kv (the largest, for an array) */
        uint64_t n_head_kv_sum;         /* summed over the layers */
        uint32_t key_length;            /* <arch>.attention.key_length, or n_embd / n_head */
        uint32_t value_length;          /* <arch>.attention.value_length, or n_embd / n_head */
        uint64_t n_vocab;               /* tokenizer.ggml.tokens entries (0: unknown) */
} GgufInfo;

GgufInfo *gguf_info_free(GgufInfo *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(GgufInfo *, gguf_info_free);

/*
 * Parses a whole GGUF file held in memory. -EBADMSG with *ret_error for anything malformed or
 * inconsistent (truncated, an unknown tensor type, tensor data past the end of the file, a
 * missing block_count), naming what and where.
 */
int gguf_parse(const void *data, size_t size, GgufInfo **ret, char **ret_error);

/* The same for a file, mapped read-only. -ENOENT, -EACCES, ... as errors of open(). */
int gguf_read_file(const char *path, GgufInfo **ret, char **ret_error);

typedef struct VramEstimate {
        uint32_t n_ctx;
        uint64_t weights;
        uint64_t kv_cache;
        uint64_t compute;
        uint64_t total;
} VramEstimate;

/* n_ctx 0: the model's context_length. kv_type: a ggml type (GGML_TYPE_F16 by default). */
int gguf_estimate_vram(const GgufInfo *g, uint32_t n_ctx, uint32_t kv_type, VramEstimate *ret, char **ret_error);
