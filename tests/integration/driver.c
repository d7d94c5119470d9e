#include "driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/secure.h"
#include "common/xmalloc.h"
#include "crypto/adaptor.h"
#include "crypto/schnorr.h"
#include "common/banned.h"

/* ---- Links ------------------------------------------------------------------ */

static void fresh_id(struct uuid *id)
{
    if (uuid_is_nil(id) && uuid_v7_new(id) != KM_OK)
        KM_BUG("no randomness for a UUID");
}

static void inproc_call_many(void *ud, struct drv_call *calls, size_t n)
{
    struct drv_inproc *ip = ud;
    for (size_t i = 0; i < n; i++) {
        struct drv_call *c = &calls[i];
        fresh_id(&c->command_id);
        struct tp_call call = {.id = i,
                               .command_id = c->command_id,
                               .cmd = c->cmd,
                               .args = (json_t *)(uintptr_t)c->args,
                               .peer = "inproc"};
        memset(&c->reply, 0, sizeof(c->reply));
        km_error_clear(&c->err);
        if (c->enclave >= ip->n)
            KM_BUG("no enclave %zu", c->enclave);
        if (enclave_handle(ip->en[c->enclave], &call) == KM_OK) {
            c->rc = KM_OK;
            c->reply.ok = true;
            c->reply.result = call.result ? call.result : json_object();
        } else {
            c->rc = KM_ERR_REMOTE;
            c->reply.error = call.error;
            json_decref(call.result);
        }
    }
}

void drv_link_inproc(struct drv_link *link, struct drv_inproc *ip)
{
    link->call_many = inproc_call_many;
    link->ud = ip;
}

static void pools_call_many(void *ud, struct drv_call *calls, size_t n)
{
    struct drv_pools *pp = ud;
    struct pool_call **h = XALLOC_ARRAY(struct pool_call *, n ? n : 1);
    struct deadline dl = deadline_in_ms(pp->timeout_ms ? pp->timeout_ms : 30000);
    for (size_t i = 0; i < n; i++) {
        struct drv_call *c = &calls[i];
        fresh_id(&c->command_id);
        memset(&c->reply, 0, sizeof(c->reply));
        km_error_clear(&c->err);
        c->rc = pool_call_start(pp->pool[c->enclave], &h[i], c->cmd, &c->command_id, c->args, dl,
                                &c->err);
    }
    for (size_t i = 0; i < n; i++) {
        struct drv_call *c = &calls[i];
        if (c->rc != KM_OK)
            continue;
        c->rc = pool_call_wait(h[i], &c->reply, &c->err);
        if (c->rc == KM_OK && !c->reply.ok)
            c->rc = KM_ERR_REMOTE;
    }
    free(h);
}

void drv_link_pools(struct drv_link *link, struct drv_pools *pp)
{
    link->call_many = pools_call_many;
    link->ud = pp;
}

/* Runs the calls; on the first failure fills err naming the enclave and
 * command. */
static int run_calls(struct drv *d, struct drv_call *calls, size_t n, struct km_error *err)
{
    d->link.call_many(d->link.ud, calls, n);
    for (size_t i = 0; i < n; i++) {
        const struct drv_call *c = &calls[i];
        if (c->rc == KM_ERR_REMOTE)
            return km_error_set(err, KM_ERR_REMOTE, 0, "enclave %zu: %s: %s: %s", c->enclave,
                                c->cmd, c->reply.error.code, c->reply.error.message);
        if (c->rc != KM_OK)
            return km_error_set(err, c->rc, 0, "enclave %zu: %s: %s", c->enclave, c->cmd,
                                c->err.msg);
    }
    return KM_OK;
}

static void clear_calls(struct drv_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        env_reply_clear(&calls[i].reply);
}

int drv_call(struct drv *d, size_t enclave, const char *cmd, const struct uuid *cid,
             const json_t *args, struct env_reply *reply, struct km_error *err)
{
    struct drv_call c = {.enclave = enclave, .cmd = cmd, .args = args};
    if (cid != NULL)
        c.command_id = *cid;
    d->link.call_many(d->link.ud, &c, 1);
    *reply = c.reply;
    if (c.rc == KM_ERR_REMOTE)
        km_error_set(err, KM_ERR_REMOTE, 0, "%s: %s: %s", cmd, c.reply.error.code,
                     c.reply.error.message);
    else if (c.rc != KM_OK && err != NULL)
        *err = c.err;
    return c.rc;
}

