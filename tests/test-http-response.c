/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <errno.h>

#include "http-response.h"
#include "test-util.h"

/* Feeds text in pieces of `piece` bytes (0: all at once), then the end of the connection if
 * `eof` and the answer is not complete yet. Every split must give the same result. */
static int parse_split(const char *text, size_t body_max, size_t piece, bool eof, HttpResponse *r) {
        size_t n = strlen(text), at = 0;
        int k = 0;

        http_response_init(r, body_max);
        if (piece == 0)
                piece = n ?: 1;
        while (at < n && k == 0) {
                size_t m = n - at < piece ? n - at : piece;

                k = http_response_feed(r, text + at, m);
                at += m;
        }
        if (k == 0 && eof)
                k = http_response_eof(r);
        return k;
}

/* The result of every split, checked to agree; r holds the whole-text parse afterwards. */
static int parse(const char *text, size_t body_max, bool eof, HttpResponse *r) {
        int whole = parse_split(text, body_max, 0, eof, r);

        for (size_t piece = 1; piece < strlen(text); piece++) {
                HttpResponse s;
                int k = parse_split(text, body_max, piece, eof, &s);

                ASSERT_EQ(k, whole);
                if (whole < 0)
                        ASSERT_STREQ(s.error, r->error);
                else {
                        ASSERT_EQ(s.status, r->status);
                        ASSERT_EQ(s.size, r->size);
                        if (r->size > 0)
                                ASSERT_TRUE(memcmp(s.body, r->body, r->size) == 0);
                }
                http_response_done(&s);
        }
        return whole;
}

TEST(content_length) {
        HttpResponse r;

        ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: x\r\n\r\nhello", 100, false, &r), 1);
        ASSERT_EQ(r.status, 200);
        ASSERT_STREQ(r.body, "hello");
        ASSERT_EQ(r.size, 5);
        http_response_done(&r);

        /* Bytes after the answer are not read. */
        ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", 100, false, &r), 1);
        ASSERT_STREQ(r.body, "ok");
        http_response_done(&r);

        /* Dropped body: complete all the same, nothing kept. */
        ASSERT_EQ(parse("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 7\r\n\r\nloading", 0, false, &r), 1);
        ASSERT_EQ(r.status, 503);
        ASSERT_NULL(r.body);
        ASSERT_EQ(r.size, 0);
        http_response_done(&r);

        ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 100, false, &r), 1);
        ASSERT_EQ(r.size, 0);
        http_response_done(&r);

        /* Not complete without all of it. */
        ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello", 100, false, &r), 0);
        http_response_done(&r);
}

TEST(chunked) {
        HttpResponse r;

        ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "5\r\nhello\r\n6;name=value\r\n world\r\nA \r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n",
                        100, false, &r), 1);
        ASSERT_STREQ(r.body, "hello world0123456789");
        http_response_done(&r);

        /* Transfer-Encoding wins over Content-Length; codings before chunked are allowed. */
        ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nContent-Length: 100\r\ntransfer-encoding: gzip, Chunked\r\n\r\n"
                        "2\r\nok\r\n0\r\n\r\n", 100, false, &r), 1);
        ASSERT_STREQ(r.body, "ok");
        http_response_done(&r);

        /* Without the final empty line it is not complete, and closing then is an error. */
        ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n", 100, true, &r),
                  -EBADMSG);
        ASSERT_STREQ(r.error, "the connection closed before the end of the body");
        http_response_done(&r);
}

