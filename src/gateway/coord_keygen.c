/*
 * coord_keygen.c - the keygen steps (docs/PROTOCOL.md, docs/API.md):
 *
 *   0 keygen_init to the coordinator enclave (it re-encrypts the session
 *     secret to the others)
 *   1 keygen_init to every other enclave of the session
 *   2 keygen_add_participants to every enclave, with its participants' keys
 *   3 keygen_distribute_public_keys: each enclave gets the other enclaves'
 *     participants' public keys; every enclave must then report the same
 *     aggregate_check
 *   4 keygen_get_aggregate from the coordinator -> completed
 *
 * Step outputs (enclave results: ciphertext) accumulate in the session's
 * state JSON: {"init":{...},"added":{"<eid>":{...}},"progress":{...}}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "gateway/coord_internal.h"
#include "common/banned.h"

#define LOG_COMP "coordinator"

enum kg_step {
    KG_INIT_COORDINATOR = 0,
    KG_INIT_OTHERS,
    KG_ADD_PARTICIPANTS,
    KG_DISTRIBUTE,
    KG_AGGREGATE,
    KG_DONE,
};

static const char *const kg_step_names[] = {
    "keygen_init_coordinator",       "keygen_init_others",   "keygen_add_participants",
    "keygen_distribute_public_keys", "keygen_get_aggregate",
};

/* Everything one step needs, loaded from the store. */
struct kg_ctx {
    struct coord *c;
    struct store_keygen k;
    /* k's JSON texts, each parsed at most once per load: the subsets when
     * first needed (kg_subsets); the state, for a restore (a step parses
     * its own copy, which it adds its outputs to). */
    json_t *subsets;
    bool subsets_loaded;
    json_t *state;
    uint32_t enclaves[PROTO_MAX_ENCLAVES]; /* distinct, ascending */
    size_t nenclaves;
    struct uuid session_uuid;
    char err[COORD_ERR_MAX];
};

/* The subsets stored at reserve (NULL: none); step 1 needs them once per
 * enclave. */
static const json_t *kg_subsets(struct kg_ctx *x)
{
    if (!x->subsets_loaded) {
        x->subsets = coord_doc_load(x->k.subsets);
        x->subsets_loaded = true;
    }
    return x->subsets;
}

static void kg_ctx_free(struct kg_ctx *x)
{
    json_decref(x->subsets);
    json_decref(x->state);
    store_keygen_clear(&x->k);
    free(x);
}

static const char *snapshot_key(const struct kg_ctx *x, uint32_t eid)
{
    return coord_snapshot_key(&x->k, eid);
}

/* The session's enclaves: those its participants were assigned to. */
static int collect_enclaves(struct kg_ctx *x)
{
    return coord_session_enclaves(&x->k, x->enclaves, &x->nenclaves);
}

static enum calls_verdict check_enclave_keys(struct kg_ctx *x)
{
    return coord_check_keys(x->c, &x->k, x->enclaves, x->nenclaves, x->err, sizeof(x->err));
}

/* keygen_init args shared by the coordinator and the others. */
static int build_init_args(struct kg_ctx *x, struct proto_keygen_init_args *a, bool coordinator,
                           const char *secret_hex)
{
    memset(a, 0, sizeof(*a));
    a->keygen_session_id = x->session_uuid;
    a->coordinator = coordinator;
    a->timeout_secs = x->k.timeout_secs;
    int r = coord_blob_from_hex(&a->encrypted_session_secret, secret_hex);
    if (r == KM_OK)
        r = coord_blob_from_hex(&a->encrypted_taproot_tweak, x->k.encrypted_taproot_tweak);
    a->enclaves = XALLOC_ARRAY(struct proto_enclave_key, x->nenclaves);
    a->n_enclaves = x->nenclaves;
    for (size_t i = 0; r == KM_OK && i < x->nenclaves; i++) {
        a->enclaves[i].enclave_id = x->enclaves[i];
        r = coord_bytes_from_hex(a->enclaves[i].public_key, PROTO_PUBKEY_LEN,
                                 snapshot_key(x, x->enclaves[i]));
    }
    a->participants = XALLOC_ARRAY(struct uuid, x->k.nparticipants);
    a->n_participants = x->k.nparticipants;
    for (size_t i = 0; r == KM_OK && i < x->k.nparticipants; i++)
        r = uuid_parse(&a->participants[i], x->k.participants[i].user_id, 36);
    const json_t *subsets = r == KM_OK ? kg_subsets(x) : NULL;
    if (subsets != NULL) {
        /* Stored as validated at reserve: [{"subset_id","participants":[...]}]. */
        json_t *wrap = json_pack("{s:O}", "subsets", subsets);
        struct proto_keygen_init_args tmp;
        json_t *full = proto_keygen_init_args_encode(a);
        json_object_update(full, wrap);
        struct km_error e;
        r = proto_keygen_init_args_decode(&tmp, full, &e);
        if (r == KM_OK) {
            a->n_subsets = tmp.n_subsets;
            a->subsets = tmp.subsets;
            tmp.n_subsets = 0;
            tmp.subsets = NULL;
            proto_keygen_init_args_clear(&tmp);
        }
        json_decref(full);
        json_decref(wrap);
    }
    return r;
}

