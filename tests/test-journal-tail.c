/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * journal_tail_lines() and journal_lines_quote() against a real journald and a real user manager,
 * inside tests/sandbox: transient units (systemd-run --user) running the fake engine or sh, that
 * print multibyte text, control characters, invalid UTF-8, an overlong line, or nothing; a unit
 * run twice under one name (only the second run's lines count); the _PID fallback for lines
 * journald could no longer attribute to the unit; and a journal that is not there.
 *
 *         tests/sandbox -- build/tests/test-journal-tail      (FAKE_ENGINE= points to fake-engine)
 */

#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>

#include "journal-tail.h"
#include "shared/macro.h"
#include "shared/strv.h"
#include "test-util.h"

#define WAIT_USEC (10U * 1000U * 1000U)

extern char **environ;

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        ASSERT_OK(clock_gettime(clock, &ts));
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

static int run_full(char **argv, bool quiet) {
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int status;

        ASSERT_EQ(posix_spawn_file_actions_init(&fa), 0);
        if (quiet)
                ASSERT_EQ(posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0), 0);
        ASSERT_EQ(posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int run(char **argv) {
        return run_full(argv, false);
}

/* systemctl --user show -p PROPERTY --value UNIT */
static char *unit_property(const char *unit, const char *property) {
        _cleanup_free_ char *cmd = NULL;
        char buf[256] = "";
        FILE *f;

        ASSERT_TRUE(asprintf(&cmd, "systemctl --user show -p %s --value %s", property, unit) > 0);
        f = popen(cmd, "re");
        ASSERT_NOT_NULL(f);
        if (!fgets(buf, sizeof(buf), f))
                buf[0] = '\0';
        pclose(f);
        buf[strcspn(buf, "\n")] = '\0';
        return strdup(buf);
}

/* Runs argv as unit (RemainAfterExit=yes, so that its properties stay) and waits until it is
 * no longer activating or active-running. */
static void run_unit(const char *unit, char **argv) {
        _cleanup_strv_free_ char **cmd = NULL;
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + WAIT_USEC;

        ASSERT_OK(strv_extend(&cmd, "systemd-run"));
        ASSERT_OK(strv_extend(&cmd, "--user"));
        ASSERT_OK(strv_extend(&cmd, "--quiet"));
        ASSERT_OK(strv_extend(&cmd, "-p"));
        ASSERT_OK(strv_extend(&cmd, "RemainAfterExit=yes"));
        ASSERT_OK(strv_extend(&cmd, "--unit"));
        ASSERT_OK(strv_extend(&cmd, unit));
        STRV_FOREACH(a, argv)
                ASSERT_OK(strv_extend(&cmd, *a));
        ASSERT_EQ(run(cmd), 0);

        for (;;) {
                _cleanup_free_ char *sub = unit_property(unit, "SubState");

                if (streq(sub, "exited") || streq(sub, "failed") || streq(sub, "dead"))
                        return;
                ASSERT_TRUE(now_usec(CLOCK_MONOTONIC) < deadline);
                usleep(20 * 1000);
        }
}

static void stop_unit(const char *unit) {
        (void) run(STRV_MAKE("systemctl", "--user", "stop", unit));
        (void) run_full(STRV_MAKE("systemctl", "--user", "reset-failed", unit), true);
}

typedef struct Tail {
        char **lines;
        char *error;
        int r;
} Tail;

static void tail_done(Tail *t) {
        strv_free(t->lines);
        free(t->error);
        *t = (Tail) {};
}

static Tail tail(sd_journal *j, const JournalTailMatch *m) {
        Tail t = {};

        (void) sd_journal_process(j);
        t.r = journal_tail_lines(j, m, JOURNAL_TAIL_LINES, JOURNAL_TAIL_BYTES, &t.lines, &t.error);
        return t;
}

/* Lines reach the journal asynchronously: polls until the newest line is `last`. */
static Tail tail_until(sd_journal *j, const JournalTailMatch *m, const char *last) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + WAIT_USEC;

        for (;;) {
                Tail t = tail(j, m);
                size_t n;

                ASSERT_OK(t.r);
                n = strv_length(t.lines);
                if (n > 0 && streq(t.lines[n - 1], last))
                        return t;
                if (now_usec(CLOCK_MONOTONIC) >= deadline) {
                        fprintf(stderr, "never saw \"%s\" as the last line; got %zu:\n", last, n);
                        STRV_FOREACH(l, t.lines)
                                fprintf(stderr, "  \"%s\"\n", *l);
                        abort();
                }
                tail_done(&t);
                usleep(50 * 1000);
        }
}

/* The match pool.c would use for a unit of the user manager. */
static JournalTailMatch match_for(const char *unit, uint64_t since) {
        _cleanup_free_ char *pid = unit_property(unit, "ExecMainPID");
        static char invocation[64];
        _cleanup_free_ char *inv = unit_property(unit, "InvocationID");

        snprintf(invocation, sizeof(invocation), "%s", inv);
        return (JournalTailMatch) {
                .unit_field = "_SYSTEMD_USER_UNIT",
                .unit = unit,
                .invocation_id = invocation[0] ? invocation : NULL,
                .pid = (pid_t) atoi(pid),
                .since_usec = since,
        };
}

static char *quoted(char **lines) {
        char *q = NULL;

        ASSERT_EQ(journal_lines_quote(lines, JOURNAL_TAIL_BYTES, &q), 1);
        return q;
}

static const char *fake_engine(void) {
        const char *p = getenv("FAKE_ENGINE");

        ASSERT_NOT_NULL(p);
        return p;
}

static sd_journal *open_journal(void) {
        sd_journal *j = NULL;

        ASSERT_OK(sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY));
        return j;
}

