/*
 * enclave.c - the enclave object, the dispatch table with its command x
 * state rules, the reply cache around every command, the system commands
 * (ping, get_public_info, configure, clear_session) and the expiry reaper.
 */
#include "enclave/enclave.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "enclave/internal.h"
#include "enclave/keysource.h"
#include "common/banned.h"

/* ---- States ---------------------------------------------------------------- */

const char *en_state_name(enum session_kind kind, int state)
{
    static const char *const keygen[] = {"collecting_keys", "completed"};
    static const char *const signing[] = {"nonces_issued", "partials_issued", "completed"};
    if (kind == SESSION_KEYGEN && state >= 0 && state < 2)
        return keygen[state];
    if (kind == SESSION_SIGNING && state >= 0 && state < 3)
        return signing[state];
    KM_BUG("no state %d for session kind %d", state, (int)kind);
}

const char *en_uuid_str(char buf[UUID_STR_LEN + 1], const struct uuid *u)
{
    uuid_format(buf, u);
    return buf;
}

/* ---- Session creation ----------------------------------------------------------- */

static int insert_error(struct en_req *r, int rc, enum session_kind kind, const struct uuid *id,
                        int existing_state)
{
    char sid[UUID_STR_LEN + 1];
    uuid_format(sid, id);
    const char *what = kind == SESSION_KEYGEN ? "keygen" : "signing";
    if (rc == KM_ERR_EXISTS)
        return en_fail(&r->err, PROTO_E_INVALID_STATE,
                       "%s is not allowed: %s session %s already exists in state %s", r->pc->name,
                       what, sid, en_state_name(kind, existing_state));
    if (rc == KM_ERR_LIMIT)
        return en_fail(&r->err, PROTO_E_LIMIT_EXCEEDED,
                       "too many sessions in this enclave (at most %zu): clear finished ones",
                       r->en->cfg.max_sessions);
    return en_fail(&r->err, PROTO_E_NOT_FOUND, "keygen session of %s session %s was cleared", what,
                   sid);
}

int en_store_insert(struct en_req *r, struct session *s, const struct session *parent,
                    uint32_t timeout_secs)
{
    int existing = 0;
    int rc = store_insert(r->en->store, s, parent, r->now_ms + (uint64_t)timeout_secs * 1000,
                          r->now_ms, &existing);
    if (rc != KM_OK) {
        struct uuid id = s->id;
        enum session_kind kind = s->kind;
        session_discard(s);
        return insert_error(r, rc, kind, &id, existing);
    }
    return KM_OK;
}

/* ---- System commands ----------------------------------------------------------- */

static int en_ping(struct en_req *r)
{
    struct proto_ping_result res = {.pong = true};
    r->result = proto_ping_result_encode(&res);
    return KM_OK;
}

static void public_info(struct enclave *en, uint64_t now_ms, struct proto_public_info *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&en->lock);
    out->has_enclave_id = en->has_enclave_id;
    out->enclave_id = en->enclave_id;
    pthread_mutex_unlock(&en->lock);
    bool ready = en_key_ready(en);
    out->has_public_key = ready;
    if (ready) {
        pthread_rwlock_rdlock(&en->key_lock);
        memcpy(out->public_key, en->kp.pubkey, PROTO_PUBKEY_LEN);
        out->key_epoch = en->key_epoch;
        snprintf(out->key_origin, sizeof(out->key_origin), "%s", en->key_origin);
        pthread_rwlock_unlock(&en->key_lock);
    }
    snprintf(out->key_state, sizeof(out->key_state), "%s", ready ? "ready" : "awaiting_configure");
    snprintf(out->sealer, sizeof(out->sealer), "%s",
             en->cfg.keysource ? keysource_name(en->cfg.keysource) : "none");
    out->uptime_secs = (now_ms - en->started_ms) / 1000;
    store_counts(en->store, &out->active_sessions.keygen, &out->active_sessions.signing);
    snprintf(out->version, sizeof(out->version), "%s", KM_VERSION);
    out->instance_id = en->instance_id;
    snprintf(out->attestation, sizeof(out->attestation), "%s", en_attestation_name(en));
}

