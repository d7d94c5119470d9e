#include "client/invite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/secretfile_internal.h"
#include "common/clock.h"
#include "common/hex.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "crypto/auth.h"
#include "crypto/ecies.h"
#include "common/banned.h"

#define KEY_TYPE     "keymeld-participant-key"
#define INVITE_TYPE  "keymeld-invitation"
#define REQUEST_TYPE "keymeld-signing-request"
/* ECIES of the 32-byte session secret. */
#define SEALED_SECRET_LEN (PARTICIPANT_SECRET_LEN + ECIES_OVERHEAD)

/* ---- files ------------------------------------------------------------------ */

/* Writes doc (decref'd) to a new file of mode 0600; the text is wiped. */
/* Reads a JSON file of the given type (at most CLIENT_INVITE_MAX_SIZE). */
static int read_doc(json_t **out, const char *path, const char *type, const char *what,
                    struct km_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return km_error_set(err, KM_ERR_IO, errno, "cannot open %s: %s", path, strerror(errno));
    char *text = xmalloc(CLIENT_INVITE_MAX_SIZE + 1);
    size_t n = fread(text, 1, CLIENT_INVITE_MAX_SIZE + 1, f);
    fclose(f);
    json_error_t jerr;
    json_t *doc =
        n <= CLIENT_INVITE_MAX_SIZE ? json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    secure_free(text, CLIENT_INVITE_MAX_SIZE + 1);
    const char *t = json_string_value(json_object_get(doc, "type"));
    if (doc == NULL || t == NULL || strcmp(t, type) != 0 ||
        json_integer_value(json_object_get(doc, "version")) != 1) {
        json_decref(doc);
        return km_error_set(err, KM_ERR_INVALID, 0, "%s is not a %s (version 1)", path, what);
    }
    *out = doc;
    return KM_OK;
}

/* ---- party keys --------------------------------------------------------------- */

int client_party_key_save(const char *path, const struct keypair *kp, struct km_error *err)
{
    json_t *doc = json_pack("{s:i, s:s, s:o, s:o}", "version", 1, "type", KEY_TYPE, "private_key",
                            secretfile_hex_string(kp->seckey, 32), "public_key",
                            secretfile_hex_string(kp->pubkey, 33));
    return secretfile_write(path, doc, err);
}

int client_party_key_load(const char *path, struct keypair *kp, struct km_error *err)
{
    memset(kp, 0, sizeof(*kp));
    json_t *doc;
    int r = read_doc(&doc, path, KEY_TYPE, "keymeld participant key file", err);
    if (r != KM_OK)
        return r;
    uint8_t sk[32], pk[33];
    r = secretfile_hex(sk, sizeof(sk), doc, "private_key", path, err);
    if (r == KM_OK)
        r = secretfile_hex(pk, sizeof(pk), doc, "public_key", path, err);
    if (r == KM_OK && keypair_init(kp, sk) != KM_OK)
        r = km_error_set(err, KM_ERR_INVALID, 0, "%s: not a valid private key", path);
    if (r == KM_OK && memcmp(kp->pubkey, pk, sizeof(pk)) != 0)
        r = km_error_set(err, KM_ERR_INVALID, 0,
                         "%s: the public key does not match the private key", path);
    secure_wipe(sk, sizeof(sk));
    json_decref(doc);
    if (r != KM_OK)
        keypair_clear(kp);
    return r;
}

/* ---- invitations ------------------------------------------------------------ */

int client_invite_save(const char *path, const struct client_keygen *k, size_t user,
                       const char *gateway, uint64_t expires_at, struct km_error *err)
{
    if (user >= k->nusers)
        KM_BUG("client_invite_save: user %zu of %zu", user, k->nusers);
    uint8_t ct[SEALED_SECRET_LEN];
    size_t ctlen;
    int r = ecies_encrypt(ct, sizeof(ct), &ctlen, k->users[user].kp.pubkey, PROTO_PUBKEY_LEN,
                          k->secret, sizeof(k->secret));
    if (r != KM_OK)
        return km_error_set(err, r, 0, "cannot encrypt the session secret to participant %zu's key",
                            user);
    json_t *parts = json_array();
    for (size_t i = 0; i < k->nusers; i++)
        json_array_append_new(parts,
                              json_pack("{s:s, s:o}", "user_id", k->users[i].id_s, "public_key",
                                        secretfile_hex_string(k->users[i].kp.pubkey, 33)));
    json_t *doc =
        json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:I, s:o}", "version", 1, "type",
                  INVITE_TYPE, "gateway", gateway, "keygen_session_id", k->id_s, "user_id",
                  k->users[user].id_s, "slot", (json_int_t)user, "public_key",
                  secretfile_hex_string(k->users[user].kp.pubkey, 33), "encrypted_session_secret",
                  secretfile_hex_string(ct, ctlen), "tweak", proto_tweak_encode(&k->tweak),
                  "expires_at", (json_int_t)expires_at, "participants", parts);
    return secretfile_write(path, doc, err);
}

