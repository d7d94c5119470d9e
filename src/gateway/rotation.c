/*
 * rotation.c - the gateway's side of an enclave key rotation
 * (gateway/rotation.h).
 */
#include "gateway/rotation.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "gateway/audit_events.h"
#include "gateway/gateway.h"
#include "protocol/commands.h"
#include "common/banned.h"

#define LOG_COMP           "rotation"
#define ROTATION_TIMEOUT   60000
#define KEYGENS_PER_SCAN   64
#define RESUME_INTERVAL_MS 2000

/* ---- enclave calls ---------------------------------------------------------- */

static int call(struct gateway *gw, uint32_t eid, const char *cmd, json_t *args, json_t **result,
                struct km_error *err)
{
    struct pool *pool = enclave_mgr_pool(gw->enclaves, eid);
    struct env_reply reply;
    *result = NULL;
    if (pool == NULL) {
        json_decref(args);
        return km_error_set(err, KM_ERR_NOT_FOUND, 0, "no enclave %u is configured", eid);
    }
    int r = pool_request(pool, &reply, cmd, NULL, args, ROTATION_TIMEOUT, err);
    json_decref(args);
    if (r != KM_OK)
        return r;
    *result = json_incref(reply.result);
    env_reply_clear(&reply);
    return KM_OK;
}

/* rotate_key_begin / rotate_key_commit; *pub is the key the enclave names. */
static int rotation_step(struct gateway *gw, uint32_t eid, const char *cmd, int64_t epoch,
                         struct proto_rotation_result *res, struct km_error *err)
{
    struct proto_rotation_args a = {.key_epoch = (uint64_t)epoch};
    json_t *out = NULL;
    memset(res, 0, sizeof(*res));
    int r = call(gw, eid, cmd, proto_rotation_args_encode(&a), &out, err);
    if (r == KM_OK && proto_rotation_result_decode(res, out, err) != KM_OK)
        r = KM_ERR_INVALID;
    json_decref(out);
    if (r != KM_OK)
        km_error_prefix(err, "%s on enclave %u", cmd, eid);
    return r;
}

/* ---- one keygen --------------------------------------------------------------- */

/* Where a ciphertext for the enclave lives in the stored keygen. */
struct slot {
    json_t *holder;     /* an object whose "ciphertext" it is, or NULL */
    size_t participant; /* when holder is NULL and !session_secret */
    bool session_secret;
    const char *hex;
};

struct slots {
    struct slot *v;
    size_t n, cap;
};

static void slots_add(struct slots *s, struct slot sl)
{
    if (sl.hex == NULL || sl.hex[0] == '\0')
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = sl;
}

/* Every {"enclave_id": eid, "ciphertext": ...} in the array arr. */
static void collect_blobs(struct slots *s, json_t *arr, uint32_t eid)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if ((uint32_t)json_integer_value(json_object_get(e, "enclave_id")) == eid &&
            json_is_integer(json_object_get(e, "enclave_id")))
            slots_add(s, (struct slot){.holder = e,
                                       .hex = json_string_value(json_object_get(e, "ciphertext"))});
    }
}

/* state: k's step outputs, parsed; the slots found there point into it. */
static void collect(struct slots *s, struct store_keygen *k, json_t *state, uint32_t eid)
{
    for (size_t i = 0; i < k->nparticipants; i++)
        if (k->participants[i].enclave_id == eid && k->participants[i].registered)
            slots_add(s, (struct slot){.participant = i,
                                       .hex = k->participants[i].encrypted_private_key});
    if (k->coordinator_enclave_id == eid)
        slots_add(s, (struct slot){.session_secret = true, .hex = k->encrypted_session_secret});
    collect_blobs(s, json_object_get(json_object_get(state, "init"), "encrypted_session_secrets"),
                  eid);
    const char *key;
    json_t *added;
    json_object_foreach(json_object_get(state, "added"), key, added)
    {
        size_t i;
        json_t *p;
        json_array_foreach(json_object_get(added, "participants"), i, p)
            collect_blobs(s, json_object_get(p, "encrypted_public_keys"), eid);
    }
}