static void call_init(struct fanout_call *call, struct kg_ctx *x, uint32_t eid,
                      const struct proto_keygen_init_args *a, enum kg_step step)
{
    memset(call, 0, sizeof(*call));
    call->enclave_id = eid;
    call->cmd = "keygen_init";
    call->args = proto_keygen_init_args_encode(a);
    fanout_command_id(&call->command_id, x->k.id, kg_step_names[step], eid);
}

/* ---- the steps: each returns a verdict and, on success, the new state --- */

static enum calls_verdict step_init_coordinator(struct kg_ctx *x, json_t *state)
{
    struct proto_keygen_init_args a;
    struct fanout_call call;
    uint32_t coord_eid = x->k.coordinator_enclave_id;
    if (build_init_args(x, &a, true, x->k.encrypted_session_secret) != KM_OK) {
        proto_keygen_init_args_clear(&a);
        snprintf(x->err, sizeof(x->err), "stored session data is unreadable");
        return CALLS_FAIL;
    }
    call_init(&call, x, coord_eid, &a, KG_INIT_COORDINATOR);
    proto_keygen_init_args_clear(&a);
    fanout_run(x->c->em, &call, 1, x->c->call_timeout_ms);
    enum calls_verdict v = coord_calls_verdict(x->c, &call, 1, x->err, sizeof(x->err));
    if (v == CALLS_OK) {
        struct proto_keygen_init_result res;
        struct km_error e;
        if (proto_keygen_init_result_decode(&res, call.reply.result, &e) != KM_OK) {
            snprintf(x->err, sizeof(x->err), "enclave %u: bad keygen_init result: %s", coord_eid,
                     e.msg);
            v = CALLS_FAIL;
        } else {
            for (size_t i = 0; i < x->nenclaves && v == CALLS_OK; i++) {
                bool found = x->enclaves[i] == coord_eid;
                for (size_t j = 0; j < res.n_encrypted_session_secrets && !found; j++)
                    found = res.encrypted_session_secrets[j].enclave_id == x->enclaves[i];
                if (!found) {
                    snprintf(x->err, sizeof(x->err),
                             "coordinator enclave %u returned no session secret for enclave %u",
                             coord_eid, x->enclaves[i]);
                    v = CALLS_FAIL;
                }
            }
            proto_keygen_init_result_clear(&res);
        }
        if (v == CALLS_OK)
            json_object_set(state, "init", call.reply.result);
    }
    fanout_clear(&call, 1);
    return v;
}

/* The coordinator's re-encryption of the secret for enclave eid (hex). */
static char *secret_for(json_t *state, uint32_t eid)
{
    struct proto_keygen_init_result res;
    struct km_error e;
    char *hex = NULL;
    if (proto_keygen_init_result_decode(&res, json_object_get(state, "init"), &e) != KM_OK)
        return NULL;
    for (size_t j = 0; j < res.n_encrypted_session_secrets; j++) {
        if (res.encrypted_session_secrets[j].enclave_id == eid)
            hex = coord_hex(res.encrypted_session_secrets[j].ciphertext.p,
                            res.encrypted_session_secrets[j].ciphertext.len);
    }
    proto_keygen_init_result_clear(&res);
    return hex;
}

static enum calls_verdict step_init_others(struct kg_ctx *x, json_t *state)
{
    struct fanout_call calls[PROTO_MAX_ENCLAVES];
    size_t n = 0;
    enum calls_verdict v = CALLS_OK;
    for (size_t i = 0; i < x->nenclaves; i++) {
        uint32_t eid = x->enclaves[i];
        if (eid == x->k.coordinator_enclave_id)
            continue;
        char *secret = secret_for(state, eid);
        struct proto_keygen_init_args a;
        int r = secret ? build_init_args(x, &a, false, secret) : KM_ERR_INVALID;
        free(secret);
        if (r != KM_OK) {
            proto_keygen_init_args_clear(&a);
            snprintf(x->err, sizeof(x->err), "no session secret recorded for enclave %u", eid);
            v = CALLS_FAIL;
            break;
        }
        call_init(&calls[n++], x, eid, &a, KG_INIT_OTHERS);
        proto_keygen_init_args_clear(&a);
    }
    if (v == CALLS_OK) {
        fanout_run(x->c->em, calls, n, x->c->call_timeout_ms);
        v = coord_calls_verdict(x->c, calls, n, x->err, sizeof(x->err));
    }
    fanout_clear(calls, n);
    return v;
}