int drv_init(struct drv *d, const struct drv_link *link, size_t n_enclaves, struct km_error *err)
{
    memset(d, 0, sizeof(*d));
    d->link = *link;
    d->n_enclaves = n_enclaves;
    for (size_t e = 0; e < n_enclaves; e++) {
        struct env_reply rep;
        struct proto_public_info info;
        struct proto_configure_args ca = {.enclave_id = (uint32_t)e};
        json_t *args = proto_configure_args_encode(&ca);
        int r = drv_call(d, e, "configure", NULL, args, &rep, err);
        json_decref(args);
        if (r == KM_OK)
            r = proto_public_info_decode(&info, rep.result, err);
        env_reply_clear(&rep);
        if (r != KM_OK)
            return r;
        memcpy(d->pk[e], info.public_key, 33);
    }
    return KM_OK;
}

/* ---- Keygen -------------------------------------------------------------------- */

void drv_keygen_setup(struct drv_keygen *kg, size_t n_users, size_t n_enclaves)
{
    memset(kg, 0, sizeof(*kg));
    if (uuid_v7_new(&kg->id) != KM_OK || participant_secret_new(kg->secret) != KM_OK)
        KM_BUG("no randomness");
    kg->n_users = n_users;
    kg->users = XALLOC_ARRAY(struct drv_user, n_users);
    for (size_t i = 0; i < n_users; i++) {
        struct drv_user *u = &kg->users[i];
        if (uuid_v7_new(&u->id) != KM_OK || keypair_generate(&u->kp) != KM_OK ||
            participant_auth_keypair(&u->auth, &u->kp, &kg->id) != KM_OK)
            KM_BUG("cannot make a user");
        u->enclave = i % n_enclaves;
    }
    kg->tweak.type = PROTO_TWEAK_NONE;
    kg->timeout_secs = 3600;
}

void drv_keygen_release(struct drv_keygen *kg)
{
    for (size_t i = 0; i < kg->n_users; i++) {
        keypair_clear(&kg->users[i].kp);
        keypair_clear(&kg->users[i].auth);
    }
    free(kg->users);
    secure_wipe(kg, sizeof(*kg));
}

json_t *drv_keygen_init_args(const struct drv *d, const struct drv_keygen *kg, size_t e,
                             const struct proto_blob *secret_ct)
{
    struct proto_keygen_init_args a = {.keygen_session_id = kg->id,
                                       .coordinator = e == kg->coordinator,
                                       .timeout_secs = kg->timeout_secs};
    if (a.coordinator) {
        if (participant_encrypt_secret(&a.encrypted_session_secret, d->pk[e], kg->secret) != KM_OK)
            KM_BUG("ECIES failed");
    } else {
        proto_blob_set(&a.encrypted_session_secret, secret_ct->p, secret_ct->len);
    }
    a.n_enclaves = d->n_enclaves;
    a.enclaves = XALLOC_ARRAY(struct proto_enclave_key, d->n_enclaves);
    for (size_t i = 0; i < d->n_enclaves; i++) {
        a.enclaves[i].enclave_id = (uint32_t)i;
        memcpy(a.enclaves[i].public_key, d->pk[i], 33);
    }
    a.n_participants = kg->n_users;
    a.participants = XALLOC_ARRAY(struct uuid, kg->n_users);
    for (size_t i = 0; i < kg->n_users; i++)
        a.participants[i] = kg->users[i].id;
    if (kg->has_tweak &&
        participant_seal_tweak(&a.encrypted_taproot_tweak, kg->secret, &kg->tweak) != KM_OK)
        KM_BUG("seal failed");
    a.n_subsets = kg->n_subsets;
    a.subsets = XALLOC_ARRAY(struct proto_subset_def, kg->n_subsets ? kg->n_subsets : 1);
    for (size_t s = 0; s < kg->n_subsets; s++) {
        a.subsets[s].subset_id = kg->subsets[s].id;
        a.subsets[s].n_participants = kg->subsets[s].n;
        a.subsets[s].participants = XALLOC_ARRAY(struct uuid, kg->subsets[s].n);
        for (size_t j = 0; j < kg->subsets[s].n; j++)
            a.subsets[s].participants[j] = kg->users[kg->subsets[s].members[j]].id;
    }
    json_t *j = proto_keygen_init_args_encode(&a);
    proto_keygen_init_args_clear(&a);
    return j;
}