/* Sends s's ciphertexts through rekey; *out[i] the new hex (malloc'ed). */
static int rekey_all(struct gateway *gw, uint32_t eid, int64_t epoch, const struct slots *s,
                     char **out, struct km_error *err)
{
    for (size_t base = 0; base < s->n; base += PROTO_MAX_REKEY) {
        size_t n = s->n - base < PROTO_MAX_REKEY ? s->n - base : PROTO_MAX_REKEY;
        json_t *list = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(list, json_pack("{s:s}", "ciphertext", s->v[base + i].hex));
        json_t *args = json_pack("{s:I, s:o}", "key_epoch", (json_int_t)epoch, "ciphertexts", list);
        json_t *res = NULL;
        int r = call(gw, eid, "rekey", args, &res, err);
        json_t *got = json_object_get(res, "ciphertexts");
        if (r == KM_OK && json_array_size(got) != n)
            r = km_error_set(err, KM_ERR_INVALID, 0, "rekey returned %zu ciphertexts for %zu",
                             json_array_size(got), n);
        for (size_t i = 0; r == KM_OK && i < n; i++) {
            const char *h =
                json_string_value(json_object_get(json_array_get(got, i), "ciphertext"));
            if (h == NULL)
                r = km_error_set(err, KM_ERR_INVALID, 0, "rekey result %zu has no ciphertext", i);
            else
                out[base + i] = xstrdup(h);
        }
        json_decref(res);
        if (r != KM_OK)
            return r;
    }
    return KM_OK;
}

static int rekey_keygen(struct gateway *gw, uint32_t eid, const char *id, const char *old_pub,
                        const char *new_pub, int64_t epoch, struct km_error *err)
{
    struct store_keygen k;
    struct slots s = {0};
    int r = store_keygen_get_with_state(gw->store, id, &k);
    if (r != KM_OK)
        return km_error_set(err, r, 0, "cannot load keygen %s", id);
    json_t *state = coord_doc_load(k.state);
    if (state == NULL)
        state = json_object();
    collect(&s, &k, state, eid);
    char **fresh = xcalloc(s.n ? s.n : 1, sizeof(*fresh));
    r = rekey_all(gw, eid, epoch, &s, fresh, err);
    struct store_keygen_rekey rk = {.keygen_id = id, .enclave_id = eid, .old_public_key = old_pub};
    rk.slots = xcalloc(s.n ? s.n : 1, sizeof(*rk.slots));
    const char *secret = k.encrypted_session_secret;
    for (size_t i = 0; r == KM_OK && i < s.n; i++) {
        struct slot *sl = &s.v[i];
        if (sl->holder != NULL)
            json_object_set_new(sl->holder, "ciphertext", json_string(fresh[i]));
        else if (sl->session_secret)
            secret = fresh[i];
        else {
            rk.slots[rk.nslots].user_id = k.participants[sl->participant].user_id;
            rk.slots[rk.nslots++].encrypted_private_key = fresh[i];
        }
    }
    /* The keygen now relies on the new key: replaced in place, so the
     * column keeps its order. */
    if (r == KM_OK && store_keygen_set_enclave_key(&k, eid, new_pub) != KM_OK)
        r = km_error_set(err, KM_ERR_INVALID, 0, "cannot record key %.16s... of enclave %u",
                         new_pub, eid);
    char *state_text = r == KM_OK ? coord_doc_dump(state) : NULL;
    if (r == KM_OK && state_text == NULL)
        r = km_error_set(err, KM_ERR_NOMEM, 0, "cannot write keygen %s's state", id);
    rk.encrypted_session_secret = secret;
    rk.state = state_text;
    rk.enclave_keys = k.enclave_keys;
    rk.nenclave_keys = k.nenclave_keys;
    if (r == KM_OK) {
        r = store_keygen_rekey(gw->store, &rk);
        if (r == KM_ERR_STATE) /* done by an earlier run: fine */
            r = KM_OK;
        else if (r != KM_OK)
            km_error_set(err, r, 0, "cannot store the re-encrypted keygen %s", id);
    }
    free(state_text);
    json_decref(state);
    for (size_t i = 0; i < s.n; i++)
        free(fresh[i]);
    free(fresh);
    free(rk.slots);
    free(s.v);
    store_keygen_clear(&k);
    return r;
}

/* ---- the rotation --------------------------------------------------------------- */

