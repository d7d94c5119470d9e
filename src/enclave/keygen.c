/*
 * keygen.c - distributed MuSig2 key generation (docs/PROTOCOL.md "Keygen";
 * reference §4.5, minus its hazards §10.2):
 *
 *   keygen_init          the coordinator decrypts the client's session
 *                        secret and re-encrypts it, bound to the session, to
 *                        every other enclave; the others decrypt that.
 *   keygen_add_participants   this enclave decrypts its own participants'
 *                        private keys and sends their public keys, bound to
 *                        session and user, ECIES-encrypted to the others.
 *   keygen_distribute_public_keys   the other enclaves' participants' keys.
 *   (complete)           KeySort, KeyAgg, the keygen tweak, every subset's
 *                        key, aggregate_check; the session is `completed`.
 *   keygen_get_aggregate the keys sealed for the participants.
 *
 * A command validates all its input before it changes the session.
 */
#include "enclave/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secp256k1_extrakeys.h>

#include "common/log.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "crypto/ctx.h"
#include "enclave/policy.h"
#include "common/banned.h"

long kg_find_participant(const struct keygen_data *kg, const struct uuid *user)
{
    for (size_t i = 0; i < kg->n_parts; i++)
        if (uuid_equal(&kg->parts[i].user_id, user))
            return (long)i;
    return -1;
}

const struct kg_group *kg_find_subset(const struct keygen_data *kg, const struct uuid *id)
{
    for (size_t i = 0; i < kg->n_subsets; i++)
        if (uuid_equal(&kg->subsets[i].subset_id, id))
            return &kg->subsets[i];
    return NULL;
}

static void group_release(struct kg_group *g)
{
    free(g->members);
    free(g->signer_of);
    musig_keyagg_free(g->base);
    musig_keyagg_free(g->tweaked);
    memset(g, 0, sizeof(*g));
}

static void keygen_destroy(void *data)
{
    struct keygen_data *kg = data;
    if (kg == NULL)
        return;
    pool_drop(kg); /* normally done at removal already (en_on_removed) */
    for (size_t i = 0; i < kg->n_parts; i++)
        keypair_clear(&kg->parts[i].kp);
    secure_free(kg->parts, kg->n_parts * sizeof(*kg->parts));
    free(kg->enclaves);
    group_release(&kg->full);
    for (size_t i = 0; i < kg->n_subsets; i++)
        group_release(&kg->subsets[i]);
    free(kg->subsets);
    secure_free(kg, sizeof(*kg));
}

/* ---- keygen_init ---------------------------------------------------------- */

/* Decrypts the session secret: the client's raw 32 bytes for the
 * coordinator, the coordinator's bound re-encryption for the others. */
static int open_secret(struct en_req *r, struct keygen_data *kg,
                       const struct proto_keygen_init_args *a)
{
    uint8_t pt[PROTO_BOUND_SECRET_LEN];
    size_t n = 0;
    int rc = en_ecies_open(pt, sizeof(pt), &n, r->en, &a->encrypted_session_secret, &r->err,
                           "encrypted_session_secret");
    if (rc == KM_OK && a->coordinator) {
        if (n != PROTO_SECRET_LEN)
            rc = en_fail(&r->err, PROTO_E_INVALID_ARGUMENT,
                         "the session secret must be %d bytes (got %zu)", PROTO_SECRET_LEN, n);
        else
            memcpy(kg->secret, pt, PROTO_SECRET_LEN);
    } else if (rc == KM_OK &&
               proto_bound_secret_unpack(kg->secret, pt, n, &a->keygen_session_id) != KM_OK) {
        rc = en_fail(&r->err, PROTO_E_INVALID_ARGUMENT,
                     "encrypted_session_secret is not the coordinator's re-encryption for this "
                     "session");
    }
    secure_wipe(pt, sizeof(pt));
    return rc;
}

static void init_groups(struct keygen_data *kg, const struct proto_keygen_init_args *a)
{
    kg->full.n = a->n_participants;
    kg->full.members = XALLOC_ARRAY(size_t, a->n_participants);
    for (size_t i = 0; i < a->n_participants; i++)
        kg->full.members[i] = i;
    kg->n_subsets = a->n_subsets;
    kg->subsets = XALLOC_ARRAY(struct kg_group, a->n_subsets ? a->n_subsets : 1);
    for (size_t i = 0; i < a->n_subsets; i++) {
        struct kg_group *g = &kg->subsets[i];
        g->subset_id = a->subsets[i].subset_id;
        g->n = a->subsets[i].n_participants;
        g->members = XALLOC_ARRAY(size_t, g->n);
        for (size_t j = 0; j < g->n; j++)
            g->members[j] = (size_t)kg_find_participant(kg, &a->subsets[i].participants[j]);
    }
}

