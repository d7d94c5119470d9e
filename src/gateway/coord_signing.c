/*
 * coord_signing.c - the signing steps (docs/PROTOCOL.md, docs/API.md):
 *
 *   0 signing_init to every enclave of the keygen: each returns its
 *     participants' encrypted public nonces
 *   1 signing_distribute_nonces: every enclave gets all nonces and returns
 *     its participants' encrypted partial signatures
 *   2 signing_finalize on the coordinator enclave: it verifies every
 *     partial signature and the final signatures -> completed
 *
 * A completed session removes itself from the enclaves; a failed one is
 * cleared on every enclave (clear_session, best effort). Step outputs
 * accumulate in the state JSON: {"nonces":{"<eid>":{...}},"partials":{...}}.
 *
 * Only the outcome is committed, not each step (one writer turn and one
 * fsync per signing instead of three). Crash-resume does not need the
 * intermediate steps: a signing resumed from an earlier step sends the same
 * commands again with the same command ids (fanout_command_id) and the same
 * arguments (built from the replies it gets again), and every enclave
 * answers a repeated command id from its reply cache without running it
 * again (docs/PROTOCOL.md "Conventions"), so the nonces and partial
 * signatures it gets are those of the first run. Where an enclave no longer
 * has the reply (its cache evicted it, or the session expired) the command
 * is refused (the session exists, is in another state, or the arguments
 * differ from the cached ones) and the signing fails; no secret nonce is
 * ever used twice, that is the enclave's own rule. The progress is
 * committed before a retry is recorded, so a retried step starts from it.
 *
 * Two rounds with pre-generated nonces (coordinator.nonce_pool_size,
 * docs/PROTOCOL.md "Nonce pools", coord_pool.c): a signing that starts
 * here (created here, first attempt, not a resume) of plain items (no
 * subset, no adaptor configs) claims one pool entry per item from every
 * enclave's stock and runs
 *
 *   0 signing_sign to every enclave (signing_init's arguments plus the
 *     pool nonces): each returns its participants' partial signatures
 *   2 signing_finalize on the coordinator enclave, as above
 *
 * The choice lives in memory only. Whatever interrupts it (a crash, a
 * retryable failure, nonce_unavailable) leads to the three-round path with
 * fresh nonces, never to a second use of an entry (the enclave enforces
 * that too):
 *   - nonce_unavailable (or a keygen the enclave lost) from signing_sign:
 *     that enclave's stock is dropped, the session cleared on every enclave
 *     and the signing restarted on the three-round path at once;
 *   - a retry or a resume runs the three-round path; where signing_init
 *     finds the session already there (a signing_sign ran before), the
 *     session is cleared on every enclave and restarted.
 * A restart uses a new command-id generation ("<step>#<gen>", recorded in
 * the state with the progress), so no enclave answers it from the replies
 * of the attempt it replaces. At most MAX_RESTARTS per run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "gateway/coord_internal.h"
#include "common/banned.h"

#define LOG_COMP "coordinator"
/* Restarts with fresh nonces per run before the session fails. */
#define MAX_RESTARTS 2

enum sg_step {
    SG_INIT = 0,
    SG_NONCES,
    SG_FINALIZE,
    SG_DONE,
};

static const char *const sg_step_names[] = {"signing_init", "signing_distribute_nonces",
                                            "signing_finalize"};
/* The same steps on the pool path: other command ids, so a three-round
 * run never gets a pool run's cached reply. */
static const char *const sg_pool_step_names[] = {"signing_sign", "?", "signing_sign_finalize"};

struct sg_ctx {
    struct coord *c;
    struct store_signing sg;
    json_t *items; /* sg.items parsed, once per load */
    /* The step the store records; sg.step runs ahead of it in memory. */
    int committed_step;
    struct store_keygen k;
    uint32_t enclaves[PROTO_MAX_ENCLAVES];
    size_t nenclaves;
    char err[COORD_ERR_MAX];
    /* Pool path (top of this file): the entries claimed, enclave-major
     * (nenclaves x json_array_size(items)), until signing_sign is built. */
    bool pool;
    struct coord_pool_entry *claimed;
    unsigned gen;      /* command-id generation */
    unsigned restarts; /* in this run */
    bool restart;      /* the step asks for a restart with fresh nonces */
    bool completed;    /* committed as completed in this run */
};

