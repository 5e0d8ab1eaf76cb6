/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "shared/fileio.h"
#include "shared/macro.h"
#include "test-util.h"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void rm_rf(const char *path) {
        (void) chmod(path, 0755);
        ASSERT_OK(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS));
}

static char *make_tmpdir(void) {
        char *d = strdup("/tmp/test-fileio-XXXXXX");

        ASSERT_NOT_NULL(d);
        ASSERT_NOT_NULL(mkdtemp(d));
        return d;
}

static char *read_string(const char *path) {
        char *s = NULL;
        size_t n;

        ASSERT_OK(read_full_file(path, 1024 * 1024, &s, &n));
        ASSERT_EQ(strlen(s), n);
        return s;
}

/* Counts entries whose name starts with ".#", i.e. leftover temporary files. */
static unsigned count_temp_files(const char *dir) {
        struct dirent *de;
        unsigned n = 0;
        DIR *d;

        d = opendir(dir);
        ASSERT_NOT_NULL(d);
        while ((de = readdir(d)))
                if (strneq(de->d_name, ".#", 2))
                        n++;
        closedir(d);
        return n;
}

static mode_t file_mode(const char *path) {
        struct stat st;

        ASSERT_OK(stat(path, &st));
        return st.st_mode & 07777;
}

TEST(write_file_atomic_replaces) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = NULL, *a = NULL, *b = NULL;

        path = path_join(dir, "file.json");
        ASSERT_NOT_NULL(path);

        ASSERT_OK(write_file_atomic(path, "first", 5, 0644));
        a = read_string(path);
        ASSERT_STREQ(a, "first");
        ASSERT_EQ(file_mode(path), 0644);

        ASSERT_OK(write_file_atomic(path, "second, longer", 14, 0600));
        b = read_string(path);
        ASSERT_STREQ(b, "second, longer");
        ASSERT_EQ(file_mode(path), 0600);

        ASSERT_EQ(count_temp_files(dir), 0);
        rm_rf(dir);
}

TEST(write_file_atomic_empty_and_binary) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = NULL, *s = NULL;
        const char bin[] = { 'a', '\0', 'b' };
        size_t n;

        path = path_join(dir, "f");
        ASSERT_OK(write_file_atomic(path, "", 0, 0644));
        s = read_string(path);
        ASSERT_STREQ(s, "");
        s = mfree(s);

        ASSERT_OK(write_file_atomic(path, bin, sizeof(bin), 0644));
        ASSERT_OK(read_full_file(path, 100, &s, &n));
        ASSERT_EQ(n, 3);
        ASSERT_TRUE(memcmp(s, bin, 3) == 0);
        ASSERT_EQ(s[3], '\0');
        rm_rf(dir);
}

TEST(write_file_atomic_mode_ignores_umask) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = NULL;
        mode_t old;

        path = path_join(dir, "f");
        old = umask(0077);
        ASSERT_OK(write_file_atomic(path, "x", 1, 0644));
        umask(old);
        ASSERT_EQ(file_mode(path), 0644);
        rm_rf(dir);
}

TEST(write_file_atomic_relative_path) {
        _cleanup_free_ char *dir = make_tmpdir(), *s = NULL, *path = NULL;
        int cwd;

        cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_TRUE(cwd >= 0);
        ASSERT_OK(chdir(dir));
        ASSERT_OK(write_file_atomic("rel.txt", "rel", 3, 0644));
        ASSERT_OK(fchdir(cwd));
        close(cwd);

        path = path_join(dir, "rel.txt");
        s = read_string(path);
        ASSERT_STREQ(s, "rel");
        ASSERT_EQ(count_temp_files(dir), 0);
        rm_rf(dir);
}

TEST(write_file_atomic_invalid_path) {
        ASSERT_ERROR(write_file_atomic("", "x", 1, 0644), EINVAL);
        ASSERT_ERROR(write_file_atomic("/tmp/", "x", 1, 0644), EINVAL);
        ASSERT_ERROR(write_file_atomic("/tmp/..", "x", 1, 0644), EINVAL);
        ASSERT_ERROR(write_file_atomic("/nonexistent-dir-for-test/f", "x", 1, 0644), ENOENT);
}

