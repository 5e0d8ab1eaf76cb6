/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * TCP listeners on a port, from the kernel's socket diagnostics (inet_diag over
 * NETLINK_SOCK_DIAG), and the processes that hold them, from /proc/PID/fd.
 *
 * One lookup: a fresh netlink socket, one dump request per address family (inet_diag serves one
 * family per request) for sockets in TCP_LISTEN whose source port is ours (a bytecode filter, so
 * the kernel sends only those), the answers parsed with sock_diag_parse(), then the overlap rules
 * and the /proc scan. A fresh socket per lookup means no stale answer of an earlier, abandoned
 * dump can be read as this one's.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "sock-diag.h"
#include "shared/cgroup-util.h"
#include "shared/escape.h"
#include "shared/fileio.h"
#include "shared/macro.h"
#include "shared/ret-error.h"

/* The kernel puts at most 32 KiB into one dump datagram (netlink_dump() caps its skb there). */
#define RECV_BUFFER_SIZE (32U * 1024U)
#define DUMP_ATTEMPTS 3
#define COMM_MAX 64U

/* ---- Addresses: what a socket or a host covers ---- */

typedef struct Cover {
        bool any4, any6;        /* every address of the family */
        bool has4, has6;        /* the one address a4 / a6 */
        struct in_addr a4;
        struct in6_addr a6;
} Cover;

static void cover_add_ipv6(Cover *c, const struct in6_addr *a, bool dual_stack) {
        if (IN6_IS_ADDR_V4MAPPED(a)) {
                struct in_addr a4;

                memcpy(&a4, &a->s6_addr[12], sizeof(a4));
                if (a4.s_addr == INADDR_ANY)
                        c->any4 = true;
                else {
                        c->has4 = true;
                        c->a4 = a4;
                }
        } else if (IN6_IS_ADDR_UNSPECIFIED(a)) {
                c->any6 = true;
                c->any4 = c->any4 || dual_stack;
        } else {
                c->has6 = true;
                c->a6 = *a;
        }
}

static void cover_add_ipv4(Cover *c, const struct in_addr *a) {
        if (a->s_addr == INADDR_ANY)
                c->any4 = true;
        else {
                c->has4 = true;
                c->a4 = *a;
        }
}

static int cover_from_host(const char *host, Cover *ret) {
        Cover c = {};
        struct in_addr a4;
        struct in6_addr a6;

        if (!host) {
                c.any4 = c.any6 = true;
        } else if (streq(host, "localhost")) {
                c.has4 = c.has6 = true;
                c.a4.s_addr = htonl(INADDR_LOOPBACK);
                c.a6 = in6addr_loopback;
        } else if (inet_pton(AF_INET, host, &a4) == 1)
                cover_add_ipv4(&c, &a4);
        else if (inet_pton(AF_INET6, host, &a6) == 1)
                /* An engine told to bind "::" gets a dual-stack socket unless it asks otherwise
                 * (net.ipv6.bindv6only defaults to 0), so an IPv4 listener is in its way too. */
                cover_add_ipv6(&c, &a6, true);
        else
                return -EINVAL;
        *ret = c;
        return 0;
}

static Cover cover_from_listener(const PortListener *l) {
        Cover c = {};

        if (l->family == AF_INET)
                cover_add_ipv4(&c, &l->addr.in);
        else
                cover_add_ipv6(&c, &l->addr.in6, !l->v6only);
        return c;
}

static bool cover_overlaps(const Cover *a, const Cover *b) {
        bool v4 = (a->any4 && (b->any4 || b->has4)) || (b->any4 && a->has4) ||
                (a->has4 && b->has4 && a->a4.s_addr == b->a4.s_addr);
        bool v6 = (a->any6 && (b->any6 || b->has6)) || (b->any6 && a->has6) ||
                (a->has6 && b->has6 && IN6_ARE_ADDR_EQUAL(&a->a6, &b->a6));

        return v4 || v6;
}

bool port_listener_overlaps_host(const PortListener *l, const char *host) {
        Cover h, s;

        if (cover_from_host(host, &h) < 0)
                return false;
        s = cover_from_listener(l);
        return cover_overlaps(&h, &s);
}

/* ---- Parsing the dump ---- */

PortListener *port_listeners_free(PortListener *l, size_t n) {
        for (size_t i = 0; l && i < n; i++) {
                free(l[i].comm);
                free(l[i].unit);
        }
        return mfree(l);
}