static void call_prepare(struct fanout_call *call, struct sg_ctx *x, uint32_t eid, const char *cmd,
                         json_t *args, const char *step)
{
    memset(call, 0, sizeof(*call));
    call->enclave_id = eid;
    call->cmd = cmd;
    call->args = args;
    if (x->gen == 0) {
        fanout_command_id(&call->command_id, x->sg.id, step, eid);
    } else {
        char name[64];
        snprintf(name, sizeof(name), "%s#%u", step, x->gen);
        fanout_command_id(&call->command_id, x->sg.id, name, eid);
    }
}

static const char *step_name(const struct sg_ctx *x, enum sg_step step)
{
    return x->pool ? sg_pool_step_names[step] : sg_step_names[step];
}

static bool keygen_missing(const struct fanout_call *call)
{
    return call->rc == KM_ERR_REMOTE && strcmp(call->reply.error.code, "not_found") == 0 &&
           strncmp(call->reply.error.message, "keygen session", 14) == 0;
}

/* An enclave that no longer holds the keygen (it restarted with its sealed
 * key, or evicted the keygen to make room) gets it restored from the stored
 * ciphertexts; then signing_init is asked again. A restore that fails turns
 * the call into that failure. */
static void restore_missing_keygens(struct sg_ctx *x, struct fanout_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct fanout_call *call = &calls[i];
        if (!keygen_missing(call))
            continue;
        char why[COORD_ERR_MAX];
        enum calls_verdict v =
            coord_keygen_restore(x->c, x->sg.keygen_session_id, call->enclave_id, why, sizeof(why));
        env_reply_clear(&call->reply);
        if (v == CALLS_OK) {
            fanout_run(x->c->em, call, 1, x->c->call_timeout_ms);
            continue;
        }
        /* As if the call itself had failed that way: a transport failure
         * is retried with the step, a refusal is final. */
        if (v == CALLS_RETRY) {
            call->rc = km_error_set(&call->err, KM_ERR_CONNECT, 0, "%s", why);
        } else {
            call->rc = KM_ERR_REMOTE;
            call->reply.ok = false;
            snprintf(call->reply.error.code, sizeof(call->reply.error.code), "not_found");
            snprintf(call->reply.error.message, sizeof(call->reply.error.message), "%s", why);
        }
    }
}

static bool has_code(const struct fanout_call *call, const char *code)
{
    return call->rc == KM_ERR_REMOTE && strcmp(call->reply.error.code, code) == 0;
}

/* Whether the first step's calls ask for a restart with fresh nonces (top
 * of this file): on the pool path any refusal (an entry or the keygen gone:
 * that enclave's stock is dropped), on the three-round path the session
 * already there. */
static bool wants_restart(struct sg_ctx *x, const struct fanout_call *calls, size_t n)
{
    bool yes = false;
    for (size_t i = 0; i < n; i++) {
        const struct fanout_call *call = &calls[i];
        bool stale = x->pool && (has_code(call, "nonce_unavailable") || keygen_missing(call));
        /* Any other refusal of signing_sign is judged again on three
         * rounds, which report it as they always have. */
        bool refused = x->pool && call->rc == KM_ERR_REMOTE && !has_code(call, "busy");
        bool exists = !x->pool && has_code(call, "invalid_state") &&
                      strstr(call->reply.error.message, "already exists") != NULL;
        if (stale)
            coord_pool_drop(x->c->pool, x->sg.keygen_session_id, call->enclave_id);
        if (refused || exists)
            snprintf(x->err, sizeof(x->err), "enclave %u: %s: %s", call->enclave_id,
                     call->reply.error.code, call->reply.error.message);
        yes = yes || refused || exists;
    }
    return yes;
}

/* Sends cmd with args to every enclave of the session (args built per
 * enclave by the same JSON), then checks every result with decode. */
