/*
 * test_pool.c - nonce pools (nonce_pool_fill, signing_sign; docs/PROTOCOL.md
 * "Nonce pools") in-process over three enclaves: full signings through
 * fill + signing_sign + signing_finalize (batches, tweaks, subsets,
 * adaptors, approvals), and the single-use guarantees: a used entry never
 * signs again (other message, other session, same session with another
 * command id), a repeated command id gets the cached reply, take all or
 * none, entries gone with their keygen, bounds, and racing threads.
 */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "en_call.h"
#include "en_fixture.h"
#include "common/hex.h"
#include "common/xmalloc.h"
#include "common/banned.h"

#define N_ENCLAVES 3
#define MAX_STOCK  512
#define MAX_UNITS  32

struct env {
    struct en_fixture f;
    struct drv_keygen kg;
    /* What a gateway would keep: every fill's result, and per enclave the
     * entries in order with the next unused one. */
    size_t n_fills;
    struct proto_nonce_pool_fill_result fills[64];
    const struct proto_pool_entry *stock[N_ENCLAVES][MAX_STOCK];
    size_t n_stock[N_ENCLAVES], next[N_ENCLAVES];
};

/* The entry each enclave uses for each unit of a signing (in unit order). */
struct plan {
    size_t n_units;
    const struct proto_pool_entry *e[MAX_UNITS][N_ENCLAVES];
};

static void setup_cfg(struct env *e, size_t n_users, void (*tune)(struct drv_keygen *),
                      const struct enclave_config *cfg)
{
    struct km_error err;
    memset(e, 0, sizeof(*e));
    en_fixture_start(&e->f, N_ENCLAVES, cfg);
    drv_keygen_setup(&e->kg, n_users, N_ENCLAVES);
    if (tune)
        tune(&e->kg);
    if (drv_keygen_run(&e->f.d, &e->kg, &err) != KM_OK)
        fail_msg("keygen: %s", err.msg);
}

static void setup(struct env *e, size_t n_users, void (*tune)(struct drv_keygen *))
{
    setup_cfg(e, n_users, tune, NULL);
}

static void teardown(struct env *e)
{
    for (size_t i = 0; i < e->n_fills; i++)
        proto_nonce_pool_fill_result_clear(&e->fills[i]);
    drv_keygen_release(&e->kg);
    en_fixture_stop(&e->f);
}

static json_t *fill_args(const struct uuid *kid, uint32_t count)
{
    struct proto_nonce_pool_fill_args a = {.keygen_session_id = *kid, .count = count};
    return proto_nonce_pool_fill_args_encode(&a);
}

/* nonce_pool_fill on enclave enc; the entries join its stock. */
static void fill(struct env *e, size_t enc, uint32_t count)
{
    struct env_reply rep;
    struct km_error err;
    json_t *args = fill_args(&e->kg.id, count);
    if (drv_call(&e->f.d, enc, "nonce_pool_fill", NULL, args, &rep, &err) != KM_OK)
        fail_msg("nonce_pool_fill: %s", err.msg);
    json_decref(args);
    CHECK(e->n_fills < KM_ARRAY_LEN(e->fills));
    struct proto_nonce_pool_fill_result *res = &e->fills[e->n_fills++];
    CHECK_OK(proto_nonce_pool_fill_result_decode(res, rep.result, &err));
    env_reply_clear(&rep);
    CHECK_EQ(res->n_entries, count);
    for (size_t i = 0; i < res->n_entries; i++) {
        CHECK(e->n_stock[enc] < MAX_STOCK);
        e->stock[enc][e->n_stock[enc]++] = &res->entries[i];
    }
}

static void fill_all(struct env *e, uint32_t count)
{
    for (size_t enc = 0; enc < N_ENCLAVES; enc++)
        fill(e, enc, count);
}

static size_t pool_count(struct env *e, size_t enc)
{
    return enclave_pool_entries(e->f.ip.en[enc]);
}

static size_t item_units(const struct drv_item *it)
{
    if (it->n_adaptors == 0)
        return 1;
    size_t n = 0;
    for (size_t c = 0; c < it->n_adaptors; c++)
        n += it->adaptors[c].type == PROTO_ADAPTOR_OR ? it->adaptors[c].n_points : 1;
    return n;
}

