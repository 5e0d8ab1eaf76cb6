/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * fake-engine: a stand-in for llama-server in the integration tests and the demo.
 *
 * It serves the HTTP surface pool-managerd relies on (GET /health, /slots, /props, /metrics)
 * and can be told to misbehave the ways real engines do: load slowly, never become ready,
 * exit or crash after a while, ignore SIGTERM, bind late, speak HTTP/1.0, share its port with
 * another process (SO_REUSEPORT, as llama-server does), say why it exits. Its /metrics speaks
 * llama-server's names or vLLM's, or is missing, with a load given on the command line. Every /health
 * request can be appended to a log file, so that tests can check when and how often the
 * daemon probed.
 *
 * One thread, one ppoll() loop over nonblocking sockets, libc only. All deadlines are on
 * CLOCK_MONOTONIC and counted from process start. While "loading", every known route answers
 * 503 "Loading model", like llama-server does.
 */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * In the sanitizer round this program is built with ASan, whose LeakSanitizer checks at exit by
 * stopping the process with ptrace (PTRACE_ATTACH, a SIGSTOP). systemd sends SIGCONT right after
 * SIGTERM, and a SIGCONT that comes after that SIGSTOP cancels it: the process then spins, waiting
 * for a stop that never comes, until SIGKILL after TimeoutStopSec= (see tests/stop-daemon). The
 * daemon stops engines through systemd, so the stand-in engine does no leak check at all.
 * ASAN_OPTIONS or LSAN_OPTIONS in the environment would still win; engine units have neither
 * (the daemon passes none, the sandbox's user manager has none).
 */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) {
        return "detect_leaks=0";
}

#include "shared/macro.h"

#define EXIT_BIND_FAILURE 1
#define EXIT_USAGE 2

#define USEC_INFINITY UINT64_MAX
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)
#define NSEC_PER_USEC UINT64_C(1000)

/* Built with ASan (build-asan), LeakSanitizer would look for leaks at exit by stopping the
 * process with ptrace(), which the engines' sandbox forbids (SystemCallFilter=@system-service):
 * every exit would end in a LeakSanitizer error and status 1, hiding the exit status a test asked
 * for. The daemon's leaks are what that build is for, not the fake engine's; ASan's other checks
 * stay on. The ASan runtime calls this, if linked; otherwise it is unused. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
        return "detect_leaks=0";
}

/* Bounds on what one client may send before it is answered with an error and dropped. */
#define REQUEST_HEADER_MAX (16U * 1024U)
#define REQUEST_BODY_MAX (UINT64_C(1024) * 1024U)

/* A client that sends requests but does not read the answers is not read from while this much
 * output is queued for it, or this much input is buffered. */
#define RESPONSE_QUEUE_MAX (1024U * 1024U)
#define REQUEST_BUFFER_MAX (64U * 1024U)

/* After accept() fails with EMFILE, wait this long before trying again. */
#define ACCEPT_RETRY_USEC (100 * USEC_PER_MSEC)

typedef uint64_t usec_t;

static const char *arg_host = "127.0.0.1";
static int arg_port = -1;
static usec_t arg_ready_after = 0;
static bool arg_never_ready = false;
static usec_t arg_exit_after = USEC_INFINITY;
static int arg_exit_code = 1;
static usec_t arg_crash_after = USEC_INFINITY;
static usec_t arg_allocate_after = USEC_INFINITY;
static int arg_crash_signal = SIGSEGV;
static bool arg_ignore_sigterm = false;
static int arg_sigterm_exit = 0;
static bool arg_reuseport = false;
static const char *arg_open_devices = NULL;
static char **arg_exit_messages = NULL;
static size_t arg_n_exit_messages = 0;
static char **arg_stderr_lines = NULL;
static size_t arg_n_stderr_lines = 0;
static char **arg_stdout_lines = NULL;
static size_t arg_n_stdout_lines = 0;
static bool arg_http10 = false;
static const char *arg_probe_log = NULL;
static const char *arg_ready_log = NULL;
static const char *arg_ready_line = "fake-engine: model loaded, ready";
static unsigned arg_slots = 1;
static const char *arg_model = "";
static usec_t arg_delay_bind = 0;
static usec_t arg_log_every = 0;

/* What GET /metrics serves: llama-server's names (the default), vLLM's, or none (501, as
 * llama-server answers without --metrics). */
typedef enum MetricsStyle {
        METRICS_LLAMACPP,
        METRICS_VLLM,
        METRICS_NONE,
} MetricsStyle;

static MetricsStyle arg_metrics_style = METRICS_LLAMACPP;
static unsigned arg_requests_running = 0;
static unsigned arg_requests_waiting = 0;
static const char *arg_kv_cache_usage = NULL;   /* a number as given, NULL: not reported */

typedef struct Buffer {
        char *data;
        size_t size;
        size_t allocated;
} Buffer;

typedef struct Conn {
        int fd;
        Buffer in;
        Buffer out;
        uint64_t body_skip;     /* bytes of the current request's body still to be discarded */
        bool close_after;       /* answer nothing more; close once `out` is flushed */
        bool eof;               /* the peer shut down its sending side */
        bool dead;
} Conn;

typedef struct Server {
        usec_t start;           /* CLOCK_MONOTONIC at start; every deadline is relative to it */
        int listen_fd;
        int signal_fd;
        int probe_log_fd;
        usec_t accept_retry_at; /* USEC_INFINITY unless accepting is paused after EMFILE */
        bool accept_failing;
        bool ready_announced;
        bool probe_log_failed;
        Conn **conns;
        size_t n_conns;
        size_t allocated_conns;
} Server;

typedef struct Request {
        const char *method;
        size_t method_len;
        const char *path;       /* without the query string */
        size_t path_len;
        int minor;              /* HTTP/1.<minor> */
        bool connection_close;
        bool chunked;
        uint64_t content_length;
} Request;

