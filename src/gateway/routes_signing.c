/*
 * routes_signing.c - /api/v1/signing/... (docs/API.md).
 *
 * A signing session belongs to a completed keygen. Its items (messages,
 * tweaks, adaptor configs) arrive encrypted to the session secret and are
 * passed to the enclaves as they are. Participants that registered with
 * require_signing_approval must approve first; the coordinator starts the
 * moment the last approval arrives (or at once when none is required).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "gateway/api.h"
#include "gateway/audit_events.h"
#include "common/banned.h"

#define LOG_COMP "api"

/* The routes parse a keygen's subsets and a signing's items (JSON text in
 * the store) once per request and pass them on. */

/* Whether user is a member of the keygen subset named subset_id (subsets:
 * the keygen's, parsed). */
static bool in_subset(const json_t *subsets, const char *subset_id, const char *user)
{
    size_t i, j;
    json_t *s, *m;
    json_array_foreach(subsets, i, s)
    {
        const char *sid = json_string_value(json_object_get(s, "subset_id"));
        if (sid == NULL || strcmp(sid, subset_id) != 0)
            continue;
        json_array_foreach(json_object_get(s, "participants"), j, m)
        {
            const char *id = json_string_value(m);
            if (id != NULL && strcmp(id, user) == 0)
                return true;
        }
    }
    return false;
}

/* Whether user signs some item: an item without a subset is signed by
 * everyone, a subset item by its members (docs/PROTOCOL.md). */
static bool takes_part(const json_t *subsets, const json_t *items, const char *user)
{
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        const char *sid = json_string_value(json_object_get(item, "subset_id"));
        if (sid == NULL || in_subset(subsets, sid, user))
            return true;
    }
    return false;
}

/* Participants that must approve before signing starts: those registered
 * with require_signing_approval that take part in some item (the enclaves
 * check exactly these). */
static size_t required_approvers(const struct store_keygen *k, const json_t *subsets,
                                 const json_t *items, const char **out)
{
    size_t n = 0;
    for (size_t i = 0; i < k->nparticipants; i++) {
        const struct store_participant *p = &k->participants[i];
        if (p->require_signing_approval && takes_part(subsets, items, p->user_id))
            out[n++] = p->user_id;
    }
    return n;
}

static bool subset_known(const json_t *subsets, const struct uuid *id)
{
    char text[UUID_STR_LEN + 1];
    uuid_format(text, id);
    size_t i;
    json_t *s;
    json_array_foreach(subsets, i, s)
    {
        const char *sid = json_string_value(json_object_get(s, "subset_id"));
        if (sid != NULL && strcmp(sid, text) == 0)
            return true;
    }
    return false;
}

static bool signing_final(const struct store_signing *sg)
{
    return sg->status == STORE_SIGNING_COMPLETED || sg->status == STORE_SIGNING_FAILED;
}

/*
 * The long-poll wait (docs/API.md "Long polling"): up to wait_ms, until the
 * session is completed or failed. Every coordinator change wakes it; it
 * re-reads only the status, so *woken tells the caller whether anything
 * happened that calls for reloading the whole session.
 * KM_ERR_NOT_FOUND if the session disappears.
 */
static int wait_until_final(struct gateway *gw, const char *id, enum store_signing_status status,
                            uint32_t wait_ms, bool *woken)
{
    *woken = false;
    uint64_t until = clock_now_ms() + wait_ms;
    for (;;) {
        /* The status is read once more when the wait ends: a change made
         * by another gateway whose notice was lost still shows. */
        uint64_t gen = coord_generation(gw->coord, id);
        enum store_signing_status now_status;
        int r = store_signing_status_get(gw->store, id, &now_status);
        if (r != KM_OK)
            return r;
        if (now_status != status)
            *woken = true;
        if (now_status == STORE_SIGNING_COMPLETED || now_status == STORE_SIGNING_FAILED)
            return KM_OK;
        uint64_t now = clock_now_ms();
        if (now >= until)
            return KM_OK;
        coord_wait(gw->coord, id, gen, (uint32_t)(until - now));
    }
}

static int reload_signing(struct gateway *gw, struct store_signing *sg)
{
    char id[37];
    memcpy(id, sg->id, sizeof(id));
    store_signing_clear(sg);
    return store_signing_get(gw->store, id, sg);
}

/*
 * POST /signing?wait_ms=N: waits like a status long-poll and, if the session
 * completed or failed meanwhile, puts its outcome in the reply as its status
 * would report it (status, results, completed_at, error; expires_at 0). The
 * creator saves a request per signing. If the wait ends without an outcome
 * the reply stays as created.
 */