/* The users who sign item it (indices into kg->users). */
static size_t item_signers(const struct drv_keygen *kg, const struct drv_item *it, size_t *out)
{
    if (it->subset >= 0) {
        memcpy(out, kg->subsets[it->subset].members, kg->subsets[it->subset].n * sizeof(*out));
        return kg->subsets[it->subset].n;
    }
    for (size_t u = 0; u < kg->n_users; u++)
        out[u] = u;
    return kg->n_users;
}

/* Takes the next stocked entry of each enclave for each unit in which one
 * of its users signs, as a gateway would claim them. */
static void plan_next(struct env *e, const struct drv_signing *sg, struct plan *p)
{
    memset(p, 0, sizeof(*p));
    for (size_t i = 0; i < sg->n_items; i++) {
        size_t users[64], n = item_signers(&e->kg, &sg->items[i], users);
        for (size_t k = 0; k < item_units(&sg->items[i]); k++, p->n_units++) {
            CHECK(p->n_units < MAX_UNITS);
            for (size_t s = 0; s < n; s++) {
                size_t enc = e->kg.users[users[s]].enclave;
                if (p->e[p->n_units][enc] != NULL)
                    continue;
                CHECK(e->next[enc] < e->n_stock[enc]);
                p->e[p->n_units][enc] = e->stock[enc][e->next[enc]++];
            }
        }
    }
}

static const struct proto_blob *entry_nonce(const struct proto_pool_entry *pe,
                                            const struct uuid *user)
{
    size_t i = 0;
    while (i + 1 < pe->n_nonces && !uuid_equal(&pe->nonces[i].user_id, user))
        i++;
    CHECK(uuid_equal(&pe->nonces[i].user_id, user));
    return &pe->nonces[i].ciphertext;
}

/* One signer's pool nonce for one unit, as JSON. */
static json_t *nonce_ref(const struct drv_user *u, const struct drv_item *it, size_t unit,
                         const struct proto_pool_entry *pe)
{
    const struct proto_blob *ct = entry_nonce(pe, &u->id);
    char uid[UUID_STR_LEN + 1], iid[UUID_STR_LEN + 1], eid[2 * PROTO_POOL_ENTRY_ID_LEN + 1];
    char *hex = xmalloc(2 * ct->len + 1);
    hex_encode(hex, 2 * ct->len + 1, ct->p, ct->len);
    hex_encode(eid, sizeof(eid), pe->entry_id, sizeof(pe->entry_id));
    uuid_format(uid, &u->id);
    uuid_format(iid, &it->id);
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s}", "user_id", uid, "item_id", iid, "unit",
                          (json_int_t)unit, "entry_id", eid, "encrypted_nonce", hex);
    free(hex);
    return j;
}

/* signing_sign args: signing_init's plus every signer's pool nonce. */
static json_t *sign_args(const struct env *e, const struct drv_signing *sg, const struct plan *p)
{
    json_t *args = drv_signing_init_args(&e->kg, sg);
    json_t *refs = json_array();
    size_t unit = 0;
    for (size_t i = 0; i < sg->n_items; i++) {
        size_t users[64], n = item_signers(&e->kg, &sg->items[i], users);
        for (size_t k = 0; k < item_units(&sg->items[i]); k++, unit++) {
            for (size_t s = 0; s < n; s++) {
                const struct drv_user *u = &e->kg.users[users[s]];
                json_array_append_new(refs, nonce_ref(u, &sg->items[i], k, p->e[unit][u->enclave]));
            }
        }
    }
    json_object_set_new(args, "nonces", refs);
    return args;
}

/* signing_sign on one enclave. */
static int sign_on(struct env *e, size_t enc, const json_t *args, const struct uuid *cid,
                   struct env_reply *rep)
{
    struct km_error err;
    return drv_call(&e->f.d, enc, "signing_sign", cid, args, rep, &err);
}