static int keygen_init_all(struct drv *d, struct drv_keygen *kg, struct km_error *err)
{
    struct drv_call calls[DRV_MAX_ENCLAVES] = {{0}};
    struct proto_keygen_init_result res;
    json_t *args[DRV_MAX_ENCLAVES] = {0};
    size_t n = 0;
    args[0] = drv_keygen_init_args(d, kg, kg->coordinator, NULL);
    calls[0] = (struct drv_call){.enclave = kg->coordinator, .cmd = "keygen_init", .args = args[0]};
    int r = run_calls(d, calls, 1, err);
    if (r == KM_OK)
        r = proto_keygen_init_result_decode(&res, calls[0].reply.result, err);
    clear_calls(calls, 1);
    json_decref(args[0]);
    if (r != KM_OK)
        return r;
    for (size_t i = 0; i < res.n_encrypted_session_secrets; i++) {
        const struct proto_enclave_blob *b = &res.encrypted_session_secrets[i];
        args[n] = drv_keygen_init_args(d, kg, b->enclave_id, &b->ciphertext);
        calls[n] =
            (struct drv_call){.enclave = b->enclave_id, .cmd = "keygen_init", .args = args[n]};
        n++;
    }
    proto_keygen_init_result_clear(&res);
    if (n != d->n_enclaves - 1)
        r = km_error_set(err, KM_ERR_INVALID, 0,
                         "coordinator re-encrypted the secret for %zu "
                         "enclaves, not %zu",
                         n, d->n_enclaves - 1);
    if (r == KM_OK)
        r = run_calls(d, calls, n, err);
    clear_calls(calls, n);
    for (size_t i = 0; i < n; i++)
        json_decref(args[i]);
    return r;
}

/* Public keys heading to each enclave, collected from add_participants. */
struct pk_inbox {
    size_t n;
    struct proto_user_blob *v;
};

static void inbox_push(struct pk_inbox *box, const struct uuid *user, const struct proto_blob *ct)
{
    box->v = xrealloc(box->v, st_mult(box->n + 1, sizeof(*box->v)));
    box->v[box->n].user_id = *user;
    proto_blob_set(&box->v[box->n].ciphertext, ct->p, ct->len);
    box->n++;
}

static void record_progress(struct drv_keygen *kg, size_t e, bool complete, const uint8_t *check)
{
    if (complete)
        memcpy(kg->check[e], check, 32);
}

static int add_participants_all(struct drv *d, struct drv_keygen *kg, struct pk_inbox *inbox,
                                struct km_error *err)
{
    struct drv_call calls[DRV_MAX_ENCLAVES] = {{0}};
    json_t *args[DRV_MAX_ENCLAVES] = {0};
    size_t n = 0;
    for (size_t e = 0; e < d->n_enclaves; e++) {
        struct proto_keygen_add_participants_args a = {.keygen_session_id = kg->id};
        a.participants = XALLOC_ARRAY(struct proto_participant_reg, kg->n_users);
        for (size_t i = 0; i < kg->n_users; i++) {
            const struct drv_user *u = &kg->users[i];
            if (u->enclave != e)
                continue;
            struct proto_participant_reg *p = &a.participants[a.n_participants++];
            p->user_id = u->id;
            if (participant_encrypt_private_key(&p->encrypted_private_key, d->pk[e], &u->kp) !=
                KM_OK)
                KM_BUG("ECIES failed");
            memcpy(p->auth_pubkey, u->auth.xonly, 32);
            p->require_signing_approval = u->require_approval;
        }
        if (a.n_participants > 0) {
            args[n] = proto_keygen_add_participants_args_encode(&a);
            calls[n] =
                (struct drv_call){.enclave = e, .cmd = "keygen_add_participants", .args = args[n]};
            n++;
        }
        proto_keygen_add_participants_args_clear(&a);
    }
    int r = run_calls(d, calls, n, err);
    for (size_t i = 0; i < n && r == KM_OK; i++) {
        struct proto_keygen_add_participants_result res;
        r = proto_keygen_add_participants_result_decode(&res, calls[i].reply.result, err);
        for (size_t p = 0; r == KM_OK && p < res.n_participants; p++)
            for (size_t k = 0; k < res.participants[p].n_encrypted_public_keys; k++) {
                const struct proto_enclave_blob *b = &res.participants[p].encrypted_public_keys[k];
                inbox_push(&inbox[b->enclave_id], &res.participants[p].user_id, &b->ciphertext);
            }
        if (r == KM_OK)
            record_progress(kg, calls[i].enclave, res.complete, res.aggregate_check);
        proto_keygen_add_participants_result_clear(&res);
    }
    clear_calls(calls, n);
    for (size_t i = 0; i < n; i++)
        json_decref(args[i]);
    return r;
}

