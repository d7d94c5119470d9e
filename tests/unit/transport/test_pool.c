#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "echo_server.h"
#include "transport/frame.h"
#include "transport/hint.h"
#include "transport/pool.h"
#include "transport/sock.h"
#include "common/banned.h"

extern char **environ;

static struct pool *pool_to(const struct echo_server *es, const struct pool_config *cfg)
{
    struct tp_addr a;
    echo_server_addr(es, &a);
    return pool_new(&a, cfg);
}

static void test_request_ping_and_stats(void **state)
{
    (void)state;
    struct echo_server es;
    echo_server_start_tcp(&es, NULL);
    struct pool *p = pool_to(&es, NULL);
    struct env_reply r;
    struct km_error err;
    json_t *args = json_pack("{s:s}", "k", "v");
    CHECK_OK(pool_request(p, &r, "echo", NULL, args, 0, &err));
    CHECK_STR_EQ(json_string_value(json_object_get(r.result, "k")), "v");
    env_reply_clear(&r);
    json_decref(args);
    uint64_t rtt;
    CHECK_OK(pool_ping(p, &rtt, 1000, &err));
    CHECK(rtt > 0);

    struct pool_stats st;
    pool_stats(p, &st);
    CHECK_EQ(st.requests, 2);
    CHECK_EQ(st.replies_ok, 2);
    CHECK_EQ(st.connections_opened, 1);
    CHECK_EQ(st.connections_open, 1);
    CHECK_EQ(st.in_flight, 0);
    CHECK_EQ(st.latency_count, 2);
    pool_free(p);
    echo_server_stop(&es);
}

struct burst {
    struct pool *p;
    int base, n;
    int ok;
};

/* Starts n calls at once, then collects them: n requests in flight from
 * one thread. */
static void *burst_main(void *arg)
{
    struct burst *b = arg;
    struct pool_call *calls[200];
    struct km_error err;
    for (int i = 0; i < b->n; i++) {
        json_t *args = json_pack("{s:i, s:i}", "ms", 20, "tag", b->base + i);
        if (pool_call_start(b->p, &calls[i], "sleep", NULL, args, deadline_in_ms(20000), &err) !=
            KM_OK)
            calls[i] = NULL;
        json_decref(args);
    }
    for (int i = 0; i < b->n; i++) {
        struct env_reply r;
        if (calls[i] != NULL && pool_call_wait(calls[i], &r, &err) == KM_OK && r.ok)
            b->ok++;
        env_reply_clear(&r);
    }
    return NULL;
}

static void test_thousand_concurrent_requests_few_connections(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_server_config scfg = {.workers = 64};
    echo_server_start_tcp(&es, &scfg);
    struct pool_config pcfg = {.connection_load_threshold = 100, .max_connections = 4};
    struct pool *p = pool_to(&es, &pcfg);

    enum { THREADS = 8, PER = 125 };
    pthread_t t[THREADS];
    struct burst b[THREADS];
    for (int i = 0; i < THREADS; i++) {
        b[i] = (struct burst){.p = p, .base = i * PER, .n = PER};
        CHECK(pthread_create(&t[i], NULL, burst_main, &b[i]) == 0);
    }
    int ok = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += b[i].ok;
    }
    CHECK_EQ(ok, THREADS * PER);
    struct pool_stats st;
    pool_stats(p, &st);
    print_message("1000 requests over %llu connection(s)\n",
                  (unsigned long long)st.connections_opened);
    CHECK(st.connections_opened >= 2); /* the threshold forced more than one */
    CHECK(st.connections_opened <= 4); /* and max_connections capped them */
    CHECK_EQ(st.replies_ok, THREADS * PER);
    pool_free(p);
    echo_server_stop(&es);
}