static enum calls_verdict step_add_participants(struct kg_ctx *x, json_t *state)
{
    struct fanout_call calls[PROTO_MAX_ENCLAVES];
    size_t n = 0;
    for (size_t i = 0; i < x->nenclaves; i++) {
        struct proto_keygen_add_participants_args a = {0};
        a.keygen_session_id = x->session_uuid;
        a.participants = XALLOC_ARRAY(struct proto_participant_reg, x->k.nparticipants);
        for (size_t j = 0; j < x->k.nparticipants; j++) {
            const struct store_participant *p = &x->k.participants[j];
            if (p->enclave_id != x->enclaves[i])
                continue;
            struct proto_participant_reg *reg = &a.participants[a.n_participants++];
            if (uuid_parse(&reg->user_id, p->user_id, 36) != KM_OK ||
                coord_blob_from_hex(&reg->encrypted_private_key, p->encrypted_private_key) !=
                    KM_OK ||
                coord_bytes_from_hex(reg->auth_pubkey, PROTO_XONLY_LEN, p->auth_pubkey) != KM_OK)
                KM_BUG("participant data validated at registration is unreadable");
            reg->require_signing_approval = p->require_signing_approval;
        }
        memset(&calls[n], 0, sizeof(calls[n]));
        calls[n].enclave_id = x->enclaves[i];
        calls[n].cmd = "keygen_add_participants";
        calls[n].args = proto_keygen_add_participants_args_encode(&a);
        fanout_command_id(&calls[n].command_id, x->k.id, kg_step_names[KG_ADD_PARTICIPANTS],
                          x->enclaves[i]);
        n++;
        proto_keygen_add_participants_args_clear(&a);
    }
    fanout_run(x->c->em, calls, n, x->c->call_timeout_ms);
    enum calls_verdict v = coord_calls_verdict(x->c, calls, n, x->err, sizeof(x->err));
    json_t *added = json_object();
    for (size_t i = 0; i < n && v == CALLS_OK; i++) {
        struct proto_keygen_add_participants_result res;
        struct km_error e;
        if (proto_keygen_add_participants_result_decode(&res, calls[i].reply.result, &e) != KM_OK) {
            snprintf(x->err, sizeof(x->err), "enclave %u: bad keygen_add_participants result: %s",
                     calls[i].enclave_id, e.msg);
            v = CALLS_FAIL;
            break;
        }
        proto_keygen_add_participants_result_clear(&res);
        char key[16];
        coord_eid_key(key, calls[i].enclave_id);
        json_object_set(added, key, calls[i].reply.result);
    }
    if (v == CALLS_OK)
        json_object_set(state, "added", added);
    json_decref(added);
    fanout_clear(calls, n);
    return v;
}

/* The public keys other enclaves encrypted to eid, gathered from every
 * keygen_add_participants result. */
static int gather_public_keys(json_t *state, uint32_t eid,
                              struct proto_keygen_distribute_public_keys_args *a)
{
    const char *key;
    json_t *val;
    size_t cap = 0;
    json_object_foreach(json_object_get(state, "added"), key, val)
    {
        struct proto_keygen_add_participants_result res;
        struct km_error e;
        if (proto_keygen_add_participants_result_decode(&res, val, &e) != KM_OK)
            return KM_ERR_INVALID;
        for (size_t i = 0; i < res.n_participants; i++) {
            struct proto_participant_pubkeys *pp = &res.participants[i];
            for (size_t j = 0; j < pp->n_encrypted_public_keys; j++) {
                struct proto_enclave_blob *eb = &pp->encrypted_public_keys[j];
                if (eb->enclave_id != eid)
                    continue;
                if (a->n_public_keys == cap) {
                    cap = cap ? cap * 2 : 8;
                    a->public_keys = xrealloc(a->public_keys, cap * sizeof(*a->public_keys));
                }
                struct proto_user_blob *ub = &a->public_keys[a->n_public_keys++];
                ub->user_id = pp->user_id;
                ub->ciphertext = eb->ciphertext; /* moved */
                eb->ciphertext.p = NULL;
                eb->ciphertext.len = 0;
            }
        }
        proto_keygen_add_participants_result_clear(&res);
    }
    return KM_OK;
}