/* The coordinator's bound re-encryptions of the secret, one per other
 * enclave. */
static int reencrypt_secret(struct en_req *r, const struct keygen_data *kg,
                            const struct uuid *kg_id, struct proto_keygen_init_result *res)
{
    uint8_t bound[PROTO_BOUND_SECRET_LEN];
    int rc = KM_OK;
    proto_bound_secret_pack(bound, kg_id, kg->secret);
    res->encrypted_session_secrets = XALLOC_ARRAY(struct proto_enclave_blob, kg->n_enclaves);
    for (size_t i = 0; i < kg->n_enclaves && rc == KM_OK; i++) {
        if (i == kg->self)
            continue;
        struct proto_enclave_blob *b =
            &res->encrypted_session_secrets[res->n_encrypted_session_secrets++];
        b->enclave_id = kg->enclaves[i].enclave_id;
        rc = en_ecies_seal(&b->ciphertext, kg->enclaves[i].public_key, bound, sizeof(bound),
                           &r->err);
    }
    secure_wipe(bound, sizeof(bound));
    return rc;
}

static struct keygen_data *keygen_data_new(struct en_req *r, const struct proto_keygen_init_args *a,
                                           size_t self)
{
    struct keygen_data *kg = xcalloc(1, sizeof(*kg));
    kg->pool.owner = &r->en->pools;
    kg->coordinator = a->coordinator;
    kg->self = self;
    kg->n_enclaves = a->n_enclaves;
    kg->enclaves = XALLOC_ARRAY(struct proto_enclave_key, a->n_enclaves);
    memcpy(kg->enclaves, a->enclaves, a->n_enclaves * sizeof(*a->enclaves));
    kg->n_parts = a->n_participants;
    kg->parts = XALLOC_ARRAY(struct kg_participant, a->n_participants);
    for (size_t i = 0; i < a->n_participants; i++)
        kg->parts[i].user_id = a->participants[i];
    kg->tweak.type = PROTO_TWEAK_NONE;
    init_groups(kg, a);
    return kg;
}

int en_keygen_init(struct en_req *r)
{
    const struct proto_keygen_init_args *a = r->args;
    struct enclave *en = r->en;
    struct proto_keygen_init_result res = {0};
    size_t self = 0;
    bool has_id;
    uint32_t id;

    pthread_mutex_lock(&en->lock);
    has_id = en->has_enclave_id;
    id = en->enclave_id;
    pthread_mutex_unlock(&en->lock);
    uint8_t pub[PROTO_PUBKEY_LEN];
    en_identity_in_list(en, pub, a);
    int rc = policy_keygen_init(&r->err, &self, a, pub, has_id, id);
    if (rc != KM_OK)
        return rc;

    struct keygen_data *kg = keygen_data_new(r, a, self);
    rc = open_secret(r, kg, a);
    if (rc == KM_OK)
        rc = en_derive_keys(kg, &r->err);
    if (rc == KM_OK && a->encrypted_taproot_tweak.len > 0)
        rc = en_open_tweak(&kg->tweak, kg, &a->encrypted_taproot_tweak, &r->err,
                           "encrypted_taproot_tweak");
    if (rc == KM_OK && kg->coordinator)
        rc = reencrypt_secret(r, kg, &a->keygen_session_id, &res);
    if (rc != KM_OK) {
        keygen_destroy(kg);
        proto_keygen_init_result_clear(&res);
        return rc;
    }
    struct session *s = session_new(SESSION_KEYGEN, &a->keygen_session_id, &a->keygen_session_id,
                                    kg, keygen_destroy);
    s->state = KEYGEN_COLLECTING_KEYS;
    rc = en_store_insert(r, s, NULL, a->timeout_secs);
    if (rc == KM_OK) {
        char sid[UUID_STR_LEN + 1];
        log_debug(LOG_COMP,
                  "keygen %s: created (%s, %zu participants, %zu enclaves, %zu subsets, "
                  "timeout %us)",
                  en_uuid_str(sid, &a->keygen_session_id),
                  a->coordinator ? "coordinator" : "not coordinator", a->n_participants,
                  a->n_enclaves, a->n_subsets, a->timeout_secs);
        r->result = proto_keygen_init_result_encode(&res);
    }
    proto_keygen_init_result_clear(&res);
    return rc;
}

