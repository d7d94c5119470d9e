#include "client/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/hex.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "crypto/auth.h"
#include "crypto/schnorr.h"
#include "common/banned.h"

/* ---- small helpers ------------------------------------------------------ */

/* Moves a blob into a JSON hex string (the blob is cleared). */
static json_t *blob_json(struct proto_blob *b)
{
    char *h = xmalloc(2 * b->len + 1);
    hex_encode(h, 2 * b->len + 1, b->p, b->len);
    proto_blob_clear(b);
    json_t *s = json_string(h);
    free(h);
    return s;
}

static json_t *hex_json(const uint8_t *p, size_t n)
{
    char buf[2 * 66 + 1];
    if (n > 66)
        KM_BUG("hex_json: %zu bytes", n);
    return json_string(hex_encode(buf, sizeof(buf), p, n));
}

static int hex_field(uint8_t *out, size_t n, const json_t *obj, const char *key,
                     struct km_error *err)
{
    const char *h = json_string_value(json_object_get(obj, key));
    if (h == NULL || hex_decode_exact(out, n, h, strlen(h)) != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0, "gateway reply: bad or missing \"%s\"", key);
    return KM_OK;
}

static int blob_field(struct proto_blob *out, const json_t *obj, const char *key,
                      struct km_error *err)
{
    memset(out, 0, sizeof(*out));
    const char *h = json_string_value(json_object_get(obj, key));
    size_t n = h ? strlen(h) : 0;
    if (h == NULL || n == 0 || n % 2 != 0 || n / 2 > PROTO_SEALED_LARGE_MAX)
        return km_error_set(err, KM_ERR_INVALID, 0, "gateway reply: bad or missing \"%s\"", key);
    out->p = xmalloc(n / 2);
    if (hex_decode(out->p, n / 2, &out->len, h, n) != KM_OK) {
        proto_blob_clear(out);
        return km_error_set(err, KM_ERR_INVALID, 0, "gateway reply: \"%s\" is not hex", key);
    }
    return KM_OK;
}

/*
 * One REST call that must answer 200. Takes ownership of body. On success
 * *reply holds the parsed body (caller decrefs).
 */
static int call_ok(struct rest_client *c, json_t **reply, const char *method, const char *path,
                   json_t *body, const struct keypair *signer, struct km_error *err)
{
    struct rest_response r;
    *reply = NULL;
    int rc = rest_call(c, &r, method, path, body, signer, err);
    json_decref(body);
    if (rc != KM_OK)
        return rc;
    if (r.status != 200 || r.body == NULL) {
        rc = km_error_set(err, KM_ERR_REMOTE, 0, "%s %s: HTTP %ld: %s", method, path, r.status,
                          rest_error_message(&r));
    } else {
        *reply = json_incref(r.body);
    }
    rest_response_clear(&r);
    return rc;
}

/* ---- keygen --------------------------------------------------------------- */

int client_keygen_new(struct client_keygen *k, size_t nusers, const struct proto_tweak *tweak)
{
    memset(k, 0, sizeof(*k));
    if (nusers < PROTO_MIN_PARTICIPANTS || nusers > PROTO_MAX_PARTICIPANTS)
        return KM_ERR_RANGE;
    int r = uuid_v7_new(&k->id);
    if (r == KM_OK)
        r = participant_secret_new(k->secret);
    if (r == KM_OK)
        r = auth_derive_keypair(&k->session_auth, k->secret, sizeof(k->secret),
                                CLIENT_SESSION_AUTH_SALT, CLIENT_SESSION_AUTH_INFO);
    uuid_format(k->id_s, &k->id);
    if (tweak != NULL)
        k->tweak = *tweak;
    k->nusers = nusers;
    k->users = XALLOC_ARRAY(struct client_user, nusers);
    for (size_t i = 0; r == KM_OK && i < nusers; i++) {
        struct client_user *u = &k->users[i];
        r = uuid_v7_new(&u->id);
        if (r == KM_OK)
            r = keypair_generate(&u->kp);
        if (r == KM_OK)
            r = participant_auth_keypair(&u->auth, &u->kp, &k->id);
        uuid_format(u->id_s, &u->id);
    }
    if (r != KM_OK)
        client_keygen_clear(k);
    return r;
}

int client_keygen_use_key(struct client_keygen *k, size_t user, const struct keypair *kp)
{
    if (user >= k->nusers)
        return KM_ERR_RANGE;
    struct client_user *u = &k->users[user];
    keypair_clear(&u->kp);
    keypair_clear(&u->auth);
    u->kp = *kp;
    return participant_auth_keypair(&u->auth, &u->kp, &k->id);
}