/* One unit run and what the journal says about it. */
typedef struct Case {
        const char *unit;
        sd_journal *j;
        JournalTailMatch m;
        Tail t;
        char *quoted;
} Case;

static void case_done(Case *c) {
        tail_done(&c->t);
        free(c->quoted);
        stop_unit(c->unit);
        sd_journal_close(c->j);
}

/* Runs argv as unit; with last, waits until that is the newest line and quotes the tail. */
static void case_run(Case *c, const char *unit, char **argv, const char *last) {
        uint64_t since = now_usec(CLOCK_REALTIME);

        c->unit = unit;
        c->j = open_journal();
        run_unit(unit, argv);
        c->m = match_for(unit, since);
        if (last) {
                c->t = tail_until(c->j, &c->m, last);
                c->quoted = quoted(c->t.lines);
                printf("# %s\n", c->quoted);
        }
}

TEST(multibyte_text) {
        _cleanup_(case_done) Case c = {};

        case_run(&c, "jt-multibyte.service",
                 STRV_MAKE(fake_engine(), "--port=0", "--exit-after=20", "--exit-code=1",
                           "--exit-message=chargement: «日本語.gguf»",
                           "--exit-message=error: modèle introuvable ✗ 😀"),
                 "error: modèle introuvable ✗ 😀");
        ASSERT_EQ(strv_length(c.t.lines), 3);
        ASSERT_STREQ(c.t.lines[0], "fake-engine: exiting with status 1 as asked");
        ASSERT_STREQ(c.t.lines[1], "chargement: «日本語.gguf»");
        ASSERT_STREQ(c.quoted, "\"fake-engine: exiting with status 1 as asked\\nchargement: «日本語.gguf»\\n"
                               "error: modèle introuvable ✗ 😀\"");
}

TEST(control_characters_and_invalid_utf8) {
        _cleanup_(case_done) Case c = {};

        /* D-Bus carries only valid UTF-8 in ExecStart=, so the invalid byte comes from printf. */
        case_run(&c, "jt-control.service",
                 STRV_MAKE("sh", "-c", "printf 'ansi \\033[31mred\\033[0m\\ttab\\001 bell\\007\\n"
                                       "bad \\377\\376 bytes\\n'; exit 3"),
                 "bad \xff\xfe bytes");
        ASSERT_EQ(strv_length(c.t.lines), 2);
        ASSERT_STREQ(c.quoted, "\"ansi \\x1b[31mred\\x1b[0m\\ttab\\x01 bell\\x07\\nbad \\xff\\xfe bytes\"");
}

TEST(long_line_cut) {
        _cleanup_(case_done) Case c = {};
        _cleanup_free_ char *arg = NULL, *line = NULL;

        line = malloc(3001);
        ASSERT_NOT_NULL(line);
        for (size_t i = 0; i < 1000; i++)
                memcpy(line + 3 * i, "日", 3);
        line[3000] = '\0';
        ASSERT_TRUE(asprintf(&arg, "--exit-message=%s", line) > 0);
        /* Lines are kept up to JOURNAL_TAIL_BYTES, cut on a character boundary: 170 × 日. */
        case_run(&c, "jt-long.service", STRV_MAKE(fake_engine(), "--port=0", "--exit-after=20", arg),
                 strndupa(line, 510));
        ASSERT_TRUE(strlen(c.quoted) <= JOURNAL_TAIL_BYTES);
        ASSERT_STREQ(c.quoted + strlen(c.quoted) - 4, "…\"");
}

