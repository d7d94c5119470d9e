/*
 * routes_keygen.c - /api/v1/keygen/... (docs/API.md).
 *
 * Lifecycle: reserve (the gateway assigns users to enclaves and returns the
 * enclave keys to encrypt to) -> initialize (the coordinator's encrypted
 * session secret and key) -> participants register (each its key,
 * encrypted to its assigned enclave) -> the coordinator drives the enclaves
 * as soon as the last one registered -> completed (the aggregate key,
 * encrypted to the session secret).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "gateway/api.h"
#include "gateway/apikeys.h"
#include "gateway/audit_events.h"
#include "gateway/fanout.h"
#include "gateway/ratelimit.h"
#include "common/banned.h"

#define LOG_COMP "api"

/* A reserve records the key of every enclave it assigns (up to
 * PROTO_MAX_ENCLAVES) in the session's typed enclave keys. */
_Static_assert(STORE_MAX_ENCLAVES == PROTO_MAX_ENCLAVES, "a keygen's enclave keys");

/* Enclaves that can take part in a new session: reachable, key known. */
static size_t available_enclaves(struct gateway *gw, struct enclave_status *out, size_t cap,
                                 char *why, size_t whycap)
{
    size_t n = 0, total = enclave_mgr_count(gw->enclaves);
    why[0] = '\0';
    for (size_t i = 0; i < total && n < cap; i++) {
        enclave_mgr_status(gw->enclaves, i, &out[n]);
        if (out[n].healthy && out[n].key_known && !out[n].rotating) {
            n++;
        } else if (why[0] == '\0' && out[n].rotating) {
            snprintf(why, whycap, "enclave %u is rotating its key", out[n].id);
        } else if (why[0] == '\0') {
            snprintf(why, whycap, "enclave %u (%s): %s%s%s", out[n].id, out[n].address,
                     out[n].last_error, out[n].hint[0] ? "; " : "", out[n].hint);
        }
    }
    return n;
}

/* Stable choice of the coordinator enclave for a session id. */
static size_t pick_coordinator(const struct uuid *id, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < sizeof(id->b); i++)
        h = (h ^ id->b[i]) * 16777619u;
    return h % n;
}

