/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * GGUF (ggml's model file format), read only as far as the tensor infos: header ("GGUF",
 * version, tensor count, key/value count, little endian), the key/value pairs, then one info
 * per tensor (name, dimensions, type, data offset). A cursor over the mapped bytes refuses every
 * read past the end; counts are never trusted for allocation, only walked, so the work is
 * bounded by the file's size. Versions 2 and 3 (64-bit counts) are read; version 1 (32-bit
 * counts, 2023) is refused.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "gguf.h"
#include "shared/string-util.h"

#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NESTING 2              /* an array of arrays, no deeper */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_KV 65536

enum {
        GGUF_TYPE_UINT8 = 0,
        GGUF_TYPE_INT8 = 1,
        GGUF_TYPE_UINT16 = 2,
        GGUF_TYPE_INT16 = 3,
        GGUF_TYPE_UINT32 = 4,
        GGUF_TYPE_INT32 = 5,
        GGUF_TYPE_FLOAT32 = 6,
        GGUF_TYPE_BOOL = 7,
        GGUF_TYPE_STRING = 8,
        GGUF_TYPE_ARRAY = 9,
        GGUF_TYPE_UINT64 = 10,
        GGUF_TYPE_INT64 = 11,
        GGUF_TYPE_FLOAT64 = 12,
};

/* ggml's type traits: elements per block and bytes per block (ggml-common.h). */
typedef struct GgmlTypeTraits {
        const char *name;
        uint32_t block;
        uint32_t size;
} GgmlTypeTraits;

static const GgmlTypeTraits ggml_types[_GGML_TYPE_MAX] = {
        [0]  = { "f32",     1,   4   },
        [1]  = { "f16",     1,   2   },
        [2]  = { "q4_0",    32,  18  },
        [3]  = { "q4_1",    32,  20  },
        [6]  = { "q5_0",    32,  22  },
        [7]  = { "q5_1",    32,  24  },
        [8]  = { "q8_0",    32,  34  },
        [9]  = { "q8_1",    32,  36  },
        [10] = { "q2_K",    256, 84  },
        [11] = { "q3_K",    256, 110 },
        [12] = { "q4_K",    256, 144 },
        [13] = { "q5_K",    256, 176 },
        [14] = { "q6_K",    256, 210 },
        [15] = { "q8_K",    256, 292 },
        [16] = { "iq2_xxs", 256, 66  },
        [17] = { "iq2_xs",  256, 74  },
        [18] = { "iq3_xxs", 256, 98  },
        [19] = { "iq1_s",   256, 50  },
        [20] = { "iq4_nl",  32,  18  },
        [21] = { "iq3_s",   256, 110 },
        [22] = { "iq2_s",   256, 82  },
        [23] = { "iq4_xs",  256, 136 },
        [24] = { "i8",      1,   1   },
        [25] = { "i16",     1,   2   },
        [26] = { "i32",     1,   4   },
        [27] = { "i64",     1,   8   },
        [28] = { "f64",     1,   8   },
        [29] = { "iq1_m",   256, 56  },
        [30] = { "bf16",    1,   2   },
        [34] = { "tq1_0",   256, 54  },
        [35] = { "tq2_0",   256, 66  },
        [39] = { "mxfp4",   32,  17  },
};

const char *ggml_type_name(uint32_t type) {
        return type < _GGML_TYPE_MAX ? ggml_types[type].name : NULL;
}

int ggml_type_from_name(const char *name, uint32_t *ret) {
        for (uint32_t t = 0; name && t < _GGML_TYPE_MAX; t++)
                if (ggml_types[t].name && strcasecmp(ggml_types[t].name, name) == 0) {
                        *ret = t;
                        return 0;
                }
        return -EINVAL;
}

