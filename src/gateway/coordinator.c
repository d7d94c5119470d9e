#include "gateway/coordinator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "gateway/coord_internal.h"
#include "common/banned.h"

#define LOG_COMP          "coordinator"
#define SWEEP_INTERVAL_MS 2000
/* A parked session looks again this long after parking even if no claim
 * on its enclaves ended (the woken session may not have needed the room). */
#define PARK_RECHECK_MS 250
/* A lease older than a third of its time is renewed between steps. */
#define LEASE_RENEW_FRACTION 3

static void cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &attr);
    pthread_condattr_destroy(&attr);
}

static bool wait_until(pthread_cond_t *cv, pthread_mutex_t *m, uint64_t at_ms)
{
    struct timespec ts = {(time_t)(at_ms / 1000), (long)(at_ms % 1000) * 1000000L};
    return pthread_cond_timedwait(cv, m, &ts) == 0;
}

/* host:port: unique among the gateways of one database, and the same
 * after a restart, so a gateway that comes back resumes its own sessions
 * at once instead of waiting for its leases to expire. */
static void coord_owner_name(char *out, size_t cap, uint16_t port)
{
    char host[64] = "gateway";
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "gateway");
    host[sizeof(host) - 1] = '\0';
    snprintf(out, cap, "%s:%u", host, port);
}

struct coord *coord_new(const struct cfg *cfg, struct store *store, struct enclave_mgr *em)
{
    struct coord *c = xcalloc(1, sizeof(*c));
    c->cfg = cfg;
    c->store = store;
    c->em = em;
    c->max_attempts = cfg->coordinator.max_retries ? cfg->coordinator.max_retries : 5;
    c->call_timeout_ms = cfg->enclaves.vsock_timeout_secs * 1000u;
    pthread_mutex_init(&c->lock, NULL);
    cond_init_monotonic(&c->work);
    cond_init_monotonic(&c->sweep);
    pthread_mutex_init(&c->gen_lock, NULL);
    for (size_t i = 0; i < COORD_GEN_BUCKETS; i++)
        cond_init_monotonic(&c->gens[i].changed);
    c->nworkers =
        cfg->coordinator.max_concurrent_sessions ? cfg->coordinator.max_concurrent_sessions : 16;
    c->per_enclave_cap = cfg->coordinator.max_sessions_per_enclave;
    if (c->per_enclave_cap == 0)
        c->per_enclave_cap = c->nworkers / 2 ? c->nworkers / 2 : 1;
    c->shared = store_shared(store);
    coord_owner_name(c->owner, sizeof(c->owner), cfg->server.port);
    /* Longer than one step's slowest attempt (renewed between steps). */
    c->lease_secs = cfg->coordinator.session_lease_secs;
    if (c->lease_secs == 0)
        c->lease_secs = cfg->enclaves.vsock_timeout_secs + 15u;
    if (cfg->coordinator.nonce_pool_size > 0)
        c->pool = coord_pool_new(cfg->coordinator.nonce_pool_size);
    c->nloads = enclave_mgr_count(em);
    c->loads = XALLOC_ARRAY(struct coord_enclave_load, c->nloads ? c->nloads : 1);
    for (size_t i = 0; i < c->nloads; i++)
        c->loads[i] = (struct coord_enclave_load){.id = enclave_mgr_id_at(em, i)};
    return c;
}

/* ---- change generations (long polls) ---- */

static size_t gen_bucket(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h % COORD_GEN_BUCKETS;
}

static void changed_here(struct coord *c, const char *id)
{
    struct coord_gen_bucket *b = &c->gens[gen_bucket(id)];
    pthread_mutex_lock(&c->gen_lock);
    b->gen++;
    pthread_cond_broadcast(&b->changed);
    pthread_mutex_unlock(&c->gen_lock);
}

void coord_changed(struct coord *c, const char *id)
{
    changed_here(c, id);
    /* Long polls on the other gateways (a no-op with SQLite). A lost
     * notice only delays a waiter until its own timeout. */
    if (c->shared && store_notify_changed(c->store, c->owner, id) != KM_OK)
        log_debug(LOG_COMP, "could not announce the change of %s to other gateways", id);
}

