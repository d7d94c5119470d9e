#include "transport/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "transport/frame.h"
#include "transport/sock.h"
#include "common/banned.h"

#define LOG_COMP        "pool"
#define POOL_TABLE_SIZE 1024u /* pending-call hash buckets (power of two) */

const uint64_t pool_latency_bounds_us[POOL_LATENCY_BUCKETS - 1] = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

enum call_state { CALL_PENDING, CALL_DONE };

struct pool_call {
    struct pool *pool;
    struct pool_conn *conn; /* while pending */
    uint64_t id;
    char cmd[ENV_CMD_MAX + 1];
    enum call_state state;
    int rc;
    struct km_error err;
    struct env_reply reply;
    struct deadline dl;
    uint64_t start_ns;
    struct buf frame; /* kept for a resend (pool_call_wait) */
    bool resendable;  /* sent alone on a reused, idle connection */
    bool resent;
    pthread_cond_t done;
    struct pool_call *hnext;         /* hash chain */
    struct pool_call *cprev, *cnext; /* the connection's pending list */
};

struct pool_conn {
    struct pool *pool;
    unsigned seq; /* for logs */
    int fd;
    pthread_t reader;
    pthread_mutex_t wlock;
    unsigned refs; /* list membership + writers in progress; under pool lock */
    unsigned in_flight;
    bool dead;
    struct km_error death;
    struct pool_call *pending;
    struct pool_conn *next;
};

struct pool {
    struct tp_addr addr;
    char desc[TP_ADDR_STR_MAX]; /* "CID 3:5000" / "tcp://h:p" */
    struct pool_config cfg;

    pthread_mutex_t lock;
    pthread_cond_t conn_changed; /* a connect finished or a reader exited */
    struct pool_conn *live;
    unsigned nlive;
    struct pool_conn *dead; /* readers exited, awaiting join */
    unsigned connecting;
    unsigned conn_seq;
    uint64_t connect_gen;
    int last_connect_rc;
    struct km_error last_connect_err;
    struct pool_call *table[POOL_TABLE_SIZE];
    atomic_uint_fast64_t next_id;
    struct pool_stats stats;
};

static void config_defaults(struct pool_config *c)
{
    if (c->max_frame == 0)
        c->max_frame = FRAME_MAX_DEFAULT;
    if (c->connection_load_threshold == 0)
        c->connection_load_threshold = 50;
    if (c->max_connections == 0)
        c->max_connections = 8;
    if (c->connect_timeout_ms == 0)
        c->connect_timeout_ms = 10000;
    if (c->request_timeout_ms == 0)
        c->request_timeout_ms = 30000;
    if (c->write_timeout_ms == 0)
        c->write_timeout_ms = 5000;
    if (c->max_attempts == 0)
        c->max_attempts = 3;
    if (c->initial_retry_delay_ms == 0)
        c->initial_retry_delay_ms = 100;
    if (c->max_retry_delay_ms == 0)
        c->max_retry_delay_ms = 5000;
    if (c->retry_backoff_multiplier <= 1.0)
        c->retry_backoff_multiplier = 2.0;
}

static void cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
}

/* Waits on cond until signalled or dl. Returns false on timeout. */
static bool cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *m, struct deadline dl)
{
    if (deadline_is_never(dl)) {
        pthread_cond_wait(cond, m);
        return true;
    }
    struct timespec ts = {(time_t)(dl.at_ms / 1000), (long)(dl.at_ms % 1000) * 1000000L};
    return pthread_cond_timedwait(cond, m, &ts) != ETIMEDOUT;
}

struct pool *pool_new(const struct tp_addr *addr, const struct pool_config *cfg)
{
    struct pool *p = xcalloc(1, sizeof(*p));
    p->addr = *addr;
    tp_addr_describe(p->desc, sizeof(p->desc), addr);
    if (cfg != NULL)
        p->cfg = *cfg;
    config_defaults(&p->cfg);
    pthread_mutex_init(&p->lock, NULL);
    cond_init_monotonic(&p->conn_changed);
    atomic_init(&p->next_id, 1);
    return p;
}

const struct tp_addr *pool_addr(const struct pool *p)
{
    return &p->addr;
}

/* --- pending-call table (under p->lock) --- */