/* Whether the enclave already runs on the key named pub_hex: a rotation
 * whose commit the enclave made but the gateway did not record (it stopped
 * in between). */
static bool enclave_holds(struct gateway *gw, uint32_t eid, const char *pub_hex,
                          struct km_error *err)
{
    json_t *out = NULL;
    struct proto_public_info pi;
    memset(&pi, 0, sizeof(pi));
    bool holds = false;
    if (call(gw, eid, "get_public_info", json_object(), &out, err) == KM_OK &&
        proto_public_info_decode(&pi, out, err) == KM_OK && pi.has_public_key) {
        char pub[2 * PROTO_PUBKEY_LEN + 1];
        hex_encode(pub, sizeof(pub), pi.public_key, PROTO_PUBKEY_LEN);
        holds = strcmp(pub, pub_hex) == 0;
    }
    proto_public_info_clear(&pi);
    json_decref(out);
    return holds;
}

/* The next key: the one stored, or a new one from the enclave, stored
 * before anything is encrypted to it. */
static int next_key(struct gateway *gw, uint32_t eid, const struct store_sealed_key *cur,
                    struct store_sealed_key *next, bool *resumed, struct km_error *err)
{
    store_sealed_key_clear(next);
    int r = store_sealed_key_next(gw->store, eid, next);
    *resumed = r == KM_OK;
    if (r != KM_OK && r != KM_ERR_NOT_FOUND)
        return km_error_set(err, r, 0, "cannot read the next sealed key of enclave %u", eid);
    int64_t epoch = *resumed ? next->key_epoch : cur->key_epoch + 1;
    struct proto_rotation_result res;
    r = rotation_step(gw, eid, "rotate_key_begin", epoch, &res, err);
    if (r != KM_OK)
        return r;
    char pub[67];
    hex_encode(pub, sizeof(pub), res.public_key, PROTO_PUBKEY_LEN);
    if (*resumed && strcmp(pub, next->public_key) != 0)
        r = km_error_set(err, KM_ERR_STATE, 0,
                         "enclave %u holds another next key than the stored one: restart it so "
                         "it loads the stored one, then rotate again",
                         eid);
    if (r == KM_OK && !*resumed) {
        store_sealed_key_clear(next);
        next->enclave_id = eid;
        next->key_epoch = epoch;
        snprintf(next->sealer, sizeof(next->sealer), "%s", cur->sealer);
        snprintf(next->public_key, sizeof(next->public_key), "%s", pub);
        next->sealed_key_hex = xmalloc(2 * res.sealed_key.len + 1);
        hex_encode(next->sealed_key_hex, 2 * res.sealed_key.len + 1, res.sealed_key.p,
                   res.sealed_key.len);
        r = store_sealed_key_add_next(gw->store, next);
        if (r != KM_OK)
            km_error_set(err, r, 0, "cannot store the next sealed key of enclave %u", eid);
    }
    proto_rotation_result_clear(&res);
    return r;
}

/* Re-encrypts every completed keygen still under the old key. */
static int rekey_keygens(struct gateway *gw, uint32_t eid, const struct store_sealed_key *cur,
                         const struct store_sealed_key *next, size_t *count, struct km_error *err)
{
    for (;;) {
        char(*ids)[37] = NULL;
        size_t n = 0;
        int r =
            store_keygens_using_key(gw->store, eid, cur->public_key, KEYGENS_PER_SCAN, &ids, &n);
        if (r != KM_OK) {
            free(ids);
            return km_error_set(err, r, 0, "cannot list the keygens of enclave %u", eid);
        }
        for (size_t i = 0; r == KM_OK && i < n; i++) {
            r = rekey_keygen(gw, eid, ids[i], cur->public_key, next->public_key, next->key_epoch,
                             err);
            if (r == KM_OK)
                (*count)++;
        }
        free(ids);
        if (r != KM_OK || n == 0)
            return r;
    }
}

static int refuse_if_busy(struct gateway *gw, uint32_t eid, struct km_error *err)
{
    int64_t busy = 0;
    int r = store_keygens_busy_on(gw->store, eid, &busy);
    if (r != KM_OK)
        return km_error_set(err, r, 0, "cannot count the keygens of enclave %u", eid);
    if (busy > 0)
        return km_error_set(err, KM_ERR_STATE, 0,
                            "%lld keygen(s) in progress use enclave %u and their clients encrypt "
                            "to its current key: rotate once they completed or expired",
                            (long long)busy, eid);
    return KM_OK;
}

