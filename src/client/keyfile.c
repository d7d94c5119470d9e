#include "client/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/secretfile_internal.h"
#include "common/hex.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "crypto/auth.h"
#include "common/banned.h"

int keyfile_save(const char *path, const struct client_keygen *k, const char *gateway,
                 struct km_error *err)
{
    json_t *parts = json_array();
    for (size_t i = 0; i < k->nusers; i++) {
        const struct client_user *u = &k->users[i];
        /* Another party's participant: its public key only. */
        json_array_append_new(parts, json_pack("{s:s, s:o, s:I, s:o, s:b}", "user_id", u->id_s,
                                               u->remote ? "public_key" : "private_key",
                                               u->remote ? secretfile_hex_string(u->kp.pubkey, 33)
                                                         : secretfile_hex_string(u->kp.seckey, 32),
                                               "enclave_id", (json_int_t)u->enclave_id,
                                               "enclave_public_key",
                                               secretfile_hex_string(u->enclave_pk, 33),
                                               "require_signing_approval", u->require_approval));
    }
    json_t *doc = json_pack("{s:i, s:s, s:s, s:o, s:o, s:I, s:o, s:o}", "version", 1, "gateway",
                            gateway, "keygen_session_id", k->id_s, "session_secret",
                            secretfile_hex_string(k->secret, 32), "tweak",
                            proto_tweak_encode(&k->tweak), "coordinator_enclave_id",
                            (json_int_t)k->coordinator_enclave_id, "aggregate_public_key",
                            secretfile_hex_string(k->aggregate, 33), "participants", parts);
    return secretfile_write(path, doc, err);
}

static int load_user(struct client_user *u, const struct uuid *keygen_id, const json_t *p, size_t i,
                     struct km_error *err)
{
    char where[48];
    uint8_t sk[32];
    snprintf(where, sizeof(where), "participants[%zu]", i);
    int r = secretfile_uuid(&u->id, u->id_s, p, "user_id", where, err);
    /* Another party's participant (keymeld keygen --invite, keygen join)
     * has a public key instead of a private key. */
    u->remote = json_object_get(p, "private_key") == NULL;
    if (r == KM_OK && u->remote)
        r = secretfile_hex(u->kp.pubkey, 33, p, "public_key", where, err);
    if (r == KM_OK && !u->remote)
        r = secretfile_hex(sk, 32, p, "private_key", where, err);
    if (r == KM_OK && !u->remote && keypair_init(&u->kp, sk) != KM_OK)
        r = km_error_set(err, KM_ERR_INVALID, 0, "%s: not a valid private key", where);
    secure_wipe(sk, sizeof(sk));
    if (r == KM_OK)
        r = secretfile_hex(u->enclave_pk, 33, p, "enclave_public_key", where, err);
    if (r == KM_OK && !u->remote && participant_auth_keypair(&u->auth, &u->kp, keygen_id) != KM_OK)
        r = km_error_set(err, KM_ERR_CRYPTO, 0, "%s: cannot derive the auth key", where);
    u->enclave_id = (uint32_t)json_integer_value(json_object_get(p, "enclave_id"));
    u->require_approval = json_is_true(json_object_get(p, "require_signing_approval"));
    return r;
}

int keyfile_load(const char *path, struct client_keygen *k, char *gateway, size_t cap,
                 struct km_error *err)
{
    memset(k, 0, sizeof(*k));
    json_error_t jerr;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return km_error_set(err, KM_ERR_IO, errno, "cannot open %s: %s", path, strerror(errno));
    char *text = xmalloc(KEYFILE_MAX_SIZE + 1);
    size_t n = fread(text, 1, KEYFILE_MAX_SIZE + 1, f);
    fclose(f);
    json_t *doc = n <= KEYFILE_MAX_SIZE ? json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    secure_free(text, KEYFILE_MAX_SIZE + 1);
    if (doc == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0, "%s is not a keymeld session file", path);

    int r = KM_OK;
    json_t *parts = json_object_get(doc, "participants");
    struct km_error e2;
    if (json_integer_value(json_object_get(doc, "version")) != 1 || !json_is_array(parts) ||
        json_array_size(parts) < 2 || json_array_size(parts) > PROTO_MAX_PARTICIPANTS)
        r = km_error_set(err, KM_ERR_INVALID, 0, "%s: unsupported version or no participants",
                         path);
    if (r == KM_OK)
        r = secretfile_uuid(&k->id, k->id_s, doc, "keygen_session_id", path, err);
    if (r == KM_OK)
        r = secretfile_hex(k->secret, 32, doc, "session_secret", path, err);
    if (r == KM_OK)
        r = secretfile_hex(k->aggregate, 33, doc, "aggregate_public_key", path, err);
    if (r == KM_OK && proto_tweak_decode(&k->tweak, json_object_get(doc, "tweak"), &e2) != KM_OK)
        r = km_error_set(err, KM_ERR_INVALID, 0, "%s: bad tweak: %s", path, e2.msg);
    if (r == KM_OK &&
        auth_derive_keypair(&k->session_auth, k->secret, sizeof(k->secret),
                            CLIENT_SESSION_AUTH_SALT, CLIENT_SESSION_AUTH_INFO) != KM_OK)
        r = km_error_set(err, KM_ERR_CRYPTO, 0, "%s: cannot derive the session key", path);
    k->coordinator_enclave_id =
        (uint32_t)json_integer_value(json_object_get(doc, "coordinator_enclave_id"));
    if (r == KM_OK) {
        k->nusers = json_array_size(parts);
        k->users = XALLOC_ARRAY(struct client_user, k->nusers);
        bool local = false;
        for (size_t i = 0; r == KM_OK && i < k->nusers; i++) {
            r = load_user(&k->users[i], &k->id, json_array_get(parts, i), i, err);
            local |= !k->users[i].remote;
        }
        if (r == KM_OK && !local)
            r = km_error_set(err, KM_ERR_INVALID, 0, "%s: no participant has a private key", path);
    }
    const char *gw = json_string_value(json_object_get(doc, "gateway"));
    snprintf(gateway, cap, "%s", gw ? gw : "");
    json_decref(doc);
    if (r == KM_OK) {
        /* The aggregate key must follow from the participants' keys. */
        uint8_t(*pks)[PROTO_PUBKEY_LEN] = xcalloc(k->nusers, PROTO_PUBKEY_LEN);
        uint8_t mine[PROTO_PUBKEY_LEN];
        for (size_t i = 0; i < k->nusers; i++)
            memcpy(pks[i], k->users[i].kp.pubkey, PROTO_PUBKEY_LEN);
        r = participant_aggregate_key(mine, k->xonly, (const uint8_t(*)[PROTO_PUBKEY_LEN])pks,
                                      k->nusers, &k->tweak);
        free(pks);
        if (r != KM_OK || memcmp(mine, k->aggregate, PROTO_PUBKEY_LEN) != 0)
            r = km_error_set(err, KM_ERR_INVALID, 0,
                             "%s: the aggregate key does not match the participants' keys", path);
        k->completed = r == KM_OK;
    }
    if (r != KM_OK)
        client_keygen_clear(k);
    return r;
}