/* An enclave's aggregate check, from its last progress report. */
static bool enclave_check(json_t *state, uint32_t eid, uint8_t out[PROTO_CHECK_LEN],
                          uint32_t *known, uint32_t *expected)
{
    char key[16];
    struct km_error e;
    coord_eid_key(key, eid);
    json_t *prog = json_object_get(json_object_get(state, "progress"), key);
    if (prog != NULL) {
        struct proto_keygen_progress p;
        if (proto_keygen_progress_decode(&p, prog, &e) == KM_OK) {
            *known = p.known;
            *expected = p.expected;
            if (p.complete && p.has_aggregate_check) {
                memcpy(out, p.aggregate_check, PROTO_CHECK_LEN);
                return true;
            }
        }
    }
    json_t *add = json_object_get(json_object_get(state, "added"), key);
    struct proto_keygen_add_participants_result r;
    if (add != NULL && proto_keygen_add_participants_result_decode(&r, add, &e) == KM_OK) {
        bool ok = r.complete && r.has_aggregate_check;
        if (ok)
            memcpy(out, r.aggregate_check, PROTO_CHECK_LEN);
        if (prog == NULL) {
            *known = r.known;
            *expected = r.expected;
        }
        proto_keygen_add_participants_result_clear(&r);
        return ok;
    }
    return false;
}

/* Every enclave finished key aggregation and they agree on the result. */
static enum calls_verdict check_agreement(struct kg_ctx *x, json_t *state,
                                          uint8_t agreed[PROTO_CHECK_LEN])
{
    for (size_t i = 0; i < x->nenclaves; i++) {
        uint8_t chk[PROTO_CHECK_LEN];
        uint32_t known = 0, expected = 0;
        if (!enclave_check(state, x->enclaves[i], chk, &known, &expected)) {
            snprintf(x->err, sizeof(x->err),
                     "enclave %u did not complete key aggregation (%u of %u public keys known)",
                     x->enclaves[i], known, expected);
            return CALLS_FAIL;
        }
        if (i == 0)
            memcpy(agreed, chk, PROTO_CHECK_LEN);
        else if (memcmp(agreed, chk, PROTO_CHECK_LEN) != 0) {
            snprintf(x->err, sizeof(x->err),
                     "enclaves %u and %u disagree on the aggregate key (aggregate_check differs)",
                     x->enclaves[0], x->enclaves[i]);
            return CALLS_FAIL;
        }
    }
    return CALLS_OK;
}

static enum calls_verdict step_distribute(struct kg_ctx *x, json_t *state)
{
    struct fanout_call calls[PROTO_MAX_ENCLAVES];
    size_t n = 0;
    for (size_t i = 0; i < x->nenclaves; i++) {
        struct proto_keygen_distribute_public_keys_args a = {0};
        a.keygen_session_id = x->session_uuid;
        if (gather_public_keys(state, x->enclaves[i], &a) != KM_OK) {
            proto_keygen_distribute_public_keys_args_clear(&a);
            fanout_clear(calls, n);
            snprintf(x->err, sizeof(x->err), "stored public keys are unreadable");
            return CALLS_FAIL;
        }
        if (a.n_public_keys == 0) { /* it holds every participant already */
            proto_keygen_distribute_public_keys_args_clear(&a);
            continue;
        }
        memset(&calls[n], 0, sizeof(calls[n]));
        calls[n].enclave_id = x->enclaves[i];
        calls[n].cmd = "keygen_distribute_public_keys";
        calls[n].args = proto_keygen_distribute_public_keys_args_encode(&a);
        fanout_command_id(&calls[n].command_id, x->k.id, kg_step_names[KG_DISTRIBUTE],
                          x->enclaves[i]);
        n++;
        proto_keygen_distribute_public_keys_args_clear(&a);
    }
    fanout_run(x->c->em, calls, n, x->c->call_timeout_ms);
    enum calls_verdict v = coord_calls_verdict(x->c, calls, n, x->err, sizeof(x->err));
    json_t *progress = json_object();
    for (size_t i = 0; i < n && v == CALLS_OK; i++) {
        struct proto_keygen_progress p;
        struct km_error e;
        if (proto_keygen_progress_decode(&p, calls[i].reply.result, &e) != KM_OK) {
            snprintf(x->err, sizeof(x->err),
                     "enclave %u: bad keygen_distribute_public_keys result: %s",
                     calls[i].enclave_id, e.msg);
            v = CALLS_FAIL;
            break;
        }
        char key[16];
        coord_eid_key(key, calls[i].enclave_id);
        json_object_set(progress, key, calls[i].reply.result);
    }
    if (v == CALLS_OK) {
        json_object_set(state, "progress", progress);
        uint8_t agreed[PROTO_CHECK_LEN];
        v = check_agreement(x, state, agreed);
    }
    json_decref(progress);
    fanout_clear(calls, n);
    return v;
}