uint64_t coord_generation(struct coord *c, const char *id)
{
    pthread_mutex_lock(&c->gen_lock);
    uint64_t g = c->gens[gen_bucket(id)].gen;
    pthread_mutex_unlock(&c->gen_lock);
    return g;
}

bool coord_wait(struct coord *c, const char *id, uint64_t seen, uint32_t timeout_ms)
{
    uint64_t at = clock_now_ms() + timeout_ms;
    struct coord_gen_bucket *b = &c->gens[gen_bucket(id)];
    pthread_mutex_lock(&c->gen_lock);
    while (b->gen == seen && !c->gens_stopping && clock_now_ms() < at)
        wait_until(&b->changed, &c->gen_lock, at);
    bool changed = b->gen != seen;
    pthread_mutex_unlock(&c->gen_lock);
    return changed;
}

/* Wakes every waiter: as a change of every session, or (stopping) to end
 * every wait with no change. */
static void wake_all_waiters(struct coord *c, bool stopping)
{
    pthread_mutex_lock(&c->gen_lock);
    c->gens_stopping |= stopping;
    for (size_t i = 0; i < COORD_GEN_BUCKETS; i++) {
        if (!stopping)
            c->gens[i].gen++;
        pthread_cond_broadcast(&c->gens[i].changed);
    }
    pthread_mutex_unlock(&c->gen_lock);
}

/* Another gateway changed session id ("" = the notices may have been
 * missed: every session). */
static void changed_elsewhere(void *ud, const char *id)
{
    struct coord *c = ud;
    if (id[0] == '\0')
        wake_all_waiters(c, false);
    else
        changed_here(c, id);
}

void coord_enclave_restarted(struct coord *c, uint32_t enclave_id)
{
    /* Its pools are empty now. */
    coord_pool_drop_enclave(c->pool, enclave_id);
    /* Sessions were failed in the store by whoever detected the restart;
     * every waiter re-reads its session. */
    wake_all_waiters(c, false);
}

/* ---- the work queue ---- */

static struct coord_item *find_item(struct coord *c, enum coord_kind kind, const char *id)
{
    for (size_t i = 0; i < c->nitems; i++) {
        if (c->items[i].kind == kind && strcmp(c->items[i].id, id) == 0)
            return &c->items[i];
    }
    return NULL;
}

static void schedule_locked(struct coord *c, enum coord_kind kind, const char *id, uint64_t due,
                            bool resumed)
{
    struct coord_item *it = find_item(c, kind, id);
    if (it != NULL) {
        if (it->running)
            it->again = it->again || due == 0;
        if (due < it->due_ms)
            it->due_ms = due;
    } else {
        if (c->nitems == c->capitems) {
            c->capitems = c->capitems ? c->capitems * 2 : 64;
            c->items = xrealloc(c->items, c->capitems * sizeof(*c->items));
        }
        it = &c->items[c->nitems++];
        memset(it, 0, sizeof(*it));
        it->kind = kind;
        snprintf(it->id, sizeof(it->id), "%s", id);
        it->due_ms = due;
        it->resumed = resumed;
    }
    pthread_cond_signal(&c->work);
}

void coord_wake(struct coord *c, enum coord_kind kind, const char *id)
{
    pthread_mutex_lock(&c->lock);
    schedule_locked(c, kind, id, 0, false);
    pthread_mutex_unlock(&c->lock);
}

/* Queues a session this gateway did not start (or started before a
 * restart). */
static void wake_resumed(struct coord *c, enum coord_kind kind, const char *id)
{
    pthread_mutex_lock(&c->lock);
    schedule_locked(c, kind, id, 0, true);
    pthread_mutex_unlock(&c->lock);
}

