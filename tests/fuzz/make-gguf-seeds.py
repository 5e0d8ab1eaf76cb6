#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes the seed corpus of fuzz-gguf (tests/fuzz/fuzz-gguf/): small GGUF files, valid and not.

    tests/fuzz/make-gguf-seeds.py tests/fuzz/fuzz-gguf
"""
import os
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
          U64: "<Q", I64: "<q", F64: "<d"}


def string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == STRING:
        return string(v)
    if t == ARRAY:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(value(et, i) for i in items)
    return struct.pack(SCALAR[t], v)


def gguf(kvs, tensors, version=3, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, shape, ggml type, nbytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += string(k) + struct.pack("<I", t) + value(t, v)
    offset = 0
    for name, shape, gt, nbytes in tensors:
        out += string(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        out += struct.pack("<IQ", gt, offset)
        offset += (nbytes + alignment - 1) // alignment * alignment
    out += b"\0" * (-len(out) % alignment)
    return out + b"\0" * offset


def llama(version=3):
    kvs = [("general.architecture", STRING, "llama"), ("llama.block_count", U32, 2),
           ("llama.context_length", U32, 4096), ("llama.embedding_length", U32, 64),
           ("llama.attention.head_count", U32, 8), ("llama.attention.head_count_kv", U32, 2),
           ("tokenizer.ggml.tokens", ARRAY, (STRING, ["a", "b", "<s>"]))]
    tensors = [("token_embd.weight", [64, 3], 0, 64 * 3 * 4), ("blk.0.attn_q.weight", [64, 64], 8, 64 * 64 // 32 * 34),
               ("output.weight", [64, 3], 1, 64 * 3 * 2)]
    return gguf(kvs, tensors, version)


def main():
    d = sys.argv[1]
    os.makedirs(d, exist_ok=True)
    seeds = {
        "llama-v3.gguf": llama(),
        "llama-v2.gguf": llama(2),
        "truncated.gguf": llama()[:300],
        "per-layer-kv.gguf": gguf([("general.architecture", STRING, "phi"), ("phi.block_count", U32, 2),
                                   ("phi.attention.head_count_kv", ARRAY, (U32, [1, 4])),
                                   ("phi.attention.key_length", U32, 16), ("general.alignment", U32, 64),
                                   ("nested", ARRAY, (ARRAY, [(I8, [-1, 2])]))], [], alignment=64),
        "huge-counts.gguf": b"GGUF" + struct.pack("<IQQ", 3, 2**63, 2**63),
        "tensor-past-end.gguf": gguf([("general.architecture", STRING, "llama"), ("llama.block_count", U32, 1)],
                                     [("t", [1 << 20, 1 << 20], 0, 32)]),
        "every-type.gguf": gguf([("general.architecture", STRING, "x"), ("x.block_count", U64, 1)] +
                                [("k%d" % t, t, v) for t, v in [(U8, 1), (I8, -1), (U16, 2), (I16, -2), (I32, -3),
                                                                (F32, 1.5), (BOOL, True), (I64, -4), (F64, 2.5)]],
                                [("q", [256], 14, 210), ("b", [32, 2], 39, 34)]),
    }
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