static int distribute_all(struct drv *d, struct drv_keygen *kg, struct pk_inbox *inbox,
                          struct km_error *err)
{
    struct drv_call calls[DRV_MAX_ENCLAVES] = {{0}};
    json_t *args[DRV_MAX_ENCLAVES] = {0};
    size_t n = 0;
    for (size_t e = 0; e < d->n_enclaves; e++) {
        if (inbox[e].n == 0)
            continue;
        struct proto_keygen_distribute_public_keys_args a = {
            .keygen_session_id = kg->id, .n_public_keys = inbox[e].n, .public_keys = inbox[e].v};
        args[n] = proto_keygen_distribute_public_keys_args_encode(&a);
        calls[n] = (struct drv_call){
            .enclave = e, .cmd = "keygen_distribute_public_keys", .args = args[n]};
        n++;
    }
    int r = run_calls(d, calls, n, err);
    for (size_t i = 0; i < n && r == KM_OK; i++) {
        struct proto_keygen_progress res;
        r = proto_keygen_progress_decode(&res, calls[i].reply.result, err);
        if (r == KM_OK && !res.complete)
            r = km_error_set(err, KM_ERR_INVALID, 0, "enclave %zu: keygen not complete (%u/%u)",
                             calls[i].enclave, res.known, res.expected);
        if (r == KM_OK)
            record_progress(kg, calls[i].enclave, true, res.aggregate_check);
    }
    clear_calls(calls, n);
    for (size_t i = 0; i < n; i++)
        json_decref(args[i]);
    return r;
}

/* The expected key of a group of users under a tweak. */
static int group_key(uint8_t out[33], uint8_t xonly[32], const struct drv_keygen *kg,
                     const size_t *members, size_t n, const struct proto_tweak *tweak)
{
    uint8_t(*pks)[33] = xcalloc(n, 33);
    for (size_t i = 0; i < n; i++)
        memcpy(pks[i], kg->users[members ? members[i] : i].kp.pubkey, 33);
    int r = participant_aggregate_key(out, xonly, (const uint8_t(*)[33])pks, n, tweak);
    free(pks);
    return r;
}

static int get_aggregate(struct drv *d, struct drv_keygen *kg, struct km_error *err)
{
    struct proto_keygen_ref_args a = {.keygen_session_id = kg->id};
    struct proto_keygen_get_aggregate_result res;
    struct env_reply rep;
    json_t *args = proto_keygen_ref_args_encode(&a);
    int r = drv_call(d, kg->coordinator, "keygen_get_aggregate", NULL, args, &rep, err);
    json_decref(args);
    if (r == KM_OK)
        r = proto_keygen_get_aggregate_result_decode(&res, rep.result, err);
    env_reply_clear(&rep);
    if (r != KM_OK)
        return r;
    uint8_t want[33];
    r = participant_open_aggregate_key(kg->aggkey, err, kg->secret,
                                       &res.encrypted_aggregate_public_key, false);
    if (r == KM_OK)
        r = group_key(want, kg->xonly, kg, NULL, kg->n_users, &kg->tweak);
    if (r == KM_OK && memcmp(want, kg->aggkey, 33) != 0)
        r = km_error_set(err, KM_ERR_CRYPTO, 0, "aggregate key differs from the expected one");
    for (size_t s = 0; s < kg->n_subsets && r == KM_OK; s++) {
        struct drv_subset *sub = &kg->subsets[s];
        if (s >= res.n_subsets || !uuid_equal(&res.subsets[s].subset_id, &sub->id))
            r = km_error_set(err, KM_ERR_INVALID, 0, "subset %zu missing", s);
        if (r == KM_OK)
            r = participant_open_aggregate_key(
                sub->aggkey, err, kg->secret, &res.subsets[s].encrypted_aggregate_public_key, true);
        if (r == KM_OK)
            r = group_key(want, sub->xonly, kg, sub->members, sub->n, &kg->tweak);
        if (r == KM_OK && memcmp(want, sub->aggkey, 33) != 0)
            r = km_error_set(err, KM_ERR_CRYPTO, 0, "subset %zu key differs", s);
    }
    if (r == KM_OK && memcmp(res.aggregate_check, kg->check[kg->coordinator], 32) != 0)
        r = km_error_set(err, KM_ERR_CRYPTO, 0, "aggregate_check differs");
    proto_keygen_get_aggregate_result_clear(&res);
    return r;
}