/* The session secret, decrypted with kp: only the invited key opens it. */
static int open_secret(struct client_keygen *k, const json_t *doc, const struct keypair *kp,
                       const char *path, struct km_error *err)
{
    uint8_t pk[33], ct[SEALED_SECRET_LEN];
    const char *h = json_string_value(json_object_get(doc, "encrypted_session_secret"));
    int r = secretfile_hex(pk, sizeof(pk), doc, "public_key", path, err);
    if (r != KM_OK)
        return r;
    if (h == NULL || hex_decode_exact(ct, sizeof(ct), h, strlen(h)) != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "%s: \"encrypted_session_secret\" must be %d bytes of hex", path,
                            SEALED_SECRET_LEN);
    size_t len = 0;
    struct km_error e2;
    if (memcmp(pk, kp->pubkey, sizeof(pk)) != 0 ||
        ecies_decrypt(k->secret, sizeof(k->secret), &len, &e2, kp->seckey, ct, sizeof(ct)) !=
            KM_OK ||
        len != sizeof(k->secret)) {
        secure_wipe(k->secret, sizeof(k->secret));
        return km_error_set(err, KM_ERR_CRYPTO, 0,
                            "this invitation is not for this key (%s is for public key %s)", path,
                            json_string_value(json_object_get(doc, "public_key")));
    }
    if (auth_derive_keypair(&k->session_auth, k->secret, sizeof(k->secret),
                            CLIENT_SESSION_AUTH_SALT, CLIENT_SESSION_AUTH_INFO) != KM_OK)
        return km_error_set(err, KM_ERR_CRYPTO, 0, "cannot derive the session key");
    return KM_OK;
}

/* participants[] of an invitation into k->users: public keys only, but the
 * party's own (slot), which gets kp and its auth key. */
static int load_participants(struct client_keygen *k, const json_t *parts, size_t slot,
                             const struct keypair *kp, const char *path, struct km_error *err)
{
    size_t n = json_array_size(parts);
    if (!json_is_array(parts) || n < PROTO_MIN_PARTICIPANTS || n > PROTO_MAX_PARTICIPANTS ||
        slot >= n)
        return km_error_set(err, KM_ERR_INVALID, 0, "%s: bad \"participants\" or \"slot\"", path);
    k->nusers = n;
    k->users = XALLOC_ARRAY(struct client_user, n);
    int r = KM_OK;
    for (size_t i = 0; r == KM_OK && i < n; i++) {
        struct client_user *u = &k->users[i];
        const json_t *p = json_array_get(parts, i);
        char where[64];
        snprintf(where, sizeof(where), "%s: participants[%zu]", path, i);
        r = secretfile_uuid(&u->id, u->id_s, p, "user_id", where, err);
        if (r == KM_OK)
            r = secretfile_hex(u->kp.pubkey, 33, p, "public_key", where, err);
        u->remote = i != slot;
        if (r == KM_OK && i == slot && memcmp(u->kp.pubkey, kp->pubkey, 33) != 0)
            r = km_error_set(err, KM_ERR_CRYPTO, 0, "this invitation is not for this key");
        if (r == KM_OK && i == slot) {
            u->kp = *kp;
            if (participant_auth_keypair(&u->auth, &u->kp, &k->id) != KM_OK)
                r = km_error_set(err, KM_ERR_CRYPTO, 0, "cannot derive the auth key");
        }
    }
    return r;
}

int client_invite_open(const char *path, const struct keypair *kp, struct client_keygen *k,
                       size_t *user, char *gateway, size_t cap, struct km_error *err)
{
    memset(k, 0, sizeof(*k));
    *user = 0;
    json_t *doc;
    int r = read_doc(&doc, path, INVITE_TYPE, "keymeld invitation", err);
    if (r != KM_OK)
        return r;
    struct uuid uid;
    json_int_t slot = json_integer_value(json_object_get(doc, "slot"));
    json_int_t expires = json_integer_value(json_object_get(doc, "expires_at"));
    struct km_error e2;
    r = secretfile_uuid(&k->id, k->id_s, doc, "keygen_session_id", path, err);
    if (r == KM_OK)
        r = secretfile_uuid(&uid, NULL, doc, "user_id", path, err);
    if (r == KM_OK)
        r = open_secret(k, doc, kp, path, err);
    if (r == KM_OK && proto_tweak_decode(&k->tweak, json_object_get(doc, "tweak"), &e2) != KM_OK)
        r = km_error_set(err, KM_ERR_INVALID, 0, "%s: bad tweak: %s", path, e2.msg);
    if (r == KM_OK && slot < 0)
        r = km_error_set(err, KM_ERR_INVALID, 0, "%s: bad \"slot\"", path);
    if (r == KM_OK)
        r = load_participants(k, json_object_get(doc, "participants"), (size_t)slot, kp, path, err);
    if (r == KM_OK && !uuid_equal(&k->users[slot].id, &uid))
        r = km_error_set(err, KM_ERR_INVALID, 0, "%s: \"user_id\" is not the one of its slot",
                         path);
    if (r == KM_OK && expires > 0 && (uint64_t)expires < clock_wall_ms() / 1000u)
        r = km_error_set(err, KM_ERR_STATE, 0, "%s: the invitation expired at %lld", path,
                         (long long)expires);
    const char *gw = json_string_value(json_object_get(doc, "gateway"));
    snprintf(gateway, cap, "%s", gw ? gw : "");
    json_decref(doc);
    if (r != KM_OK) {
        client_keygen_clear(k);
        return r;
    }
    *user = (size_t)slot;
    return KM_OK;
}