static enum calls_verdict restore_init(struct kg_ctx *x, uint32_t eid, bool *present);
static enum calls_verdict restore_keys(struct kg_ctx *x, uint32_t eid,
                                       uint8_t check[PROTO_CHECK_LEN]);

static bool keygen_missing(const struct fanout_call *call)
{
    return call->rc == KM_ERR_REMOTE && strcmp(call->reply.error.code, "not_found") == 0 &&
           strncmp(call->reply.error.message, "keygen session", 14) == 0;
}

/*
 * An enclave may evict a keygen as soon as it completed it, to make room
 * (ENCLAVE_MAX_SESSIONS): also between keygen_distribute_public_keys and
 * keygen_get_aggregate. The aggregate step then puts it back from steps
 * 0-3, as a restore does, and asks again (the same command id runs anew:
 * the enclave dropped its cached reply with the session).
 */
static enum calls_verdict restore_for_aggregate(struct kg_ctx *x, json_t *state, uint32_t eid,
                                                const uint8_t agreed[PROTO_CHECK_LEN])
{
    bool present = false;
    uint8_t got[PROTO_CHECK_LEN];
    x->state = json_incref(state);
    enum calls_verdict v = restore_init(x, eid, &present);
    if (v == CALLS_OK && !present)
        v = restore_keys(x, eid, got);
    if (v == CALLS_OK && !present && memcmp(got, agreed, PROTO_CHECK_LEN) != 0) {
        snprintf(x->err, sizeof(x->err),
                 "enclave %u put keygen %s back with another aggregate key than agreed", eid,
                 x->k.id);
        v = CALLS_FAIL;
    }
    json_decref(x->state);
    x->state = NULL;
    if (v == CALLS_OK)
        log_info(LOG_COMP, "keygen %s: put back on enclave %u, which had evicted it", x->k.id, eid);
    return v;
}

static enum calls_verdict step_aggregate(struct kg_ctx *x, json_t *state,
                                         struct store_keygen_progress *done)
{
    uint8_t agreed[PROTO_CHECK_LEN];
    enum calls_verdict v = check_agreement(x, state, agreed);
    if (v != CALLS_OK)
        return v;
    struct proto_keygen_ref_args a = {x->session_uuid};
    struct fanout_call call = {0};
    call.enclave_id = x->k.coordinator_enclave_id;
    call.cmd = "keygen_get_aggregate";
    call.args = proto_keygen_ref_args_encode(&a);
    fanout_command_id(&call.command_id, x->k.id, kg_step_names[KG_AGGREGATE], call.enclave_id);
    fanout_run(x->c->em, &call, 1, x->c->call_timeout_ms);
    if (keygen_missing(&call)) {
        env_reply_clear(&call.reply);
        v = restore_for_aggregate(x, state, call.enclave_id, agreed);
        if (v != CALLS_OK) {
            fanout_clear(&call, 1);
            return v;
        }
        fanout_run(x->c->em, &call, 1, x->c->call_timeout_ms);
    }
    v = coord_calls_verdict(x->c, &call, 1, x->err, sizeof(x->err));
    if (v == CALLS_OK) {
        struct proto_keygen_get_aggregate_result res;
        struct km_error e;
        if (proto_keygen_get_aggregate_result_decode(&res, call.reply.result, &e) != KM_OK) {
            snprintf(x->err, sizeof(x->err), "enclave %u: bad keygen_get_aggregate result: %s",
                     call.enclave_id, e.msg);
            v = CALLS_FAIL;
        } else if (memcmp(res.aggregate_check, agreed, PROTO_CHECK_LEN) != 0) {
            snprintf(x->err, sizeof(x->err),
                     "coordinator enclave %u returned an aggregate key the enclaves did not agree "
                     "on",
                     call.enclave_id);
            v = CALLS_FAIL;
        } else {
            done->encrypted_aggregate_public_key = coord_hex(
                res.encrypted_aggregate_public_key.p, res.encrypted_aggregate_public_key.len);
            done->aggregate_check = coord_hex(res.aggregate_check, PROTO_CHECK_LEN);
            json_t *subsets = json_object_get(call.reply.result, "subsets");
            done->subset_results = subsets ? coord_doc_dump(subsets) : xstrdup("[]");
            if (done->subset_results == NULL) {
                snprintf(x->err, sizeof(x->err), "cannot record the subset results");
                v = CALLS_RETRY;
            }
        }
        proto_keygen_get_aggregate_result_clear(&res);
    }
    fanout_clear(&call, 1);
    return v;
}

