#include "gateway/enclaves.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "gateway/enclave_keys.h"
#include "transport/hint.h"
#include "common/banned.h"

#define LOG_COMP         "enclaves"
#define PROBE_TIMEOUT_MS 3000
#define BACKOFF_MIN_MS   1000
#define BACKOFF_MAX_MS   30000

struct enclave_slot {
    struct enclave_status st; /* under mgr->lock */
    struct tp_addr addr;
    char desc[TP_ADDR_STR_MAX]; /* tp_addr_describe, fixed at creation */
    struct pool *pool;
    uint64_t next_probe_ms; /* monotonic */
    uint64_t backoff_ms;
    unsigned failures; /* consecutive */
    /* The verified document of attested_key, and the enclave instance (one
     * start) it came from (under mgr->lock): a restart with the same sealed
     * key is attested again, it may run other code. */
    char attested_key[ENCLAVE_PUBKEY_HEX_LEN + 1];
    char attested_instance[UUID_STR_LEN + 1];
    uint64_t attested_ms; /* monotonic: when it was verified */
    uint8_t *doc;
    size_t doc_len;
};

struct enclave_mgr {
    const struct cfg *cfg;
    struct store *store;
    struct gw_attest *attest; /* NULL: attestation off */
    enclave_restart_fn on_restart;
    void *ud;
    struct enclave_slot *slots;
    size_t n;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    bool started;
    pthread_t thread;
    uint64_t healthy_interval_ms;
};

static void pool_config_from(struct pool_config *pc, const struct cfg_enclaves *e)
{
    memset(pc, 0, sizeof(*pc));
    pc->max_frame = e->max_message_size_bytes;
    pc->connection_load_threshold = e->connection_load_threshold;
    pc->max_connections = e->max_connections_per_enclave;
    pc->connect_timeout_ms = e->pool_acquire_timeout_secs * 1000u;
    pc->request_timeout_ms = e->vsock_timeout_secs * 1000u;
    pc->write_timeout_ms = e->network_write_timeout_secs * 1000u;
    pc->max_attempts = e->max_retry_attempts;
    pc->initial_retry_delay_ms = e->initial_retry_delay_ms;
    pc->max_retry_delay_ms = e->max_retry_delay_ms;
    pc->retry_backoff_multiplier = e->retry_backoff_multiplier;
}

struct enclave_mgr *enclave_mgr_new(const struct cfg *cfg, struct store *store,
                                    struct gw_attest *attest, enclave_restart_fn on_restart,
                                    void *ud)
{
    struct enclave_mgr *m = xcalloc(1, sizeof(*m));
    m->cfg = cfg;
    m->store = store;
    m->attest = attest;
    m->on_restart = on_restart;
    m->ud = ud;
    m->n = cfg->enclaves.count;
    m->slots = XALLOC_ARRAY(struct enclave_slot, m->n);
    uint32_t interval = cfg->coordinator.health_check_interval_secs;
    m->healthy_interval_ms = (interval ? interval : 10u) * 1000u;
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->wake, NULL);

    struct pool_config pc;
    pool_config_from(&pc, &cfg->enclaves);
    for (size_t i = 0; i < m->n; i++) {
        const struct cfg_enclave *e = &cfg->enclaves.list[i];
        struct enclave_slot *s = &m->slots[i];
        s->addr = e->addr;
        s->pool = pool_new(&e->addr, &pc);
        s->st.id = e->id;
        tp_addr_format(s->st.address, sizeof(s->st.address), &e->addr);
        tp_addr_describe(s->desc, sizeof(s->desc), &e->addr);
        s->st.transport = tp_kind_name(e->addr.kind);
        snprintf(s->st.last_error, sizeof(s->st.last_error), "not contacted yet");
        s->st.attestation = attest != NULL ? "pending" : "off";
        s->backoff_ms = BACKOFF_MIN_MS;
    }
    return m;
}

size_t enclave_mgr_count(const struct enclave_mgr *m)
{
    return m->n;
}

uint32_t enclave_mgr_id_at(const struct enclave_mgr *m, size_t i)
{
    return m->slots[i].st.id;
}

