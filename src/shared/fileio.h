/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* File helpers: atomic replacement, bounded reads, directory creation. */

#include <stddef.h>
#include <sys/types.h>

/*
 * Replaces path with content atomically: a temporary file in the same directory
 * (".#<name>XXXXXX"), write, fsync, rename over path, fsync the directory. On any failure
 * the old file is untouched and the temporary file is removed.
 */
int write_file_atomic(const char *path, const void *content, size_t size, mode_t mode);

/* Reads a whole file, refusing files larger than max_size with -EFBIG. NUL-terminates. */
int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size);

/* mkdir -p; existing directories are fine. */
int mkdir_p(const char *path, mode_t mode);

/* unlink() that treats a missing file as success. */
int unlink_if_exists(const char *path);

/* Joins path components with single slashes. Returns NULL on OOM. */
char *path_join(const char *a, const char *b);
