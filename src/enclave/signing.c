/*
 * signing.c - MuSig2 signing rounds over a completed keygen session
 * (docs/PROTOCOL.md "Signing"; reference §4.6, minus its hazards §10.2):
 *
 *   signing_init   decrypt each item's message (32 bytes, the only thing the
 *                  enclave signs), tweak, subset and adaptor configs; expand
 *                  items into signing units; check approvals; NonceGen for
 *                  every local signer of every unit; seal the public nonces.
 *   signing_distribute_nonces   check every participant's nonces (bound to
 *                  session and user, exactly its units, this enclave's own
 *                  unchanged), NonceAgg, session values, partial signatures
 *                  (consuming the secret nonces), verify them, seal them.
 *   signing_finalize   coordinator: verify every partial signature, naming
 *                  the culprit, aggregate, verify the signature (or the
 *                  adaptor pre-signature), seal the results; wipe.
 *   nonce_pool_fill    NonceGen ahead of the message into the keygen's pool
 *                  (pool.c), public nonces sealed per participant.
 *   signing_sign   signing_init's checks, then this enclave's pool entries
 *                  taken (all or none), then signing_distribute_nonces's
 *                  signing: two rounds instead of three.
 *
 * A command validates all its input before it changes the session; the
 * secret nonces are consumed only once every input has been accepted.
 */
#include "enclave/internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "crypto/adaptor.h"
#include "enclave/policy.h"
#include "common/banned.h"

/* ---- Session data lifetime ------------------------------------------------ */

static size_t unit_signers(const struct signing_data *sd, const struct sg_unit *u)
{
    return sd->items[u->item].group->n;
}

void sg_wipe(struct signing_data *sd)
{
    for (size_t i = 0; i < sd->n_units; i++) {
        struct sg_unit *u = &sd->units[i];
        for (size_t s = 0; u->secnonces != NULL && s < unit_signers(sd, u); s++)
            musig_secnonce_free(u->secnonces[s]);
        free(u->secnonces);
        free(u->pubnonces);
        free(u->parsed);
        free(u->own_psigs);
        free(u->own);
    }
    free(sd->units);
    sd->units = NULL;
    sd->n_units = 0;
    for (size_t i = 0; i < sd->n_items; i++)
        musig_keyagg_free(sd->items[i].own_ka);
    /* Items hold the messages, which the gateway must never learn. */
    secure_free(sd->items, sd->n_items * sizeof(*sd->items));
    sd->items = NULL;
    sd->n_items = 0;
    if (sd->keygen != NULL)
        store_release(sd->st, sd->keygen);
    sd->keygen = NULL;
    sd->kg = NULL;
}

static void signing_destroy(void *data)
{
    if (data == NULL)
        return;
    sg_wipe(data);
    free(data);
}

static long find_item(const struct signing_data *sd, const struct uuid *id)
{
    for (size_t i = 0; i < sd->n_items; i++)
        if (uuid_equal(&sd->items[i].item_id, id))
            return (long)i;
    return -1;
}

/* How many units participant p signs. */
static size_t units_of(const struct signing_data *sd, size_t p)
{
    size_t n = 0;
    for (size_t i = 0; i < sd->n_items; i++)
        if (sd->items[i].group->signer_of[p] >= 0)
            n += sd->items[i].n_units;
    return n;
}

/* Offsets of each unit's signers in flat per-signer-unit arrays. */
static size_t *unit_offsets(const struct signing_data *sd, size_t *total)
{
    size_t *off = XALLOC_ARRAY(size_t, sd->n_units ? sd->n_units : 1);
    size_t t = 0;
    for (size_t i = 0; i < sd->n_units; i++) {
        off[i] = t;
        t += unit_signers(sd, &sd->units[i]);
    }
    *total = t;
    return off;
}

/* ---- Units in parallel ----------------------------------------------------------- */

/*
 * A large session runs its per-unit elliptic-curve work (NonceGen; signing
 * with its own check; the coordinator's verification) on two threads: a
 * batch of 100 messages is 10-40 ms of it per command, and while the
 * coordinator finalizes, the other enclaves are done and a core is idle.
 * Below PARALLEL_MIN_UNITS a thread start costs more than it saves. Units
 * are independent: each touches only its own sg_unit and output slots, and
 * the keygen data and the secp256k1 context are read-only.
 */
#define PARALLEL_MIN_UNITS 16

typedef int (*unit_fn)(struct en_req *r, void *ctx, size_t i);

struct unit_range {
    struct en_req r; /* a copy: its err is this range's */
    unit_fn fn;
    void *ctx;
    size_t from, to;
    int rc;
};

static void *run_range(void *p)
{
    struct unit_range *u = p;
    u->rc = KM_OK;
    for (size_t i = u->from; i < u->to && u->rc == KM_OK; i++)
        u->rc = u->fn(&u->r, u->ctx, i);
    return NULL;
}

/* fn(r, ctx, i) for every unit i < n, stopping a range at its first
 * failure; the failure of the lowest unit range is r's. */
static int for_each_unit(struct en_req *r, size_t n, unit_fn fn, void *ctx)
{
    struct unit_range part[2];
    part[0] = (struct unit_range){.r = *r, .fn = fn, .ctx = ctx, .from = 0, .to = n};
    pthread_t t;
    bool split = n >= PARALLEL_MIN_UNITS;
    if (split) {
        part[1] = part[0];
        part[0].to = part[1].from = n / 2;
        split = pthread_create(&t, NULL, run_range, &part[1]) == 0;
        if (!split)
            part[0].to = n; /* no thread: all on this one */
    }
    run_range(&part[0]);
    if (split && pthread_join(t, NULL) != 0)
        KM_BUG("pthread_join failed");
    for (size_t k = 0; k < (split ? 2u : 1u); k++) {
        if (part[k].rc != KM_OK) {
            r->err = part[k].r.err;
            return part[k].rc;
        }
    }
    return KM_OK;
}

/* ---- signing_init: items and units ------------------------------------------- */

/* Decrypts one item: message, group, tweak; counts its units. */
static int build_item(struct en_req *r, struct signing_data *sd, const struct proto_item *pi,
                      struct sg_item *it, struct proto_adaptor_configs *cfg)
{
    const struct keygen_data *kg = sd->kg;
    char iid[UUID_STR_LEN + 1], what[96];
    en_uuid_str(iid, &pi->item_id);
    it->item_id = pi->item_id;

    uint8_t msg[PROTO_SEALED_SMALL_MAX];
    size_t n = 0;
    snprintf(what, sizeof(what), "item %s: encrypted_message", iid);
    int rc =
        en_open(msg, sizeof(msg), &n, kg, PROTO_CTX_MESSAGE, &pi->encrypted_message, &r->err, what);
    if (rc == KM_OK)
        rc = policy_message(&r->err, n, &pi->item_id);
    if (rc == KM_OK)
        memcpy(it->msg, msg, PROTO_MSG_LEN);
    secure_wipe(msg, sizeof(msg));
    if (rc != KM_OK)
        return rc;

    it->group = uuid_is_nil(&pi->subset_id) ? &kg->full : kg_find_subset(kg, &pi->subset_id);
    if (it->group == NULL)
        return en_fail(&r->err, PROTO_E_INVALID_ARGUMENT,
                       "item %s: its subset is not defined in the keygen session", iid);
    it->ka = it->group->tweaked;
    if (pi->encrypted_taproot_tweak.len > 0) {
        struct proto_tweak t;
        snprintf(what, sizeof(what), "item %s: encrypted_taproot_tweak", iid);
        rc = en_open_tweak(&t, kg, &pi->encrypted_taproot_tweak, &r->err, what);
        if (rc == KM_OK && musig_keyagg_dup(&it->own_ka, it->group->base) != KM_OK)
            rc = en_fail(&r->err, PROTO_E_INTERNAL, "out of memory");
        if (rc == KM_OK)
            rc = en_apply_tweak(it->own_ka, &t, &r->err);
        if (rc != KM_OK)
            return rc;
        it->ka = it->own_ka;
    }