static void add_outcome(struct gateway *gw, json_t *reply, const char *sid,
                        enum store_signing_status status, uint32_t wait_ms)
{
    bool woken;
    struct store_signing now;
    if (wait_until_final(gw, sid, status, wait_ms, &woken) != KM_OK || !woken ||
        store_signing_get(gw->store, sid, &now) != KM_OK)
        return;
    json_object_set_new(reply, "status", json_string(store_signing_status_name(now.status)));
    if (signing_final(&now))
        json_object_set_new(reply, "expires_at", json_integer(0));
    if (now.status == STORE_SIGNING_COMPLETED) {
        json_t *results = coord_doc_load(now.results);
        json_object_set_new(reply, "results", results ? results : json_array());
        json_object_set_new(reply, "completed_at", json_integer(now.completed_at));
    }
    if (now.error != NULL)
        json_object_set_new(reply, "error", json_string(now.error));
    store_signing_clear(&now);
}

void api_signing_create(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    struct proto_signing_init_args body;
    struct store_keygen k = {0};
    json_t *subsets = NULL;
    struct km_error err;
    const char **approvers = NULL;
    uint32_t wait_ms;
    if (api_wait_ms(req, &wait_ms, resp) != KM_OK)
        return;
    /* The body is the enclave's signing_init arguments minus approvals:
     * one schema validates both. */
    if (req->body_len == 0) {
        http_reply_error(resp, 400, "bad_request", "missing request body: send a JSON object");
        return;
    }
    if (proto_decode_bytes(&proto_signing_init_args_schema, &body, req->body, req->body_len,
                           &err) != KM_OK) {
        http_reply_error(resp, 400, "bad_request", "invalid request body: %s", err.msg);
        return;
    }
    char kid[UUID_STR_LEN + 1], sid[UUID_STR_LEN + 1];
    uuid_format(kid, &body.keygen_session_id);
    uuid_format(sid, &body.signing_session_id);
    if (body.n_approvals > 0) {
        http_reply_error(resp, 400, "bad_request",
                         "approvals are not part of this request: each participant sends its own "
                         "with POST /api/v1/signing/%s/approve/{user_id}",
                         sid);
        goto out;
    }
    int r = store_keygen_get(gw->store, kid, &k);
    if (r == KM_ERR_NOT_FOUND) { /* as a wrong signer: existence stays hidden */
        (void)gw_auth_hide_unknown(gw, req, "the keygen session key", resp);
        goto out;
    }
    if (r != KM_OK) {
        char what[80];
        snprintf(what, sizeof(what), "keygen session %s", kid);
        api_store_error(resp, r, what);
        goto out;
    }
    if (k.session_public_key[0] == '\0' ||
        gw_auth_check(gw, req, k.session_public_key, "the keygen session key", resp) != KM_OK) {
        if (k.session_public_key[0] == '\0')
            http_reply_error(resp, 409, "conflict", "keygen session %s is not initialized", kid);
        goto out;
    }
    if (k.status != STORE_KEYGEN_COMPLETED) {
        http_reply_error(resp, 409, "conflict", "keygen session %s is %s, not completed%s%s", kid,
                         api_keygen_state_name(k.status), k.error ? ": " : "",
                         k.error ? k.error : "");
        goto out;
    }
    subsets = coord_doc_load(k.subsets);
    for (size_t i = 0; i < body.n_items; i++) {
        if (!uuid_is_nil(&body.items[i].subset_id) &&
            !subset_known(subsets, &body.items[i].subset_id)) {
            http_reply_error(resp, 400, "bad_request",
                             "items[%zu].subset_id is not a subset of keygen session %s", i, kid);
            goto out;
        }
    }

    struct store_signing sg = {0};
    memcpy(sg.id, sid, sizeof(sg.id));
    memcpy(sg.keygen_session_id, kid, sizeof(sg.keygen_session_id));
    sg.timeout_secs = body.timeout_secs;
    json_t *encoded = proto_signing_init_args_encode(&body);
    const json_t *items = json_object_get(encoded, "items");
    sg.items = coord_doc_dump(items);
    approvers = xcalloc(k.nparticipants + 1, sizeof(*approvers));
    size_t nreq = required_approvers(&k, subsets, items, approvers);
    sg.status = nreq > 0 ? STORE_SIGNING_AWAITING_APPROVALS : STORE_SIGNING_RUNNING;
    /* Items that could not be written fail as the store's write would. The
     * creation's sync overlaps the coordinator's first round (below). */
    uint64_t durable = 0;
    r = sg.items != NULL ? store_signing_create_deferred(gw->store, &sg, &durable) : KM_ERR_NOMEM;
    free(sg.items);
    json_decref(encoded);
    if (r == KM_ERR_LIMIT) {
        http_reply_error(resp, 409, "conflict",
                         "quota exceeded: keygen session %s allows %u signing sessions", kid,
                         k.max_signing_sessions);
        goto out;
    }
    if (r != KM_OK) {
        char what[80];
        snprintf(what, sizeof(what), "signing session %s", sid);
        api_store_error(resp, r, what);
        goto out;
    }
    if (nreq == 0)
        coord_wake(gw->coord, COORD_SIGNING, sid);
    /* Durable before anyone outside learns of it, the creator first. */
    store_wait_durable(gw->store, durable);
    json_t *need = json_array();
    for (size_t i = 0; i < nreq; i++)
        json_array_append_new(need, json_string(approvers[i]));
    gw_audit(gw, "signing.create", "ok", req->request_id, k.api_key_id,
             json_pack("{s:s, s:s, s:I}", "signing_id", sid, "keygen_id", kid, "items",
                       (json_int_t)body.n_items),
             NULL);
    log_info(LOG_COMP, "signing %s created under keygen %s: %zu item(s), %zu approval(s) needed",
             sid, kid, body.n_items, nreq);
    json_t *reply =
        json_pack("{s:s, s:s, s:s, s:i, s:o, s:I}", "signing_session_id", sid, "keygen_session_id",
                  kid, "status", store_signing_status_name(sg.status), "items", (int)body.n_items,
                  "requires_approval_from", need, "expires_at",
                  (json_int_t)(clock_wall_ms() / 1000u + body.timeout_secs));
    /* While approvals are pending nothing can finish: answer at once (the
     * approvers cannot approve a session they have not been told of). */
    if (wait_ms > 0 && nreq == 0)
        add_outcome(gw, reply, sid, sg.status, wait_ms);
    http_reply_json(resp, 200, reply);
out:
    free(approvers);
    json_decref(subsets);
    store_keygen_clear(&k);
    proto_signing_init_args_clear(&body);
}

