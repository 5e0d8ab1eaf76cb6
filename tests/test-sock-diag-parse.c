/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * The inet_diag dump parser against crafted datagrams (good, multi-part, foreign, truncated,
 * refused, garbage), the address overlap rules, ownership, messages, and the unit of a
 * /proc/PID/cgroup file. No socket is opened: tests/test-sock-diag.c does that.
 */

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "shared/cgroup-util.h"
#include "shared/macro.h"
#include "sock-diag.h"
#include "test-util.h"

#define SEQ 7U
#define PORTID 4242U
#define PORT 8080

typedef struct Buf {
        _Alignas(8) uint8_t data[16384];
        size_t size;
} Buf;

static struct nlmsghdr *put_hdr(Buf *b, uint16_t type, uint16_t flags, uint32_t seq, uint32_t portid,
                                size_t payload) {
        struct nlmsghdr *h = (struct nlmsghdr *) (b->data + b->size);

        ASSERT_TRUE(b->size + NLMSG_SPACE(payload) <= sizeof(b->data));
        memset(h, 0, NLMSG_SPACE(payload));
        *h = (struct nlmsghdr) {
                .nlmsg_len = NLMSG_LENGTH(payload),
                .nlmsg_type = type,
                .nlmsg_flags = flags,
                .nlmsg_seq = seq,
                .nlmsg_pid = portid,
        };
        b->size += NLMSG_SPACE(payload);
        return h;
}

static void put_attr(struct nlmsghdr *h, Buf *b, uint16_t type, const void *data, size_t len) {
        struct rtattr *a = (struct rtattr *) (b->data + b->size);

        ASSERT_TRUE(b->size + RTA_SPACE(len) <= sizeof(b->data));
        memset(a, 0, RTA_SPACE(len));
        a->rta_len = RTA_LENGTH(len);
        a->rta_type = type;
        memcpy(RTA_DATA(a), data, len);
        b->size += RTA_SPACE(len);
        h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len);
}

typedef struct Sock {
        int family;
        const char *address;
        uint16_t port;
        uint8_t state;
        uint32_t inode;
        uint32_t uid;
        int v6only;             /* -1: no attribute */
        uint64_t cgroup_id;     /* 0: no attribute */
        uint32_t seq, portid;   /* 0: SEQ, PORTID */
} Sock;

static struct nlmsghdr *put_sock(Buf *b, const Sock *s) {
        struct nlmsghdr *h = put_hdr(b, SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, s->seq ?: SEQ, s->portid ?: PORTID,
                                     sizeof(struct inet_diag_msg));
        struct inet_diag_msg *m = NLMSG_DATA(h);

        m->idiag_family = (uint8_t) s->family;
        m->idiag_state = s->state ?: TCP_LISTEN;
        m->id.idiag_sport = htons(s->port ?: PORT);
        m->idiag_inode = s->inode;
        m->idiag_uid = s->uid;
        if (s->family == AF_INET || s->family == AF_INET6)
                ASSERT_EQ(inet_pton(s->family, s->address, m->id.idiag_src), 1);
        if (s->v6only >= 0) {
                uint8_t v = (uint8_t) s->v6only;
                put_attr(h, b, INET_DIAG_SKV6ONLY, &v, sizeof(v));
        }
        if (s->cgroup_id != 0)
                put_attr(h, b, INET_DIAG_CGROUP_ID, &s->cgroup_id, sizeof(s->cgroup_id));
        return h;
}

static void put_done(Buf *b, uint32_t seq, int error) {
        struct nlmsghdr *h = put_hdr(b, NLMSG_DONE, NLM_F_MULTI, seq, PORTID, sizeof(int));

        memcpy(NLMSG_DATA(h), &error, sizeof(int));
}

static void put_error(Buf *b, int error) {
        struct nlmsghdr *h = put_hdr(b, NLMSG_ERROR, 0, SEQ, PORTID, sizeof(struct nlmsgerr));
        struct nlmsgerr *e = NLMSG_DATA(h);

        e->error = error;
}

typedef struct Parsed {
        PortListener *l;
        size_t n;
        char *error;
} Parsed;