    it->n_units = 1;
    if (pi->encrypted_adaptor_configs.len == 0)
        return KM_OK;
    uint8_t *pt = NULL;
    struct km_error err;
    snprintf(what, sizeof(what), "item %s: encrypted_adaptor_configs", iid);
    rc = en_open_alloc(&pt, &n, PROTO_SEALED_CONFIG_MAX, kg, PROTO_CTX_ADAPTOR,
                       &pi->encrypted_adaptor_configs, &r->err, what);
    if (rc == KM_OK && proto_decode_bytes(&proto_adaptor_configs_schema, cfg, pt, n, &err) != KM_OK)
        rc = en_fail(&r->err, PROTO_E_INVALID_ARGUMENT, "%s: %s", what, err.msg);
    free(pt);
    if (rc != KM_OK)
        return rc;
    it->adaptor = true;
    it->n_units = 0;
    for (size_t c = 0; c < cfg->n_configs; c++)
        it->n_units +=
            cfg->configs[c].adaptor_type == PROTO_ADAPTOR_OR ? cfg->configs[c].n_points : 1;
    return KM_OK;
}

/* Fills the units of item i from its adaptor configs (or one plain unit). */
static int build_units(struct en_req *r, struct signing_data *sd, size_t i,
                       const struct proto_adaptor_configs *cfg)
{
    struct sg_item *it = &sd->items[i];
    size_t u = it->first_unit;
    if (!it->adaptor) {
        sd->units[u].item = i;
        return KM_OK;
    }
    for (size_t c = 0; c < cfg->n_configs; c++) {
        const struct proto_adaptor_config *ac = &cfg->configs[c];
        size_t branches = ac->adaptor_type == PROTO_ADAPTOR_OR ? ac->n_points : 1;
        for (size_t b = 0; b < branches; b++, u++) {
            struct sg_unit *un = &sd->units[u];
            un->item = i;
            un->index = (uint32_t)(u - it->first_unit);
            un->adaptor = true;
            un->adaptor_id = ac->adaptor_id;
            un->adaptor_type = ac->adaptor_type;
            un->branch = (uint32_t)b;
            if (ac->adaptor_type == PROTO_ADAPTOR_AND) {
                int rc =
                    en_point_sum(un->point, (const uint8_t(*)[PROTO_PUBKEY_LEN])ac->adaptor_points,
                                 ac->n_points, &r->err);
                if (rc != KM_OK)
                    return rc;
            } else {
                memcpy(un->point, ac->adaptor_points[b], PROTO_PUBKEY_LEN);
                if (!en_point_valid(un->point))
                    return en_fail(&r->err, PROTO_E_INVALID_ARGUMENT,
                                   "adaptor point %zu of config %zu is not a valid point", b, c);
            }
        }
    }
    return KM_OK;
}

static int build_items(struct en_req *r, struct signing_data *sd,
                       const struct proto_signing_init_args *a)
{
    struct proto_adaptor_configs *cfgs = XALLOC_ARRAY(struct proto_adaptor_configs, a->n_items);
    size_t signer_units = 0;
    int rc = KM_OK;
    sd->items = XALLOC_ARRAY(struct sg_item, a->n_items);
    sd->n_items = a->n_items;
    for (size_t i = 0; i < a->n_items && rc == KM_OK; i++) {
        rc = build_item(r, sd, &a->items[i], &sd->items[i], &cfgs[i]);
        sd->items[i].first_unit = sd->n_units;
        sd->n_units += sd->items[i].n_units;
        signer_units += sd->items[i].n_units * (sd->items[i].group ? sd->items[i].group->n : 0);
    }
    if (rc == KM_OK)
        rc = policy_signing_size(&r->err, sd->n_units, signer_units);
    if (rc == KM_OK) {
        sd->units = XALLOC_ARRAY(struct sg_unit, sd->n_units);
        for (size_t i = 0; i < a->n_items && rc == KM_OK; i++)
            rc = build_units(r, sd, i, &cfgs[i]);
    } else {
        sd->n_units = 0; /* nothing allocated for them */
    }
    for (size_t i = 0; i < a->n_items; i++)
        proto_adaptor_configs_clear(&cfgs[i]);
    free(cfgs);
    return rc;
}

/* Signing approvals of the local participants that asked for them. */
static int check_approvals(struct en_req *r, const struct signing_data *sd,
                           const struct proto_signing_init_args *a)
{
    const struct keygen_data *kg = sd->kg;
    struct policy_signer *req = XALLOC_ARRAY(struct policy_signer, kg->n_parts);
    struct uuid *ids = XALLOC_ARRAY(struct uuid, sd->n_items);
    uint8_t(*msgs)[PROTO_MSG_LEN] = xcalloc(sd->n_items, PROTO_MSG_LEN);
    size_t n_req = 0;
    for (size_t p = 0; p < kg->n_parts; p++) {
        if (kg->parts[p].local && kg->parts[p].require_approval && units_of(sd, p) > 0) {
            req[n_req].user_id = kg->parts[p].user_id;
            memcpy(req[n_req++].auth_pubkey, kg->parts[p].auth_pubkey, PROTO_XONLY_LEN);
        }
    }
    for (size_t i = 0; i < sd->n_items; i++) {
        ids[i] = sd->items[i].item_id;
        memcpy(msgs[i], sd->items[i].msg, PROTO_MSG_LEN);
    }
    struct policy_approval_input in = {
        .signing_id = &a->signing_session_id,
        .keygen_id = &a->keygen_session_id,
        .item_ids = ids,
        .msgs = (const uint8_t(*)[PROTO_MSG_LEN])msgs,
        .n_items = sd->n_items,
        .approvals = a->approvals,
        .n_approvals = a->n_approvals,
        .required = req,
        .n_required = n_req,
        .now_secs = r->en->cfg.wall_secs(),
    };
    int rc = policy_approvals(&r->err, &in);
    free(req);
    free(ids);
    secure_free(msgs, sd->n_items * PROTO_MSG_LEN);
    return rc;
}

/* NonceGen for every local signer of every unit. */
struct nonce_job {
    struct signing_data *sd;
    const struct uuid *signing_id;
};

static int gen_unit_nonces(struct en_req *r, void *ctx, size_t i)
{
    const struct nonce_job *j = ctx;
    const struct keygen_data *kg = j->sd->kg;
    struct sg_unit *u = &j->sd->units[i];
    const struct sg_item *it = &j->sd->items[u->item];
    size_t n = it->group->n;
    uint8_t aggpk[PROTO_XONLY_LEN], extra[16 + 16 + 4];
    u->pubnonces = xcalloc(n, PROTO_PUBNONCE_LEN);
    u->secnonces = XALLOC_ARRAY(struct musig_secnonce *, n);
    musig_keyagg_xonly(it->ka, aggpk);
    memcpy(extra, j->signing_id->b, 16);
    memcpy(extra + 16, it->item_id.b, 16);
    buf_store_be32(extra + 32, u->index);
    for (size_t s = 0; s < n; s++) {
        const struct kg_participant *p = &kg->parts[it->group->members[s]];
        if (!p->local)
            continue;
        if (musig_nonce_gen(&u->secnonces[s], u->pubnonces[s], &p->kp, aggpk, it->msg,
                            PROTO_MSG_LEN, extra, sizeof(extra)) != KM_OK)
            return en_fail(&r->err, PROTO_E_INTERNAL, "nonce generation failed");
    }
    return KM_OK;
}

static int gen_nonces(struct en_req *r, struct signing_data *sd, const struct uuid *signing_id)
{
    struct nonce_job j = {.sd = sd, .signing_id = signing_id};
    return for_each_unit(r, sd->n_units, gen_unit_nonces, &j);
}