static void test_out_of_order_replies(void **state)
{
    (void)state;
    struct echo_server es;
    echo_server_start_tcp(&es, NULL);
    struct pool_config pcfg = {.max_connections = 1};
    struct pool *p = pool_to(&es, &pcfg);
    struct pool_call *slow, *fast;
    struct env_reply r;
    struct km_error err;
    json_t *args = json_pack("{s:i}", "ms", 400);
    uint64_t t0 = clock_now_ms();
    CHECK_OK(pool_call_start(p, &slow, "sleep", NULL, args, deadline_in_ms(5000), &err));
    CHECK_OK(pool_call_start(p, &fast, "ping", NULL, NULL, deadline_in_ms(5000), &err));
    json_decref(args);
    CHECK_OK(pool_call_wait(fast, &r, &err));
    CHECK(r.ok);
    env_reply_clear(&r);
    CHECK(clock_now_ms() - t0 < 300); /* overtook the slow one */
    CHECK_OK(pool_call_wait(slow, &r, &err));
    CHECK_EQ(json_integer_value(json_object_get(r.result, "slept")), 400);
    env_reply_clear(&r);
    struct pool_stats st;
    pool_stats(p, &st);
    CHECK_EQ(st.connections_opened, 1);
    pool_free(p);
    echo_server_stop(&es);
}

static void test_load_threshold_opens_connections(void **state)
{
    (void)state;
    struct echo_server es;
    echo_server_start_tcp(&es, NULL);
    struct pool_config pcfg = {.connection_load_threshold = 1, .max_connections = 3};
    struct pool *p = pool_to(&es, &pcfg);
    struct pool_call *c[5];
    struct km_error err;
    json_t *args = json_pack("{s:i}", "ms", 100);
    for (int i = 0; i < 5; i++)
        CHECK_OK(pool_call_start(p, &c[i], "sleep", NULL, args, deadline_in_ms(5000), &err));
    json_decref(args);
    struct pool_stats st;
    pool_stats(p, &st);
    CHECK_EQ(st.connections_open, 3);
    CHECK_EQ(st.in_flight, 5);
    for (int i = 0; i < 5; i++) {
        struct env_reply r;
        CHECK_OK(pool_call_wait(c[i], &r, &err));
        env_reply_clear(&r);
    }
    pool_free(p);
    echo_server_stop(&es);
}

