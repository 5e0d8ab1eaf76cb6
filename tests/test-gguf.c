/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The GGUF reader and the VRAM estimate, on small GGUF files built here (GgufBuilder writes the
 * format byte by byte: header, key/value pairs, tensor infos, aligned data).
 */

#include <sys/mman.h>

#include "gguf.h"
#include "test-util.h"

typedef struct GgufBuilder {
        uint8_t *data;
        size_t size;
        uint64_t n_kv, n_tensors;
        size_t kv_count_at, tensor_count_at;
        uint64_t next_offset;           /* of the next tensor in the data section */
} GgufBuilder;

static void put(GgufBuilder *b, const void *p, size_t n) {
        b->data = realloc(b->data, b->size + n);
        ASSERT_NOT_NULL(b->data);
        memcpy(b->data + b->size, p, n);
        b->size += n;
}

static void put_uint(GgufBuilder *b, uint64_t v, size_t n) {
        uint8_t buf[8];

        for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t) (v >> (8 * i));
        put(b, buf, n);
}

static void put_string(GgufBuilder *b, const char *s) {
        put_uint(b, strlen(s), 8);
        put(b, s, strlen(s));
}

static void patch_u64(GgufBuilder *b, size_t at, uint64_t v) {
        for (size_t i = 0; i < 8; i++)
                b->data[at + i] = (uint8_t) (v >> (8 * i));
}

static GgufBuilder *builder_new(uint32_t version) {
        GgufBuilder *b = calloc(1, sizeof(GgufBuilder));

        ASSERT_NOT_NULL(b);
        put(b, "GGUF", 4);
        put_uint(b, version, 4);
        b->tensor_count_at = b->size;
        put_uint(b, 0, 8);
        b->kv_count_at = b->size;
        put_uint(b, 0, 8);
        return b;
}

static void kv_u32(GgufBuilder *b, const char *key, uint32_t v) {
        put_string(b, key);
        put_uint(b, 4 /* UINT32 */, 4);
        put_uint(b, v, 4);
        patch_u64(b, b->kv_count_at, ++b->n_kv);
}

static void kv_string(GgufBuilder *b, const char *key, const char *v) {
        put_string(b, key);
        put_uint(b, 8 /* STRING */, 4);
        put_string(b, v);
        patch_u64(b, b->kv_count_at, ++b->n_kv);
}

static void kv_u32_array(GgufBuilder *b, const char *key, const uint32_t *v, size_t n) {
        put_string(b, key);
        put_uint(b, 9 /* ARRAY */, 4);
        put_uint(b, 4 /* UINT32 */, 4);
        put_uint(b, n, 8);
        for (size_t i = 0; i < n; i++)
                put_uint(b, v[i], 4);
        patch_u64(b, b->kv_count_at, ++b->n_kv);
}

static void kv_tokens(GgufBuilder *b, size_t n) {
        put_string(b, "tokenizer.ggml.tokens");
        put_uint(b, 9 /* ARRAY */, 4);
        put_uint(b, 8 /* STRING */, 4);
        put_uint(b, n, 8);
        for (size_t i = 0; i < n; i++)
                put_string(b, i % 2 ? "<tok>" : "a");
        patch_u64(b, b->kv_count_at, ++b->n_kv);
}

/* A tensor info of ne0 x ne1 elements of type, with nbytes bytes of data to come. */
static void tensor(GgufBuilder *b, const char *name, uint64_t ne0, uint64_t ne1, uint32_t type, uint64_t nbytes) {
        put_string(b, name);
        put_uint(b, 2, 4);
        put_uint(b, ne0, 8);
        put_uint(b, ne1, 8);
        put_uint(b, type, 4);
        put_uint(b, b->next_offset, 8);
        b->next_offset += (nbytes + 31) / 32 * 32;
        patch_u64(b, b->tensor_count_at, ++b->n_tensors);
}

/* Pads to the alignment and appends the data section (zeros). */
static void finish(GgufBuilder *b, uint64_t alignment) {
        while (b->size % alignment != 0)
                put_uint(b, 0, 1);
        for (uint64_t i = 0; i < b->next_offset; i++)
                put_uint(b, 0, 1);
}

static void builder_free(GgufBuilder *b) {
        free(b->data);
        free(b);
}