static int listeners_append(PortListener **listeners, size_t *n, const PortListener *l) {
        PortListener *p;

        p = reallocarray(*listeners, *n + 1, sizeof(PortListener));
        if (!p)
                return -ENOMEM;
        p[(*n)++] = *l;
        *listeners = p;
        return 0;
}

static int parse_diag_msg(const struct nlmsghdr *h, uint16_t port, PortListener **listeners, size_t *n,
                          char **ret_error) {
        const struct inet_diag_msg *m = NLMSG_DATA(h);
        const struct rtattr *a;
        PortListener l = {};
        int len;

        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
                return ret_error_set(ret_error, -EBADMSG, "truncated inet_diag message (%u bytes)",
                                     h->nlmsg_len);

        l.family = m->idiag_family;
        l.port = ntohs(m->id.idiag_sport);
        l.inode = m->idiag_inode;
        l.uid = m->idiag_uid;
        if (l.family == AF_INET)
                memcpy(&l.addr.in, m->id.idiag_src, sizeof(l.addr.in));
        else if (l.family == AF_INET6)
                memcpy(&l.addr.in6, m->id.idiag_src, sizeof(l.addr.in6));
        else
                return ret_error_set(ret_error, -EBADMSG, "inet_diag message of unknown address family %d",
                                     l.family);
        if (!inet_ntop(l.family, &l.addr, l.address, sizeof(l.address)))
                return ret_error_set(ret_error, -EBADMSG, "cannot format a socket address");

        /* Attributes follow the message, aligned. A length that runs past the message is a
         * malformed answer, not something to skip: we would read garbage as the next one. */
        len = (int) h->nlmsg_len - (int) NLMSG_LENGTH(NLMSG_ALIGN(sizeof(*m)));
        a = (const struct rtattr *) ((const uint8_t *) m + NLMSG_ALIGN(sizeof(*m)));
        if (len < 0)
                len = 0;        /* a message exactly as long as inet_diag_msg, unpadded */
        for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
                size_t payload = RTA_PAYLOAD(a);

                switch (a->rta_type) {
                case INET_DIAG_SKV6ONLY:
                        if (payload < sizeof(uint8_t))
                                return ret_error_set(ret_error, -EBADMSG,
                                                     "truncated INET_DIAG_SKV6ONLY attribute");
                        l.v6only = *(const uint8_t *) RTA_DATA(a) != 0;
                        break;
                case INET_DIAG_CGROUP_ID:
                        if (payload < sizeof(uint64_t))
                                return ret_error_set(ret_error, -EBADMSG,
                                                     "truncated INET_DIAG_CGROUP_ID attribute");
                        memcpy(&l.cgroup_id, RTA_DATA(a), sizeof(uint64_t));
                        break;
                }
        }
        if (len != 0)
                return ret_error_set(ret_error, -EBADMSG,
                                     "malformed attribute in inet_diag message (%d bytes left)", len);

        if (m->idiag_state != TCP_LISTEN || (port != 0 && l.port != port))
                return 0;
        if (listeners_append(listeners, n, &l) < 0)
                return -ENOMEM;
        return 0;
}

int sock_diag_parse(const void *buf, size_t size, uint32_t seq, uint32_t portid, uint16_t port,
                    PortListener **listeners, size_t *n, char **ret_error) {
        int len, r;

        if (size > INT32_MAX)
                return ret_error_set(ret_error, -EMSGSIZE, "netlink datagram too large");
        if (size == 0)
                return ret_error_set(ret_error, -EBADMSG, "empty netlink datagram");

        len = (int) size;
        for (const struct nlmsghdr *h = buf; len > 0; h = NLMSG_NEXT(h, len)) {
                if (!NLMSG_OK(h, len))
                        return ret_error_set(ret_error, -EBADMSG,
                                             "truncated netlink message (%d bytes left)", len);
                if (h->nlmsg_seq != seq || h->nlmsg_pid != portid)
                        continue;
                if (h->nlmsg_flags & NLM_F_DUMP_INTR)
                        return ret_error_set(ret_error, -EAGAIN,
                                             "the socket dump was interrupted by a change of the table");

                switch (h->nlmsg_type) {
                case NLMSG_ERROR: {
                        const struct nlmsgerr *e = NLMSG_DATA(h);

                        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
                                return ret_error_set(ret_error, -EBADMSG, "truncated netlink error message");
                        if (e->error == 0)      /* an ACK: nothing more will come */
                                return 1;
                        if (e->error > 0 || e->error < -4095)
                                return ret_error_set(ret_error, -EBADMSG, "netlink error %d out of range",
                                                     e->error);
                        return ret_error_set(ret_error, e->error, "the kernel refused the socket dump: %s",
                                             strerror(-e->error));
                }
                case NLMSG_DONE:
                        /* Since Linux 4.x a dump that fails half-way says so here. */
                        if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
                                int e;

                                memcpy(&e, NLMSG_DATA(h), sizeof(e));
                                if (e < 0 && e >= -4095)
                                        return ret_error_set(ret_error, e, "the socket dump failed: %s",
                                                             strerror(-e));
                        }
                        return 1;
                case SOCK_DIAG_BY_FAMILY:
                        r = parse_diag_msg(h, port, listeners, n, ret_error);
                        if (r < 0)
                                return r;
                        break;
                default:
                        break;  /* NLMSG_NOOP and anything newer */
                }
        }
        return 0;
}

