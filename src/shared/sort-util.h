/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* Sorted arrays: the binary search that also says where a missing element goes. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Binary search of base[0..n), elements of size bytes sorted by compare(key, element), which
 * returns < 0, 0 or > 0 as strcmp() does. true and *ret_idx the index of an element equal to
 * key; false and *ret_idx the index at which key would be inserted to keep the order (bsearch(3)
 * says only "not found").
 */
static inline bool bsearch_index(const void *key, const void *base, size_t n, size_t size,
                                 int (*compare)(const void *key, const void *element), size_t *ret_idx) {
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = compare(key, (const uint8_t *) base + mid * size);

                if (c == 0) {
                        *ret_idx = mid;
                        return true;
                }
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        *ret_idx = lo;
        return false;
}