void api_keygen_reserve(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    struct api_reserve body;
    struct store_api_key apikey = {0};
    /* Who may create work: a holder of an API key (or anyone, in the
     * development-only open mode). Checked before the body is parsed. */
    if (!gw->cfg->server.open_reserve && gw_api_key_check(gw, req, &apikey, resp) != KM_OK) {
        /* A 5xx (the database) is no refusal: it is in the gateway's log. */
        if (resp->status == 401)
            gw_audit_api_key_refused(gw, "keygen.reserve", req);
        return;
    }
    uint32_t wait_secs = 0;
    if (apikey.id[0] != '\0' && gw->reserves_per_key != NULL &&
        !rate_limiter_take(gw->reserves_per_key, apikey.id, clock_now_ms(), &wait_secs)) {
        resp->retry_after = wait_secs;
        gw_audit(gw, "keygen.reserve", "refused", req->request_id, apikey.id, NULL,
                 "reserves_per_sec_per_api_key");
        http_reply_error(resp, 429, "too_many_requests",
                         "API key %s reserves faster than %u per second: retry in %u s", apikey.id,
                         gw->cfg->server.reserves_per_sec_per_api_key, wait_secs);
        return;
    }
    if (api_body(&api_reserve_schema, &body, req, resp) != KM_OK)
        return;
    if (apikey.max_participants > 0 && body.n_expected_participants > apikey.max_participants) {
        char id[UUID_STR_LEN + 1];
        uuid_format(id, &body.keygen_session_id);
        gw_audit(gw, "keygen.reserve", "refused", req->request_id, apikey.id,
                 json_pack("{s:s, s:I}", "keygen_id", id, "participants",
                           (json_int_t)body.n_expected_participants),
                 "max_participants");
        http_reply_error(resp, 403, "forbidden",
                         "API key %s allows keygens of at most %u participants, not %zu", apikey.id,
                         apikey.max_participants, body.n_expected_participants);
        proto_clear(&api_reserve_schema, &body);
        return;
    }

    struct enclave_status *avail = XALLOC_ARRAY(struct enclave_status, PROTO_MAX_ENCLAVES);
    char why[2048];
    size_t navail = available_enclaves(gw, avail, PROTO_MAX_ENCLAVES, why, sizeof(why));
    struct store_keygen k = {0};
    json_t *reply = NULL;
    if (navail < PROTO_MIN_ENCLAVES) {
        http_reply_error(resp, 503, "service_unavailable",
                         "at least 2 enclaves must be reachable to start a keygen (%zu are): %s",
                         navail, why);
        goto out;
    }

    /* The coordinator user goes to the coordinator enclave; the others
     * round-robin from the next enclave on, so every session spans at least
     * two enclaves and no single enclave holds every key. */
    size_t coord = pick_coordinator(&body.keygen_session_id, navail);
    uuid_format(k.id, &body.keygen_session_id);
    uuid_format(k.coordinator_user_id, &body.coordinator_user_id);
    k.coordinator_enclave_id = avail[coord].id;
    k.timeout_secs = body.timeout_secs;
    k.max_signing_sessions = body.has_max_signing_sessions ? body.max_signing_sessions
                                                           : API_DEFAULT_MAX_SIGNING_SESSIONS;
    k.nparticipants = body.n_expected_participants;
    k.participants = XALLOC_ARRAY(struct store_participant, k.nparticipants);
    size_t next = 1;
    json_t *assignments = json_array(), *enclaves = json_array();
    for (size_t i = 0; i < k.nparticipants; i++) {
        struct store_participant *p = &k.participants[i];
        uuid_format(p->user_id, &body.expected_participants[i]);
        size_t e = coord;
        if (!uuid_equal(&body.expected_participants[i], &body.coordinator_user_id))
            e = (coord + next++) % navail;
        p->enclave_id = avail[e].id;
        if (store_keygen_enclave_key(&k, avail[e].id) == NULL) {
            /* Cannot fail: at most PROTO_MAX_ENCLAVES keys of
             * ENCLAVE_PUBKEY_HEX_LEN characters. */
            if (store_keygen_set_enclave_key(&k, avail[e].id, avail[e].public_key) != KM_OK)
                KM_BUG("enclave %u's key does not fit a keygen", avail[e].id);
            json_array_append_new(enclaves,
                                  json_pack("{s:I, s:s}", "enclave_id", (json_int_t)avail[e].id,
                                            "public_key", avail[e].public_key));
        }
        json_array_append_new(assignments, json_pack("{s:s, s:I, s:s}", "user_id", p->user_id,
                                                     "enclave_id", (json_int_t)avail[e].id,
                                                     "enclave_public_key", avail[e].public_key));
    }
    if (body.encrypted_taproot_tweak.len > 0)
        k.encrypted_taproot_tweak = xmalloc(2 * body.encrypted_taproot_tweak.len + 1);
    if (k.encrypted_taproot_tweak)
        api_hex(k.encrypted_taproot_tweak, 2 * body.encrypted_taproot_tweak.len + 1,
                body.encrypted_taproot_tweak.p, body.encrypted_taproot_tweak.len);
    if (body.n_subset_definitions > 0) {
        json_t *all = proto_encode(&api_reserve_schema, &body);
        k.subsets = coord_doc_dump(json_object_get(all, "subset_definitions"));
        json_decref(all);
    }

    snprintf(k.api_key_id, sizeof(k.api_key_id), "%s", apikey.id);
    api_hex(k.session_public_key, sizeof(k.session_public_key), body.session_public_key,
            PROTO_XONLY_LEN);
    struct store_reserve_quota quota = {apikey.keygens_per_hour, apikey.live_keygens};
    const char *which = NULL;
    /* Subsets that could not be written fail as the store's write would. */
    int r = body.n_subset_definitions > 0 && k.subsets == NULL
                ? KM_ERR_NOMEM
                : store_keygen_reserve(gw->store, &k, apikey.id[0] ? &quota : NULL, &which);
    if (r == KM_ERR_LIMIT) {
        json_decref(assignments);
        json_decref(enclaves);
        bool hourly = which != NULL && strcmp(which, "keygens_per_hour") == 0;
        resp->retry_after = hourly ? 600 : 30;
        gw_audit(gw, "keygen.reserve", "refused", req->request_id, apikey.id,
                 json_pack("{s:s}", "keygen_id", k.id), which);
        http_reply_error(resp, 429, "too_many_requests",
                         "API key %s reached its quota of %u %s: retry later", apikey.id,
                         hourly ? apikey.keygens_per_hour : apikey.live_keygens,
                         hourly ? "keygens per hour" : "keygens in progress");
        goto out;
    }
    if (r != KM_OK) {
        json_decref(assignments);
        json_decref(enclaves);
        char what[80];
        snprintf(what, sizeof(what), "keygen session %s", k.id);
        api_store_error(resp, r, what);
        goto out;
    }
    reply =
        json_pack("{s:s, s:I, s:s, s:o, s:o, s:i, s:I}", "keygen_session_id", k.id,
                  "coordinator_enclave_id", (json_int_t)k.coordinator_enclave_id,
                  "coordinator_public_key", avail[coord].public_key, "enclaves", enclaves,
                  "assignments", assignments, "expected_participants", (int)k.nparticipants,
                  "expires_at", (json_int_t)(clock_wall_ms() / 1000u + (uint64_t)k.timeout_secs));
    log_info(LOG_COMP, "keygen %s reserved: %zu participants, coordinator enclave %u", k.id,
             k.nparticipants, k.coordinator_enclave_id);
    gw_audit(
        gw, "keygen.reserve", "ok", req->request_id, apikey.id,
        json_pack("{s:s, s:I}", "keygen_id", k.id, "participants", (json_int_t)k.nparticipants),
        NULL);
    http_reply_json(resp, 200, reply);
out:
    free(avail);
    /* k borrows nothing from body; release both. */
    store_keygen_clear(&k);
    proto_clear(&api_reserve_schema, &body);
}