/*
 * Loads the signing session (param 0) and its keygen, and authenticates the
 * user (param 1) with the auth key it registered. On failure the reply is
 * set and everything released.
 */
static int load_for_user(struct gateway *gw, const struct http_request *req,
                         struct http_response *resp, struct store_signing *sg,
                         struct store_keygen *k, const struct store_participant **user)
{
    struct uuid sid, uid;
    char stext[UUID_STR_LEN + 1], utext[UUID_STR_LEN + 1];
    memset(sg, 0, sizeof(*sg));
    memset(k, 0, sizeof(*k));
    if (api_param_uuid(req, 0, "signing session id", &sid, stext, resp) != KM_OK ||
        api_param_uuid(req, 1, "user id", &uid, utext, resp) != KM_OK)
        return KM_ERR_INVALID;
    int r = store_signing_get(gw->store, stext, sg);
    if (r == KM_OK)
        r = store_keygen_get(gw->store, sg->keygen_session_id, k);
    *user = NULL;
    for (size_t i = 0; r == KM_OK && i < k->nparticipants && *user == NULL; i++) {
        if (strcmp(k->participants[i].user_id, utext) == 0 && k->participants[i].registered)
            *user = &k->participants[i];
    }
    /* An unknown session or user answers as a wrong signer would: a caller
     * who cannot sign learns nothing about which ids exist. */
    if (r == KM_ERR_NOT_FOUND || (r == KM_OK && *user == NULL)) {
        (void)gw_auth_hide_unknown(gw, req, "the participant's auth key", resp);
        r = KM_ERR_NOT_FOUND;
        goto fail;
    }
    if (r != KM_OK) {
        char what[80];
        snprintf(what, sizeof(what), "signing session %s", stext);
        api_store_error(resp, r, what);
        goto fail;
    }
    r = gw_auth_check(gw, req, (*user)->auth_pubkey, "the participant's auth key", resp);
    if (r == KM_OK)
        return KM_OK;
fail:
    store_signing_clear(sg);
    store_keygen_clear(k);
    return r;
}