int ggml_type_nbytes(uint32_t type, uint64_t n, uint64_t *ret) {
        const GgmlTypeTraits *t;
        uint64_t bytes;

        if (type >= _GGML_TYPE_MAX || !ggml_types[type].name)
                return -EINVAL;
        t = &ggml_types[type];
        if (n % t->block != 0 || __builtin_mul_overflow(n / t->block, (uint64_t) t->size, &bytes))
                return -EINVAL;
        *ret = bytes;
        return 0;
}

GgufInfo *gguf_info_free(GgufInfo *g) {
        if (!g)
                return NULL;
        free(g->architecture);
        return mfree(g);
}

/* A value of interest found before general.architecture was known: "<arch>.<suffix>". */
typedef struct GgufKey {
        const char *key;                /* points into the file */
        size_t key_len;
        uint64_t value;                 /* a scalar; for an array, the largest element */
        uint64_t sum;                   /* the sum of an array's elements (= value for a scalar) */
        uint64_t count;                 /* array length, 1 for a scalar */
} GgufKey;

typedef struct GgufReader {
        const uint8_t *data;
        size_t size;
        size_t pos;
        char **error;
        GgufKey *keys;                  /* at most one per key/value pair */
        size_t n_keys;
} GgufReader;

_printf_(2, 3)
static int reader_error(GgufReader *r, const char *format, ...) {
        _cleanup_free_ char *what = NULL;
        va_list ap;
        int k;

        va_start(ap, format);
        k = vasprintf(&what, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        if (r->error && asprintf(r->error, "GGUF: %s (at byte %zu of %zu)", what, r->pos, r->size) < 0) {
                *r->error = NULL;
                return -ENOMEM;
        }
        return -EBADMSG;
}

static int read_bytes(GgufReader *r, size_t n, const uint8_t **ret, const char *what) {
        *ret = NULL;
        if (n > r->size - r->pos)
                return reader_error(r, "%s: %zu bytes past the end of the file", what, n - (r->size - r->pos));
        *ret = r->data + r->pos;
        r->pos += n;
        return 0;
}

static int read_uint(GgufReader *r, size_t n, uint64_t *ret, const char *what) {
        const uint8_t *p;
        uint64_t v = 0;
        int k;

        *ret = 0;
        k = read_bytes(r, n, &p, what);
        if (k < 0 || !p)
                return k < 0 ? k : -EBADMSG;
        for (size_t i = 0; i < n; i++)          /* little endian */
                v |= (uint64_t) p[i] << (8 * i);
        *ret = v;
        return 0;
}

static int read_string(GgufReader *r, const char **ret, size_t *ret_len, const char *what) {
        const uint8_t *p;
        uint64_t n;
        int k;

        k = read_uint(r, 8, &n, what);
        if (k < 0)
                return k;
        if (n > r->size - r->pos)
                return reader_error(r, "%s: a string of %" PRIu64 " bytes does not fit in the file", what, n);
        k = read_bytes(r, (size_t) n, &p, what);
        if (k < 0)
                return k;
        *ret = (const char *) p;
        *ret_len = (size_t) n;
        return 0;
}

static size_t scalar_size(uint32_t type) {
        switch (type) {
        case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL:
                return 1;
        case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16:
                return 2;
        case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32:
                return 4;
        case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64:
                return 8;
        default:
                return 0;
        }
}

static bool type_is_signed(uint32_t type) {
        return type == GGUF_TYPE_INT8 || type == GGUF_TYPE_INT16 || type == GGUF_TYPE_INT32 ||
               type == GGUF_TYPE_INT64;
}

static bool type_is_integer(uint32_t type) {
        return scalar_size(type) > 0 && type != GGUF_TYPE_FLOAT32 && type != GGUF_TYPE_FLOAT64 &&
               type != GGUF_TYPE_BOOL;
}

/* A value: a non-negative integer scalar into ret->value (UINT64_MAX for anything else), strings
 * and arrays walked. For an array of non-negative integers, the largest element, the sum and the
 * count (else value UINT64_MAX and the count). */
static int read_value(GgufReader *r, uint32_t type, unsigned depth, GgufKey *ret, const char *key) {
        uint64_t v;
        int k;

        *ret = (GgufKey) { .value = UINT64_MAX, .count = 1 };

        if (type == GGUF_TYPE_STRING) {
                const char *s;
                size_t n;

                return read_string(r, &s, &n, key);
        }
        if (type == GGUF_TYPE_ARRAY) {
                uint64_t elem_type, count, max = 0, sum = 0;
                size_t esize;
                bool valid;

                if (depth >= GGUF_MAX_NESTING)
                        return reader_error(r, "%s: arrays nested deeper than %d", key, GGUF_MAX_NESTING);
                k = read_uint(r, 4, &elem_type, key);
                if (k >= 0)
                        k = read_uint(r, 8, &count, key);
                if (k < 0)
                        return k;
                *ret = (GgufKey) { .value = UINT64_MAX, .count = count };
                valid = count > 0 && type_is_integer((uint32_t) elem_type);
                esize = scalar_size((uint32_t) elem_type);
                if (elem_type > UINT32_MAX || (esize == 0 && elem_type != GGUF_TYPE_STRING &&
                                               elem_type != GGUF_TYPE_ARRAY))
                        return reader_error(r, "%s: unknown array element type %" PRIu64, key, elem_type);
                /* Every element takes at least one byte: a count larger than what is left is a lie. */
                if (count > r->size - r->pos)
                        return reader_error(r, "%s: an array of %" PRIu64 " elements does not fit in the file",
                                            key, count);
                for (uint64_t i = 0; i < count; i++) {
                        GgufKey e;

                        k = read_value(r, (uint32_t) elem_type, depth + 1, &e, key);
                        if (k < 0)
                                return k;
                        if (!valid)
                                continue;
                        if (e.value == UINT64_MAX || __builtin_add_overflow(sum, e.value, &sum))
                                valid = false;
                        max = MAX(max, e.value);
                }
                if (valid)
                        *ret = (GgufKey) { .value = max, .sum = sum, .count = count };
                return 0;
        }
        if (scalar_size(type) == 0)
                return reader_error(r, "%s: unknown value type %" PRIu32, key, type);

        k = read_uint(r, scalar_size(type), &v, key);
        if (k < 0)
                return k;
        if (!type_is_integer(type))
                return 0;
        if (type_is_signed(type)) {
                unsigned bits = 8 * (unsigned) scalar_size(type);

                if (v >> (bits - 1) & 1)        /* negative */
                        return 0;
        }
        ret->value = ret->sum = v;
        return 0;
}

static bool key_has_suffix(const char *key, size_t len, const char *suffix) {
        size_t n = strlen(suffix);

        return len > n && key[len - n - 1] == '.' && memcmp(key + len - n, suffix, n) == 0;
}

static const char *const interesting_suffixes[] = {
        "block_count",
        "context_length",
        "embedding_length",
        "attention.head_count",
        "attention.head_count_kv",
        "attention.key_length",
        "attention.value_length",
};

/* "<arch>.<suffix>" among the keys seen; NULL when absent. */
static const GgufKey *find_key(const GgufReader *r, const char *arch, const char *suffix) {
        size_t a = strlen(arch), s = strlen(suffix);

        for (size_t i = 0; i < r->n_keys; i++) {
                const GgufKey *k = &r->keys[i];

                if (k->key_len == a + 1 + s && memcmp(k->key, arch, a) == 0 && k->key[a] == '.' &&
                    memcmp(k->key + a + 1, suffix, s) == 0)
                        return k;
        }
        return NULL;
}

static int get_u32(GgufReader *r, const char *arch, const char *suffix, bool mandatory, uint32_t *ret) {
        const GgufKey *k = find_key(r, arch, suffix);

        if (!k) {
                if (mandatory)
                        return reader_error(r, "%s.%s is missing", arch, suffix);
                return 0;
        }
        if (k->count != 1 || k->value > UINT32_MAX)
                return reader_error(r, "%s.%s must be an integer in 0..%" PRIu32, arch, suffix, UINT32_MAX);
        *ret = (uint32_t) k->value;
        return 0;
}

static int parse_kv(GgufReader *r, GgufInfo *g, uint32_t *alignment) {
        for (uint64_t i = 0; i < g->n_kv; i++) {
                _cleanup_free_ char *name = NULL;
                const char *key;
                size_t key_len;
                uint64_t type;
                GgufKey v;
                int k;

                k = read_string(r, &key, &key_len, "key");
                if (k < 0)
                        return k;
                name = strndup(key, MIN(key_len, (size_t) 128));
                if (!name)
                        return -ENOMEM;
                if (strlen(name) != MIN(key_len, (size_t) 128))
                        return reader_error(r, "key %" PRIu64 " contains a NUL byte", i);
                k = read_uint(r, 4, &type, name);
                if (k < 0)
                        return k;
                if (type > UINT32_MAX)
                        return reader_error(r, "%s: unknown value type", name);

                if (key_len == strlen("general.architecture") && memcmp(key, "general.architecture", key_len) == 0) {
                        const char *s;
                        size_t n;

                        if (type != GGUF_TYPE_STRING)
                                return reader_error(r, "general.architecture must be a string");
                        k = read_string(r, &s, &n, name);
                        if (k < 0)
                                return k;
                        if (n == 0 || n > 64 || memchr(s, '\0', n))
                                return reader_error(r, "general.architecture must be 1 to 64 characters");
                        free(g->architecture);
                        g->architecture = strndup(s, n);
                        if (!g->architecture)
                                return -ENOMEM;
                        continue;
                }

                k = read_value(r, (uint32_t) type, 0, &v, name);
                if (k < 0)
                        return k;

                if (streq(name, "general.alignment")) {
                        if (type != GGUF_TYPE_UINT32 || v.value == 0 || (v.value & (v.value - 1)) != 0)
                                return reader_error(r, "general.alignment must be a power of two (uint32)");
                        *alignment = (uint32_t) v.value;
                } else if (streq(name, "tokenizer.ggml.tokens") && type == GGUF_TYPE_ARRAY)
                        g->n_vocab = v.count;
                else
                        for (size_t s = 0; s < ELEMENTSOF(interesting_suffixes); s++)
                                if (key_has_suffix(key, key_len, interesting_suffixes[s])) {
                                        v.key = key;
                                        v.key_len = key_len;
                                        r->keys[r->n_keys++] = v;
                                        break;
                                }
        }
        return 0;
}

static int parse_tensors(GgufReader *r, GgufInfo *g, uint32_t alignment) {
        uint64_t data_start = 0, data_size = 0;
        size_t infos_start = r->pos;

        /* The first pass finds where the infos end: the data section begins there (after padding),
         * and the second checks each tensor's data against it. */
        for (int pass = 0; pass < 2; pass++) {
                if (pass == 1) {
                        data_start = r->pos;
                        r->pos = infos_start;
                        if (data_start % alignment != 0)
                                data_start += alignment - data_start % alignment;
                        if (data_start > r->size)
                                return reader_error(r, "the tensor data section starts past the end of the file");
                        data_size = r->size - data_start;
                }

                for (uint64_t i = 0; i < g->n_tensors; i++) {
                        uint64_t n_dims, type, offset, elements = 1, bytes, end;
                        const char *name;
                        size_t name_len;
                        int k;

                        k = read_string(r, &name, &name_len, "tensor name");
                        if (k >= 0)
                                k = read_uint(r, 4, &n_dims, "tensor dimensions");
                        if (k < 0)
                                return k;
                        if (n_dims == 0 || n_dims > GGUF_MAX_DIMS)
                                return reader_error(r, "tensor %" PRIu64 ": %" PRIu64 " dimensions, expected 1 to %d",
                                                    i, n_dims, GGUF_MAX_DIMS);
                        for (uint64_t d = 0; d < n_dims; d++) {
                                uint64_t ne;

                                k = read_uint(r, 8, &ne, "tensor shape");
                                if (k < 0)
                                        return k;
                                if (ne > INT64_MAX || __builtin_mul_overflow(elements, ne, &elements))
                                        return reader_error(r, "tensor %" PRIu64 ": its shape overflows", i);
                        }
                        k = read_uint(r, 4, &type, "tensor type");
                        if (k >= 0)
                                k = read_uint(r, 8, &offset, "tensor offset");
                        if (k < 0)
                                return k;
                        if (pass == 0)
                                continue;

                        if (type > UINT32_MAX || ggml_type_nbytes((uint32_t) type, elements, &bytes) < 0)
                                return reader_error(r, "tensor %" PRIu64 ": unknown type %" PRIu64 " or a shape "
                                                    "that is not a whole number of its blocks", i, type);
                        if (offset % alignment != 0)
                                return reader_error(r, "tensor %" PRIu64 ": data offset %" PRIu64 " is not aligned "
                                                    "to %" PRIu32, i, offset, alignment);
                        if (__builtin_add_overflow(offset, bytes, &end) || end > data_size)
                                return reader_error(r, "tensor %" PRIu64 ": its %" PRIu64 " bytes at offset %" PRIu64
                                                    " lie past the end of the file", i, bytes, offset);
                        /* Tensors may not overlap, so the sum is at most the data section: no overflow. */
                        if (__builtin_add_overflow(g->weights_bytes, bytes, &g->weights_bytes))
                                return reader_error(r, "the tensors' sizes overflow");
                }
        }
        return 0;
}

int gguf_parse(const void *data, size_t size, GgufInfo **ret, char **ret_error) {
        _cleanup_(gguf_info_freep) GgufInfo *g = NULL;
        _cleanup_free_ GgufKey *keys = NULL;
        GgufReader r = { .data = data, .size = size, .error = ret_error };
        uint32_t alignment = GGUF_DEFAULT_ALIGNMENT;
        const uint8_t *magic;
        uint64_t v;
        int k;

        g = calloc(1, sizeof(GgufInfo));
        if (!g)
                return -ENOMEM;

        k = read_bytes(&r, 4, &magic, "magic");
        if (k < 0 || !magic)
                return k < 0 ? k : -EBADMSG;
        if (memcmp(magic, "GGUF", 4) != 0)
                return reader_error(&r, "not a GGUF file (no \"GGUF\" magic)");
        k = read_uint(&r, 4, &v, "version");
        if (k < 0)
                return k;
        if (v != 2 && v != 3)
                return reader_error(&r, "version %" PRIu64 " is not supported (2 and 3 are)", v);
        g->version = (uint32_t) v;
        k = read_uint(&r, 8, &g->n_tensors, "tensor count");
        if (k >= 0)
                k = read_uint(&r, 8, &g->n_kv, "key/value count");
        if (k < 0)
                return k;
        /* A key/value pair takes at least 13 bytes, a tensor info at least 29: cap before walking.
         * Real models have some dozens of keys; the cap bounds the table below. */
        if (g->n_kv > GGUF_MAX_KV || g->n_kv > (size - r.pos) / 13 || g->n_tensors > (size - r.pos) / 29)
                return reader_error(&r, "%" PRIu64 " key/value pairs and %" PRIu64 " tensors cannot fit in the "
                                    "file", g->n_kv, g->n_tensors);

        keys = calloc(g->n_kv ?: 1, sizeof(GgufKey));
        if (!keys)
                return -ENOMEM;
        r.keys = keys;

        k = parse_kv(&r, g, &alignment);
        if (k < 0)
                return k;
        k = parse_tensors(&r, g, alignment);
        if (k < 0)
                return k;

        if (!g->architecture)
                return reader_error(&r, "general.architecture is missing");
        k = get_u32(&r, g->architecture, "block_count", true, &g->n_layer);
        if (k >= 0)
                k = get_u32(&r, g->architecture, "context_length", false, &g->n_ctx_train);
        if (k >= 0)
                k = get_u32(&r, g->architecture, "embedding_length", false, &g->n_embd);
        if (k >= 0)
                k = get_u32(&r, g->architecture, "attention.head_count", false, &g->n_head);
        if (k >= 0)
                k = get_u32(&r, g->architecture, "attention.key_length", false, &g->key_length);
        if (k >= 0)
                k = get_u32(&r, g->architecture, "attention.value_length", false, &g->value_length);
        if (k < 0)
                return k;

        /* head_count_kv: a number, or one per layer. Absent: as many as the query heads. */
        {
                const GgufKey *kv = find_key(&r, g->architecture, "attention.head_count_kv");

                if (kv && (kv->value > UINT32_MAX || (kv->count != 1 && kv->count != g->n_layer)))
                        return reader_error(&r, "%s.attention.head_count_kv must be a number or one per layer",
                                            g->architecture);
                g->n_head_kv = kv ? (uint32_t) kv->value : g->n_head;
                g->n_head_kv_sum = kv && kv->count != 1 ? kv->sum : (uint64_t) g->n_head_kv * g->n_layer;
        }
        if (g->n_head > 0 && g->key_length == 0)
                g->key_length = g->n_embd / g->n_head;
        if (g->n_head > 0 && g->value_length == 0)
                g->value_length = g->n_embd / g->n_head;

        *ret = TAKE_PTR(g);
        return 0;
}

int gguf_read_file(const char *path, GgufInfo **ret, char **ret_error) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        void *p;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return S_ISDIR(st.st_mode) ? -EISDIR : -EBADMSG;
        if (st.st_size == 0 || (uint64_t) st.st_size > SIZE_MAX)
                return -EBADMSG;
        /* Only the pages of the header are touched; the tensor data stays on disk. */
        p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        r = gguf_parse(p, (size_t) st.st_size, ret, ret_error);
        (void) munmap(p, (size_t) st.st_size);
        return r;
}

