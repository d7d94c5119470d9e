/*
 * bench_transport - ping round trips through the client pool over TCP
 * loopback, beside a baseline measured in the same run.
 *
 *   pool:     pool_request("ping") against the real request server
 *             (tp_server + envelope codec), 1 and 64 requests in flight
 *   baseline: the same request/reply bytes over one plain blocking TCP
 *             socket pair with a trivial echo thread (no JSON, no pool);
 *             1 in flight, and 64 pipelined per batch
 *
 * Prints requests/s, p50 and p99 latency and the pool/baseline ratios.
 * Usage: bench_transport [requests]   (default 20000 per case)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo_server.h"
#include "transport/frame.h"
#include "transport/pool.h"
#include "common/banned.h"

struct result {
    double rps;
    double p50_us, p99_us;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static struct result summarize(uint64_t *lat_ns, size_t n, uint64_t wall_ns)
{
    qsort(lat_ns, n, sizeof(*lat_ns), cmp_u64);
    struct result r = {
        .rps = (double)n / ((double)wall_ns / 1e9),
        .p50_us = (double)lat_ns[n / 2] / 1e3,
        .p99_us = (double)lat_ns[(n * 99) / 100] / 1e3,
    };
    return r;
}

/* ---- pool ---- */

struct pool_worker {
    struct pool *pool;
    uint64_t *lat;
    size_t n;
};

static void *pool_worker_main(void *arg)
{
    struct pool_worker *w = arg;
    for (size_t i = 0; i < w->n; i++) {
        struct env_reply r;
        struct km_error err;
        uint64_t t0 = clock_now_ns();
        if (pool_request(w->pool, &r, "ping", NULL, NULL, 10000, &err) != KM_OK) {
            fprintf(stderr, "ping failed: %s\n", err.msg);
            exit(1);
        }
        w->lat[i] = clock_now_ns() - t0;
        env_reply_clear(&r);
    }
    return NULL;
}

static struct result bench_pool(const struct tp_addr *addr, unsigned inflight, size_t total)
{
    struct pool_config cfg = {.connection_load_threshold = 64, .max_connections = 4};
    struct pool *p = pool_new(addr, &cfg);
    uint64_t *lat = calloc(total, sizeof(*lat));
    pthread_t *t = calloc(inflight, sizeof(*t));
    struct pool_worker *w = calloc(inflight, sizeof(*w));
    size_t per = total / inflight;

    struct pool_worker warm = {.pool = p, .lat = lat, .n = 200};
    pool_worker_main(&warm);

    uint64_t t0 = clock_now_ns();
    for (unsigned i = 0; i < inflight; i++) {
        w[i] = (struct pool_worker){.pool = p, .lat = lat + i * per, .n = per};
        pthread_create(&t[i], NULL, pool_worker_main, &w[i]);
    }
    for (unsigned i = 0; i < inflight; i++)
        pthread_join(t[i], NULL);
    struct result r = summarize(lat, per * inflight, clock_now_ns() - t0);
    pool_free(p);
    free(lat);
    free(t);
    free(w);
    return r;
}

/* ---- baseline: plain blocking sockets, same bytes ---- */

static void write_full(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            exit(1);
        p += w;
        n -= (size_t)w;
    }
}

static void read_full(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            exit(1);
        p += r;
        n -= (size_t)r;
    }
}

struct plain_server {
    int lfd;
    const uint8_t *reply;
    size_t reply_len, req_len;
};

/* Reads a frame, answers with the canned reply frame, forever. */
static void *plain_server_main(void *arg)
{
    struct plain_server *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    uint8_t *req = malloc(s->req_len);
    for (;;) {
        ssize_t r = read(fd, req, 4);
        if (r <= 0)
            break;
        if (r < 4)
            read_full(fd, req + r, (size_t)(4 - r));
        read_full(fd, req + 4, s->req_len - 4);
        write_full(fd, s->reply, s->reply_len);
    }
    free(req);
    close(fd);
    return NULL;
}