static enum calls_verdict fan_to_all(struct sg_ctx *x, const char *cmd, json_t *args,
                                     enum sg_step step, json_t *collect,
                                     const struct proto_schema *result_schema)
{
    struct fanout_call calls[PROTO_MAX_ENCLAVES];
    for (size_t i = 0; i < x->nenclaves; i++)
        call_prepare(&calls[i], x, x->enclaves[i], cmd, json_incref(args), step_name(x, step));
    fanout_run(x->c->em, calls, x->nenclaves, x->c->call_timeout_ms);
    if (step == SG_INIT)
        restore_missing_keygens(x, calls, x->nenclaves);
    x->restart = step == SG_INIT && wants_restart(x, calls, x->nenclaves);
    enum calls_verdict v =
        x->restart ? CALLS_FAIL
                   : coord_calls_verdict(x->c, calls, x->nenclaves, x->err, sizeof(x->err));
    for (size_t i = 0; i < x->nenclaves && v == CALLS_OK; i++) {
        /* Validate the shape now, so a later step never trips on it. */
        union {
            struct proto_signing_init_result a;
            struct proto_signing_distribute_nonces_result b;
        } res;
        struct km_error e;
        if (proto_decode(result_schema, &res, calls[i].reply.result, &e) != KM_OK) {
            snprintf(x->err, sizeof(x->err), "enclave %u: bad %s result: %s", calls[i].enclave_id,
                     cmd, e.msg);
            v = CALLS_FAIL;
            break;
        }
        proto_clear(result_schema, &res);
        char key[16];
        coord_eid_key(key, calls[i].enclave_id);
        json_object_set(collect, key, calls[i].reply.result);
    }
    fanout_clear(calls, x->nenclaves);
    return v;
}

/* Concatenates field `list` of every enclave's result in state[from]. */
static json_t *union_of(json_t *state, const char *from, const char *list)
{
    json_t *all = json_array();
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get(state, from), key, val)
    {
        json_array_extend(all, json_object_get(val, list));
    }
    return all;
}

static json_t *approvals_json(const struct store_signing *sg)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < sg->napprovals; i++)
        json_array_append_new(arr, json_pack("{s:s, s:I, s:s}", "user_id", sg->approvals[i].user_id,
                                             "timestamp", (json_int_t)sg->approvals[i].timestamp,
                                             "signature", sg->approvals[i].signature));
    return arr;
}

static json_t *init_args(const struct sg_ctx *x)
{
    json_t *args = json_pack("{s:s, s:s, s:i, s:O}", "signing_session_id", x->sg.id,
                             "keygen_session_id", x->sg.keygen_session_id, "timeout_secs",
                             (int)x->sg.timeout_secs, "items", x->items);
    if (x->sg.napprovals > 0)
        json_object_set_new(args, "approvals", approvals_json(&x->sg));
    return args;
}

static enum calls_verdict step_init(struct sg_ctx *x, json_t *state)
{
    json_t *args = init_args(x);
    json_t *nonces = json_object();
    enum calls_verdict v =
        fan_to_all(x, "signing_init", args, SG_INIT, nonces, &proto_signing_init_result_schema);
    if (v == CALLS_OK)
        json_object_set(state, "nonces", nonces);
    json_decref(nonces);
    json_decref(args);
    return v;
}

/* The round that returns every enclave's partial signatures
 * (signing_distribute_nonces, or signing_sign on the pool path): they go to
 * state.partials. Consumes args. */
static enum calls_verdict fan_for_partials(struct sg_ctx *x, const char *cmd, json_t *args,
                                           enum sg_step step, json_t *state)
{
    json_t *partials = json_object();
    enum calls_verdict v =
        fan_to_all(x, cmd, args, step, partials, &proto_signing_distribute_nonces_result_schema);
    if (v == CALLS_OK)
        json_object_set(state, "partials", partials);
    json_decref(partials);
    json_decref(args);
    return v;
}

static enum calls_verdict step_nonces(struct sg_ctx *x, json_t *state)
{
    json_t *args = json_pack("{s:s, s:o}", "signing_session_id", x->sg.id, "nonces",
                             union_of(state, "nonces", "nonces"));
    return fan_for_partials(x, "signing_distribute_nonces", args, SG_NONCES, state);
}

/* ---- the pool path ---- */

/* The number of items when every one is plain (one unit signed by every
 * participant: no subset, no adaptor configs), else 0. */
static size_t plain_units(const struct sg_ctx *x)
{
    size_t i;
    json_t *item;
    json_array_foreach(x->items, i, item)
    {
        const char *sub = json_string_value(json_object_get(item, "subset_id"));
        const char *adp = json_string_value(json_object_get(item, "encrypted_adaptor_configs"));
        if ((sub != NULL && sub[0] != '\0') || (adp != NULL && adp[0] != '\0'))
            return 0;
        if (json_object_get(item, "subset_id") != NULL && sub == NULL)
            return 0; /* not a string: let the enclave judge it on three rounds */
    }
    return json_array_size(x->items);
}