static void collect_psigs(struct drv_signing *sg, const json_t *result)
{
    struct proto_signing_distribute_nonces_result res;
    struct km_error err;
    CHECK_OK(proto_signing_distribute_nonces_result_decode(&res, result, &err));
    for (size_t i = 0; i < res.n_partial_signatures; i++) {
        CHECK(sg->n_psigs < KM_ARRAY_LEN(sg->psigs));
        struct proto_user_blob *b = &sg->psigs[sg->n_psigs++];
        b->user_id = res.partial_signatures[i].user_id;
        proto_blob_set(&b->ciphertext, res.partial_signatures[i].ciphertext.p,
                       res.partial_signatures[i].ciphertext.len);
    }
    proto_signing_distribute_nonces_result_clear(&res);
}

/* The whole signing from pool nonces: signing_sign on every enclave, then
 * signing_finalize on the coordinator, and every signature checked. */
static void pool_sign_ok(struct env *e, struct drv_signing *sg, const struct plan *p)
{
    struct km_error err;
    json_t *args = sign_args(e, sg, p);
    for (size_t enc = 0; enc < N_ENCLAVES; enc++) {
        struct env_reply rep;
        if (sign_on(e, enc, args, NULL, &rep) != KM_OK)
            fail_msg("signing_sign on enclave %zu: %s: %s", enc, rep.error.code, rep.error.message);
        collect_psigs(sg, rep.result);
        env_reply_clear(&rep);
    }
    json_decref(args);
    if (drv_sign_finalize(&e->f.d, &e->kg, sg, &err) != KM_OK)
        fail_msg("signing_finalize: %s", err.msg);
    if (drv_sign_check(&e->kg, sg, &err) != KM_OK)
        fail_msg("check: %s", err.msg);
}

/* ---- Full signings ------------------------------------------------------------- */

static void test_batch_plain(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    struct plan p;
    setup(&e, 3, NULL);
    fill_all(&e, 8);
    for (size_t enc = 0; enc < N_ENCLAVES; enc++)
        CHECK_EQ(pool_count(&e, enc), 8);
    drv_signing_setup(&sg, 5);
    plan_next(&e, &sg, &p);
    pool_sign_ok(&e, &sg, &p);
    /* One entry per unit on each enclave (one local user each). */
    for (size_t enc = 0; enc < N_ENCLAVES; enc++)
        CHECK_EQ(pool_count(&e, enc), 3);
    drv_signing_release(&sg);
    /* The signing session is gone from every enclave after finalize. */
    uint32_t kgn, sgn;
    enclave_session_counts(e.f.ip.en[0], &kgn, &sgn);
    CHECK_EQ(sgn, 0);
    teardown(&e);
}

/* Tweaks, subsets, adaptors and an approval in one batch; five users on
 * three enclaves, so an entry holds the nonces of two local users, and a
 * subset uses only some of them (the others are wiped with the entry). */
static void test_tweaks_subsets_adaptors(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    struct plan p;
    setup(&e, 5, en_keygen_two_subsets);
    fill_all(&e, 16);
    drv_signing_setup(&sg, 6);
    sg.items[1].subset = 0;
    sg.items[2].subset = 1;
    drv_item_set_tweak(&sg.items[2], PROTO_TWEAK_NONE, 0);
    drv_item_set_tweak(&sg.items[3], PROTO_TWEAK_XONLY, 0x09);
    drv_item_set_tweak(&sg.items[4], PROTO_TWEAK_TAPROOT_MERKLE_ROOT, 0x42);
    drv_item_add_adaptor(&sg.items[5], PROTO_ADAPTOR_AND, 2);
    drv_item_add_adaptor(&sg.items[5], PROTO_ADAPTOR_OR, 2);
    plan_next(&e, &sg, &p);
    CHECK_EQ(p.n_units, 8);
    pool_sign_ok(&e, &sg, &p);
    CHECK_EQ(sg.items[5].ar.n_results, 3);
    drv_signing_release(&sg);
    teardown(&e);
}

/* ---- Single use ---------------------------------------------------------------------- */

