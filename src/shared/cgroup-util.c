/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "cgroup-util.h"
#include "fileio.h"
#include "macro.h"

#define CG_PIDS_MAX 65536U
#define CG_DEPTH_MAX 64U
#define PROC_CGROUP_MAX (64U * 1024U)

static bool is_unit_component(const char *s, size_t n) {
        return (n > strlen(".service") && memcmp(s + n - strlen(".service"), ".service", strlen(".service")) == 0) ||
                (n > strlen(".scope") && memcmp(s + n - strlen(".scope"), ".scope", strlen(".scope")) == 0);
}

/* The deepest unit component of a cgroup path of length n. */
static int unit_from_path(const char *path, size_t n, char **ret) {
        const char *end = path + n;

        while (end > path) {
                const char *start = end;

                while (start > path && start[-1] != '/')
                        start--;
                if (is_unit_component(start, (size_t) (end - start))) {
                        if (*start == '_')
                                start++;
                        *ret = strndup(start, (size_t) (end - start));
                        return *ret ? 1 : -ENOMEM;
                }
                end = start > path ? start - 1 : path;
        }
        *ret = NULL;
        return 0;
}

/* The cgroup2 ("0::") and the name=systemd paths of a /proc/PID/cgroup content, not NUL-ended. */
static void proc_cgroup_paths(const char *content, const char **v2, size_t *v2_len, const char **v1,
                              size_t *v1_len) {
        *v2 = *v1 = NULL;
        *v2_len = *v1_len = 0;
        for (const char *line = content; line && *line;) {
                const char *nl = strchrnul(line, '\n'), *c1, *c2;

                /* hierarchy-ID:controller-list:cgroup-path */
                c1 = memchr(line, ':', (size_t) (nl - line));
                c2 = c1 ? memchr(c1 + 1, ':', (size_t) (nl - c1 - 1)) : NULL;
                if (c2) {
                        if (c1 - line == 1 && line[0] == '0' && c2 == c1 + 1) {
                                *v2 = c2 + 1;
                                *v2_len = (size_t) (nl - *v2);
                        } else if ((size_t) (c2 - c1 - 1) == strlen("name=systemd") &&
                                   strneq(c1 + 1, "name=systemd", strlen("name=systemd"))) {
                                *v1 = c2 + 1;
                                *v1_len = (size_t) (nl - *v1);
                        }
                }
                line = *nl ? nl + 1 : NULL;
        }
}

int cg_unit_from_proc_cgroup(const char *content, char **ret) {
        const char *v2, *v1;
        size_t v2_len, v1_len;

        proc_cgroup_paths(content, &v2, &v2_len, &v1, &v1_len);

        /* In hybrid mode a process systemd does not manage may sit in the cgroup2 root while its
         * name=systemd path says more; in unified mode there is no name=systemd line. */
        if (v2 && !(v2_len == 1 && v2[0] == '/')) {
                int r = unit_from_path(v2, v2_len, ret);
                if (r != 0 || !v1)
                        return r;
        }
        if (v1)
                return unit_from_path(v1, v1_len, ret);
        *ret = NULL;
        return 0;
}

/* /proc/PID/cgroup; -ESRCH when the process is gone. */
static int proc_cgroup_read(pid_t pid, char **ret) {
        char path[64];
        int r;

        (void) snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);
        r = read_full_file(path, PROC_CGROUP_MAX, ret, NULL);
        return r == -ENOENT ? -ESRCH : r;
}

int cg_pid_get_unit(pid_t pid, char **ret) {
        _cleanup_free_ char *content = NULL;
        int r;

        r = proc_cgroup_read(pid, &content);
        if (r < 0)
                return r;
        return cg_unit_from_proc_cgroup(content, ret);
}

int cg_pid_get_path(pid_t pid, char **ret) {
        _cleanup_free_ char *content = NULL;
        const char *v2, *v1;
        size_t v2_len, v1_len;
        int r;

        r = proc_cgroup_read(pid, &content);
        if (r < 0)
                return r;
        proc_cgroup_paths(content, &v2, &v2_len, &v1, &v1_len);
        if (!v2 || (v2_len == 1 && v2[0] == '/')) {
                *ret = NULL;
                return 0;
        }
        *ret = strndup(v2, v2_len);
        return *ret ? 1 : -ENOMEM;
}