static void table_insert(struct pool *p, struct pool_call *c)
{
    struct pool_call **b = &p->table[c->id & (POOL_TABLE_SIZE - 1)];
    c->hnext = *b;
    *b = c;
}

static struct pool_call *table_remove(struct pool *p, uint64_t id)
{
    for (struct pool_call **pp = &p->table[id & (POOL_TABLE_SIZE - 1)]; *pp; pp = &(*pp)->hnext) {
        if ((*pp)->id == id) {
            struct pool_call *c = *pp;
            *pp = c->hnext;
            c->hnext = NULL;
            return c;
        }
    }
    return NULL;
}

static void conn_pending_add(struct pool_conn *conn, struct pool_call *c)
{
    c->conn = conn;
    c->cprev = NULL;
    c->cnext = conn->pending;
    if (conn->pending)
        conn->pending->cprev = c;
    conn->pending = c;
    conn->in_flight++;
    conn->pool->stats.in_flight++;
}

static void conn_pending_remove(struct pool_call *c)
{
    struct pool_conn *conn = c->conn;
    if (c->cprev)
        c->cprev->cnext = c->cnext;
    else
        conn->pending = c->cnext;
    if (c->cnext)
        c->cnext->cprev = c->cprev;
    c->cprev = c->cnext = NULL;
    c->conn = NULL;
    conn->in_flight--;
    conn->pool->stats.in_flight--;
}

static void record_latency(struct pool *p, uint64_t us)
{
    unsigned b = 0;
    while (b < POOL_LATENCY_BUCKETS - 1 && us > pool_latency_bounds_us[b])
        b++;
    p->stats.latency_buckets[b]++;
    p->stats.latency_count++;
    p->stats.latency_sum_us += us;
}

/* Completes a pending call (under lock). */
static void call_finish(struct pool_call *c, int rc, const struct km_error *err)
{
    c->state = CALL_DONE;
    c->rc = rc;
    if (err != NULL)
        c->err = *err;
    pthread_cond_signal(&c->done);
}

/* --- connections --- */

static void conn_unref_locked(struct pool_conn *conn)
{
    if (--conn->refs > 0)
        return;
    close(conn->fd);
    pthread_mutex_destroy(&conn->wlock);
    free(conn);
}

/* The reader thread is dying: fail everything pending on it, move it to
 * the dead list. Under lock. */
static void conn_die_locked(struct pool_conn *conn, const struct km_error *why)
{
    struct pool *p = conn->pool;
    if (!conn->dead) {
        conn->dead = true;
        conn->death = *why;
    }
    /* What the pending requests see: a transport failure they may retry,
     * unless the stream itself was corrupt or oversized. */
    int code = conn->death.code == KM_ERR_TOO_LARGE || conn->death.code == KM_ERR_INVALID
                   ? conn->death.code
                   : KM_ERR_CLOSED;
    unsigned failed = 0;
    while (conn->pending != NULL) {
        struct pool_call *c = conn->pending;
        conn_pending_remove(c);
        (void)table_remove(p, c->id);
        struct km_error e = conn->death;
        e.code = code;
        p->stats.failures++;
        call_finish(c, code, &e);
        failed++;
    }
    for (struct pool_conn **pp = &p->live; *pp; pp = &(*pp)->next) {
        if (*pp == conn) {
            *pp = conn->next;
            break;
        }
    }
    p->nlive--;
    p->stats.connections_open--;
    p->stats.connections_closed++;
    conn->next = p->dead;
    p->dead = conn;
    pthread_cond_broadcast(&p->conn_changed);
    if (failed > 0)
        log_warn(LOG_COMP, "connection %u to %s lost with %u request(s) in flight: %s", conn->seq,
                 p->desc, failed, conn->death.msg);
    else
        log_debug(LOG_COMP, "connection %u to %s closed: %s", conn->seq, p->desc, conn->death.msg);
}

