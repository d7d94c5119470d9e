/*
 * test_store.c - the session store (enclave/store.h): insert and lookup,
 * limits, turns in arrival order, removal while commands wait, the keygen
 * -> signing cascade, expiry, and destroy running exactly once after the
 * last reference.
 */
#include "test.h"

#include <pthread.h>
#include <string.h>

#include "common/clock.h"
#include "enclave/store.h"
#include "common/banned.h"

static int destroyed;

static void count_destroy(void *data)
{
    (void)data;
    destroyed++;
}

static struct session *mk(enum session_kind kind, const struct uuid *id, const struct uuid *kid)
{
    return session_new(kind, id, kid ? kid : id, NULL, count_destroy);
}

static int evicted;

static void count_evicted(void *ud, const struct session *s)
{
    (void)ud;
    (void)s;
    evicted++;
}

/* A full store makes room by evicting the least recently used evictable
 * session nothing holds; a held one (a signing session's keygen, a running
 * command) stays, and with nothing evictable the insert is refused. */
static void test_eviction(void **state)
{
    (void)state;
    struct store *st = store_new(3);
    struct uuid k1, k2, k3, k4, k5, sg;
    int existing;
    uint64_t t;
    store_set_evict_callback(st, count_evicted, NULL);
    CHECK_OK(uuid_v7_new(&k1));
    CHECK_OK(uuid_v7_new(&k2));
    CHECK_OK(uuid_v7_new(&k3));
    CHECK_OK(uuid_v7_new(&k4));
    CHECK_OK(uuid_v7_new(&k5));
    CHECK_OK(uuid_v7_new(&sg));
    destroyed = evicted = 0;
    struct session *s1 = mk(SESSION_KEYGEN, &k1, NULL), *s2 = mk(SESSION_KEYGEN, &k2, NULL),
                   *s3 = mk(SESSION_KEYGEN, &k3, NULL);
    CHECK_OK(store_insert(st, s1, NULL, STORE_NEVER, 10, &existing));
    CHECK_OK(store_insert(st, s2, NULL, STORE_NEVER, 20, &existing));
    CHECK_OK(store_insert(st, s3, NULL, STORE_NEVER, 30, &existing));
    /* Nothing evictable yet. */
    struct session *s4 = mk(SESSION_KEYGEN, &k4, NULL);
    CHECK_ERR(store_insert(st, s4, NULL, STORE_NEVER, 40, &existing), KM_ERR_LIMIT);
    store_set_evictable(st, s1, true);
    store_set_evictable(st, s2, true);
    store_set_evictable(st, s3, true);
    /* k1 used most recently: k2 is the least recently used. */
    struct session *got = store_acquire(st, SESSION_KEYGEN, &k1, 50, &t);
    CHECK(store_turn_wait(st, got, t));
    store_turn_end(st, got);
    store_release(st, got);
    CHECK_OK(store_insert(st, s4, NULL, STORE_NEVER, 60, &existing));
    CHECK_EQ(evicted, 1);
    CHECK_EQ(destroyed, 1);
    CHECK_NULL(store_acquire(st, SESSION_KEYGEN, &k2, 70, &t));
    /* k3 held by a running command: k1 goes instead, though used later. */
    struct session *held = store_acquire(st, SESSION_KEYGEN, &k3, 5, &t);
    struct session *s5 = mk(SESSION_KEYGEN, &k5, NULL);
    CHECK_OK(store_insert(st, s5, NULL, STORE_NEVER, 80, &existing));
    CHECK_EQ(evicted, 2);
    CHECK_NULL(store_acquire(st, SESSION_KEYGEN, &k1, 90, &t));
    CHECK(store_turn_wait(st, held, t));
    store_turn_end(st, held);
    store_release(st, held);
    store_free(st);
}

static void test_insert_lookup_limit(void **state)
{
    (void)state;
    struct store *st = store_new(2);
    struct uuid a, b, c;
    int existing = -1;
    uint64_t t;
    CHECK_OK(uuid_v7_new(&a));
    CHECK_OK(uuid_v7_new(&b));
    CHECK_OK(uuid_v7_new(&c));
    destroyed = 0;
    struct session *s = mk(SESSION_KEYGEN, &a, NULL);
    s->state = 1;
    CHECK_OK(store_insert(st, s, NULL, STORE_NEVER, 0, &existing));
    struct session *dup = mk(SESSION_KEYGEN, &a, NULL);
    CHECK_ERR(store_insert(st, dup, NULL, STORE_NEVER, 0, &existing), KM_ERR_EXISTS);
    CHECK_EQ(existing, 1);
    session_discard(dup);
    CHECK_EQ(destroyed, 1);
    /* The same id as the other kind is another session. */
    CHECK_OK(store_insert(st, mk(SESSION_SIGNING, &a, &a), NULL, STORE_NEVER, 0, &existing));
    struct session *full = mk(SESSION_KEYGEN, &b, NULL);
    CHECK_ERR(store_insert(st, full, NULL, STORE_NEVER, 0, &existing), KM_ERR_LIMIT);
    session_discard(full);
    CHECK_NULL(store_acquire(st, SESSION_KEYGEN, &c, 0, &t));
    struct session *got = store_acquire(st, SESSION_KEYGEN, &a, 0, &t);
    CHECK(got == s);
    CHECK(store_turn_wait(st, got, t));
    store_turn_end(st, got);
    store_release(st, got);
    uint32_t nk, ns;
    store_counts(st, &nk, &ns);
    CHECK(nk == 1 && ns == 1);
    store_free(st);
    CHECK_EQ(destroyed, 4);
}