/* A tiny llama: 2 layers, 64-wide, 8 query heads, 2 KV heads, 10 tokens. */
static GgufBuilder *tiny_llama(void) {
        GgufBuilder *b = builder_new(3);

        kv_string(b, "general.architecture", "llama");
        kv_string(b, "general.name", "tiny");
        kv_u32(b, "llama.block_count", 2);
        kv_u32(b, "llama.context_length", 4096);
        kv_u32(b, "llama.embedding_length", 64);
        kv_u32(b, "llama.attention.head_count", 8);
        kv_u32(b, "llama.attention.head_count_kv", 2);
        kv_tokens(b, 10);
        tensor(b, "token_embd.weight", 64, 10, GGML_TYPE_F32, 64 * 10 * 4);        /* 2560 */
        tensor(b, "blk.0.attn_q.weight", 64, 64, GGML_TYPE_Q8_0, 64 * 64 / 32 * 34); /* 4352 */
        tensor(b, "blk.1.attn_q.weight", 64, 64, GGML_TYPE_Q4_0, 64 * 64 / 32 * 18); /* 2304 */
        tensor(b, "output.weight", 64, 10, GGML_TYPE_F16, 64 * 10 * 2);             /* 1280 */
        finish(b, 32);
        return b;
}

/* The smallest valid start: an architecture and its block count. */
static GgufBuilder *minimal_llama(void) {
        GgufBuilder *b = builder_new(3);

        kv_string(b, "general.architecture", "llama");
        kv_u32(b, "llama.block_count", 1);
        return b;
}

static GgufInfo *parse_ok(const GgufBuilder *b) {
        GgufInfo *g = NULL;
        char *error = NULL;
        int r;

        r = gguf_parse(b->data, b->size, &g, &error);
        if (r < 0)
                fprintf(stderr, "%s\n", strna(error));
        ASSERT_OK(r);
        return g;
}

static char *parse_error(const GgufBuilder *b) {
        _cleanup_(gguf_info_freep) GgufInfo *g = NULL;
        char *error = NULL;

        ASSERT_ERROR(gguf_parse(b->data, b->size, &g, &error), EBADMSG);
        ASSERT_NULL(g);
        ASSERT_NOT_NULL(error);
        fprintf(stderr, "%s\n", error);
        return error;
}

TEST(tiny_llama_header) {
        GgufBuilder *b = tiny_llama();
        _cleanup_(gguf_info_freep) GgufInfo *g = parse_ok(b);

        ASSERT_EQ(g->version, 3U);
        ASSERT_STREQ(g->architecture, "llama");
        ASSERT_EQ(g->n_tensors, 4U);
        ASSERT_EQ(g->n_kv, 8U);
        ASSERT_EQ(g->weights_bytes, 2560U + 4352U + 2304U + 1280U);
        ASSERT_EQ(g->n_layer, 2U);
        ASSERT_EQ(g->n_ctx_train, 4096U);
        ASSERT_EQ(g->n_embd, 64U);
        ASSERT_EQ(g->n_head, 8U);
        ASSERT_EQ(g->n_head_kv, 2U);
        ASSERT_EQ(g->key_length, 8U);
        ASSERT_EQ(g->value_length, 8U);
        ASSERT_EQ(g->n_vocab, 10U);
        builder_free(b);
}

TEST(estimate_formula) {
        GgufBuilder *b = tiny_llama();
        _cleanup_(gguf_info_freep) GgufInfo *g = parse_ok(b);
        _cleanup_free_ char *error = NULL;
        VramEstimate e;
        uint64_t n_embd_k_gqa = 2 * 8;  /* n_head_kv * head dimension */

        ASSERT_OK(gguf_estimate_vram(g, 1024, GGML_TYPE_F16, &e, &error));
        ASSERT_EQ(e.n_ctx, 1024U);
        ASSERT_EQ(e.weights, g->weights_bytes);
        /* The formula: 2 * n_layer * n_ctx * n_embd_k_gqa * bytes. */
        ASSERT_EQ(e.kv_cache, 2 * 2 * 1024 * n_embd_k_gqa * 2);
        ASSERT_EQ(e.compute, GGUF_COMPUTE_MARGIN_BASE + 10 * 512 * 4);
        ASSERT_EQ(e.total, e.weights + e.kv_cache + e.compute);

        /* n_ctx 0: the model's own context length. */
        ASSERT_OK(gguf_estimate_vram(g, 0, GGML_TYPE_F16, &e, &error));
        ASSERT_EQ(e.n_ctx, 4096U);
        ASSERT_EQ(e.kv_cache, 2 * 2 * 4096 * n_embd_k_gqa * 2);

        /* A q8_0 cache: 34 bytes per 32 elements. */
        ASSERT_OK(gguf_estimate_vram(g, 1024, GGML_TYPE_Q8_0, &e, &error));
        ASSERT_EQ(e.kv_cache, 2 * 2 * 1024 * n_embd_k_gqa / 32 * 34);
        builder_free(b);
}