static int en_get_public_info(struct en_req *r)
{
    struct proto_public_info info;
    public_info(r->en, r->now_ms, &info);
    r->result = proto_public_info_encode(&info);
    return KM_OK;
}

bool en_key_ready(const struct enclave *en)
{
    return atomic_load_explicit(&((struct enclave *)(uintptr_t)en)->key_ready,
                                memory_order_acquire);
}

void en_identity(struct enclave *en, uint8_t pub[PROTO_PUBKEY_LEN], uint64_t *epoch)
{
    pthread_rwlock_rdlock(&en->key_lock);
    memcpy(pub, en->kp.pubkey, PROTO_PUBKEY_LEN);
    *epoch = en->key_epoch;
    pthread_rwlock_unlock(&en->key_lock);
}

/* Publishes a key: every field before the release store of key_ready. */
static void set_key(struct enclave *en, const struct keypair *kp, uint64_t epoch,
                    const char *origin)
{
    en->kp = *kp;
    en->key_epoch = epoch;
    en->key_origin = origin;
    atomic_store_explicit(&en->key_ready, true, memory_order_release);
}

/* The sealed key of configure: open the one given, or create one. Runs under
 * en->lock, so concurrent configures agree; a key once set stays. */
static int configure_key(struct en_req *r, uint32_t enclave_id)
{
    const struct proto_configure_args *a = r->args;
    struct enclave *en = r->en;
    struct keysource *ks = en->cfg.keysource;
    struct km_error err;
    struct keypair kp;
    if (ks == NULL) {
        if (a->sealed_key.len > 0)
            return en_fail(&r->err, PROTO_E_INVALID_ARGUMENT,
                           "this enclave runs SEALER=none and cannot open a sealed key: start it "
                           "with the sealer that made the key (SEALER=file or aws-kms)");
        return KM_OK;
    }
    if (a->aws_access_key_id[0] != '\0') {
        struct km_error cerr;
        if (keysource_set_credentials(ks, a->aws_access_key_id, a->aws_secret_access_key,
                                      a->aws_session_token, &cerr) != KM_OK)
            return en_fail(&r->err, PROTO_E_INVALID_ARGUMENT, "AWS credentials: %s", cerr.msg);
    }
    if (en_key_ready(en)) {
        /* A repeated configure (the gateway restarted before it committed
         * the blob, or re-sends it): the same answer. */
        bool same = a->sealed_key.len == 0 ||
                    (a->sealed_key.len == en->sealed_len &&
                     memcmp(a->sealed_key.p, en->sealed_blob, en->sealed_len) == 0);
        if (!same)
            return en_fail(&r->err, PROTO_E_INVALID_STATE,
                           "this enclave already holds identity key epoch %llu; another sealed "
                           "key is refused (restart the enclave to load a different one)",
                           (unsigned long long)en->key_epoch);
        return KM_OK;
    }
    if (a->sealed_key.len > 0) {
        uint64_t epoch = 0;
        int rc =
            keysource_open(ks, &kp, &epoch, a->sealed_key.p, a->sealed_key.len, enclave_id, &err);
        if (rc != KM_OK)
            return en_fail(&r->err,
                           rc == KM_ERR_CRYPTO ? PROTO_E_DECRYPT_FAILED : PROTO_E_INVALID_ARGUMENT,
                           "cannot restore the identity key: %s", err.msg);
        en->sealed_blob = xmalloc(a->sealed_key.len);
        memcpy(en->sealed_blob, a->sealed_key.p, a->sealed_key.len);
        en->sealed_len = a->sealed_key.len;
        set_key(en, &kp, epoch, "restored");
    } else {
        uint64_t epoch = a->key_epoch ? a->key_epoch : 1;
        uint8_t *blob = NULL;
        size_t len = 0;
        if (keysource_create(ks, &kp, &blob, &len, enclave_id, epoch, &err) != KM_OK)
            return en_fail(&r->err, PROTO_E_INTERNAL, "cannot create a sealed identity key: %s",
                           err.msg);
        en->sealed_blob = blob;
        en->sealed_len = len;
        set_key(en, &kp, epoch, "created");
    }
    secure_wipe(&kp, sizeof(kp));
    log_info(LOG_COMP, "identity key epoch %llu %s (sealer %s)", (unsigned long long)en->key_epoch,
             en->key_origin, keysource_name(ks));
    return KM_OK;
}

