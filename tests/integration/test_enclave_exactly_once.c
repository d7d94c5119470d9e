/*
 * test_enclave_exactly_once.c - every request gets exactly one reply, even
 * when a handler fails unexpectedly. The real request server runs the real
 * dispatcher in-process on 127.0.0.1, with the test hook
 * enclave_config.fault_cmd making `ping`'s handler fail without a message
 * (the hook is not reachable from keymeld-enclave). A raw connection sends
 * a burst of requests of every kind (failing, valid, invalid, unknown,
 * undecodable) and reads back exactly one reply per id, then nothing more.
 */
#include "test.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enclave/enclave.h"
#include "transport/frame.h"
#include "transport/sock.h"
#include "common/banned.h"

#define N_REQ 60

static void *serve(void *srv)
{
    CHECK_OK(tp_server_run(srv));
    return NULL;
}

static void send_frame(int fd, const char *payload)
{
    struct buf b;
    struct km_error err;
    buf_init(&b, 1 << 20);
    CHECK_OK(frame_encode(&b, (const uint8_t *)payload, strlen(payload), 1 << 20));
    CHECK_OK(tp_write_all(fd, buf_peek(&b), buf_len(&b), deadline_in_ms(5000), &err));
    buf_release(&b);
}

/* Request i: a mix of every outcome. Returns the expected error code, or
 * NULL for success. */
static const char *request(char *out, size_t cap, int i)
{
    static const struct {
        const char *cmd, *args, *code;
    } kinds[] = {
        {"ping", "{}", "internal"}, /* the injected failure */
        {"get_public_info", "{}", NULL},
        {"configure", "{\"enclave_id\":\"x\"}", "invalid_argument"},
        {"frobnicate", "{}", "unknown_command"},
        {"keygen_get_aggregate", "{\"keygen_session_id\":\"01900000-0000-7000-8000-0000000000aa\"}",
         "not_found"},
    };
    size_t k = (size_t)i % (KM_ARRAY_LEN(kinds) + 1);
    if (k == KM_ARRAY_LEN(kinds)) {
        /* Not an envelope: the server answers for the dispatcher. */
        snprintf(out, cap, "{\"v\":1,\"id\":%d,\"cmd\":\"ping\",\"command_id\":7}", i);
        return "invalid_request";
    }
    snprintf(out, cap,
             "{\"v\":1,\"id\":%d,\"command_id\":\"01900000-0000-7000-8000-%012x\","
             "\"cmd\":\"%s\",\"args\":%s}",
             i, i + 1, kinds[k].cmd, kinds[k].args);
    return kinds[k].code;
}

static void test_one_reply_per_request(void **state)
{
    (void)state;
    struct km_error err;
    struct enclave_config cfg = {.fault_cmd = "ping"};
    struct enclave *en = enclave_new(&cfg, &err);
    CHECK_NOT_NULL(en);
    struct tp_server_config scfg = {.workers = 4};
    struct tp_server *srv = tp_server_new(&scfg, enclave_handle, en);
    struct tp_addr a;
    CHECK_OK(tp_addr_tcp(&a, "127.0.0.1", 1, &err));
    a.port = 0;
    CHECK_OK(tp_server_listen(srv, &a, &err));
    a.port = tp_server_port(srv);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, serve, srv), 0);

    int fd;
    CHECK_OK(tp_connect(&fd, &a, deadline_in_ms(5000), &err));
    const char *want[N_REQ];
    for (int i = 0; i < N_REQ; i++) {
        char req[512];
        want[i] = request(req, sizeof(req), i);
        send_frame(fd, req);
    }
    int seen[N_REQ] = {0};
    struct tp_reader rd;
    tp_reader_init(&rd, 1 << 20);
    for (int got = 0; got < N_REQ; got++) {
        const uint8_t *p;
        size_t n;
        struct env_reply rep;
        CHECK_OK(tp_reader_next(&rd, fd, deadline_in_ms(10000), 10000, &p, &n, &err));
        CHECK_OK(env_reply_decode(&rep, p, n, &err));
        CHECK(rep.id < N_REQ);
        seen[rep.id]++;
        if (want[rep.id] == NULL)
            CHECK(rep.ok);
        else if (rep.ok || strcmp(rep.error.code, want[rep.id]) != 0)
            fail_msg("request %llu: want %s, got %s", (unsigned long long)rep.id, want[rep.id],
                     rep.ok ? "ok" : rep.error.code);
        if (!rep.ok && strcmp(rep.error.code, "internal") == 0)
            CHECK_CONTAINS(rep.error.message, "ping failed unexpectedly");
        env_reply_clear(&rep);
    }
    for (int i = 0; i < N_REQ; i++)
        CHECK_EQ(seen[i], 1);
    /* Nothing more arrives. */
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&pfd, 1, 300), 0);
    tp_reader_release(&rd);
    close(fd);

    tp_server_stop(srv);
    pthread_join(th, NULL);
    tp_server_free(srv);
    enclave_free(en);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_one_reply_per_request),
    };
    return RUN_TESTS("integration.enclave.exactly_once", tests);
}