/* ---- completion --------------------------------------------------------------- */

struct sort_key {
    uint8_t pk[PROTO_PUBKEY_LEN];
    size_t part;
};

static int sort_key_cmp(const void *a, const void *b)
{
    return memcmp(((const struct sort_key *)a)->pk, ((const struct sort_key *)b)->pk,
                  PROTO_PUBKEY_LEN);
}

/* KeySort and KeyAgg of one group, then the keygen tweak. */
static int group_complete(struct keygen_data *kg, struct kg_group *g, struct en_err *e)
{
    struct sort_key *keys = XALLOC_ARRAY(struct sort_key, g->n);
    uint8_t(*pks)[PROTO_PUBKEY_LEN] = xcalloc(g->n, PROTO_PUBKEY_LEN);
    for (size_t i = 0; i < g->n; i++) {
        memcpy(keys[i].pk, kg->parts[g->members[i]].pubkey, PROTO_PUBKEY_LEN);
        keys[i].part = g->members[i];
    }
    /* BIP-327 KeySort: ascending by the 33-byte encoding; the signer index
     * is the position in this order. */
    qsort(keys, g->n, sizeof(*keys), sort_key_cmp);
    g->signer_of = XALLOC_ARRAY(long, kg->n_parts);
    for (size_t i = 0; i < kg->n_parts; i++)
        g->signer_of[i] = -1;
    for (size_t i = 0; i < g->n; i++) {
        g->members[i] = keys[i].part;
        g->signer_of[keys[i].part] = (long)i;
        memcpy(pks[i], keys[i].pk, PROTO_PUBKEY_LEN);
    }
    struct musig_blame blame;
    int rc = musig_keyagg_new(&g->base, &blame, (const uint8_t(*)[PROTO_PUBKEY_LEN])pks, g->n);
    if (rc != KM_OK)
        rc = en_fail(e, PROTO_E_INVALID_KEY, "the participants' keys cannot be aggregated: %s",
                     musig_reason_str(blame.reason));
    if (rc == KM_OK && musig_keyagg_dup(&g->tweaked, g->base) != KM_OK)
        rc = en_fail(e, PROTO_E_INTERNAL, "out of memory");
    if (rc == KM_OK)
        rc = en_apply_tweak(g->tweaked, &kg->tweak, e);
    if (rc == KM_OK)
        musig_keyagg_plain(g->tweaked, g->aggkey);
    free(keys);
    free(pks);
    return rc;
}

/* Every public key is known: aggregate. A failure here is permanent (the
 * keys cannot be aggregated), so the caller wipes the session. */
static int keygen_complete(struct en_req *r, struct keygen_data *kg)
{
    int rc = group_complete(kg, &kg->full, &r->err);
    for (size_t i = 0; i < kg->n_subsets && rc == KM_OK; i++)
        rc = group_complete(kg, &kg->subsets[i], &r->err);
    if (rc == KM_OK)
        rc = en_aggregate_check(kg, &r->err);
    if (rc != KM_OK)
        return rc;
    store_set_state(r->en->store, r->sess, KEYGEN_COMPLETED);
    store_set_expiry(r->en->store, r->sess, STORE_NEVER);
    /* Room may be made by evicting it: the gateway restores it on demand. */
    store_set_evictable(r->en->store, r->sess, true);
    char sid[UUID_STR_LEN + 1];
    log_debug(LOG_COMP, "keygen %s: completed (%zu participants, %zu subsets)",
              en_uuid_str(sid, &r->sess->id), kg->n_parts, kg->n_subsets);
    return KM_OK;
}

/* After the last key became known: complete, or wipe the session. */
static int maybe_complete(struct en_req *r, struct keygen_data *kg, bool *complete,
                          uint8_t check[PROTO_CHECK_LEN])
{
    *complete = kg->known == kg->n_parts;
    if (!*complete)
        return KM_OK;
    int rc = keygen_complete(r, kg);
    if (rc != KM_OK) {
        store_remove(r->en->store, r->sess, en_on_removed, r->en);
        size_t n = strlen(r->err.msg);
        snprintf(r->err.msg + n, sizeof(r->err.msg) - n, "; the session was wiped");
        return rc;
    }
    memcpy(check, kg->check, PROTO_CHECK_LEN);
    return KM_OK;
}

