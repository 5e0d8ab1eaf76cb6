/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Enum <-> string tables, as systemd's string-table.h: a `static const char *const
 * <name>_table[]` indexed by the enum, and one macro line that defines
 * <name>_to_string() (NULL outside the table) and <name>_from_string() (the enum's
 * _INVALID value, -EINVAL, for NULL or an unknown string).
 */

#include <errno.h>
#include <sys/types.h>

#include "macro.h"

static inline ssize_t string_table_lookup(const char *const *table, size_t n, const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (streq_ptr(table[i], s))
                        return (ssize_t) i;
        return -EINVAL;
}

#define DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type)                                  \
        const char *name##_to_string(type i) {                                            \
                if ((ssize_t) i < 0 || (size_t) i >= ELEMENTSOF(name##_table))            \
                        return NULL;                                                      \
                return name##_table[i];                                                   \
        }

#define DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(name, type)                                \
        type name##_from_string(const char *s) {                                          \
                return (type) string_table_lookup(name##_table, ELEMENTSOF(name##_table), s); \
        }

#define DEFINE_STRING_TABLE_LOOKUP(name, type)                                            \
        DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type)                                  \
        DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(name, type)