/* The rename fails when the target is a non-empty directory: the temporary file must go. */
TEST(write_file_atomic_rename_failure) {
        _cleanup_free_ char *dir = make_tmpdir(), *target = NULL, *inner = NULL, *s = NULL;

        target = path_join(dir, "target");
        inner = path_join(target, "keep");
        ASSERT_OK(mkdir(target, 0755));
        ASSERT_OK(write_file_atomic(inner, "kept", 4, 0644));

        ASSERT_TRUE(write_file_atomic(target, "new", 3, 0644) < 0);
        ASSERT_EQ(count_temp_files(dir), 0);
        s = read_string(inner);
        ASSERT_STREQ(s, "kept");
        rm_rf(dir);
}

/* A write that fails half way (here: RLIMIT_FSIZE, as a full disk would) leaves the old
 * content in place and no temporary file behind. */
TEST(write_file_atomic_write_failure) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = NULL, *s = NULL, *big = NULL;
        struct rlimit old, rl;
        void (*old_handler)(int);
        int r;

        path = path_join(dir, "f");
        ASSERT_OK(write_file_atomic(path, "old content", 11, 0644));

        big = malloc(64 * 1024);
        ASSERT_NOT_NULL(big);
        memset(big, 'x', 64 * 1024);

        ASSERT_OK(getrlimit(RLIMIT_FSIZE, &old));
        rl = old;
        rl.rlim_cur = 4096;
        old_handler = signal(SIGXFSZ, SIG_IGN);
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &rl));
        r = write_file_atomic(path, big, 64 * 1024, 0644);
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &old));
        signal(SIGXFSZ, old_handler);

        ASSERT_ERROR(r, EFBIG);
        s = read_string(path);
        ASSERT_STREQ(s, "old content");
        ASSERT_EQ(file_mode(path), 0644);
        ASSERT_EQ(count_temp_files(dir), 0);
        rm_rf(dir);
}

/* Without CAP_DAC_OVERRIDE a read-only directory makes the temporary file impossible. */
TEST(write_file_atomic_readonly_dir) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = NULL, *s = NULL;

        path = path_join(dir, "f");
        ASSERT_OK(write_file_atomic(path, "old", 3, 0644));

        if (geteuid() == 0) {
                fprintf(stderr, "running as root, skipping the read-only directory case\n");
                rm_rf(dir);
                return;
        }

        ASSERT_OK(chmod(dir, 0555));
        ASSERT_ERROR(write_file_atomic(path, "new", 3, 0644), EACCES);
        ASSERT_OK(chmod(dir, 0755));
        s = read_string(path);
        ASSERT_STREQ(s, "old");
        ASSERT_EQ(count_temp_files(dir), 0);
        rm_rf(dir);
}

TEST(read_full_file_limits) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = NULL, *s = NULL, *d = NULL;
        char buf[100];
        size_t n = 0;

        memset(buf, 'a', sizeof(buf));
        path = path_join(dir, "f");
        ASSERT_OK(write_file_atomic(path, buf, sizeof(buf), 0644));

        ASSERT_ERROR(read_full_file(path, 99, &s, &n), EFBIG);
        ASSERT_NULL(s);
        ASSERT_ERROR(read_full_file(path, 0, &s, &n), EFBIG);

        ASSERT_OK(read_full_file(path, 100, &s, &n));
        ASSERT_EQ(n, 100);
        ASSERT_EQ(s[100], '\0');
        s = mfree(s);

        /* ret_size is optional */
        ASSERT_OK(read_full_file(path, 1000, &s, NULL));
        ASSERT_EQ(strlen(s), 100);
        s = mfree(s);

        ASSERT_OK(write_file_atomic(path, "", 0, 0644));
        ASSERT_OK(read_full_file(path, 0, &s, &n));
        ASSERT_EQ(n, 0);
        ASSERT_STREQ(s, "");
        s = mfree(s);

        d = path_join(dir, "missing");
        ASSERT_ERROR(read_full_file(d, 100, &s, &n), ENOENT);
        ASSERT_ERROR(read_full_file(dir, 100, &s, &n), EISDIR);
        ASSERT_NULL(s);
        rm_rf(dir);
}