static int en_configure(struct en_req *r)
{
    const struct proto_configure_args *a = r->args;
    struct enclave *en = r->en;
    pthread_mutex_lock(&en->lock);
    bool clash = en->has_enclave_id && en->enclave_id != a->enclave_id;
    uint32_t have = en->enclave_id;
    int rc = KM_OK;
    if (!clash) {
        en->has_enclave_id = true;
        en->enclave_id = a->enclave_id;
        rc = configure_key(r, a->enclave_id);
        if (rc == KM_OK && a->next_sealed_key.len > 0 && en->cfg.keysource != NULL)
            rc = en_restore_next_key(r, &a->next_sealed_key, a->enclave_id);
    }
    pthread_mutex_unlock(&en->lock);
    if (clash)
        return en_fail(&r->err, PROTO_E_INVALID_ARGUMENT,
                       "this is enclave %u, not enclave %u: check the gateway's enclave address "
                       "(CID/port) for enclave %u",
                       have, a->enclave_id, a->enclave_id);
    if (rc != KM_OK)
        return rc;
    struct proto_public_info info;
    public_info(en, r->now_ms, &info);
    /* The gateway keeps the sealed key (ciphertext) and hands it back after
     * a restart. */
    if (en->sealed_blob != NULL) {
        info.sealed_key.p = en->sealed_blob;
        info.sealed_key.len = en->sealed_len;
    }
    r->result = proto_public_info_encode(&info);
    return KM_OK;
}

void en_on_removed(void *ud, const struct session *s)
{
    struct enclave *en = ud;
    char sid[UUID_STR_LEN + 1];
    idem_drop_session(en->idem, &s->id);
    /* A keygen's pool goes with it now, not when its last reference does. */
    if (s->kind == SESSION_KEYGEN)
        pool_drop(s->data);
    uuid_format(sid, &s->id);
    log_debug(LOG_COMP, "%s session %s removed; its secrets are wiped",
              s->kind == SESSION_KEYGEN ? "keygen" : "signing", sid);
}

static void on_evicted(void *ud, const struct session *s)
{
    struct enclave *en = ud;
    char sid[UUID_STR_LEN + 1];
    idem_drop_session(en->idem, &s->id);
    pool_drop(s->data); /* the gateway's restore brings the keygen back, not its pool */
    log_debug(LOG_COMP,
              "keygen session %s evicted to make room (least recently used); the "
              "gateway restores it when it is needed",
              en_uuid_str(sid, &s->id));
}

static void on_signing_done(void *ud, const struct session *s)
{
    (void)ud;
    char sid[UUID_STR_LEN + 1];
    log_debug(LOG_COMP, "signing session %s done here: removed, its secrets are wiped",
              en_uuid_str(sid, &s->id));
}

void en_signing_done(struct en_req *r)
{
    store_remove(r->en->store, r->sess, on_signing_done, r->en);
}

static int en_clear_session(struct en_req *r)
{
    const struct proto_clear_session_args *a = r->args;
    bool keygen = !uuid_is_nil(&a->keygen_session_id);
    const struct uuid *id = keygen ? &a->keygen_session_id : &a->signing_session_id;
    struct proto_clear_session_result res = {0};
    uint64_t ticket;
    struct session *s = store_acquire(r->en->store, keygen ? SESSION_KEYGEN : SESSION_SIGNING, id,
                                      r->now_ms, &ticket);
    r->session_id = *id;
    if (s != NULL) {
        /* Commands already queued on the session finish first. */
        store_turn_wait(r->en->store, s, ticket);
        res.cleared = store_remove(r->en->store, s, en_on_removed, r->en);
        store_turn_end(r->en->store, s);
        store_release(r->en->store, s);
    }
    r->result = proto_clear_session_result_encode(&res);
    return KM_OK;
}

/* ---- The dispatch table ------------------------------------------------------------ */

