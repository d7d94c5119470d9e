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
    buf_init(&b, 16 << 20);
    CHECK_OK(frame_encode(&b, (const uint8_t *)payload, strlen(payload), 16 << 20));
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

    /* A nil command_id (no idempotency key): refused, to its id. */
    raw_send(fd, "{\"v\":1,\"id\":10,\"command_id\":\"00000000-0000-0000-0000-000000000000\","
                 "\"cmd\":\"ping\"}");
    CHECK_OK(raw_recv(&rd, fd, &r, 2000));
    CHECK_EQ(r.id, 10);
    CHECK_STR_EQ(r.error.code, "invalid_request");
    CHECK_STR_EQ(r.error.message, "\"command_id\" must not be the nil UUID");
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

/* One ping on fd (its own reader). */
static void ping_ok(int fd)
{
    struct tp_reader rd;
    struct env_reply r;
    tp_reader_init(&rd, 1 << 20);
    raw_send(fd, "{\"v\":1,\"id\":1," CID ",\"cmd\":\"ping\"}");
    CHECK_OK(raw_recv(&rd, fd, &r, 2000));
    CHECK(r.ok);
    env_reply_clear(&r);
    tp_reader_release(&rd);
}

/* What the next read on fd sees within timeout_ms (KM_ERR_CLOSED once the
 * server closed it). */
static int next_read(int fd, uint32_t timeout_ms)
{
    struct tp_reader rd;
    struct env_reply r;
    tp_reader_init(&rd, 1 << 20);
    int rc = raw_recv(&rd, fd, &r, timeout_ms);
    if (rc == KM_OK)
        env_reply_clear(&r);
    tp_reader_release(&rd);
    return rc;
}

/* Polls the server's stats until check() holds (5 s at most). */
static void wait_stats(struct echo_server *es, bool (*check)(const struct tp_server_stats *),
                       struct tp_server_stats *st)
{
    struct deadline dl = deadline_in_ms(5000);
    for (;;) {
        tp_server_stats(es->srv, st);
        if (check(st) || deadline_expired(dl))
            return;
        clock_sleep_ms(10);
    }
}

static void test_connection_limit_closes_longest_idle(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_server_config cfg = {.max_connections = 2};
    echo_server_start_tcp(&es, &cfg);
    int a = raw_connect(&es);
    ping_ok(a);
    clock_sleep_ms(20); /* b is active after a */
    int b = raw_connect(&es);
    ping_ok(b);

    /* A third connection (a restarted gateway, say) is admitted: the one
     * idle the longest, a, makes room. */
    int c = raw_connect(&es);
    ping_ok(c);
    CHECK_ERR(next_read(a, 2000), KM_ERR_CLOSED);
    ping_ok(b);
    struct tp_server_stats st;
    tp_server_stats(es.srv, &st);
    CHECK_EQ(st.connections_evicted, 1);
    CHECK_EQ(st.connections_rejected, 0);
    close(a);
    close(b);
    close(c);
    echo_server_stop(&es);
}

static bool two_requests(const struct tp_server_stats *st)
{
    return st->requests >= 2;
}

static void test_connection_limit_rejects_when_all_busy(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_server_config cfg = {.max_connections = 2, .workers = 2};
    echo_server_start_tcp(&es, &cfg);
    int a = raw_connect(&es), b = raw_connect(&es);
    raw_send(a, "{\"v\":1,\"id\":1," CID ",\"cmd\":\"sleep\",\"args\":{\"ms\":1500}}");
    raw_send(b, "{\"v\":1,\"id\":1," CID ",\"cmd\":\"sleep\",\"args\":{\"ms\":1500}}");
    struct tp_server_stats st;
    wait_stats(&es, two_requests, &st);
    CHECK_EQ(st.requests, 2);

    /* Both connections wait for a reply: neither is idle, so the new one
     * is closed at once. */
    int c = raw_connect(&es);
    CHECK_ERR(next_read(c, 1000), KM_ERR_CLOSED);
    tp_server_stats(es.srv, &st);
    CHECK_EQ(st.connections_rejected, 1);
    CHECK_EQ(st.connections_evicted, 0);
    /* And the busy ones get their replies. */
    CHECK_OK(next_read(a, 5000));
    CHECK_OK(next_read(b, 5000));
    close(a);
    close(b);
    close(c);
    echo_server_stop(&es);
}

static void test_idle_connection_is_closed(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_server_config cfg = {.idle_timeout_ms = 200};
    echo_server_start_tcp(&es, &cfg);

    /* Quiet while its request runs (longer than the idle timeout) is not
     * idle: the reply arrives. */
    int a = raw_connect(&es);
    struct tp_reader rd;
    struct env_reply r;
    tp_reader_init(&rd, 1 << 20);
    raw_send(a, "{\"v\":1,\"id\":3," CID ",\"cmd\":\"sleep\",\"args\":{\"ms\":600}}");
    CHECK_OK(raw_recv(&rd, a, &r, 3000));
    CHECK(r.ok);
    env_reply_clear(&r);
    tp_reader_release(&rd);

    /* Then silence: closed after the idle timeout. */
    uint64_t t0 = clock_now_ms();
    CHECK_ERR(next_read(a, 5000), KM_ERR_CLOSED);
    CHECK(clock_now_ms() - t0 < 4000);
    struct tp_server_stats st;
    tp_server_stats(es.srv, &st);
    CHECK_EQ(st.connections_idle_closed, 1);
    CHECK_EQ(st.connections_active, 0);
    close(a);

    /* A connection that never says anything goes the same way. */
    int b = raw_connect(&es);
    CHECK_ERR(next_read(b, 5000), KM_ERR_CLOSED);
    close(b);
    echo_server_stop(&es);
}