/* Loads the session named by path parameter 0. On failure the reply is set:
 * an unknown id answers like a wrong signature by `who` (the session's
 * routes are all authenticated: gw_auth_hide_unknown). */
static int load_session(struct gateway *gw, const struct http_request *req,
                        struct http_response *resp, struct store_keygen *k, const char *who)
{
    struct uuid id;
    char text[UUID_STR_LEN + 1];
    memset(k, 0, sizeof(*k));
    if (api_param_uuid(req, 0, "keygen session id", &id, text, resp) != KM_OK)
        return KM_ERR_INVALID;
    int r = store_keygen_get(gw->store, text, k);
    if (r == KM_ERR_NOT_FOUND) {
        (void)gw_auth_hide_unknown(gw, req, who, resp);
        return r;
    }
    if (r != KM_OK) {
        char what[80];
        snprintf(what, sizeof(what), "keygen session %s", text);
        api_store_error(resp, r, what);
    }
    return r;
}

/* Session-authenticated routes need an initialized session. */
static int session_auth(struct gateway *gw, const struct http_request *req,
                        const struct store_keygen *k, struct http_response *resp)
{
    if (k->session_public_key[0] == '\0') {
        http_reply_error(resp, 409, "conflict",
                         "keygen session %s is reserved but not initialized yet", k->id);
        return KM_ERR_STATE;
    }
    return gw_auth_check(gw, req, k->session_public_key, "the session key", resp);
}

static struct store_participant *find_participant(struct store_keygen *k, const char *user_id)
{
    for (size_t i = 0; i < k->nparticipants; i++) {
        if (strcmp(k->participants[i].user_id, user_id) == 0)
            return &k->participants[i];
    }
    return NULL;
}

/* The key a client encrypted to must be the one the session recorded for
 * that enclave at reserve, and still the enclave's current key. */