enum en_flags {
    EN_F_KEYGEN = 1 << 0,   /* runs on the keygen session named at id_off */
    EN_F_SIGNING = 1 << 1,  /* runs on the signing session named at id_off */
    EN_F_NO_CACHE = 1 << 2, /* pure read: repeating it is harmless, not cached */
    EN_F_NO_KEY = 1 << 3,   /* runs before the identity key is set */
};

#define STATE(s) (1u << (s))
#define NO_ID    SIZE_MAX

struct en_command {
    int (*fn)(struct en_req *r);
    unsigned flags;  /* enum en_flags */
    size_t id_off;   /* session commands: offsetof the session id in the args */
    unsigned states; /* session commands: the states it is allowed in */
    size_t sid_off;  /* session-creating commands: offsetof the new session's id */
    size_t kid_off;  /* ... and of its keygen session's id (for the reply cache) */
};

/* Indexed by enum proto_cmd. Session-creating commands (keygen_init,
 * signing_init) check existence themselves: "no session" is their state. */
static const struct en_command dispatch[PROTO_CMD_COUNT_] = {
    [PROTO_CMD_PING] = {en_ping, EN_F_NO_CACHE | EN_F_NO_KEY, NO_ID, 0, NO_ID, NO_ID},
    [PROTO_CMD_GET_PUBLIC_INFO] = {en_get_public_info, EN_F_NO_CACHE | EN_F_NO_KEY, NO_ID, 0, NO_ID,
                                   NO_ID},
    [PROTO_CMD_CONFIGURE] = {en_configure, EN_F_NO_KEY, NO_ID, 0, NO_ID, NO_ID},
    [PROTO_CMD_KEYGEN_INIT] = {en_keygen_init, 0, NO_ID, 0,
                               offsetof(struct proto_keygen_init_args, keygen_session_id),
                               offsetof(struct proto_keygen_init_args, keygen_session_id)},
    [PROTO_CMD_KEYGEN_ADD_PARTICIPANTS] = {en_keygen_add_participants, EN_F_KEYGEN,
                                           offsetof(struct proto_keygen_add_participants_args,
                                                    keygen_session_id),
                                           STATE(KEYGEN_COLLECTING_KEYS), NO_ID, NO_ID},
    [PROTO_CMD_KEYGEN_DISTRIBUTE_PUBLIC_KEYS] =
        {en_keygen_distribute_public_keys, EN_F_KEYGEN,
         offsetof(struct proto_keygen_distribute_public_keys_args, keygen_session_id),
         STATE(KEYGEN_COLLECTING_KEYS), NO_ID, NO_ID},
    [PROTO_CMD_KEYGEN_GET_AGGREGATE] = {en_keygen_get_aggregate, EN_F_KEYGEN,
                                        offsetof(struct proto_keygen_ref_args, keygen_session_id),
                                        STATE(KEYGEN_COMPLETED), NO_ID, NO_ID},
    [PROTO_CMD_SIGNING_INIT] = {en_signing_init, 0, NO_ID, 0,
                                offsetof(struct proto_signing_init_args, signing_session_id),
                                offsetof(struct proto_signing_init_args, keygen_session_id)},
    [PROTO_CMD_SIGNING_DISTRIBUTE_NONCES] = {en_signing_distribute_nonces, EN_F_SIGNING,
                                             offsetof(struct proto_signing_distribute_nonces_args,
                                                      signing_session_id),
                                             STATE(SIGNING_NONCES_ISSUED), NO_ID, NO_ID},
    [PROTO_CMD_SIGNING_FINALIZE] = {en_signing_finalize, EN_F_SIGNING,
                                    offsetof(struct proto_signing_finalize_args,
                                             signing_session_id),
                                    STATE(SIGNING_PARTIALS_ISSUED), NO_ID, NO_ID},
    [PROTO_CMD_CLEAR_SESSION] = {en_clear_session, EN_F_NO_KEY, NO_ID, 0, NO_ID, NO_ID},
    /* Not cached: each nonce asks for a fresh document. */
    [PROTO_CMD_GET_ATTESTATION] = {en_get_attestation, EN_F_NO_CACHE, NO_ID, 0, NO_ID, NO_ID},
    /* Rotation: idempotent by their own state; rekey replies are large. */
    [PROTO_CMD_ROTATE_KEY_BEGIN] = {en_rotate_key_begin, EN_F_NO_CACHE, NO_ID, 0, NO_ID, NO_ID},
    [PROTO_CMD_REKEY] = {en_rekey, EN_F_NO_CACHE, NO_ID, 0, NO_ID, NO_ID},
    [PROTO_CMD_ROTATE_KEY_COMMIT] = {en_rotate_key_commit, EN_F_NO_CACHE, NO_ID, 0, NO_ID, NO_ID},
    /* Keeps nothing: not worth a cache entry. */
    [PROTO_CMD_CHECK_PRIVATE_KEY] = {en_check_private_key, EN_F_NO_CACHE, NO_ID, 0, NO_ID, NO_ID},
    /* Cached under the keygen: a repeated fill returns the same entries
     * (not new ones the gateway would never learn of). The handler takes
     * the keygen's turn only to look it up, so NonceGen does not hold up
     * signings of the same keygen. */
    [PROTO_CMD_NONCE_POOL_FILL] = {en_nonce_pool_fill, 0, NO_ID, 0,
                                   offsetof(struct proto_nonce_pool_fill_args, keygen_session_id),
                                   offsetof(struct proto_nonce_pool_fill_args, keygen_session_id)},
    /* Creates the signing session (coordinator) like signing_init; a
     * repeated command_id gets the cached partial signatures, never new
     * ones. */
    [PROTO_CMD_SIGNING_SIGN] = {en_signing_sign, 0, NO_ID, 0,
                                offsetof(struct proto_signing_sign_args, init.signing_session_id),
                                offsetof(struct proto_signing_sign_args, init.keygen_session_id)},
};

