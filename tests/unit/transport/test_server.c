#include "test.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "echo_server.h"
#include "transport/frame.h"
#include "transport/sock.h"
#include "common/banned.h"

#define CID "\"command_id\":\"0190f4a2-1234-7abc-8def-0123456789ab\""

static int raw_connect(const struct echo_server *es)
{
    struct tp_addr a;
    struct km_error err;
    int fd;
    echo_server_addr(es, &a);
    CHECK_OK(tp_connect(&fd, &a, deadline_in_ms(2000), &err));
    return fd;
}

static void raw_send(int fd, const char *payload)
{
    struct buf b;
    struct km_error err;
    buf_init(&b, 1 << 20);
    CHECK_OK(frame_encode(&b, (const uint8_t *)payload, strlen(payload), 1 << 20));
    CHECK_OK(tp_write_all(fd, buf_peek(&b), buf_len(&b), deadline_in_ms(2000), &err));
    buf_release(&b);
}

/* Reads one reply with a reader that persists across calls on fd. */
static int raw_recv(struct tp_reader *rd, int fd, struct env_reply *r, uint32_t timeout_ms)
{
    const uint8_t *p;
    size_t n;
    struct km_error err;
    int rc = tp_reader_next(rd, fd, deadline_in_ms(timeout_ms), timeout_ms, &p, &n, &err);
    if (rc != KM_OK)
        return rc;
    CHECK_OK(env_reply_decode(r, p, n, &err));
    return KM_OK;
}

static void test_ping_and_bad_requests_keep_serving(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_reader rd;
    struct env_reply r;
    echo_server_start_tcp(&es, NULL);
    int fd = raw_connect(&es);
    tp_reader_init(&rd, 1 << 20);

    raw_send(fd, "{\"v\":1,\"id\":5," CID ",\"cmd\":\"ping\"}");
    CHECK_OK(raw_recv(&rd, fd, &r, 2000));
    CHECK(r.ok);
    CHECK_EQ(r.id, 5);
    CHECK(json_is_true(json_object_get(r.result, "pong")));
    env_reply_clear(&r);

    /* Garbage: answered (id 0), connection kept. */
    raw_send(fd, "\x01\x02garbage\xff");
    CHECK_OK(raw_recv(&rd, fd, &r, 2000));
    CHECK(!r.ok);
    CHECK_EQ(r.id, 0);
    CHECK_STR_EQ(r.error.code, "invalid_request");
    env_reply_clear(&r);

    /* Wrong types: answered to its id. */
    raw_send(fd, "{\"v\":1,\"id\":6," CID ",\"cmd\":7}");
    CHECK_OK(raw_recv(&rd, fd, &r, 2000));
    CHECK_EQ(r.id, 6);
    CHECK_STR_EQ(r.error.code, "invalid_request");
    env_reply_clear(&r);

    /* Injected handler failure: still exactly one reply. */
    raw_send(fd, "{\"v\":1,\"id\":7," CID ",\"cmd\":\"fail\"}");
    CHECK_OK(raw_recv(&rd, fd, &r, 2000));
    CHECK_EQ(r.id, 7);
    CHECK(!r.ok);
    CHECK_STR_EQ(r.error.code, "internal");
    env_reply_clear(&r);

    raw_send(fd, "{\"v\":1,\"id\":8," CID ",\"cmd\":\"no_such_command\"}");
    CHECK_OK(raw_recv(&rd, fd, &r, 2000));
    CHECK_STR_EQ(r.error.code, "unknown_command");
    env_reply_clear(&r);

    raw_send(fd, "{\"v\":1,\"id\":9," CID ",\"cmd\":\"ping\"}");
    CHECK_OK(raw_recv(&rd, fd, &r, 2000));
    CHECK(r.ok);
    env_reply_clear(&r);

    tp_reader_release(&rd);
    close(fd);
    echo_server_stop(&es);
}

static void test_exactly_one_reply_per_request(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_reader rd;
    echo_server_start_tcp(&es, NULL);
    int fd = raw_connect(&es);
    tp_reader_init(&rd, 1 << 20);

    enum { N = 300 };
    static const char *const cmds[] = {"ping", "fail", "echo", "bogus_cmd"};
    char payload[256];
    for (int i = 1; i <= N; i++) {
        if (i % 7 == 0)
            snprintf(payload, sizeof(payload), "{\"v\":1,\"id\":%d,\"cmd\":}", i); /* broken */
        else
            snprintf(payload, sizeof(payload), "{\"v\":1,\"id\":%d," CID ",\"cmd\":\"%s\"}", i,
                     cmds[i % 4]);
        raw_send(fd, payload);
    }
    int seen_ids = 0, seen_zero = 0;
    static unsigned char seen[N + 1];
    for (int i = 0; i < N; i++) {
        struct env_reply r;
        CHECK_OK(raw_recv(&rd, fd, &r, 5000));
        if (r.id == 0) {
            seen_zero++;
        } else {
            CHECK(r.id <= N && !seen[r.id]);
            seen[r.id] = 1;
            seen_ids++;
        }
        env_reply_clear(&r);
    }
    CHECK_EQ(seen_zero, N / 7);
    CHECK_EQ(seen_ids, N - N / 7);
    /* And nothing more. */
    struct env_reply extra;
    CHECK_ERR(raw_recv(&rd, fd, &extra, 200), KM_ERR_TIMEOUT);

    struct tp_server_stats st;
    tp_server_stats(es.srv, &st);
    CHECK_EQ(st.requests, N);
    tp_reader_release(&rd);
    close(fd);
    echo_server_stop(&es);
}