/* Routes one reply frame to its waiting call. */
static int conn_on_reply(struct pool_conn *conn, const uint8_t *payload, size_t len,
                         struct km_error *err)
{
    struct pool *p = conn->pool;
    struct env_reply reply;
    if (env_reply_decode(&reply, payload, len, err) != KM_OK) {
        km_error_prefix(err, "Invalid reply from enclave");
        return KM_ERR_INVALID;
    }
    pthread_mutex_lock(&p->lock);
    struct pool_call *c = table_remove(p, reply.id);
    if (c == NULL) {
        pthread_mutex_unlock(&p->lock);
        /* A reply after its request timed out (or to id 0: a frame the
         * enclave could not parse). Nobody is waiting. */
        log_debug(LOG_COMP, "reply for unknown request %llu from %s dropped",
                  (unsigned long long)reply.id, p->desc);
        env_reply_clear(&reply);
        return KM_OK;
    }
    conn_pending_remove(c);
    record_latency(p, (clock_now_ns() - c->start_ns) / 1000u);
    if (reply.ok)
        p->stats.replies_ok++;
    else
        p->stats.replies_error++;
    c->reply = reply;
    call_finish(c, KM_OK, NULL);
    pthread_mutex_unlock(&p->lock);
    return KM_OK;
}

static void *conn_reader_main(void *arg)
{
    struct pool_conn *conn = arg;
    struct pool *p = conn->pool;
    struct tp_reader rd;
    struct km_error why;
    km_error_clear(&why);
    tp_reader_init(&rd, p->cfg.max_frame);
    for (;;) {
        const uint8_t *payload;
        size_t len;
        /* Idle forever between replies; a started reply frame must finish
         * within the request timeout. */
        int r = tp_reader_next(&rd, conn->fd, deadline_never(), p->cfg.request_timeout_ms, &payload,
                               &len, &why);
        if (r == KM_OK)
            r = conn_on_reply(conn, payload, len, &why);
        if (r != KM_OK)
            break;
    }
    tp_reader_release(&rd);
    pthread_mutex_lock(&p->lock);
    conn_die_locked(conn, &why);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Joins readers that have exited and drops their list reference. */
static void reap_dead(struct pool *p)
{
    pthread_mutex_lock(&p->lock);
    struct pool_conn *dead = p->dead;
    p->dead = NULL;
    pthread_mutex_unlock(&p->lock);
    while (dead != NULL) {
        struct pool_conn *next = dead->next;
        pthread_join(dead->reader, NULL);
        pthread_mutex_lock(&p->lock);
        conn_unref_locked(dead);
        pthread_mutex_unlock(&p->lock);
        dead = next;
    }
}

/* Connects and starts a reader. Called without the lock. */
static int conn_open(struct pool *p, struct pool_conn **out, struct deadline dl,
                     struct km_error *err)
{
    struct deadline cdl = deadline_min(dl, deadline_in_ms(p->cfg.connect_timeout_ms));
    int fd;
    int r = tp_connect(&fd, &p->addr, cdl, err);
    if (r != KM_OK)
        return r;
    struct pool_conn *conn = xcalloc(1, sizeof(*conn));
    conn->pool = p;
    conn->fd = fd;
    conn->refs = 1;
    pthread_mutex_init(&conn->wlock, NULL);
    *out = conn;
    return KM_OK;
}

/* Links a fresh connection into the pool and starts its reader. Under
 * lock. */
static int conn_start_locked(struct pool *p, struct pool_conn *conn, struct km_error *err)
{
    conn->seq = ++p->conn_seq;
    int pr = pthread_create(&conn->reader, NULL, conn_reader_main, conn);
    if (pr != 0) {
        conn_unref_locked(conn);
        return km_error_set(err, KM_ERR_IO, pr, "cannot start reader thread: %s", strerror(pr));
    }
    conn->next = p->live;
    p->live = conn;
    p->nlive++;
    p->stats.connections_open++;
    p->stats.connections_opened++;
    return KM_OK;
}

static struct pool_conn *least_loaded_locked(struct pool *p)
{
    struct pool_conn *best = NULL;
    for (struct pool_conn *c = p->live; c != NULL; c = c->next) {
        if (!c->dead && (best == NULL || c->in_flight < best->in_flight))
            best = c;
    }
    return best;
}

/*
 * Picks the connection for one request (under lock, may drop it while
 * connecting): the least loaded one under the threshold, else a new one if
 * allowed, else the least loaded one anyway. Waits for a connect started by
 * another thread rather than opening a duplicate.
 */
static struct pool_conn *acquire_locked(struct pool *p, struct deadline dl, bool *fresh, int *rc,
                                        struct km_error *err)
{
    *rc = KM_OK;
    *fresh = false;
    for (;;) {
        struct pool_conn *best = least_loaded_locked(p);
        if (best != NULL && best->in_flight < p->cfg.connection_load_threshold)
            return best;
        if (p->nlive + p->connecting < p->cfg.max_connections &&
            (best != NULL || p->connecting == 0)) {
            p->connecting++;
            pthread_mutex_unlock(&p->lock);
            struct pool_conn *conn = NULL;
            struct km_error cerr;
            km_error_clear(&cerr);
            int r = conn_open(p, &conn, dl, &cerr);
            pthread_mutex_lock(&p->lock);
            p->connecting--;
            p->connect_gen++;
            if (r == KM_OK)
                r = conn_start_locked(p, conn, &cerr);
            p->last_connect_rc = r;
            p->last_connect_err = cerr;
            pthread_cond_broadcast(&p->conn_changed);
            if (r == KM_OK) {
                log_debug(LOG_COMP, "connection %u to %s open", conn->seq, p->desc);
                *fresh = true;
                return conn;
            }
            p->stats.connect_failures++;
            best = least_loaded_locked(p);
            if (best != NULL)
                return best; /* keep serving on what we have */
            *err = cerr;
            *rc = r;
            return NULL;
        }
        if (best != NULL)
            return best;
        /* No connection yet and another thread is connecting: wait for it. */
        uint64_t gen = p->connect_gen;
        while (p->connect_gen == gen) {
            if (!cond_wait_until(&p->conn_changed, &p->lock, dl) && p->connect_gen == gen) {
                *rc = km_error_set(err, KM_ERR_TIMEOUT, ETIMEDOUT,
                                   "Timed out waiting for a connection");
                return NULL;
            }
        }
        if (p->last_connect_rc != KM_OK && p->nlive == 0) {
            *err = p->last_connect_err;
            *rc = p->last_connect_rc;
            return NULL;
        }
    }
}

static void call_free(struct pool_call *c)
{
    buf_release(&c->frame);
    pthread_cond_destroy(&c->done);
    free(c);
}

/* Puts c (its frame encoded) on a connection and writes it. Returns KM_OK
 * once c is pending (a failed write fails it through the connection's
 * death), else the reason no connection could be had. */
static int call_send(struct pool *p, struct pool_call *c, struct km_error *err)
{
    int r;
    bool fresh;
    pthread_mutex_lock(&p->lock);
    struct pool_conn *conn = acquire_locked(p, c->dl, &fresh, &r, err);
    if (conn == NULL) {
        pthread_mutex_unlock(&p->lock);
        return r;
    }
    /* Alone on a connection that sat idle: the enclave may have closed it
     * (idle timeout, or room for a new connection) just as we wrote. */
    c->resendable = !fresh && conn->in_flight == 0;
    conn->refs++; /* ours while writing */
    c->state = CALL_PENDING;
    table_insert(p, c);
    conn_pending_add(conn, c);
    p->stats.requests++;
    c->start_ns = clock_now_ns();
    pthread_mutex_unlock(&p->lock);

    struct km_error werr;
    pthread_mutex_lock(&conn->wlock);
    r = conn->dead
            ? KM_ERR_CLOSED
            : tp_write_all(conn->fd, buf_peek(&c->frame), buf_len(&c->frame),
                           deadline_min(c->dl, deadline_in_ms(p->cfg.write_timeout_ms)), &werr);
    pthread_mutex_unlock(&conn->wlock);

    pthread_mutex_lock(&p->lock);
    if (r != KM_OK && !conn->dead) {
        /* The stream may hold half a frame: kill it. Its reader fails every
         * pending request, this one included, with our reason. */
        conn->dead = true;
        conn->death = werr;
        shutdown(conn->fd, SHUT_RDWR);
    }
    conn_unref_locked(conn);
    pthread_mutex_unlock(&p->lock);
    return KM_OK;
}

/* Starts a call whose arguments are args, or the text args_json[0..len)
 * when args_json is not NULL. */
static int call_start(struct pool *p, struct pool_call **out, const char *cmd,
                      const struct uuid *command_id, const json_t *args, const uint8_t *args_json,
                      size_t len, struct deadline dl, struct km_error *err)
{
    struct uuid fresh;
    *out = NULL;
    if (command_id == NULL) {
        if (uuid_v7_new(&fresh) != KM_OK)
            return km_error_set(err, KM_ERR_IO, errno, "no randomness for a command id");
        command_id = &fresh;
    }
    reap_dead(p);

    struct pool_call *c = xcalloc(1, sizeof(*c));
    c->pool = p;
    c->id = atomic_fetch_add(&p->next_id, 1);
    c->dl = dl;
    c->state = CALL_PENDING;
    snprintf(c->cmd, sizeof(c->cmd), "%s", cmd);
    cond_init_monotonic(&c->done);

    /* Encode before taking any lock: the frame is built once, in place. */
    buf_init(&c->frame, p->cfg.max_frame + FRAME_HEADER_LEN);
    int r = frame_begin(&c->frame);
    if (r == KM_OK)
        r = args_json != NULL
                ? env_request_encode_text(&c->frame, c->id, command_id, cmd, args_json, len)
                : env_request_encode(&c->frame, c->id, command_id, cmd, args);
    if (r == KM_OK)
        r = frame_finish(&c->frame, 0, p->cfg.max_frame);
    if (r != KM_OK) {
        call_free(c);
        if (r == KM_ERR_TOO_LARGE)
            return km_error_set(err, r, 0, "Message too large before sending (max %zu bytes)",
                                p->cfg.max_frame);
        return km_error_set(err, r, 0, "cannot encode request '%.64s': %s", cmd, km_strerror(r));
    }
    r = call_send(p, c, err);
    if (r != KM_OK) {
        call_free(c);
        return r;
    }
    *out = c;
    return KM_OK;
}

int pool_call_start(struct pool *p, struct pool_call **out, const char *cmd,
                    const struct uuid *command_id, const json_t *args, struct deadline dl,
                    struct km_error *err)
{
    return call_start(p, out, cmd, command_id, args, NULL, 0, dl, err);
}

int pool_call_start_text(struct pool *p, struct pool_call **out, const char *cmd,
                         const struct uuid *command_id, const uint8_t *args_json, size_t len,
                         struct deadline dl, struct km_error *err)
{
    return call_start(p, out, cmd, command_id, NULL, args_json, len, dl, err);
}

/* Whether a failed call gets its one transparent resend: it went alone on
 * a reused idle connection that then closed before any reply (the
 * enclave's idle timeout or connection limit racing our write). The same
 * frame, so the same command_id: the enclave de-duplicates it. Under lock. */
static bool call_wants_resend(const struct pool_call *c)
{
    return c->rc == KM_ERR_CLOSED && c->resendable && !c->resent && !deadline_expired(c->dl);
}

int pool_call_wait(struct pool_call *c, struct env_reply *reply, struct km_error *err)
{
    struct pool *p = c->pool;
    memset(reply, 0, sizeof(*reply));
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (c->state == CALL_PENDING) {
            if (!cond_wait_until(&c->done, &p->lock, c->dl) && c->state == CALL_PENDING) {
                /* Give up: a late reply will find no one and be dropped. */
                (void)table_remove(p, c->id);
                conn_pending_remove(c);
                p->stats.timeouts++;
                p->stats.failures++;
                km_error_set(&c->err, KM_ERR_TIMEOUT, ETIMEDOUT,
                             "Request %llu (%s) timed out: deadline has elapsed",
                             (unsigned long long)c->id, c->cmd);
                c->rc = KM_ERR_TIMEOUT;
                c->state = CALL_DONE;
            }
        }
        if (!call_wants_resend(c))
            break;
        c->resent = true;
        p->stats.retries++;
        log_debug(LOG_COMP,
                  "request %llu (%s) to %s: idle connection closed under it (%s); "
                  "resending on a fresh connection",
                  (unsigned long long)c->id, c->cmd, p->desc, c->err.msg);
        pthread_mutex_unlock(&p->lock);
        reap_dead(p);
        struct km_error serr;
        int r = call_send(p, c, &serr);
        pthread_mutex_lock(&p->lock);
        if (r != KM_OK) {
            c->rc = r;
            c->err = serr;
            c->state = CALL_DONE;
        }
    }
    pthread_mutex_unlock(&p->lock);

    int rc = c->rc;
    if (rc == KM_OK)
        *reply = c->reply;
    else if (err != NULL)
        *err = c->err;
    call_free(c);
    return rc;
}