/* A command without a row would be a call through NULL: refuse to start. */
static void check_dispatch_table(void)
{
    for (int c = 0; c < PROTO_CMD_COUNT_; c++)
        if (dispatch[c].fn == NULL)
            KM_BUG("the enclave's dispatch table has no row for command \"%s\"",
                   proto_command_get((enum proto_cmd)c)->name);
}

/* The test hook's handler: fails without saying why. */
static int en_injected_failure(struct en_req *r)
{
    (void)r;
    return KM_ERR_INTERNAL;
}

static const struct uuid *arg_uuid(const void *args, size_t off)
{
    return (const struct uuid *)(const void *)((const uint8_t *)args + off);
}

/* Runs a session command: lookup, turn, state check, handler. */
static int run_on_session(struct en_req *r, const struct en_command *ec, int (*fn)(struct en_req *))
{
    enum session_kind kind = (ec->flags & EN_F_KEYGEN) ? SESSION_KEYGEN : SESSION_SIGNING;
    const char *kname = kind == SESSION_KEYGEN ? "keygen" : "signing";
    const struct uuid *id = arg_uuid(r->args, ec->id_off);
    char sid[UUID_STR_LEN + 1];
    uint64_t ticket;
    uuid_format(sid, id);
    r->session_id = *id;
    struct session *s = store_acquire(r->en->store, kind, id, r->now_ms, &ticket);
    if (s == NULL)
        return en_fail(&r->err, PROTO_E_NOT_FOUND,
                       "%s session %s not found (never created, cleared or expired)", kname, sid);
    int rc;
    r->keygen_id = s->keygen_id;
    if (!store_turn_wait(r->en->store, s, ticket))
        rc =
            en_fail(&r->err, PROTO_E_NOT_FOUND, "%s session %s was cleared or expired", kname, sid);
    else if (!(ec->states & STATE(s->state)))
        rc =
            en_fail(&r->err, PROTO_E_INVALID_STATE, "%s is not allowed in state %s (%s session %s)",
                    r->pc->name, en_state_name(kind, s->state), kname, sid);
    else {
        r->sess = s;
        rc = fn(r);
        r->sess = NULL;
    }
    store_turn_end(r->en->store, s);
    store_release(r->en->store, s);
    return rc;
}