static int check_enclave_key(struct gateway *gw, const struct store_keygen *k, uint32_t eid,
                             const uint8_t given[PROTO_PUBKEY_LEN], const char *who,
                             struct http_response *resp)
{
    char given_hex[2 * PROTO_PUBKEY_LEN + 1], now[ENCLAVE_PUBKEY_HEX_LEN + 1];
    api_hex(given_hex, sizeof(given_hex), given, PROTO_PUBKEY_LEN);
    const char *then = store_keygen_enclave_key(k, eid);
    if (then == NULL || strcmp(then, given_hex) != 0) {
        http_reply_error(resp, 409, "conflict",
                         "%s must encrypt to enclave %u's key %.16s..., not %.16s...: fetch the "
                         "assignment with GET /api/v1/keygen/%s/slots",
                         who, eid, then ? then : "?", given_hex, k->id);
        return KM_ERR_STATE;
    }
    if (enclave_mgr_public_key(gw->enclaves, eid, now) == KM_OK && strcmp(now, then) != 0) {
        http_reply_error(resp, 409, "conflict",
                         "enclave %u restarted since this session was reserved (its key "
                         "changed): reserve a new keygen session",
                         eid);
        return KM_ERR_STATE;
    }
    return KM_OK;
}

/* A registration waits this long for its enclave's check. */
#define CHECK_KEY_TIMEOUT_MS 5000

/* Asks enclave eid whether a participant key opens with its current key
 * and is a valid secret key, so a key encrypted to the wrong enclave is a
 * 422 now, not a failed keygen after the last registration. On failure
 * the reply is set. */
static int check_key_at_enclave(struct gateway *gw, uint32_t eid, const struct proto_blob *key,
                                const char *who, struct http_response *resp)
{
    struct pool *pool = enclave_mgr_pool(gw->enclaves, eid);
    if (pool == NULL) {
        http_reply_error(resp, 503, "service_unavailable", "enclave %u is not configured", eid);
        return KM_ERR_NOT_FOUND;
    }
    char why[512];
    if (enclave_mgr_unresponsive(gw->enclaves, eid, why, sizeof(why))) {
        /* Not another HTTP thread held for a whole deadline. */
        http_reply_error(resp, 503, "service_unavailable",
                         "cannot check the key of %s: enclave %u is not answering (%s); retry "
                         "later",
                         who, eid, why);
        return KM_ERR_TIMEOUT;
    }
    struct proto_check_private_key_args a = {.encrypted_private_key = *key};
    json_t *args = proto_check_private_key_args_encode(&a);
    struct env_reply reply;
    struct km_error err;
    int r = pool_request(pool, &reply, "check_private_key", NULL, args, CHECK_KEY_TIMEOUT_MS, &err);
    if (r == KM_OK || r == KM_ERR_REMOTE)
        enclave_mgr_report_alive(gw->enclaves, eid);
    else
        enclave_mgr_report_failure(gw->enclaves, eid, &err);
    json_decref(args);
    if (r == KM_ERR_REMOTE && strcmp(reply.error.code, "busy") != 0)
        http_reply_error(resp, 422, "invalid_key",
                         "the encrypted private key of %s does not open at its enclave %u (%s): "
                         "encrypt it to that enclave's current public key (the one reserve "
                         "assigned)",
                         who, eid, reply.error.message);
    else if (r != KM_OK)
        http_reply_error(resp, 503, "service_unavailable",
                         "cannot check the key of %s with enclave %u: %s", who, eid, err.msg);
    env_reply_clear(&reply);
    return r;
}

static char *blob_hex(const struct proto_blob *b)
{
    char *out = xmalloc(2 * b->len + 1);
    api_hex(out, 2 * b->len + 1, b->p, b->len);
    return out;
}

