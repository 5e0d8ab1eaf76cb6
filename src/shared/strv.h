/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* NULL-terminated string vectors, as used for argv, environment blocks and flags. */

#include <stddef.h>

#include "macro.h"

char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)

size_t strv_length(char * const *l);
char **strv_copy(char * const *l);
/* Appends a copy of value. Returns -ENOMEM or 0. */
int strv_extend(char ***l, const char *value);
/* Appends value itself, taking ownership on success only. */
int strv_push(char ***l, char *value);
bool strv_contains(char * const *l, const char *s);
/* Same strings in the same order; NULL equals the empty vector. */
bool strv_equal(char * const *a, char * const *b);

/* A NULL-terminated literal vector, for passing constant lists. */
#define STRV_MAKE(...) ((char **) ((const char *[]) { __VA_ARGS__, NULL }))