/* ---- Talking to the kernel ---- */

static uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

static int dump_send(int fd, int family, uint16_t port, uint32_t seq, char **ret_error) {
        struct {
                struct nlmsghdr h;
                struct inet_diag_req_v2 req;
                struct rtattr rta;
                struct inet_diag_bc_op ops[2];
        } msg = {
                .h = {
                        .nlmsg_len = sizeof(msg),
                        .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                        .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
                        .nlmsg_seq = seq,
                },
                .req = {
                        .sdiag_family = (uint8_t) family,
                        .sdiag_protocol = IPPROTO_TCP,
                        .idiag_states = 1U << TCP_LISTEN,
                        /* INET_DIAG_SKV6ONLY and INET_DIAG_CGROUP_ID are sent whether asked or not. */
                },
                /* "sport == port": S_EQ's operand sits in the next op's `no`; yes jumps past both
                 * (accept at the end), no jumps 4 bytes past the end (reject). Host byte order. */
                .rta = {
                        .rta_len = RTA_LENGTH(sizeof(msg.ops)),
                        .rta_type = INET_DIAG_REQ_BYTECODE,
                },
                .ops = {
                        { .code = INET_DIAG_BC_S_EQ, .yes = 2 * sizeof(struct inet_diag_bc_op),
                          .no = 3 * sizeof(struct inet_diag_bc_op) },
                        { .no = port },
                },
        };
        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

        if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *) &kernel, sizeof(kernel)) < 0)
                return ret_error_set(ret_error, -errno, "cannot send the socket dump request: %m");
        return 0;
}

/*
 * The kernel answers a dump from inside sendto() and recvmsg() (netlink_dump() fills the receive
 * queue there), so there is always something to read at once; a nonblocking recv with poll()
 * only as a guard, on a deadline shared by the whole lookup, rather than SO_RCVTIMEO, which would
 * restart its full timeout on every datagram of a long dump.
 */
static int dump_recv(int fd, uint32_t seq, uint32_t portid, uint16_t port, uint64_t deadline, void *buf,
                     PortListener **listeners, size_t *n, char **ret_error) {
        for (;;) {
                struct sockaddr_nl sender = {};
                struct iovec iov = { .iov_base = buf, .iov_len = RECV_BUFFER_SIZE };
                struct msghdr mh = {
                        .msg_name = &sender,
                        .msg_namelen = sizeof(sender),
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                };
                ssize_t k;
                int r;

                k = recvmsg(fd, &mh, MSG_DONTWAIT);
                if (k < 0) {
                        uint64_t t = now_usec();

                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return ret_error_set(ret_error, -errno, "cannot read the socket dump: %m");
                        if (t >= deadline)
                                return ret_error_set(ret_error, -ETIMEDOUT,
                                                     "no complete answer to the socket dump within %u ms",
                                                     SOCK_DIAG_TIMEOUT_USEC / 1000U);
                        r = poll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1,
                                 (int) ((deadline - t + 999) / 1000));
                        if (r < 0 && errno != EINTR)
                                return ret_error_set(ret_error, -errno, "cannot wait for the socket dump: %m");
                        continue;
                }
                if (mh.msg_flags & MSG_TRUNC)
                        return ret_error_set(ret_error, -EMSGSIZE, "a socket dump datagram was truncated");
                if (sender.nl_pid != 0)
                        continue;       /* not from the kernel */

                r = sock_diag_parse(buf, (size_t) k, seq, portid, port, listeners, n, ret_error);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
}