/* The earliest due item nobody runs; sets *next_due when none is due. */
static struct coord_item *pick_locked(struct coord *c, uint64_t now, uint64_t *next_due)
{
    struct coord_item *best = NULL;
    *next_due = UINT64_MAX;
    for (size_t i = 0; i < c->nitems; i++) {
        struct coord_item *it = &c->items[i];
        if (it->running)
            continue;
        if (it->due_ms <= now && (best == NULL || it->due_ms < best->due_ms))
            best = it;
        else if (it->due_ms > now && it->due_ms < *next_due)
            *next_due = it->due_ms;
    }
    return best;
}

static void remove_item_locked(struct coord *c, struct coord_item *it)
{
    *it = c->items[--c->nitems];
}

static enum store_session_kind lease_kind(enum coord_kind kind)
{
    return kind == COORD_KEYGEN ? STORE_KEYGEN : STORE_SIGNING;
}

/* Claims (or renews) the session's lease: false when another gateway
 * drives it or it no longer runs. A database error counts as taken: the
 * step's own store calls then fail and retry as usual. */
static bool lease_take(struct coord *c, enum coord_kind kind, const char *id)
{
    int64_t now = (int64_t)(clock_wall_ms() / 1000u);
    int r = store_lease_claim(c->store, lease_kind(kind), id, c->owner, now, c->lease_secs);
    return r != KM_ERR_STATE;
}

static void lease_give_back(struct coord *c, enum coord_kind kind, const char *id)
{
    if (store_lease_release(c->store, lease_kind(kind), id, c->owner) != KM_OK)
        log_debug(LOG_COMP, "could not give back the lease of %s (it expires)", id);
}

/* Runs steps until the session waits for something; returns why it
 * stopped. */
static enum step_result advance(struct coord *c, enum coord_kind kind, const char *id, bool resumed,
                                uint64_t *retry_at)
{
    *retry_at = 0;
    uint64_t claimed_ms = clock_now_ms();
    for (;;) {
        enum step_result r = kind == COORD_KEYGEN ? coord_keygen_step(c, id, retry_at)
                                                  : coord_signing_step(c, id, resumed, retry_at);
        if (r != STEP_ADVANCED)
            return r;
        coord_changed(c, id);
        if (c->shared &&
            clock_now_ms() - claimed_ms > c->lease_secs * 1000u / LEASE_RENEW_FRACTION) {
            if (!lease_take(c, kind, id))
                return STEP_IDLE; /* another gateway took it over */
            claimed_ms = clock_now_ms();
        }
    }
}

/* Parks an item that found no room on an enclave (STEP_WAIT). */
static void park_locked(struct coord *c, struct coord_item *it)
{
    it->parked = true;
    it->parked_seq = ++c->park_seq;
    it->due_ms = clock_now_ms() + PARK_RECHECK_MS;
}

/* A claim ended: the longest-parked session looks again now. */
static void unpark_oldest_locked(struct coord *c)
{
    struct coord_item *oldest = NULL;
    for (size_t i = 0; i < c->nitems; i++) {
        struct coord_item *it = &c->items[i];
        if (it->parked && !it->running && (oldest == NULL || it->parked_seq < oldest->parked_seq))
            oldest = it;
    }
    if (oldest == NULL)
        return;
    oldest->parked = false;
    oldest->due_ms = 0;
    pthread_cond_signal(&c->work);
}