/* One sealed nonce list per local participant that signs something. */
static int nonces_result(struct en_req *r, const struct signing_data *sd,
                         const struct uuid *signing_id, struct proto_signing_init_result *res)
{
    const struct keygen_data *kg = sd->kg;
    int rc = KM_OK;
    res->nonces = XALLOC_ARRAY(struct proto_user_blob, kg->n_parts);
    res->units = (uint32_t)sd->n_units;
    for (size_t p = 0; p < kg->n_parts && rc == KM_OK; p++) {
        size_t n = units_of(sd, p);
        if (!kg->parts[p].local || n == 0)
            continue;
        struct proto_nonce_data nd = {.signing_session_id = *signing_id,
                                      .user_id = kg->parts[p].user_id};
        nd.nonces = XALLOC_ARRAY(struct proto_nonce_entry, n);
        for (size_t i = 0; i < sd->n_units; i++) {
            const struct sg_unit *u = &sd->units[i];
            long s = sd->items[u->item].group->signer_of[p];
            if (s < 0)
                continue;
            struct proto_nonce_entry *e = &nd.nonces[nd.n_nonces++];
            e->item_id = sd->items[u->item].item_id;
            e->unit = u->index;
            memcpy(e->pubnonce, u->pubnonces[s], PROTO_PUBNONCE_LEN);
        }
        struct proto_user_blob *b = &res->nonces[res->n_nonces++];
        b->user_id = kg->parts[p].user_id;
        rc = en_seal_json(&b->ciphertext, kg, PROTO_CTX_NONCES, &proto_nonce_data_schema, &nd,
                          &r->err);
        proto_nonce_data_clear(&nd);
    }
    return rc;
}

/* Takes the keygen session: it must be completed. Returns it with a
 * reference, or NULL with r->err set. */
static struct session *acquire_keygen(struct en_req *r, const struct uuid *id)
{
    char kid[UUID_STR_LEN + 1];
    uint64_t ticket;
    struct session *kgs = store_acquire(r->en->store, SESSION_KEYGEN, id, r->now_ms, &ticket);
    en_uuid_str(kid, id);
    if (kgs == NULL) {
        en_fail(&r->err, PROTO_E_NOT_FOUND,
                "keygen session %s not found (never created, cleared or expired)", kid);
        return NULL;
    }
    bool live = store_turn_wait(r->en->store, kgs, ticket);
    int state = kgs->state;
    store_turn_end(r->en->store, kgs);
    if (!live || state != KEYGEN_COMPLETED) {
        store_release(r->en->store, kgs);
        if (!live)
            en_fail(&r->err, PROTO_E_NOT_FOUND, "keygen session %s was cleared", kid);
        else
            en_fail(&r->err, PROTO_E_INVALID_STATE,
                    "%s needs keygen session %s in state completed; it is in state %s", r->pc->name,
                    kid, en_state_name(SESSION_KEYGEN, state));
        return NULL;
    }
    return kgs;
}

int en_signing_init(struct en_req *r)
{
    const struct proto_signing_init_args *a = r->args;
    struct proto_signing_init_result res = {0};
    struct session *kgs = acquire_keygen(r, &a->keygen_session_id);
    if (kgs == NULL)
        return KM_ERR_INVALID;
    struct signing_data *sd = xcalloc(1, sizeof(*sd));
    sd->st = r->en->store;
    sd->keygen = kgs;
    sd->kg = kgs->data;
    sd->coordinator = sd->kg->coordinator;

    int rc = build_items(r, sd, a);
    if (rc == KM_OK)
        rc = check_approvals(r, sd, a);
    if (rc == KM_OK)
        rc = gen_nonces(r, sd, &a->signing_session_id);
    if (rc == KM_OK)
        rc = nonces_result(r, sd, &a->signing_session_id, &res);
    if (rc != KM_OK) {
        signing_destroy(sd);
        proto_signing_init_result_clear(&res);
        return rc;
    }
    size_t units = sd->n_units, items = sd->n_items;
    struct session *s = session_new(SESSION_SIGNING, &a->signing_session_id, &a->keygen_session_id,
                                    sd, signing_destroy);
    s->state = SIGNING_NONCES_ISSUED;
    rc = en_store_insert(r, s, kgs, a->timeout_secs);
    if (rc == KM_OK) {
        char sid[UUID_STR_LEN + 1];
        log_debug(LOG_COMP, "signing %s: %zu items, %zu units, nonces for %zu local signers",
                  en_uuid_str(sid, &a->signing_session_id), items, units, res.n_nonces);
        r->result = proto_signing_init_result_encode(&res);
    }
    proto_signing_init_result_clear(&res);
    return rc;
}

/* ---- Per-user inputs of the rounds ---------------------------------------------- */

/* Flat per-signer-unit staging of one round's inputs. */
struct stage {
    size_t *off; /* per unit */
    size_t total;
    bool *have;
    bool *seen; /* per participant */
};

static void stage_init(struct stage *st, const struct signing_data *sd)
{
    st->off = unit_offsets(sd, &st->total);
    st->have = XALLOC_ARRAY(bool, st->total ? st->total : 1);
    st->seen = XALLOC_ARRAY(bool, sd->kg->n_parts);
}

static void stage_release(struct stage *st)
{
    free(st->off);
    free(st->have);
    free(st->seen);
}

/* The participant index of a sender, who must sign something here. */
static int find_sender(struct en_req *r, const struct signing_data *sd, const struct uuid *user,
                       enum proto_code code, const char *what, size_t *p_out)
{
    char uid[UUID_STR_LEN + 1];
    long p = kg_find_participant(sd->kg, user);
    en_uuid_str(uid, user);
    if (p < 0)
        return en_fail(&r->err, code,
                       "%s from user %s, who is not a participant of the keygen "
                       "session",
                       what, uid);
    if (units_of(sd, (size_t)p) == 0)
        return en_fail(&r->err, code, "%s from user %s, who signs no item of this session", what,
                       uid);
    *p_out = (size_t)p;
    return KM_OK;
}

/* Resolves one (item, unit) entry of participant p to a flat slot. */
static int resolve_entry(struct en_req *r, const struct signing_data *sd, struct stage *st,
                         size_t p, const struct uuid *item_id, uint32_t unit, enum proto_code code,
                         const char *what, size_t *slot, size_t *gu)
{
    char iid[UUID_STR_LEN + 1];
    long i = find_item(sd, item_id);
    en_uuid_str(iid, item_id);
    if (i < 0)
        return en_fail(&r->err, code, "%s: item %s is not in this session", what, iid);
    const struct sg_item *it = &sd->items[i];
    if (unit >= it->n_units)
        return en_fail(&r->err, code, "%s: item %s has no unit %u", what, iid, unit);
    long s = it->group->signer_of[p];
    if (s < 0)
        return en_fail(&r->err, code, "%s: the user does not sign item %s", what, iid);
    *gu = it->first_unit + unit;
    *slot = st->off[*gu] + (size_t)s;
    if (st->have[*slot])
        return en_fail(&r->err, code, "%s: item %s unit %u appears twice", what, iid, unit);
    st->have[*slot] = true;
    return KM_OK;
}

/* Every participant who signs something must have sent its part. */
static int check_all_seen(struct en_req *r, const struct signing_data *sd, const struct stage *st,
                          const char *what)
{
    for (size_t p = 0; p < sd->kg->n_parts; p++) {
        if (!st->seen[p] && units_of(sd, p) > 0) {
            char uid[UUID_STR_LEN + 1];
            return en_fail(&r->err, PROTO_E_INVALID_ARGUMENT, "no %s from user %s", what,
                           en_uuid_str(uid, &sd->kg->parts[p].user_id));
        }
    }
    return KM_OK;
}

/* Decrypts and decodes one user's sealed JSON. */
static int open_user_json(struct en_req *r, const struct signing_data *sd,
                          const struct proto_user_blob *b, const char *ctx,
                          const struct proto_schema *schema, void *out, enum proto_code code,
                          const char *what)
{
    uint8_t *pt = NULL;
    size_t n = 0;
    struct km_error err;
    int rc =
        en_open_alloc(&pt, &n, PROTO_SEALED_LARGE_MAX, sd->kg, ctx, &b->ciphertext, &r->err, what);
    if (rc == KM_OK && proto_decode_bytes(schema, out, pt, n, &err) != KM_OK)
        rc = en_fail(&r->err, code, "%s: %s", what, err.msg);
    free(pt);
    return rc;
}

/* A round's payload names the session and user it belongs to, so the
 * gateway cannot replay it into another session or for another user. */
static int check_bound(struct en_req *r, enum proto_code code, const char *what,
                       const struct uuid *session, const struct uuid *user,
                       const struct uuid *sender)
{
    if (!uuid_equal(session, &r->sess->id) || !uuid_equal(user, sender))
        return en_fail(&r->err, code, "%s are bound to another session or user", what);
    return KM_OK;
}

