/*
 * test_http_limits.c - what one client can do to the HTTP server
 * (src/gateway/http.c) and what it answers at once: a body over the limit is
 * refused from Content-Length before "100 Continue" and before any body byte,
 * an unsupported transfer coding gets 501 at once, overlong request lines and
 * headers get an answer (not a dropped connection), one address cannot hold
 * more than its share of connections while another still gets served, one
 * address over its request rate gets 429 with Retry-After while another is
 * served, and an idle connection is closed.
 */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "gateway/http.h"
#include "common/banned.h"

static void h_ok(void *ud, const struct http_request *req, struct http_response *resp)
{
    (void)ud;
    (void)req;
    http_reply_json(resp, 200, json_pack("{s:b}", "ok", 1));
}

static const struct http_route routes[] = {
    {"GET", "/ok", h_ok},
    {"POST", "/ok", h_ok},
};

static struct http_server *start_rate(uint16_t *port, unsigned rate, unsigned burst)
{
    struct http_server_config cfg = {.host = "127.0.0.1",
                                     .port = 0,
                                     .max_body = 1024,
                                     .max_connections = 64,
                                     .max_per_ip = 4,
                                     .idle_timeout = 2,
                                     .per_ip_rate = rate,
                                     .per_ip_burst = burst};
    struct http_server *s = NULL;
    struct km_error err;
    if (http_server_start(&s, &cfg, routes, 2, NULL, &err) != KM_OK)
        fail_msg("http_server_start: %s", err.msg);
    *port = http_server_port(s);
    return s;
}

static struct http_server *start(uint16_t *port)
{
    return start_rate(port, 0, 0);
}

