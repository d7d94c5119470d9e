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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "gateway/coord_internal.h"
#include "common/banned.h"

#define LOG_COMP "coordinator"

enum sg_step {
    SG_INIT = 0,
    SG_NONCES,
    SG_FINALIZE,
    SG_DONE,
};

static const char *const sg_step_names[] = {"signing_init", "signing_distribute_nonces",
                                            "signing_finalize"};

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
};

static void call_prepare(struct fanout_call *call, struct sg_ctx *x, uint32_t eid, const char *cmd,
                         json_t *args, const char *step)
{
    memset(call, 0, sizeof(*call));
    call->enclave_id = eid;
    call->cmd = cmd;
    call->args = args;
    fanout_command_id(&call->command_id, x->sg.id, step, eid);
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

/* Sends cmd with args to every enclave of the session (args built per
 * enclave by the same JSON), then checks every result with decode. */
static enum calls_verdict fan_to_all(struct sg_ctx *x, const char *cmd, json_t *args,
                                     enum sg_step step, json_t *collect,
                                     const struct proto_schema *result_schema)
{
    struct fanout_call calls[PROTO_MAX_ENCLAVES];
    for (size_t i = 0; i < x->nenclaves; i++)
        call_prepare(&calls[i], x, x->enclaves[i], cmd, json_incref(args), sg_step_names[step]);
    fanout_run(x->c->em, calls, x->nenclaves, x->c->call_timeout_ms);
    if (step == SG_INIT)
        restore_missing_keygens(x, calls, x->nenclaves);
    enum calls_verdict v = coord_calls_verdict(x->c, calls, x->nenclaves, x->err, sizeof(x->err));
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

static enum calls_verdict step_init(struct sg_ctx *x, json_t *state)
{
    json_t *args = json_pack("{s:s, s:s, s:i, s:O}", "signing_session_id", x->sg.id,
                             "keygen_session_id", x->sg.keygen_session_id, "timeout_secs",
                             (int)x->sg.timeout_secs, "items", x->items);
    if (x->sg.napprovals > 0)
        json_object_set_new(args, "approvals", approvals_json(&x->sg));
    json_t *nonces = json_object();
    enum calls_verdict v =
        fan_to_all(x, "signing_init", args, SG_INIT, nonces, &proto_signing_init_result_schema);
    if (v == CALLS_OK)
        json_object_set(state, "nonces", nonces);
    json_decref(nonces);
    json_decref(args);
    return v;
}

static enum calls_verdict step_nonces(struct sg_ctx *x, json_t *state)
{
    json_t *args = json_pack("{s:s, s:o}", "signing_session_id", x->sg.id, "nonces",
                             union_of(state, "nonces", "nonces"));
    json_t *partials = json_object();
    enum calls_verdict v = fan_to_all(x, "signing_distribute_nonces", args, SG_NONCES, partials,
                                      &proto_signing_distribute_nonces_result_schema);
    if (v == CALLS_OK)
        json_object_set(state, "partials", partials);
    json_decref(partials);
    json_decref(args);
    return v;
}

static enum calls_verdict step_finalize(struct sg_ctx *x, json_t *state, json_t **results)
{
    struct fanout_call call;
    json_t *args = json_pack("{s:s, s:o}", "signing_session_id", x->sg.id, "partial_signatures",
                             union_of(state, "partials", "partial_signatures"));
    call_prepare(&call, x, x->k.coordinator_enclave_id, "signing_finalize", args,
                 sg_step_names[SG_FINALIZE]);
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
static void clear_everywhere(struct sg_ctx *x)
{
    struct fanout_call calls[PROTO_MAX_ENCLAVES];
    size_t n = 0;
    char why[512];
    for (size_t i = 0; i < x->nenclaves; i++) {
        /* A hung enclave would hold this worker for the whole deadline. */
        if (enclave_mgr_unresponsive(x->c->em, x->enclaves[i], why, sizeof(why)))
            continue;
        call_prepare(&calls[n++], x, x->enclaves[i], "clear_session",
                     json_pack("{s:s}", "signing_session_id", x->sg.id), "clear_session");
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
    const char *step = x->sg.step < SG_DONE ? sg_step_names[x->sg.step] : "?";
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
        log_info(LOG_COMP, "signing %s completed (%zu items)", x->sg.id, json_array_size(x->items));
        return STEP_IDLE;
    }
    if (v == CALLS_RETRY && (unsigned)x->sg.attempts + 1 < c->max_attempts) {
        *retry_at = coord_backoff_at(c, x->sg.attempts);
        log_warn(LOG_COMP, "signing %s: %s failed (attempt %d of %u), retrying: %s", x->sg.id, step,
                 x->sg.attempts + 1, c->max_attempts, x->err);
        coord_count_step(c, true);
        /* The retry is recorded for the step it failed at, so the steps run
         * in memory before it are committed first. */
        int r = x->committed_step == x->sg.step ? KM_OK : save_progress(x, x->sg.step, state, NULL);
        if (r == KM_OK)
            r = store_signing_retry_later(c->store, x->sg.id, x->sg.step,
                                          coord_wall_secs(*retry_at), x->err);
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
        clear_everywhere(x);
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
        return step_init(x, state);
    case SG_NONCES:
        return step_nonces(x, state);
    case SG_FINALIZE:
        return step_finalize(x, state, results);
    case SG_DONE:
        break;
    }
    KM_BUG("signing %s: no step %d", x->sg.id, x->sg.step);
}

/*
 * Loads the session and its keygen once, then runs steps until the session
 * completes, fails or has to wait. A step's outputs stay in memory for the
 * next one: store_signing_advance only succeeds from the step it was given
 * (committed_step), so a session changed meanwhile by someone else (the
 * sweeper expiring it) stops the loop with KM_ERR_STATE at the commit, and
 * the caller reloads it.
 */
enum step_result coord_signing_step(struct coord *c, const char *id, uint64_t *retry_at_ms)
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
    for (;;) {
        if (v == CALLS_OK)
            v = run_step(x, state, &results);
        bool in_memory;
        result = finish(x, v, state, results, retry_at_ms, &in_memory);
        if (!in_memory)
            break;
        /* No coord_changed here: a signing's status reports no step, so
         * its long-polls wait for completion or failure. */
        x->sg.step++;
        x->sg.attempts = 0;
    }
    if (claimed)
        coord_release_enclaves(c, x->enclaves, x->nenclaves);
done:
    json_decref(state);
    json_decref(results);
out:
    json_decref(x->items);
    store_signing_clear(&x->sg);
    store_keygen_clear(&x->k);
    free(x);
    return result;
}