static void test_remove_cascade_and_refs(void **state)
{
    (void)state;
    struct store *st = store_new(10);
    struct uuid k, s1, s2;
    int existing;
    uint64_t t;
    CHECK_OK(uuid_v7_new(&k));
    CHECK_OK(uuid_v7_new(&s1));
    CHECK_OK(uuid_v7_new(&s2));
    destroyed = 0;
    struct session *kg = mk(SESSION_KEYGEN, &k, NULL);
    CHECK_OK(store_insert(st, kg, NULL, STORE_NEVER, 0, &existing));
    CHECK_OK(store_insert(st, mk(SESSION_SIGNING, &s1, &k), kg, STORE_NEVER, 0, &existing));
    CHECK_OK(store_insert(st, mk(SESSION_SIGNING, &s2, &k), kg, STORE_NEVER, 0, &existing));
    /* A command holds signing session s1 while the keygen is removed. */
    struct session *held = store_acquire(st, SESSION_SIGNING, &s1, 0, &t);
    CHECK(store_turn_wait(st, held, t));
    struct session *k2 = store_acquire(st, SESSION_KEYGEN, &k, 0, &t);
    CHECK(store_remove(st, k2, NULL, NULL));
    CHECK(!store_remove(st, k2, NULL, NULL));
    store_release(st, k2);
    /* s2 and the keygen are gone; s1's data lives until its command ends. */
    CHECK_EQ(destroyed, 2);
    CHECK_NULL(store_acquire(st, SESSION_SIGNING, &s1, 0, &t));
    /* A signing session cannot be inserted under a removed keygen. */
    struct uuid s3;
    CHECK_OK(uuid_v7_new(&s3));
    struct session *late = mk(SESSION_SIGNING, &s3, &k);
    CHECK_ERR(store_insert(st, late, held, STORE_NEVER, 0, &existing), KM_ERR_NOT_FOUND);
    session_discard(late);
    store_turn_end(st, held);
    store_release(st, held);
    CHECK_EQ(destroyed, 4);
    store_free(st);
}

static void test_expiry(void **state)
{
    (void)state;
    struct store *st = store_new(10);
    struct uuid a, b;
    int existing;
    uint64_t t;
    CHECK_OK(uuid_v7_new(&a));
    CHECK_OK(uuid_v7_new(&b));
    destroyed = 0;
    CHECK_OK(store_insert(st, mk(SESSION_KEYGEN, &a, NULL), NULL, 1000, 0, &existing));
    CHECK_OK(store_insert(st, mk(SESSION_KEYGEN, &b, NULL), NULL, 5000, 0, &existing));
    struct session *s = store_acquire(st, SESSION_KEYGEN, &a, 999, &t);
    CHECK_NOT_NULL(s);
    CHECK(store_turn_wait(st, s, t));
    store_turn_end(st, s);
    store_release(st, s);
    CHECK_NULL(store_acquire(st, SESSION_KEYGEN, &a, 1000, &t));
    CHECK_EQ(store_reap(st, 1000, NULL, NULL), 1);
    CHECK_EQ(destroyed, 1);
    /* An expired session's id can be reused at once. */
    CHECK_OK(store_insert(st, mk(SESSION_KEYGEN, &b, NULL), NULL, STORE_NEVER, 6000, &existing));
    CHECK_EQ(destroyed, 2);
    store_free(st);
}

struct turn_arg {
    struct store *st;
    struct session *s;
    uint64_t ticket;
    int *log;
    int *pos;
    int me;
};

static void *turn_thread(void *p)
{
    struct turn_arg *a = p;
    CHECK(store_turn_wait(a->st, a->s, a->ticket));
    a->log[(*a->pos)++] = a->me;
    store_turn_end(a->st, a->s);
    store_release(a->st, a->s);
    return NULL;
}

static void test_turns_in_arrival_order(void **state)
{
    (void)state;
    struct store *st = store_new(10);
    struct uuid id;
    int existing, log[8], pos = 0;
    CHECK_OK(uuid_v7_new(&id));
    CHECK_OK(store_insert(st, mk(SESSION_KEYGEN, &id, NULL), NULL, STORE_NEVER, 0, &existing));
    struct turn_arg args[8];
    pthread_t th[8];
    /* Tickets are taken in order 0..7; threads start in reverse order. */
    for (int i = 0; i < 8; i++) {
        args[i] = (struct turn_arg){.st = st, .log = log, .pos = &pos, .me = i};
        args[i].s = store_acquire(st, SESSION_KEYGEN, &id, 0, &args[i].ticket);
    }
    for (int i = 7; i >= 0; i--)
        CHECK_EQ(pthread_create(&th[i], NULL, turn_thread, &args[i]), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(log[i], i);
    store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_insert_lookup_limit),     TEST(test_eviction),
        TEST(test_remove_cascade_and_refs), TEST(test_expiry),
        TEST(test_turns_in_arrival_order),
    };
    return RUN_TESTS("enclave.store", tests);
}