/* ---- signing_distribute_nonces --------------------------------------------------- */

struct nonce_stage {
    struct stage st;
    struct musig_pubnonce *pn;
    uint8_t (*bytes)[PROTO_PUBNONCE_LEN];
};

/* Checks and stages one public nonce of participant p. */
static int stage_nonce(struct en_req *r, const struct signing_data *sd, struct nonce_stage *ns,
                       size_t p, const struct proto_nonce_entry *e, const char *what)
{
    size_t slot = 0, gu = 0;
    int rc = resolve_entry(r, sd, &ns->st, p, &e->item_id, e->unit, PROTO_E_INVALID_NONCE, what,
                           &slot, &gu);
    if (rc != KM_OK)
        return rc;
    if (musig_pubnonce_parse(&ns->pn[slot], e->pubnonce, PROTO_PUBNONCE_LEN) != KM_OK)
        return en_fail(&r->err, PROTO_E_INVALID_NONCE, "%s: the nonce for unit %u is invalid", what,
                       e->unit);
    /* The gateway must not swap this enclave's own nonces: the secret
     * nonces would then sign for a different aggregate nonce. */
    if (sd->kg->parts[p].local && memcmp(sd->units[gu].pubnonces[slot - ns->st.off[gu]],
                                         e->pubnonce, PROTO_PUBNONCE_LEN) != 0)
        return en_fail(&r->err, PROTO_E_INVALID_NONCE,
                       "%s: the nonce for unit %u differs from the one this enclave issued", what,
                       e->unit);
    memcpy(ns->bytes[slot], e->pubnonce, PROTO_PUBNONCE_LEN);
    return KM_OK;
}

static int stage_user_nonces(struct en_req *r, struct signing_data *sd, struct nonce_stage *ns,
                             const struct proto_user_blob *b)
{
    char uid[UUID_STR_LEN + 1], what[96];
    size_t p = 0;
    snprintf(what, sizeof(what), "the nonces of user %s", en_uuid_str(uid, &b->user_id));
    int rc = find_sender(r, sd, &b->user_id, PROTO_E_INVALID_NONCE, "nonces", &p);
    if (rc != KM_OK)
        return rc;
    struct proto_nonce_data nd;
    rc = open_user_json(r, sd, b, PROTO_CTX_NONCES, &proto_nonce_data_schema, &nd,
                        PROTO_E_INVALID_NONCE, what);
    if (rc != KM_OK)
        return rc;
    rc = check_bound(r, PROTO_E_INVALID_NONCE, what, &nd.signing_session_id, &nd.user_id,
                     &b->user_id);
    for (size_t i = 0; i < nd.n_nonces && rc == KM_OK; i++)
        rc = stage_nonce(r, sd, ns, p, &nd.nonces[i], what);
    if (rc == KM_OK && nd.n_nonces != units_of(sd, p))
        rc = en_fail(&r->err, PROTO_E_INVALID_NONCE, "%s cover %zu of the user's %zu units", what,
                     nd.n_nonces, units_of(sd, p));
    ns->st.seen[p] = true;
    proto_nonce_data_clear(&nd);
    return rc;
}

/* The coordinator remembers its verified partial signature for signer s
 * (aggregate_unit). */
static void keep_own_psig(struct sg_unit *u, size_t n, size_t s, const uint8_t psig[PROTO_PSIG_LEN])
{
    if (u->own == NULL) {
        u->own = xcalloc(n, sizeof(*u->own));
        u->own_psigs = xcalloc(n, PROTO_PSIG_LEN);
    }
    memcpy(u->own_psigs[s], psig, PROTO_PSIG_LEN);
    u->own[s] = true;
}

/* Aggregates unit i's nonces, computes its session values and signs for
 * the local signers (verifying each partial signature). */
static int sign_unit(struct en_req *r, struct signing_data *sd, size_t i, const uint8_t *bytes,
                     const struct musig_pubnonce *pn, uint8_t (*psigs)[PROTO_PSIG_LEN])
{
    struct sg_unit *u = &sd->units[i];
    const struct sg_item *it = &sd->items[u->item];
    size_t n = it->group->n;
    struct musig_aggnonce agg;
    struct musig_blame blame;
    u->parsed = XALLOC_ARRAY(struct musig_pubnonce, n);
    memcpy(u->parsed, pn, n * sizeof(*pn));
    memcpy(u->pubnonces, bytes, n * PROTO_PUBNONCE_LEN);
    if (musig_nonce_agg(&agg, &blame, u->parsed, n) != KM_OK ||
        musig_session_init(&u->ms, it->ka, &agg, it->msg, PROTO_MSG_LEN,
                           u->adaptor ? u->point : NULL,
                           u->adaptor ? PROTO_PUBKEY_LEN : 0) != KM_OK)
        return en_fail(&r->err, PROTO_E_INTERNAL, "session values of unit %zu failed", i);
    for (size_t s = 0; s < n; s++) {
        if (u->secnonces[s] == NULL)
            continue;
        const struct keypair *kp = &sd->kg->parts[it->group->members[s]].kp;
        int rc = musig_partial_sign(psigs[s], &blame, u->secnonces[s], kp, it->ka, &u->ms);
        musig_secnonce_free(u->secnonces[s]);
        u->secnonces[s] = NULL;
        if (rc != KM_OK)
            return en_fail(&r->err, PROTO_E_INTERNAL, "partial signing failed: %s",
                           musig_reason_str(blame.reason));
        /* musig_partial_sign does not check its own output (musig.h). */
        if (musig_partial_sig_verify(psigs[s], PROTO_PSIG_LEN, &u->parsed[s], it->ka, s, &u->ms) !=
            KM_OK)
            return en_fail(&r->err, PROTO_E_VERIFICATION_FAILED,
                           "this enclave's own partial signature for unit %zu does not verify", i);
        if (sd->coordinator)
            keep_own_psig(u, n, s, psigs[s]);
    }
    return KM_OK;
}

/* One sealed partial-signature list per local participant. */
static int psigs_result(struct en_req *r, const struct signing_data *sd,
                        const struct uuid *signing_id, const size_t *off,
                        const uint8_t (*psigs)[PROTO_PSIG_LEN],
                        struct proto_signing_distribute_nonces_result *res)
{
    const struct keygen_data *kg = sd->kg;
    int rc = KM_OK;
    res->partial_signatures = XALLOC_ARRAY(struct proto_user_blob, kg->n_parts);
    for (size_t p = 0; p < kg->n_parts && rc == KM_OK; p++) {
        size_t n = units_of(sd, p);
        if (!kg->parts[p].local || n == 0)
            continue;
        struct proto_psig_data pd = {.signing_session_id = *signing_id,
                                     .user_id = kg->parts[p].user_id};
        pd.partial_signatures = XALLOC_ARRAY(struct proto_psig_entry, n);
        for (size_t i = 0; i < sd->n_units; i++) {
            const struct sg_unit *u = &sd->units[i];
            long s = sd->items[u->item].group->signer_of[p];
            if (s < 0)
                continue;
            struct proto_psig_entry *e = &pd.partial_signatures[pd.n_partial_signatures++];
            e->item_id = sd->items[u->item].item_id;
            e->unit = u->index;
            memcpy(e->psig, psigs[off[i] + (size_t)s], PROTO_PSIG_LEN);
        }
        struct proto_user_blob *b = &res->partial_signatures[res->n_partial_signatures++];
        b->user_id = kg->parts[p].user_id;
        rc = en_seal_json(&b->ciphertext, kg, PROTO_CTX_PSIGS, &proto_psig_data_schema, &pd,
                          &r->err);
        proto_psig_data_clear(&pd);
    }
    return rc;
}

struct sign_job {
    struct signing_data *sd;
    const struct nonce_stage *ns;
    uint8_t (*psigs)[PROTO_PSIG_LEN];
};

static int sign_unit_job(struct en_req *r, void *ctx, size_t i)
{
    const struct sign_job *j = ctx;
    size_t off = j->ns->st.off[i];
    return sign_unit(r, j->sd, i, j->ns->bytes[off], &j->ns->pn[off], &j->psigs[off]);
}

/* Signs every unit (consuming the secret nonces) and seals the partial
 * signatures. */