static bool is_cgroup2(const char *path) {
        struct statfs fs;

        return statfs(path, &fs) >= 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

const char *cg_unified_mount(void) {
        if (is_cgroup2("/sys/fs/cgroup"))
                return "/sys/fs/cgroup";
        if (is_cgroup2("/sys/fs/cgroup/unified"))
                return "/sys/fs/cgroup/unified";
        return NULL;
}

/* The same, looked up once: where cgroup2 is mounted does not change under a running daemon. */
static const char *cg_unified_mount_cached(void) {
        static const char *mount;
        static bool known;

        if (!known) {
                mount = cg_unified_mount();
                known = true;
        }
        return mount;
}

static const char *cg_systemd_mount(void) {
        struct statfs fs;

        if (statfs("/sys/fs/cgroup/systemd", &fs) >= 0 && fs.f_type == CGROUP_SUPER_MAGIC)
                return "/sys/fs/cgroup/systemd";
        return NULL;
}

int cg_path_get_id(const char *path, uint64_t *ret) {
        union {
                struct file_handle fh;
                uint8_t space[sizeof(struct file_handle) + sizeof(uint64_t)];
        } h = { .fh.handle_bytes = sizeof(uint64_t) };
        _cleanup_free_ char *p = NULL;
        const char *root = cg_unified_mount();
        struct stat st;
        int mnt_id;

        if (!root)
                return -ENOMEDIUM;
        if (asprintf(&p, "%s%s", root, path) < 0)
                return -ENOMEM;

        /* On cgroup2fs the 8-byte file handle is the cgroup id (kernfs node id); that is how
         * systemd and bpftool get it. The inode number equals it on 64-bit kernels: the fallback
         * where file handles are not supported. */
        if (name_to_handle_at(AT_FDCWD, p, &h.fh, &mnt_id, 0) >= 0 && h.fh.handle_bytes == sizeof(uint64_t)) {
                memcpy(ret, h.fh.f_handle, sizeof(uint64_t));
                return 0;
        }
        if (errno != EOPNOTSUPP && errno != EOVERFLOW)
                return -errno;
        if (stat(p, &st) < 0)
                return -errno;
        *ret = (uint64_t) st.st_ino;
        return 0;
}

static int pid_compare(const void *a, const void *b) {
        pid_t x = *(const pid_t *) a, y = *(const pid_t *) b;

        return x < y ? -1 : x > y;
}

static int pids_append(pid_t **pids, size_t *n, pid_t pid) {
        pid_t *p;

        if (*n >= CG_PIDS_MAX)
                return -E2BIG;
        p = reallocarray(*pids, *n + 1, sizeof(pid_t));
        if (!p)
                return -ENOMEM;
        p[(*n)++] = pid;
        *pids = p;
        return 0;
}

static int read_procs(int dir_fd, unsigned depth, pid_t **pids, size_t *n) {
        _cleanup_fclose_ FILE *f = NULL;
        DIR *d;
        int fd, r = 0;
        long v;

        if (depth > CG_DEPTH_MAX)
                return -E2BIG;

        fd = openat(dir_fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "re");
        if (!f) {
                safe_close(fd);
                return -errno;
        }
        while (fscanf(f, "%ld", &v) == 1) {
                r = pids_append(pids, n, (pid_t) v);
                if (r < 0)
                        return r;
        }

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        for (struct dirent *de; (de = readdir(d));) {
                int sub;

                if (de->d_type != DT_DIR || de->d_name[0] == '.')
                        continue;
                sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (sub < 0)
                        continue;       /* removed meanwhile */
                r = read_procs(sub, depth + 1, pids, n);
                safe_close(sub);
                if (r < 0 && r != -ENOENT)
                        break;
                r = 0;
        }
        closedir(d);
        return r;
}

static int get_pids_in(const char *root, const char *path, pid_t **ret, size_t *ret_n) {
        _cleanup_free_ pid_t *pids = NULL;
        _cleanup_free_ char *p = NULL;
        _cleanup_close_ int fd = -1;
        size_t n = 0;
        int r;

        if (asprintf(&p, "%s%s", root, path) < 0)
                return -ENOMEM;
        fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = read_procs(fd, 0, &pids, &n);
        if (r < 0)
                return r;
        if (n > 0)
                qsort(pids, n, sizeof(pid_t), pid_compare);
        *ret = TAKE_PTR(pids);
        *ret_n = n;
        return 0;
}

int cg_path_get_pids(const char *path, pid_t **ret, size_t *ret_n) {
        const char *unified = cg_unified_mount(), *v1 = cg_systemd_mount();
        int r = -ENOMEDIUM;

        if (unified) {
                r = get_pids_in(unified, path, ret, ret_n);
                if (r >= 0 && (*ret_n > 0 || !v1))
                        return r;
                if (r >= 0)
                        *ret = mfree(*ret);
        }
        if (v1)
                r = get_pids_in(v1, path, ret, ret_n);
        return r;
}

static int parse_u64_strict(const char *s, size_t n, uint64_t *ret) {
        uint64_t v = 0;

        if (n == 0 || n > 20)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                if (v > (UINT64_MAX - (uint64_t) (s[i] - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (s[i] - '0');
        }
        *ret = v;
        return 0;
}

int cg_path_get_attribute_u64(const char *path, const char *file, const char *key, uint64_t *ret) {
        const char *unified = cg_unified_mount_cached();
        char full[PATH_MAX], content[4096];
        ssize_t size;
        int fd;

        if (!unified)
                return -ENOMEDIUM;
        if ((size_t) snprintf(full, sizeof(full), "%s%s/%s", unified, path, file) >= sizeof(full))
                return -ENAMETOOLONG;
        /* One read of a small kernel file (these are a few hundred bytes): no allocation, as
         * /metrics reads three per engine at each scrape. */
        fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        size = read(fd, content, sizeof(content) - 1);
        if (size < 0)
                size = -errno;
        (void) close(fd);
        if (size < 0)
                return (int) size;
        content[size] = '\0';

        for (char *line = content, *next; line && *line; line = next) {
                size_t n;

                next = strchr(line, '\n');
                n = next ? (size_t) (next - line) : strlen(line);
                if (next)
                        next++;
                if (!key)
                        return parse_u64_strict(line, n, ret);
                if (n > strlen(key) + 1 && strneq(line, key, strlen(key)) && line[strlen(key)] == ' ')
                        return parse_u64_strict(line + strlen(key) + 1, n - strlen(key) - 1, ret);
        }
        return key ? -ENODATA : -EINVAL;
}
