/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * File helpers. write_file_atomic() is what makes a handoff file safe to read at any moment:
 * readers see either the old or the new document, never a partial one, and after it returns
 * the new content survives a crash (file and directory entry both synced).
 */

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fileio.h"
#include "macro.h"

static int loop_write(int fd, const void *buf, size_t size) {
        const uint8_t *p = buf;

        while (size > 0) {
                ssize_t k;

                k = write(fd, p, size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0) /* should not happen for regular files; do not spin */
                        return -EIO;

                p += k;
                size -= (size_t) k;
        }
        return 0;
}

static int fsync_directory(const char *dir) {
        _cleanup_close_ int fd = -1;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                return -errno;
        return 0;
}

/* Splits path into a directory (".", "/" or a prefix without trailing slashes) and a last
 * component. A path ending in a slash names no file and is refused. */
static int path_split(const char *path, char **ret_dir, const char **ret_base) {
        const char *slash, *base;
        char *dir;

        if (isempty(path))
                return -EINVAL;

        slash = strrchr(path, '/');
        base = slash ? slash + 1 : path;
        if (isempty(base) || streq(base, ".") || streq(base, ".."))
                return -EINVAL;

        if (!slash)
                dir = strdup(".");
        else {
                const char *e = slash;

                while (e > path && e[-1] == '/')
                        e--;
                dir = e == path ? strdup("/") : strndup(path, (size_t) (e - path));
        }
        if (!dir)
                return -ENOMEM;

        *ret_dir = dir;
        *ret_base = base;
        return 0;
}

int write_file_atomic_flags(const char *path, const void *content, size_t size, mode_t mode,
                            WriteFileFlags flags) {
        _cleanup_free_ char *dir = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -1;
        const char *base;
        int r;

        r = path_split(path, &dir, &base);
        if (r < 0)
                return r;

        if (asprintf(&tmp, "%s/.#%sXXXXXX", dir, base) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }

        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;

        r = loop_write(fd, content, size);
        if (r < 0)
                goto fail;

        /* Explicitly, so that the result does not depend on the umask. */
        if (fchmod(fd, mode) < 0) {
                r = -errno;
                goto fail;
        }

        /* Durable: the data must be on disk before the rename makes it visible under the real
         * name, or a power loss could leave an empty file behind that name. */
        if ((flags & WRITE_FILE_SYNC) && fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }

        r = close(TAKE_FD(fd));
        if (r < 0 && errno != EINTR) {
                r = -errno;
                goto fail;
        }

        if (rename(tmp, path) < 0) {
                r = -errno;
                goto fail;
        }

        /* The rename is durable only once the directory is synced. The new content is already
         * visible; report the failure all the same, since durability was asked for. */
        return (flags & WRITE_FILE_SYNC) ? fsync_directory(dir) : 0;

fail:
        fd = safe_close(fd);
        (void) unlink(tmp);
        return r;
}

int read_full_file(const char *path, size_t max_size, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, allocated;
        struct stat st;

        /* Leave room for the "+ 1"s below; nothing that large fits in memory anyway. */
        max_size = MIN(max_size, SIZE_MAX / 2);

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (S_ISREG(st.st_mode) && (uint64_t) st.st_size > max_size)
                return -EFBIG;

        /* Files in /proc or pipes report no useful size: grow as needed, up to max_size + 1 so
         * that an oversized file is noticed. */
        allocated = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t) st.st_size + 1 : 4096;
        allocated = MIN(allocated, max_size + 1);
        buf = malloc(allocated + 1);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                ssize_t k;

                if (n == allocated) {
                        size_t m;
                        char *p;

                        if (allocated > max_size)
                                return -EFBIG;

                        m = MIN(allocated * 2, max_size + 1);
                        p = realloc(buf, m + 1);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        allocated = m;
                }

                k = read(fd, buf + n, allocated - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }

        if (n > max_size)
                return -EFBIG;

        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = n;
        return 0;
}

static int mkdir_one(const char *path, mode_t mode) {
        struct stat st;

        if (mkdir(path, mode) >= 0)
                return 0;
        if (errno != EEXIST)
                return -errno;

        /* Something is there already: fine if it is (or links to) a directory. */
        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        return 0;
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = NULL;
        struct stat st;
        int r;

        if (isempty(path))
                return -EINVAL;

        /* There already, the common case: a lookup, no mkdir(). A mkdir() that fails with EEXIST
         * still takes the lock of the parent directory, and the ancestors of a runtime directory
         * (/run) can be busy: that was 60-140 ms on the event loop, per handoff file. */
        if (stat(path, &st) >= 0 && S_ISDIR(st.st_mode))
                return 0;

        p = strdup(path);
        if (!p)
                return -ENOMEM;

        /* Create each prefix ending before a slash, skipping the root and repeated slashes. */
        for (char *s = p + 1; *s; s++) {
                if (*s != '/' || s[-1] == '/')
                        continue;

                *s = '\0';
                r = mkdir_one(p, mode);
                *s = '/';
                if (r < 0)
                        return r;
        }

        return mkdir_one(p, mode);
}

int unlink_if_exists(const char *path) {
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

char *path_join(const char *a, const char *b) {
        size_t la, lb;
        char *p;

        if (isempty(a))
                return strdup(strempty(b));
        if (isempty(b))
                return strdup(a);

        la = strlen(a);
        while (la > 1 && a[la - 1] == '/')
                la--;
        while (*b == '/')
                b++;
        lb = strlen(b);

        if (la == 1 && a[0] == '/')
                la = 0; /* "/" + "x" is "/x", not "//x" */

        p = malloc(la + 1 + lb + 1);
        if (!p)
                return NULL;
        memcpy(p, a, la);
        p[la] = '/';
        memcpy(p + la + 1, b, lb);
        p[la + 1 + lb] = '\0';
        return p;
}