static int sign_units(struct en_req *r, struct signing_data *sd, const struct uuid *signing_id,
                      const struct nonce_stage *ns,
                      struct proto_signing_distribute_nonces_result *res)
{
    uint8_t(*psigs)[PROTO_PSIG_LEN] = xcalloc(ns->st.total ? ns->st.total : 1, PROTO_PSIG_LEN);
    struct sign_job j = {.sd = sd, .ns = ns, .psigs = psigs};
    int rc = for_each_unit(r, sd->n_units, sign_unit_job, &j);
    if (rc == KM_OK)
        rc = psigs_result(r, sd, signing_id, ns->st.off, (const uint8_t(*)[PROTO_PSIG_LEN])psigs,
                          res);
    free(psigs);
    return rc;
}

/* Signs every unit; a failure here has consumed secret nonces, so the
 * session is wiped. */
static int sign_all(struct en_req *r, struct signing_data *sd, const struct nonce_stage *ns,
                    struct proto_signing_distribute_nonces_result *res)
{
    int rc = sign_units(r, sd, &r->sess->id, ns, res);
    if (rc != KM_OK) {
        store_remove(r->en->store, r->sess, en_on_removed, r->en);
        size_t n = strlen(r->err.msg);
        snprintf(r->err.msg + n, sizeof(r->err.msg) - n, "; the session was wiped");
    }
    return rc;
}

int en_signing_distribute_nonces(struct en_req *r)
{
    const struct proto_signing_distribute_nonces_args *a = r->args;
    struct signing_data *sd = r->sess->data;
    struct proto_signing_distribute_nonces_result res = {0};
    struct nonce_stage ns;
    stage_init(&ns.st, sd);
    ns.pn = XALLOC_ARRAY(struct musig_pubnonce, ns.st.total ? ns.st.total : 1);
    ns.bytes = xcalloc(ns.st.total ? ns.st.total : 1, PROTO_PUBNONCE_LEN);
    int rc = KM_OK;
    for (size_t i = 0; i < a->n_nonces && rc == KM_OK; i++)
        rc = stage_user_nonces(r, sd, &ns, &a->nonces[i]);
    if (rc == KM_OK)
        rc = check_all_seen(r, sd, &ns.st, "nonces");
    if (rc == KM_OK)
        rc = sign_all(r, sd, &ns, &res);
    if (rc == KM_OK) {
        char sid[UUID_STR_LEN + 1];
        store_set_state(r->en->store, r->sess, SIGNING_PARTIALS_ISSUED);
        log_debug(LOG_COMP, "signing %s: %zu units signed for %zu local signers",
                  en_uuid_str(sid, &r->sess->id), sd->n_units, res.n_partial_signatures);
        /* Only the coordinator finalizes; the others are done. */
        if (!sd->coordinator) {
            sg_wipe(sd);
            en_signing_done(r);
        }
        r->result = proto_signing_distribute_nonces_result_encode(&res);
    }
    proto_signing_distribute_nonces_result_clear(&res);
    free(ns.pn);
    free(ns.bytes);
    stage_release(&ns.st);
    return rc;
}

/* ---- signing_finalize --------------------------------------------------------------- */

static int stage_user_psigs(struct en_req *r, struct signing_data *sd, struct stage *st,
                            uint8_t (*psigs)[PROTO_PSIG_LEN], const struct proto_user_blob *b)
{
    char uid[UUID_STR_LEN + 1], what[112];
    size_t p = 0;
    snprintf(what, sizeof(what), "the partial signatures of user %s",
             en_uuid_str(uid, &b->user_id));
    int rc = find_sender(r, sd, &b->user_id, PROTO_E_INVALID_ARGUMENT, "partial signatures", &p);
    if (rc != KM_OK)
        return rc;
    struct proto_psig_data pd;
    rc = open_user_json(r, sd, b, PROTO_CTX_PSIGS, &proto_psig_data_schema, &pd,
                        PROTO_E_INVALID_ARGUMENT, what);
    if (rc != KM_OK)
        return rc;
    rc = check_bound(r, PROTO_E_INVALID_ARGUMENT, what, &pd.signing_session_id, &pd.user_id,
                     &b->user_id);
    for (size_t i = 0; i < pd.n_partial_signatures && rc == KM_OK; i++) {
        const struct proto_psig_entry *e = &pd.partial_signatures[i];
        size_t slot = 0, gu = 0;
        rc = resolve_entry(r, sd, st, p, &e->item_id, e->unit, PROTO_E_INVALID_ARGUMENT, what,
                           &slot, &gu);
        if (rc == KM_OK)
            memcpy(psigs[slot], e->psig, PROTO_PSIG_LEN);
    }
    if (rc == KM_OK && pd.n_partial_signatures != units_of(sd, p))
        rc = en_fail(&r->err, PROTO_E_INVALID_ARGUMENT, "%s cover %zu of the user's %zu units",
                     what, pd.n_partial_signatures, units_of(sd, p));
    st->seen[p] = true;
    proto_psig_data_clear(&pd);
    return rc;
}

/* Aggregates unit i and verifies everything, naming a culprit. */
static int aggregate_unit(struct en_req *r, const struct signing_data *sd, size_t i,
                          const uint8_t (*psigs)[PROTO_PSIG_LEN], uint8_t sig[PROTO_SIG_LEN])
{
    const struct sg_unit *u = &sd->units[i];
    const struct sg_item *it = &sd->items[u->item];
    struct musig_blame blame = {MUSIG_R_NONE, -1};
    char iid[UUID_STR_LEN + 1], uid[UUID_STR_LEN + 1];
    en_uuid_str(iid, &it->item_id);
    /* This enclave's own partial signatures, verified when it made them,
     * are not verified again if they came back unchanged. */
    size_t n = it->group->n;
    bool known[PROTO_MAX_PARTICIPANTS];
    if (n > PROTO_MAX_PARTICIPANTS)
        KM_BUG("a group of %zu signers", n);
    for (size_t s = 0; s < n; s++)
        known[s] =
            u->own != NULL && u->own[s] && memcmp(u->own_psigs[s], psigs[s], PROTO_PSIG_LEN) == 0;
    int rc = musig_partial_sig_agg_verify_known(sig, &blame, it->ka, &u->ms, u->parsed, psigs,
                                                known, n, it->msg, PROTO_MSG_LEN);
    if (rc != KM_OK && blame.signer >= 0 && (size_t)blame.signer < it->group->n) {
        const struct uuid *user = &sd->kg->parts[it->group->members[blame.signer]].user_id;
        return en_fail(&r->err, PROTO_E_INVALID_PARTIAL_SIGNATURE,
                       "the partial signature of user %s for item %s (unit %u) does not verify",
                       en_uuid_str(uid, user), iid, u->index);
    }
    if (rc != KM_OK)
        return en_fail(&r->err, PROTO_E_VERIFICATION_FAILED,
                       "the signature for item %s (unit %u) does not verify", iid, u->index);
    if (u->adaptor) {
        uint8_t xonly[PROTO_XONLY_LEN];
        musig_keyagg_xonly(it->ka, xonly);
        if (adaptor_presig_verify(sig, PROTO_SIG_LEN, musig_session_nonce_parity(&u->ms), u->point,
                                  PROTO_PUBKEY_LEN, xonly, PROTO_XONLY_LEN, it->msg,
                                  PROTO_MSG_LEN) != KM_OK)
            return en_fail(&r->err, PROTO_E_VERIFICATION_FAILED,
                           "the adaptor pre-signature for item %s (unit %u) does not verify", iid,
                           u->index);
    }
    return KM_OK;
}