int drv_keygen_run(struct drv *d, struct drv_keygen *kg, struct km_error *err)
{
    struct pk_inbox inbox[DRV_MAX_ENCLAVES] = {{0}};
    memset(kg->check, 0, sizeof(kg->check));
    int r = keygen_init_all(d, kg, err);
    if (r == KM_OK)
        r = add_participants_all(d, kg, inbox, err);
    if (r == KM_OK)
        r = distribute_all(d, kg, inbox, err);
    /* Every enclave must have completed with the same check value. */
    static const uint8_t zero[32];
    if (r == KM_OK && memcmp(kg->check[0], zero, 32) == 0)
        r = km_error_set(err, KM_ERR_INVALID, 0, "enclave 0 did not complete the keygen");
    for (size_t e = 1; e < d->n_enclaves && r == KM_OK; e++)
        if (memcmp(kg->check[e], kg->check[0], 32) != 0)
            r = km_error_set(err, KM_ERR_CRYPTO, 0,
                             "enclaves 0 and %zu disagree on the "
                             "aggregate_check",
                             e);
    if (r == KM_OK)
        r = get_aggregate(d, kg, err);
    for (size_t e = 0; e < DRV_MAX_ENCLAVES; e++) {
        for (size_t i = 0; i < inbox[e].n; i++)
            proto_blob_clear(&inbox[e].v[i].ciphertext);
        free(inbox[e].v);
    }
    return r;
}

/* ---- Signing ----------------------------------------------------------------------- */

void drv_signing_setup(struct drv_signing *sg, size_t n_items)
{
    memset(sg, 0, sizeof(*sg));
    if (uuid_v7_new(&sg->id) != KM_OK)
        KM_BUG("no randomness");
    sg->n_items = n_items;
    sg->items = XALLOC_ARRAY(struct drv_item, n_items);
    for (size_t i = 0; i < n_items; i++) {
        struct drv_item *it = &sg->items[i];
        if (uuid_v7_new(&it->id) != KM_OK || secure_random(it->msg, 32) != KM_OK)
            KM_BUG("no randomness");
        it->subset = -1;
        it->tweak.type = PROTO_TWEAK_NONE;
    }
    sg->timeout_secs = 600;
}

void drv_item_set_tweak(struct drv_item *it, int type, uint8_t fill)
{
    memset(&it->tweak, 0, sizeof(it->tweak));
    it->has_tweak = true;
    it->tweak.type = type;
    if (type == PROTO_TWEAK_PLAIN || type == PROTO_TWEAK_XONLY) {
        it->tweak.has_tweak = true;
        memset(it->tweak.tweak, fill, sizeof(it->tweak.tweak));
    } else if (type == PROTO_TWEAK_TAPROOT_MERKLE_ROOT) {
        it->tweak.has_merkle_root = true;
        memset(it->tweak.merkle_root, fill, sizeof(it->tweak.merkle_root));
    }
}

void drv_item_add_adaptor(struct drv_item *it, int type, size_t n_points)
{
    if (it->n_adaptors == DRV_MAX_ADAPTORS || n_points > DRV_MAX_POINTS)
        KM_BUG("too many adaptors");
    struct drv_adaptor *ad = &it->adaptors[it->n_adaptors++];
    if (uuid_v7_new(&ad->id) != KM_OK)
        KM_BUG("no randomness");
    ad->type = type;
    ad->n_points = n_points;
    for (size_t k = 0; k < n_points; k++) {
        do {
            if (secure_random(ad->secrets[k], 32) != KM_OK)
                KM_BUG("no randomness");
        } while (adaptor_point(ad->points[k], ad->secrets[k]) != KM_OK);
    }
}