TEST(per_layer_kv_heads_and_head_sizes) {
        static const uint32_t kv_heads[] = { 2, 4, 0 };
        GgufBuilder *b = builder_new(2);
        _cleanup_(gguf_info_freep) GgufInfo *g = NULL;
        _cleanup_free_ char *error = NULL;
        VramEstimate e;

        kv_u32(b, "phi.block_count", 3);
        kv_u32(b, "phi.embedding_length", 128);
        kv_u32(b, "phi.attention.head_count", 4);
        kv_u32_array(b, "phi.attention.head_count_kv", kv_heads, 3);
        kv_u32(b, "phi.attention.key_length", 48);
        kv_u32(b, "phi.attention.value_length", 16);
        /* The architecture may come after its keys. */
        kv_string(b, "general.architecture", "phi");
        kv_u32(b, "general.alignment", 64);
        finish(b, 64);
        g = parse_ok(b);
        ASSERT_EQ(g->n_head_kv, 4U);
        ASSERT_EQ(g->n_head_kv_sum, 6U);
        ASSERT_EQ(g->n_ctx_train, 0U);
        ASSERT_OK(gguf_estimate_vram(g, 100, GGML_TYPE_F16, &e, &error));
        ASSERT_EQ(e.kv_cache, 100 * 6 * (48 + 16) * 2);
        ASSERT_EQ(e.compute, GGUF_COMPUTE_MARGIN_BASE);

        /* No context length anywhere: the caller must say. */
        ASSERT_ERROR(gguf_estimate_vram(g, 0, GGML_TYPE_F16, &e, &error), EINVAL);
        ASSERT_CONTAINS(error, "context_length");
        builder_free(b);
}

TEST(every_truncation_is_an_error) {
        GgufBuilder *b = tiny_llama();
        size_t header_end;

        /* Every prefix that cuts the header or the data is refused, none crashes. */
        header_end = b->size - b->next_offset;
        for (size_t n = 0; n < b->size; n++) {
                _cleanup_(gguf_info_freep) GgufInfo *g = NULL;
                _cleanup_free_ char *error = NULL;
                int r = gguf_parse(b->data, n, &g, &error);

                if (r >= 0)
                        fprintf(stderr, "prefix %zu of %zu parsed (header ends at %zu)\n", n, b->size, header_end);
                ASSERT_ERROR(r, EBADMSG);
                ASSERT_CONTAINS(error, "GGUF: ");
        }
        builder_free(b);
}

TEST(bad_headers) {
        GgufBuilder *b;
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL, *e5 = NULL;

        b = builder_new(1);
        e1 = parse_error(b);
        ASSERT_CONTAINS(e1, "version 1 is not supported");
        builder_free(b);

        b = builder_new(3);
        memcpy(b->data, "GGML", 4);
        e2 = parse_error(b);
        ASSERT_CONTAINS(e2, "no \"GGUF\" magic");
        builder_free(b);

        /* A count that cannot fit. */
        b = builder_new(3);
        patch_u64(b, b->kv_count_at, UINT64_MAX);
        e3 = parse_error(b);
        ASSERT_CONTAINS(e3, "cannot fit in the file");
        builder_free(b);

        b = builder_new(3);
        kv_u32(b, "llama.block_count", 2);
        finish(b, 32);
        e4 = parse_error(b);
        ASSERT_CONTAINS(e4, "general.architecture is missing");
        builder_free(b);

        b = builder_new(3);
        kv_string(b, "general.architecture", "llama");
        finish(b, 32);
        e5 = parse_error(b);
        ASSERT_CONTAINS(e5, "llama.block_count is missing");
        builder_free(b);
}