static struct result bench_plain(const struct buf *req, const struct buf *rep, unsigned batch,
                                 size_t total)
{
    struct plain_server s = {
        .reply = buf_peek(rep), .reply_len = buf_len(rep), .req_len = buf_len(req)};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t salen = sizeof(sa);
    s.lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(s.lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s.lfd, 1) != 0 ||
        getsockname(s.lfd, (struct sockaddr *)&sa, &salen) != 0)
        exit(1);
    pthread_t t;
    pthread_create(&t, NULL, plain_server_main, &s);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        exit(1);

    size_t rounds = total / batch;
    uint64_t *lat = calloc(rounds * batch, sizeof(*lat));
    uint8_t *out = malloc(buf_len(req) * batch);
    uint8_t *in = malloc(buf_len(rep) * batch);
    for (unsigned i = 0; i < batch; i++)
        memcpy(out + i * buf_len(req), buf_peek(req), buf_len(req));

    uint64_t t0 = clock_now_ns();
    for (size_t r = 0; r < rounds; r++) {
        uint64_t s0 = clock_now_ns();
        write_full(fd, out, buf_len(req) * batch);
        read_full(fd, in, buf_len(rep) * batch);
        uint64_t d = clock_now_ns() - s0;
        for (unsigned i = 0; i < batch; i++)
            lat[r * batch + i] = d; /* every request of a batch waits for all */
    }
    struct result res = summarize(lat, rounds * batch, clock_now_ns() - t0);
    close(fd);
    pthread_join(t, NULL);
    close(s.lfd);
    free(lat);
    free(out);
    free(in);
    return res;
}

static void print_row(const char *name, unsigned inflight, struct result r, struct result base)
{
    printf("%-9s %9u %12.0f %10.1f %10.1f %11.2fx %11.2fx\n", name, inflight, r.rps, r.p50_us,
           r.p99_us, r.rps / base.rps, r.p50_us / base.p50_us);
}

int main(int argc, char **argv)
{
    size_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000;
    if (total < 640)
        total = 640;

    struct echo_server es;
    echo_server_start_tcp(&es, NULL);
    struct tp_addr addr;
    echo_server_addr(&es, &addr);

    /* The exact frames the pool exchanges for a ping. */
    struct buf req, rep;
    struct uuid cid;
    buf_init(&req, 4096);
    buf_init(&rep, 4096);
    json_t *pong = json_pack("{s:b}", "pong", 1);
    if (uuid_v7_new(&cid) != KM_OK || frame_begin(&req) != KM_OK ||
        env_request_encode(&req, 123456, &cid, "ping", NULL) != KM_OK ||
        frame_finish(&req, 0, FRAME_MAX_DEFAULT) != KM_OK || frame_begin(&rep) != KM_OK ||
        env_reply_encode_ok(&rep, 123456, pong) != KM_OK ||
        frame_finish(&rep, 0, FRAME_MAX_DEFAULT) != KM_OK)
        return 1;
    json_decref(pong);

    struct result b1 = bench_plain(&req, &rep, 1, total);
    struct result p1 = bench_pool(&addr, 1, total);
    struct result b64 = bench_plain(&req, &rep, 64, total);
    struct result p64 = bench_pool(&addr, 64, total);

    printf("transport ping round trips over TCP loopback, %zu requests per case\n", total);
    printf("request frame %zu bytes, reply frame %zu bytes\n\n", buf_len(&req), buf_len(&rep));
    printf("%-9s %9s %12s %10s %10s %12s %12s\n", "case", "in-flight", "requests/s", "p50 us",
           "p99 us", "rps/base", "p50/base");
    print_row("baseline", 1, b1, b1);
    print_row("pool", 1, p1, b1);
    print_row("baseline", 64, b64, b64);
    print_row("pool", 64, p64, b64);

    buf_release(&req);
    buf_release(&rep);
    echo_server_stop(&es);
    return 0;
}