static void release_claimed(struct sg_ctx *x)
{
    if (x->claimed == NULL)
        return;
    for (size_t i = 0; i < x->nenclaves * json_array_size(x->items); i++)
        coord_pool_entry_clear(&x->claimed[i]);
    free(x->claimed);
    x->claimed = NULL;
}

/* A signing that starts here, on its first attempt, takes the pool path
 * when every enclave has an entry for each of its units. */
static void choose_path(struct sg_ctx *x, bool resumed)
{
    size_t units = plain_units(x);
    if (x->c->pool == NULL || resumed || x->sg.step != SG_INIT || x->sg.attempts != 0 ||
        x->gen != 0 || units == 0)
        return;
    x->claimed = XALLOC_ARRAY(struct coord_pool_entry, x->nenclaves * units);
    x->pool = coord_pool_claim(x->c->pool, x->sg.keygen_session_id, x->enclaves, x->nenclaves,
                               units, x->claimed);
    if (!x->pool) {
        free(x->claimed);
        x->claimed = NULL;
    }
}

static size_t enclave_index(const struct sg_ctx *x, uint32_t eid)
{
    for (size_t i = 0; i < x->nenclaves; i++) {
        if (x->enclaves[i] == eid)
            return i;
    }
    KM_BUG("signing %s: enclave %u is not one of its keygen's", x->sg.id, eid);
}

static const struct proto_blob *entry_nonce(const struct coord_pool_entry *e, const struct uuid *u)
{
    for (size_t i = 0; i < e->n_nonces; i++) {
        if (uuid_equal(&e->nonces[i].user_id, u))
            return &e->nonces[i].ciphertext;
    }
    return NULL;
}

/* One pool nonce per participant and unit: participant p of unit u signs
 * with the entry its enclave's stock gave for u. false when an entry lacks
 * a participant (then the caller takes three rounds). */
static bool pool_refs(const struct sg_ctx *x, const struct proto_signing_init_args *ia,
                      struct proto_pool_nonce_ref *refs, size_t *n)
{
    *n = 0;
    for (size_t u = 0; u < ia->n_items; u++) {
        for (size_t j = 0; j < x->k.nparticipants; j++) {
            const struct store_participant *sp = &x->k.participants[j];
            const struct coord_pool_entry *e =
                &x->claimed[enclave_index(x, sp->enclave_id) * ia->n_items + u];
            struct proto_pool_nonce_ref *r = &refs[(*n)++];
            if (uuid_parse(&r->user_id, sp->user_id, strlen(sp->user_id)) != KM_OK)
                return false;
            const struct proto_blob *nonce = entry_nonce(e, &r->user_id);
            if (nonce == NULL)
                return false;
            r->item_id = ia->items[u].item_id;
            r->unit = 0;
            memcpy(r->entry_id, e->id, sizeof(r->entry_id));
            r->encrypted_nonce = *nonce; /* borrowed from x->claimed */
        }
    }
    return true;
}

/* signing_sign's arguments: signing_init's, plus the claimed entries'
 * nonces; NULL (with x->err) when they cannot be built. */
static json_t *sign_args(struct sg_ctx *x)
{
    json_t *init = init_args(x), *out = NULL;
    struct proto_signing_init_args ia;
    struct km_error e;
    if (proto_signing_init_args_decode(&ia, init, &e) != KM_OK) {
        snprintf(x->err, sizeof(x->err), "items: %s", e.msg);
        json_decref(init);
        return NULL;
    }
    size_t n = 0;
    struct proto_pool_nonce_ref *refs =
        XALLOC_ARRAY(struct proto_pool_nonce_ref, ia.n_items * x->k.nparticipants + 1);
    if (pool_refs(x, &ia, refs, &n)) {
        struct proto_signing_sign_args sa = {.init = ia, .n_nonces = n, .nonces = refs};
        out = proto_signing_sign_args_encode(&sa);
    } else {
        snprintf(x->err, sizeof(x->err), "a pool entry lacks a participant's nonce");
    }
    free(refs);
    proto_signing_init_args_clear(&ia);
    json_decref(init);
    return out;
}

static enum calls_verdict step_sign(struct sg_ctx *x, json_t *state)
{
    json_t *args = sign_args(x);
    release_claimed(x); /* named in args, or never to be used */
    if (args == NULL) {
        /* Nothing was sent: three rounds instead, as if no stock. */
        log_warn(LOG_COMP, "signing %s: cannot use pool nonces: %s", x->sg.id, x->err);
        x->pool = false;
        return step_init(x, state);
    }
    return fan_for_partials(x, "signing_sign", args, SG_INIT, state);
}