void api_signing_approve(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    struct store_signing sg;
    struct store_keygen k;
    const struct store_participant *user;
    struct api_approve body;
    memset(&body, 0, sizeof(body));
    if (load_for_user(gw, req, resp, &sg, &k, &user) != KM_OK)
        return;
    const char **approvers = xcalloc(k.nparticipants + 1, sizeof(*approvers));
    json_t *subsets = NULL, *items = NULL;
    if (api_body(&api_approve_schema, &body, req, resp) != KM_OK)
        goto out;
    subsets = coord_doc_load(k.subsets);
    items = coord_doc_load(sg.items);
    size_t nreq = required_approvers(&k, subsets, items, approvers);
    bool needed = false;
    for (size_t i = 0; i < nreq && !needed; i++)
        needed = strcmp(approvers[i], user->user_id) == 0;
    if (!needed) {
        http_reply_error(resp, 409, "conflict",
                         "participant %s does not need to approve signing session %s (it did not "
                         "register with require_signing_approval, or signs no item)",
                         user->user_id, sg.id);
        goto out;
    }
    /* The enclaves accept approvals at most 300 s old and 60 s ahead: refuse
     * one that would make the signing fail later. */
    int64_t now = (int64_t)(clock_wall_ms() / 1000u);
    if ((int64_t)body.timestamp < now - GW_APPROVAL_MAX_AGE_SECS ||
        (int64_t)body.timestamp > now + GW_APPROVAL_MAX_AHEAD_SECS) {
        http_reply_error(resp, 400, "bad_request",
                         "approval timestamp %llu is outside the accepted window (at most %d s "
                         "old, %d s ahead of %lld): sign it with the current time",
                         (unsigned long long)body.timestamp, GW_APPROVAL_MAX_AGE_SECS,
                         GW_APPROVAL_MAX_AHEAD_SECS, (long long)now);
        goto out;
    }
    struct store_approval a = {0};
    memcpy(a.user_id, user->user_id, sizeof(a.user_id));
    a.timestamp = (int64_t)body.timestamp;
    api_hex(a.signature, sizeof(a.signature), body.signature, PROTO_SIG_LEN);
    bool running;
    int r = store_signing_approve(gw->store, sg.id, &a, nreq, approvers, &running);
    if (r == KM_ERR_STATE) {
        http_reply_error(resp, 409, "conflict", "signing session %s is %s: approvals are closed",
                         sg.id, store_signing_status_name(sg.status));
        goto out;
    }
    if (r != KM_OK) {
        api_store_error(resp, r, "signing session");
        goto out;
    }
    coord_changed(gw->coord, sg.id);
    gw_audit(gw, "signing.approve", "ok", req->request_id, k.api_key_id,
             json_pack("{s:s, s:s, s:s}", "signing_id", sg.id, "keygen_id", k.id, "user_id",
                       user->user_id),
             NULL);
    if (running) {
        log_info(LOG_COMP, "signing %s: all %zu approvals received", sg.id, nreq);
        coord_wake(gw->coord, COORD_SIGNING, sg.id);
    }
    http_reply_json(resp, 200,
                    json_pack("{s:s, s:s, s:s}", "signing_session_id", sg.id, "user_id",
                              user->user_id, "status", running ? "running" : "awaiting_approvals"));
out:
    free(approvers);
    json_decref(subsets);
    json_decref(items);
    proto_clear(&api_approve_schema, &body);
    store_signing_clear(&sg);
    store_keygen_clear(&k);
}

static json_t *signing_status_json(const struct store_signing *sg, const struct store_keygen *k)
{
    json_t *required = json_array(), *approved = json_array();
    json_t *subsets = coord_doc_load(k->subsets), *items = coord_doc_load(sg->items);
    const char **need = xcalloc(k->nparticipants + 1, sizeof(*need));
    size_t nneed = required_approvers(k, subsets, items, need);
    for (size_t i = 0; i < nneed; i++)
        json_array_append_new(required, json_string(need[i]));
    free(need);
    for (size_t i = 0; i < sg->napprovals; i++)
        json_array_append_new(approved, json_string(sg->approvals[i].user_id));
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:{s:o, s:o}, s:I, s:I}", "signing_session_id",
                          sg->id, "keygen_session_id", sg->keygen_session_id, "status",
                          store_signing_status_name(sg->status), "items",
                          (int)json_array_size(items), "approvals", "required", required,
                          "approved", approved, "created_at", (json_int_t)sg->created_at,
                          "expires_at", (json_int_t)(signing_final(sg) ? 0 : sg->expires_at));
    json_decref(subsets);
    json_decref(items);
    if (sg->status == STORE_SIGNING_COMPLETED) {
        json_t *results = coord_doc_load(sg->results);
        json_object_set_new(o, "results", results ? results : json_array());
        json_object_set_new(o, "completed_at", json_integer(sg->completed_at));
    }
    if (sg->error != NULL)
        json_object_set_new(o, "error", json_string(sg->error));
    return o;
}

void api_signing_status(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    struct store_signing sg;
    struct store_keygen k;
    const struct store_participant *user;
    uint32_t wait_ms;
    if (load_for_user(gw, req, resp, &sg, &k, &user) != KM_OK)
        return;
    if (api_wait_ms(req, &wait_ms, resp) != KM_OK)
        goto out;
    if (!signing_final(&sg) && wait_ms > 0) {
        bool woken;
        int r = wait_until_final(gw, sg.id, sg.status, wait_ms, &woken);
        if (r == KM_OK && woken)
            r = reload_signing(gw, &sg);
        if (r != KM_OK) {
            api_store_error(resp, r, "signing session");
            goto out;
        }
    }
    http_reply_json(resp, 200, signing_status_json(&sg, &k));
out:
    store_signing_clear(&sg);
    store_keygen_clear(&k);
}