static void *worker_main(void *arg)
{
    struct coord *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        uint64_t next_due;
        struct coord_item *it = pick_locked(c, clock_now_ms(), &next_due);
        if (it == NULL) {
            if (next_due == UINT64_MAX)
                pthread_cond_wait(&c->work, &c->lock);
            else
                wait_until(&c->work, &c->lock, next_due);
            continue;
        }
        it->running = true;
        it->again = false;
        enum coord_kind kind = it->kind;
        bool resumed = it->resumed;
        char id[37];
        memcpy(id, it->id, sizeof(id));
        c->stats.running++;
        pthread_mutex_unlock(&c->lock);

        log_context_set("session_id", id);
        uint64_t retry_at = 0;
        enum step_result r = STEP_IDLE;
        if (!c->shared || lease_take(c, kind, id)) {
            r = advance(c, kind, id, resumed, &retry_at);
            if (r != STEP_WAIT)
                coord_changed(c, id);
            if (c->shared && r == STEP_IDLE)
                lease_give_back(c, kind, id);
        }
        log_context_set("session_id", NULL);

        pthread_mutex_lock(&c->lock);
        c->stats.running--;
        it = find_item(c, kind, id);
        if (it == NULL) /* items of a running session are never removed by others */
            KM_BUG("coordinator lost the item of session %s", id);
        it->parked = false;
        if (it->again)
            it->due_ms = 0;
        else if (r == STEP_WAIT)
            park_locked(c, it);
        else if (retry_at != 0)
            it->due_ms = retry_at;
        if (it->again || r == STEP_WAIT || retry_at != 0) {
            it->running = false;
            it->again = false;
            pthread_cond_signal(&c->work);
        } else {
            remove_item_locked(c, it);
        }
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- expiry ---- */

static void expire_kind(struct coord *c, enum coord_kind kind)
{
    char(*ids)[37] = NULL;
    size_t n = 0;
    int64_t now = (int64_t)(clock_wall_ms() / 1000u);
    int r = kind == COORD_KEYGEN ? store_keygen_list_expired(c->store, now, &ids, &n)
                                 : store_signing_list_expired(c->store, now, &ids, &n);
    if (r != KM_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *why = "session expired before it completed (timeout_secs elapsed)";
        r = kind == COORD_KEYGEN ? store_keygen_fail(c->store, ids[i], why)
                                 : store_signing_fail(c->store, ids[i], why);
        if (r == KM_OK) {
            log_info(LOG_COMP, "%s session %s expired", kind == COORD_KEYGEN ? "keygen" : "signing",
                     ids[i]);
            coord_count_end(c, kind, false, true);
            coord_changed(c, ids[i]);
        }
    }
    free(ids);
}

/* Running sessions nobody drives (their gateway died and the lease
 * expired, or it never took one): queue them here; the lease claim
 * decides which gateway gets each. */
static void take_over_kind(struct coord *c, enum coord_kind kind)
{
    char(*ids)[37] = NULL;
    size_t n = 0;
    int64_t now = (int64_t)(clock_wall_ms() / 1000u);
    if (store_lease_list_orphans(c->store, lease_kind(kind), now, &ids, &n) != KM_OK)
        return;
    for (size_t i = 0; i < n; i++)
        wake_resumed(c, kind, ids[i]);
    if (n > 0)
        log_info(LOG_COMP, "taking over %zu running %s session(s) no gateway drives", n,
                 kind == COORD_KEYGEN ? "keygen" : "signing");
    free(ids);
}

/* coordinator.delete_sessions_older_than_secs (0 = keep forever). */
static void prune_finished(struct coord *c)
{
    uint32_t keep = c->cfg->coordinator.delete_sessions_older_than_secs;
    size_t n = 0;
    if (keep == 0)
        return;
    int64_t before = (int64_t)(clock_wall_ms() / 1000u) - (int64_t)keep;
    if (store_prune_finished(c->store, before, &n) != KM_OK)
        log_warn(LOG_COMP, "cannot delete finished sessions");
    else if (n > 0)
        log_info(LOG_COMP, "deleted %zu finished session(s) older than %u s", n, keep);
}

static void *sweeper_main(void *arg)
{
    struct coord *c = arg;
    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        /* Its own condition variable: a signal meant for a worker must
         * never be consumed by the sweeper. */
        wait_until(&c->sweep, &c->lock, clock_now_ms() + SWEEP_INTERVAL_MS);
        if (c->stopping)
            break;
        pthread_mutex_unlock(&c->lock);
        expire_kind(c, COORD_KEYGEN);
        expire_kind(c, COORD_SIGNING);
        if (c->shared) {
            take_over_kind(c, COORD_KEYGEN);
            take_over_kind(c, COORD_SIGNING);
        }
        prune_finished(c);
        if (store_auth_nonce_prune(c->store, (int64_t)(clock_wall_ms() / 1000u)) != KM_OK)
            log_warn(LOG_COMP, "cannot prune the request-nonce cache");
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

static void resume_kind(struct coord *c, enum coord_kind kind)
{
    char(*ids)[37] = NULL;
    size_t n = 0;
    int r = kind == COORD_KEYGEN ? store_keygen_list_running(c->store, &ids, &n)
                                 : store_signing_list_running(c->store, &ids, &n);
    if (r != KM_OK) {
        log_error(LOG_COMP, "cannot list running sessions to resume");
        return;
    }
    for (size_t i = 0; i < n; i++)
        wake_resumed(c, kind, ids[i]);
    if (n > 0)
        log_info(LOG_COMP, "resuming %zu running %s session(s)", n,
                 kind == COORD_KEYGEN ? "keygen" : "signing");
    free(ids);
}

void coord_start(struct coord *c)
{
    struct km_error err;
    if (c->shared && store_listen_start(c->store, c->owner, changed_elsewhere, c, &err) != KM_OK)
        log_warn(LOG_COMP,
                 "cannot listen for other gateways' changes (%s): long polls here learn of "
                 "them only at their timeout",
                 err.msg);
    resume_kind(c, COORD_KEYGEN);
    resume_kind(c, COORD_SIGNING);
    c->workers = XALLOC_ARRAY(pthread_t, c->nworkers);
    for (unsigned i = 0; i < c->nworkers; i++) {
        if (pthread_create(&c->workers[i], NULL, worker_main, c) != 0)
            KM_BUG("cannot start coordinator worker");
    }
    if (pthread_create(&c->sweeper, NULL, sweeper_main, c) != 0)
        KM_BUG("cannot start the expiry sweeper");
    c->started = true;
}

void coord_free(struct coord *c)
{
    if (c == NULL)
        return;
    if (c->started) {
        pthread_mutex_lock(&c->lock);
        c->stopping = true;
        pthread_cond_broadcast(&c->work);
        pthread_cond_broadcast(&c->sweep);
        pthread_mutex_unlock(&c->lock);
        store_listen_stop(c->store); /* its callback uses c */
        wake_all_waiters(c, true);
        for (unsigned i = 0; i < c->nworkers; i++)
            pthread_join(c->workers[i], NULL);
        pthread_join(c->sweeper, NULL);
    }
    free(c->workers);
    free(c->items);
    free(c->loads);
    coord_pool_free(c->pool);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->work);
    pthread_cond_destroy(&c->sweep);
    pthread_mutex_destroy(&c->gen_lock);
    for (size_t i = 0; i < COORD_GEN_BUCKETS; i++)
        pthread_cond_destroy(&c->gens[i].changed);
    free(c);
}

void coord_stats(struct coord *c, struct coord_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->stats;
    out->queued = (unsigned)c->nitems - c->stats.running;
    pthread_mutex_unlock(&c->lock);
    struct coord_pool_stats ps;
    coord_pool_stats(c->pool, &ps);
    out->pool_signings = ps.claims;
    out->pool_misses = ps.misses;
    out->pool_drops = ps.drops;
    out->pool_filled = ps.filled;
}

/* ---- per-enclave room ---- */

static struct coord_enclave_load *load_of(struct coord *c, uint32_t id)
{
    for (size_t i = 0; i < c->nloads; i++) {
        if (c->loads[i].id == id)
            return &c->loads[i];
    }
    return NULL;
}

enum calls_verdict coord_claim_enclaves(struct coord *c, const uint32_t *ids, size_t n, char *err,
                                        size_t errcap)
{
    bool hung[PROTO_MAX_ENCLAVES];
    char why[512];
    if (n > PROTO_MAX_ENCLAVES)
        KM_BUG("a step on %zu enclaves", n);
    /* The enclave manager's lock is never taken under ours. */
    for (size_t i = 0; i < n; i++)
        hung[i] = enclave_mgr_unresponsive(c->em, ids[i], why, sizeof(why));
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        struct coord_enclave_load *l = load_of(c, ids[i]);
        if (l == NULL || l->busy < (hung[i] ? 1u : c->per_enclave_cap))
            continue;
        pthread_mutex_unlock(&c->lock);
        if (!hung[i])
            return CALLS_WAIT;
        enclave_mgr_unresponsive(c->em, ids[i], why, sizeof(why));
        snprintf(err, errcap,
                 "enclave %u is not answering (%s); no further request waits for it until it "
                 "answers again",
                 ids[i], why);
        return CALLS_RETRY;
    }
    for (size_t i = 0; i < n; i++) {
        struct coord_enclave_load *l = load_of(c, ids[i]);
        if (l != NULL)
            l->busy++;
    }
    pthread_mutex_unlock(&c->lock);
    return CALLS_OK;
}