static const struct {
        const char *name;
        int number;
} signal_table[] = {
        { "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "ILL", SIGILL },
        { "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "BUS", SIGBUS },   { "FPE", SIGFPE },
        { "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV }, { "USR2", SIGUSR2 },
        { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM }, { "SYS", SIGSYS },
        { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
};

static usec_t now(clockid_t clock) {
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                abort();
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / NSEC_PER_USEC;
}

static usec_t deadline(usec_t start, usec_t after) {
        if (after == USEC_INFINITY || after > USEC_INFINITY - start)
                return USEC_INFINITY;
        return start + after;
}

static int buffer_reserve(Buffer *b, size_t extra) {
        size_t need;
        char *p;

        if (extra > SIZE_MAX - b->size - 1)
                return -ENOMEM;
        need = b->size + extra + 1;
        if (need <= b->allocated)
                return 0;

        need = MAX(need, MAX(b->allocated * 2, (size_t) 512));
        p = realloc(b->data, need);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->allocated = need;
        return 0;
}

static int buffer_append(Buffer *b, const void *p, size_t n) {
        int r;

        r = buffer_reserve(b, n);
        if (r < 0)
                return r;
        memcpy(b->data + b->size, p, n);
        b->size += n;
        b->data[b->size] = '\0';
        return 0;
}

_printf_(2, 3) static int buffer_appendf(Buffer *b, const char *format, ...) {
        va_list ap;
        int n, r;

        va_start(ap, format);
        n = vsnprintf(NULL, 0, format, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;

        r = buffer_reserve(b, (size_t) n);
        if (r < 0)
                return r;

        va_start(ap, format);
        (void) vsnprintf(b->data + b->size, (size_t) n + 1, format, ap);
        va_end(ap);
        b->size += (size_t) n;
        return 0;
}

/* Appends s as the inside of a JSON string literal. */
static int buffer_append_json_string(Buffer *b, const char *s) {
        int r;

        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        r = buffer_appendf(b, "\\%c", *p);
                else if (*p < 0x20)
                        r = buffer_appendf(b, "\\u%04x", *p);
                else
                        r = buffer_append(b, p, 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void buffer_consume(Buffer *b, size_t n) {
        if (n >= b->size) {
                b->size = 0;
        } else {
                memmove(b->data, b->data + n, b->size - n);
                b->size -= n;
        }
        if (b->data)
                b->data[b->size] = '\0';
}

static void buffer_done(Buffer *b) {
        b->data = mfree(b->data);
        b->size = b->allocated = 0;
}

static int parse_uint64(const char *s, uint64_t max, uint64_t *ret) {
        unsigned long long v;
        char *end;

        if (!s || !isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end != '\0')
                return -EINVAL;
        if (v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

static int parse_msec(const char *s, usec_t *ret) {
        uint64_t v;
        int r;

        r = parse_uint64(s, UINT64_MAX / USEC_PER_MSEC - 1, &v);
        if (r < 0)
                return r;
        *ret = v * USEC_PER_MSEC;
        return 0;
}

static int parse_signal(const char *s, int *ret) {
        uint64_t v;

        if (parse_uint64(s, 64, &v) >= 0) {
                if (v < 1 || (int) v > SIGRTMAX)
                        return -ERANGE;
                *ret = (int) v;
                return 0;
        }

        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        for (size_t i = 0; i < ELEMENTSOF(signal_table); i++)
                if (strcasecmp(s, signal_table[i].name) == 0) {
                        *ret = signal_table[i].number;
                        return 0;
                }
        return -EINVAL;
}

static int strv_push(char ***list, size_t *n, char *s) {
        char **l;

        l = realloc(*list, (*n + 1) * sizeof(char *));
        if (!l)
                return -ENOMEM;
        l[(*n)++] = s;
        *list = l;
        return 0;
}

static void help(void) {
        printf("%s --port=PORT [OPTIONS...]\n\n"
               "Imitates llama-server's HTTP surface for pool-managerd's tests.\n\n"
               "  -h --help                 Show this help\n"
               "     --host=ADDRESS         Address to listen on (default 127.0.0.1; IPv6 literals ok)\n"
               "     --port=PORT            Port to listen on (required; 0 picks a free one)\n"
               "     --ready-after=MS       Answer 503 \"Loading model\" for MS ms after start (default 0)\n"
               "     --never-ready          Answer 503 forever\n"
               "     --exit-after=MS        Exit MS ms after start ...\n"
               "     --exit-code=N          ... with exit status N (default 1)\n"
               "     --crash-after=MS       Kill itself with a signal MS ms after start ...\n"
               "     --crash-signal=SIG     ... this one, by name or number (default SEGV)\n"
               "     --allocate-after=MS    MS ms after start, allocate and touch memory without end\n"
               "                            (for MemoryMax= and the OOM killer)\n"
               "     --ignore-sigterm       Ignore SIGTERM (SIGINT still ends it)\n"
               "     --sigterm-exit=N       Exit with status N on SIGTERM (default 0)\n"
               "     --exit-message=TEXT    Write TEXT to stderr right before exiting, whatever the\n"
               "                            cause: --exit-after, --crash-after, a signal, a failed\n"
               "                            bind (repeatable; written verbatim, bytes as given)\n"
               "     --open-devices=DIR     At start, open each NVIDIA node in DIR (nvidiactl,\n"
               "                            nvidia0, ...) read-write, as CUDA does, and print\n"
               "                            \"fake-engine: open DIR/NAME: opened\" or the error\n"
               "     --reuseport            Listen with SO_REUSEPORT, like llama-server: a second\n"
               "                            process can then listen on the same address and port\n"
               "     --stderr-line=TEXT     Write TEXT to stderr at start (repeatable)\n"
               "     --stdout-line=TEXT     Write TEXT to stdout at start (repeatable)\n"
               "     --http10               Answer with HTTP/1.0 status lines and close after each\n"
               "     --probe-log=PATH       Append \"<realtime ms> <monotonic ms> <status>\" per /health\n"
               "     --ready-log=PATH       Append \"<realtime us>\" at the moment /health turns 200\n"
               "     --ready-line=TEXT      Write TEXT to stdout at that moment (default \"fake-engine:\n"
               "                            model loaded, ready\"; llama-server: \"server is listening\")\n"
               "     --slots=N              Number of slots reported (default 1)\n"
               "     --model=PATH           Model path reported by /props\n"
               "     --tensor-split=A,B     Accepted and ignored, like --split-mode=M and\n"
               "                            --tensor-parallel-size=N (pool-managerd's split flags)\n"
               "     --delay-bind=MS        Only listen MS ms after start\n"
               "     --log-every=MS         Until ready, write a \"loading\" line to stdout every MS ms\n"
               "     --metrics-style=STYLE  GET /metrics with llama-server's names (llamacpp, the\n"
               "                            default), vLLM's (vllm), or answer 501 (none)\n"
               "     --requests-running=N   Requests processing that /metrics reports (default 0)\n"
               "     --requests-waiting=N   Requests deferred (waiting) that /metrics reports (default 0)\n"
               "     --kv-cache-usage=R     KV-cache usage, 0 to 1, that /metrics reports (default: none\n"
               "                            for llamacpp, 0 for vllm)\n\n"
               "Exit status: 0 on SIGINT, 0 or --sigterm-exit= on SIGTERM, N after --exit-after,\n"
               "1 if it cannot listen, "
"2 on usage errors.\n",
               program_invocation_short_name);
}

/* --open-devices: what an engine's device cgroup lets it open. A node allowed with no driver
 * behind it gives ENXIO, a node the cgroup denies EPERM (tests/boot/package-checks.sh). */
static int name_is_nvidia_node(const struct dirent *d) {
        return strncmp(d->d_name, "nvidia", 6) == 0;
}

static void open_devices(const char *dir) {
        struct dirent **names = NULL;
        int n;

        n = scandir(dir, &names, name_is_nvidia_node, alphasort);
        if (n < 0) {
                printf("fake-engine: open %s: %s\n", dir, strerror(errno));
                return;
        }
        for (int i = 0; i < n; i++) {
                char path[PATH_MAX];
                int fd;

                snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
                fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (fd >= 0) {
                        printf("fake-engine: open %s: opened\n", path);
                        close(fd);
                } else
                        printf("fake-engine: open %s: %s\n", path, strerror(errno));
                free(names[i]);
        }
        free(names);
}

/* Returns 1 to run, 0 to exit successfully (--help), negative errno on a usage error. */
static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_HOST = 0x100,
                ARG_PORT,
                ARG_READY_AFTER,
                ARG_NEVER_READY,
                ARG_EXIT_AFTER,
                ARG_ALLOCATE_AFTER,
                ARG_EXIT_CODE,
                ARG_CRASH_AFTER,
                ARG_CRASH_SIGNAL,
                ARG_IGNORE_SIGTERM,
                ARG_STDERR_LINE,
                ARG_STDOUT_LINE,
                ARG_HTTP10,
                ARG_PROBE_LOG,
                ARG_READY_LOG,
                ARG_READY_LINE,
                ARG_SLOTS,
                ARG_MODEL,
                ARG_DELAY_BIND,
                ARG_LOG_EVERY,
                ARG_SIGTERM_EXIT,
                ARG_EXIT_MESSAGE,
                ARG_REUSEPORT,
                ARG_OPEN_DEVICES,
                ARG_METRICS_STYLE,
                ARG_REQUESTS_RUNNING,
                ARG_REQUESTS_WAITING,
                ARG_KV_CACHE_USAGE,
                ARG_IGNORED,
        };
        static const struct option options[] = {
                { "help",           no_argument,       NULL, 'h'                },
                { "host",           required_argument, NULL, ARG_HOST           },
                { "port",           required_argument, NULL, ARG_PORT           },
                { "ready-after",    required_argument, NULL, ARG_READY_AFTER    },
                { "never-ready",    no_argument,       NULL, ARG_NEVER_READY    },
                { "exit-after",     required_argument, NULL, ARG_EXIT_AFTER     },
                { "allocate-after", required_argument, NULL, ARG_ALLOCATE_AFTER },
                { "exit-code",      required_argument, NULL, ARG_EXIT_CODE      },
                { "crash-after",    required_argument, NULL, ARG_CRASH_AFTER    },
                { "crash-signal",   required_argument, NULL, ARG_CRASH_SIGNAL   },
                { "ignore-sigterm", no_argument,       NULL, ARG_IGNORE_SIGTERM },
                { "stderr-line",    required_argument, NULL, ARG_STDERR_LINE    },
                { "stdout-line",    required_argument, NULL, ARG_STDOUT_LINE    },
                { "http10",         no_argument,       NULL, ARG_HTTP10         },
                { "probe-log",      required_argument, NULL, ARG_PROBE_LOG      },
                { "ready-log",      required_argument, NULL, ARG_READY_LOG      },
                { "ready-line",     required_argument, NULL, ARG_READY_LINE     },
                { "slots",          required_argument, NULL, ARG_SLOTS          },
                { "model",          required_argument, NULL, ARG_MODEL          },
                { "delay-bind",     required_argument, NULL, ARG_DELAY_BIND     },
                { "log-every",      required_argument, NULL, ARG_LOG_EVERY      },
                { "sigterm-exit",   required_argument, NULL, ARG_SIGTERM_EXIT   },
                { "exit-message",   required_argument, NULL, ARG_EXIT_MESSAGE   },
                { "reuseport",      no_argument,       NULL, ARG_REUSEPORT      },
                { "open-devices",   required_argument, NULL, ARG_OPEN_DEVICES   },
                { "metrics-style",  required_argument, NULL, ARG_METRICS_STYLE  },
                { "requests-running", required_argument, NULL, ARG_REQUESTS_RUNNING },
                { "requests-waiting", required_argument, NULL, ARG_REQUESTS_WAITING },
                { "kv-cache-usage", required_argument, NULL, ARG_KV_CACHE_USAGE },
                /* The split flags pool-managerd adds (issue 9), accepted like llama-server's. */
                { "tensor-split",   required_argument, NULL, ARG_IGNORED        },
                { "split-mode",     required_argument, NULL, ARG_IGNORED        },
                { "tensor-parallel-size", required_argument, NULL, ARG_IGNORED  },
                {}
        };
        bool exit_code_set = false, crash_signal_set = false;
        uint64_t v;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_HOST:
                        if (isempty(optarg)) {
                                fprintf(stderr, "fake-engine: --host= must not be empty\n");
                                return -EINVAL;
                        }
                        arg_host = optarg;
                        break;
                case ARG_PORT:
                        r = parse_uint64(optarg, 65535, &v);
                        if (r < 0) {
                                fprintf(stderr, "fake-engine: invalid --port='%s'\n", optarg);
                                return r;
                        }
                        arg_port = (int) v;
                        break;
                case ARG_READY_AFTER:
                case ARG_EXIT_AFTER:
                case ARG_CRASH_AFTER:
                case ARG_ALLOCATE_AFTER:
                case ARG_DELAY_BIND:
                case ARG_LOG_EVERY: {
                        usec_t *t = c == ARG_READY_AFTER ? &arg_ready_after :
                                    c == ARG_EXIT_AFTER ? &arg_exit_after :
                                    c == ARG_CRASH_AFTER ? &arg_crash_after :
                                    c == ARG_ALLOCATE_AFTER ? &arg_allocate_after :
                                    c == ARG_LOG_EVERY ? &arg_log_every : &arg_delay_bind;

                        r = parse_msec(optarg, t);
                        if (r < 0) {
                                fprintf(stderr, "fake-engine: invalid milliseconds '%s' for --%s=\n",
                                        optarg, argv[optind - 1] + 2);
                                return r;
                        }
                        break;
                }
                case ARG_NEVER_READY:
                        arg_never_ready = true;
                        break;
                case ARG_EXIT_CODE:
                        r = parse_uint64(optarg, 255, &v);
                        if (r < 0) {
                                fprintf(stderr, "fake-engine: invalid --exit-code='%s' (0-255)\n", optarg);
                                return r;
                        }
                        arg_exit_code = (int) v;
                        exit_code_set = true;
                        break;
                case ARG_CRASH_SIGNAL:
                        r = parse_signal(optarg, &arg_crash_signal);
                        if (r < 0) {
                                fprintf(stderr, "fake-engine: unknown signal --crash-signal='%s'\n", optarg);
                                return r;
                        }
                        crash_signal_set = true;
                        break;
                case ARG_IGNORE_SIGTERM:
                        arg_ignore_sigterm = true;
                        break;
                case ARG_SIGTERM_EXIT:
                        r = parse_uint64(optarg, 255, &v);
                        if (r < 0) {
                                fprintf(stderr, "fake-engine: invalid --sigterm-exit='%s' (0-255)\n", optarg);
                                return r;
                        }
                        arg_sigterm_exit = (int) v;
                        break;
                case ARG_REUSEPORT:
                        arg_reuseport = true;
                        break;
                case ARG_OPEN_DEVICES:
                        arg_open_devices = optarg;
                        break;
                case ARG_STDERR_LINE:
                case ARG_STDOUT_LINE:
                case ARG_EXIT_MESSAGE:
                        r = c == ARG_STDERR_LINE ?
                                strv_push(&arg_stderr_lines, &arg_n_stderr_lines, optarg) :
                            c == ARG_STDOUT_LINE ?
                                strv_push(&arg_stdout_lines, &arg_n_stdout_lines, optarg) :
                                strv_push(&arg_exit_messages, &arg_n_exit_messages, optarg);
                        if (r < 0) {
                                fprintf(stderr, "fake-engine: out of memory\n");
                                return r;
                        }
                        break;
                case ARG_HTTP10:
                        arg_http10 = true;
                        break;
                case ARG_READY_LINE:
                        arg_ready_line = optarg;
                        break;
                case ARG_READY_LOG:
                        arg_ready_log = optarg;
                        break;
                case ARG_PROBE_LOG:
                        arg_probe_log = optarg;
                        break;
                case ARG_SLOTS:
                        r = parse_uint64(optarg, 4096, &v);
                        if (r < 0) {
                                fprintf(stderr, "fake-engine: invalid --slots='%s' (0-4096)\n", optarg);
                                return r;
                        }
                        arg_slots = (unsigned) v;
                        break;
                case ARG_MODEL:
                        arg_model = optarg;
                        break;
                case ARG_METRICS_STYLE:
                        if (streq(optarg, "llamacpp"))
                                arg_metrics_style = METRICS_LLAMACPP;
                        else if (streq(optarg, "vllm"))
                                arg_metrics_style = METRICS_VLLM;
                        else if (streq(optarg, "none"))
                                arg_metrics_style = METRICS_NONE;
                        else {
                                fprintf(stderr, "fake-engine: invalid --metrics-style='%s' (llamacpp, vllm, none)\n",
                                        optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_REQUESTS_RUNNING:
                case ARG_REQUESTS_WAITING:
                        r = parse_uint64(optarg, 1000000, &v);
                        if (r < 0) {
                                fprintf(stderr, "fake-engine: invalid --%s='%s' (0-1000000)\n",
                                        argv[optind - 1] + 2, optarg);
                                return r;
                        }
                        *(c == ARG_REQUESTS_RUNNING ? &arg_requests_running : &arg_requests_waiting) = (unsigned) v;
                        break;
                case ARG_KV_CACHE_USAGE: {
                        char *e;
                        double d;

                        errno = 0;
                        d = strtod(optarg, &e);
                        if (errno != 0 || e == optarg || *e != '\0' || !(d >= 0 && d <= 1)) {
                                fprintf(stderr, "fake-engine: invalid --kv-cache-usage='%s' (0 to 1)\n", optarg);
                                return -EINVAL;
                        }
                        arg_kv_cache_usage = optarg;
                        break;
                }
                case ARG_IGNORED:
                        break;
                case '?':
                        /* getopt_long() has already named the offending option. */
                        fprintf(stderr, "Try '%s --help' for more information.\n",
                                program_invocation_short_name);
                        return -EINVAL;
                default:
                        abort();
                }
        }

        if (optind < argc) {
                fprintf(stderr, "fake-engine: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        if (arg_port < 0) {
                fprintf(stderr, "fake-engine: --port= is required\n");
                return -EINVAL;
        }
        if (exit_code_set && arg_exit_after == USEC_INFINITY) {
                fprintf(stderr, "fake-engine: --exit-code= needs --exit-after=\n");
                return -EINVAL;
        }
        if (crash_signal_set && arg_crash_after == USEC_INFINITY) {
                fprintf(stderr, "fake-engine: --crash-signal= needs --crash-after=\n");
                return -EINVAL;
        }

        return 1;
}

static bool server_is_ready(const Server *s, usec_t t) {
        return !arg_never_ready && t >= deadline(s->start, arg_ready_after);
}

static void server_log_probe(Server *s, int status) {
        char line[96];
        int n;
        ssize_t k;

        if (s->probe_log_fd < 0)
                return;

        n = snprintf(line, sizeof line, "%" PRIu64 " %" PRIu64 " %d\n",
                     now(CLOCK_REALTIME) / USEC_PER_MSEC, now(CLOCK_MONOTONIC) / USEC_PER_MSEC, status);

        /* One write() per line on an O_APPEND fd, so lines never interleave or tear. */
        k = write(s->probe_log_fd, line, (size_t) n);
        if (k != n && !s->probe_log_failed) {
                fprintf(stderr, "fake-engine: failed to write probe log '%s': %s\n", arg_probe_log,
                        k < 0 ? strerror(errno) : "short write");
                s->probe_log_failed = true;
        }
}

/* For bench/preload-concurrency: when did this engine start answering 200? */
static void log_ready(usec_t realtime) {
        char line[32];
        int fd, n;

        fd = open(arg_ready_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
                fprintf(stderr, "fake-engine: failed to open ready log '%s': %s\n", arg_ready_log, strerror(errno));
                return;
        }
        n = snprintf(line, sizeof line, "%" PRIu64 "\n", realtime);
        if (write(fd, line, (size_t) n) != n)
                fprintf(stderr, "fake-engine: failed to write ready log '%s'\n", arg_ready_log);
        close(fd);
}

static const char *status_reason(int status) {
        switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 413: return "Payload Too Large";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default:  return "Unknown";
        }
}

static int conn_queue_response(Conn *c, int status, const char *content_type, const Buffer *body,
                               bool close_after) {
        int r;

        if (arg_http10)
                close_after = true;

        r = buffer_appendf(&c->out,
                           "%s %d %s\r\n"
                           "Server: fake-engine\r\n"
                           "Content-Type: %s\r\n"
                           "Content-Length: %zu\r\n"
                           "Connection: %s\r\n"
                           "\r\n",
                           arg_http10 ? "HTTP/1.0" : "HTTP/1.1", status, status_reason(status),
                           content_type, body->size, close_after ? "close" : "keep-alive");
        if (r < 0)
                return r;
        r = buffer_append(&c->out, body->data, body->size);
        if (r < 0)
                return r;

        if (close_after)
                c->close_after = true;
        return 0;
}

static int conn_queue_error(Conn *c, int status, const char *message, bool close_after) {
        _cleanup_(buffer_done) Buffer body = {};
        int r;

        r = buffer_appendf(&body, "{\"error\":{\"code\":%d,\"message\":\"%s\"}}", status, message);
        if (r < 0)
                return r;
        return conn_queue_response(c, status, "application/json; charset=utf-8", &body, close_after);
}

static bool path_is(const Request *req, const char *path) {
        return req->path_len == strlen(path) && memcmp(req->path, path, req->path_len) == 0;
}

static int build_body(const Request *req, Buffer *body, const char **ret_content_type) {
        int r;

        if (path_is(req, "/health")) {
                *ret_content_type = "application/json; charset=utf-8";
                return buffer_appendf(body, "{\"status\":\"ok\"}");
        }

        if (path_is(req, "/slots")) {
                r = buffer_append(body, "[", 1);
                for (unsigned i = 0; r >= 0 && i < arg_slots; i++)
                        r = buffer_appendf(body,
                                           "%s{\"id\":%u,\"id_task\":-1,\"state\":0,"
                                           "\"is_processing\":false}",
                                           i > 0 ? "," : "", i);
                if (r >= 0)
                        r = buffer_append(body, "]", 1);
                *ret_content_type = "application/json; charset=utf-8";
                return r;
        }

        if (path_is(req, "/props")) {
                r = buffer_appendf(body, "{\"total_slots\":%u,\"model_path\":\"", arg_slots);
                if (r >= 0)
                        r = buffer_append_json_string(body, arg_model);
                if (r >= 0)
                        r = buffer_appendf(body, "\",\"build_info\":\"fake-engine\"}");
                *ret_content_type = "application/json; charset=utf-8";
                return r;
        }

        if (path_is(req, "/metrics") && arg_metrics_style == METRICS_LLAMACPP) {
                *ret_content_type = "text/plain; version=0.0.4";
                r = buffer_appendf(body,
                                   "# HELP llamacpp:prompt_tokens_total "
                                   "Number of prompt tokens processed.\n"
                                   "# TYPE llamacpp:prompt_tokens_total counter\n"
                                   "llamacpp:prompt_tokens_total 0\n"
                                   "# HELP llamacpp:tokens_predicted_total "
                                   "Number of generation tokens processed.\n"
                                   "# TYPE llamacpp:tokens_predicted_total counter\n"
                                   "llamacpp:tokens_predicted_total 0\n"
                                   "# HELP llamacpp:requests_processing Number of requests processing.\n"
                                   "# TYPE llamacpp:requests_processing gauge\n"
                                   "llamacpp:requests_processing %u\n"
                                   "# HELP llamacpp:requests_deferred Number of requests deferred.\n"
                                   "# TYPE llamacpp:requests_deferred gauge\n"
                                   "llamacpp:requests_deferred %u\n"
                                   "# HELP llamacpp:n_slots Number of slots.\n"
                                   "# TYPE llamacpp:n_slots gauge\n"
                                   "llamacpp:n_slots %u\n", arg_requests_running, arg_requests_waiting, arg_slots);
                if (r >= 0 && arg_kv_cache_usage)
                        r = buffer_appendf(body,
                                           "# HELP llamacpp:kv_cache_usage_ratio KV-cache usage. 1 = 100 percent usage.\n"
                                           "# TYPE llamacpp:kv_cache_usage_ratio gauge\n"
                                           "llamacpp:kv_cache_usage_ratio %s\n", arg_kv_cache_usage);
                return r;
        }

        if (path_is(req, "/metrics") && arg_metrics_style == METRICS_VLLM) {
                /* As vLLM labels them: by model_name (here with a quote to escape), and a
                 * second series of running requests that adds nothing. */
                *ret_content_type = "text/plain; version=0.0.4; charset=utf-8";
                return buffer_appendf(body,
                                      "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
                                      "# TYPE vllm:num_requests_running gauge\n"
                                      "vllm:num_requests_running{engine=\"0\",model_name=\"fake \\\"model\\\"\"} %u.0\n"
                                      "vllm:num_requests_running{engine=\"1\",model_name=\"fake \\\"model\\\"\"} 0.0\n"
                                      "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
                                      "# TYPE vllm:num_requests_waiting gauge\n"
                                      "vllm:num_requests_waiting{engine=\"0\",model_name=\"fake \\\"model\\\"\"} %u.0\n"
                                      "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.\n"
                                      "# TYPE vllm:gpu_cache_usage_perc gauge\n"
                                      "vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"fake \\\"model\\\"\"} %s\n"
                                      "# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.\n"
                                      "# TYPE vllm:time_to_first_token_seconds histogram\n"
                                      "vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"+Inf\",model_name=\"fake \\\"model\\\"\"} 0.0\n"
                                      "vllm:time_to_first_token_seconds_count{engine=\"0\",model_name=\"fake \\\"model\\\"\"} 0.0\n"
                                      "vllm:time_to_first_token_seconds_sum{engine=\"0\",model_name=\"fake \\\"model\\\"\"} 0.0\n",
                                      arg_requests_running, arg_requests_waiting, arg_kv_cache_usage ?: "0.0");
        }

        if (path_is(req, "/metrics") && arg_metrics_style == METRICS_NONE)
                return -EOPNOTSUPP;

        return -ENOENT;
}

static int server_handle_request(Server *s, Conn *c, const Request *req) {
        _cleanup_(buffer_done) Buffer body = {};
        const char *content_type = NULL;
        bool close_after, is_get;
        int status, r;

        /* HTTP/1.0 clients get one response per connection; HTTP/1.1 ones keep the connection
         * unless they ask otherwise. */
        close_after = req->minor == 0 || req->connection_close;
        is_get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;

        if (!is_get) {
                status = 404;
                r = conn_queue_error(c, status, "File Not Found", close_after);
        } else if (!server_is_ready(s, now(CLOCK_MONOTONIC)) &&
                   (path_is(req, "/health") || path_is(req, "/slots") ||
                    path_is(req, "/props") || path_is(req, "/metrics"))) {
                status = 503;
                r = conn_queue_error(c, status, "Loading model", close_after);
        } else {
                r = build_body(req, &body, &content_type);
                if (r == -ENOENT) {
                        status = 404;
                        r = conn_queue_error(c, status, "File Not Found", close_after);
                } else if (r == -EOPNOTSUPP) {
                        /* llama-server's answer to GET /metrics without --metrics */
                        status = 501;
                        r = conn_queue_error(c, status, "This server does not support metrics endpoint.",
                                             close_after);
                } else if (r >= 0) {
                        status = 200;
                        r = conn_queue_response(c, status, content_type, &body, close_after);
                } else
                        status = 500;
        }

        if (path_is(req, "/health"))
                server_log_probe(s, status);

        return r;
}

/* Whether the comma separated list [v, v+n) holds token, compared case-insensitively. */
static bool token_in_list(const char *v, size_t n, const char *token) {
        size_t len = strlen(token);

        while (n > 0) {
                size_t k, t;

                while (n > 0 && (*v == ',' || *v == ' ' || *v == '\t'))
                        v++, n--;
                for (k = 0; k < n && v[k] != ','; k++)
                        ;
                for (t = k; t > 0 && (v[t - 1] == ' ' || v[t - 1] == '\t'); t--)
                        ;
                if (t == len && strncasecmp(v, token, len) == 0)
                        return true;
                v += k;
                n -= k;
        }
        return false;
}

/* Parses the header block [p, p+n) (without the final empty line). Returns 0 or an HTTP status
 * to answer with before closing the connection. */
static int request_parse(const char *p, size_t n, Request *ret) {
        const char *end = p + n, *line_end, *sp1, *sp2, *version, *q;
        Request req = {};
        bool have_length = false;

        line_end = memmem(p, n, "\r\n", 2) ?: end;

        sp1 = memchr(p, ' ', line_end - p);
        if (!sp1 || sp1 == p)
                return 400;
        sp2 = memchr(sp1 + 1, ' ', line_end - sp1 - 1);
        if (!sp2 || sp2 == sp1 + 1)
                return 400;

        req.method = p;
        req.method_len = sp1 - p;
        req.path = sp1 + 1;
        q = memchr(req.path, '?', sp2 - req.path);
        req.path_len = (q ?: sp2) - req.path;

        version = sp2 + 1;
        if (line_end - version != 8 || memcmp(version, "HTTP/", 5) != 0 ||
            !isdigit((unsigned char) version[5]) || version[6] != '.' ||
            !isdigit((unsigned char) version[7]))
                return 400;
        if (version[5] != '1')
                return 505;
        req.minor = version[7] - '0';

        for (p = line_end; p < end; p = line_end) {
                const char *colon, *value, *value_end;
                size_t name_len;

                p += 2; /* skip the CRLF that ended the previous line */
                if (p >= end)
                        break;
                line_end = memmem(p, end - p, "\r\n", 2) ?: end;

                colon = memchr(p, ':', line_end - p);
                if (!colon || colon == p)
                        return 400;
                name_len = colon - p;
                for (value = colon + 1; value < line_end && (*value == ' ' || *value == '\t'); value++)
                        ;
                for (value_end = line_end;
                     value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t');
                     value_end--)
                        ;

#define HEADER_IS(h) (name_len == strlen(h) && strncasecmp(p, h, name_len) == 0)
                if (HEADER_IS("Connection")) {
                        if (token_in_list(value, value_end - value, "close"))
                                req.connection_close = true;
                } else if (HEADER_IS("Transfer-Encoding")) {
                        req.chunked = true;
                } else if (HEADER_IS("Content-Length")) {
                        uint64_t v = 0;

                        if (value == value_end)
                                return 400;
                        for (q = value; q < value_end; q++) {
                                if (!isdigit((unsigned char) *q) || v > (UINT64_MAX - 9) / 10)
                                        return 400;
                                v = v * 10 + (uint64_t) (*q - '0');
                        }
                        if (have_length && v != req.content_length)
                                return 400;
                        req.content_length = v;
                        have_length = true;
                }
#undef HEADER_IS
        }

        if (req.chunked)
                return 501;
        if (req.content_length > REQUEST_BODY_MAX)
                return 413;

        *ret = req;
        return 0;
}

/* Answers every complete request in the input buffer. */
static int server_process_input(Server *s, Conn *c) {
        int r;

        while (!c->close_after && c->out.size < RESPONSE_QUEUE_MAX) {
                const char *header_end;
                Request req;
                size_t header_len;

                if (c->body_skip > 0) {
                        size_t k = (size_t) MIN(c->body_skip, (uint64_t) c->in.size);

                        buffer_consume(&c->in, k);
                        c->body_skip -= k;
                        if (c->body_skip > 0)
                                return 0;
                }

                if (c->in.size == 0)
                        return 0;

                header_end = memmem(c->in.data, c->in.size, "\r\n\r\n", 4);
                if (!header_end) {
                        if (c->in.size > REQUEST_HEADER_MAX)
                                return conn_queue_error(c, 431, "Request header too large", true);
                        return 0;
                }

                header_len = header_end - c->in.data;
                if (header_len > REQUEST_HEADER_MAX)
                        return conn_queue_error(c, 431, "Request header too large", true);
                r = request_parse(c->in.data, header_len, &req);
                if (r > 0)
                        return conn_queue_error(c, r, status_reason(r), true);

                r = server_handle_request(s, c, &req);
                if (r < 0)
                        return r;

                buffer_consume(&c->in, header_len + 4);
                c->body_skip = req.content_length;
        }

        return 0;
}

static void conn_flush(Conn *c) {
        while (c->out.size > 0) {
                ssize_t k;

                k = send(c->fd, c->out.data, c->out.size, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return;
                        c->dead = true;
                        return;
                }
                buffer_consume(&c->out, (size_t) k);
        }

        if (c->close_after) {
                (void) shutdown(c->fd, SHUT_WR);
                c->dead = true;
        }
}

/* Answers what can be answered and sends it, for as long as that makes progress: until output
 * is left over (POLLOUT brings us back), or no complete request is buffered (POLLIN does). */
static void conn_pump(Server *s, Conn *c) {
        for (;;) {
                size_t before = c->in.size;

                if (c->dead)
                        return;
                if (!c->close_after && c->out.size < RESPONSE_QUEUE_MAX && c->in.size > 0 &&
                    server_process_input(s, c) < 0) {
                        c->dead = true;
                        return;
                }

                /* The peer is done sending and nothing more is complete: close once flushed. */
                if (c->eof && c->in.size == before && c->out.size < RESPONSE_QUEUE_MAX)
                        c->close_after = true;

                conn_flush(c);
                if (c->dead || c->out.size > 0 || c->in.size == before)
                        return;
        }
}

static void conn_read(Server *s, Conn *c) {
        while (c->in.size < REQUEST_BUFFER_MAX) {
                ssize_t k;

                if (buffer_reserve(&c->in, 4096) < 0) {
                        c->dead = true;
                        return;
                }

                k = recv(c->fd, c->in.data + c->in.size, c->in.allocated - c->in.size - 1, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN) {
                                c->dead = true;
                                return;
                        }
                        break;
                }
                if (k == 0) {
                        c->eof = true;
                        break;
                }
                c->in.size += (size_t) k;
                c->in.data[c->in.size] = '\0';
        }

        conn_pump(s, c);
}

static Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        safe_close(c->fd);
        buffer_done(&c->in);
        buffer_done(&c->out);
        return mfree(c);
}

static void server_accept(Server *s) {
        for (;;) {
                _cleanup_close_ int fd = -1;
                Conn *c;

                fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                /* Log once per episode, not once per retry. */
                                if (!s->accept_failing)
                                        fprintf(stderr, "fake-engine: accept() failed, pausing: %s\n",
                                                strerror(errno));
                                s->accept_failing = true;
                                s->accept_retry_at = now(CLOCK_MONOTONIC) + ACCEPT_RETRY_USEC;
                        }
                        return;
                }
                s->accept_failing = false;

                if (s->n_conns >= s->allocated_conns) {
                        size_t n = MAX(s->allocated_conns * 2, (size_t) 16);
                        Conn **a = realloc(s->conns, n * sizeof(Conn *));

                        if (!a)
                                return;
                        s->conns = a;
                        s->allocated_conns = n;
                }

                c = calloc(1, sizeof(Conn));
                if (!c)
                        return;
                c->fd = TAKE_FD(fd);
                s->conns[s->n_conns++] = c;
        }
}

static void format_address(char *buf, size_t size, const struct sockaddr_storage *sa) {
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;

        if (sa->ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;

                (void) inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
                port = ntohs(in6->sin6_port);
                snprintf(buf, size, "[%s]:%u", host, port);
        } else {
                const struct sockaddr_in *in4 = (const struct sockaddr_in *) sa;

                (void) inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
                port = ntohs(in4->sin_port);
                snprintf(buf, size, "%s:%u", host, port);
        }
}

/* Returns 0, or a negative errno with the failing step already printed. */
static int server_listen(Server *s) {
        _cleanup_close_ int fd = -1;
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
        };
        struct addrinfo *ai = NULL;
        struct sockaddr_storage sa = {};
        socklen_t salen = sizeof sa;
        char host[256], port[16], name[INET6_ADDRSTRLEN + 16];
        const char *display_host;
        size_t len;
        int r;

        /* Accept "[::1]" as well as "::1". */
        len = strlen(arg_host);
        if (arg_host[0] == '[' && len > 2 && arg_host[len - 1] == ']')
                snprintf(host, sizeof host, "%.*s", (int) (len - 2), arg_host + 1);
        else
                snprintf(host, sizeof host, "%s", arg_host);
        snprintf(port, sizeof port, "%d", arg_port);
        display_host = strchr(host, ':') ? "[" : "";

        r = getaddrinfo(host, port, &hints, &ai);
        if (r != 0) {
                fprintf(stderr, "fake-engine: failed to bind %s%s%s:%d: cannot resolve host: %s\n",
                        display_host, host, *display_host ? "]" : "", arg_port, gai_strerror(r));
                return -EADDRNOTAVAIL;
        }

        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                r = -errno;
        else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int) { 1 }, sizeof(int)) < 0)
                r = -errno;
        else if (arg_reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &(int) { 1 }, sizeof(int)) < 0)
                r = -errno;
        else if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
                r = -errno;
        else if (listen(fd, SOMAXCONN) < 0)
                r = -errno;
        else if (getsockname(fd, (struct sockaddr *) &sa, &salen) < 0)
                r = -errno;
        freeaddrinfo(ai);
        if (r < 0) {
                fprintf(stderr, "fake-engine: failed to bind %s%s%s:%d: %s (errno %d)\n",
                        display_host, host, *display_host ? "]" : "", arg_port, strerror(-r), -r);
                return r;
        }

        format_address(name, sizeof name, &sa);
        printf("fake-engine: pid %d listening on %s\n", (int) getpid(), name);
        fflush(stdout);

        s->listen_fd = TAKE_FD(fd);
        return 0;
}