/* ---- keygen_add_participants ------------------------------------------------- */

/* The key pk for participant p must agree with what is known, and no other
 * participant may have it. staged[i] (n of them) are keys being added by
 * the same command. */
static int check_new_key(struct en_err *e, const struct keygen_data *kg, size_t p,
                         const uint8_t pk[PROTO_PUBKEY_LEN], const size_t *staged_parts,
                         const uint8_t (*staged)[PROTO_PUBKEY_LEN], size_t n)
{
    char u[UUID_STR_LEN + 1], v[UUID_STR_LEN + 1];
    const struct kg_participant *pp = &kg->parts[p];
    if (pp->known && memcmp(pp->pubkey, pk, PROTO_PUBKEY_LEN) != 0)
        return en_fail(e, PROTO_E_INVALID_ARGUMENT,
                       "user %s is already registered with another "
                       "key",
                       en_uuid_str(u, &pp->user_id));
    for (size_t i = 0; i < kg->n_parts; i++) {
        if (i != p && kg->parts[i].known && memcmp(kg->parts[i].pubkey, pk, PROTO_PUBKEY_LEN) == 0)
            return en_fail(e, PROTO_E_INVALID_ARGUMENT, "users %s and %s have the same public key",
                           en_uuid_str(u, &kg->parts[i].user_id), en_uuid_str(v, &pp->user_id));
    }
    for (size_t i = 0; i < n; i++) {
        if (staged_parts[i] != p && memcmp(staged[i], pk, PROTO_PUBKEY_LEN) == 0)
            return en_fail(e, PROTO_E_INVALID_ARGUMENT, "users %s and %s have the same public key",
                           en_uuid_str(u, &kg->parts[staged_parts[i]].user_id),
                           en_uuid_str(v, &pp->user_id));
    }
    return KM_OK;
}

/* Decrypts one registration into kp (and checks it against the session). */
static int open_registration(struct en_req *r, const struct keygen_data *kg,
                             const struct proto_participant_reg *reg, size_t *part,
                             struct keypair *kp)
{
    char u[UUID_STR_LEN + 1], what[96];
    secp256k1_xonly_pubkey xo;
    long p = kg_find_participant(kg, &reg->user_id);
    en_uuid_str(u, &reg->user_id);
    if (p < 0)
        return en_fail(&r->err, PROTO_E_INVALID_ARGUMENT,
                       "user %s is not a participant of this keygen session", u);
    if (secp256k1_xonly_pubkey_parse(crypto_ctx(), &xo, reg->auth_pubkey) != 1)
        return en_fail(&r->err, PROTO_E_INVALID_KEY,
                       "the auth_pubkey of user %s is not a valid x-only key", u);
    uint8_t sk[64];
    size_t n = 0;
    snprintf(what, sizeof(what), "the private key of user %s", u);
    int rc = en_ecies_open(sk, sizeof(sk), &n, r->en, &reg->encrypted_private_key, &r->err, what);
    if (rc == KM_OK && n != KEYPAIR_SECKEY_LEN)
        rc = en_fail(&r->err, PROTO_E_INVALID_ARGUMENT,
                     "the private key of user %s must be %d bytes (got %zu)", u, KEYPAIR_SECKEY_LEN,
                     n);
    if (rc == KM_OK && keypair_init(kp, sk) != KM_OK)
        rc = en_fail(&r->err, PROTO_E_INVALID_KEY,
                     "the private key of user %s is not a valid secp256k1 key", u);
    secure_wipe(sk, sizeof(sk));
    *part = (size_t)p;
    return rc;
}

int en_check_private_key(struct en_req *r)
{
    const struct proto_check_private_key_args *a = r->args;
    uint8_t sk[64];
    size_t n = 0;
    struct keypair kp;
    int rc = en_ecies_open(sk, sizeof(sk), &n, r->en, &a->encrypted_private_key, &r->err,
                           "encrypted_private_key");
    if (rc == KM_OK && n != KEYPAIR_SECKEY_LEN)
        rc = en_fail(&r->err, PROTO_E_INVALID_ARGUMENT,
                     "the private key must be %d bytes (got %zu)", KEYPAIR_SECKEY_LEN, n);
    if (rc == KM_OK && keypair_init(&kp, sk) != KM_OK)
        rc = en_fail(&r->err, PROTO_E_INVALID_KEY, "the private key is not a valid secp256k1 key");
    secure_wipe(sk, sizeof(sk));
    secure_wipe(&kp, sizeof(kp));
    if (rc == KM_OK)
        r->result = json_object();
    return rc;
}