/* Records the outcome of a step attempt. */
static enum step_result finish(struct kg_ctx *x, enum calls_verdict v, json_t *state,
                               struct store_keygen_progress *p, uint64_t *retry_at)
{
    struct coord *c = x->c;
    const char *step = x->k.step < KG_DONE ? kg_step_names[x->k.step] : "?";
    if (v == CALLS_OK) {
        p->from_step = x->k.step;
        p->to_step = x->k.step + 1;
        p->status = p->to_step == KG_DONE ? STORE_KEYGEN_COMPLETED : STORE_KEYGEN_RUNNING;
        char *text = coord_doc_dump(state);
        p->state = text;
        int r = text != NULL ? store_keygen_advance(c->store, x->k.id, p) : KM_ERR_NOMEM;
        free(text);
        if (r == KM_ERR_STATE) /* another writer moved it (failed, expired): look again */
            return STEP_ADVANCED;
        if (r != KM_OK) { /* the database hiccuped: the step re-runs idempotently */
            *retry_at = coord_backoff_at(c, 0);
            return STEP_RETRY;
        }
        coord_count_step(c, false);
        log_debug(LOG_COMP, "keygen %s: %s done", x->k.id, step);
        if (p->status == STORE_KEYGEN_COMPLETED) {
            coord_count_end(c, COORD_KEYGEN, true, false);
            log_info(LOG_COMP, "keygen %s completed (%zu participants, %zu enclaves)", x->k.id,
                     x->k.nparticipants, x->nenclaves);
        }
        return STEP_ADVANCED;
    }
    if (v == CALLS_RETRY && (unsigned)x->k.attempts + 1 < c->max_attempts) {
        *retry_at = coord_backoff_at(c, x->k.attempts);
        log_warn(LOG_COMP, "keygen %s: %s failed (attempt %d of %u), retrying: %s", x->k.id, step,
                 x->k.attempts + 1, c->max_attempts, x->err);
        coord_count_step(c, true);
        int r = store_keygen_retry_later(c->store, x->k.id, x->k.step, coord_wall_secs(*retry_at),
                                         x->err);
        /* As for signings: the database down keeps the retry in memory. */
        return r == KM_ERR_STATE || r == KM_ERR_NOT_FOUND ? STEP_IDLE : STEP_RETRY;
    }
    char msg[COORD_ERR_MAX + 128];
    if (v == CALLS_RETRY)
        snprintf(msg, sizeof(msg), "%s failed after %u attempts: %s", step, c->max_attempts,
                 x->err);
    else
        snprintf(msg, sizeof(msg), "%s failed: %s", step, x->err);
    log_warn(LOG_COMP, "keygen %s failed: %s", x->k.id, msg);
    if (store_keygen_fail(c->store, x->k.id, msg) == KM_OK)
        coord_count_end(c, COORD_KEYGEN, false, false);
    return STEP_IDLE;
}

enum step_result coord_keygen_step(struct coord *c, const char *id, uint64_t *retry_at_ms)
{
    struct kg_ctx *x = xcalloc(1, sizeof(*x));
    x->c = c;
    enum step_result result = STEP_IDLE;
    int lr = store_keygen_get(c->store, id, &x->k);
    if (lr != KM_OK && lr != KM_ERR_NOT_FOUND) { /* the database: look again later */
        *retry_at_ms = coord_backoff_at(c, COORD_DB_RETRY_ATTEMPTS);
        result = STEP_RETRY;
    }
    if (lr != KM_OK || x->k.status != STORE_KEYGEN_RUNNING || x->k.step >= KG_DONE)
        goto out;
    if (uuid_parse(&x->session_uuid, x->k.id, 36) != KM_OK || collect_enclaves(x) != KM_OK)
        KM_BUG("stored keygen session %s is malformed", x->k.id);