static void parsed_done(Parsed *p) {
        port_listeners_free(p->l, p->n);
        free(p->error);
        *p = (Parsed) {};
}

static int parse(Parsed *p, const Buf *b, uint16_t port) {
        return sock_diag_parse(b->data, b->size, SEQ, PORTID, port, &p->l, &p->n, &p->error);
}

TEST(parse_good_dump) {
        _cleanup_(parsed_done) Parsed p = {};
        Buf b = {};

        put_sock(&b, &(Sock) { AF_INET, "127.0.0.1", .inode = 11, .uid = 1000, .v6only = -1,
                                .cgroup_id = 0x1234567890ULL });
        put_sock(&b, &(Sock) { AF_INET6, "::", .inode = 12, .v6only = 1, .cgroup_id = 99 });
        put_sock(&b, &(Sock) { AF_INET6, "::ffff:10.1.2.3", .inode = 13, .v6only = 0 });
        put_done(&b, SEQ, 0);

        ASSERT_EQ(parse(&p, &b, PORT), 1);
        ASSERT_NULL(p.error);
        ASSERT_EQ(p.n, 3);
        ASSERT_EQ(p.l[0].family, AF_INET);
        ASSERT_STREQ(p.l[0].address, "127.0.0.1");
        ASSERT_EQ(p.l[0].port, PORT);
        ASSERT_EQ(p.l[0].inode, 11);
        ASSERT_EQ(p.l[0].uid, 1000);
        ASSERT_EQ(p.l[0].cgroup_id, 0x1234567890ULL);
        ASSERT_FALSE(p.l[0].v6only);
        ASSERT_EQ(p.l[0].pid, 0);
        ASSERT_NULL(p.l[0].comm);
        ASSERT_STREQ(p.l[1].address, "::");
        ASSERT_TRUE(p.l[1].v6only);
        ASSERT_EQ(p.l[1].cgroup_id, 99);
        ASSERT_STREQ(p.l[2].address, "::ffff:10.1.2.3");
        ASSERT_FALSE(p.l[2].v6only);
        ASSERT_EQ(p.l[2].cgroup_id, 0);
}

TEST(parse_multi_part) {
        _cleanup_(parsed_done) Parsed p = {};
        Buf a = {}, b = {};

        put_sock(&a, &(Sock) { AF_INET, "0.0.0.0", .inode = 1, .v6only = -1 });
        put_sock(&b, &(Sock) { AF_INET, "127.0.0.2", .inode = 2, .v6only = -1 });
        put_done(&b, SEQ, 0);

        ASSERT_EQ(parse(&p, &a, PORT), 0);
        ASSERT_EQ(p.n, 1);
        ASSERT_EQ(parse(&p, &b, PORT), 1);
        ASSERT_EQ(p.n, 2);
        ASSERT_EQ(p.l[1].inode, 2);
}

TEST(parse_filters_port_state_seq_and_portid) {
        _cleanup_(parsed_done) Parsed p = {};
        Buf b = {};

        put_sock(&b, &(Sock) { AF_INET, "127.0.0.1", .port = 8081, .inode = 1, .v6only = -1 });
        put_sock(&b, &(Sock) { AF_INET, "127.0.0.1", .state = TCP_ESTABLISHED, .inode = 2, .v6only = -1 });
        put_sock(&b, &(Sock) { AF_INET, "127.0.0.1", .seq = SEQ + 1, .inode = 3, .v6only = -1 });
        put_sock(&b, &(Sock) { AF_INET, "127.0.0.1", .portid = PORTID + 1, .inode = 4, .v6only = -1 });
        put_done(&b, SEQ - 1, 0);       /* another dump's end: not ours */
        put_sock(&b, &(Sock) { AF_INET, "127.0.0.1", .inode = 5, .v6only = -1 });
        put_hdr(&b, NLMSG_NOOP, 0, SEQ, PORTID, 0);

        ASSERT_EQ(parse(&p, &b, PORT), 0);
        ASSERT_EQ(p.n, 1);
        ASSERT_EQ(p.l[0].inode, 5);

        /* Port 0: any port. */
        parsed_done(&p);
        ASSERT_EQ(parse(&p, &b, 0), 0);
        ASSERT_EQ(p.n, 2);
}