static void test_trickled_frame_is_cut_at_its_deadline(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_server_config cfg = {.frame_timeout_ms = 300};
    echo_server_start_tcp(&es, &cfg);
    int fd = raw_connect(&es);
    uint8_t hdr[4];
    frame_encode_header(hdr, 1000);
    struct km_error err;
    CHECK_OK(tp_write_all(fd, hdr, sizeof(hdr), deadline_in_ms(1000), &err));
    /* One byte every 10 ms: the frame keeps moving but would take 10 s. */
    uint64_t t0 = clock_now_ms();
    int sent = 0;
    while (clock_now_ms() - t0 < 5000) {
        if (send(fd, "x", 1, MSG_NOSIGNAL) != 1)
            break;
        sent++;
        clock_sleep_ms(10);
    }
    uint64_t took = clock_now_ms() - t0;
    print_message("trickled %d bytes; connection closed after %llu ms\n", sent,
                  (unsigned long long)took);
    CHECK(took < 3000);
    struct tp_server_stats st;
    tp_server_stats(es.srv, &st);
    CHECK_EQ(st.connections_frame_timeouts, 1);
    close(fd);
    echo_server_stop(&es);
}

static bool over_budget_7(const struct tp_server_stats *st)
{
    return st->connections_over_budget >= 7;
}

static bool nothing_buffered(const struct tp_server_stats *st)
{
    return st->buffered_bytes == 0 && st->connections_active == 0;
}

static void test_partial_frames_share_a_budget(void **state)
{
    (void)state;
    enum { ATTACKERS = 8, BUDGET = 4 << 20, PARTIAL = 3 << 20 };
    struct echo_server es;
    struct tp_server_config cfg = {.max_buffered_bytes = BUDGET};
    echo_server_start_tcp(&es, &cfg);
    uint8_t *junk = calloc(1, PARTIAL);
    CHECK_NOT_NULL(junk);
    frame_encode_header(junk, 10 << 20); /* announces 10 MiB, sends 3 */
    int fds[ATTACKERS];
    struct km_error err;
    for (int i = 0; i < ATTACKERS; i++) {
        fds[i] = raw_connect(&es);
        /* Fails once the server closes the connection. */
        int wr = tp_write_all(fds[i], junk, PARTIAL, deadline_in_ms(5000), &err);
        CHECK(wr == KM_OK || wr == KM_ERR_CLOSED || wr == KM_ERR_IO);
    }
    free(junk);
    struct tp_server_stats st;
    wait_stats(&es, over_budget_7, &st);
    print_message("%llu of %d connections closed over budget; peak %zu bytes of %d\n",
                  (unsigned long long)st.connections_over_budget, ATTACKERS, st.buffered_bytes_peak,
                  BUDGET);
    /* At most one 3 MiB partial frame fits in 4 MiB. */
    CHECK(st.connections_over_budget >= ATTACKERS - 1);
    CHECK(st.buffered_bytes_peak <= BUDGET);
    CHECK(st.buffered_bytes <= BUDGET);

    /* A normal client is still served. */
    int fd = raw_connect(&es);
    ping_ok(fd);
    close(fd);
    for (int i = 0; i < ATTACKERS; i++)
        close(fds[i]);
    /* Every charge comes back. */
    wait_stats(&es, nothing_buffered, &st);
    CHECK_EQ(st.buffered_bytes, 0);
    echo_server_stop(&es);
}

static void test_budget_still_reads_a_large_frame(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_server_config cfg = {.max_buffered_bytes = 4 << 20};
    echo_server_start_tcp(&es, &cfg);
    int fd = raw_connect(&es);
    struct tp_reader rd;
    struct env_reply r;
    tp_reader_init(&rd, 4 << 20);
    /* 1.5 MiB of args: within budget, read, echoed; then the buffer
     * shrinks and its charge is returned. */
    size_t n = 3u << 19;
    char *big = malloc(n + 128);
    CHECK_NOT_NULL(big);
    int k = snprintf(big, 128, "{\"v\":1,\"id\":4," CID ",\"cmd\":\"echo\",\"args\":{\"p\":\"");
    memset(big + k, 'p', n);
    memcpy(big + k + n, "\"}}", 4);
    raw_send(fd, big);
    free(big);
    CHECK_OK(raw_recv(&rd, fd, &r, 5000));
    CHECK(r.ok);
    CHECK_EQ(strlen(json_string_value(json_object_get(r.result, "p"))), n);
    env_reply_clear(&r);
    struct tp_server_stats st;
    tp_server_stats(es.srv, &st);
    CHECK(st.buffered_bytes_peak > 0);
    /* The reader returns to a small buffer before it waits again. */
    ping_ok(fd);
    tp_server_stats(es.srv, &st);
    CHECK_EQ(st.buffered_bytes, 0);
    tp_reader_release(&rd);
    close(fd);
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
            CHECK_STR_EQ(r.error.message, "enclave request queue is full (capacity 1)");
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
        TEST(test_connection_limit_closes_longest_idle),
        TEST(test_connection_limit_rejects_when_all_busy),
        TEST(test_idle_connection_is_closed),
        TEST(test_trickled_frame_is_cut_at_its_deadline),
        TEST(test_partial_frames_share_a_budget),
        TEST(test_budget_still_reads_a_large_frame),
        TEST(test_full_queue_answers_busy),
        TEST(test_stop_finishes_in_flight_requests),
    };
    return RUN_TESTS("transport.server", tests);
}