    /* Parsed once: this attempt's outputs are added to it in place. */
    json_t *state = coord_doc_load(x->k.state);
    if (state == NULL)
        state = json_object();
    struct store_keygen_progress done = {0};
    enum calls_verdict v =
        coord_claim_enclaves(c, x->enclaves, x->nenclaves, x->err, sizeof(x->err));
    bool claimed = v == CALLS_OK;
    if (v == CALLS_WAIT) {
        result = STEP_WAIT;
        json_decref(state);
        goto out;
    }
    if (v == CALLS_OK)
        v = check_enclave_keys(x);
    if (v == CALLS_OK) {
        switch ((enum kg_step)x->k.step) {
        case KG_INIT_COORDINATOR:
            v = step_init_coordinator(x, state);
            break;
        case KG_INIT_OTHERS:
            v = step_init_others(x, state);
            break;
        case KG_ADD_PARTICIPANTS:
            v = step_add_participants(x, state);
            break;
        case KG_DISTRIBUTE:
            v = step_distribute(x, state);
            break;
        case KG_AGGREGATE:
            v = step_aggregate(x, state, &done);
            break;
        case KG_DONE:
            break;
        }
    }
    result = finish(x, v, state, &done, retry_at_ms);
    if (claimed)
        coord_release_enclaves(c, x->enclaves, x->nenclaves);
    json_decref(state);
    free((char *)(uintptr_t)done.encrypted_aggregate_public_key);
    free((char *)(uintptr_t)done.aggregate_check);
    free((char *)(uintptr_t)done.subset_results);
out:
    kg_ctx_free(x);
    return result;
}

/* ---- restore ----------------------------------------------------------------
 *
 * A completed keygen an enclave no longer holds (it restarted with its
 * sealed key, or evicted the keygen to make room) is restored by re-sending
 * that enclave's part of steps 0-3 from the stored ciphertexts, with the
 * original command ids: the enclave dropped their cached replies with the
 * session, so they run again. The enclave recomputes the key aggregation;
 * its aggregate_check must equal the stored one.
 */

/* Runs one restore call; a keygen that is still there (invalid_state: it
 * exists) ends the restore early and successfully. */
static enum calls_verdict restore_call(struct kg_ctx *x, struct fanout_call *call, bool *present)
{
    fanout_run(x->c->em, call, 1, x->c->call_timeout_ms);
    if (call->rc == KM_ERR_REMOTE && strcmp(call->reply.error.code, "invalid_state") == 0 &&
        strstr(call->reply.error.message, "already exists") != NULL) {
        *present = true;
        return CALLS_OK;
    }
    return coord_calls_verdict(x->c, call, 1, x->err, sizeof(x->err));
}

static enum calls_verdict restore_init(struct kg_ctx *x, uint32_t eid, bool *present)
{
    bool coordinator = eid == x->k.coordinator_enclave_id;
    char *secret = coordinator ? NULL : secret_for(x->state, eid);
    struct proto_keygen_init_args a;
    int r = coordinator ? build_init_args(x, &a, true, x->k.encrypted_session_secret)
            : secret    ? build_init_args(x, &a, false, secret)
                        : KM_ERR_INVALID;
    free(secret);
    if (r != KM_OK) {
        proto_keygen_init_args_clear(&a);
        snprintf(x->err, sizeof(x->err), "no stored session secret for enclave %u", eid);
        return CALLS_FAIL;
    }
    struct fanout_call call;
    call_init(&call, x, eid, &a, coordinator ? KG_INIT_COORDINATOR : KG_INIT_OTHERS);
    proto_keygen_init_args_clear(&a);
    enum calls_verdict v = restore_call(x, &call, present);
    fanout_clear(&call, 1);
    return v;
}

/* keygen_add_participants (and, when it needs other enclaves' keys,
 * keygen_distribute_public_keys) for eid; *check is its aggregate_check. */
