/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

/*
 * Who listens on a TCP port: the kernel's socket diagnostics (NETLINK_SOCK_DIAG, inet_diag: what
 * `ss -ltnp` uses), IPv4 and IPv6, and the process holding each socket.
 *
 * Used twice per engine start. Before StartTransientUnit: any listener that overlaps the engine's
 * host:port means the port is taken (llama-server binds with SO_REUSEPORT, so a second instance
 * would bind next to a stray one, and half the probes would reach the stray one):
 *
 *   r = port_listeners_find(host, port, &l, &n, &error);
 *   if (r < 0)  -> could not tell (error says why); n > 0 -> PORT_IN_USE, port_listener_describe(&l[0])
 *
 * And on a 200 from the health probe: it counts only while every listener belongs to the engine's
 * unit, by cgroup id (INET_DIAG_CGROUP_ID, the cgroup that created the socket) or by PID:
 *
 *   r = port_listeners_find_with_candidates(host, port, pids, n_pids, &l, &n, &error);
 *   foreign = port_listeners_first_foreign(l, n, pids, n_pids, unit_cgroup_id);
 *
 * Nothing here logs and nothing blocks for long: the dump is answered from the kernel's own
 * tables, one lookup waits at most SOCK_DIAG_TIMEOUT_USEC in all for it, and the /proc scan that
 * finds each socket's process reads at most PROC_SCAN_FDS_MAX fd links.
 */

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SOCK_DIAG_TIMEOUT_USEC (100U * 1000U)
#define PROC_SCAN_FDS_MAX (256U * 1024U)

typedef struct PortListener {
        int family;                             /* AF_INET or AF_INET6 */
        char address[INET6_ADDRSTRLEN];         /* as inet_ntop() writes it: "::", "::ffff:127.0.0.1" */
        union {
                struct in_addr in;
                struct in6_addr in6;
        } addr;
        uint16_t port;
        bool v6only;                            /* AF_INET6 with IPV6_V6ONLY (INET_DIAG_SKV6ONLY) */
        uint64_t inode;                         /* the socket's inode: "socket:[inode]" among /proc/PID/fd links */
        uint32_t uid;                           /* the socket's owner */
        uint64_t cgroup_id;                     /* cgroup2 id of the creator, 0 if the kernel did not say */
        pid_t pid;                              /* a process holding the socket, 0 if none was found */
        char *comm;                             /* that process's /proc/PID/comm, NULL if unknown */
        char *unit;                             /* its systemd unit (from /proc/PID/cgroup), NULL if none */
} PortListener;

PortListener *port_listeners_free(PortListener *l, size_t n);

/*
 * The TCP sockets in LISTEN state on port whose address overlaps host (an IPv4 or IPv6 literal,
 * "localhost" meaning 127.0.0.1 and ::1, or NULL for any address), in the daemon's network
 * namespace, with their holders (pid, comm, unit) where /proc shows them. Overlap: the same
 * address; either side a wildcard of the family (0.0.0.0, ::); an IPv6 "::" socket without
 * IPV6_V6ONLY also covers every IPv4 address, a socket on an IPv4-mapped address ::ffff:a.b.c.d
 * covers a.b.c.d; a host of "::" counts as covering IPv4 too (a dual-stack bind).
 *
 * Returns 0 with *ret (NULL when none) and *ret_n, or a negative errno with *ret_error (if not
 * NULL) saying what went wrong: -EINVAL (host is not an address), -ETIMEDOUT (no complete
 * answer within SOCK_DIAG_TIMEOUT_USEC), -EBADMSG (a malformed answer), -EMSGSIZE, the kernel's
 * own error (NLMSG_ERROR), or the socket call's.
 */
int port_listeners_find(const char *host, uint16_t port, PortListener **ret, size_t *ret_n,
                        char **ret_error);

/*
 * The same, with the fds of candidates (the engine unit's processes) looked at first, and the rest
 * of /proc only for sockets none of them holds. With ~80 processes a full scan costs ~3 ms, a
 * lookup whose sockets the candidates hold ~0.1 ms (tests/test-sock-diag.c measures both): use this
 * on the readiness path.
 */
int port_listeners_find_with_candidates(const char *host, uint16_t port, const pid_t *candidates,
                                        size_t n_candidates, PortListener **ret, size_t *ret_n,
                                        char **ret_error);

/*
 * The parser of one netlink datagram of an inet_diag dump, separate so that it can be tested with
 * crafted input. Messages whose nlmsg_seq or nlmsg_pid are not seq/portid are skipped. Appends a
 * PortListener (without pid, comm, unit) for each SOCK_DIAG_BY_FAMILY message about a socket on
 * port (0: any port) to *listeners and *n.
 *
 * Returns 1 once NLMSG_DONE was seen, 0 when more datagrams are to come, or a negative errno with
 * *ret_error set: the kernel's error from NLMSG_ERROR or NLMSG_DONE, -EBADMSG for a truncated
 * message or attribute or an unknown address family, -EAGAIN when the dump was interrupted
 * (NLM_F_DUMP_INTR: the socket table changed under it; the caller may ask again), -ENOMEM.
 */
int sock_diag_parse(const void *buf, size_t size, uint32_t seq, uint32_t portid, uint16_t port,
                    PortListener **listeners, size_t *n, char **ret_error);

/* Whether l's address overlaps host (see port_listeners_find()). false if host is not valid. */
bool port_listener_overlaps_host(const PortListener *l, const char *host);

/*
 * Whether l belongs to the engine: the kernel says it was created in the cgroup cgroup_id (when
 * both are known), or the process holding it is one of pids. A listener whose holder could not be
 * seen belongs to nobody.
 */
bool port_listener_is_owned(const PortListener *l, const pid_t *pids, size_t n_pids, uint64_t cgroup_id);

/* The first listener not owned (see port_listener_is_owned()), NULL if all are. */
const PortListener *port_listeners_first_foreign(const PortListener *l, size_t n, const pid_t *pids,
                                                 size_t n_pids, uint64_t cgroup_id);

/*
 * For messages (comm escaped, see shared/escape.h):
 *   "127.0.0.1:8080 held by PID 1234 (llama-server) in unit foo.service"
 *   "[::]:8080 held by PID 1234 (llama-server)"
 *   "0.0.0.0:8080 held by a process this daemon cannot see (uid 1000)"
 * NULL on OOM.
 */
char *port_listener_describe(const PortListener *l);