void client_keygen_clear(struct client_keygen *k)
{
    for (size_t i = 0; i < k->nusers; i++) {
        keypair_clear(&k->users[i].kp);
        keypair_clear(&k->users[i].auth);
    }
    free(k->users);
    keypair_clear(&k->session_auth);
    secure_wipe(k->secret, sizeof(k->secret));
    memset(k, 0, sizeof(*k));
}

static struct client_user *user_by_id(struct client_keygen *k, const char *id)
{
    for (size_t i = 0; id != NULL && i < k->nusers; i++) {
        if (strcmp(k->users[i].id_s, id) == 0)
            return &k->users[i];
    }
    return NULL;
}

int client_keygen_reserve(struct rest_client *c, struct client_keygen *k, uint32_t timeout_secs,
                          struct km_error *err)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < k->nusers; i++)
        json_array_append_new(ids, json_string(k->users[i].id_s));
    json_t *body =
        json_pack("{s:s, s:s, s:o, s:i, s:o}", "keygen_session_id", k->id_s, "coordinator_user_id",
                  k->users[0].id_s, "expected_participants", ids, "timeout_secs", (int)timeout_secs,
                  "session_public_key", hex_json(k->session_auth.xonly, 32));
    if (k->max_signing_sessions > 0)
        json_object_set_new(body, "max_signing_sessions", json_integer(k->max_signing_sessions));
    if (k->tweak.type != PROTO_TWEAK_NONE) {
        struct proto_blob sealed = {0};
        int r = participant_seal_tweak(&sealed, k->secret, &k->tweak);
        if (r != KM_OK) {
            json_decref(body);
            return km_error_set(err, r, 0, "cannot encrypt the tweak");
        }
        json_object_set_new(body, "encrypted_taproot_tweak", blob_json(&sealed));
    }
    json_t *res;
    int r = call_ok(c, &res, "POST", "/api/v1/keygen/reserve", body, NULL, err);
    if (r != KM_OK)
        return r;
    k->coordinator_enclave_id =
        (uint32_t)json_integer_value(json_object_get(res, "coordinator_enclave_id"));
    r = hex_field(k->coordinator_pk, PROTO_PUBKEY_LEN, res, "coordinator_public_key", err);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(res, "assignments"), i, a)
    {
        struct client_user *u = user_by_id(k, json_string_value(json_object_get(a, "user_id")));
        if (u == NULL || r != KM_OK)
            continue;
        u->enclave_id = (uint32_t)json_integer_value(json_object_get(a, "enclave_id"));
        r = hex_field(u->enclave_pk, PROTO_PUBKEY_LEN, a, "enclave_public_key", err);
    }
    json_decref(res);
    return r;
}

int client_keygen_initialize(struct rest_client *c, struct client_keygen *k, struct km_error *err)
{
    struct proto_blob secret = {0}, key = {0};
    struct client_user *coord = &k->users[0];
    int r =
        client_attest_enclave(c, k->trust, k->coordinator_enclave_id, k->coordinator_pk, NULL, err);
    if (r != KM_OK)
        return r;
    r = participant_encrypt_secret(&secret, k->coordinator_pk, k->secret);
    if (r == KM_OK)
        r = participant_encrypt_private_key(&key, k->coordinator_pk, &coord->kp);
    if (r != KM_OK) {
        proto_blob_clear(&secret);
        proto_blob_clear(&key);
        return km_error_set(err, r, 0, "cannot encrypt to the coordinator enclave's key");
    }
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/keygen/%s/initialize", k->id_s);
    json_t *body = json_pack(
        "{s:o, s:o, s:o, s:o, s:b, s:o}", "session_public_key", hex_json(k->session_auth.xonly, 32),
        "encrypted_session_secret", blob_json(&secret), "coordinator_encrypted_private_key",
        blob_json(&key), "coordinator_auth_pubkey", hex_json(coord->auth.xonly, 32),
        "coordinator_require_signing_approval", coord->require_approval, "enclave_public_key",
        hex_json(k->coordinator_pk, PROTO_PUBKEY_LEN));
    json_t *res;
    /* Signed with the session key named at reserve: only the reserver may. */
    r = call_ok(c, &res, "POST", path, body, &k->session_auth, err);
    json_decref(res);
    return r;
}