/* The nonce-reuse test of issue 15 at enclave level. */
static void test_entry_signs_once(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing s1, s2;
    struct plan p;
    struct env_reply first, again;
    setup(&e, 3, NULL);
    fill_all(&e, 4);
    drv_signing_setup(&s1, 1);
    plan_next(&e, &s1, &p); /* entry E of each enclave */
    json_t *a1 = sign_args(&e, &s1, &p);
    struct uuid cid[N_ENCLAVES];
    for (size_t enc = 0; enc < N_ENCLAVES; enc++) {
        CHECK_OK(uuid_v7_new(&cid[enc]));
        CHECK_OK(sign_on(&e, enc, a1, &cid[enc], &first));
        collect_psigs(&s1, first.result);
        /* Exactly one entry consumed. */
        CHECK_EQ(pool_count(&e, enc), 3);
        /* The same command id: the byte-identical cached reply, nothing
         * signed again, nothing consumed. */
        CHECK_OK(sign_on(&e, enc, a1, &cid[enc], &again));
        char *x = json_dumps(first.result, JSON_SORT_KEYS | JSON_COMPACT);
        char *y = json_dumps(again.result, JSON_SORT_KEYS | JSON_COMPACT);
        CHECK_STR_EQ(x, y);
        free(x);
        free(y);
        env_reply_clear(&again);
        env_reply_clear(&first);
        CHECK_EQ(pool_count(&e, enc), 3);
    }

    /* The same session with another command id: no second signature. The
     * coordinator still holds S1 (refused before any take); the others
     * find E spent. */
    CHECK_ERR(sign_on(&e, 0, a1, NULL, &again), KM_ERR_REMOTE);
    en_expect_error(&again, "invalid_state", "already exists");
    for (size_t enc = 1; enc < N_ENCLAVES; enc++) {
        CHECK_ERR(sign_on(&e, enc, a1, NULL, &again), KM_ERR_REMOTE);
        en_expect_error(&again, "nonce_unavailable", "pool entry");
    }

    /* Another session and message naming the same entries. */
    drv_signing_setup(&s2, 1);
    json_t *a2 = sign_args(&e, &s2, &p);
    for (size_t enc = 0; enc < N_ENCLAVES; enc++) {
        char hex[33];
        hex_encode(hex, sizeof(hex), p.e[0][enc]->entry_id, 16);
        CHECK_ERR(sign_on(&e, enc, a2, NULL, &again), KM_ERR_REMOTE);
        en_expect_error(&again, "nonce_unavailable", hex);
        CHECK_EQ(pool_count(&e, enc), 3);
    }
    json_decref(a2);
    drv_signing_release(&s2);

    /* S1 still completes with the partial signatures it got. */
    struct km_error err;
    CHECK_OK(drv_sign_finalize(&e.f.d, &e.kg, &s1, &err));
    CHECK_OK(drv_sign_check(&e.kg, &s1, &err));
    json_decref(a1);
    drv_signing_release(&s1);
    teardown(&e);
}

/* One spent entry among good ones: refused, and none of the good ones is
 * consumed (they sign the next session). */
