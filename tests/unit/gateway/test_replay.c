#include "test.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "gateway/replay.h"
#include "store/store.h"
#include "common/banned.h"

#define KEY "4f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa"

static char dir[64];

static struct store *open_store(bool fresh)
{
    char path[96];
    snprintf(dir, sizeof(dir), "/tmp/km-replay-test-%d", (int)getpid());
    snprintf(path, sizeof(path), "%s/db.sqlite", dir);
    if (fresh)
        test_remove_database(path);
    struct store_options o;
    store_options_default(&o, path);
    struct store *s;
    struct km_error err;
    if (store_open(&s, &o, &err) != KM_OK)
        fail_msg("store_open: %s", err.msg);
    return s;
}

static bool in_db(struct store *s, const char *nonce)
{
    bool seen = false;
    CHECK_OK(store_auth_nonce_seen(s, KEY, nonce, &seen));
    return seen;
}

static void test_claim_once(void **state)
{
    (void)state;
    struct store *s = open_store(true);
    struct gw_replay *r = gw_replay_new(s);
    CHECK_OK(gw_replay_claim(r, KEY, "00112233445566778899aabbccddeeff", 1000));
    CHECK_ERR(gw_replay_claim(r, KEY, "00112233445566778899aabbccddeeff", 1000), KM_ERR_EXISTS);
    /* Same nonce, other key: a different pair. */
    CHECK_OK(gw_replay_claim(r, "ab", "00112233445566778899aabbccddeeff", 1000));
    char too_long[80];
    memset(too_long, 'a', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    CHECK_ERR(gw_replay_claim(r, too_long, "00", 1000), KM_ERR_INVALID);
    CHECK_ERR(gw_replay_claim(r, KEY, too_long, 1000), KM_ERR_INVALID);
    gw_replay_free(r);
    store_close(s);
}

/* Pairs reach the database within the flush interval, and free records
 * what is still pending. */
static void test_recorded_in_database(void **state)
{
    (void)state;
    struct store *s = open_store(true);
    struct gw_replay *r = gw_replay_new(s);
    CHECK_OK(gw_replay_claim(r, KEY, "01", 1000));
    uint64_t until = clock_now_ms() + 5000;
    while (!in_db(s, "01") && clock_now_ms() < until)
        clock_sleep_ms(5);
    CHECK(in_db(s, "01"));
    /* Still refused once only the database knows it. */
    CHECK_ERR(gw_replay_claim(r, KEY, "01", 1000), KM_ERR_EXISTS);
    CHECK_OK(gw_replay_claim(r, KEY, "02", 1000));
    gw_replay_free(r);
    CHECK(in_db(s, "02"));
    store_close(s);
}

/* The recorder flushes while a claim sits between its in-memory mark and
 * its database check (a 40 ms pause, twice the flush interval): the fresh
 * request is still accepted, not taken for a replay of itself, and a second
 * claim of the same pair is still refused. */
static void test_flush_during_claim(void **state)
{
    (void)state;
    struct store *s = open_store(true);
    struct gw_replay *r = gw_replay_new(s);
    CHECK_OK(gw_replay_claim(r, KEY, "a0", 1000)); /* the recorder has work */
    gw_replay_test_delay_ms = 2 * GW_REPLAY_FLUSH_MS;
    for (int i = 0; i < 5; i++) {
        char nonce[8];
        snprintf(nonce, sizeof(nonce), "b%d", i);
        CHECK_OK(gw_replay_claim(r, KEY, nonce, 1000));
        CHECK_ERR(gw_replay_claim(r, KEY, nonce, 1000), KM_ERR_EXISTS);
    }
    gw_replay_test_delay_ms = 0;
    gw_replay_free(r);
    CHECK(in_db(s, "b4"));
    store_close(s);
}

/* A restart keeps refusing what was claimed before it. */
static void test_survives_restart(void **state)
{
    (void)state;
    struct store *s = open_store(true);
    struct gw_replay *r = gw_replay_new(s);
    for (int i = 0; i < 600; i++) { /* more than one batch */
        char nonce[33];
        snprintf(nonce, sizeof(nonce), "%032x", i);
        CHECK_OK(gw_replay_claim(r, KEY, nonce, 1000));
    }
    gw_replay_free(r);
    store_close(s);

    s = open_store(false);
    r = gw_replay_new(s);
    for (int i = 0; i < 600; i++) {
        char nonce[33];
        snprintf(nonce, sizeof(nonce), "%032x", i);
        CHECK_ERR(gw_replay_claim(r, KEY, nonce, 1000), KM_ERR_EXISTS);
    }
    CHECK_OK(gw_replay_claim(r, KEY, "new", 1000));
    gw_replay_free(r);
    store_close(s);
}

#define RACERS 8
#define ROUNDS 200

struct racer {
    struct gw_replay *r;
    int won[ROUNDS];
};

static void *race(void *arg)
{
    struct racer *x = arg;
    for (int i = 0; i < ROUNDS; i++) {
        char nonce[33];
        snprintf(nonce, sizeof(nonce), "race%d", i);
        x->won[i] = gw_replay_claim(x->r, KEY, nonce, 1000);
    }
    return NULL;
}

/* Threads claiming the same pairs at once: exactly one wins each. */
static void test_concurrent_claims(void **state)
{
    (void)state;
    struct store *s = open_store(true);
    struct gw_replay *r = gw_replay_new(s);
    struct racer racers[RACERS];
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++) {
        racers[i].r = r;
        CHECK_EQ(pthread_create(&t[i], NULL, race, &racers[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(t[i], NULL);
    for (int n = 0; n < ROUNDS; n++) {
        int wins = 0;
        for (int i = 0; i < RACERS; i++) {
            if (racers[i].won[n] == KM_OK)
                wins++;
            else
                CHECK_EQ(racers[i].won[n], KM_ERR_EXISTS);
        }
        CHECK_EQ(wins, 1);
    }
    gw_replay_free(r);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_claim_once),       TEST(test_recorded_in_database), TEST(test_flush_during_claim),
        TEST(test_survives_restart), TEST(test_concurrent_claims),
    };
    int failed = RUN_TESTS("replay", tests);
    if (failed == 0 && dir[0] != '\0') {
        char path[96];
        snprintf(path, sizeof(path), "%s/db.sqlite", dir);
        test_remove_database(path);
    }
    return failed;
}