void coord_release_enclaves(struct coord *c, const uint32_t *ids, size_t n)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < n; i++) {
        struct coord_enclave_load *l = load_of(c, ids[i]);
        if (l != NULL && l->busy > 0)
            l->busy--;
    }
    unpark_oldest_locked(c);
    pthread_mutex_unlock(&c->lock);
}

/* ---- helpers for the step files ---- */

void coord_count_step(struct coord *c, bool retried)
{
    pthread_mutex_lock(&c->lock);
    if (retried)
        c->stats.steps_retried++;
    else
        c->stats.steps_ok++;
    pthread_mutex_unlock(&c->lock);
}

void coord_count_end(struct coord *c, enum coord_kind kind, bool completed, bool expired)
{
    pthread_mutex_lock(&c->lock);
    if (completed)
        c->stats.sessions_completed[kind]++;
    else if (expired)
        c->stats.sessions_expired[kind]++;
    else
        c->stats.sessions_failed[kind]++;
    pthread_mutex_unlock(&c->lock);
}

uint64_t coord_backoff_at(const struct coord *c, int attempts)
{
    uint64_t delay = 200;
    for (int i = 0; i < attempts && delay < 10000; i++)
        delay *= 2;
    (void)c;
    return clock_now_ms() + (delay > 10000 ? 10000 : delay);
}