TEST(parse_nlmsg_error) {
        _cleanup_(parsed_done) Parsed p = {};
        Buf b = {}, ack = {}, bad = {};

        put_error(&b, -EPERM);
        ASSERT_EQ(parse(&p, &b, PORT), -EPERM);
        ASSERT_CONTAINS(p.error, "refused");
        ASSERT_CONTAINS(p.error, "Operation not permitted");

        parsed_done(&p);
        put_error(&ack, 0);
        ASSERT_EQ(parse(&p, &ack, PORT), 1);

        parsed_done(&p);
        put_error(&bad, 5);
        ASSERT_EQ(parse(&p, &bad, PORT), -EBADMSG);
}

TEST(parse_nlmsg_error_truncated) {
        _cleanup_(parsed_done) Parsed p = {};
        Buf b = {};

        put_hdr(&b, NLMSG_ERROR, 0, SEQ, PORTID, 2);
        ASSERT_EQ(parse(&p, &b, PORT), -EBADMSG);
        ASSERT_CONTAINS(p.error, "truncated");
}

TEST(parse_done_with_error) {
        _cleanup_(parsed_done) Parsed p = {};
        Buf b = {}, bare = {};

        put_done(&b, SEQ, -EINTR);
        ASSERT_EQ(parse(&p, &b, PORT), -EINTR);
        ASSERT_CONTAINS(p.error, "dump failed");

        /* An old kernel's DONE without payload. */
        parsed_done(&p);
        put_hdr(&bare, NLMSG_DONE, 0, SEQ, PORTID, 0);
        ASSERT_EQ(parse(&p, &bare, PORT), 1);
}

TEST(parse_dump_interrupted) {
        _cleanup_(parsed_done) Parsed p = {};
        Buf b = {};
        struct nlmsghdr *h = put_sock(&b, &(Sock) { AF_INET, "127.0.0.1", .v6only = -1 });

        h->nlmsg_flags |= NLM_F_DUMP_INTR;
        ASSERT_EQ(parse(&p, &b, PORT), -EAGAIN);
}

TEST(parse_truncated_headers) {
        _cleanup_(parsed_done) Parsed p = {};
        Buf b = {};
        struct nlmsghdr *h;

        put_sock(&b, &(Sock) { AF_INET, "127.0.0.1", .v6only = -1 });
        put_done(&b, SEQ, 0);

        /* Cut anywhere inside: never a crash, never success. */
        for (size_t cut = 1; cut < b.size; cut++) {
                Buf c = b;
                int r;

                c.size = cut;
                r = parse(&p, &c, PORT);
                ASSERT_TRUE(r == -EBADMSG || r == 0);
                if (cut < NLMSG_HDRLEN)
                        ASSERT_EQ(r, -EBADMSG);
                parsed_done(&p);
        }

        ASSERT_EQ(sock_diag_parse(b.data, 0, SEQ, PORTID, PORT, &p.l, &p.n, &p.error), -EBADMSG);
        parsed_done(&p);

        /* nlmsg_len shorter than a header, or past the end. */
        h = (struct nlmsghdr *) b.data;
        h->nlmsg_len = 8;
        ASSERT_EQ(parse(&p, &b, PORT), -EBADMSG);
        parsed_done(&p);
        h->nlmsg_len = (uint32_t) b.size + 4;
        ASSERT_EQ(parse(&p, &b, PORT), -EBADMSG);
}

TEST(parse_short_inet_diag_msg) {
        _cleanup_(parsed_done) Parsed p = {};
        Buf b = {};

        put_hdr(&b, SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, SEQ, PORTID, sizeof(struct inet_diag_msg) - 4);
        ASSERT_EQ(parse(&p, &b, PORT), -EBADMSG);
        ASSERT_CONTAINS(p.error, "truncated inet_diag message");
}