/* Each new participant's public key, bound and encrypted to every other
 * enclave. */
static int pubkeys_for_others(struct en_req *r, const struct keygen_data *kg,
                              const struct uuid *user, const uint8_t pk[PROTO_PUBKEY_LEN],
                              struct proto_participant_pubkeys *out)
{
    uint8_t bound[PROTO_BOUND_PUBKEY_LEN];
    int rc = KM_OK;
    proto_bound_pubkey_pack(bound, &r->sess->id, user, pk);
    out->user_id = *user;
    out->encrypted_public_keys = XALLOC_ARRAY(struct proto_enclave_blob, kg->n_enclaves);
    for (size_t i = 0; i < kg->n_enclaves && rc == KM_OK; i++) {
        if (i == kg->self)
            continue;
        struct proto_enclave_blob *b = &out->encrypted_public_keys[out->n_encrypted_public_keys++];
        b->enclave_id = kg->enclaves[i].enclave_id;
        rc = en_ecies_seal(&b->ciphertext, kg->enclaves[i].public_key, bound, sizeof(bound),
                           &r->err);
    }
    return rc;
}

int en_keygen_add_participants(struct en_req *r)
{
    const struct proto_keygen_add_participants_args *a = r->args;
    struct keygen_data *kg = r->sess->data;
    struct proto_keygen_add_participants_result res = {0};
    size_t n = a->n_participants;
    size_t *parts = XALLOC_ARRAY(size_t, n);
    struct keypair *kps = xcalloc(n, sizeof(*kps));
    uint8_t(*pks)[PROTO_PUBKEY_LEN] = xcalloc(n, PROTO_PUBKEY_LEN);
    int rc = KM_OK;

    for (size_t i = 0; i < n && rc == KM_OK; i++) {
        rc = open_registration(r, kg, &a->participants[i], &parts[i], &kps[i]);
        if (rc == KM_OK)
            rc = check_new_key(&r->err, kg, parts[i], kps[i].pubkey, parts,
                               (const uint8_t(*)[PROTO_PUBKEY_LEN])pks, i);
        if (rc == KM_OK)
            memcpy(pks[i], kps[i].pubkey, PROTO_PUBKEY_LEN);
    }
    res.participants = XALLOC_ARRAY(struct proto_participant_pubkeys, n);
    for (size_t i = 0; i < n && rc == KM_OK; i++, res.n_participants++)
        rc = pubkeys_for_others(r, kg, &a->participants[i].user_id, pks[i], &res.participants[i]);
    for (size_t i = 0; i < n && rc == KM_OK; i++) {
        struct kg_participant *p = &kg->parts[parts[i]];
        if (!p->known)
            kg->known++;
        p->known = true;
        p->local = true;
        p->require_approval = a->participants[i].require_signing_approval;
        memcpy(p->pubkey, pks[i], PROTO_PUBKEY_LEN);
        memcpy(p->auth_pubkey, a->participants[i].auth_pubkey, PROTO_XONLY_LEN);
        keypair_clear(&p->kp);
        p->kp = kps[i];
    }
    if (rc == KM_OK)
        rc = maybe_complete(r, kg, &res.complete, res.aggregate_check);
    if (rc == KM_OK) {
        char sid[UUID_STR_LEN + 1];
        res.known = (uint32_t)kg->known;
        res.expected = (uint32_t)kg->n_parts;
        res.has_aggregate_check = res.complete;
        log_debug(LOG_COMP, "keygen %s: %zu local participants added, %zu/%zu keys known",
                  en_uuid_str(sid, &r->sess->id), n, kg->known, kg->n_parts);
        r->result = proto_keygen_add_participants_result_encode(&res);
    }
    secure_free(kps, n * sizeof(*kps));
    free(parts);
    free(pks);
    proto_keygen_add_participants_result_clear(&res);
    return rc;
}

/* ---- keygen_distribute_public_keys --------------------------------------------- */