int64_t coord_wall_secs(uint64_t monotonic_ms)
{
    uint64_t now = clock_now_ms();
    uint64_t ahead = monotonic_ms > now ? monotonic_ms - now : 0;
    return (int64_t)((clock_wall_ms() + ahead) / 1000u);
}

enum calls_verdict coord_calls_verdict(struct coord *c, const struct fanout_call *calls, size_t n,
                                       char *err, size_t errcap)
{
    enum calls_verdict v = CALLS_OK;
    for (size_t i = 0; i < n && v != CALLS_FAIL; i++) {
        const struct fanout_call *call = &calls[i];
        if (call->rc == KM_OK)
            continue;
        /* An error reply carries its reason in reply.error; call->err is
         * empty then (it describes transport failures only). */
        if (call->rc == KM_ERR_REMOTE && strcmp(call->reply.error.code, "busy") == 0) {
            enclave_mgr_probe_soon(c->em, call->enclave_id);
            snprintf(err, errcap, "enclave %u busy: %s", call->enclave_id,
                     call->reply.error.message[0] ? call->reply.error.message : "no reason given");
            v = CALLS_RETRY;
            continue;
        }
        if (call->rc == KM_ERR_REMOTE) {
            snprintf(err, errcap, "enclave %u rejected %s: %s: %s", call->enclave_id, call->cmd,
                     call->reply.error.code, call->reply.error.message);
            v = CALLS_FAIL;
            continue;
        }
        char desc[900];
        enclave_mgr_describe_error(c->em, call->enclave_id, &call->err, desc, sizeof(desc));
        snprintf(err, errcap, "enclave %u unreachable: %s", call->enclave_id, desc);
        v = CALLS_RETRY;
    }
    return v;
}

int coord_blob_from_hex(struct proto_blob *out, const char *hex)
{
    memset(out, 0, sizeof(*out));
    if (hex == NULL || hex[0] == '\0')
        return KM_OK;
    size_t len = strlen(hex), n;
    uint8_t *p = xmalloc(len / 2 + 1);
    if (hex_decode(p, len / 2 + 1, &n, hex, len) != KM_OK) {
        free(p);
        return KM_ERR_INVALID;
    }
    out->p = p;
    out->len = n;
    return KM_OK;
}