static int run_command(struct en_req *r)
{
    const struct en_command *ec = &dispatch[r->pc->cmd];
    /* busy: retryable; the gateway configures a restarted enclave as soon
     * as it notices, so the same command succeeds shortly. */
    if (!(ec->flags & EN_F_NO_KEY) && !en_key_ready(r->en))
        return en_fail(&r->err, PROTO_E_BUSY,
                       "%s needs the identity key, which this enclave (SEALER=%s) gets in "
                       "configure: the gateway sends it when it reaches the enclave",
                       r->pc->name, keysource_name(r->en->cfg.keysource));
    int (*fn)(struct en_req *) = ec->fn;
    const char *fault = r->en->cfg.fault_cmd;
    if (fault != NULL && strcmp(fault, r->pc->name) == 0)
        fn = en_injected_failure;
    if (ec->sid_off != NO_ID) {
        r->session_id = *arg_uuid(r->args, ec->sid_off);
        r->keygen_id = *arg_uuid(r->args, ec->kid_off);
    }
    if (ec->flags & (EN_F_KEYGEN | EN_F_SIGNING))
        return run_on_session(r, ec, fn);
    return fn(r);
}

/* ---- The handler ---------------------------------------------------------------------- */

static void set_error(struct tp_call *call, enum proto_code code, const char *msg)
{
    snprintf(call->error.code, sizeof(call->error.code), "%s", proto_code_name(code));
    snprintf(call->error.message, sizeof(call->error.message), "%s", msg);
    call->error.retryable = proto_code_retryable(code);
}

/* Turns a cached reply into the call's outcome. */
static int replay(struct tp_call *call, const struct idem_reply *cached)
{
    if (!cached->ok) {
        call->error = cached->error;
        return KM_ERR_REMOTE;
    }
    call->result = json_incref(cached->result);
    return KM_OK;
}

static int decode_args(struct tp_call *call, const struct proto_command *pc, void *args)
{
    struct km_error err;
    int r = proto_decode(pc->args, args, call->args, &err);
    if (r != KM_OK)
        set_error(call, r == KM_ERR_LIMIT ? PROTO_E_LIMIT_EXCEEDED : PROTO_E_INVALID_ARGUMENT,
                  err.msg);
    return r;
}

/* Runs a decoded command and converts its outcome into the cacheable
 * reply. A handler that fails without a message is a bug: it still gets
 * an "internal" reply. */
static void execute(const struct tp_call *call, struct en_req *req, struct idem_reply *out)
{
    int rc = run_command(req);
    memset(out, 0, sizeof(*out));
    if (rc == KM_OK) {
        if (req->result == NULL)
            req->result = json_object();
        out->ok = true;
        out->result = json_incref(req->result); /* shared with the reply: idem.h */
        return;
    }
    json_decref(req->result);
    req->result = NULL;
    if (req->err.msg[0] == '\0')
        en_fail(&req->err, PROTO_E_INTERNAL, "%s failed unexpectedly (%s)", call->cmd,
                km_strerror(rc));
    snprintf(out->error.code, sizeof(out->error.code), "%s", proto_code_name(req->err.code));
    snprintf(out->error.message, sizeof(out->error.message), "%s", req->err.msg);
    out->error.retryable = proto_code_retryable(req->err.code);
}

static uint64_t now_ms(const struct enclave *en)
{
    return en->cfg.now_ms();
}

static void log_outcome(const struct tp_call *call, const struct idem_reply *rep, uint64_t t0,
                        const char *how)
{
    uint64_t us = (clock_now_ns() - t0) / 1000;
    if (rep->ok)
        log_debug(LOG_COMP, "%s ok%s (%llu us)", call->cmd, how, (unsigned long long)us);
    else
        log_info(LOG_COMP, "%s failed%s: %s: %s", call->cmd, how, rep->error.code,
                 rep->error.message);
}

