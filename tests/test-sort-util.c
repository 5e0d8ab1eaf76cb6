/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "macro.h"
#include "sort-util.h"
#include "test-util.h"

static int compare_int(const void *key, const void *element) {
        int a = *(const int *) key, b = *(const int *) element;

        return a < b ? -1 : a > b;
}

static size_t find(const int *a, size_t n, int key, bool found) {
        size_t i = 4711;

        ASSERT_EQ(bsearch_index(&key, a, n, sizeof(int), compare_int, &i), found);
        return i;
}

TEST(bsearch_index_empty) {
        ASSERT_EQ(find(NULL, 0, 3, false), 0);
}

TEST(bsearch_index_found) {
        static const int a[] = { 1, 3, 5, 7, 9 };

        for (size_t i = 0; i < ELEMENTSOF(a); i++)
                ASSERT_EQ(find(a, ELEMENTSOF(a), a[i], true), i);
}

TEST(bsearch_index_insertion_point) {
        static const int a[] = { 1, 3, 5, 7, 9 };

        ASSERT_EQ(find(a, ELEMENTSOF(a), 0, false), 0);
        ASSERT_EQ(find(a, ELEMENTSOF(a), 2, false), 1);
        ASSERT_EQ(find(a, ELEMENTSOF(a), 6, false), 3);
        ASSERT_EQ(find(a, ELEMENTSOF(a), 8, false), 4);
        ASSERT_EQ(find(a, ELEMENTSOF(a), 10, false), 5);
        ASSERT_EQ(find(a, 1, 1, true), 0);
        ASSERT_EQ(find(a, 1, 2, false), 1);
}

DEFINE_TEST_MAIN