TEST(parse_bad_attributes) {
        _cleanup_(parsed_done) Parsed p = {};
        Buf b = {};
        struct nlmsghdr *h = put_sock(&b, &(Sock) { AF_INET6, "::1", .v6only = 1, .cgroup_id = 5 });
        struct rtattr *a = (struct rtattr *) ((uint8_t *) NLMSG_DATA(h) +
                                              NLMSG_ALIGN(sizeof(struct inet_diag_msg)));
        uint16_t good = a->rta_len;

        /* rta_len past the end of the message */
        a->rta_len = 200;
        ASSERT_EQ(parse(&p, &b, PORT), -EBADMSG);
        ASSERT_CONTAINS(p.error, "malformed attribute");
        parsed_done(&p);

        /* rta_len smaller than an rtattr */
        a->rta_len = 2;
        ASSERT_EQ(parse(&p, &b, PORT), -EBADMSG);
        parsed_done(&p);

        /* an attribute with a payload too short for its type */
        a->rta_len = good;
        a = RTA_NEXT(a, (int) { 1000 });
        ASSERT_EQ(a->rta_type, INET_DIAG_CGROUP_ID);
        a->rta_len = RTA_LENGTH(4);
        ASSERT_EQ(parse(&p, &b, PORT), -EBADMSG);
        ASSERT_CONTAINS(p.error, "INET_DIAG_CGROUP_ID");
}

TEST(parse_unknown_family) {
        _cleanup_(parsed_done) Parsed p = {};
        Buf b = {};

        put_sock(&b, &(Sock) { AF_UNIX, NULL, .v6only = -1 });
        ASSERT_EQ(parse(&p, &b, PORT), -EBADMSG);
        ASSERT_CONTAINS(p.error, "family");
}

TEST(parse_garbage) {
        /* Random bytes, and random corruptions of a good dump: any answer but a crash or a leak. */
        Buf good = {};
        unsigned seed = 1;

        put_sock(&good, &(Sock) { AF_INET6, "::", .inode = 1, .v6only = 0, .cgroup_id = 7 });
        put_sock(&good, &(Sock) { AF_INET, "1.2.3.4", .inode = 2, .v6only = -1, .cgroup_id = 7 });
        put_done(&good, SEQ, 0);

        for (unsigned i = 0; i < 20000; i++) {
                _cleanup_(parsed_done) Parsed p = {};
                Buf b = good;
                int r;

                if (i % 2 == 0) {
                        b.size = (size_t) rand_r(&seed) % 512 + 1;
                        for (size_t k = 0; k < b.size; k++)
                                b.data[k] = (uint8_t) rand_r(&seed);
                        /* Often make it look like ours so the parser goes deeper. */
                        if (b.size >= NLMSG_HDRLEN && i % 4 == 0) {
                                struct nlmsghdr *h = (struct nlmsghdr *) b.data;

                                h->nlmsg_seq = SEQ;
                                h->nlmsg_pid = PORTID;
                                h->nlmsg_type = SOCK_DIAG_BY_FAMILY;
                                h->nlmsg_flags = 0;
                                h->nlmsg_len = (uint32_t) (rand_r(&seed) % (b.size + 1));
                        }
                } else
                        for (int k = 0; k < 3; k++)
                                b.data[(size_t) rand_r(&seed) % b.size] = (uint8_t) rand_r(&seed);

                r = parse(&p, &b, 0);
                ASSERT_TRUE(r >= -4095 && r <= 1);
                if (r < 0)
                        ASSERT_TRUE(p.error != NULL || r == -ENOMEM);
        }
}

/* ---- overlap ---- */

static PortListener listener(int family, const char *address, bool v6only) {
        PortListener l = { .family = family, .port = PORT, .v6only = v6only };

        ASSERT_EQ(inet_pton(family, address, &l.addr), 1);
        snprintf(l.address, sizeof(l.address), "%s", address);
        return l;
}