int client_keygen_register(struct rest_client *c, struct client_keygen *k, size_t user,
                           struct km_error *err)
{
    struct client_user *u = &k->users[user];
    struct proto_blob key = {0};
    int r = client_attest_enclave(c, k->trust, u->enclave_id, u->enclave_pk, NULL, err);
    if (r != KM_OK)
        return r;
    r = participant_encrypt_private_key(&key, u->enclave_pk, &u->kp);
    if (r != KM_OK)
        return km_error_set(err, r, 0, "cannot encrypt to enclave %u's key", u->enclave_id);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/keygen/%s/participants", k->id_s);
    json_t *body = json_pack(
        "{s:s, s:o, s:o, s:b, s:o}", "user_id", u->id_s, "encrypted_private_key", blob_json(&key),
        "auth_pubkey", hex_json(u->auth.xonly, 32), "require_signing_approval", u->require_approval,
        "enclave_public_key", hex_json(u->enclave_pk, PROTO_PUBKEY_LEN));
    json_t *res;
    r = call_ok(c, &res, "POST", path, body, &k->session_auth, err);
    json_decref(res);
    return r;
}

/* Opens the aggregate key and checks it against the local computation. */
static int check_aggregate(struct client_keygen *k, const json_t *status, struct km_error *err)
{
    struct proto_blob ct;
    int r = blob_field(&ct, status, "encrypted_aggregate_public_key", err);
    if (r != KM_OK)
        return r;
    r = participant_open_aggregate_key(k->aggregate, err, k->secret, &ct, false);
    proto_blob_clear(&ct);
    if (r != KM_OK)
        return km_error_set(err, KM_ERR_CRYPTO, 0, "cannot decrypt the aggregate key: %s",
                            err->msg);
    uint8_t(*pks)[PROTO_PUBKEY_LEN] = xcalloc(k->nusers, PROTO_PUBKEY_LEN);
    for (size_t i = 0; i < k->nusers; i++)
        memcpy(pks[i], k->users[i].kp.pubkey, PROTO_PUBKEY_LEN);
    uint8_t mine[PROTO_PUBKEY_LEN];
    r = participant_aggregate_key(mine, k->xonly, (const uint8_t(*)[PROTO_PUBKEY_LEN])pks,
                                  k->nusers, &k->tweak);
    free(pks);
    if (r != KM_OK || memcmp(mine, k->aggregate, PROTO_PUBKEY_LEN) != 0)
        return km_error_set(err, KM_ERR_CRYPTO, 0,
                            "the aggregate key from the enclaves differs from the one computed "
                            "from the participants' keys");
    k->completed = true;
    return KM_OK;
}

/* GET path signed by signer, re-asking until status is final or wait_ms
 * is spent (each request long-polls up to 30 s). */
static int wait_final(struct rest_client *c, json_t **out, const char *path_base,
                      const struct keypair *signer, uint32_t wait_ms, struct km_error *err)
{
    uint64_t until = clock_now_ms() + wait_ms;
    for (;;) {
        uint64_t now = clock_now_ms();
        uint32_t chunk = now >= until ? 0 : (uint32_t)(until - now);
        if (chunk > 30000)
            chunk = 30000;
        char path[256];
        snprintf(path, sizeof(path), "%s?wait_ms=%u", path_base, chunk);
        int r = call_ok(c, out, "GET", path, NULL, signer, err);
        if (r != KM_OK)
            return r;
        const char *st = json_string_value(json_object_get(*out, "status"));
        if (st != NULL && (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0))
            return KM_OK;
        if (clock_now_ms() >= until) {
            r = km_error_set(err, KM_ERR_TIMEOUT, 0, "still %s after %u ms", st ? st : "?",
                             wait_ms);
            json_decref(*out);
            *out = NULL;
            return r;
        }
        json_decref(*out);
    }
}

int client_keygen_wait(struct rest_client *c, struct client_keygen *k, uint32_t wait_ms,
                       struct km_error *err)
{
    char path[128];
    json_t *res;
    snprintf(path, sizeof(path), "/api/v1/keygen/%s/status", k->id_s);
    int r = wait_final(c, &res, path, &k->session_auth, wait_ms, err);
    if (r != KM_OK)
        return r;
    if (strcmp(json_string_value(json_object_get(res, "status")), "failed") == 0)
        r = km_error_set(err, KM_ERR_STATE, 0, "keygen %s failed: %s", k->id_s,
                         json_string_value(json_object_get(res, "error")));
    else
        r = check_aggregate(k, res, err);
    json_decref(res);
    return r;
}

int client_keygen_run(struct rest_client *c, struct client_keygen *k, uint32_t timeout_secs,
                      uint32_t wait_ms, struct km_error *err)
{
    int r = client_keygen_reserve(c, k, timeout_secs, err);
    if (r == KM_OK)
        r = client_keygen_initialize(c, k, err);
    for (size_t i = 1; r == KM_OK && i < k->nusers; i++)
        r = client_keygen_register(c, k, i, err);
    if (r == KM_OK)
        r = client_keygen_wait(c, k, wait_ms, err);
    return r;
}

