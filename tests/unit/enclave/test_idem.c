/*
 * test_idem.c - the reply cache (enclave/idem.h): replay, conflict,
 * retryable failures not cached, eviction by count and by bytes, dropping
 * a session's entries, and a duplicate waiting for the first instance.
 */
#include "test.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/xmalloc.h"
#include "enclave/idem.h"
#include "common/banned.h"

static void ok_reply(struct idem_reply *r, const char *json)
{
    memset(r, 0, sizeof(*r));
    r->ok = true;
    r->result = json_loads(json, 0, NULL);
    CHECK(r->result != NULL);
}

/* The cached result as compact text (for comparing). */
static void check_result(const struct idem_reply *r, const char *want)
{
    char *got = json_dumps(r->result, JSON_COMPACT);
    CHECK_STR_EQ(got, want);
    free(got);
}

static void test_replay_and_conflict(void **state)
{
    (void)state;
    struct idem *c = idem_new(10, 1 << 20);
    struct uuid id, sess;
    uint8_t d1[32] = {1}, d2[32] = {2};
    struct idem_reply rep, got;
    CHECK_OK(uuid_v7_new(&id));
    CHECK_OK(uuid_v7_new(&sess));
    CHECK_EQ(idem_begin(c, &id, d1, 0, &got), IDEM_RUN);
    ok_reply(&rep, "{\"a\":1}");
    idem_finish(c, &id, &sess, NULL, &rep, true);
    idem_reply_clear(&rep);
    CHECK_EQ(idem_begin(c, &id, d1, 0, &got), IDEM_DONE);
    CHECK(got.ok);
    check_result(&got, "{\"a\":1}");
    idem_reply_clear(&got);
    CHECK_EQ(idem_begin(c, &id, d2, 0, &got), IDEM_CONFLICT);
    CHECK_EQ(idem_count(c), 1);
    idem_drop_session(c, &sess);
    CHECK_EQ(idem_count(c), 0);
    CHECK_EQ(idem_begin(c, &id, d2, 0, &got), IDEM_RUN);
    /* A retryable failure is not kept: the next attempt runs. */
    memset(&rep, 0, sizeof(rep));
    snprintf(rep.error.code, sizeof(rep.error.code), "busy");
    idem_finish(c, &id, NULL, NULL, &rep, false);
    CHECK_EQ(idem_begin(c, &id, d2, 0, &got), IDEM_RUN);
    ok_reply(&rep, "{}");
    idem_finish(c, &id, NULL, NULL, &rep, true);
    idem_reply_clear(&rep);
    idem_free(c);
}

static void test_eviction(void **state)
{
    (void)state;
    struct idem *c = idem_new(3, 1 << 20);
    struct uuid ids[5];
    uint8_t d[32] = {0};
    struct idem_reply rep, got;
    for (int i = 0; i < 5; i++) {
        CHECK_OK(uuid_v7_new(&ids[i]));
        CHECK_EQ(idem_begin(c, &ids[i], d, 0, &got), IDEM_RUN);
        ok_reply(&rep, "{}");
        idem_finish(c, &ids[i], NULL, NULL, &rep, true);
        idem_reply_clear(&rep);
    }
    CHECK_EQ(idem_count(c), 3);
    /* The oldest went first. */
    CHECK_EQ(idem_begin(c, &ids[0], d, 0, &got), IDEM_RUN);
    idem_finish(c, &ids[0], NULL, NULL, &got, false);
    CHECK_EQ(idem_begin(c, &ids[4], d, 0, &got), IDEM_DONE);
    idem_reply_clear(&got);
    idem_free(c);

    /* By bytes: one big reply pushes the others out. */
    c = idem_new(100, 4096);
    char *big = xmalloc(4009);
    memcpy(big, "{\"b\":\"", 6);
    memset(big + 6, 'x', 4000);
    memcpy(big + 4006, "\"}", 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(idem_begin(c, &ids[i], d, 0, &got), IDEM_RUN);
        ok_reply(&rep, i == 2 ? big : "{}");
        idem_finish(c, &ids[i], NULL, NULL, &rep, true);
        idem_reply_clear(&rep);
    }
    CHECK_EQ(idem_count(c), 1);
    free(big);
    idem_free(c);
}

struct waiter {
    struct idem *c;
    struct uuid id;
    int status;
    struct idem_reply got;
};

static void *wait_thread(void *p)
{
    struct waiter *w = p;
    static const uint8_t d[32] = {7};
    w->status = idem_begin(w->c, &w->id, d, 10000, &w->got);
    return NULL;
}

static void test_duplicate_waits(void **state)
{
    (void)state;
    struct idem *c = idem_new(10, 1 << 20);
    static const uint8_t d[32] = {7};
    struct waiter w = {.c = c};
    struct idem_reply rep, got;
    pthread_t th;
    CHECK_OK(uuid_v7_new(&w.id));
    CHECK_EQ(idem_begin(c, &w.id, d, 0, &got), IDEM_RUN);
    CHECK_EQ(pthread_create(&th, NULL, wait_thread, &w), 0);
    clock_sleep_ms(50);
    ok_reply(&rep, "{\"done\":true}");
    idem_finish(c, &w.id, NULL, NULL, &rep, true);
    idem_reply_clear(&rep);
    pthread_join(th, NULL);
    CHECK_EQ(w.status, IDEM_DONE);
    check_result(&w.got, "{\"done\":true}");
    idem_reply_clear(&w.got);

    /* A first instance that runs too long: the duplicate is told busy. */
    struct uuid slow;
    CHECK_OK(uuid_v7_new(&slow));
    CHECK_EQ(idem_begin(c, &slow, d, 0, &got), IDEM_RUN);
    CHECK_EQ(idem_begin(c, &slow, d, 20, &got), IDEM_BUSY);
    idem_finish(c, &slow, NULL, NULL, &got, false);
    idem_free(c);
}

static void test_digest(void **state)
{
    (void)state;
    uint8_t a[32], b[32], x[32];
    json_t *j1 = json_pack("{s:i,s:s}", "a", 1, "b", "x");
    json_t *j2 = json_pack("{s:s,s:i}", "b", "x", "a", 1); /* other key order */
    idem_digest(a, "ping", j1);
    idem_digest(b, "ping", j2);
    CHECK_MEM_EQ(a, b, 32);
    idem_digest(x, "pong", j1);
    CHECK(memcmp(a, x, 32) != 0);
    json_decref(j1);
    json_decref(j2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_replay_and_conflict),
        TEST(test_eviction),
        TEST(test_duplicate_waits),
        TEST(test_digest),
    };
    return RUN_TESTS("enclave.idem", tests);
}