/* Seals item i's results: a signature, or its units' pre-signatures. */
static int seal_item(struct en_req *r, const struct signing_data *sd, size_t i,
                     const uint8_t (*sigs)[PROTO_SIG_LEN], struct proto_item_result *out)
{
    const struct sg_item *it = &sd->items[i];
    out->item_id = it->item_id;
    if (!it->adaptor)
        return en_seal(&out->encrypted_signature, sd->kg, PROTO_CTX_SIGNATURE, sigs[it->first_unit],
                       PROTO_SIG_LEN, &r->err);
    struct proto_adaptor_results ar = {0};
    ar.results = XALLOC_ARRAY(struct proto_adaptor_result, it->n_units);
    for (size_t k = 0; k < it->n_units; k++, ar.n_results++) {
        const struct sg_unit *u = &sd->units[it->first_unit + k];
        struct proto_adaptor_result *e = &ar.results[k];
        e->adaptor_id = u->adaptor_id;
        e->adaptor_type = u->adaptor_type;
        e->branch = u->branch;
        memcpy(e->adaptor_point, u->point, PROTO_PUBKEY_LEN);
        memcpy(e->presignature, sigs[it->first_unit + k], PROTO_SIG_LEN);
        e->nonce_parity = (uint32_t)musig_session_nonce_parity(&u->ms);
    }
    int rc = en_seal_json(&out->encrypted_adaptor_signatures, sd->kg, PROTO_CTX_ADAPTOR_RESULT,
                          &proto_adaptor_results_schema, &ar, &r->err);
    proto_adaptor_results_clear(&ar);
    return rc;
}

struct aggregate_job {
    const struct signing_data *sd;
    const struct stage *st;
    const uint8_t (*psigs)[PROTO_PSIG_LEN];
    uint8_t (*sigs)[PROTO_SIG_LEN];
};

static int aggregate_unit_job(struct en_req *r, void *ctx, size_t i)
{
    const struct aggregate_job *j = ctx;
    return aggregate_unit(r, j->sd, i, &j->psigs[j->st->off[i]], j->sigs[i]);
}

static int finalize_all(struct en_req *r, const struct signing_data *sd, const struct stage *st,
                        const uint8_t (*psigs)[PROTO_PSIG_LEN],
                        struct proto_signing_finalize_result *res)
{
    uint8_t(*sigs)[PROTO_SIG_LEN] = xcalloc(sd->n_units, PROTO_SIG_LEN);
    struct aggregate_job j = {.sd = sd, .st = st, .psigs = psigs, .sigs = sigs};
    int rc = for_each_unit(r, sd->n_units, aggregate_unit_job, &j);
    res->results = XALLOC_ARRAY(struct proto_item_result, sd->n_items);
    for (size_t i = 0; i < sd->n_items && rc == KM_OK; i++, res->n_results++)
        rc = seal_item(r, sd, i, (const uint8_t(*)[PROTO_SIG_LEN])sigs, &res->results[i]);
    free(sigs);
    return rc;
}

int en_signing_finalize(struct en_req *r)
{
    const struct proto_signing_finalize_args *a = r->args;
    struct signing_data *sd = r->sess->data;
    struct proto_signing_finalize_result res = {0};
    char sid[UUID_STR_LEN + 1];
    en_uuid_str(sid, &r->sess->id);
    if (!sd->coordinator)
        return en_fail(&r->err, PROTO_E_INVALID_STATE,
                       "signing_finalize is not allowed here: this enclave is not the "
                       "coordinator of signing session %s",
                       sid);
    struct stage st;
    stage_init(&st, sd);
    uint8_t(*psigs)[PROTO_PSIG_LEN] = xcalloc(st.total ? st.total : 1, PROTO_PSIG_LEN);
    int rc = KM_OK;
    for (size_t i = 0; i < a->n_partial_signatures && rc == KM_OK; i++)
        rc = stage_user_psigs(r, sd, &st, psigs, &a->partial_signatures[i]);
    if (rc == KM_OK)
        rc = check_all_seen(r, sd, &st, "partial signatures");
    if (rc == KM_OK)
        rc = finalize_all(r, sd, &st, (const uint8_t(*)[PROTO_PSIG_LEN])psigs, &res);
    if (rc == KM_OK) {
        store_set_state(r->en->store, r->sess, SIGNING_COMPLETED);
        log_debug(LOG_COMP, "signing %s: completed, %zu items verified", sid, sd->n_items);
        sg_wipe(sd);
        r->result = proto_signing_finalize_result_encode(&res);
        en_signing_done(r);
    }
    proto_signing_finalize_result_clear(&res);
    free(psigs);
    stage_release(&st);
    return rc;
}

/* ---- nonce_pool_fill (docs/PROTOCOL.md "Nonce pools") -------------------------------- */

/* Participant indices of kg's local participants, in order: the order of
 * a pool entry's nonces. Returns how many (*out: malloc'd). */
static size_t local_parts(const struct keygen_data *kg, size_t **out)
{
    size_t n = 0;
    *out = XALLOC_ARRAY(size_t, kg->n_parts);
    for (size_t p = 0; p < kg->n_parts; p++)
        if (kg->parts[p].local)
            (*out)[n++] = p;
    return n;
}

struct fill_job {
    const struct keygen_data *kg;
    size_t *loc;
    size_t n_loc;
    uint8_t aggpk[PROTO_XONLY_LEN];
    struct pool_entry *entries;
};

/*
 * NonceGen for one entry, per local participant: fresh randomness, the
 * participant's key, the untweaked full-set aggregate key, no message, and
 * the entry id as extra_in. BIP-327 makes aggpk, msg and extra_in optional
 * defence in depth beside the randomness; Sign does not check them, so one
 * entry may sign under any item's tweak or subset. The id as extra_in ties
 * the nonce to the entry it is handed out as.
 */
static int gen_entry(struct en_req *r, void *ctx, size_t i)
{
    const struct fill_job *j = ctx;
    struct pool_entry *pe = &j->entries[i];
    if (secure_random(pe->id, sizeof(pe->id)) != KM_OK)
        return en_fail(&r->err, PROTO_E_INTERNAL, "no randomness for a pool entry id");
    pe->expires_ms = r->now_ms + (uint64_t)EN_POOL_TTL_SECS * 1000u;
    pe->n = j->n_loc;
    pe->sec = XALLOC_ARRAY(struct musig_secnonce *, j->n_loc);
    pe->pub = xcalloc(j->n_loc, PROTO_PUBNONCE_LEN);
    for (size_t l = 0; l < j->n_loc; l++) {
        const struct keypair *kp = &j->kg->parts[j->loc[l]].kp;
        if (musig_nonce_gen(&pe->sec[l], pe->pub[l], kp, j->aggpk, NULL, 0, pe->id,
                            sizeof(pe->id)) != KM_OK)
            return en_fail(&r->err, PROTO_E_INTERNAL, "nonce generation failed");
    }
    return KM_OK;
}

/* Seals each entry's public nonces, one blob per local participant, bound
 * to the keygen, the user and the entry. */
static int fill_result(struct en_req *r, const struct fill_job *j, size_t n, const struct uuid *kid,
                       struct proto_nonce_pool_fill_result *res)
{
    const struct keygen_data *kg = j->kg;
    int rc = KM_OK;
    res->ttl_secs = EN_POOL_TTL_SECS;
    res->entries = XALLOC_ARRAY(struct proto_pool_entry, n);
    for (size_t i = 0; i < n && rc == KM_OK; i++, res->n_entries++) {
        struct proto_pool_entry *out = &res->entries[i];
        memcpy(out->entry_id, j->entries[i].id, PROTO_POOL_ENTRY_ID_LEN);
        out->nonces = XALLOC_ARRAY(struct proto_user_blob, j->n_loc);
        for (size_t l = 0; l < j->n_loc && rc == KM_OK; l++, out->n_nonces++) {
            struct proto_pool_nonce pn = {.keygen_session_id = *kid,
                                          .user_id = kg->parts[j->loc[l]].user_id};
            memcpy(pn.entry_id, out->entry_id, PROTO_POOL_ENTRY_ID_LEN);
            memcpy(pn.pubnonce, j->entries[i].pub[l], PROTO_PUBNONCE_LEN);
            out->nonces[l].user_id = pn.user_id;
            rc = en_seal_json(&out->nonces[l].ciphertext, kg, PROTO_CTX_POOL_NONCE,
                              &proto_pool_nonce_schema, &pn, &r->err);
        }
    }
    return rc;
}