bool pool_error_is_retryable(int code, const struct km_error *err, const struct env_reply *reply)
{
    switch (code) {
    case KM_OK:
        return reply != NULL && !reply->ok && reply->error.retryable;
    case KM_ERR_CLOSED:
    case KM_ERR_RESOLVE: /* a Kubernetes service may not be resolvable yet */
        return true;
    case KM_ERR_CONNECT:
        /* Not listening yet / restarting: worth another try. ENODEV
         * (no such CID) and EAFNOSUPPORT are configuration errors. */
        return err->sys_errno == ECONNREFUSED || err->sys_errno == ECONNRESET ||
               err->sys_errno == ECONNABORTED || err->sys_errno == EPIPE ||
               err->sys_errno == ETIMEDOUT || err->sys_errno == ENOENT;
    default:
        /* KM_ERR_TIMEOUT is the request's own deadline: final. */
        return false;
    }
}

static uint64_t backoff_ms(const struct pool_config *cfg, unsigned attempt)
{
    double d = cfg->initial_retry_delay_ms;
    for (unsigned i = 1; i < attempt && d < cfg->max_retry_delay_ms; i++)
        d *= cfg->retry_backoff_multiplier;
    return d > cfg->max_retry_delay_ms ? cfg->max_retry_delay_ms : (uint64_t)d;
}

