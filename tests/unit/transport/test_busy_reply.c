/*
 * test_busy_reply.c - a "busy" reply from the enclave's request server
 * (its queue full) as the gateway's coordinator reports it: the real
 * server, the real fan-out over the pool, coord_calls_verdict(). It used to
 * read "enclave 0 unreachable: " with an empty reason, because an error
 * reply leaves the transport error of its fanout_call empty.
 */
#include "test.h"

#include <string.h>

#include "config/config.h"
#include "echo_server.h"
#include "gateway/coord_internal.h"
#include "gateway/enclaves.h"
#include "gateway/fanout.h"
#include "common/banned.h"

struct env {
    struct echo_server es;
    struct cfg cfg;
    struct cfg_enclave enclave;
    struct enclave_mgr *em;
    struct coord coord;
};

/* An enclave manager with one enclave (id 0) at the echo server, and a
 * coordinator that only knows it. */
static void env_start(struct env *e, const struct tp_server_config *scfg)
{
    memset(e, 0, sizeof(*e));
    echo_server_start_tcp(&e->es, scfg);
    e->enclave.id = 0;
    e->enclave.transport = TP_KIND_TCP;
    echo_server_addr(&e->es, &e->enclave.addr);
    e->enclave.addr_ok = true;
    e->cfg.enclaves.list = &e->enclave;
    e->cfg.enclaves.count = 1;
    e->em = enclave_mgr_new(&e->cfg, NULL, NULL, NULL, NULL);
    CHECK_NOT_NULL(e->em);
    e->coord.em = e->em;
}

static void env_stop(struct env *e)
{
    enclave_mgr_free(e->em);
    echo_server_stop(&e->es);
}

static void call_init(struct fanout_call *c, const char *cmd, json_t *args)
{
    memset(c, 0, sizeof(*c));
    c->enclave_id = 0;
    c->cmd = cmd;
    c->args = args;
    CHECK_OK(uuid_v7_new(&c->command_id));
}

static void test_full_queue_is_reported_busy_with_its_message(void **state)
{
    (void)state;
    struct env e;
    struct tp_server_config scfg = {.workers = 1, .queue_capacity = 1};
    env_start(&e, &scfg);
    /* One runs, one waits, the rest find the queue full. */
    enum { N = 4 };
    struct fanout_call calls[N];
    for (int i = 0; i < N; i++)
        call_init(&calls[i], "sleep", json_pack("{s:i}", "ms", 300));
    fanout_run(e.em, calls, N, 10000);
    int busy = 0;
    for (int i = 0; i < N; i++) {
        if (calls[i].rc == KM_ERR_REMOTE) {
            CHECK_STR_EQ(calls[i].reply.error.code, "busy");
            busy++;
        } else {
            CHECK_OK(calls[i].rc);
        }
    }
    CHECK(busy >= 1);

    char err[COORD_ERR_MAX] = "";
    CHECK_EQ(coord_calls_verdict(&e.coord, calls, N, err, sizeof(err)), CALLS_RETRY);
    CHECK_STR_EQ(err, "enclave 0 busy: enclave request queue is full (capacity 1)");
    fanout_clear(calls, N);
    env_stop(&e);
}

static void test_other_error_replies_are_rejections(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, NULL);
    struct fanout_call calls[2];
    call_init(&calls[0], "ping", NULL);
    call_init(&calls[1], "fail_with",
              json_pack("{s:s, s:s, s:b}", "code", "invalid_state", "message", "not now",
                        "retryable", 0));
    fanout_run(e.em, calls, 2, 5000);
    char err[COORD_ERR_MAX] = "";
    CHECK_EQ(coord_calls_verdict(&e.coord, calls, 2, err, sizeof(err)), CALLS_FAIL);
    CHECK_STR_EQ(err, "enclave 0 rejected fail_with: invalid_state: not now");
    fanout_clear(calls, 2);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_full_queue_is_reported_busy_with_its_message),
        TEST(test_other_error_replies_are_rejections),
    };
    return RUN_TESTS("transport.busy_reply", tests);
}