int gguf_estimate_vram(const GgufInfo *g, uint32_t n_ctx, uint32_t kv_type, VramEstimate *ret, char **ret_error) {
        unsigned __int128 kv_elements, total;
        uint64_t per_token_elements, kv_bytes;

        if (n_ctx == 0)
                n_ctx = g->n_ctx_train;
        if (n_ctx == 0) {
                if (asprintf(ret_error, "the model states no context_length; give the context size") < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        if (!ggml_type_name(kv_type)) {
                if (asprintf(ret_error, "unknown KV cache type %" PRIu32, kv_type) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }

        /* sum over layers of n_head_kv(l) * (key_length + value_length), per token */
        per_token_elements = g->n_head_kv_sum * ((uint64_t) g->key_length + g->value_length);
        kv_elements = (unsigned __int128) per_token_elements * n_ctx;
        /* Quantized cache types: whole blocks (the row of one head is a multiple of the block). */
        {
                uint64_t block = ggml_types[kv_type].block, size = ggml_types[kv_type].size;
                unsigned __int128 b = (kv_elements + block - 1) / block * size;

                if (b > UINT64_MAX / 4) {
                        if (asprintf(ret_error, "the KV cache of this model at %" PRIu32 " tokens overflows", n_ctx) < 0)
                                *ret_error = NULL;
                        return -EINVAL;
                }
                kv_bytes = (uint64_t) b;
        }

        *ret = (VramEstimate) {
                .n_ctx = n_ctx,
                .weights = g->weights_bytes,
                .kv_cache = kv_bytes,
                .compute = GGUF_COMPUTE_MARGIN_BASE + MIN(g->n_vocab, (uint64_t) UINT32_MAX) * GGUF_COMPUTE_UBATCH * 4,
        };
        total = (unsigned __int128) ret->weights + ret->kv_cache + ret->compute;
        ret->total = total > UINT64_MAX ? UINT64_MAX : (uint64_t) total;
        return 0;
}