static struct enclave_slot *slot_by_id(struct enclave_mgr *m, uint32_t id)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->slots[i].st.id == id)
            return &m->slots[i];
    }
    return NULL;
}

struct pool *enclave_mgr_pool(struct enclave_mgr *m, uint32_t id)
{
    struct enclave_slot *s = slot_by_id(m, id);
    return s ? s->pool : NULL;
}

int enclave_mgr_public_key(struct enclave_mgr *m, uint32_t id, char out[ENCLAVE_PUBKEY_HEX_LEN + 1])
{
    struct enclave_slot *s = slot_by_id(m, id);
    if (s == NULL)
        return KM_ERR_NOT_FOUND;
    pthread_mutex_lock(&m->lock);
    int r = s->st.key_known ? KM_OK : KM_ERR_STATE;
    /* With attestation on, a key is usable only once its document passed
     * (a restarted enclave is pending until it is attested again). */
    if (r == KM_OK && m->attest != NULL && strcmp(s->st.attestation, "verified") != 0)
        r = KM_ERR_CRYPTO;
    if (r == KM_OK)
        memcpy(out, s->st.public_key, ENCLAVE_PUBKEY_HEX_LEN + 1);
    pthread_mutex_unlock(&m->lock);
    return r;
}

void enclave_mgr_status(struct enclave_mgr *m, size_t i, struct enclave_status *out)
{
    pthread_mutex_lock(&m->lock);
    *out = m->slots[i].st;
    pthread_mutex_unlock(&m->lock);
    pool_stats(m->slots[i].pool, &out->pool);
}

void enclave_mgr_report_failure(struct enclave_mgr *m, uint32_t id, const struct km_error *err)
{
    struct enclave_slot *s = slot_by_id(m, id);
    if (s == NULL)
        return;
    char hint[512];
    tp_error_hint(hint, sizeof(hint), err, &s->addr, (int)id,
                  m->cfg->environment == CFG_DEVELOPMENT);
    pthread_mutex_lock(&m->lock);
    if (s->st.healthy)
        log_warn(LOG_COMP, "enclave %u unavailable: %s", id, err->msg);
    s->st.healthy = false;
    if (err->code == KM_ERR_TIMEOUT)
        s->st.unresponsive = true;
    snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", err->msg);
    snprintf(s->st.hint, sizeof(s->st.hint), "%s", hint);
    s->next_probe_ms = 0;
    pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
}

bool enclave_mgr_unresponsive(struct enclave_mgr *m, uint32_t id, char *why, size_t whycap)
{
    struct enclave_slot *s = slot_by_id(m, id);
    if (s == NULL)
        return false;
    pthread_mutex_lock(&m->lock);
    bool yes = s->st.unresponsive;
    if (yes)
        snprintf(why, whycap, "%s", s->st.last_error);
    pthread_mutex_unlock(&m->lock);
    return yes;
}