/* ---- signing ------------------------------------------------------------ */

int client_signing_new(struct client_signing *s, const uint8_t (*msgs)[PROTO_MSG_LEN], size_t n)
{
    memset(s, 0, sizeof(*s));
    if (n == 0 || n > PROTO_MAX_ITEMS)
        return KM_ERR_RANGE;
    int r = uuid_v7_new(&s->id);
    uuid_format(s->id_s, &s->id);
    s->nitems = n;
    s->item_ids = XALLOC_ARRAY(struct uuid, n);
    s->msgs = xcalloc(n, PROTO_MSG_LEN);
    s->sigs = xcalloc(n, PROTO_SIG_LEN);
    memcpy(s->msgs, msgs, n * PROTO_MSG_LEN);
    for (size_t i = 0; r == KM_OK && i < n; i++)
        r = uuid_v7_new(&s->item_ids[i]);
    if (r != KM_OK)
        client_signing_clear(s);
    return r;
}

void client_signing_clear(struct client_signing *s)
{
    free(s->tweaks);
    free(s->item_ids);
    free(s->msgs);
    free(s->sigs);
    memset(s, 0, sizeof(*s));
}

int client_signing_set_tweak(struct client_signing *s, size_t i, const struct client_keygen *k,
                             const struct proto_tweak *tweak)
{
    if (i >= s->nitems)
        return KM_ERR_RANGE;
    if (s->tweaks == NULL)
        s->tweaks = xcalloc(s->nitems, sizeof(*s->tweaks));
    uint8_t(*pks)[PROTO_PUBKEY_LEN] = xcalloc(k->nusers, PROTO_PUBKEY_LEN);
    for (size_t u = 0; u < k->nusers; u++)
        memcpy(pks[u], k->users[u].kp.pubkey, PROTO_PUBKEY_LEN);
    struct client_item_tweak *t = &s->tweaks[i];
    uint8_t full[PROTO_PUBKEY_LEN];
    int r = participant_aggregate_key(full, t->xonly, (const uint8_t(*)[PROTO_PUBKEY_LEN])pks,
                                      k->nusers, tweak);
    free(pks);
    t->set = r == KM_OK;
    t->tweak = *tweak;
    return r;
}

const uint8_t *client_signing_item_key(const struct client_signing *s,
                                       const struct client_keygen *k, size_t i)
{
    if (s->tweaks != NULL && s->tweaks[i].set)
        return s->tweaks[i].xonly;
    return k->xonly;
}

static int take_outcome(const struct client_keygen *k, struct client_signing *s, const json_t *res,
                        struct km_error *err);

bool client_signing_done(const struct client_signing *s)
{
    return strcmp(s->status, "completed") == 0;
}

/* Item i of the POST /signing body: its id, sealed message and, when it
 * has one, its sealed tweak. */
static int item_json(json_t **out, const struct client_keygen *k, const struct client_signing *s,
                     size_t i)
{
    struct proto_blob ct = {0};
    *out = NULL;
    int r = participant_seal_message(&ct, k->secret, s->msgs[i]);
    if (r != KM_OK)
        return r;
    char iid[UUID_STR_LEN + 1];
    uuid_format(iid, &s->item_ids[i]);
    json_t *item = json_pack("{s:s, s:o}", "item_id", iid, "encrypted_message", blob_json(&ct));
    if (s->tweaks != NULL && s->tweaks[i].set) {
        r = participant_seal_tweak(&ct, k->secret, &s->tweaks[i].tweak);
        if (r != KM_OK) {
            json_decref(item);
            return r;
        }
        json_object_set_new(item, "encrypted_taproot_tweak", blob_json(&ct));
    }
    *out = item;
    return KM_OK;
}