void drv_signing_release(struct drv_signing *sg)
{
    for (size_t i = 0; i < sg->n_items; i++)
        proto_adaptor_results_clear(&sg->items[i].ar);
    free(sg->items);
    for (size_t i = 0; i < sg->n_nonces; i++)
        proto_blob_clear(&sg->nonces[i].ciphertext);
    for (size_t i = 0; i < sg->n_psigs; i++)
        proto_blob_clear(&sg->psigs[i].ciphertext);
    proto_signing_finalize_result_clear(&sg->final);
    memset(sg, 0, sizeof(*sg));
}

static void seal_adaptors(struct proto_item *pi, const struct drv_keygen *kg,
                          const struct drv_item *it)
{
    struct proto_adaptor_configs cfg = {.n_configs = it->n_adaptors};
    cfg.configs = XALLOC_ARRAY(struct proto_adaptor_config, it->n_adaptors);
    for (size_t c = 0; c < it->n_adaptors; c++) {
        cfg.configs[c].adaptor_id = it->adaptors[c].id;
        cfg.configs[c].adaptor_type = it->adaptors[c].type;
        cfg.configs[c].n_points = it->adaptors[c].n_points;
        cfg.configs[c].adaptor_points = xcalloc(it->adaptors[c].n_points, 33);
        memcpy(cfg.configs[c].adaptor_points, it->adaptors[c].points,
               it->adaptors[c].n_points * 33);
    }
    if (participant_seal_adaptor_configs(&pi->encrypted_adaptor_configs, kg->secret, &cfg) != KM_OK)
        KM_BUG("seal failed");
    proto_adaptor_configs_clear(&cfg);
}

static void add_approvals(struct proto_signing_init_args *a, const struct drv_keygen *kg,
                          const struct drv_signing *sg)
{
    struct uuid *ids = XALLOC_ARRAY(struct uuid, sg->n_items);
    uint8_t(*msgs)[32] = xcalloc(sg->n_items, 32);
    for (size_t i = 0; i < sg->n_items; i++) {
        ids[i] = sg->items[i].id;
        memcpy(msgs[i], sg->items[i].msg, 32);
    }
    a->approvals = XALLOC_ARRAY(struct proto_approval, kg->n_users);
    for (size_t u = 0; u < kg->n_users; u++) {
        if (!kg->users[u].require_approval)
            continue;
        struct proto_approval *ap = &a->approvals[a->n_approvals++];
        ap->user_id = kg->users[u].id;
        ap->timestamp = (uint64_t)time(NULL);
        if (participant_approval_sign(ap->signature, &kg->users[u].auth, &sg->id, &kg->id,
                                      ap->timestamp, ids, (const uint8_t(*)[32])msgs,
                                      sg->n_items) != KM_OK)
            KM_BUG("approval signing failed");
    }
    free(ids);
    free(msgs);
}

json_t *drv_signing_init_args(const struct drv_keygen *kg, const struct drv_signing *sg)
{
    struct proto_signing_init_args a = {.signing_session_id = sg->id,
                                        .keygen_session_id = kg->id,
                                        .timeout_secs = sg->timeout_secs,
                                        .n_items = sg->n_items};
    a.items = XALLOC_ARRAY(struct proto_item, sg->n_items);
    for (size_t i = 0; i < sg->n_items; i++) {
        const struct drv_item *it = &sg->items[i];
        struct proto_item *pi = &a.items[i];
        pi->item_id = it->id;
        if (participant_seal_message(&pi->encrypted_message, kg->secret, it->msg) != KM_OK ||
            (it->has_tweak &&
             participant_seal_tweak(&pi->encrypted_taproot_tweak, kg->secret, &it->tweak) != KM_OK))
            KM_BUG("seal failed");
        if (it->subset >= 0)
            pi->subset_id = kg->subsets[it->subset].id;
        if (it->n_adaptors > 0)
            seal_adaptors(pi, kg, it);
    }
    add_approvals(&a, kg, sg);
    json_t *j = proto_signing_init_args_encode(&a);
    proto_signing_init_args_clear(&a);
    return j;
}