TEST(printed_nothing) {
        _cleanup_(case_done) Case c = {};
        char *q = (char *) "x";

        case_run(&c, "jt-silent.service", STRV_MAKE("sh", "-c", "exit 1"), NULL);
        /* Give journald a moment in case anything were to arrive. */
        usleep(300 * 1000);
        c.t = tail(c.j, &c.m);
        ASSERT_EQ(c.t.r, 0);
        ASSERT_NOT_NULL(c.t.lines);
        ASSERT_EQ(strv_length(c.t.lines), 0);
        ASSERT_EQ(journal_lines_quote(c.t.lines, JOURNAL_TAIL_BYTES, &q), 0);
        ASSERT_NULL(q);
}

TEST(second_run_only) {
        const char *unit = "jt-twice.service";
        sd_journal *j = open_journal();
        uint64_t since;
        JournalTailMatch m;
        Tail t;

        /* Each run lives on a moment after it printed: lines of a process that is gone when journald
         * reads them lose their _SYSTEMD_* fields (see tests/sandbox), and this case matches on the
         * unit alone (the _PID fallback has a test of its own). */
        run_unit(unit, STRV_MAKE("sh", "-c", "echo first run; echo first run again; sleep 0.5"));
        stop_unit(unit);
        usleep(10 * 1000);
        since = now_usec(CLOCK_REALTIME);
        run_unit(unit, STRV_MAKE("sh", "-c", "echo second run; sleep 0.5"));
        m = match_for(unit, since);
        t = tail_until(j, &m, "second run");
        ASSERT_EQ(strv_length(t.lines), 1);
        tail_done(&t);

        /* Without the bound both runs show. */
        m.since_usec = 0;
        t = tail_until(j, &m, "second run");
        ASSERT_EQ(strv_length(t.lines), 3);
        ASSERT_STREQ(t.lines[0], "first run");
        tail_done(&t);

        /* An invocation ID that matches nothing filters nothing here: the user manager's units'
         * output carries no _SYSTEMD_INVOCATION_ID (see journal-tail.h). */
        m.since_usec = since;
        m.invocation_id = "00000000000000000000000000000001";
        t = tail_until(j, &m, "second run");
        ASSERT_EQ(strv_length(t.lines), 1);
        tail_done(&t);
        stop_unit(unit);
        sd_journal_close(j);
}

TEST(pid_fallback) {
        /* A process that exits right after writing: its line often lacks _SYSTEMD_USER_UNIT, the
         * _PID match finds it anyway. Matching on the pid alone works too. */
        _cleanup_(case_done) Case c = {};
        Tail t;

        case_run(&c, "jt-pid.service", STRV_MAKE("sh", "-c", "echo last words; exit 2"), "last words");
        ASSERT_TRUE(c.m.pid > 0);
        c.m.unit_field = c.m.unit = NULL;
        t = tail_until(c.j, &c.m, "last words");
        ASSERT_EQ(strv_length(t.lines), 1);
        tail_done(&t);
}

TEST(no_journal) {
        _cleanup_strv_free_ char **lines = NULL;
        _cleanup_free_ char *error = NULL;
        char dir[] = "/tmp/test-journal-tail.XXXXXX";
        sd_journal *j = NULL;
        JournalTailMatch m = { .unit_field = "_SYSTEMD_UNIT", .unit = "x.service" };

        ASSERT_EQ(journal_tail_lines(NULL, &m, 3, 512, &lines, &error), -EINVAL);
        ASSERT_CONTAINS(error, "not available");
        ASSERT_NULL(lines);
        error = mfree(error);

        ASSERT_EQ(journal_tail_lines((sd_journal *) 1, &(JournalTailMatch) {}, 3, 512, &lines, &error), -EINVAL);
        ASSERT_CONTAINS(error, "neither");
        error = mfree(error);

        /* An empty journal directory: no lines, no error. */
        ASSERT_NOT_NULL(mkdtemp(dir));
        ASSERT_OK(sd_journal_open_directory(&j, dir, 0));
        ASSERT_EQ(journal_tail_lines(j, &m, 3, 512, &lines, &error), 0);
        ASSERT_EQ(strv_length(lines), 0);
        sd_journal_close(j);
        ASSERT_OK(rmdir(dir));
}

DEFINE_TEST_MAIN