void enclave_mgr_report_alive(struct enclave_mgr *m, uint32_t id)
{
    struct enclave_slot *s = slot_by_id(m, id);
    if (s == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    if (s->st.unresponsive) {
        s->st.unresponsive = false;
        /* healthy again only through a probe (it also checks the key) */
        s->next_probe_ms = 0;
        pthread_cond_broadcast(&m->wake);
        log_info(LOG_COMP, "enclave %u answers again", id);
    }
    pthread_mutex_unlock(&m->lock);
}

void enclave_mgr_key_rotated(struct enclave_mgr *m, uint32_t id, const char *public_key_hex,
                             int64_t key_epoch)
{
    struct enclave_slot *s = slot_by_id(m, id);
    if (s == NULL || strlen(public_key_hex) != ENCLAVE_PUBKEY_HEX_LEN)
        return;
    pthread_mutex_lock(&m->lock);
    memcpy(s->st.public_key, public_key_hex, ENCLAVE_PUBKEY_HEX_LEN + 1);
    s->st.key_epoch = key_epoch;
    if (m->attest != NULL)
        s->st.attestation = "pending";
    s->next_probe_ms = 0;
    pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
}

void enclave_mgr_set_rotating(struct enclave_mgr *m, uint32_t id, bool rotating)
{
    struct enclave_slot *s = slot_by_id(m, id);
    if (s == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    s->st.rotating = rotating;
    pthread_mutex_unlock(&m->lock);
}

void enclave_mgr_probe_soon(struct enclave_mgr *m, uint32_t id)
{
    struct enclave_slot *s = slot_by_id(m, id);
    if (s == NULL)
        return;
    pthread_mutex_lock(&m->lock);
    s->next_probe_ms = 0;
    pthread_cond_broadcast(&m->wake);
    pthread_mutex_unlock(&m->lock);
}

const char *enclave_mgr_describe_addr(struct enclave_mgr *m, uint32_t id)
{
    struct enclave_slot *s = slot_by_id(m, id);
    return s ? s->desc : "?";
}

void enclave_mgr_describe_error(struct enclave_mgr *m, uint32_t id, const struct km_error *err,
                                char *out, size_t outcap)
{
    struct enclave_slot *s = slot_by_id(m, id);
    char hint[512] = "";
    if (s != NULL)
        tp_error_hint(hint, sizeof(hint), err, &s->addr, (int)id,
                      m->cfg->environment == CFG_DEVELOPMENT);
    snprintf(out, outcap, "%s%s%s", err->msg, hint[0] ? "; " : "", hint);
}

/* Reads {"public_key","uptime_secs","active_sessions":{...}} leniently: the
 * key is required, the rest informational. */
static int parse_public_info(const json_t *res, char key[ENCLAVE_PUBKEY_HEX_LEN + 1],
                             uint64_t *uptime, uint64_t *keygen, uint64_t *signing,
                             char provider[PROTO_ATTESTATION_NAME_MAX + 1])
{
    const char *att = json_string_value(json_object_get(res, "attestation"));
    snprintf(provider, PROTO_ATTESTATION_NAME_MAX + 1, "%s", att != NULL ? att : "none");
    const char *pk = json_string_value(json_object_get(res, "public_key"));
    if (pk == NULL || strlen(pk) != ENCLAVE_PUBKEY_HEX_LEN)
        return KM_ERR_INVALID;
    for (size_t i = 0; i < ENCLAVE_PUBKEY_HEX_LEN; i++) {
        char c = pk[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return KM_ERR_INVALID;
    }
    memcpy(key, pk, ENCLAVE_PUBKEY_HEX_LEN + 1);
    *uptime = (uint64_t)json_integer_value(json_object_get(res, "uptime_secs"));
    const json_t *act = json_object_get(res, "active_sessions");
    *keygen = (uint64_t)json_integer_value(json_object_get(act, "keygen"));
    *signing = (uint64_t)json_integer_value(json_object_get(act, "signing"));
    return KM_OK;
}

/* The enclave runs on the next key of a rotation: it committed the
 * rotation and the gateway has not recorded that yet (the rotation is
 * finishing right now, or the gateway stopped in between). That is no
 * restart: record the commit. */
static bool rotation_committed(struct enclave_mgr *m, struct enclave_slot *s, const char *key)
{
    struct store_sealed_key next;
    if (store_sealed_key_next(m->store, s->st.id, &next) != KM_OK)
        return false;
    bool match = strcmp(next.public_key, key) == 0;
    int r = match ? store_sealed_key_promote(m->store, s->st.id, next.key_epoch, key) : KM_OK;
    if (match && r != KM_OK && r != KM_ERR_STATE) /* KM_ERR_STATE: recorded meanwhile */
        log_error(LOG_COMP, "cannot record the key rotation of enclave %u", s->st.id);
    if (match) {
        pthread_mutex_lock(&m->lock);
        memcpy(s->st.public_key, key, ENCLAVE_PUBKEY_HEX_LEN + 1);
        s->st.key_known = true;
        s->st.key_epoch = next.key_epoch;
        pthread_mutex_unlock(&m->lock);
        log_info(LOG_COMP, "enclave %u runs on its rotated key (epoch %lld): rotation recorded",
                 s->st.id, (long long)next.key_epoch);
    }
    store_sealed_key_clear(&next);
    return match;
}

/* A key different from the last one recorded (in memory, or in the store
 * when the gateway itself restarted): the enclave restarted and lost every
 * session. One code path for every detector. */
static void handle_key(struct enclave_mgr *m, struct enclave_slot *s, const char *key)
{
    char old[ENCLAVE_PUBKEY_HEX_LEN + 1] = "";
    bool changed = false, first = false;
    int64_t epoch = 0;
    pthread_mutex_lock(&m->lock);
    bool same = s->st.key_known && strcmp(s->st.public_key, key) == 0;
    pthread_mutex_unlock(&m->lock);
    if (same || rotation_committed(m, s, key))
        return;

    if (store_enclave_observe_key(m->store, s->st.id, key, old, sizeof(old), &changed, &first,
                                  &epoch) != KM_OK) {
        log_error(LOG_COMP, "cannot record the public key of enclave %u", s->st.id);
        return;
    }
    pthread_mutex_lock(&m->lock);
    memcpy(s->st.public_key, key, ENCLAVE_PUBKEY_HEX_LEN + 1);
    s->st.key_known = true;
    s->st.key_epoch = epoch;
    pthread_mutex_unlock(&m->lock);

    if (!changed) {
        log_info(LOG_COMP, "enclave %u public key %.16s... (key epoch %lld)", s->st.id, key,
                 (long long)epoch);
        return;
    }
    char why[256];
    size_t failed = 0;
    snprintf(why, sizeof(why),
             "enclave %u restarted (its public key changed) and lost this session's keys; "
             "run a new keygen",
             s->st.id);
    if (store_fail_sessions_of_enclave(m->store, s->st.id, old, why, &failed) != KM_OK)
        log_error(LOG_COMP, "cannot fail the sessions of restarted enclave %u", s->st.id);
    log_warn(LOG_COMP,
             "enclave %u restarted: public key changed from %.16s... to %.16s... (key epoch "
             "%lld); %zu session(s) that depended on it failed",
             s->st.id, old, key, (long long)epoch, failed);
    if (m->on_restart)
        m->on_restart(m->ud, s->st.id);
}

/* Verifies the attestation of a key not verified yet (attestation on).
 * KM_OK when verified or off; otherwise the enclave must not be used. */
static int attest_key(struct enclave_mgr *m, struct enclave_slot *s, const char *key,
                      const char *provider, const char *instance, struct km_error *err)
{
    pthread_mutex_lock(&m->lock);
    snprintf(s->st.provider, sizeof(s->st.provider), "%s", provider);
    bool done = m->attest == NULL ||
                (strcmp(s->attested_key, key) == 0 && strcmp(s->attested_instance, instance) == 0 &&
                 clock_now_ms() - s->attested_ms < gw_attest_refresh_ms(m->attest));
    pthread_mutex_unlock(&m->lock);
    if (done)
        return KM_OK;
    pthread_mutex_lock(&m->lock);
    bool same = strcmp(s->attested_key, key) == 0 && strcmp(s->attested_instance, instance) == 0;
    if (!same && strcmp(s->st.attestation, "verified") == 0)
        s->st.attestation = "pending";
    pthread_mutex_unlock(&m->lock);
    uint8_t kb[PROTO_PUBKEY_LEN];
    uint8_t *doc = NULL;
    size_t doc_len = 0;
    struct gw_attest_summary sum;
    int r = hex_decode_exact(kb, sizeof(kb), key, strlen(key));
    if (r == KM_OK)
        r = gw_attest_check(m->attest, s->pool, kb, &doc, &doc_len, &sum, err);
    pthread_mutex_lock(&m->lock);
    if (r == KM_OK) {
        free(s->doc);
        s->doc = doc;
        s->doc_len = doc_len;
        memcpy(s->attested_key, key, sizeof(s->attested_key));
        snprintf(s->attested_instance, sizeof(s->attested_instance), "%s", instance);
        s->attested_ms = clock_now_ms();
        s->st.attestation = "verified";
        s->st.attest_error[0] = '\0';
        s->st.attested = sum;
    } else {
        s->st.attestation = "failed";
        snprintf(s->st.attest_error, sizeof(s->st.attest_error), "%s", err->msg);
    }
    pthread_mutex_unlock(&m->lock);
    if (r == KM_OK)
        log_info(LOG_COMP, "enclave %u attested (%s, module %s, PCR0 %.16s...)", s->st.id,
                 sum.provider, sum.module_id, sum.pcr0);
    else
        log_error(LOG_COMP, "enclave %u is not used: %s", s->st.id, err->msg);
    return r;
}

/* The sealer and where the key came from, for /health/detail. */
static void note_key_source(struct enclave_mgr *m, struct enclave_slot *s, const json_t *info)
{
    const char *sealer = json_string_value(json_object_get(info, "sealer"));
    const char *origin = json_string_value(json_object_get(info, "key_origin"));
    pthread_mutex_lock(&m->lock);
    snprintf(s->st.sealer, sizeof(s->st.sealer), "%s", sealer ? sealer : "none");
    snprintf(s->st.key_origin, sizeof(s->st.key_origin), "%s", origin ? origin : "");
    pthread_mutex_unlock(&m->lock);
}

/* What to do about an enclave whose attestation failed. */
static void attest_hint(char *out, size_t cap, const char *provider)
{
    if (strcmp(provider, "none") == 0)
        snprintf(out, cap,
                 "hint: the enclave runs with ATTESTATION=none: start it with ATTESTATION=nsm "
                 "(Nitro) or ATTESTATION=development, or set security.enable_attestation: false "
                 "(development only)");
    else
        snprintf(out, cap,
                 "hint: the document does not match security.attestation_root / "
                 "attestation_pcrs: after an enclave image change update the PCR policy "
                 "(deploy/nitro/deploy.sh writes it; scripts/keymeld-dev rewrites it at start) "
                 "and restart the gateway (docs/ATTESTATION.md)");
}

int enclave_mgr_attestation(struct enclave_mgr *m, uint32_t id, uint8_t **doc, size_t *doc_len,
                            char key[ENCLAVE_PUBKEY_HEX_LEN + 1])
{
    *doc = NULL;
    *doc_len = 0;
    struct enclave_slot *s = slot_by_id(m, id);
    if (s == NULL)
        return KM_ERR_NOT_FOUND;
    pthread_mutex_lock(&m->lock);
    int r = s->doc != NULL && strcmp(s->st.attestation, "verified") == 0 ? KM_OK : KM_ERR_STATE;
    if (r == KM_OK) {
        *doc = xmalloc(s->doc_len);
        memcpy(*doc, s->doc, s->doc_len);
        *doc_len = s->doc_len;
        memcpy(key, s->attested_key, ENCLAVE_PUBKEY_HEX_LEN + 1);
    }
    pthread_mutex_unlock(&m->lock);
    return r;
}

int enclave_mgr_probe(struct enclave_mgr *m, uint32_t id, struct km_error *err)
{
    struct enclave_slot *s = slot_by_id(m, id);
    if (s == NULL)
        return km_error_set(err, KM_ERR_NOT_FOUND, 0, "no enclave %u", id);
    struct env_reply reply;
    uint64_t t0 = clock_now_ns();
    int r = pool_request(s->pool, &reply, "get_public_info", NULL, NULL, PROBE_TIMEOUT_MS, err);
    uint64_t us = (clock_now_ns() - t0) / 1000u;
    char key[ENCLAVE_PUBKEY_HEX_LEN + 1];
    char provider[PROTO_ATTESTATION_NAME_MAX + 1] = "";
    char instance[UUID_STR_LEN + 1] = "";
    uint64_t uptime = 0, kg = 0, sg = 0;
    json_t *info = r == KM_OK ? json_incref(reply.result) : NULL;
    env_reply_clear(&reply);
    /* An enclave with a sealer waits for its sealed key. */
    if (r == KM_OK)
        r = gw_enclave_key_handshake(m->store, s->pool, id, &info, err);
    if (r == KM_OK) {
        note_key_source(m, s, info);
        const char *inst = json_string_value(json_object_get(info, "instance_id"));
        snprintf(instance, sizeof(instance), "%s", inst ? inst : "");
        if (parse_public_info(info, key, &uptime, &kg, &sg, provider) != KM_OK)
            r = km_error_set(err, KM_ERR_INVALID, 0,
                             "Command failed to %s: enclave answered get_public_info without a "
                             "valid public key",
                             s->st.address);
    }
    json_decref(info);

    bool attest_failed = false;
    if (r == KM_OK) {
        handle_key(m, s, key);
        r = attest_key(m, s, key, provider, instance, err);
        /* A transport failure while fetching the document keeps its own
         * (transport) hint. */
        attest_failed = r == KM_ERR_CRYPTO || r == KM_ERR_REMOTE || r == KM_ERR_INVALID;
    }
    if (r == KM_OK) {
        pthread_mutex_lock(&m->lock);
        bool was_healthy = s->st.healthy;
        s->st.healthy = true;
        s->st.unresponsive = false;
        s->st.latency_us = us;
        s->st.uptime_secs = uptime;
        s->st.active_keygen = kg;
        s->st.active_signing = sg;
        s->st.last_ok_ms = clock_wall_ms();
        s->st.last_error[0] = s->st.hint[0] = '\0';
        s->failures = 0;
        s->backoff_ms = BACKOFF_MIN_MS;
        pthread_mutex_unlock(&m->lock);
        if (!was_healthy)
            log_info(LOG_COMP, "enclave %u at %s is reachable (%llu us)", id, s->st.address,
                     (unsigned long long)us);
        return KM_OK;
    }

    char hint[512] = "";
    if (attest_failed)
        attest_hint(hint, sizeof(hint), provider);
    else
        tp_error_hint(hint, sizeof(hint), err, &s->addr, (int)id,
                      m->cfg->environment == CFG_DEVELOPMENT);
    pthread_mutex_lock(&m->lock);
    s->st.healthy = false;
    if (err->code == KM_ERR_TIMEOUT)
        s->st.unresponsive = true;
    snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", err->msg);
    snprintf(s->st.hint, sizeof(s->st.hint), "%s", hint);
    unsigned failures = ++s->failures;
    pthread_mutex_unlock(&m->lock);
    log_warn(LOG_COMP, "enclave %u unavailable (attempt %u): %s%s%s", id, failures, err->msg,
             hint[0] ? "; " : "", hint);
    return r;
}

static void *health_main(void *arg)
{
    struct enclave_mgr *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->stopping) {
        uint64_t now = clock_now_ms(), next = now + m->healthy_interval_ms;
        for (size_t i = 0; i < m->n && !m->stopping; i++) {
            struct enclave_slot *s = &m->slots[i];
            if (s->next_probe_ms > now) {
                if (s->next_probe_ms < next)
                    next = s->next_probe_ms;
                continue;
            }
            pthread_mutex_unlock(&m->lock);
            struct km_error err;
            int r = enclave_mgr_probe(m, s->st.id, &err);
            pthread_mutex_lock(&m->lock);
            now = clock_now_ms();
            if (r == KM_OK) {
                s->next_probe_ms = now + m->healthy_interval_ms;
            } else {
                s->next_probe_ms = now + s->backoff_ms;
                s->backoff_ms =
                    s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
            }
            if (s->next_probe_ms < next)
                next = s->next_probe_ms;
        }
        struct deadline dl = {next};
        struct timespec ts = {(time_t)(dl.at_ms / 1000), (long)(dl.at_ms % 1000) * 1000000L};
        if (!m->stopping)
            pthread_cond_timedwait(&m->wake, &m->lock, &ts);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

void enclave_mgr_start(struct enclave_mgr *m)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_destroy(&m->wake);
    pthread_cond_init(&m->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&m->thread, NULL, health_main, m) != 0)
        KM_BUG("cannot start the enclave health thread");
    m->started = true;
}

void enclave_mgr_free(struct enclave_mgr *m)
{
    if (m == NULL)
        return;
    if (m->started) {
        pthread_mutex_lock(&m->lock);
        m->stopping = true;
        pthread_cond_broadcast(&m->wake);
        pthread_mutex_unlock(&m->lock);
        pthread_join(m->thread, NULL);
    }
    for (size_t i = 0; i < m->n; i++) {
        pool_free(m->slots[i].pool);
        free(m->slots[i].doc);
    }
    free(m->slots);
    gw_attest_free(m->attest);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->wake);
    free(m);
}