static void test_take_all_or_none(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing s1, s2, s3;
    struct plan p1, p2;
    struct env_reply rep;
    setup(&e, 3, NULL);
    fill_all(&e, 4);
    drv_signing_setup(&s1, 1);
    plan_next(&e, &s1, &p1);
    pool_sign_ok(&e, &s1, &p1);

    drv_signing_setup(&s2, 3);
    plan_next(&e, &s2, &p2);
    struct plan bad = p2;
    bad.e[1][1] = p1.e[0][1]; /* enclave 1, unit 1: the spent entry */
    json_t *args = sign_args(&e, &s2, &bad);
    CHECK_ERR(sign_on(&e, 1, args, NULL, &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "nonce_unavailable", "nothing was signed or consumed");
    CHECK_EQ(pool_count(&e, 1), 3);
    json_decref(args);

    /* The same entry twice for one signer: refused before any take. */
    bad = p2;
    bad.e[1][1] = p2.e[0][1];
    args = sign_args(&e, &s2, &bad);
    CHECK_ERR(sign_on(&e, 1, args, NULL, &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_nonce", "named twice");
    CHECK_EQ(pool_count(&e, 1), 3);
    json_decref(args);

    /* An entry's nonce for another unit's slot is swapped in: the sealed
     * nonce is bound to its entry, so refused before any take. */
    bad = p2;
    args = sign_args(&e, &s2, &bad);
    json_t *refs = json_object_get(args, "nonces");
    json_t *r0 = json_array_get(refs, 1), *r1 = json_array_get(refs, 4);
    json_t *tmp = json_deep_copy(json_object_get(r0, "encrypted_nonce"));
    json_object_set(r0, "encrypted_nonce", json_object_get(r1, "encrypted_nonce"));
    json_object_set_new(r1, "encrypted_nonce", tmp);
    CHECK_ERR(sign_on(&e, 1, args, NULL, &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_nonce", "bound to another");
    CHECK_EQ(pool_count(&e, 1), 3);
    json_decref(args);

    /* The good entries are all still there. */
    pool_sign_ok(&e, &s2, &p2);
    for (size_t enc = 0; enc < N_ENCLAVES; enc++)
        CHECK_EQ(pool_count(&e, enc), 0);
    /* Empty pools: every signing_sign is refused. */
    drv_signing_setup(&s3, 1);
    args = sign_args(&e, &s3, &p2);
    CHECK_ERR(sign_on(&e, 2, args, NULL, &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "nonce_unavailable", NULL);
    json_decref(args);
    drv_signing_release(&s3);
    drv_signing_release(&s2);
    drv_signing_release(&s1);
    teardown(&e);
}

/* ---- Lifetimes and bounds ----------------------------------------------------------- */

static void test_gone_with_keygen(void **state)
{
    (void)state;
    struct env e;
    struct km_error err;
    struct env_reply rep;
    setup(&e, 3, NULL);
    fill_all(&e, 5);
    CHECK_OK(drv_clear(&e.f.d, &e.kg.id, true, &err));
    for (size_t enc = 0; enc < N_ENCLAVES; enc++)
        CHECK_EQ(pool_count(&e, enc), 0);
    json_t *args = fill_args(&e.kg.id, 1);
    CHECK_ERR(drv_call(&e.f.d, 0, "nonce_pool_fill", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "not_found", NULL);
    json_decref(args);
    teardown(&e);

    /* An evicted keygen takes its pool along; the restored keygen starts
     * empty. One session fits: a second keygen evicts the first. */
    struct enclave_config cfg = {.max_sessions = 1};
    setup_cfg(&e, 3, NULL, &cfg);
    fill_all(&e, 5);
    struct drv_keygen other;
    drv_keygen_setup(&other, 3, N_ENCLAVES);
    CHECK_OK(drv_keygen_run(&e.f.d, &other, &err));
    for (size_t enc = 0; enc < N_ENCLAVES; enc++)
        CHECK_EQ(pool_count(&e, enc), 0);
    drv_keygen_release(&other);
    teardown(&e);
}

static void test_bounds(void **state)
{
    (void)state;
    struct env e;
    struct env_reply rep;
    struct km_error err;
    struct drv_signing sg;
    struct plan p;
    setup(&e, 3, NULL);
    /* Per keygen: the oldest entries are evicted (and wiped). */
    for (int i = 0; i < 5; i++)
        fill(&e, 1, 64);
    CHECK_EQ(pool_count(&e, 1), 256);
    fill(&e, 0, 1);
    fill(&e, 2, 1);
    drv_signing_setup(&sg, 1);
    plan_next(&e, &sg, &p); /* enclave 1's first entry: evicted */
    json_t *args = sign_args(&e, &sg, &p);
    CHECK_ERR(sign_on(&e, 1, args, NULL, &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "nonce_unavailable", NULL);
    json_decref(args);
    drv_signing_release(&sg);
    /* count is bounded by the codec. */
    json_t *big = fill_args(&e.kg.id, 65);
    CHECK_ERR(drv_call(&e.f.d, 0, "nonce_pool_fill", NULL, big, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "invalid_argument", NULL);
    json_decref(big);
    teardown(&e);

    /* Per enclave: refused, nothing added. */
    struct enclave_config cfg = {.pool_max_entries = 100};
    setup_cfg(&e, 3, NULL, &cfg);
    fill(&e, 0, 64);
    args = fill_args(&e.kg.id, 64);
    CHECK_ERR(drv_call(&e.f.d, 0, "nonce_pool_fill", NULL, args, &rep, &err), KM_ERR_REMOTE);
    en_expect_error(&rep, "limit_exceeded", "limit of 100");
    json_decref(args);
    CHECK_EQ(pool_count(&e, 0), 64);
    teardown(&e);
}

/* A clock the test moves. */
static _Atomic uint64_t fake_ms = 1000000;

static uint64_t fake_now(void)
{
    return fake_ms;
}

/* Entries expire ttl_secs after their fill: a signing naming one is
 * refused, and the next fill wipes them. */
static void test_expiry(void **state)
{
    (void)state;
    struct env e;
    struct env_reply rep;
    struct drv_signing sg;
    struct plan p;
    struct enclave_config cfg = {.now_ms = fake_now};
    setup_cfg(&e, 3, NULL, &cfg);
    fill_all(&e, 3);
    CHECK_EQ(e.fills[0].ttl_secs, 3600);
    fake_ms += 3600u * 1000u;
    drv_signing_setup(&sg, 1);
    plan_next(&e, &sg, &p);
    json_t *args = sign_args(&e, &sg, &p);
    CHECK_ERR(sign_on(&e, 1, args, NULL, &rep), KM_ERR_REMOTE);
    en_expect_error(&rep, "nonce_unavailable", NULL);
    json_decref(args);
    drv_signing_release(&sg);
    CHECK_EQ(pool_count(&e, 1), 3); /* expired, wiped at the next fill */
    fill(&e, 1, 1);
    CHECK_EQ(pool_count(&e, 1), 1);
    teardown(&e);
}

/* ---- Racing threads ------------------------------------------------------------------- */

#define RACERS 6

struct racer {
    struct enclave *en;
    const json_t *args;
    int rc;
    char code[sizeof(((struct env_error *)0)->code)];
};

static void *race(void *p)
{
    struct racer *r = p;
    struct tp_call call;
    r->rc = en_call(r->en, "signing_sign", json_deep_copy(r->args), &call);
    snprintf(r->code, sizeof(r->code), "%s", call.error.code);
    json_decref(call.result);
    return NULL;
}

/* Threads racing signing_sign on the same entries, each with its own
 * command id: exactly one signs on each enclave. */
static void test_race_same_entry(void **state)
{
    (void)state;
    struct env e;
    struct drv_signing sg;
    struct plan p;
    setup(&e, 3, NULL);
    fill_all(&e, 2);
    drv_signing_setup(&sg, 1);
    plan_next(&e, &sg, &p);
    json_t *args = sign_args(&e, &sg, &p);
    for (size_t enc = 0; enc < N_ENCLAVES; enc++) {
        struct racer r[RACERS];
        pthread_t t[RACERS];
        for (size_t i = 0; i < RACERS; i++) {
            r[i] = (struct racer){.en = e.f.ip.en[enc], .args = args};
            CHECK_EQ(pthread_create(&t[i], NULL, race, &r[i]), 0);
        }
        size_t ok = 0;
        for (size_t i = 0; i < RACERS; i++) {
            CHECK_EQ(pthread_join(t[i], NULL), 0);
            if (r[i].rc == KM_OK)
                ok++;
            else if (strcmp(r[i].code, "nonce_unavailable") != 0)
                /* The coordinator may see the winner's session first. */
                CHECK(enc == 0 && strcmp(r[i].code, "invalid_state") == 0);
        }
        CHECK_EQ(ok, 1);
        CHECK_EQ(pool_count(&e, enc), 1);
    }
    json_decref(args);
    drv_signing_release(&sg);
    teardown(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_batch_plain),      TEST(test_tweaks_subsets_adaptors),
        TEST(test_entry_signs_once), TEST(test_take_all_or_none),
        TEST(test_gone_with_keygen), TEST(test_bounds),
        TEST(test_expiry),           TEST(test_race_same_entry),
    };
    return RUN_TESTS("enclave.pool", tests);
}