static void test_oversized_frame_answered_then_closed(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_server_config cfg = {.max_frame = 1024};
    struct tp_reader rd;
    struct env_reply r;
    echo_server_start_tcp(&es, &cfg);
    int fd = raw_connect(&es);
    tp_reader_init(&rd, 1 << 20);
    uint8_t hdr[4];
    frame_encode_header(hdr, 1025);
    struct km_error err;
    CHECK_OK(tp_write_all(fd, hdr, 4, deadline_in_ms(1000), &err));
    CHECK_OK(raw_recv(&rd, fd, &r, 2000));
    CHECK_STR_EQ(r.error.code, "too_large");
    CHECK_CONTAINS(r.error.message, "Message too large: 1025 bytes");
    env_reply_clear(&r);
    CHECK_ERR(raw_recv(&rd, fd, &r, 2000), KM_ERR_CLOSED);
    tp_reader_release(&rd);
    close(fd);
    echo_server_stop(&es);
}

static void test_half_frame_stall_is_cut_off(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_server_config cfg = {.frame_timeout_ms = 200};
    struct tp_reader rd;
    struct env_reply r;
    echo_server_start_tcp(&es, &cfg);
    int fd = raw_connect(&es);
    tp_reader_init(&rd, 1 << 20);
    uint8_t half[4 + 5];
    frame_encode_header(half, 50);
    memcpy(half + 4, "{\"v\":", 5);
    struct km_error err;
    CHECK_OK(tp_write_all(fd, half, sizeof(half), deadline_in_ms(1000), &err));
    uint64_t t0 = clock_now_ms();
    CHECK_ERR(raw_recv(&rd, fd, &r, 3000), KM_ERR_CLOSED);
    CHECK(clock_now_ms() - t0 < 2500);
    tp_reader_release(&rd);
    close(fd);
    echo_server_stop(&es);
}

static void test_connection_limit(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_server_config cfg = {.max_connections = 2};
    echo_server_start_tcp(&es, &cfg);
    int a = raw_connect(&es), b = raw_connect(&es);
    struct tp_reader rd;
    struct env_reply r;
    tp_reader_init(&rd, 1 << 20);
    /* Make sure both are accepted before the third arrives. */
    raw_send(a, "{\"v\":1,\"id\":1," CID ",\"cmd\":\"ping\"}");
    CHECK_OK(raw_recv(&rd, a, &r, 2000));
    env_reply_clear(&r);
    tp_reader_release(&rd);
    tp_reader_init(&rd, 1 << 20);
    raw_send(b, "{\"v\":1,\"id\":1," CID ",\"cmd\":\"ping\"}");
    CHECK_OK(raw_recv(&rd, b, &r, 2000));
    env_reply_clear(&r);
    tp_reader_release(&rd);

    int c = raw_connect(&es);
    tp_reader_init(&rd, 1 << 20);
    CHECK_ERR(raw_recv(&rd, c, &r, 2000), KM_ERR_CLOSED);
    tp_reader_release(&rd);
    struct tp_server_stats st;
    tp_server_stats(es.srv, &st);
    CHECK_EQ(st.connections_rejected, 1);
    close(a);
    close(b);
    close(c);
    echo_server_stop(&es);
}

static void test_full_queue_answers_busy(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_server_config cfg = {.workers = 1, .queue_capacity = 1};
    struct tp_reader rd;
    echo_server_start_tcp(&es, &cfg);
    int fd = raw_connect(&es);
    tp_reader_init(&rd, 1 << 20);
    for (int i = 1; i <= 6; i++) {
        char p[160];
        snprintf(p, sizeof(p),
                 "{\"v\":1,\"id\":%d," CID ",\"cmd\":\"sleep\",\"args\":{\"ms\":150}}", i);
        raw_send(fd, p);
    }
    int busy = 0, ok = 0;
    for (int i = 0; i < 6; i++) {
        struct env_reply r;
        CHECK_OK(raw_recv(&rd, fd, &r, 5000));
        if (r.ok) {
            ok++;
        } else {
            CHECK_STR_EQ(r.error.code, "busy");
            CHECK(r.error.retryable);
            busy++;
        }
        env_reply_clear(&r);
    }
    CHECK(busy >= 1);
    CHECK(ok >= 1);
    tp_reader_release(&rd);
    close(fd);
    echo_server_stop(&es);
}

static void test_stop_finishes_in_flight_requests(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_reader rd;
    struct env_reply r;
    echo_server_start_tcp(&es, NULL);
    int fd = raw_connect(&es);
    tp_reader_init(&rd, 1 << 20);
    raw_send(fd, "{\"v\":1,\"id\":1," CID ",\"cmd\":\"sleep\",\"args\":{\"ms\":300}}");
    clock_sleep_ms(100); /* let it reach a worker */
    uint64_t t0 = clock_now_ms();
    echo_server_stop(&es); /* waits for the sleeping request */
    CHECK(clock_now_ms() - t0 >= 150);
    CHECK_OK(raw_recv(&rd, fd, &r, 2000));
    CHECK(r.ok);
    CHECK_EQ(json_integer_value(json_object_get(r.result, "slept")), 300);
    env_reply_clear(&r);
    tp_reader_release(&rd);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_ping_and_bad_requests_keep_serving),
        TEST(test_exactly_one_reply_per_request),
        TEST(test_oversized_frame_answered_then_closed),
        TEST(test_half_frame_stall_is_cut_off),
        TEST(test_connection_limit),
        TEST(test_full_queue_answers_busy),
        TEST(test_stop_finishes_in_flight_requests),
    };
    return RUN_TESTS("transport.server", tests);
}