TEST(until_close) {
        HttpResponse r;

        /* Bare LF line ends, HTTP/1.0, no length: the body ends with the connection. */
        ASSERT_EQ(parse("HTTP/1.0 200 OK\nContent-Type: text/plain\n\n{\"status\":\"ok\"}", 100, true, &r), 1);
        ASSERT_EQ(r.status, 200);
        ASSERT_STREQ(r.body, "{\"status\":\"ok\"}");
        http_response_done(&r);

        /* An unknown transfer coding: read until close as well. */
        ASSERT_EQ(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz", 100, true, &r), 1);
        ASSERT_STREQ(r.body, "xyz");
        http_response_done(&r);
}

TEST(no_body) {
        HttpResponse r;

        ASSERT_EQ(parse("HTTP/1.1 204 No Content\r\n\r\n", 100, false, &r), 1);
        ASSERT_EQ(r.status, 204);
        http_response_done(&r);
        ASSERT_EQ(parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", 100, false, &r), 1);
        http_response_done(&r);
        /* No reason phrase is fine. */
        ASSERT_EQ(parse("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 100, false, &r), 1);
        ASSERT_EQ(r.status, 200);
        http_response_done(&r);
}

TEST(interim) {
        HttpResponse r;

        ASSERT_EQ(parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 100, false, &r), 1);
        ASSERT_EQ(r.status, 200);
        ASSERT_STREQ(r.body, "ok");
        http_response_done(&r);
}

static void assert_refused(const char *text, size_t body_max, bool eof, int error, const char *what) {
        HttpResponse r;

        ASSERT_EQ(parse(text, body_max, eof, &r), -error);
        ASSERT_STREQ(r.error, what);
        /* Refused stays refused. */
        ASSERT_EQ(http_response_feed(&r, "HTTP/1.1 200 OK\r\n\r\n", 19), -error);
        ASSERT_EQ(http_response_eof(&r), -error);
        http_response_done(&r);
}

TEST(refused) {
        assert_refused("SSH-2.0-OpenSSH_9.2\r\n\r\n", 0, false, EBADMSG, "not an HTTP/1.x status line");
        assert_refused("HTTP/2 200\r\n\r\n", 0, false, EBADMSG, "not an HTTP/1.x status line");
        assert_refused("HTTP/1.1 2x0 OK\r\n\r\n", 0, false, EBADMSG, "the status code is not three digits");
        assert_refused("HTTP/1.1 2000 OK\r\n\r\n", 0, false, EBADMSG, "the status code is not three digits");
        assert_refused("HTTP/1.1 099 OK\r\n\r\n", 0, false, EBADMSG, "the status code is not three digits");
        assert_refused("HTTP/1.1 200 O\001K\r\n\r\n", 0, false, EBADMSG, "a control byte in the status line");
        assert_refused("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", 0, false, EBADMSG, "a folded header line");
        assert_refused("HTTP/1.1 200 OK\r\nnocolon\r\n\r\n", 0, false, EBADMSG,
                       "a header line without a name and a colon");
        assert_refused("HTTP/1.1 200 OK\r\n: v\r\n\r\n", 0, false, EBADMSG,
                       "a header line without a name and a colon");
        assert_refused("HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n", 0, false, EBADMSG,
                       "a header name with a byte not allowed in it");
        assert_refused("HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", 0, false, EBADMSG, "a CR inside a line of the head");
        assert_refused("HTTP/1.1 200 OK\r\nA: b\001\r\n\r\n", 0, false, EBADMSG, "a control byte in a header value");
        assert_refused("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", 0, false, EBADMSG,
                       "Content-Length is not a number");
        assert_refused("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, false, EBADMSG,
                       "Content-Length is not a number");
        assert_refused("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 0, false, EBADMSG,
                       "Content-Length is not a number");
        assert_refused("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 0, false, EBADMSG,
                       "two Content-Length headers that differ");
        assert_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, false, EBADMSG,
                       "a chunk size that is not hex digits");
        assert_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5x\r\n", 0, false, EBADMSG,
                       "a chunk size that is not hex digits");
        assert_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", 0, false,
                       EBADMSG, "a chunk size over 15 hex digits");
        assert_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", 0, false, EBADMSG,
                       "a chunk's data longer than its size");
        assert_refused("", 0, true, EBADMSG, "the connection closed without an answer");
        assert_refused("HTTP/1.1 200 OK\r\n", 0, true, EBADMSG, "the connection closed inside the answer's head");
        assert_refused("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 0, true, EBADMSG,
                       "the connection closed before the end of the body");
}

TEST(limits) {
        char *big;
        HttpResponse r;

        /* The body limit: by Content-Length at once, by what came for the others. */
        assert_refused("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", 10, false, EFBIG,
                       "the body is larger than allowed");
        assert_refused("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nabcdef\r\n", 10,
                       false, EFBIG, "the body is larger than allowed");
        assert_refused("HTTP/1.1 200 OK\r\n\r\n01234567890", 10, false, EFBIG, "the body is larger than allowed");
        ASSERT_EQ(parse("HTTP/1.1 200 OK\r\n\r\n0123456789", 10, true, &r), 1);
        ASSERT_EQ(r.size, 10);
        http_response_done(&r);

        /* A chunk-size line over 1 KiB (an endless extension). */
        big = malloc(2048 + 64);
        ASSERT_NOT_NULL(big);
        strcpy(big, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;");
        memset(big + strlen(big), 'x', 2048);
        big[strlen("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;") + 2048] = 0;
        ASSERT_EQ(parse_split(big, 10, 0, false, &r), -EBADMSG);
        ASSERT_STREQ(r.error, "a chunk-size or trailer line over 1 KiB");
        http_response_done(&r);
        free(big);

        /* A head over 16 KiB. */
        big = malloc(HTTP_RESPONSE_HEAD_MAX + 64);
        ASSERT_NOT_NULL(big);
        strcpy(big, "HTTP/1.1 200 OK\r\nX: ");
        memset(big + strlen(big), 'x', HTTP_RESPONSE_HEAD_MAX);
        big[strlen("HTTP/1.1 200 OK\r\nX: ") + HTTP_RESPONSE_HEAD_MAX] = 0;
        ASSERT_EQ(parse_split(big, 10, 0, false, &r), -EBADMSG);
        ASSERT_STREQ(r.error, "the head is larger than 16 KiB");
        http_response_done(&r);
        free(big);
}

DEFINE_TEST_MAIN