int pool_request(struct pool *p, struct env_reply *reply, const char *cmd,
                 const struct uuid *command_id, const json_t *args, uint32_t timeout_ms,
                 struct km_error *err)
{
    struct uuid cid;
    struct km_error e;
    memset(reply, 0, sizeof(*reply));
    if (command_id == NULL) {
        if (uuid_v7_new(&cid) != KM_OK)
            return km_error_set(err, KM_ERR_IO, errno, "no randomness for a command id");
    } else {
        cid = *command_id;
    }
    struct deadline dl = deadline_in_ms(timeout_ms ? timeout_ms : p->cfg.request_timeout_ms);

    int rc = KM_ERR_INTERNAL;
    for (unsigned attempt = 1;; attempt++) {
        struct pool_call *c;
        km_error_clear(&e);
        env_reply_clear(reply);
        rc = pool_call_start(p, &c, cmd, &cid, args, dl, &e);
        if (rc == KM_OK)
            rc = pool_call_wait(c, reply, &e);
        bool retry = pool_error_is_retryable(rc, &e, reply) && attempt < p->cfg.max_attempts;
        uint64_t delay = backoff_ms(&p->cfg, attempt);
        if (!retry || (uint64_t)deadline_remaining_ms(dl) <= delay)
            break;
        log_debug(LOG_COMP, "%s to %s failed (attempt %u/%u), retrying in %llu ms: %s", cmd,
                  p->desc, attempt, p->cfg.max_attempts, (unsigned long long)delay,
                  rc == KM_OK ? reply->error.message : e.msg);
        pthread_mutex_lock(&p->lock);
        p->stats.retries++;
        pthread_mutex_unlock(&p->lock);
        clock_sleep_ms(delay);
    }
    if (rc == KM_OK && !reply->ok)
        return km_error_set(err, KM_ERR_REMOTE, 0, "Command failed to %s: Enclave error (%s): %s",
                            p->desc, reply->error.code, reply->error.message);
    if (rc != KM_OK) {
        env_reply_clear(reply);
        if (err != NULL) {
            *err = e;
            km_error_prefix(err, "Command failed to %s: Enclave communication error", p->desc);
        }
    }
    return rc;
}

int pool_ping(struct pool *p, uint64_t *rtt_us, uint32_t timeout_ms, struct km_error *err)
{
    struct env_reply reply;
    uint64_t t0 = clock_now_ns();
    int rc = pool_request(p, &reply, "ping", NULL, NULL, timeout_ms, err);
    if (rtt_us != NULL)
        *rtt_us = (clock_now_ns() - t0) / 1000u;
    env_reply_clear(&reply);
    return rc;
}

void pool_stats(struct pool *p, struct pool_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->stats;
    pthread_mutex_unlock(&p->lock);
}

void pool_free(struct pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    if (p->stats.in_flight > 0 || p->connecting > 0)
        KM_BUG("pool_free with %u request(s) in flight", p->stats.in_flight);
    for (struct pool_conn *c = p->live; c != NULL; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    while (p->nlive > 0)
        pthread_cond_wait(&p->conn_changed, &p->lock);
    pthread_mutex_unlock(&p->lock);
    reap_dead(p);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->conn_changed);
    free(p);
}