static int open_pubkey(struct en_req *r, const struct keygen_data *kg,
                       const struct proto_user_blob *b, size_t *part, uint8_t pk[PROTO_PUBKEY_LEN])
{
    char u[UUID_STR_LEN + 1], what[96];
    long p = kg_find_participant(kg, &b->user_id);
    en_uuid_str(u, &b->user_id);
    if (p < 0)
        return en_fail(&r->err, PROTO_E_INVALID_ARGUMENT,
                       "user %s is not a participant of this keygen session", u);
    uint8_t pt[PROTO_BOUND_PUBKEY_LEN + 1];
    size_t n = 0;
    snprintf(what, sizeof(what), "the public key of user %s", u);
    int rc = en_ecies_open(pt, sizeof(pt), &n, r->en, &b->ciphertext, &r->err, what);
    if (rc == KM_OK && proto_bound_pubkey_unpack(pk, pt, n, &r->sess->id, &b->user_id) != KM_OK)
        rc = en_fail(&r->err, PROTO_E_INVALID_ARGUMENT,
                     "the public key of user %s is not bound to this session and user", u);
    if (rc == KM_OK && !en_point_valid(pk))
        rc = en_fail(&r->err, PROTO_E_INVALID_KEY,
                     "the public key of user %s is not a valid secp256k1 point", u);
    *part = (size_t)p;
    return rc;
}

int en_keygen_distribute_public_keys(struct en_req *r)
{
    const struct proto_keygen_distribute_public_keys_args *a = r->args;
    struct keygen_data *kg = r->sess->data;
    struct proto_keygen_progress res = {0};
    size_t n = a->n_public_keys;
    size_t *parts = XALLOC_ARRAY(size_t, n);
    uint8_t(*pks)[PROTO_PUBKEY_LEN] = xcalloc(n, PROTO_PUBKEY_LEN);
    int rc = KM_OK;

    for (size_t i = 0; i < n && rc == KM_OK; i++) {
        rc = open_pubkey(r, kg, &a->public_keys[i], &parts[i], pks[i]);
        if (rc == KM_OK)
            rc = check_new_key(&r->err, kg, parts[i], pks[i], parts,
                               (const uint8_t(*)[PROTO_PUBKEY_LEN])pks, i);
    }
    for (size_t i = 0; i < n && rc == KM_OK; i++) {
        struct kg_participant *p = &kg->parts[parts[i]];
        if (!p->known) {
            kg->known++;
            p->known = true;
            memcpy(p->pubkey, pks[i], PROTO_PUBKEY_LEN);
        }
    }
    if (rc == KM_OK)
        rc = maybe_complete(r, kg, &res.complete, res.aggregate_check);
    if (rc == KM_OK) {
        char sid[UUID_STR_LEN + 1];
        res.known = (uint32_t)kg->known;
        res.expected = (uint32_t)kg->n_parts;
        res.has_aggregate_check = res.complete;
        log_debug(LOG_COMP, "keygen %s: %zu public keys received, %zu/%zu keys known",
                  en_uuid_str(sid, &r->sess->id), n, kg->known, kg->n_parts);
        r->result = proto_keygen_progress_encode(&res);
    }
    free(parts);
    free(pks);
    return rc;
}

/* ---- keygen_get_aggregate ---------------------------------------------------------- */

int en_keygen_get_aggregate(struct en_req *r)
{
    const struct keygen_data *kg = r->sess->data;
    struct proto_keygen_get_aggregate_result res = {0};
    int rc = en_seal(&res.encrypted_aggregate_public_key, kg, PROTO_CTX_AGGKEY, kg->full.aggkey,
                     PROTO_PUBKEY_LEN, &r->err);
    res.participant_count = (uint32_t)kg->n_parts;
    res.subsets = XALLOC_ARRAY(struct proto_subset_key, kg->n_subsets ? kg->n_subsets : 1);
    for (size_t i = 0; i < kg->n_subsets && rc == KM_OK; i++, res.n_subsets++) {
        res.subsets[i].subset_id = kg->subsets[i].subset_id;
        rc = en_seal(&res.subsets[i].encrypted_aggregate_public_key, kg, PROTO_CTX_SUBSET_AGGKEY,
                     kg->subsets[i].aggkey, PROTO_PUBKEY_LEN, &r->err);
    }
    memcpy(res.aggregate_check, kg->check, PROTO_CHECK_LEN);
    if (rc == KM_OK)
        r->result = proto_keygen_get_aggregate_result_encode(&res);
    proto_keygen_get_aggregate_result_clear(&res);
    return rc;
}