int en_nonce_pool_fill(struct en_req *r)
{
    const struct proto_nonce_pool_fill_args *a = r->args;
    struct proto_nonce_pool_fill_result res = {0};
    struct session *kgs = acquire_keygen(r, &a->keygen_session_id);
    if (kgs == NULL)
        return KM_ERR_INVALID;
    struct fill_job j = {.kg = kgs->data};
    j.n_loc = local_parts(j.kg, &j.loc);
    musig_keyagg_xonly(j.kg->full.base, j.aggpk);
    j.entries = XALLOC_ARRAY(struct pool_entry, a->count);
    int rc = KM_OK;
    if (j.n_loc == 0)
        rc = en_fail(&r->err, PROTO_E_INVALID_STATE,
                     "this enclave holds no participant key of the keygen session");
    if (rc == KM_OK)
        rc = for_each_unit(r, a->count, gen_entry, &j);
    /* Sealed before they enter the pool: a failure leaves the pool as it was. */
    if (rc == KM_OK)
        rc = fill_result(r, &j, a->count, &a->keygen_session_id, &res);
    if (rc == KM_OK)
        rc = pool_add(kgs->data, j.entries, a->count, r->now_ms, &r->err); /* takes them over */
    for (size_t i = 0; i < a->count; i++)
        pool_entry_wipe(&j.entries[i]); /* no-op for entries the pool took */
    free(j.entries);
    free(j.loc);
    if (rc == KM_OK) {
        char kid[UUID_STR_LEN + 1];
        log_debug(LOG_COMP, "keygen %s: %u pool entries for %zu local signers",
                  en_uuid_str(kid, &a->keygen_session_id), a->count, j.n_loc);
        r->result = proto_nonce_pool_fill_result_encode(&res);
    }
    proto_nonce_pool_fill_result_clear(&res);
    store_release(r->en->store, kgs);
    return rc;
}

/* ---- signing_sign (docs/PROTOCOL.md "Nonce pools") --------------------------------- */

/* A local signer's use of a pool entry: sorted to find the distinct
 * entries and any (entry, participant) named twice. */
struct pool_use {
    uint8_t id[PROTO_POOL_ENTRY_ID_LEN];
    size_t local; /* the participant's index in the entry */
    size_t unit;  /* the signing unit */
    size_t slot;  /* flat signer-unit slot */
};

static int use_cmp(const void *x, const void *y)
{
    const struct pool_use *a = x, *b = y;
    int c = memcmp(a->id, b->id, PROTO_POOL_ENTRY_ID_LEN);
    if (c != 0)
        return c;
    return (a->local > b->local) - (a->local < b->local);
}

struct pool_plan {
    struct nonce_stage ns;
    long *local_of;        /* per participant: index in an entry, or -1 */
    struct pool_use *uses; /* this enclave's signer slots */
    size_t n_uses;
    uint8_t (*ids)[PROTO_POOL_ENTRY_ID_LEN]; /* distinct, sorted */
    size_t n_ids;
    size_t *use_entry;        /* per use: index in ids */
    struct pool_entry *taken; /* per id, once taken */
};

static void plan_init(struct pool_plan *pl, const struct signing_data *sd)
{
    memset(pl, 0, sizeof(*pl));
    stage_init(&pl->ns.st, sd);
    size_t t = pl->ns.st.total ? pl->ns.st.total : 1;
    pl->ns.pn = XALLOC_ARRAY(struct musig_pubnonce, t);
    pl->ns.bytes = xcalloc(t, PROTO_PUBNONCE_LEN);
    pl->local_of = XALLOC_ARRAY(long, sd->kg->n_parts);
    long l = 0;
    for (size_t p = 0; p < sd->kg->n_parts; p++)
        pl->local_of[p] = sd->kg->parts[p].local ? l++ : -1;
    pl->uses = XALLOC_ARRAY(struct pool_use, t);
    pl->ids = xcalloc(t, PROTO_POOL_ENTRY_ID_LEN);
    pl->use_entry = XALLOC_ARRAY(size_t, t);
}

/* Wipes whatever the taken entries still hold: the nonces of local
 * participants who sign nothing here, or all of them after a failure. */
static void plan_wipe_taken(struct pool_plan *pl)
{
    for (size_t i = 0; pl->taken != NULL && i < pl->n_ids; i++)
        pool_entry_wipe(&pl->taken[i]);
    free(pl->taken);
    pl->taken = NULL;
}

static void plan_release(struct pool_plan *pl)
{
    plan_wipe_taken(pl);
    free(pl->ns.pn);
    free(pl->ns.bytes);
    stage_release(&pl->ns.st);
    free(pl->local_of);
    free(pl->uses);
    free(pl->ids);
    free(pl->use_entry);
}

/* Opens one sealed pool nonce, which must be bound to this keygen, its
 * user and the entry the reference names. */
static int open_pool_nonce(struct en_req *r, const struct signing_data *sd,
                           const struct uuid *keygen_id, const struct proto_pool_nonce_ref *ref,
                           struct proto_pool_nonce *pn, const char *what)
{
    uint8_t pt[PROTO_SEALED_SMALL_MAX];
    size_t n = 0;
    struct km_error err;
    int rc = en_open(pt, sizeof(pt), &n, sd->kg, PROTO_CTX_POOL_NONCE, &ref->encrypted_nonce,
                     &r->err, what);
    if (rc == KM_OK && proto_decode_bytes(&proto_pool_nonce_schema, pn, pt, n, &err) != KM_OK)
        rc = en_fail(&r->err, PROTO_E_INVALID_NONCE, "%s: %s", what, err.msg);
    if (rc == KM_OK && (!uuid_equal(&pn->keygen_session_id, keygen_id) ||
                        !uuid_equal(&pn->user_id, &ref->user_id) ||
                        memcmp(pn->entry_id, ref->entry_id, PROTO_POOL_ENTRY_ID_LEN) != 0))
        rc = en_fail(&r->err, PROTO_E_INVALID_NONCE,
                     "%s is bound to another keygen session, user or pool entry", what);
    return rc;
}

/* Checks and stages one signer's pool nonce for one unit. */
static int stage_pool_nonce(struct en_req *r, const struct signing_data *sd,
                            const struct uuid *keygen_id, struct pool_plan *pl,
                            const struct proto_pool_nonce_ref *ref)
{
    char uid[UUID_STR_LEN + 1], iid[UUID_STR_LEN + 1], what[160];
    snprintf(what, sizeof(what), "the pool nonce of user %s for item %s unit %u",
             en_uuid_str(uid, &ref->user_id), en_uuid_str(iid, &ref->item_id), ref->unit);
    size_t p = 0, slot = 0, gu = 0;
    int rc = find_sender(r, sd, &ref->user_id, PROTO_E_INVALID_NONCE, "a pool nonce", &p);
    if (rc == KM_OK)
        rc = resolve_entry(r, sd, &pl->ns.st, p, &ref->item_id, ref->unit, PROTO_E_INVALID_NONCE,
                           what, &slot, &gu);
    struct proto_pool_nonce pn;
    if (rc == KM_OK)
        rc = open_pool_nonce(r, sd, keygen_id, ref, &pn, what);
    if (rc != KM_OK)
        return rc;
    if (musig_pubnonce_parse(&pl->ns.pn[slot], pn.pubnonce, PROTO_PUBNONCE_LEN) != KM_OK)
        return en_fail(&r->err, PROTO_E_INVALID_NONCE, "%s is invalid", what);
    memcpy(pl->ns.bytes[slot], pn.pubnonce, PROTO_PUBNONCE_LEN);
    if (pl->local_of[p] >= 0) {
        struct pool_use *u = &pl->uses[pl->n_uses++];
        memcpy(u->id, ref->entry_id, PROTO_POOL_ENTRY_ID_LEN);
        u->local = (size_t)pl->local_of[p];
        u->unit = gu;
        u->slot = slot;
    }
    return KM_OK;
}

/* Every signer of every unit has its nonce; this enclave's uses name
 * distinct (entry, participant) pairs, so no secret nonce could sign twice
 * even within this command. Collects the distinct entries to take. */