static enum calls_verdict step_finalize(struct sg_ctx *x, json_t *state, json_t **results)
{
    struct fanout_call call;
    json_t *args = json_pack("{s:s, s:o}", "signing_session_id", x->sg.id, "partial_signatures",
                             union_of(state, "partials", "partial_signatures"));
    call_prepare(&call, x, x->k.coordinator_enclave_id, "signing_finalize", args,
                 step_name(x, SG_FINALIZE));
    fanout_run(x->c->em, &call, 1, x->c->call_timeout_ms);
    enum calls_verdict v = coord_calls_verdict(x->c, &call, 1, x->err, sizeof(x->err));
    if (v == CALLS_OK) {
        struct proto_signing_finalize_result res;
        struct km_error e;
        if (proto_signing_finalize_result_decode(&res, call.reply.result, &e) != KM_OK) {
            snprintf(x->err, sizeof(x->err), "enclave %u: bad signing_finalize result: %s",
                     call.enclave_id, e.msg);
            v = CALLS_FAIL;
        } else if (res.n_results != json_array_size(x->items)) {
            snprintf(x->err, sizeof(x->err), "enclave %u returned %zu results for %zu items",
                     call.enclave_id, res.n_results, json_array_size(x->items));
            v = CALLS_FAIL;
        } else {
            *results = json_incref(json_object_get(call.reply.result, "results"));
        }
        proto_signing_finalize_result_clear(&res);
    }
    fanout_clear(&call, 1);
    return v;
}

/* Wipes a failed session on every enclave (a completed one removes itself
 * there: docs/PROTOCOL.md); failures only cost memory until the enclave's
 * own expiry, so they are logged, not retried. */
static void clear_everywhere(struct sg_ctx *x, bool fresh_ids)
{
    struct fanout_call calls[PROTO_MAX_ENCLAVES];
    size_t n = 0;
    char why[512];
    for (size_t i = 0; i < x->nenclaves; i++) {
        /* A hung enclave would hold this worker for the whole deadline. */
        if (enclave_mgr_unresponsive(x->c->em, x->enclaves[i], why, sizeof(why)))
            continue;
        call_prepare(&calls[n], x, x->enclaves[i], "clear_session",
                     json_pack("{s:s}", "signing_session_id", x->sg.id), "clear_session");
        /* A restart's clear must run, never be answered from a cache. */
        if (fresh_ids && uuid_v7_new(&calls[n].command_id) != KM_OK)
            KM_BUG("no randomness for a command id");
        n++;
    }
    fanout_run(x->c->em, calls, n, 5000);
    for (size_t i = 0; i < n; i++) {
        if (calls[i].rc != KM_OK)
            log_debug(LOG_COMP, "signing %s: clear_session on enclave %u failed: %s", x->sg.id,
                      calls[i].enclave_id, calls[i].err.msg);
    }
    fanout_clear(calls, n);
}

/* Commits the progress run in memory since the last commit: the session
 * moves from committed_step to to_step (SG_DONE: completed, with results).
 * KM_ERR_STATE when it changed meanwhile (the sweeper expired it). */
static int save_progress(struct sg_ctx *x, int to_step, json_t *state, json_t *results)
{
    /* A completed signing is never resumed, and the enclaves have dropped
     * it: its step outputs (the sealed nonces and partial signatures, a
     * few kB per signing) would only be written to be kept unread. */
    char *state_text = to_step == SG_DONE ? NULL : coord_doc_dump(state);
    char *results_text = coord_doc_dump(results);
    struct store_signing_progress p = {
        .from_step = x->committed_step,
        .to_step = to_step,
        .status = to_step == SG_DONE ? STORE_SIGNING_COMPLETED : STORE_SIGNING_RUNNING,
        .state = state_text,
        .results = results_text,
    };
    /* A document that cannot be written is retried as a database error
     * would be. */
    int r = (state_text == NULL && to_step != SG_DONE) || (results != NULL && results_text == NULL)
                ? KM_ERR_NOMEM
                : store_signing_advance(x->c->store, x->sg.id, &p);
    free(state_text);
    free(results_text);
    if (r == KM_OK)
        x->committed_step = to_step;
    return r;
}