static int dump_listeners(uint16_t port, PortListener **listeners, size_t *n, char **ret_error) {
        static const int families[] = { AF_INET, AF_INET6 };
        struct sockaddr_nl local = { .nl_family = AF_NETLINK };
        socklen_t local_len = sizeof(local);
        _cleanup_close_ int fd = -1;
        _cleanup_free_ void *buf = NULL;
        uint64_t deadline = now_usec() + SOCK_DIAG_TIMEOUT_USEC;
        uint32_t seq = (uint32_t) time(NULL);
        int r;

        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
                return ret_error_set(ret_error, -errno, "cannot open a NETLINK_SOCK_DIAG socket: %m");
        /* Bind now so that the kernel assigns our port id, which every answer must carry. */
        if (bind(fd, (struct sockaddr *) &local, sizeof(local)) < 0 ||
            getsockname(fd, (struct sockaddr *) &local, &local_len) < 0)
                return ret_error_set(ret_error, -errno, "cannot bind the NETLINK_SOCK_DIAG socket: %m");

        buf = malloc(RECV_BUFFER_SIZE);
        if (!buf)
                return -ENOMEM;

        for (size_t i = 0; i < ELEMENTSOF(families); i++) {
                r = dump_send(fd, families[i], port, ++seq, ret_error);
                if (r < 0)
                        return r;
                r = dump_recv(fd, seq, local.nl_pid, port, deadline, buf, listeners, n, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- Who holds the sockets ---- */

static bool parse_pid(const char *s, pid_t *ret) {
        long v = 0;

        if (!*s)
                return false;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > INT32_MAX / 10)
                        return false;
                v = v * 10 + (*s - '0');
        }
        *ret = (pid_t) v;
        return v > 0;
}

/* Returns how many of the unresolved listeners this process holds; *budget counts fd links read. */
static size_t scan_pid_fds(int proc_fd, pid_t pid, PortListener *l, size_t n,
                           size_t *budget) {
        char link[64], fd_path[32];
        size_t found = 0;
        DIR *d;
        int fd;

        (void) snprintf(fd_path, sizeof(fd_path), "%d/fd", (int) pid);
        fd = openat(proc_fd, fd_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return 0;       /* gone, or not ours to look at */
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return 0;
        }
        for (struct dirent *de; *budget > 0 && (de = readdir(d));) {
                unsigned long long inode;
                ssize_t k;
                int used;

                if (de->d_name[0] == '.')
                        continue;
                (*budget)--;
                k = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
                if (k <= 0)
                        continue;
                link[k] = '\0';
                if (sscanf(link, "socket:[%llu]%n", &inode, &used) != 1 || used != k)
                        continue;
                for (size_t i = 0; i < n; i++)
                        if (l[i].pid == 0 && l[i].inode == inode) {
                                l[i].pid = pid;
                                found++;
                        }
        }
        closedir(d);
        return found;
}

static char *pid_get_comm(pid_t pid) {
        _cleanup_free_ char *comm = NULL;
        char path[32];

        (void) snprintf(path, sizeof(path), "/proc/%d/comm", (int) pid);
        if (read_full_file(path, COMM_MAX, &comm, NULL) < 0)
                return NULL;
        comm[strcspn(comm, "\n")] = '\0';
        return TAKE_PTR(comm);
}

static int resolve_holders(PortListener *l, size_t n, const pid_t *candidates, size_t n_candidates) {
        size_t unresolved = 0, budget = PROC_SCAN_FDS_MAX;
        _cleanup_close_ int proc_fd = -1;
        DIR *proc;

        for (size_t i = 0; i < n; i++)
                if (l[i].inode != 0)
                        unresolved++;
        if (unresolved == 0)
                return 0;

        proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (proc_fd < 0)
                return -errno;

        /* The candidates first: when they hold every socket, as a healthy engine does, the scan of
         * all of /proc (a few ms on a busy machine) is not needed. */
        for (size_t i = 0; i < n_candidates && unresolved > 0 && budget > 0; i++)
                if (candidates[i] > 0) {
                        size_t k = scan_pid_fds(proc_fd, candidates[i], l, n, &budget);
                        unresolved -= MIN(k, unresolved);
                }

        if (unresolved > 0) {
                proc = opendir("/proc");
                if (!proc)
                        return -errno;
                for (struct dirent *de; unresolved > 0 && budget > 0 && (de = readdir(proc));) {
                        pid_t pid;
                        size_t k;

                        if (!parse_pid(de->d_name, &pid))
                                continue;
                        k = scan_pid_fds(dirfd(proc), pid, l, n, &budget);
                        unresolved -= MIN(k, unresolved);
                }
                closedir(proc);
        }

        for (size_t i = 0; i < n; i++) {
                if (l[i].pid == 0)
                        continue;
                l[i].comm = pid_get_comm(l[i].pid);
                if (cg_pid_get_unit(l[i].pid, &l[i].unit) == -ENOMEM)
                        return -ENOMEM;
        }
        return 0;
}

int port_listeners_find_with_candidates(const char *host, uint16_t port, const pid_t *candidates,
                                        size_t n_candidates, PortListener **ret, size_t *ret_n,
                                        char **ret_error) {
        PortListener *all = NULL;
        size_t n_all = 0, n = 0;
        Cover h;
        int r;

        if (cover_from_host(host, &h) < 0)
                return ret_error_set(ret_error, -EINVAL, "not an IP address: \"%s\"", host);

        for (int attempt = 1;; attempt++) {
                r = dump_listeners(port, &all, &n_all, ret_error);
                if (r != -EAGAIN || attempt >= DUMP_ATTEMPTS)
                        break;
                all = port_listeners_free(all, n_all);
                n_all = 0;
        }
        if (r < 0) {
                port_listeners_free(all, n_all);
                return r;
        }

        /* Keep those that overlap the host, in place. */
        for (size_t i = 0; i < n_all; i++) {
                Cover s = cover_from_listener(&all[i]);

                if (cover_overlaps(&h, &s))
                        all[n++] = all[i];
        }

        r = resolve_holders(all, n, candidates, n_candidates);
        if (r == -ENOMEM) {
                port_listeners_free(all, n);
                return r;
        }
        /* Other errors (no /proc): the listeners stand, without holders. */

        if (n == 0)
                all = mfree(all);
        *ret = all;
        *ret_n = n;
        return 0;
}

int port_listeners_find(const char *host, uint16_t port, PortListener **ret, size_t *ret_n,
                        char **ret_error) {
        return port_listeners_find_with_candidates(host, port, NULL, 0, ret, ret_n, ret_error);
}

/* ---- Ownership and messages ---- */

bool port_listener_is_owned(const PortListener *l, const pid_t *pids, size_t n_pids, uint64_t cgroup_id) {
        if (cgroup_id != 0 && l->cgroup_id == cgroup_id)
                return true;
        if (l->pid <= 0)
                return false;
        for (size_t i = 0; i < n_pids; i++)
                if (pids[i] == l->pid)
                        return true;
        return false;
}

const PortListener *port_listeners_first_foreign(const PortListener *l, size_t n, const pid_t *pids,
                                                 size_t n_pids, uint64_t cgroup_id) {
        for (size_t i = 0; i < n; i++)
                if (!port_listener_is_owned(&l[i], pids, n_pids, cgroup_id))
                        return &l[i];
        return NULL;
}

char *port_listener_describe(const PortListener *l) {
        _cleanup_free_ char *comm = NULL, *unit = NULL;
        const char *open = l->family == AF_INET6 ? "[" : "", *close = l->family == AF_INET6 ? "]" : "";
        char *s = NULL;
        int k;

        if (l->pid <= 0) {
                k = asprintf(&s, "%s%s%s:%u held by a process this daemon cannot see (uid %u)",
                             open, l->address, close, l->port, l->uid);
                return k < 0 ? NULL : s;
        }

        comm = escape_text(strempty(l->comm), strlen(strempty(l->comm)));
        unit = l->unit ? escape_text(l->unit, strlen(l->unit)) : NULL;
        if (!comm || (l->unit && !unit))
                return NULL;
        k = asprintf(&s, "%s%s%s:%u held by PID %d (%s)%s%s",
                     open, l->address, close, l->port, (int) l->pid, l->comm ? comm : "?",
                     unit ? " in unit " : "", strempty(unit));
        return k < 0 ? NULL : s;
}
