/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/* File helpers: atomic replacement, bounded reads, directory creation. */

#include <stddef.h>
#include <sys/types.h>

typedef enum WriteFileFlags {
        WRITE_FILE_SYNC = 1 << 0,       /* durable across a power loss: fsync file and directory */
} WriteFileFlags;

/*
 * Replaces path with content atomically: a temporary file in the same directory
 * (".#<name>XXXXXX"), write, rename over path. Readers and a process that dies at any point
 * see the old content or the new, never a mix. WRITE_FILE_SYNC adds an fsync before the rename
 * and one of the directory after it, so that a power loss cannot leave an empty file either;
 * files in the runtime directory (a tmpfs, describing processes that a power loss ends too) do
 * without, since each fsync blocks the event loop for a disk's flush. On any failure the old
 * file is untouched and the temporary file is removed.
 */
int write_file_atomic_flags(const char *path, const void *content, size_t size, mode_t mode,
                            WriteFileFlags flags);

static inline int write_file_atomic(const char *path, const void *content, size_t size, mode_t mode) {
        return write_file_atomic_flags(path, content, size, mode, WRITE_FILE_SYNC);
}

/* Reads a whole file, refusing files larger than max_size with -EFBIG. NUL-terminates. */
int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size);

/* mkdir -p; existing directories are fine (and cost a stat() only). */
int mkdir_p(const char *path, mode_t mode);

/* unlink() that treats a missing file as success. */
int unlink_if_exists(const char *path);

/* Joins path components with single slashes. Returns NULL on OOM. */
char *path_join(const char *a, const char *b);