void api_keygen_initialize(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    struct store_keygen k;
    struct api_initialize body;
    memset(&body, 0, sizeof(body));
    if (load_session(gw, req, resp, &k, "the session key given at reserve") != KM_OK)
        return;
    if (k.session_public_key[0] == '\0') {
        http_reply_error(resp, 409, "conflict",
                         "keygen session %s was reserved by an older gateway without a session "
                         "key and cannot be initialized: reserve a new session",
                         k.id);
        goto out;
    }
    /* Only whoever reserved: signed with the session key given at reserve
     * (and naming it). */
    if (gw_auth_check(gw, req, k.session_public_key, "the session key given at reserve", resp) !=
        KM_OK)
        goto out;
    if (api_body(&api_initialize_schema, &body, req, resp) != KM_OK)
        goto out;
    char given[2 * PROTO_XONLY_LEN + 1];
    api_hex(given, sizeof(given), body.session_public_key, PROTO_XONLY_LEN);
    if (strcmp(given, k.session_public_key) != 0) {
        http_reply_error(resp, 409, "conflict",
                         "session_public_key differs from the one given at reserve");
        goto out;
    }
    if (k.status != STORE_KEYGEN_RESERVED) {
        http_reply_error(resp, 409, "conflict",
                         "keygen session %s is %s, not reserved: it was already initialized", k.id,
                         api_keygen_state_name(k.status));
        goto out;
    }
    if (check_enclave_key(gw, &k, k.coordinator_enclave_id, body.enclave_public_key,
                          "the coordinator", resp) != KM_OK ||
        check_key_at_enclave(gw, k.coordinator_enclave_id, &body.coordinator_encrypted_private_key,
                             "the coordinator", resp) != KM_OK)
        goto out;

    struct store_participant coord = {0};
    snprintf(coord.user_id, sizeof(coord.user_id), "%s", k.coordinator_user_id);
    coord.enclave_id = k.coordinator_enclave_id;
    coord.encrypted_private_key = blob_hex(&body.coordinator_encrypted_private_key);
    api_hex(coord.auth_pubkey, sizeof(coord.auth_pubkey), body.coordinator_auth_pubkey,
            PROTO_XONLY_LEN);
    coord.require_signing_approval = body.coordinator_require_signing_approval;
    char session_pk[2 * PROTO_XONLY_LEN + 1];
    api_hex(session_pk, sizeof(session_pk), body.session_public_key, PROTO_XONLY_LEN);
    char *secret = blob_hex(&body.encrypted_session_secret);
    int r = store_keygen_initialize(gw->store, k.id, session_pk, secret, &coord);
    free(secret);
    free(coord.encrypted_private_key);
    if (r != KM_OK) {
        char what[80];
        snprintf(what, sizeof(what), "keygen session %s", k.id);
        api_store_error(resp, r, what);
        goto out;
    }
    coord_changed(gw->coord, k.id);
    gw_audit(gw, "keygen.initialize", "ok", req->request_id, k.api_key_id,
             json_pack("{s:s, s:s}", "keygen_id", k.id, "user_id", k.coordinator_user_id), NULL);
    log_info(LOG_COMP, "keygen %s initialized; waiting for %zu participant(s)", k.id,
             k.nparticipants - 1);
    http_reply_json(resp, 200,
                    json_pack("{s:s, s:s, s:i, s:i}", "keygen_session_id", k.id, "status",
                              "collecting_participants", "registered_participants", 1,
                              "expected_participants", (int)k.nparticipants));
out:
    proto_clear(&api_initialize_schema, &body);
    store_keygen_clear(&k);
}

void api_keygen_slots(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    struct store_keygen k;
    if (load_session(gw, req, resp, &k, "the session key") != KM_OK)
        return;
    /* User ids are the session's business: participants hold the session
     * secret, so they can sign. */
    if (session_auth(gw, req, &k, resp) != KM_OK) {
        store_keygen_clear(&k);
        return;
    }
    json_t *slots = json_array();
    for (size_t i = 0; i < k.nparticipants; i++) {
        const struct store_participant *p = &k.participants[i];
        json_array_append_new(slots,
                              json_pack("{s:s, s:I, s:s, s:b}", "user_id", p->user_id, "enclave_id",
                                        (json_int_t)p->enclave_id, "enclave_public_key",
                                        store_keygen_enclave_key(&k, p->enclave_id), "registered",
                                        p->registered));
    }
    http_reply_json(resp, 200,
                    json_pack("{s:s, s:s, s:I, s:o}", "keygen_session_id", k.id, "status",
                              api_keygen_state_name(k.status), "coordinator_enclave_id",
                              (json_int_t)k.coordinator_enclave_id, "slots", slots));
    store_keygen_clear(&k);
}