/* begin, re-encrypt every completed keygen, commit. A keygen that was
 * reserved just before the enclave was marked rotating is caught by the
 * second check; one that completed during the first pass by the second. */
static int rotate_to_next(struct gateway *gw, uint32_t eid, const struct store_sealed_key *cur,
                          struct store_sealed_key *next, struct gw_rotation_report *rep,
                          struct km_error *err)
{
    int r = refuse_if_busy(gw, eid, err);
    if (r == KM_OK)
        r = next_key(gw, eid, cur, next, &rep->resumed, err);
    if (r == KM_OK)
        log_info(LOG_COMP, "enclave %u: rotating key epoch %lld -> %lld%s", eid,
                 (long long)cur->key_epoch, (long long)next->key_epoch,
                 rep->resumed ? " (resuming)" : "");
    if (r == KM_OK)
        r = rekey_keygens(gw, eid, cur, next, &rep->keygens, err);
    if (r == KM_OK)
        r = refuse_if_busy(gw, eid, err);
    if (r == KM_OK)
        r = rekey_keygens(gw, eid, cur, next, &rep->keygens, err);
    struct proto_rotation_result res = {0};
    if (r == KM_OK)
        r = rotation_step(gw, eid, "rotate_key_commit", next->key_epoch, &res, err);
    proto_rotation_result_clear(&res);
    return r;
}

/* Makes next the current key in the database. The health check may have
 * done so already, on seeing the enclave run on it (gateway/enclaves.c). */
static int record_commit(struct gateway *gw, uint32_t eid, const struct store_sealed_key *next,
                         struct km_error *err)
{
    int r = store_sealed_key_promote(gw->store, eid, next->key_epoch, next->public_key);
    if (r == KM_ERR_STATE) {
        struct store_sealed_key cur = {0};
        if (store_sealed_key_current(gw->store, eid, &cur) == KM_OK &&
            strcmp(cur.public_key, next->public_key) == 0)
            r = KM_OK;
        store_sealed_key_clear(&cur);
    }
    if (r != KM_OK)
        km_error_set(err, r, 0, "cannot record the end of enclave %u's rotation", eid);
    return r;
}

/* resume_only: finish a rotation whose next key is stored, start none (the
 * resumer: the health check may have recorded the commit meanwhile). */
static int rotate(struct gateway *gw, uint32_t eid, bool resume_only,
                  struct gw_rotation_report *rep, struct km_error *err)
{
    struct store_sealed_key cur, next = {0};
    memset(rep, 0, sizeof(*rep));
    if (enclave_mgr_pool(gw->enclaves, eid) == NULL)
        return km_error_set(err, KM_ERR_NOT_FOUND, 0, "no enclave %u is configured", eid);
    int r = store_sealed_key_current(gw->store, eid, &cur);
    if (r == KM_ERR_NOT_FOUND)
        return km_error_set(err, KM_ERR_STATE, 0,
                            "enclave %u has no sealed key (it runs SEALER=none): its key lives "
                            "in memory only and cannot be rotated",
                            eid);
    if (r != KM_OK)
        return km_error_set(err, r, 0, "cannot read the sealed key of enclave %u", eid);
    /* A commit the enclave made but the gateway did not record (it stopped
     * in between): only the record is missing. */
    bool have_next = store_sealed_key_next(gw->store, eid, &next) == KM_OK;
    if (resume_only && !have_next) {
        store_sealed_key_clear(&cur);
        return KM_OK;
    }
    bool committed = have_next && enclave_holds(gw, eid, next.public_key, err);
    rep->resumed = committed;
    /* No new keygen picks this enclave while its key changes: one that
     * completed after the last re-encryption pass would stay under the old
     * key, which the commit retires. */
    enclave_mgr_set_rotating(gw->enclaves, eid, true);
    if (!committed)
        r = rotate_to_next(gw, eid, &cur, &next, rep, err);
    if (r == KM_OK)
        r = record_commit(gw, eid, &next, err);
    if (r == KM_OK) {
        rep->old_epoch = cur.key_epoch;
        rep->new_epoch = next.key_epoch;
        snprintf(rep->public_key, sizeof(rep->public_key), "%s", next.public_key);
        log_info(LOG_COMP,
                 "enclave %u: key epoch %lld is current (%zu keygen(s) re-encrypted); the old "
                 "sealed key is retired",
                 eid, (long long)next.key_epoch, rep->keygens);
        enclave_mgr_key_rotated(gw->enclaves, eid, next.public_key, next.key_epoch);
        gw_audit(gw, "enclave.key_rotated", "ok", NULL, NULL,
                 json_pack("{s:I, s:I, s:I}", "enclave_id", (json_int_t)eid, "key_epoch",
                           (json_int_t)next.key_epoch, "keygens", (json_int_t)rep->keygens),
                 NULL);
    } else {
        log_warn(LOG_COMP, "enclave %u: rotation stopped: %s", eid, err->msg);
        gw_audit(gw, "enclave.key_rotated", "failed", NULL, NULL,
                 json_pack("{s:I}", "enclave_id", (json_int_t)eid), NULL);
    }
    enclave_mgr_set_rotating(gw->enclaves, eid, false);
    store_sealed_key_clear(&cur);
    store_sealed_key_clear(&next);
    return r;
}