/* Runs tests/km_test_server in a child process; returns its pid and port. */
static pid_t spawn_server(uint32_t *port)
{
    const char *dir = getenv("KEYMELD_TEST_BUILD_DIR");
    CHECK_NOT_NULL(dir);
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/km_test_server", dir);
    int out[2];
    CHECK(pipe(out) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char listen_arg[] = "tcp://127.0.0.1:0";
    char *argv[] = {path, listen_arg, NULL};
    pid_t pid;
    CHECK(posix_spawn(&pid, path, &fa, NULL, argv, environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    char line[64] = "";
    FILE *f = fdopen(out[0], "r");
    CHECK(fgets(line, sizeof(line), f) != NULL);
    fclose(f);
    unsigned p = 0;
    CHECK(sscanf(line, "listening %u", &p) == 1);
    *port = p;
    return pid;
}

static void test_server_killed_mid_flight_fails_pending_at_once(void **state)
{
    (void)state;
    uint32_t port;
    pid_t pid = spawn_server(&port);
    struct tp_addr a;
    CHECK_OK(tp_addr_tcp(&a, "127.0.0.1", port, NULL));
    struct pool_config pcfg = {.max_attempts = 1};
    struct pool *p = pool_new(&a, &pcfg);
    struct km_error err;
    enum { N = 40 };
    struct pool_call *c[N];
    json_t *args = json_pack("{s:i}", "ms", 8000);
    for (int i = 0; i < N; i++)
        CHECK_OK(pool_call_start(p, &c[i], "sleep", NULL, args, deadline_in_ms(20000), &err));
    json_decref(args);
    clock_sleep_ms(200);
    uint64_t t0 = clock_now_ms();
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < N; i++) {
        struct env_reply r;
        CHECK_ERR(pool_call_wait(c[i], &r, &err), KM_ERR_CLOSED);
    }
    uint64_t took = clock_now_ms() - t0;
    print_message("%d pending requests failed %llu ms after the kill\n", N,
                  (unsigned long long)took);
    CHECK(took < 2000); /* not at their 20 s deadline */

    /* The enclave is gone: the next request is refused, after retries. */
    struct env_reply r;
    CHECK_ERR(pool_request(p, &r, "ping", NULL, NULL, 2000, &err), KM_ERR_CONNECT);
    CHECK_EQ(err.sys_errno, ECONNREFUSED);
    pool_free(p);
}

static void test_connection_refused_message_and_retries(void **state)
{
    (void)state;
    struct km_error err;
    int lfd;
    struct tp_addr a;
    CHECK_OK(tp_addr_tcp(&a, "127.0.0.1", 1, NULL));
    a.port = 0;
    CHECK_OK(tp_listen(&lfd, &a, 1, &err));
    CHECK_OK(tp_listen_port(lfd, &a.port));
    close(lfd);

    struct pool_config pcfg = {.max_attempts = 3, .initial_retry_delay_ms = 10};
    struct pool *p = pool_new(&a, &pcfg);
    struct env_reply r;
    CHECK_ERR(pool_request(p, &r, "ping", NULL, NULL, 3000, &err), KM_ERR_CONNECT);
    char want[160];
    snprintf(want, sizeof(want),
             "Command failed to tcp://127.0.0.1:%u: Enclave communication error: Failed to "
             "connect: Connection refused (os error 111)",
             a.port);
    CHECK_STR_EQ(err.msg, want);
    struct pool_stats st;
    pool_stats(p, &st);
    CHECK_EQ(st.retries, 2);
    CHECK_EQ(st.connect_failures, 3);
    char hint[512];
    CHECK_CONTAINS(tp_error_hint(hint, sizeof(hint), &err, &a, 0, true), "not listening yet");
    pool_free(p);
}

static void test_unknown_host(void **state)
{
    (void)state;
    struct tp_addr a;
    struct km_error err;
    struct env_reply r;
    CHECK_OK(tp_addr_tcp(&a, "keymeld-enclave-0.invalid", 5000, NULL));
    struct pool_config pcfg = {.max_attempts = 1};
    struct pool *p = pool_new(&a, &pcfg);
    CHECK_ERR(pool_request(p, &r, "ping", NULL, NULL, 3000, &err), KM_ERR_RESOLVE);
    CHECK_STR_EQ(err.msg, "Command failed to tcp://keymeld-enclave-0.invalid:5000: Enclave "
                          "communication error: Failed to resolve hostname: "
                          "keymeld-enclave-0.invalid");
    pool_free(p);
}

static void test_retryable_remote_errors_are_retried_with_same_command_id(void **state)
{
    (void)state;
    struct echo_server es;
    echo_server_start_tcp(&es, NULL);
    struct pool_config pcfg = {.max_attempts = 3, .initial_retry_delay_ms = 5};
    struct pool *p = pool_to(&es, &pcfg);
    struct env_reply r;
    struct km_error err;
    json_t *two = json_pack("{s:i}", "failures", 2);
    CHECK_OK(pool_request(p, &r, "flaky", NULL, two, 0, &err));
    /* The server counted 3 calls under one command_id. */
    CHECK_EQ(json_integer_value(json_object_get(r.result, "calls")), 3);
    env_reply_clear(&r);
    json_decref(two);

    json_t *five = json_pack("{s:i}", "failures", 5);
    CHECK_ERR(pool_request(p, &r, "flaky", NULL, five, 0, &err), KM_ERR_REMOTE);
    CHECK_STR_EQ(r.error.code, "busy");
    CHECK_CONTAINS(err.msg, "Enclave error (busy): try again");
    env_reply_clear(&r);
    json_decref(five);

    /* Not retryable: one attempt only. */
    struct pool_stats before, after;
    pool_stats(p, &before);
    json_t *e =
        json_pack("{s:s, s:s, s:b}", "code", "invalid_state", "message", "nope", "retryable", 0);
    CHECK_ERR(pool_request(p, &r, "fail_with", NULL, e, 0, &err), KM_ERR_REMOTE);
    CHECK_STR_EQ(r.error.code, "invalid_state");
    env_reply_clear(&r);
    json_decref(e);
    pool_stats(p, &after);
    CHECK_EQ(after.retries, before.retries);
    CHECK_EQ(after.requests, before.requests + 1);
    pool_free(p);
    echo_server_stop(&es);
}

static void test_oversized_reply_kills_connection_not_stream(void **state)
{
    (void)state;
    struct echo_server es;
    echo_server_start_tcp(&es, NULL);
    struct pool_config pcfg = {.max_frame = 300, .max_attempts = 3};
    struct pool *p = pool_to(&es, &pcfg);
    struct env_reply r;
    struct km_error err;
    json_t *big = json_pack("{s:i}", "size", 1000);
    CHECK_ERR(pool_request(p, &r, "blob", NULL, big, 0, &err), KM_ERR_TOO_LARGE);
    CHECK_CONTAINS(err.msg, "Message too large");
    json_decref(big);
    /* The pool recovers on a fresh connection. */
    CHECK_OK(pool_request(p, &r, "ping", NULL, NULL, 0, &err));
    env_reply_clear(&r);
    struct pool_stats st;
    pool_stats(p, &st);
    CHECK_EQ(st.connections_opened, 2);
    CHECK_EQ(st.retries, 0); /* an oversized reply is not retried */

    /* A request over the limit is refused before sending. */
    char pad[400];
    memset(pad, 'p', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    json_t *args = json_pack("{s:s}", "pad", pad);
    CHECK_ERR(pool_request(p, &r, "echo", NULL, args, 0, &err), KM_ERR_TOO_LARGE);
    CHECK_CONTAINS(err.msg, "before sending");
    json_decref(args);
    pool_free(p);
    echo_server_stop(&es);
}

/* A scripted fake enclave: accepts one connection, reads one request,
 * then misbehaves. */
struct fake {
    int lfd;
    uint32_t port;
    int mode; /* 0: reply garbage; 1: half a frame then stall */
    pthread_t t;
};

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    struct km_error err;
    int fd = -1;
    while (tp_accept(f->lfd, &fd, NULL, 0, &err) == KM_ERR_INCOMPLETE)
        clock_sleep_ms(5);
    struct tp_reader rd;
    const uint8_t *p;
    size_t n;
    tp_reader_init(&rd, 1 << 20);
    if (tp_reader_next(&rd, fd, deadline_in_ms(5000), 5000, &p, &n, &err) == KM_OK) {
        struct buf out;
        buf_init(&out, 1024);
        if (f->mode == 0) {
            CHECK_OK(frame_encode(&out, (const uint8_t *)"not json at all", 15, 1024));
        } else {
            CHECK_OK(buf_put_u32(&out, 100));
            CHECK_OK(buf_put(&out, "{\"v\":1,\"id\"", 11));
        }
        CHECK_OK(tp_write_all(fd, buf_peek(&out), buf_len(&out), deadline_in_ms(1000), &err));
        buf_release(&out);
        clock_sleep_ms(f->mode == 0 ? 0 : 800);
    }
    tp_reader_release(&rd);
    close(fd);
    return NULL;
}

static struct pool *fake_start(struct fake *f, int mode, const struct pool_config *cfg)
{
    struct tp_addr a;
    struct km_error err;
    CHECK_OK(tp_addr_tcp(&a, "127.0.0.1", 1, NULL));
    a.port = 0;
    CHECK_OK(tp_listen(&f->lfd, &a, 1, &err));
    CHECK_OK(tp_listen_port(f->lfd, &f->port));
    f->mode = mode;
    CHECK(pthread_create(&f->t, NULL, fake_main, f) == 0);
    a.port = f->port;
    return pool_new(&a, cfg);
}

static void fake_stop(struct fake *f)
{
    pthread_join(f->t, NULL);
    close(f->lfd);
}

static void test_garbage_reply_fails_request(void **state)
{
    (void)state;
    struct fake f;
    struct pool_config cfg = {.max_attempts = 1};
    struct pool *p = fake_start(&f, 0, &cfg);
    struct env_reply r;
    struct km_error err;
    CHECK_ERR(pool_request(p, &r, "ping", NULL, NULL, 3000, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "Invalid reply from enclave");
    fake_stop(&f);
    pool_free(p);
}

static void test_half_reply_then_stall_hits_deadline(void **state)
{
    (void)state;
    struct fake f;
    struct pool_config cfg = {.max_attempts = 1};
    struct pool *p = fake_start(&f, 1, &cfg);
    struct env_reply r;
    struct km_error err;
    uint64_t t0 = clock_now_ms();
    CHECK_ERR(pool_request(p, &r, "ping", NULL, NULL, 300, &err), KM_ERR_TIMEOUT);
    uint64_t took = clock_now_ms() - t0;
    CHECK(took >= 290 && took < 2000);
    CHECK_CONTAINS(err.msg, "timed out");
    fake_stop(&f);
    pool_free(p);
}

static void test_idle_close_between_requests_is_clean(void **state)
{
    (void)state;
    struct echo_server es;
    struct tp_server_config scfg = {.idle_timeout_ms = 150};
    echo_server_start_tcp(&es, &scfg);
    struct pool_config pcfg = {.max_attempts = 1};
    struct pool *p = pool_to(&es, &pcfg);
    struct env_reply r;
    struct km_error err;
    CHECK_OK(pool_request(p, &r, "ping", NULL, NULL, 0, &err));
    env_reply_clear(&r);
    clock_sleep_ms(500); /* the enclave closes the idle connection */
    struct tp_server_stats sst;
    tp_server_stats(es.srv, &sst);
    CHECK_EQ(sst.connections_idle_closed, 1);
    /* No retries allowed: the next request must simply open a new one. */
    CHECK_OK(pool_request(p, &r, "ping", NULL, NULL, 0, &err));
    env_reply_clear(&r);
    struct pool_stats st;
    pool_stats(p, &st);
    CHECK_EQ(st.connections_opened, 2);
    CHECK_EQ(st.failures, 0);
    CHECK_EQ(st.retries, 0);
    pool_free(p);
    echo_server_stop(&es);
}

/* Replies to one request on fd (ping-style {}). */
static void fake_reply(int fd, struct tp_reader *rd)
{
    const uint8_t *p;
    size_t n;
    struct km_error err;
    struct env_request req;
    bool has_id;
    CHECK_OK(tp_reader_next(rd, fd, deadline_in_ms(5000), 5000, &p, &n, &err));
    CHECK_OK(env_request_decode(&req, &has_id, p, n, &err));
    struct buf out;
    buf_init(&out, 1024);
    CHECK_OK(frame_begin(&out));
    CHECK_OK(env_reply_encode_ok(&out, req.id, NULL));
    CHECK_OK(frame_finish(&out, 0, 1024));
    CHECK_OK(tp_write_all(fd, buf_peek(&out), buf_len(&out), deadline_in_ms(1000), &err));
    buf_release(&out);
    env_request_clear(&req);
}

static int fake_accept(int lfd)
{
    struct km_error err;
    int fd = -1;
    while (tp_accept(lfd, &fd, NULL, 0, &err) == KM_ERR_INCOMPLETE)
        clock_sleep_ms(5);
    return fd;
}

/* Answers one request, then closes the connection as the next request
 * arrives (an idle close racing a write), then serves a new connection. */
static void *fake_idle_race_main(void *arg)
{
    struct fake *f = arg;
    struct tp_reader rd;
    const uint8_t *p;
    size_t n;
    struct km_error err;
    int fd = fake_accept(f->lfd);
    tp_reader_init(&rd, 1 << 20);
    fake_reply(fd, &rd);
    CHECK_OK(tp_reader_next(&rd, fd, deadline_in_ms(5000), 5000, &p, &n, &err));
    tp_reader_release(&rd);
    close(fd);
    fd = fake_accept(f->lfd);
    tp_reader_init(&rd, 1 << 20);
    fake_reply(fd, &rd);
    tp_reader_release(&rd);
    close(fd);
    return NULL;
}

static void test_idle_close_racing_a_request_is_resent(void **state)
{
    (void)state;
    struct fake f;
    struct tp_addr a;
    struct km_error err;
    CHECK_OK(tp_addr_tcp(&a, "127.0.0.1", 1, NULL));
    a.port = 0;
    CHECK_OK(tp_listen(&f.lfd, &a, 4, &err));
    CHECK_OK(tp_listen_port(f.lfd, &f.port));
    CHECK(pthread_create(&f.t, NULL, fake_idle_race_main, &f) == 0);
    a.port = f.port;
    struct pool *p = pool_new(&a, NULL);

    /* pool_call_* never retries: only the resend can save the second. */
    struct pool_call *c;
    struct env_reply r;
    for (int i = 0; i < 2; i++) {
        CHECK_OK(pool_call_start(p, &c, "ping", NULL, NULL, deadline_in_ms(5000), &err));
        CHECK_OK(pool_call_wait(c, &r, &err));
        CHECK(r.ok);
        env_reply_clear(&r);
    }
    struct pool_stats st;
    pool_stats(p, &st);
    CHECK_EQ(st.connections_opened, 2);
    CHECK_EQ(st.requests, 3);
    CHECK_EQ(st.retries, 1);
    CHECK_EQ(st.replies_ok, 2);
    fake_stop(&f);
    pool_free(p);
}

static void test_enclave_restart_is_survived(void **state)
{
    (void)state;
    struct echo_server es;
    echo_server_start_tcp(&es, NULL);
    uint32_t port = es.port;
    struct pool *p = pool_to(&es, NULL);
    struct env_reply r;
    struct km_error err;
    CHECK_OK(pool_request(p, &r, "ping", NULL, NULL, 0, &err));
    env_reply_clear(&r);
    echo_server_stop(&es);

    struct tp_addr a;
    CHECK_OK(tp_addr_tcp(&a, "127.0.0.1", port, NULL));
    echo_server_start(&es, &a, NULL);
    CHECK_OK(pool_request(p, &r, "ping", NULL, NULL, 0, &err));
    env_reply_clear(&r);
    struct pool_stats st;
    pool_stats(p, &st);
    CHECK_EQ(st.connections_opened, 2);
    pool_free(p);
    echo_server_stop(&es);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_request_ping_and_stats),
        TEST(test_thousand_concurrent_requests_few_connections),
        TEST(test_out_of_order_replies),
        TEST(test_load_threshold_opens_connections),
        TEST(test_server_killed_mid_flight_fails_pending_at_once),
        TEST(test_connection_refused_message_and_retries),
        TEST(test_unknown_host),
        TEST(test_retryable_remote_errors_are_retried_with_same_command_id),
        TEST(test_oversized_reply_kills_connection_not_stream),
        TEST(test_garbage_reply_fails_request),
        TEST(test_half_reply_then_stall_hits_deadline),
        TEST(test_enclave_restart_is_survived),
        TEST(test_idle_close_between_requests_is_clean),
        TEST(test_idle_close_racing_a_request_is_resent),
    };
    return RUN_TESTS("transport.pool", tests);
}