TEST(overlap_ipv4) {
        PortListener lo = listener(AF_INET, "127.0.0.1", false), any = listener(AF_INET, "0.0.0.0", false);

        ASSERT_TRUE(port_listener_overlaps_host(&lo, "127.0.0.1"));
        ASSERT_FALSE(port_listener_overlaps_host(&lo, "127.0.0.2"));
        ASSERT_TRUE(port_listener_overlaps_host(&lo, "0.0.0.0"));
        ASSERT_TRUE(port_listener_overlaps_host(&lo, "localhost"));
        ASSERT_FALSE(port_listener_overlaps_host(&lo, "::1"));
        ASSERT_TRUE(port_listener_overlaps_host(&lo, "::"));            /* a dual-stack bind */
        ASSERT_TRUE(port_listener_overlaps_host(&lo, "::ffff:127.0.0.1"));
        ASSERT_TRUE(port_listener_overlaps_host(&lo, NULL));

        ASSERT_TRUE(port_listener_overlaps_host(&any, "127.0.0.1"));
        ASSERT_TRUE(port_listener_overlaps_host(&any, "10.0.0.1"));
        ASSERT_FALSE(port_listener_overlaps_host(&any, "::1"));
        ASSERT_FALSE(port_listener_overlaps_host(&any, "fe80::1"));
        ASSERT_TRUE(port_listener_overlaps_host(&any, "localhost"));
}

TEST(overlap_ipv6) {
        PortListener lo = listener(AF_INET6, "::1", true), other = listener(AF_INET6, "2001:db8::1", false);

        ASSERT_TRUE(port_listener_overlaps_host(&lo, "::1"));
        ASSERT_TRUE(port_listener_overlaps_host(&lo, "localhost"));
        ASSERT_TRUE(port_listener_overlaps_host(&lo, "::"));
        ASSERT_FALSE(port_listener_overlaps_host(&lo, "127.0.0.1"));
        ASSERT_FALSE(port_listener_overlaps_host(&lo, "0.0.0.0"));
        ASSERT_FALSE(port_listener_overlaps_host(&lo, "2001:db8::1"));
        ASSERT_TRUE(port_listener_overlaps_host(&other, "2001:db8::1"));
        ASSERT_TRUE(port_listener_overlaps_host(&other, "2001:db8:0::1"));     /* spelled otherwise */
}

TEST(overlap_ipv6_wildcard) {
        PortListener v6only = listener(AF_INET6, "::", true), dual = listener(AF_INET6, "::", false);

        ASSERT_TRUE(port_listener_overlaps_host(&v6only, "::1"));
        ASSERT_TRUE(port_listener_overlaps_host(&v6only, "fe80::1"));
        ASSERT_FALSE(port_listener_overlaps_host(&v6only, "127.0.0.1"));
        ASSERT_FALSE(port_listener_overlaps_host(&v6only, "0.0.0.0"));
        ASSERT_TRUE(port_listener_overlaps_host(&v6only, "localhost"));

        ASSERT_TRUE(port_listener_overlaps_host(&dual, "::1"));
        ASSERT_TRUE(port_listener_overlaps_host(&dual, "127.0.0.1"));
        ASSERT_TRUE(port_listener_overlaps_host(&dual, "0.0.0.0"));
        ASSERT_TRUE(port_listener_overlaps_host(&dual, "192.168.1.1"));
}

TEST(overlap_ipv4_mapped) {
        PortListener mapped = listener(AF_INET6, "::ffff:127.0.0.1", false);
        PortListener mapped_any = listener(AF_INET6, "::ffff:0.0.0.0", false);

        ASSERT_TRUE(port_listener_overlaps_host(&mapped, "127.0.0.1"));
        ASSERT_TRUE(port_listener_overlaps_host(&mapped, "0.0.0.0"));
        ASSERT_FALSE(port_listener_overlaps_host(&mapped, "127.0.0.2"));
        ASSERT_FALSE(port_listener_overlaps_host(&mapped, "::1"));
        ASSERT_TRUE(port_listener_overlaps_host(&mapped_any, "10.9.8.7"));
        ASSERT_FALSE(port_listener_overlaps_host(&mapped_any, "::1"));
}

TEST(overlap_invalid_host) {
        PortListener any = listener(AF_INET, "0.0.0.0", false);

        ASSERT_FALSE(port_listener_overlaps_host(&any, "example.com"));
        ASSERT_FALSE(port_listener_overlaps_host(&any, ""));
        ASSERT_FALSE(port_listener_overlaps_host(&any, "[::1]"));
}

/* ---- ownership and messages ---- */