static enum calls_verdict restore_keys(struct kg_ctx *x, uint32_t eid,
                                       uint8_t check[PROTO_CHECK_LEN])
{
    struct proto_keygen_add_participants_args a = {0};
    a.keygen_session_id = x->session_uuid;
    a.participants = XALLOC_ARRAY(struct proto_participant_reg, x->k.nparticipants);
    for (size_t j = 0; j < x->k.nparticipants; j++) {
        const struct store_participant *p = &x->k.participants[j];
        if (p->enclave_id != eid)
            continue;
        struct proto_participant_reg *reg = &a.participants[a.n_participants++];
        if (uuid_parse(&reg->user_id, p->user_id, 36) != KM_OK ||
            coord_blob_from_hex(&reg->encrypted_private_key, p->encrypted_private_key) != KM_OK ||
            coord_bytes_from_hex(reg->auth_pubkey, PROTO_XONLY_LEN, p->auth_pubkey) != KM_OK)
            KM_BUG("participant data validated at registration is unreadable");
        reg->require_signing_approval = p->require_signing_approval;
    }
    struct fanout_call call = {.enclave_id = eid, .cmd = "keygen_add_participants"};
    call.args = proto_keygen_add_participants_args_encode(&a);
    proto_keygen_add_participants_args_clear(&a);
    fanout_command_id(&call.command_id, x->k.id, kg_step_names[KG_ADD_PARTICIPANTS], eid);
    bool present = false;
    enum calls_verdict v = restore_call(x, &call, &present);
    struct proto_keygen_add_participants_result added;
    struct proto_keygen_progress prog;
    struct km_error e;
    bool complete = false;
    if (v == CALLS_OK &&
        proto_keygen_add_participants_result_decode(&added, call.reply.result, &e) == KM_OK) {
        complete = added.complete && added.has_aggregate_check;
        if (complete)
            memcpy(check, added.aggregate_check, PROTO_CHECK_LEN);
        proto_keygen_add_participants_result_clear(&added);
    }
    fanout_clear(&call, 1);
    if (v != CALLS_OK || complete)
        return v;

    struct proto_keygen_distribute_public_keys_args d = {0};
    d.keygen_session_id = x->session_uuid;
    if (gather_public_keys(x->state, eid, &d) != KM_OK || d.n_public_keys == 0) {
        proto_keygen_distribute_public_keys_args_clear(&d);
        snprintf(x->err, sizeof(x->err), "stored public keys for enclave %u are unreadable", eid);
        return CALLS_FAIL;
    }
    memset(&call, 0, sizeof(call));
    call.enclave_id = eid;
    call.cmd = "keygen_distribute_public_keys";
    call.args = proto_keygen_distribute_public_keys_args_encode(&d);
    proto_keygen_distribute_public_keys_args_clear(&d);
    fanout_command_id(&call.command_id, x->k.id, kg_step_names[KG_DISTRIBUTE], eid);
    v = restore_call(x, &call, &present);
    if (v == CALLS_OK) {
        if (proto_keygen_progress_decode(&prog, call.reply.result, &e) == KM_OK && prog.complete &&
            prog.has_aggregate_check) {
            memcpy(check, prog.aggregate_check, PROTO_CHECK_LEN);
        } else {
            snprintf(x->err, sizeof(x->err), "enclave %u did not complete key aggregation", eid);
            v = CALLS_FAIL;
        }
    }
    fanout_clear(&call, 1);
    return v;
}

enum calls_verdict coord_keygen_restore(struct coord *c, const char *keygen_id, uint32_t eid,
                                        char *err, size_t errcap)
{
    struct kg_ctx *x = xcalloc(1, sizeof(*x));
    x->c = c;
    enum calls_verdict v = CALLS_FAIL;
    uint8_t want[PROTO_CHECK_LEN], got[PROTO_CHECK_LEN];
    bool present = false;
    if (store_keygen_get_with_state(c->store, keygen_id, &x->k) == KM_OK)
        x->state = coord_doc_load(x->k.state);
    if (x->state == NULL || x->k.status != STORE_KEYGEN_COMPLETED ||
        coord_bytes_from_hex(want, PROTO_CHECK_LEN, x->k.aggregate_check) != KM_OK ||
        uuid_parse(&x->session_uuid, x->k.id, 36) != KM_OK || collect_enclaves(x) != KM_OK) {
        snprintf(x->err, sizeof(x->err), "keygen %s has no stored data to restore from", keygen_id);
        goto out;
    }
    v = check_enclave_keys(x);
    if (v == CALLS_OK)
        v = restore_init(x, eid, &present);
    if (v == CALLS_OK && !present) {
        v = restore_keys(x, eid, got);
        if (v == CALLS_OK && memcmp(got, want, PROTO_CHECK_LEN) != 0) {
            snprintf(x->err, sizeof(x->err),
                     "enclave %u restored keygen %s to another aggregate key than the stored one",
                     eid, keygen_id);
            v = CALLS_FAIL;
        }
    }
    if (v == CALLS_OK)
        log_info(LOG_COMP, "keygen %s %s on enclave %u", keygen_id,
                 present ? "was still held" : "restored from its stored ciphertexts", eid);
out:
    if (v != CALLS_OK)
        snprintf(err, errcap, "restoring keygen %s on enclave %u: %s", keygen_id, eid, x->err);
    kg_ctx_free(x);
    return v;
}