/* Fan-out of the same args to every enclave. */
static int all_enclaves(struct drv *d, const char *cmd, const json_t *args, struct drv_call *calls,
                        struct km_error *err)
{
    for (size_t e = 0; e < d->n_enclaves; e++)
        calls[e] = (struct drv_call){.enclave = e, .cmd = cmd, .args = args};
    return run_calls(d, calls, d->n_enclaves, err);
}

static void collect(struct proto_user_blob *dst, size_t *n, size_t cap,
                    const struct proto_user_blob *src, size_t m)
{
    for (size_t i = 0; i < m; i++) {
        if (*n == cap)
            KM_BUG("too many participants for the driver");
        dst[*n].user_id = src[i].user_id;
        proto_blob_set(&dst[*n].ciphertext, src[i].ciphertext.p, src[i].ciphertext.len);
        (*n)++;
    }
}

int drv_sign_init(struct drv *d, const struct drv_keygen *kg, struct drv_signing *sg,
                  struct km_error *err)
{
    struct drv_call calls[DRV_MAX_ENCLAVES] = {{0}};
    json_t *args = drv_signing_init_args(kg, sg);
    int r = all_enclaves(d, "signing_init", args, calls, err);
    for (size_t e = 0; e < d->n_enclaves && r == KM_OK; e++) {
        struct proto_signing_init_result res;
        r = proto_signing_init_result_decode(&res, calls[e].reply.result, err);
        if (r == KM_OK)
            collect(sg->nonces, &sg->n_nonces, KM_ARRAY_LEN(sg->nonces), res.nonces, res.n_nonces);
        proto_signing_init_result_clear(&res);
    }
    clear_calls(calls, d->n_enclaves);
    json_decref(args);
    return r;
}

int drv_sign_nonces(struct drv *d, const struct drv_keygen *kg, struct drv_signing *sg,
                    struct km_error *err)
{
    (void)kg;
    struct drv_call calls[DRV_MAX_ENCLAVES] = {{0}};
    struct proto_signing_distribute_nonces_args a = {
        .signing_session_id = sg->id, .n_nonces = sg->n_nonces, .nonces = sg->nonces};
    json_t *args = proto_signing_distribute_nonces_args_encode(&a);
    int r = all_enclaves(d, "signing_distribute_nonces", args, calls, err);
    for (size_t e = 0; e < d->n_enclaves && r == KM_OK; e++) {
        struct proto_signing_distribute_nonces_result res;
        r = proto_signing_distribute_nonces_result_decode(&res, calls[e].reply.result, err);
        if (r == KM_OK)
            collect(sg->psigs, &sg->n_psigs, KM_ARRAY_LEN(sg->psigs), res.partial_signatures,
                    res.n_partial_signatures);
        proto_signing_distribute_nonces_result_clear(&res);
    }
    clear_calls(calls, d->n_enclaves);
    json_decref(args);
    return r;
}

int drv_sign_finalize(struct drv *d, struct drv_keygen *kg, struct drv_signing *sg,
                      struct km_error *err)
{
    struct proto_signing_finalize_args a = {.signing_session_id = sg->id,
                                            .n_partial_signatures = sg->n_psigs,
                                            .partial_signatures = sg->psigs};
    struct env_reply rep;
    json_t *args = proto_signing_finalize_args_encode(&a);
    int r = drv_call(d, kg->coordinator, "signing_finalize", NULL, args, &rep, err);
    json_decref(args);
    if (r == KM_OK) {
        proto_signing_finalize_result_clear(&sg->final);
        r = proto_signing_finalize_result_decode(&sg->final, rep.result, err);
    }
    env_reply_clear(&rep);
    return r;
}

int drv_item_key(uint8_t xonly[32], const struct drv_keygen *kg, const struct drv_item *it)
{
    uint8_t full[33];
    const struct proto_tweak *t = it->has_tweak ? &it->tweak : &kg->tweak;
    if (it->subset >= 0)
        return group_key(full, xonly, kg, kg->subsets[it->subset].members,
                         kg->subsets[it->subset].n, t);
    return group_key(full, xonly, kg, NULL, kg->n_users, t);
}