int client_sign_create(struct rest_client *c, const struct client_keygen *k,
                       struct client_signing *s, uint32_t timeout_secs, uint32_t wait_ms,
                       struct km_error *err)
{
    json_t *items = json_array();
    for (size_t i = 0; i < s->nitems; i++) {
        json_t *item;
        int r = item_json(&item, k, s, i);
        if (r != KM_OK) {
            json_decref(items);
            return km_error_set(err, r, 0, "cannot encrypt item %zu", i);
        }
        json_array_append_new(items, item);
    }
    json_t *body =
        json_pack("{s:s, s:s, s:i, s:o}", "signing_session_id", s->id_s, "keygen_session_id",
                  k->id_s, "timeout_secs", (int)timeout_secs, "items", items);
    char path[64];
    if (wait_ms > 0)
        snprintf(path, sizeof(path), "/api/v1/signing?wait_ms=%u",
                 wait_ms > 30000 ? 30000 : wait_ms);
    else
        snprintf(path, sizeof(path), "/api/v1/signing");
    json_t *res;
    int r = call_ok(c, &res, "POST", path, body, &k->session_auth, err);
    if (r == KM_OK)
        r = take_outcome(k, s, res, err);
    json_decref(res);
    return r;
}

int client_sign_approve(struct rest_client *c, const struct client_keygen *k,
                        const struct client_signing *s, size_t user, struct km_error *err)
{
    const struct client_user *u = &k->users[user];
    uint64_t ts = clock_wall_ms() / 1000u;
    uint8_t sig[PROTO_SIG_LEN];
    int r = participant_approval_sign(sig, &u->auth, &s->id, &k->id, ts, s->item_ids,
                                      (const uint8_t(*)[PROTO_MSG_LEN])s->msgs, s->nitems);
    if (r != KM_OK)
        return km_error_set(err, r, 0, "cannot sign the approval");
    char path[160];
    snprintf(path, sizeof(path), "/api/v1/signing/%s/approve/%s", s->id_s, u->id_s);
    json_t *res;
    r = call_ok(c, &res, "POST", path,
                json_pack("{s:I, s:o}", "timestamp", (json_int_t)ts, "signature",
                          hex_json(sig, PROTO_SIG_LEN)),
                &u->auth, err);
    json_decref(res);
    return r;
}

/* The result for item i, opened and verified. */
static int open_result(const struct client_keygen *k, struct client_signing *s, size_t i,
                       const json_t *results, struct km_error *err)
{
    char iid[UUID_STR_LEN + 1];
    uuid_format(iid, &s->item_ids[i]);
    size_t j;
    json_t *res;
    json_array_foreach(results, j, res)
    {
        const char *id = json_string_value(json_object_get(res, "item_id"));
        if (id == NULL || strcmp(id, iid) != 0)
            continue;
        struct proto_blob ct;
        int r = blob_field(&ct, res, "encrypted_signature", err);
        if (r != KM_OK)
            return r;
        r = participant_open_signature(s->sigs[i], err, k->secret, &ct);
        proto_blob_clear(&ct);
        if (r != KM_OK)
            return km_error_set(err, KM_ERR_CRYPTO, 0, "item %s: cannot decrypt the signature",
                                iid);
        if (schnorr_verify(s->sigs[i], PROTO_SIG_LEN, s->msgs[i], PROTO_MSG_LEN,
                           client_signing_item_key(s, k, i), PROTO_XONLY_LEN) != KM_OK)
            return km_error_set(err, KM_ERR_CRYPTO, 0,
                                "item %s: the signature does not verify under the aggregate key",
                                iid);
        return KM_OK;
    }
    return km_error_set(err, KM_ERR_INVALID, 0, "no result for item %s", iid);
}

int client_sign_wait(struct rest_client *c, const struct client_keygen *k, struct client_signing *s,
                     size_t user, uint32_t wait_ms, struct km_error *err)
{
    char path[160];
    json_t *res;
    snprintf(path, sizeof(path), "/api/v1/signing/%s/status/%s", s->id_s, k->users[user].id_s);
    int r = wait_final(c, &res, path, &k->users[user].auth, wait_ms, err);
    if (r != KM_OK)
        return r;
    r = take_outcome(k, s, res, err);
    json_decref(res);
    return r;
}

/* Records a status reply in s: a failure is KM_ERR_STATE with the session's
 * error; a completion opens and verifies every signature. */
static int take_outcome(const struct client_keygen *k, struct client_signing *s, const json_t *res,
                        struct km_error *err)
{
    const char *status = json_string_value(json_object_get(res, "status"));
    snprintf(s->status, sizeof(s->status), "%s", status ? status : "?");
    const char *error = json_string_value(json_object_get(res, "error"));
    if (strcmp(s->status, "failed") == 0)
        return km_error_set(err, KM_ERR_STATE, 0, "signing %s failed: %s", s->id_s,
                            error ? error : "(no error given)");
    if (strcmp(s->status, "completed") != 0)
        return KM_OK;
    int r = KM_OK;
    for (size_t i = 0; r == KM_OK && i < s->nitems; i++)
        r = open_result(k, s, i, json_object_get(res, "results"), err);
    return r;
}