/* A TCP connection from source address src (127.0.0.x) to the server. */
static int dial(const char *src, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    CHECK(fd >= 0);
    inet_pton(AF_INET, src, &a.sin_addr);
    CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads what arrives within ms (or until the peer closes). */
static size_t read_for(int fd, char *out, size_t cap, int ms)
{
    size_t n = 0;
    uint64_t until = clock_now_ms() + (uint64_t)ms;
    while (n + 1 < cap && clock_now_ms() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    out[n] = '\0';
    return n;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void test_too_large_refused_before_continue(void **state)
{
    (void)state;
    uint16_t port;
    struct http_server *s = start(&port);
    int fd = dial("127.0.0.1", port);
    const char *req = "POST /ok HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                      "Content-Length: 68719476736\r\n\r\n";
    send_all(fd, req, strlen(req));
    char buf[4096];
    read_for(fd, buf, sizeof(buf), 1000);
    CHECK(strstr(buf, "100 Continue") == NULL);
    CHECK_CONTAINS(buf, "HTTP/1.1 413");
    CHECK_CONTAINS(buf, "exceeds the limit of 1024 bytes");
    close(fd);
    http_server_stop(s);
}

static void test_transfer_codings(void **state)
{
    (void)state;
    uint16_t port;
    struct http_server *s = start(&port);
    static const char *const bad[] = {"identity", "gzip, chunked"};
    for (size_t i = 0; i < 2; i++) {
        char req[256];
        snprintf(req, sizeof(req), "POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: %s\r\n\r\n",
                 bad[i]);
        int fd = dial("127.0.0.1", port);
        uint64_t t0 = clock_now_ms();
        send_all(fd, req, strlen(req));
        char buf[4096];
        read_for(fd, buf, sizeof(buf), 1500);
        CHECK_CONTAINS(buf, "HTTP/1.1 501");
        CHECK(clock_now_ms() - t0 < 1500);
        close(fd);
    }
    /* chunked itself works. */
    int fd = dial("127.0.0.1", port);
    const char *ok = "POST /ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "2\r\n{}\r\n0\r\n\r\n";
    send_all(fd, ok, strlen(ok));
    char buf[4096];
    read_for(fd, buf, sizeof(buf), 1000);
    CHECK_CONTAINS(buf, "HTTP/1.1 200");
    close(fd);
    http_server_stop(s);
}

static void test_overlong_request_gets_an_answer(void **state)
{
    (void)state;
    uint16_t port;
    struct http_server *s = start(&port);
    size_t n = HTTP_HEADER_MEMORY + 4096;
    char *req = malloc(n + 64);
    int len = snprintf(req, 64, "GET /ok?");
    for (size_t i = (size_t)len; i < n; i++)
        req[i] = 'a';
    memcpy(req + n, " HTTP/1.1\r\nHost: x\r\n\r\n", 23);
    int fd = dial("127.0.0.1", port);
    send_all(fd, req, n + 22);
    char buf[4096];
    read_for(fd, buf, sizeof(buf), 2000);
    CHECK(strstr(buf, "HTTP/1.1 414") != NULL || strstr(buf, "HTTP/1.1 431") != NULL);
    close(fd);
    free(req);
    http_server_stop(s);
}

/* Many query parameters (each one costs the parser memory): an answer,
 * where ~450 got the connection closed with no reply. */
static void test_many_query_parameters(void **state)
{
    (void)state;
    uint16_t port;
    struct http_server *s = start(&port);
    /* (Far more, e.g. 20000 in a URL that still fits, and libmicrohttpd
     * closes the connection while it parses them: docs/API.md "Limits".) */
    static const int counts[] = {500, 1000, 2000};
    for (size_t k = 0; k < 3; k++) {
        size_t cap = 16 * (size_t)counts[k] + 128;
        char *req = malloc(cap);
        size_t n = (size_t)snprintf(req, 64, "GET /ok?");
        for (int i = 0; i < counts[k]; i++)
            n += (size_t)snprintf(req + n, cap - n, "p%d=%d&", i, i);
        n += (size_t)snprintf(req + n, cap - n, "z=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        int fd = dial("127.0.0.1", port);
        send_all(fd, req, n);
        char buf[4096];
        read_for(fd, buf, sizeof(buf), 2000);
        print_message("%d query parameters: %.12s\n", counts[k], buf);
        CHECK_CONTAINS(buf, "HTTP/1.1 ");
        close(fd);
        free(req);
    }
    http_server_stop(s);
}

/* 127.0.0.2 holds its 4 connections idle; a fifth is not served, and a
 * client from 127.0.0.1 still is, at once. */
static void test_per_address_limit(void **state)
{
    (void)state;
    uint16_t port;
    struct http_server *s = start(&port);
    int hog[8];
    for (int i = 0; i < 8; i++)
        hog[i] = dial("127.0.0.2", port);
    clock_sleep_ms(100);
    /* The extra ones were closed by the server. */
    int closed = 0;
    for (int i = 4; i < 8; i++) {
        char b[16];
        if (hog[i] < 0 || read_for(hog[i], b, sizeof(b), 300) == 0)
            closed++;
    }
    CHECK_EQ(closed, 4);
    int fd = dial("127.0.0.1", port);
    uint64_t t0 = clock_now_ms();
    const char *req = "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, req, strlen(req));
    char buf[4096];
    read_for(fd, buf, sizeof(buf), 1000);
    CHECK_CONTAINS(buf, "HTTP/1.1 200");
    CHECK(clock_now_ms() - t0 < 1000);
    close(fd);
    for (int i = 0; i < 8; i++)
        if (hog[i] >= 0)
            close(hog[i]);
    http_server_stop(s);
}

/* One GET /ok from src on a fresh connection; the reply's head. */
static void get_ok(const char *src, uint16_t port, char *out, size_t cap)
{
    int fd = dial(src, port);
    CHECK(fd >= 0);
    const char *req = "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_for(fd, out, cap, 1000);
    close(fd);
}

static void test_request_rate_per_address(void **state)
{
    (void)state;
    uint16_t port;
    struct http_server *s = start_rate(&port, 1, 5);
    char buf[4096];
    /* The burst of 5 is served, the 6th is refused with a Retry-After ... */
    for (int i = 0; i < 5; i++) {
        get_ok("127.0.0.2", port, buf, sizeof(buf));
        CHECK_CONTAINS(buf, "HTTP/1.1 200");
    }
    get_ok("127.0.0.2", port, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "HTTP/1.1 429");
    CHECK_CONTAINS(buf, "Retry-After: 1");
    CHECK_CONTAINS(buf, "too many requests from 127.0.0.2");
    /* ... while another address is served ... */
    get_ok("127.0.0.3", port, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "HTTP/1.1 200");
    /* ... and the first one again once a token came back. */
    clock_sleep_ms(1100);
    get_ok("127.0.0.2", port, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "HTTP/1.1 200");
    http_server_stop(s);
}

static void test_idle_connection_closed(void **state)
{
    (void)state;
    uint16_t port;
    struct http_server *s = start(&port);
    int fd = dial("127.0.0.1", port);
    uint64_t t0 = clock_now_ms();
    char buf[64];
    read_for(fd, buf, sizeof(buf), 5000); /* returns when the server closes */
    uint64_t held = clock_now_ms() - t0;
    CHECK(held >= 1500 && held < 4500);
    close(fd);
    http_server_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_too_large_refused_before_continue),
        TEST(test_transfer_codings),
        TEST(test_overlong_request_gets_an_answer),
        TEST(test_many_query_parameters),
        TEST(test_per_address_limit),
        TEST(test_request_rate_per_address),
        TEST(test_idle_connection_closed),
    };
    return RUN_TESTS("unit.gateway.http_limits", tests);
}