int enclave_handle(void *ud, struct tp_call *call)
{
    struct enclave *en = ud;
    uint64_t t0 = clock_now_ns();
    const struct proto_command *pc = proto_command_find(call->cmd);
    if (pc == NULL) {
        char msg[128];
        snprintf(msg, sizeof(msg), "unknown command \"%.64s\"", call->cmd);
        set_error(call, PROTO_E_UNKNOWN_COMMAND, msg);
        log_info(LOG_COMP, "%s", msg);
        return KM_ERR_INVALID;
    }
    char cid[UUID_STR_LEN + 1];
    uuid_format(cid, &call->command_id);
    log_context_set("command_id", cid);
    void *args = xcalloc(1, pc->args->size);
    struct idem_reply rep = {0};
    int rc = decode_args(call, pc, args);
    if (rc != KM_OK) {
        log_info(LOG_COMP, "%s refused: %s", call->cmd, call->error.message);
        goto out;
    }

    bool cache = !(dispatch[pc->cmd].flags & EN_F_NO_CACHE);
    uint8_t digest[IDEM_DIGEST_LEN];
    enum idem_status st = IDEM_RUN;
    if (cache) {
        idem_digest(digest, call->cmd, call->args);
        st = idem_begin(en->idem, &call->command_id, digest, en->cfg.duplicate_wait_ms, &rep);
    }
    if (st == IDEM_DONE) {
        log_outcome(call, &rep, t0, " (repeated command_id: cached reply)");
        rc = replay(call, &rep);
        goto out;
    }
    if (st == IDEM_CONFLICT || st == IDEM_BUSY) {
        set_error(call, st == IDEM_BUSY ? PROTO_E_BUSY : PROTO_E_INVALID_ARGUMENT,
                  st == IDEM_BUSY ? "the first request with this command_id is still running"
                                  : "this command_id was already used for a different command");
        log_info(LOG_COMP, "%s refused: %s", call->cmd, call->error.message);
        rc = KM_ERR_INVALID;
        goto out;
    }

    struct en_req req = {.en = en, .pc = pc, .args = args, .now_ms = now_ms(en)};
    execute(call, &req, &rep);
    /* A not_found is no outcome: the session may come back (the gateway
     * restores an evicted keygen), and nothing ran, so the same command_id
     * must run again then. */
    bool final = !rep.error.retryable && !(!rep.ok && req.err.code == PROTO_E_NOT_FOUND);
    if (cache)
        idem_finish(en->idem, &call->command_id,
                    uuid_is_nil(&req.session_id) ? NULL : &req.session_id,
                    uuid_is_nil(&req.keygen_id) ? NULL : &req.keygen_id, &rep, final);
    log_outcome(call, &rep, t0, "");
    if (rep.ok) {
        call->result = req.result;
        rc = KM_OK;
    } else {
        call->error = rep.error;
        rc = KM_ERR_REMOTE;
    }
out:
    idem_reply_clear(&rep);
    proto_clear(pc->args, args);
    secure_free(args, pc->args->size); /* configure carries AWS credentials */
    log_context_set("command_id", NULL);
    return rc;
}

/* ---- Lifecycle --------------------------------------------------------------------------- */

static uint64_t wall_secs_default(void)
{
    return (uint64_t)time(NULL);
}

struct enclave *enclave_new(const struct enclave_config *cfg, struct km_error *err)
{
    check_dispatch_table();
    struct enclave *en = xcalloc(1, sizeof(*en));
    if (cfg != NULL)
        en->cfg = *cfg;
    if (en->cfg.max_sessions == 0)
        en->cfg.max_sessions = ENCLAVE_MAX_SESSIONS_DEFAULT;
    if (en->cfg.idem_entries == 0)
        en->cfg.idem_entries = ENCLAVE_IDEM_ENTRIES_DEFAULT;
    if (en->cfg.idem_bytes == 0)
        en->cfg.idem_bytes = ENCLAVE_IDEM_BYTES_DEFAULT;
    if (en->cfg.duplicate_wait_ms == 0)
        en->cfg.duplicate_wait_ms = ENCLAVE_DUP_WAIT_MS_DEFAULT;
    if (en->cfg.now_ms == NULL)
        en->cfg.now_ms = clock_now_ms;
    if (en->cfg.wall_secs == NULL)
        en->cfg.wall_secs = wall_secs_default;