int gw_rotate_key(struct gateway *gw, uint32_t eid, struct gw_rotation_report *rep,
                  struct km_error *err)
{
    return rotate(gw, eid, false, rep, err);
}

/* ---- resuming at start --------------------------------------------------------------- */

struct resumer {
    struct gateway *gw;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

static struct resumer *g_resumer; /* one gateway per process */

static bool pending_anywhere(struct gateway *gw)
{
    size_t n = enclave_mgr_count(gw->enclaves);
    for (size_t i = 0; i < n; i++) {
        struct store_sealed_key next;
        int r = store_sealed_key_next(gw->store, enclave_mgr_id_at(gw->enclaves, i), &next);
        store_sealed_key_clear(&next);
        if (r == KM_OK)
            return true;
    }
    return false;
}

static void *resume_main(void *arg)
{
    struct resumer *rs = arg;
    struct gateway *gw = rs->gw;
    for (;;) {
        bool left = false;
        size_t n = enclave_mgr_count(gw->enclaves);
        for (size_t i = 0; i < n; i++) {
            uint32_t eid = enclave_mgr_id_at(gw->enclaves, i);
            struct store_sealed_key next;
            int r = store_sealed_key_next(gw->store, eid, &next);
            store_sealed_key_clear(&next);
            if (r != KM_OK)
                continue;
            struct gw_rotation_report rep;
            struct km_error err;
            if (rotate(gw, eid, true, &rep, &err) != KM_OK)
                left = true;
        }
        pthread_mutex_lock(&rs->lock);
        if (!left || rs->stop) {
            pthread_mutex_unlock(&rs->lock);
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += RESUME_INTERVAL_MS / 1000;
        pthread_cond_timedwait(&rs->wake, &rs->lock, &ts);
        bool stop = rs->stop;
        pthread_mutex_unlock(&rs->lock);
        if (stop)
            break;
    }
    return NULL;
}

void gw_rotation_resume_start(struct gateway *gw)
{
    if (g_resumer != NULL || !pending_anywhere(gw))
        return;
    struct resumer *rs = xcalloc(1, sizeof(*rs));
    rs->gw = gw;
    pthread_mutex_init(&rs->lock, NULL);
    pthread_cond_init(&rs->wake, NULL);
    log_info(LOG_COMP, "a key rotation was interrupted: resuming it");
    if (pthread_create(&rs->thread, NULL, resume_main, rs) != 0)
        KM_BUG("cannot start the rotation thread");
    g_resumer = rs;
}

void gw_rotation_resume_stop(struct gateway *gw)
{
    (void)gw;
    struct resumer *rs = g_resumer;
    if (rs == NULL)
        return;
    pthread_mutex_lock(&rs->lock);
    rs->stop = true;
    pthread_cond_broadcast(&rs->wake);
    pthread_mutex_unlock(&rs->lock);
    pthread_join(rs->thread, NULL);
    pthread_mutex_destroy(&rs->lock);
    pthread_cond_destroy(&rs->wake);
    free(rs);
    g_resumer = NULL;
}