/* ---- signing requests -------------------------------------------------------- */

int client_signing_request_save(const char *path, const struct client_keygen *k,
                                const struct client_signing *s, struct km_error *err)
{
    json_t *items = json_array();
    for (size_t i = 0; i < s->nitems; i++) {
        char iid[UUID_STR_LEN + 1];
        uuid_format(iid, &s->item_ids[i]);
        json_array_append_new(items, json_pack("{s:s, s:o}", "item_id", iid, "message",
                                               secretfile_hex_string(s->msgs[i], PROTO_MSG_LEN)));
    }
    json_t *doc =
        json_pack("{s:i, s:s, s:s, s:s, s:o}", "version", 1, "type", REQUEST_TYPE,
                  "keygen_session_id", k->id_s, "signing_session_id", s->id_s, "items", items);
    return secretfile_write(path, doc, err);
}

int client_signing_request_load(const char *path, const struct client_keygen *k,
                                struct client_signing *s, struct km_error *err)
{
    memset(s, 0, sizeof(*s));
    json_t *doc;
    int r = read_doc(&doc, path, REQUEST_TYPE, "keymeld signing request", err);
    if (r != KM_OK)
        return r;
    const json_t *items = json_object_get(doc, "items");
    size_t n = json_array_size(items);
    struct uuid kid;
    r = secretfile_uuid(&kid, NULL, doc, "keygen_session_id", path, err);
    if (r == KM_OK && !uuid_equal(&kid, &k->id))
        r = km_error_set(err, KM_ERR_INVALID, 0, "%s is a request of another keygen (%s)", path,
                         json_string_value(json_object_get(doc, "keygen_session_id")));
    if (r == KM_OK && (n == 0 || n > PROTO_MAX_ITEMS))
        r = km_error_set(err, KM_ERR_INVALID, 0, "%s: \"items\" must hold 1..%d items", path,
                         PROTO_MAX_ITEMS);
    if (r == KM_OK) {
        s->nitems = n;
        s->item_ids = XALLOC_ARRAY(struct uuid, n);
        s->msgs = xcalloc(n, PROTO_MSG_LEN);
        s->sigs = xcalloc(n, PROTO_SIG_LEN);
        r = secretfile_uuid(&s->id, s->id_s, doc, "signing_session_id", path, err);
    }
    for (size_t i = 0; r == KM_OK && i < n; i++) {
        char where[64];
        snprintf(where, sizeof(where), "%s: items[%zu]", path, i);
        r = secretfile_uuid(&s->item_ids[i], NULL, json_array_get(items, i), "item_id", where, err);
        if (r == KM_OK)
            r = secretfile_hex(s->msgs[i], PROTO_MSG_LEN, json_array_get(items, i), "message",
                               where, err);
    }
    json_decref(doc);
    if (r != KM_OK)
        client_signing_clear(s);
    return r;
}

/* ---- joining ------------------------------------------------------------------ */

/* The slot of k's participant `user` from GET slots. */
static int fetch_slot(struct rest_client *c, struct client_keygen *k, size_t user,
                      struct km_error *err)
{
    struct client_user *u = &k->users[user];
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/keygen/%s/slots", k->id_s);
    struct rest_response res;
    int r = rest_call(c, &res, "GET", path, NULL, &k->session_auth, err);
    if (r != KM_OK)
        return r;
    if (res.status != 200 || res.body == NULL) {
        r = km_error_set(err, KM_ERR_REMOTE, 0, "GET %s: HTTP %ld: %s", path, res.status,
                         rest_error_message(&res));
        rest_response_clear(&res);
        return r;
    }
    r = km_error_set(err, KM_ERR_NOT_FOUND, 0, "user %s has no slot in keygen %s", u->id_s,
                     k->id_s);
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(res.body, "slots"), i, s)
    {
        const char *id = json_string_value(json_object_get(s, "user_id"));
        if (id == NULL || strcmp(id, u->id_s) != 0)
            continue;
        u->enclave_id = (uint32_t)json_integer_value(json_object_get(s, "enclave_id"));
        r = secretfile_hex(u->enclave_pk, PROTO_PUBKEY_LEN, s, "enclave_public_key", "slots reply",
                           err);
        break;
    }
    k->coordinator_enclave_id =
        (uint32_t)json_integer_value(json_object_get(res.body, "coordinator_enclave_id"));
    rest_response_clear(&res);
    return r;
}

int client_keygen_join(struct rest_client *c, struct client_keygen *k, size_t user,
                       struct km_error *err)
{
    if (user >= k->nusers || k->users[user].remote)
        KM_BUG("client_keygen_join: user %zu is not local", user);
    int r = fetch_slot(c, k, user, err);
    if (r == KM_OK)
        r = client_keygen_register(c, k, user, err); /* attests the enclave first */
    return r;
}