/* Files that report no size (procfs) are still bounded. */
TEST(read_full_file_procfs) {
        _cleanup_free_ char *s = NULL;
        size_t n;

        ASSERT_OK(read_full_file("/proc/self/status", 1024 * 1024, &s, &n));
        ASSERT_TRUE(n > 10);
        ASSERT_EQ(strlen(s), n);
        ASSERT_TRUE(strneq(s, "Name:", 5));
        s = mfree(s);

        ASSERT_ERROR(read_full_file("/proc/self/status", 10, &s, &n), EFBIG);
        ASSERT_NULL(s);
}

TEST(mkdir_p) {
        _cleanup_free_ char *dir = make_tmpdir(), *nested = NULL, *f = NULL, *under = NULL,
                            *slashes = NULL;
        struct stat st;

        nested = path_join(dir, "a/b/c");
        ASSERT_OK(mkdir_p(nested, 0755));
        ASSERT_OK(stat(nested, &st));
        ASSERT_TRUE(S_ISDIR(st.st_mode));
        ASSERT_EQ(st.st_mode & 07777, 0755);

        /* Existing directories are fine, also with a trailing slash or repeated slashes. */
        ASSERT_OK(mkdir_p(nested, 0755));
        ASSERT_OK(mkdir_p(dir, 0755));
        ASSERT_OK(mkdir_p("/", 0755));
        ASSERT_TRUE(asprintf(&slashes, "%s//x///y/", dir) > 0);
        ASSERT_OK(mkdir_p(slashes, 0700));
        free(slashes);
        ASSERT_TRUE(asprintf(&slashes, "%s/x/y", dir) > 0);
        ASSERT_OK(stat(slashes, &st));
        ASSERT_TRUE(S_ISDIR(st.st_mode));

        /* A file in the way. */
        f = path_join(dir, "file");
        ASSERT_OK(write_file_atomic(f, "x", 1, 0644));
        ASSERT_ERROR(mkdir_p(f, 0755), ENOTDIR);
        under = path_join(f, "sub");
        ASSERT_ERROR(mkdir_p(under, 0755), ENOTDIR);

        ASSERT_ERROR(mkdir_p("", 0755), EINVAL);
        rm_rf(dir);
}

TEST(unlink_if_exists) {
        _cleanup_free_ char *dir = make_tmpdir(), *f = NULL;

        f = path_join(dir, "f");
        ASSERT_OK(unlink_if_exists(f));
        ASSERT_OK(write_file_atomic(f, "x", 1, 0644));
        ASSERT_OK(unlink_if_exists(f));
        ASSERT_TRUE(access(f, F_OK) < 0 && errno == ENOENT);
        ASSERT_OK(unlink_if_exists(f));
        ASSERT_ERROR(unlink_if_exists(dir), EISDIR);
        rm_rf(dir);
}

static void check_join(const char *a, const char *b, const char *expected) {
        _cleanup_free_ char *j = path_join(a, b);

        ASSERT_STREQ(j, expected);
}

TEST(path_join) {
        check_join("/run/pool-managerd", "engines", "/run/pool-managerd/engines");
        check_join("/run/pool-managerd/", "engines", "/run/pool-managerd/engines");
        check_join("/run/pool-managerd//", "/engines", "/run/pool-managerd/engines");
        check_join("/", "x", "/x");
        check_join("/", "/x", "/x");
        check_join("a", "b/c", "a/b/c");
        check_join("", "b", "b");
        check_join(NULL, "b", "b");
        check_join("a", "", "a");
        check_join("a", NULL, "a");
}

DEFINE_TEST_MAIN