void api_keygen_register(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    struct store_keygen k;
    struct api_register body;
    memset(&body, 0, sizeof(body));
    if (load_session(gw, req, resp, &k, "the session key") != KM_OK)
        return;
    if (session_auth(gw, req, &k, resp) != KM_OK ||
        api_body(&api_register_schema, &body, req, resp) != KM_OK)
        goto out;
    struct store_participant p = {0};
    uuid_format(p.user_id, &body.user_id);
    struct store_participant *slot = find_participant(&k, p.user_id);
    if (slot == NULL) {
        http_reply_error(resp, 404, "not_found",
                         "user %s is not an expected participant of keygen session %s", p.user_id,
                         k.id);
        goto out;
    }
    char who[64];
    snprintf(who, sizeof(who), "participant %.36s", p.user_id);
    if (check_enclave_key(gw, &k, slot->enclave_id, body.enclave_public_key, who, resp) != KM_OK)
        goto out;
    /* A retry of the registration that counted needs no enclave. */
    if (!slot->registered &&
        check_key_at_enclave(gw, slot->enclave_id, &body.encrypted_private_key, who, resp) != KM_OK)
        goto out;
    p.enclave_id = slot->enclave_id;
    p.encrypted_private_key = blob_hex(&body.encrypted_private_key);
    api_hex(p.auth_pubkey, sizeof(p.auth_pubkey), body.auth_pubkey, PROTO_XONLY_LEN);
    p.require_signing_approval = body.require_signing_approval;
    size_t registered, expected;
    bool running;
    int r = store_keygen_register(gw->store, k.id, &p, &registered, &expected, &running);
    free(p.encrypted_private_key);
    if (r == KM_ERR_EXISTS) {
        http_reply_error(resp, 409, "conflict",
                         "participant %s is already registered with different data: a retry "
                         "must resend the first registration's body unchanged (encrypting the "
                         "key again gives another ciphertext, which is refused)",
                         p.user_id);
        goto out;
    }
    if (r == KM_ERR_STATE && k.status == STORE_KEYGEN_RESERVED) {
        http_reply_error(resp, 409, "conflict",
                         "keygen session %s is not initialized yet: the coordinator initializes "
                         "it first, then participants register",
                         k.id);
        goto out;
    }
    if (r == KM_ERR_STATE) {
        http_reply_error(resp, 409, "conflict",
                         "keygen session %s no longer accepts registrations (it is %s)", k.id,
                         api_keygen_state_name(k.status));
        goto out;
    }
    if (r != KM_OK) {
        api_store_error(resp, r, "participant slot");
        goto out;
    }
    coord_changed(gw->coord, k.id);
    gw_audit(gw, "keygen.register", "ok", req->request_id, k.api_key_id,
             json_pack("{s:s, s:s}", "keygen_id", k.id, "user_id", p.user_id), NULL);
    if (running) {
        log_info(LOG_COMP, "keygen %s: all %zu participants registered", k.id, expected);
        coord_wake(gw->coord, COORD_KEYGEN, k.id);
    }
    http_reply_json(resp, 200,
                    json_pack("{s:s, s:s, s:I, s:i, s:i, s:s}", "keygen_session_id", k.id,
                              "user_id", p.user_id, "assigned_enclave_id", (json_int_t)p.enclave_id,
                              "registered_participants", (int)registered, "expected_participants",
                              (int)expected, "status",
                              running ? "running" : "collecting_participants"));
out:
    proto_clear(&api_register_schema, &body);
    store_keygen_clear(&k);
}

static bool keygen_final(const struct store_keygen *k)
{
    return k->status == STORE_KEYGEN_COMPLETED || k->status == STORE_KEYGEN_FAILED;
}

static json_t *keygen_status_json(const struct store_keygen *k)
{
    json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:I, s:I}", "keygen_session_id", k->id, "status",
                          api_keygen_state_name(k->status), "expected_participants",
                          (int)k->nparticipants, "registered_participants", (int)k->nregistered,
                          "created_at", (json_int_t)k->created_at, "expires_at",
                          (json_int_t)(keygen_final(k) ? 0 : k->expires_at));
    if (k->status == STORE_KEYGEN_COMPLETED) {
        json_object_set_new(o, "encrypted_aggregate_public_key",
                            json_string(k->encrypted_aggregate_public_key
                                            ? k->encrypted_aggregate_public_key
                                            : ""));
        json_object_set_new(o, "aggregate_check", json_string(k->aggregate_check));
        json_t *subsets = coord_doc_load(k->subset_results);
        json_object_set_new(o, "subsets", subsets ? subsets : json_array());
        json_object_set_new(o, "completed_at", json_integer(k->completed_at));
    }
    if (k->error != NULL)
        json_object_set_new(o, "error", json_string(k->error));
    return o;
}