int coord_bytes_from_hex(uint8_t *out, size_t len, const char *hex)
{
    if (hex == NULL)
        return KM_ERR_INVALID;
    return hex_decode_exact(out, len, hex, strlen(hex));
}

char *coord_hex(const uint8_t *p, size_t len)
{
    char *out = xmalloc(st_add(st_mult(len, 2), 1));
    return hex_encode(out, 2 * len + 1, p, len);
}

int coord_session_enclaves(const struct store_keygen *k, uint32_t *out, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < k->nparticipants; i++) {
        uint32_t id = k->participants[i].enclave_id;
        size_t j = 0;
        while (j < *n && out[j] < id)
            j++;
        if (j < *n && out[j] == id)
            continue;
        if (*n == PROTO_MAX_ENCLAVES)
            return KM_ERR_LIMIT;
        memmove(out + j + 1, out + j, (*n - j) * sizeof(*out));
        out[j] = id;
        (*n)++;
    }
    return KM_OK;
}

const char *coord_snapshot_key(const struct store_keygen *k, uint32_t eid)
{
    return store_keygen_enclave_key(k, eid);
}

json_t *coord_doc_load(const char *text)
{
    return text != NULL ? json_loads(text, 0, NULL) : NULL;
}

char *coord_doc_dump(const json_t *doc)
{
    return doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
}

/* Whether enclave eid is being rotated to key_hex. */
static bool rotating_to(struct coord *c, uint32_t eid, const char *key_hex)
{
    struct store_sealed_key next;
    bool yes = store_sealed_key_next(c->store, eid, &next) == KM_OK &&
               strcmp(next.public_key, key_hex) == 0;
    store_sealed_key_clear(&next);
    return yes;
}

/* Whether key_hex is enclave eid's current sealed key. */
static bool current_is(struct coord *c, uint32_t eid, const char *key_hex)
{
    struct store_sealed_key cur;
    bool yes = store_sealed_key_current(c->store, eid, &cur) == KM_OK &&
               strcmp(cur.public_key, key_hex) == 0;
    store_sealed_key_clear(&cur);
    return yes;
}

enum calls_verdict coord_check_keys(struct coord *c, const struct store_keygen *k,
                                    const uint32_t *enclaves, size_t n, char *err, size_t errcap)
{
    for (size_t i = 0; i < n; i++) {
        char now[ENCLAVE_PUBKEY_HEX_LEN + 1];
        const char *then = coord_snapshot_key(k, enclaves[i]);
        int r = enclave_mgr_public_key(c->em, enclaves[i], now);
        if (r == KM_ERR_CRYPTO) {
            snprintf(err, errcap, "enclave %u is not attested (see /health/detail)", enclaves[i]);
            return CALLS_RETRY;
        }
        if (r != KM_OK) {
            snprintf(err, errcap, "enclave %u has not been reached yet", enclaves[i]);
            return CALLS_RETRY;
        }
        if (then != NULL && strcmp(now, then) != 0 && rotating_to(c, enclaves[i], then))
            continue; /* re-encrypted already in a rotation not yet committed */
        if (then != NULL && strcmp(now, then) != 0 && current_is(c, enclaves[i], then)) {
            /* A rotation just committed; the health view catches up. */
            snprintf(err, errcap, "enclave %u's key was just rotated", enclaves[i]);
            return CALLS_RETRY;
        }
        if (then == NULL || strcmp(now, then) != 0) {
            snprintf(err, errcap,
                     "enclave %u restarted (its public key changed) and lost this session's "
                     "keys; run a new keygen",
                     enclaves[i]);
            return CALLS_FAIL;
        }
    }
    return CALLS_OK;
}

void coord_eid_key(char out[16], uint32_t enclave_id)
{
    snprintf(out, 16, "%u", enclave_id);
}