    /* Without a sealer the key is made now and lives in memory only. */
    if (en->cfg.keysource == NULL) {
        struct keypair kp;
        int r = en->cfg.seckey ? keypair_init(&kp, en->cfg.seckey) : keypair_generate(&kp);
        if (r != KM_OK) {
            km_error_set(err, r, 0, "cannot create the enclave keypair: %s", km_strerror(r));
            secure_free(en, sizeof(*en));
            return NULL;
        }
        set_key(en, &kp, 1, "ephemeral");
        secure_wipe(&kp, sizeof(kp));
    }
    en->cfg.seckey = NULL; /* borrowed: not kept */
    pthread_mutex_init(&en->lock, NULL);
    pthread_mutex_init(&en->pools.lock, NULL);
    en->pools.max = en->cfg.pool_max_entries ? en->cfg.pool_max_entries : EN_POOL_PER_ENCLAVE;
    pthread_rwlock_init(&en->key_lock, NULL);
    pthread_cond_init(&en->reaper_wake, NULL);
    en->has_enclave_id = en->cfg.has_enclave_id;
    en->enclave_id = en->cfg.enclave_id;
    en->started_ms = now_ms(en);
    en->store = store_new(en->cfg.max_sessions);
    store_set_evict_callback(en->store, on_evicted, en);
    en->idem = idem_new(en->cfg.idem_entries, en->cfg.idem_bytes);
    if (uuid_v7_new(&en->instance_id) != KM_OK) {
        km_error_set(err, KM_ERR_IO, 0, "no randomness for the instance id");
        enclave_free(en);
        return NULL;
    }
    return en;
}

size_t enclave_reap(struct enclave *en)
{
    return store_reap(en->store, now_ms(en), en_on_removed, en);
}

static void *reaper_main(void *arg)
{
    struct enclave *en = arg;
    pthread_mutex_lock(&en->lock);
    while (!en->reaper_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)en->reaper_interval_ms * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&en->reaper_wake, &en->lock, &ts);
        if (en->reaper_stop)
            break;
        pthread_mutex_unlock(&en->lock);
        size_t n = enclave_reap(en);
        if (n > 0)
            log_info(LOG_COMP, "%zu expired session(s) wiped", n);
        pthread_mutex_lock(&en->lock);
    }
    pthread_mutex_unlock(&en->lock);
    return NULL;
}

int enclave_start_reaper(struct enclave *en, uint32_t interval_ms)
{
    if (en->reaper_running)
        KM_BUG("reaper started twice");
    en->reaper_interval_ms = interval_ms ? interval_ms : 1000;
    if (pthread_create(&en->reaper, NULL, reaper_main, en) != 0)
        return KM_ERR_INTERNAL;
    en->reaper_running = true;
    return KM_OK;
}

bool enclave_public_key(struct enclave *en, uint8_t out[33])
{
    uint64_t epoch;
    if (!en_key_ready(en))
        return false;
    en_identity(en, out, &epoch);
    return true;
}

uint64_t enclave_key_epoch(struct enclave *en)
{
    uint8_t pub[PROTO_PUBKEY_LEN];
    uint64_t epoch = 0;
    if (en_key_ready(en))
        en_identity(en, pub, &epoch);
    return epoch;
}

void enclave_session_counts(struct enclave *en, uint32_t *keygen, uint32_t *signing)
{
    store_counts(en->store, keygen, signing);
}

size_t enclave_pool_entries(struct enclave *en)
{
    return pool_total(&en->pools);
}

void enclave_free(struct enclave *en)
{
    if (en == NULL)
        return;
    if (en->reaper_running) {
        pthread_mutex_lock(&en->lock);
        en->reaper_stop = true;
        pthread_cond_signal(&en->reaper_wake);
        pthread_mutex_unlock(&en->lock);
        pthread_join(en->reaper, NULL);
    }
    store_free(en->store); /* wipes every pool (keygen_destroy) */
    pthread_mutex_destroy(&en->pools.lock);
    idem_free(en->idem);
    keypair_clear(&en->kp);
    keypair_clear(&en->next_kp);
    free(en->sealed_blob);
    free(en->next_blob);
    pthread_rwlock_destroy(&en->key_lock);
    pthread_cond_destroy(&en->reaper_wake);
    pthread_mutex_destroy(&en->lock);
    secure_free(en, sizeof(*en));
}