static int plan_entries(struct en_req *r, struct pool_plan *pl, size_t n_refs)
{
    if (n_refs != pl->ns.st.total)
        return en_fail(&r->err, PROTO_E_INVALID_NONCE,
                       "the pool nonces cover %zu of the session's %zu signer-units", n_refs,
                       pl->ns.st.total);
    qsort(pl->uses, pl->n_uses, sizeof(*pl->uses), use_cmp);
    for (size_t k = 0; k < pl->n_uses; k++) {
        const struct pool_use *u = &pl->uses[k];
        bool same_id = k > 0 && memcmp(u->id, pl->uses[k - 1].id, PROTO_POOL_ENTRY_ID_LEN) == 0;
        if (same_id && u->local == pl->uses[k - 1].local) {
            char hex[2 * PROTO_POOL_ENTRY_ID_LEN + 1];
            hex_encode(hex, sizeof(hex), u->id, PROTO_POOL_ENTRY_ID_LEN);
            return en_fail(&r->err, PROTO_E_INVALID_NONCE,
                           "pool entry %s is named twice for the same signer", hex);
        }
        if (!same_id)
            memcpy(pl->ids[pl->n_ids++], u->id, PROTO_POOL_ENTRY_ID_LEN);
        pl->use_entry[k] = pl->n_ids - 1;
    }
    return KM_OK;
}

/* After the take: this enclave's nonces in the arguments must be its
 * entries' (else the secret nonces would sign for another aggregate
 * nonce); then the secret nonces move into the units. On failure the taken
 * entries are wiped by plan_release, never put back. */
static int assign_taken(struct en_req *r, struct signing_data *sd, struct pool_plan *pl)
{
    for (size_t k = 0; k < pl->n_uses; k++) {
        const struct pool_use *u = &pl->uses[k];
        const struct pool_entry *pe = &pl->taken[pl->use_entry[k]];
        if (u->local >= pe->n ||
            memcmp(pe->pub[u->local], pl->ns.bytes[u->slot], PROTO_PUBNONCE_LEN) != 0) {
            char hex[2 * PROTO_POOL_ENTRY_ID_LEN + 1];
            hex_encode(hex, sizeof(hex), u->id, PROTO_POOL_ENTRY_ID_LEN);
            return en_fail(&r->err, PROTO_E_INVALID_NONCE,
                           "a nonce differs from the one pool entry %s holds for its signer; "
                           "the named entries are spent",
                           hex);
        }
    }
    for (size_t i = 0; i < sd->n_units; i++) {
        size_t n = unit_signers(sd, &sd->units[i]);
        sd->units[i].pubnonces = xcalloc(n, PROTO_PUBNONCE_LEN);
        sd->units[i].secnonces = XALLOC_ARRAY(struct musig_secnonce *, n);
    }
    for (size_t k = 0; k < pl->n_uses; k++) {
        const struct pool_use *u = &pl->uses[k];
        struct pool_entry *pe = &pl->taken[pl->use_entry[k]];
        sd->units[u->unit].secnonces[u->slot - pl->ns.st.off[u->unit]] = pe->sec[u->local];
        pe->sec[u->local] = NULL;
    }
    return KM_OK;
}

/* The coordinator keeps the session for signing_finalize; another enclave
 * is done (as after signing_distribute_nonces) and keeps nothing. */
static int keep_signing(struct en_req *r, struct signing_data *sd, struct session *kgs,
                        const struct proto_signing_sign_args *a)
{
    if (!sd->coordinator) {
        signing_destroy(sd);
        return KM_OK;
    }
    struct session *s = session_new(SESSION_SIGNING, &a->init.signing_session_id,
                                    &a->init.keygen_session_id, sd, signing_destroy);
    s->state = SIGNING_PARTIALS_ISSUED;
    return en_store_insert(r, s, kgs, a->init.timeout_secs);
}

/* The signing session must be new (checked again when it is inserted). */
static int check_new_signing(struct en_req *r, const struct uuid *id)
{
    uint64_t ticket;
    struct session *s = store_acquire(r->en->store, SESSION_SIGNING, id, r->now_ms, &ticket);
    if (s == NULL)
        return KM_OK;
    bool live = store_turn_wait(r->en->store, s, ticket);
    store_turn_end(r->en->store, s);
    store_release(r->en->store, s);
    char sid[UUID_STR_LEN + 1];
    if (!live)
        return KM_OK;
    return en_fail(&r->err, PROTO_E_INVALID_STATE, "signing session %s already exists",
                   en_uuid_str(sid, id));
}

static void log_uses(const struct pool_plan *pl, const struct uuid *signing_id)
{
    char sid[UUID_STR_LEN + 1], hex[2 * PROTO_POOL_ENTRY_ID_LEN + 1];
    en_uuid_str(sid, signing_id);
    for (size_t i = 0; i < pl->n_ids; i++)
        log_debug(LOG_COMP, "pool entry %s used by signing session %s",
                  hex_encode(hex, sizeof(hex), pl->ids[i], PROTO_POOL_ENTRY_ID_LEN), sid);
}

/* Step 1: everything that can be checked without touching the pool. */
static int sign_prepare(struct en_req *r, struct signing_data *sd,
                        const struct proto_signing_sign_args *a, struct pool_plan *pl)
{
    int rc = check_new_signing(r, &a->init.signing_session_id);
    if (rc == KM_OK)
        rc = build_items(r, sd, &a->init);
    if (rc == KM_OK)
        rc = check_approvals(r, sd, &a->init);
    if (rc != KM_OK)
        return rc;
    plan_init(pl, sd);
    for (size_t i = 0; i < a->n_nonces && rc == KM_OK; i++)
        rc = stage_pool_nonce(r, sd, &a->init.keygen_session_id, pl, &a->nonces[i]);
    if (rc == KM_OK)
        rc = plan_entries(r, pl, a->n_nonces);
    return rc;
}

/* Steps 2 and 3: takes this enclave's entries (all or none), checks its
 * own nonces against them and moves their secret nonces into the units;
 * whatever the units did not take is wiped. */
static int take_entries(struct en_req *r, struct keygen_data *kg, struct signing_data *sd,
                        struct pool_plan *pl, const struct uuid *signing_id)
{
    pl->taken = XALLOC_ARRAY(struct pool_entry, pl->n_ids ? pl->n_ids : 1);
    int rc = pool_take(kg, (const uint8_t(*)[PROTO_POOL_ENTRY_ID_LEN])pl->ids, pl->n_ids, r->now_ms,
                       pl->taken, &r->err);
    if (rc != KM_OK) {
        pl->n_ids = 0; /* nothing taken */
        return rc;
    }
    log_uses(pl, signing_id);
    rc = assign_taken(r, sd, pl);
    plan_wipe_taken(pl);
    return rc;
}

/*
 * Order matters: everything that can be checked is checked before the
 * entries are taken (so a bad request consumes nothing), the take is all
 * or none, and once taken the entries are never put back, whatever fails
 * after.
 */
int en_signing_sign(struct en_req *r)
{
    const struct proto_signing_sign_args *a = r->args;
    struct proto_signing_distribute_nonces_result res = {0};
    struct session *kgs = acquire_keygen(r, &a->init.keygen_session_id);
    if (kgs == NULL)
        return KM_ERR_INVALID;
    struct signing_data *sd = xcalloc(1, sizeof(*sd));
    sd->st = r->en->store;
    sd->keygen = kgs; /* the reference acquire_keygen took */
    sd->kg = kgs->data;
    sd->coordinator = sd->kg->coordinator;
    struct pool_plan pl;
    memset(&pl, 0, sizeof(pl));
    int rc = sign_prepare(r, sd, a, &pl);
    if (rc == KM_OK)
        rc = take_entries(r, kgs->data, sd, &pl, &a->init.signing_session_id);
    if (rc == KM_OK)
        rc = sign_units(r, sd, &a->init.signing_session_id, &pl.ns, &res);
    plan_release(&pl);
    if (rc != KM_OK) {
        signing_destroy(sd); /* wipes any secret nonce left */
    } else {
        char sid[UUID_STR_LEN + 1];
        log_debug(LOG_COMP, "signing %s: %zu units signed from pool nonces for %zu local signers",
                  en_uuid_str(sid, &a->init.signing_session_id), sd->n_units,
                  res.n_partial_signatures);
        rc = keep_signing(r, sd, kgs, a);
    }
    if (rc == KM_OK)
        r->result = proto_signing_distribute_nonces_result_encode(&res);
    proto_signing_distribute_nonces_result_clear(&res);
    return rc;
}