TEST(bad_tensors) {
        GgufBuilder *b;
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;

        /* Data past the end of the file. */
        b = minimal_llama();
        tensor(b, "huge", 1ULL << 20, 1ULL << 20, GGML_TYPE_F32, 32);
        finish(b, 32);
        e1 = parse_error(b);
        ASSERT_CONTAINS(e1, "lie past the end of the file");
        builder_free(b);

        /* An unknown type, and a shape that is no whole number of blocks. */
        b = minimal_llama();
        tensor(b, "t", 4, 1, 4 /* Q4_2, removed */, 32);
        finish(b, 32);
        e2 = parse_error(b);
        ASSERT_CONTAINS(e2, "tensor 0: unknown type 4");
        builder_free(b);

        b = minimal_llama();
        tensor(b, "t", 33, 1, GGML_TYPE_Q8_0, 64);
        finish(b, 32);
        e3 = parse_error(b);
        ASSERT_CONTAINS(e3, "not a whole number of its blocks");
        builder_free(b);

        /* An overflowing shape. */
        b = minimal_llama();
        tensor(b, "t", 1ULL << 40, 1ULL << 40, GGML_TYPE_F32, 32);
        finish(b, 32);
        e4 = parse_error(b);
        ASSERT_CONTAINS(e4, "shape overflows");
        builder_free(b);
}

TEST(bad_values) {
        GgufBuilder *b;
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL;

        b = builder_new(3);
        kv_string(b, "general.architecture", "llama");
        kv_u32(b, "general.alignment", 48);
        finish(b, 32);
        e1 = parse_error(b);
        ASSERT_CONTAINS(e1, "general.alignment must be a power of two");
        builder_free(b);

        /* Arrays of arrays of arrays. */
        b = builder_new(3);
        put_string(b, "deep");
        put_uint(b, 9, 4);
        put_uint(b, 9, 4);
        put_uint(b, 1, 8);
        put_uint(b, 9, 4);
        put_uint(b, 1, 8);
        put_uint(b, 4, 4);
        put_uint(b, 1, 8);
        put_uint(b, 7, 4);
        patch_u64(b, b->kv_count_at, 1);
        e2 = parse_error(b);
        ASSERT_CONTAINS(e2, "deep: arrays nested deeper than 2");
        builder_free(b);

        /* A per-layer array of the wrong length. */
        {
                static const uint32_t heads[] = { 1, 2 };

                b = builder_new(3);
                kv_string(b, "general.architecture", "llama");
                kv_u32(b, "llama.block_count", 3);
                kv_u32_array(b, "llama.attention.head_count_kv", heads, 2);
                finish(b, 32);
                e3 = parse_error(b);
                ASSERT_CONTAINS(e3, "head_count_kv must be a number or one per layer");
                builder_free(b);
        }
}

TEST(read_file) {
        GgufBuilder *b = tiny_llama();
        _cleanup_(gguf_info_freep) GgufInfo *g = NULL;
        _cleanup_free_ char *error = NULL;
        _cleanup_close_ int fd = -1;
        char path[64];

        fd = memfd_create("test-gguf", MFD_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, b->data, b->size), (ssize_t) b->size);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        ASSERT_OK(gguf_read_file(path, &g, &error));
        ASSERT_EQ(g->weights_bytes, 2560U + 4352U + 2304U + 1280U);
        ASSERT_ERROR(gguf_read_file("/nonexistent/model.gguf", &g, &error), ENOENT);
        ASSERT_ERROR(gguf_read_file("/", &g, &error), EISDIR);
        builder_free(b);
}

TEST(type_names) {
        uint32_t t;
        uint64_t n;

        ASSERT_OK(ggml_type_from_name("q8_0", &t));
        ASSERT_EQ(t, 8U);
        ASSERT_OK(ggml_type_from_name("F16", &t));
        ASSERT_EQ(t, 1U);
        ASSERT_ERROR(ggml_type_from_name("q4_2", &t), EINVAL);
        ASSERT_STREQ(ggml_type_name(12), "q4_K");
        ASSERT_NULL(ggml_type_name(4));
        ASSERT_NULL(ggml_type_name(1000));
        ASSERT_OK(ggml_type_nbytes(14, 512, &n));
        ASSERT_EQ(n, 420U);
        ASSERT_ERROR(ggml_type_nbytes(14, 100, &n), EINVAL);
}

DEFINE_TEST_MAIN