/* Records how the step went. *in_memory is set when the step succeeded and
 * the next one may start from x and state without reloading the session
 * (the step is not committed: see the top of this file). */
static enum step_result finish(struct sg_ctx *x, enum calls_verdict v, json_t *state,
                               json_t *results, uint64_t *retry_at, bool *in_memory)
{
    *in_memory = false;
    struct coord *c = x->c;
    const char *step = x->sg.step < SG_DONE ? step_name(x, (enum sg_step)x->sg.step) : "?";
    if (v == CALLS_OK && x->sg.step + 1 < SG_DONE) {
        /* Not committed: see the top of this file. */
        coord_count_step(c, false);
        *in_memory = true;
        return STEP_ADVANCED;
    }
    if (v == CALLS_OK) {
        int r = save_progress(x, SG_DONE, state, results);
        if (r == KM_ERR_STATE)
            return STEP_ADVANCED;
        if (r != KM_OK) {
            *retry_at = coord_backoff_at(c, 0);
            return STEP_RETRY;
        }
        coord_count_step(c, false);
        coord_count_end(c, COORD_SIGNING, true, false);
        coord_changed(c, x->sg.id);
        x->completed = true;
        log_info(LOG_COMP, "signing %s completed (%zu items%s)", x->sg.id,
                 json_array_size(x->items), x->pool ? ", pool nonces" : "");
        return STEP_IDLE;
    }
    if (v == CALLS_RETRY && (unsigned)x->sg.attempts + 1 < c->max_attempts) {
        *retry_at = coord_backoff_at(c, x->sg.attempts);
        log_warn(LOG_COMP, "signing %s: %s failed (attempt %d of %u), retrying: %s", x->sg.id, step,
                 x->sg.attempts + 1, c->max_attempts, x->err);
        coord_count_step(c, true);
        /* The retry is recorded for the step it failed at, so the steps run
         * in memory before it are committed first. */
        int at = x->sg.step, r = KM_OK;
        if (x->pool) /* never saved: the retry takes three rounds (top of this file) */
            at = x->committed_step;
        else if (x->committed_step != x->sg.step)
            r = save_progress(x, x->sg.step, state, NULL);
        if (r == KM_OK)
            r = store_signing_retry_later(c->store, x->sg.id, at, coord_wall_secs(*retry_at),
                                          x->err);
        /* Moved on meanwhile: nothing to retry. The database down: retry
         * from memory, so the session is not dropped until a restart. */
        return r == KM_ERR_STATE || r == KM_ERR_NOT_FOUND ? STEP_IDLE : STEP_RETRY;
    }
    char msg[COORD_ERR_MAX + 128];
    if (v == CALLS_RETRY)
        snprintf(msg, sizeof(msg), "%s failed after %u attempts: %s", step, c->max_attempts,
                 x->err);
    else
        snprintf(msg, sizeof(msg), "%s failed: %s", step, x->err);
    log_warn(LOG_COMP, "signing %s failed: %s", x->sg.id, msg);
    if (store_signing_fail(c->store, x->sg.id, msg) == KM_OK) {
        coord_count_end(c, COORD_SIGNING, false, false);
        /* Waiters hear of the failure now, not after the best-effort
         * cleanup (which waits up to 5 s on a hung enclave). */
        coord_changed(c, x->sg.id);
        clear_everywhere(x, false);
    }
    return STEP_IDLE;
}

/* Runs the session's current step; returns its verdict and fills state
 * (and results after the last step). */
static enum calls_verdict run_step(struct sg_ctx *x, json_t *state, json_t **results)
{
    enum calls_verdict v =
        coord_check_keys(x->c, &x->k, x->enclaves, x->nenclaves, x->err, sizeof(x->err));
    if (v != CALLS_OK)
        return v;
    switch ((enum sg_step)x->sg.step) {
    case SG_INIT:
        return x->pool ? step_sign(x, state) : step_init(x, state);
    case SG_NONCES:
        return step_nonces(x, state);
    case SG_FINALIZE:
        return step_finalize(x, state, results);
    case SG_DONE:
        break;
    }
    KM_BUG("signing %s: no step %d", x->sg.id, x->sg.step);
}

/* Clears the session on every enclave and starts it again on the
 * three-round path with a new command-id generation (top of this file). */