/* --exit-message=: the engine's last words, the lines pool-managerd should quote in last_error. */
static void print_exit_messages(void) {
        for (size_t i = 0; i < arg_n_exit_messages; i++)
                fprintf(stderr, "%s\n", arg_exit_messages[i]);
        fflush(NULL);
}

_noreturn_ static void crash(void) {
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigset_t mask;

        fprintf(stderr, "fake-engine: crashing with signal %d (%s)\n", arg_crash_signal,
                strsignal(arg_crash_signal));
        print_exit_messages();

        (void) sigaction(arg_crash_signal, &sa, NULL);
        sigemptyset(&mask);
        sigaddset(&mask, arg_crash_signal);
        (void) sigprocmask(SIG_UNBLOCK, &mask, NULL);
        (void) raise(arg_crash_signal);

        /* Only reached for signals whose default action is to be ignored. */
        fprintf(stderr, "fake-engine: survived signal %d, exiting\n", arg_crash_signal);
        _exit(128 + arg_crash_signal);
}

static int setup_signals(Server *s) {
        struct sigaction ign = { .sa_handler = SIG_IGN };
        sigset_t mask;

        (void) sigaction(SIGPIPE, &ign, NULL);

        /* An ignored SIGTERM must really be ignored (SIG_IGN, not merely blocked): that is what
         * makes systemd wait for TimeoutStopSec= and then send SIGKILL. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        if (arg_ignore_sigterm)
                (void) sigaction(SIGTERM, &ign, NULL);
        else
                sigaddset(&mask, SIGTERM);

        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        s->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (s->signal_fd < 0)
                return -errno;
        return 0;
}

/* Returns the exit status once a signal asks to stop, -EAGAIN otherwise. */
static int server_read_signal(Server *s) {
        struct signalfd_siginfo si;
        ssize_t k;

        k = read(s->signal_fd, &si, sizeof si);
        if (k != (ssize_t) sizeof si)
                return -EAGAIN;

        fprintf(stderr, "fake-engine: received %s, shutting down\n",
                si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        return si.ssi_signo == SIGTERM ? arg_sigterm_exit : 0;
}

static void server_gc_conns(Server *s) {
        size_t j = 0;

        for (size_t i = 0; i < s->n_conns; i++) {
                if (s->conns[i]->dead) {
                        conn_free(s->conns[i]);
                        /* A freed fd may be what a paused accept() was waiting for. */
                        if (s->accept_retry_at != USEC_INFINITY)
                                s->accept_retry_at = 0;
                } else
                        s->conns[j++] = s->conns[i];
        }
        s->n_conns = j;
}

static int server_run(Server *s) {
        _cleanup_free_ struct pollfd *pfds = NULL;
        size_t allocated_pfds = 0;
        usec_t bind_at, ready_at, exit_at, crash_at, allocate_at, log_at;
        unsigned n_logged = 0;
        int r;

        bind_at = deadline(s->start, arg_delay_bind);
        ready_at = arg_never_ready ? USEC_INFINITY : deadline(s->start, arg_ready_after);
        exit_at = deadline(s->start, arg_exit_after);
        crash_at = deadline(s->start, arg_crash_after);
        allocate_at = deadline(s->start, arg_allocate_after);
        log_at = arg_log_every > 0 ? s->start + arg_log_every : USEC_INFINITY;

        for (;;) {
                usec_t t = now(CLOCK_MONOTONIC), next = USEC_INFINITY;
                struct timespec ts, *timeout = NULL;
                size_t n = 0;

                if (t >= crash_at)
                        crash();
                if (t >= allocate_at) {
                        fprintf(stderr, "fake-engine: allocating memory as asked\n");
                        /* Until the OOM killer (MemoryMax=) ends it, or 2 GiB, never more: where
                         * no limit is enforced it must not eat the machine. */
                        for (unsigned i = 0; i < 128; i++) {
                                char *chunk = malloc(16U << 20);

                                if (chunk)
                                        memset(chunk, 0x5a, 16U << 20);
                                __asm__ volatile("" : : "r"(chunk) : "memory");    /* not elided */
                        }
                        fprintf(stderr, "fake-engine: allocated 2 GiB and still alive\n");
                        allocate_at = USEC_INFINITY;
                }
                if (t >= exit_at) {
                        fprintf(stderr, "fake-engine: exiting with status %d as asked\n", arg_exit_code);
                        return arg_exit_code;
                }
                if (s->listen_fd < 0 && t >= bind_at) {
                        r = server_listen(s);
                        if (r < 0)
                                return EXIT_BIND_FAILURE;
                }
                if (!s->ready_announced && t >= log_at) {
                        /* Like a model load: a line now and then until ready. */
                        printf("fake-engine: loading model (%u)\n", ++n_logged);
                        fflush(stdout);
                        log_at = t + arg_log_every;
                }
                if (!s->ready_announced && t >= ready_at) {
                        printf("%s\n", arg_ready_line);
                        fflush(stdout);
                        s->ready_announced = true;
                        if (arg_ready_log)
                                log_ready(now(CLOCK_REALTIME) - (t - ready_at));
                }
                if (s->accept_retry_at != USEC_INFINITY && t >= s->accept_retry_at)
                        s->accept_retry_at = USEC_INFINITY;

                if (s->listen_fd < 0)
                        next = MIN(next, bind_at);
                if (!s->ready_announced)
                        next = MIN(next, MIN(ready_at, log_at));
                next = MIN(next, MIN(exit_at, crash_at));
                next = MIN(next, allocate_at);
                next = MIN(next, s->accept_retry_at);

                if (allocated_pfds < s->n_conns + 2) {
                        size_t m = s->n_conns + 2 + 16;
                        struct pollfd *p = realloc(pfds, m * sizeof(struct pollfd));

                        if (!p) {
                                fprintf(stderr, "fake-engine: out of memory\n");
                                return EXIT_FAILURE;
                        }
                        pfds = p;
                        allocated_pfds = m;
                }

                pfds[n++] = (struct pollfd) { .fd = s->signal_fd, .events = POLLIN };
                pfds[n++] = (struct pollfd) {
                        .fd = s->listen_fd >= 0 && s->accept_retry_at == USEC_INFINITY ? s->listen_fd : -1,
                        .events = POLLIN,
                };
                for (size_t i = 0; i < s->n_conns; i++) {
                        Conn *c = s->conns[i];

                        pfds[n++] = (struct pollfd) {
                                .fd = c->fd,
                                .events = (c->close_after || c->eof || c->out.size >= RESPONSE_QUEUE_MAX ||
                                           c->in.size >= REQUEST_BUFFER_MAX ? 0 : POLLIN) |
                                          (c->out.size > 0 ? POLLOUT : 0),
                        };
                }

                if (next != USEC_INFINITY) {
                        usec_t left = next > t ? next - t : 0;

                        ts = (struct timespec) {
                                .tv_sec = (time_t) (left / USEC_PER_SEC),
                                .tv_nsec = (long) (left % USEC_PER_SEC * NSEC_PER_USEC),
                        };
                        timeout = &ts;
                }

                if (ppoll(pfds, n, timeout, NULL) < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "fake-engine: ppoll() failed: %s\n", strerror(errno));
                        return EXIT_FAILURE;
                }

                if (pfds[0].revents & POLLIN) {
                        r = server_read_signal(s);
                        if (r >= 0)
                                return r;
                }

                /* Connections first: accepting may reallocate s->conns, and pfds[2 + i] must still
                 * match s->conns[i] while we walk them. */
                for (size_t i = 0; i < s->n_conns; i++) {
                        Conn *c = s->conns[i];
                        short revents = pfds[2 + i].revents;

                        if (revents & (POLLERR | POLLNVAL)) {
                                c->dead = true;
                                continue;
                        }
                        if (revents & POLLIN)
                                conn_read(s, c);
                        else if (revents & POLLOUT)
                                conn_pump(s, c);
                        /* POLLHUP on a TCP socket: both directions are shut, nothing more can be
                         * delivered, and poll() would report it again at once. */
                        if (revents & POLLHUP)
                                c->dead = true;
                }
                server_gc_conns(s);

                if (pfds[1].revents & POLLIN)
                        server_accept(s);
        }
}

int main(int argc, char *argv[]) {
        Server s = {
                .listen_fd = -1,
                .signal_fd = -1,
                .probe_log_fd = -1,
                .accept_retry_at = USEC_INFINITY,
        };
        int r;

        /* Line buffered even into a pipe, so that the journal sees each line when it is printed. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        setvbuf(stderr, NULL, _IOLBF, 0);

        s.start = now(CLOCK_MONOTONIC);

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;

        if (arg_open_devices)
                open_devices(arg_open_devices);

        r = setup_signals(&s);
        if (r < 0) {
                fprintf(stderr, "fake-engine: failed to set up signals: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }

        if (arg_probe_log) {
                s.probe_log_fd = open(arg_probe_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
                if (s.probe_log_fd < 0) {
                        fprintf(stderr, "fake-engine: failed to open probe log '%s': %s\n", arg_probe_log,
                                strerror(errno));
                        return EXIT_FAILURE;
                }
        }

        for (size_t i = 0; i < arg_n_stdout_lines; i++)
                printf("%s\n", arg_stdout_lines[i]);
        for (size_t i = 0; i < arg_n_stderr_lines; i++)
                fprintf(stderr, "%s\n", arg_stderr_lines[i]);
        fflush(NULL);

        r = server_run(&s);
        print_exit_messages();

        for (size_t i = 0; i < s.n_conns; i++)
                conn_free(s.conns[i]);
        free(s.conns);
        safe_close(s.listen_fd);
        safe_close(s.signal_fd);
        safe_close(s.probe_log_fd);
        free(arg_stderr_lines);
        free(arg_stdout_lines);
        free(arg_exit_messages);
        return r;
}