/* Completes and verifies every pre-signature of an adaptor item. */
static int check_adaptor_item(const struct drv_item *it, const uint8_t xonly[32],
                              struct km_error *err)
{
    size_t k = 0;
    for (size_t c = 0; c < it->n_adaptors; c++) {
        const struct drv_adaptor *ad = &it->adaptors[c];
        size_t units = ad->type == PROTO_ADAPTOR_OR ? ad->n_points : 1;
        for (size_t b = 0; b < units; b++, k++) {
            if (k >= it->ar.n_results)
                return km_error_set(err, KM_ERR_INVALID, 0, "missing adaptor result %zu", k);
            const struct proto_adaptor_result *res = &it->ar.results[k];
            uint8_t sig[64], t[32];
            const uint8_t(*secrets)[32] = &ad->secrets[ad->type == PROTO_ADAPTOR_OR ? b : 0];
            size_t n = ad->type == PROTO_ADAPTOR_AND ? ad->n_points : 1;
            if (!uuid_equal(&res->adaptor_id, &ad->id) || res->branch != b)
                return km_error_set(err, KM_ERR_INVALID, 0, "adaptor result %zu mislabelled", k);
            if (participant_adaptor_complete(sig, res, secrets, n) != KM_OK ||
                schnorr_verify(sig, 64, it->msg, 32, xonly, 32) != KM_OK)
                return km_error_set(err, KM_ERR_CRYPTO, 0,
                                    "adaptor unit %zu does not complete "
                                    "to a valid signature",
                                    k);
            if (n == 1 &&
                (adaptor_extract(t, sig, 64, res->presignature, 64, (int)res->nonce_parity,
                                 res->adaptor_point, 33) != KM_OK ||
                 memcmp(t, secrets[0], 32) != 0))
                return km_error_set(err, KM_ERR_CRYPTO, 0, "adaptor secret %zu not extracted", k);
        }
    }
    return k == it->ar.n_results ? KM_OK
                                 : km_error_set(err, KM_ERR_INVALID, 0, "extra adaptor results");
}

int drv_sign_check(const struct drv_keygen *kg, struct drv_signing *sg, struct km_error *err)
{
    if (sg->final.n_results != sg->n_items)
        return km_error_set(err, KM_ERR_INVALID, 0, "%zu results for %zu items",
                            sg->final.n_results, sg->n_items);
    for (size_t i = 0; i < sg->n_items; i++) {
        struct drv_item *it = &sg->items[i];
        const struct proto_item_result *res = &sg->final.results[i];
        uint8_t xonly[32];
        int r = drv_item_key(xonly, kg, it);
        if (r == KM_OK && !uuid_equal(&res->item_id, &it->id))
            r = km_error_set(err, KM_ERR_INVALID, 0, "result %zu is for another item", i);
        if (r == KM_OK && it->n_adaptors == 0) {
            r = participant_open_signature(it->sig, err, kg->secret, &res->encrypted_signature);
            if (r == KM_OK && schnorr_verify(it->sig, 64, it->msg, 32, xonly, 32) != KM_OK)
                r = km_error_set(err, KM_ERR_CRYPTO, 0,
                                 "item %zu: BIP-340 signature does not "
                                 "verify",
                                 i);
        } else if (r == KM_OK) {
            proto_adaptor_results_clear(&it->ar);
            r = participant_open_adaptor_results(&it->ar, err, kg->secret,
                                                 &res->encrypted_adaptor_signatures);
            if (r == KM_OK)
                r = check_adaptor_item(it, xonly, err);
        }
        if (r != KM_OK)
            return r;
    }
    return KM_OK;
}

int drv_sign_run(struct drv *d, struct drv_keygen *kg, struct drv_signing *sg, struct km_error *err)
{
    int r = drv_sign_init(d, kg, sg, err);
    if (r == KM_OK)
        r = drv_sign_nonces(d, kg, sg, err);
    if (r == KM_OK)
        r = drv_sign_finalize(d, kg, sg, err);
    if (r == KM_OK)
        r = drv_sign_check(kg, sg, err);
    return r;
}

int drv_clear(struct drv *d, const struct uuid *id, bool keygen, struct km_error *err)
{
    struct drv_call calls[DRV_MAX_ENCLAVES] = {{0}};
    struct proto_clear_session_args a = {0};
    if (keygen)
        a.keygen_session_id = *id;
    else
        a.signing_session_id = *id;
    json_t *args = proto_clear_session_args_encode(&a);
    int r = all_enclaves(d, "clear_session", args, calls, err);
    clear_calls(calls, d->n_enclaves);
    json_decref(args);
    return r;
}
