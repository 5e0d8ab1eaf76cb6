/* SPDX-License-Identifier: GPL-3.0-or-later */

/* pool-managerd: main only. Arguments, configuration, manager start-up, the event loop. */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "build-config.h"
#include "config.h"
#include "http.h"
#include "http-events.h"
#include "log.h"
#include "manager.h"

static bool arg_user = false;
static char *arg_config = NULL;
static char *arg_runtime_dir = NULL;
static char *arg_listen = NULL;

static void help(void) {
        printf("%s [OPTIONS...]\n\n"
               "Runs LLM inference engines as transient systemd units and keeps a registry of pools.\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show package version\n"
               "     --config=PATH       Read configuration from PATH (drop-ins from PATH.d/)\n"
               "     --user              Talk to the user service manager (like systemctl --user)\n"
               "     --system            Talk to the system service manager (default)\n"
               "     --runtime-dir=DIR   Override RuntimeDirectory=\n"
               "     --listen=ADDR       Override Listen= (host:port)\n\n"
               "See pool-managerd(8) and pool-managerd.conf(5).\n",
               program_invocation_short_name);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_CONFIG,
                ARG_USER,
                ARG_SYSTEM,
                ARG_RUNTIME_DIR,
                ARG_LISTEN,
        };
        static const struct option options[] = {
                { "help",        no_argument,       NULL, 'h'             },
                { "version",     no_argument,       NULL, ARG_VERSION     },
                { "config",      required_argument, NULL, ARG_CONFIG      },
                { "user",        no_argument,       NULL, ARG_USER        },
                { "system",      no_argument,       NULL, ARG_SYSTEM      },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "listen",      required_argument, NULL, ARG_LISTEN      },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("pool-managerd %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_CONFIG:
                        arg_config = optarg;
                        break;
                case ARG_USER:
                        arg_user = true;
                        break;
                case ARG_SYSTEM:
                        arg_user = false;
                        break;
                case ARG_RUNTIME_DIR:
                        if (optarg[0] != '/') {
                                log_error("--runtime-dir= must be an absolute path: \"%s\"", optarg);
                                return -EINVAL;
                        }
                        arg_runtime_dir = optarg;
                        break;
                case ARG_LISTEN:
                        arg_listen = optarg;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }

        if (optind < argc) {
                log_error("%s takes no positional arguments.", program_invocation_short_name);
                return -EINVAL;
        }
        return 1;
}

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_free_ char *default_path = NULL;
        sigset_t mask;
        int r;

        log_setup(LOG_TARGET_AUTO);

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r;

        if (!arg_config) {
                r = config_default_path(arg_user, &default_path);
                if (r < 0)
                        return log_error_errno(r, "Failed to determine configuration path: %m");
                arg_config = default_path;
        }
        r = manager_read_config(arg_user, arg_config, arg_runtime_dir, arg_listen, &config);
        if (r < 0)
                return r;

        /* sd-event's signal sources need the signals blocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");

        r = manager_new(&m, arg_user, TAKE_PTR(config), arg_config, arg_runtime_dir, arg_listen);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate manager: %m");

        r = manager_startup(m);
        if (r < 0)
                return r;

        r = http_events_new(&m->events, m);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the HTTP event streams: %m");
        r = http_server_new(&m->http, m);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate HTTP server: %m");
        r = http_server_start(m->http);
        if (r < 0)
                return r;

        r = manager_run(m);
        if (r < 0 && !m->exit_logged)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}

int main(int argc, char *argv[]) {
        int r;

        r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