TEST(ownership) {
        PortListener l[3] = {
                { .pid = 10, .cgroup_id = 100 },
                { .pid = 11, .cgroup_id = 0 },
                { .pid = 0, .cgroup_id = 200 },
        };
        pid_t engine[] = { 11, 10 };

        ASSERT_TRUE(port_listener_is_owned(&l[0], engine, 2, 0));
        ASSERT_TRUE(port_listener_is_owned(&l[0], NULL, 0, 100));
        ASSERT_FALSE(port_listener_is_owned(&l[0], NULL, 0, 0));
        ASSERT_FALSE(port_listener_is_owned(&l[2], engine, 2, 100));   /* unseen holder, other cgroup */
        ASSERT_TRUE(port_listener_is_owned(&l[2], NULL, 0, 200));

        ASSERT_TRUE(port_listeners_first_foreign(l, 2, engine, 2, 0) == NULL);
        ASSERT_TRUE(port_listeners_first_foreign(l, 3, engine, 2, 0) == &l[2]);
        ASSERT_TRUE(port_listeners_first_foreign(l, 3, engine, 1, 0) == &l[0]);
        ASSERT_TRUE(port_listeners_first_foreign(l, 3, engine + 1, 1, 200) == &l[1]);
        ASSERT_TRUE(port_listeners_first_foreign(NULL, 0, NULL, 0, 0) == NULL);
}

TEST(describe) {
        PortListener a = listener(AF_INET, "127.0.0.1", false), b = listener(AF_INET6, "::", false),
                     c = listener(AF_INET, "0.0.0.0", false);
        _cleanup_free_ char *sa = NULL, *sb = NULL, *sc = NULL;

        a.pid = 1234;
        a.comm = (char *) "llama-server";
        a.unit = (char *) "foo.service";
        b.pid = 99;
        b.comm = (char *) "evil\x1b[0m";
        c.uid = 1000;

        sa = port_listener_describe(&a);
        sb = port_listener_describe(&b);
        sc = port_listener_describe(&c);
        ASSERT_STREQ(sa, "127.0.0.1:8080 held by PID 1234 (llama-server) in unit foo.service");
        ASSERT_STREQ(sb, "[::]:8080 held by PID 99 (evil\\x1b[0m)");
        ASSERT_STREQ(sc, "0.0.0.0:8080 held by a process this daemon cannot see (uid 1000)");
}

/* ---- /proc/PID/cgroup ---- */

static void assert_unit(const char *content, const char *expected) {
        _cleanup_free_ char *unit = NULL;

        ASSERT_EQ(cg_unit_from_proc_cgroup(content, &unit), expected ? 1 : 0);
        if (expected)
                ASSERT_STREQ(unit, expected);
        else
                ASSERT_NULL(unit);
}

TEST(unit_from_proc_cgroup) {
        assert_unit("0::/system.slice/foo.service\n", "foo.service");
        assert_unit("0::/user.slice/user-1000.slice/session-2.scope\n", "session-2.scope");
        /* user units: the deepest unit wins over user@.service */
        assert_unit("0::/pool-sandbox-x.slice/user@0.service/pool.slice/pool-engines.slice/"
                    "pool-engine-1.service\n", "pool-engine-1.service");
        /* a sub-cgroup of a unit with Delegate= */
        assert_unit("0::/system.slice/docker-abc.scope/payload/x\n", "docker-abc.scope");
        /* hybrid: cgroup2 root, name=systemd knows */
        assert_unit("9:name=systemd:/system.slice/bar.service\n4:memory:/x\n0::/\n", "bar.service");
        /* v1 only */
        assert_unit("12:pids:/\n1:name=systemd:/system.slice/baz.service\n", "baz.service");
        /* escaped */
        assert_unit("0::/system.slice/_cgroup.foo.service\n", "cgroup.foo.service");
        /* no unit */
        assert_unit("0::/\n", NULL);
        assert_unit("0::/system.slice\n", NULL);
        assert_unit("", NULL);
        assert_unit("garbage\n::\n0:\n", NULL);
        assert_unit("0::/a.service", "a.service");      /* no final newline */
}

DEFINE_TEST_MAIN