/* Long poll: re-reads *k until it is completed or failed, or wait_ms
 * passes. The change generation is read before each reload, so a change
 * between the reload and the wait is never missed; the last reload comes
 * after the wait, so a change made by another gateway whose notice was
 * lost still shows. */
static int wait_final(struct gateway *gw, struct store_keygen *k, uint32_t wait_ms)
{
    uint64_t until = clock_now_ms() + wait_ms;
    char id[37];
    memcpy(id, k->id, sizeof(id));
    while (!keygen_final(k)) {
        uint64_t gen = coord_generation(gw->coord, id);
        store_keygen_clear(k);
        int r = store_keygen_get(gw->store, id, k);
        if (r != KM_OK)
            return r;
        uint64_t now = clock_now_ms();
        if (keygen_final(k) || now >= until)
            break;
        coord_wait(gw->coord, id, gen, (uint32_t)(until - now));
    }
    return KM_OK;
}

void api_keygen_status(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    struct store_keygen k;
    uint32_t wait_ms;
    if (load_session(gw, req, resp, &k, "the session key") != KM_OK)
        return;
    if (session_auth(gw, req, &k, resp) == KM_OK && api_wait_ms(req, &wait_ms, resp) == KM_OK) {
        int r = wait_final(gw, &k, wait_ms);
        if (r == KM_OK)
            http_reply_json(resp, 200, keygen_status_json(&k));
        else
            api_store_error(resp, r, "keygen session");
    }
    store_keygen_clear(&k);
}

void api_keygen_delete(void *ud, const struct http_request *req, struct http_response *resp)
{
    struct gateway *gw = ud;
    struct store_keygen k;
    if (load_session(gw, req, resp, &k, "the session key") != KM_OK)
        return;
    if (session_auth(gw, req, &k, resp) != KM_OK)
        goto out;
    /* Wipe the enclaves first (best effort: an unreachable enclave lost
     * the session anyway or drops it on restart), then the records. */
    uint32_t enclaves[PROTO_MAX_ENCLAVES];
    size_t n = 0;
    struct fanout_call calls[PROTO_MAX_ENCLAVES];
    for (size_t i = 0; i < k.nparticipants; i++) {
        bool seen = false;
        for (size_t j = 0; j < n && !seen; j++)
            seen = enclaves[j] == k.participants[i].enclave_id;
        if (seen || n == PROTO_MAX_ENCLAVES)
            continue;
        enclaves[n] = k.participants[i].enclave_id;
        memset(&calls[n], 0, sizeof(calls[n]));
        calls[n].enclave_id = enclaves[n];
        calls[n].cmd = "clear_session";
        calls[n].args = json_pack("{s:s}", "keygen_session_id", k.id);
        fanout_command_id(&calls[n].command_id, k.id, "keygen_delete", enclaves[n]);
        n++;
    }
    fanout_run(gw->enclaves, calls, n, 5000);
    size_t cleared = 0;
    for (size_t i = 0; i < n; i++)
        cleared += calls[i].rc == KM_OK;
    fanout_clear(calls, n);
    int r = store_keygen_delete(gw->store, k.id);
    if (r != KM_OK) {
        api_store_error(resp, r, "keygen session");
        goto out;
    }
    coord_changed(gw->coord, k.id);
    gw_audit(gw, "keygen.delete", "ok", req->request_id, k.api_key_id,
             json_pack("{s:s, s:I}", "keygen_id", k.id, "enclaves_cleared", (json_int_t)cleared),
             NULL);
    log_info(LOG_COMP, "keygen %s deleted (%zu of %zu enclaves cleared)", k.id, cleared, n);
    http_reply_json(resp, 200,
                    json_pack("{s:s, s:b, s:i, s:i}", "keygen_session_id", k.id, "deleted", 1,
                              "enclaves_cleared", (int)cleared, "enclaves", (int)n));
out:
    store_keygen_clear(&k);
}