static void restart_fresh(struct sg_ctx *x, json_t *state)
{
    log_info(LOG_COMP, "signing %s: %s; starting again with fresh nonces", x->sg.id, x->err);
    clear_everywhere(x, true);
    x->pool = false;
    x->restart = false;
    x->restarts++;
    x->gen++;
    x->sg.step = SG_INIT;
    json_object_del(state, "nonces");
    json_object_del(state, "partials");
    json_object_set_new(state, "generation", json_integer((json_int_t)x->gen));
}

/*
 * Loads the session and its keygen once, then runs steps until the session
 * completes, fails or has to wait. A step's outputs stay in memory for the
 * next one: store_signing_advance only succeeds from the step it was given
 * (committed_step), so a session changed meanwhile by someone else (the
 * sweeper expiring it) stops the loop with KM_ERR_STATE at the commit, and
 * the caller reloads it.
 */
enum step_result coord_signing_step(struct coord *c, const char *id, bool resumed,
                                    uint64_t *retry_at_ms)
{
    struct sg_ctx *x = xcalloc(1, sizeof(*x));
    x->c = c;
    enum step_result result = STEP_IDLE;
    int lr = store_signing_get(c->store, id, &x->sg);
    if (lr != KM_OK && lr != KM_ERR_NOT_FOUND) { /* the database: look again later */
        *retry_at_ms = coord_backoff_at(c, COORD_DB_RETRY_ATTEMPTS);
        result = STEP_RETRY;
    }
    if (lr != KM_OK || x->sg.status != STORE_SIGNING_RUNNING || x->sg.step >= SG_DONE)
        goto out;
    x->committed_step = x->sg.step;
    int kr = store_keygen_get(c->store, x->sg.keygen_session_id, &x->k);
    if (kr != KM_OK && kr != KM_ERR_NOT_FOUND) { /* the database, not the keygen */
        *retry_at_ms = coord_backoff_at(c, COORD_DB_RETRY_ATTEMPTS);
        result = STEP_RETRY;
        goto out;
    }
    /* Parsed once; each step adds its outputs to it in place. */
    json_t *state = coord_doc_load(x->sg.state);
    if (state == NULL)
        state = json_object();
    x->items = coord_doc_load(x->sg.items);
    x->gen = (unsigned)json_integer_value(json_object_get(state, "generation"));
    json_t *results = NULL;
    enum calls_verdict v = CALLS_OK;
    if (kr != KM_OK || x->k.status != STORE_KEYGEN_COMPLETED) {
        snprintf(x->err, sizeof(x->err), "its keygen session %s is no longer usable%s%s",
                 x->sg.keygen_session_id, x->k.error ? ": " : "", x->k.error ? x->k.error : "");
        v = CALLS_FAIL;
    } else if (coord_session_enclaves(&x->k, x->enclaves, &x->nenclaves) != KM_OK) {
        KM_BUG("stored keygen session %s is malformed", x->k.id);
    }
    bool claimed = false;
    if (v == CALLS_OK) {
        v = coord_claim_enclaves(c, x->enclaves, x->nenclaves, x->err, sizeof(x->err));
        claimed = v == CALLS_OK;
    }
    if (v == CALLS_WAIT) {
        result = STEP_WAIT;
        goto done;
    }
    if (v == CALLS_OK)
        choose_path(x, resumed);
    for (;;) {
        if (v == CALLS_OK)
            v = run_step(x, state, &results);
        if (x->restart && x->restarts < MAX_RESTARTS) {
            restart_fresh(x, state);
            v = CALLS_OK;
            continue;
        }
        x->restart = false;
        bool in_memory;
        result = finish(x, v, state, results, retry_at_ms, &in_memory);
        if (!in_memory)
            break;
        /* No coord_changed here: a signing's status reports no step, so
         * its long-polls wait for completion or failure. */
        x->sg.step += x->pool && x->sg.step == SG_INIT ? 2 : 1; /* pool: sign, finalize */
        x->sg.attempts = 0;
    }
    if (claimed)
        coord_release_enclaves(c, x->enclaves, x->nenclaves);
    /* Off the signing's path: its waiters have heard of it already. */
    if (x->completed && plain_units(x) > 0)
        coord_pool_refill(c, x->sg.keygen_session_id, x->enclaves, x->nenclaves);
done:
    json_decref(state);
    json_decref(results);
out:
    release_claimed(x);
    json_decref(x->items);
    store_signing_clear(&x->sg);
    store_keygen_clear(&x->k);
    free(x);
    return result;
}
