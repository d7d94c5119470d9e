#include "transport/server.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/xmalloc.h"
#include "transport/frame.h"
#include "common/banned.h"

#define LOG_COMP "server"

struct srv_conn {
    struct tp_server *srv;
    int fd;
    char peer[TP_PEER_STR_MAX];
    pthread_mutex_t wlock;               /* one frame at a time on the wire */
    unsigned refs;                       /* reader + queued/running jobs; under srv->lock */
    bool evicted;                        /* closed to make room; under srv->lock */
    struct tp_reader rd;                 /* the reader thread's; others read tp_reader_buffered */
    atomic_uint_fast64_t last_active_ms; /* last frame in or reply out */
    struct srv_conn *prev, *next;
};

struct srv_job {
    struct srv_conn *conn;
    struct env_request req;
};

struct tp_server {
    struct tp_server_config cfg;
    tp_handler_fn handler;
    void *ud;
    int listen_fd;
    uint32_t port;
    int wake[2];
    atomic_bool stopping;

    pthread_mutex_t lock;
    pthread_cond_t job_ready;    /* a job was queued, or draining */
    pthread_cond_t readers_done; /* a reader exited */
    struct srv_job *queue;       /* ring of cfg.queue_capacity */
    unsigned qhead, qlen;
    bool draining;
    struct srv_conn *conns;
    unsigned nreaders;
    unsigned nevicted; /* evicted connections whose reader has not exited yet */
    struct tp_read_budget budget;
    pthread_t *workers;
    unsigned nworkers;
    struct tp_server_stats stats;
};

static void config_defaults(struct tp_server_config *c)
{
    if (c->max_frame == 0)
        c->max_frame = FRAME_MAX_DEFAULT;
    if (c->max_connections == 0)
        c->max_connections = TP_SERVER_MAX_CONNECTIONS_DEFAULT;
    if (c->workers == 0)
        c->workers = 8;
    if (c->queue_capacity == 0)
        c->queue_capacity = 1000;
    if (c->idle_timeout_ms == 0)
        c->idle_timeout_ms = TP_SERVER_IDLE_TIMEOUT_DEFAULT_MS;
    if (c->frame_timeout_ms == 0)
        c->frame_timeout_ms = TP_SERVER_FRAME_TIMEOUT_DEFAULT_MS;
    if (c->max_buffered_bytes == 0)
        c->max_buffered_bytes = TP_SERVER_MAX_BUFFERED_DEFAULT;
    if (c->write_timeout_ms == 0)
        c->write_timeout_ms = 5000;
}

struct tp_server *tp_server_new(const struct tp_server_config *cfg, tp_handler_fn handler, void *ud)
{
    struct tp_server *s = xcalloc(1, sizeof(*s));
    if (cfg != NULL)
        s->cfg = *cfg;
    config_defaults(&s->cfg);
    s->handler = handler;
    s->ud = ud;
    s->listen_fd = -1;
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        KM_BUG("pipe2 failed: %s", strerror(errno));
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->job_ready, NULL);
    pthread_cond_init(&s->readers_done, NULL);
    s->queue = XALLOC_ARRAY(struct srv_job, s->cfg.queue_capacity);
    tp_read_budget_init(&s->budget, s->cfg.max_buffered_bytes);
    return s;
}

int tp_server_listen(struct tp_server *s, const struct tp_addr *addr, struct km_error *err)
{
    if (s->listen_fd >= 0)
        KM_BUG("tp_server_listen called twice");
    int r = tp_listen(&s->listen_fd, addr, 128, err);
    if (r != KM_OK)
        return r;
    if (addr->kind == TP_KIND_UNIX || tp_listen_port(s->listen_fd, &s->port) != KM_OK)
        s->port = addr->port;
    return KM_OK;
}

uint32_t tp_server_port(const struct tp_server *s)
{
    return s->port;
}

void tp_server_stop(struct tp_server *s)
{
    atomic_store(&s->stopping, true);
    ssize_t w = write(s->wake[1], "x", 1);
    (void)w; /* a full pipe already holds a wake-up */
}

void tp_server_stats(struct tp_server *s, struct tp_server_stats *out)
{
    pthread_mutex_lock(&s->lock);
    *out = s->stats;
    pthread_mutex_unlock(&s->lock);
    out->buffered_bytes = atomic_load(&s->budget.used);
    out->buffered_bytes_peak = atomic_load(&s->budget.peak);
}

/* Drops one reference; the last one closes the socket. Call with lock. */
static void conn_unref_locked(struct srv_conn *c)
{
    if (--c->refs > 0)
        return;
    close(c->fd);
    pthread_mutex_destroy(&c->wlock);
    free(c);
}

/* Writes one prepared frame. A failed write kills the connection: the
 * stream may hold half a frame. */
static void conn_send(struct srv_conn *c, struct buf *frame)
{
    struct km_error err;
    pthread_mutex_lock(&c->wlock);
    int r = tp_write_all(c->fd, buf_peek(frame), buf_len(frame),
                         deadline_in_ms(c->srv->cfg.write_timeout_ms), &err);
    pthread_mutex_unlock(&c->wlock);
    atomic_store(&c->last_active_ms, clock_now_ms());
    if (r != KM_OK) {
        log_debug(LOG_COMP, "reply to %s lost: %s", c->peer, err.msg);
        shutdown(c->fd, SHUT_RDWR);
    }
}

/* Frames an error reply into out (reset first). */
static void build_error(struct buf *out, uint64_t id, const char *code, const char *msg,
                        bool retryable)
{
    buf_reset(out);
    if (frame_begin(out) != KM_OK ||
        env_reply_encode_error(out, id, code, msg, retryable) != KM_OK ||
        frame_finish(out, 0, SIZE_MAX) != KM_OK)
        KM_BUG("cannot encode an error reply");
}

static void send_error(struct srv_conn *c, struct buf *scratch, uint64_t id, const char *code,
                       const char *msg, bool retryable)
{
    build_error(scratch, id, code, msg, retryable);
    conn_send(c, scratch);
    pthread_mutex_lock(&c->srv->lock);
    c->srv->stats.error_replies++;
    pthread_mutex_unlock(&c->srv->lock);
}

/* Runs the handler and frames exactly one reply for it. */
static void run_job(struct tp_server *s, struct srv_job *job, struct buf *out)
{
    struct tp_call call = {
        .id = job->req.id,
        .command_id = job->req.command_id,
        .cmd = job->req.cmd,
        .args = job->req.args,
        .peer = job->conn->peer,
    };
    int rc = s->handler(s->ud, &call);
    if (rc == KM_OK) {
        buf_reset(out);
        int er = frame_begin(out);
        if (er == KM_OK)
            er = env_reply_encode_ok(out, call.id, call.result);
        if (er == KM_OK)
            er = frame_finish(out, 0, s->cfg.max_frame);
        if (er != KM_OK)
            build_error(out, call.id, "too_large", "reply does not fit in a frame", false);
    } else {
        const char *code = call.error.code[0] ? call.error.code : km_errname(rc);
        const char *msg = call.error.code[0] ? call.error.message : km_strerror(rc);
        if (!env_is_snake_name(code, ENV_ERROR_CODE_MAX))
            code = "internal";
        build_error(out, call.id, code, msg, call.error.code[0] ? call.error.retryable : false);
    }
    json_decref(call.result);
    conn_send(job->conn, out);

    pthread_mutex_lock(&s->lock);
    if (rc != KM_OK)
        s->stats.error_replies++;
    conn_unref_locked(job->conn);
    pthread_mutex_unlock(&s->lock);
    env_request_clear(&job->req);
}

static void *worker_main(void *arg)
{
    struct tp_server *s = arg;
    struct buf out;
    buf_init(&out, s->cfg.max_frame + FRAME_HEADER_LEN);
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (s->qlen == 0 && !s->draining)
            pthread_cond_wait(&s->job_ready, &s->lock);
        if (s->qlen == 0) {
            pthread_mutex_unlock(&s->lock);
            break;
        }
        struct srv_job job = s->queue[s->qhead];
        s->qhead = (s->qhead + 1) % s->cfg.queue_capacity;
        s->qlen--;
        pthread_mutex_unlock(&s->lock);
        run_job(s, &job, &out);
    }
    buf_release(&out);
    return NULL;
}

/* Queues a decoded request; on a full queue the caller answers "busy". */
static bool enqueue(struct tp_server *s, struct srv_conn *c, struct env_request *req)
{
    pthread_mutex_lock(&s->lock);
    s->stats.requests++;
    if (s->qlen == s->cfg.queue_capacity) {
        pthread_mutex_unlock(&s->lock);
        return false;
    }
    unsigned slot = (s->qhead + s->qlen) % s->cfg.queue_capacity;
    s->queue[slot].conn = c;
    s->queue[slot].req = *req;
    memset(req, 0, sizeof(*req)); /* ownership moved to the queue */
    s->qlen++;
    c->refs++;
    pthread_cond_signal(&s->job_ready);
    pthread_mutex_unlock(&s->lock);
    return true;
}

/* Handles one frame from the peer: decode, then queue or answer. */
static void on_frame(struct srv_conn *c, struct buf *scratch, const uint8_t *p, size_t n)
{
    struct tp_server *s = c->srv;
    struct env_request req;
    struct km_error err;
    bool has_id;
    if (env_request_decode(&req, &has_id, p, n, &err) != KM_OK) {
        log_debug(LOG_COMP, "invalid request from %s: %s", c->peer, err.msg);
        pthread_mutex_lock(&s->lock);
        s->stats.requests++;
        pthread_mutex_unlock(&s->lock);
        send_error(c, scratch, has_id ? req.id : 0, "invalid_request", err.msg, false);
        return;
    }
    uint64_t id = req.id;
    if (!enqueue(s, c, &req)) {
        env_request_clear(&req);
        char msg[96];
        snprintf(msg, sizeof(msg), "enclave request queue is full (capacity %u)",
                 s->cfg.queue_capacity);
        send_error(c, scratch, id, "busy", msg, true);
    }
}

/* True while a request of c is queued or running (its reply is due). */
static bool conn_has_jobs(struct srv_conn *c)
{
    pthread_mutex_lock(&c->srv->lock);
    bool busy = c->refs > 1;
    pthread_mutex_unlock(&c->srv->lock);
    return busy;
}

/* Why the reader stopped: counted, and logged at a level that matches. */
static void reader_ended(struct srv_conn *c, struct buf *scratch, int r, const struct km_error *err)
{
    struct tp_server *s = c->srv;
    uint64_t *counter = NULL;
    switch (r) {
    case KM_ERR_TOO_LARGE:
        log_warn(LOG_COMP, "%s from %s; closing the connection", err->msg, c->peer);
        send_error(c, scratch, 0, "too_large", err->msg, false);
        break;
    case KM_ERR_LIMIT:
        log_warn(LOG_COMP, "closing the connection from %s: %s", c->peer, err->msg);
        counter = &s->stats.connections_over_budget;
        break;
    case KM_ERR_TIMEOUT:
        if (tp_reader_buffered(&c->rd) == 0) {
            log_debug(LOG_COMP, "closing the connection from %s: idle for %u ms", c->peer,
                      s->cfg.idle_timeout_ms);
            counter = &s->stats.connections_idle_closed;
        } else {
            log_warn(LOG_COMP, "closing the connection from %s: %s", c->peer, err->msg);
            counter = &s->stats.connections_frame_timeouts;
        }
        break;
    case KM_ERR_CLOSED:
        break;
    default:
        log_debug(LOG_COMP, "connection from %s ends: %s", c->peer, err->msg);
        break;
    }
    if (counter != NULL) {
        pthread_mutex_lock(&s->lock);
        (*counter)++;
        pthread_mutex_unlock(&s->lock);
    }
}

static void *reader_main(void *arg)
{
    struct srv_conn *c = arg;
    struct tp_server *s = c->srv;
    struct buf scratch;
    buf_init(&scratch, 64 * 1024);

    for (;;) {
        const uint8_t *p;
        size_t n;
        struct km_error err;
        struct deadline idle = s->cfg.idle_timeout_ms == TP_SERVER_NO_TIMEOUT
                                   ? deadline_never()
                                   : deadline_in_ms(s->cfg.idle_timeout_ms);
        int r = tp_reader_next(&c->rd, c->fd, idle, s->cfg.frame_timeout_ms, &p, &n, &err);
        if (r == KM_OK) {
            atomic_store(&c->last_active_ms, clock_now_ms());
            on_frame(c, &scratch, p, n);
            continue;
        }
        /* Quiet while its requests run is not idle: their replies are due. */
        if (r == KM_ERR_TIMEOUT && tp_reader_buffered(&c->rd) == 0 && conn_has_jobs(c))
            continue;
        reader_ended(c, &scratch, r, &err);
        break;
    }
    tp_reader_release(&c->rd);
    buf_release(&scratch);
    /* Stop further writes only once pending jobs are done: their replies
     * may still reach a peer that merely half-closed. */
    shutdown(c->fd, SHUT_RD);

    pthread_mutex_lock(&s->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->stats.connections_active--;
    if (c->evicted)
        s->nevicted--;
    s->nreaders--;
    conn_unref_locked(c);
    pthread_cond_broadcast(&s->readers_done);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* The connection idle the longest: no partial frame, no request queued or
 * running. NULL if every connection is busy. Under lock. */
static struct srv_conn *longest_idle_locked(struct tp_server *s)
{
    struct srv_conn *best = NULL;
    uint64_t best_at = 0;
    for (struct srv_conn *c = s->conns; c != NULL; c = c->next) {
        if (c->evicted || c->refs > 1 || tp_reader_buffered(&c->rd) > 0)
            continue;
        uint64_t at = atomic_load(&c->last_active_ms);
        if (best == NULL || at < best_at) {
            best = c;
            best_at = at;
        }
    }
    return best;
}

/* At max_connections: closes the longest idle connection to make room for
 * one from peer. Returns false (and logs) when every connection is busy.
 * Under lock. */
static bool make_room_locked(struct tp_server *s, const char *peer)
{
    struct srv_conn *victim = longest_idle_locked(s);
    if (victim == NULL) {
        s->stats.connections_rejected++;
        log_warn(LOG_COMP,
                 "connection limit (%u) reached and no connection is idle, rejecting connection "
                 "from %s",
                 s->cfg.max_connections, peer);
        return false;
    }
    victim->evicted = true;
    s->nevicted++;
    s->stats.connections_evicted++;
    /* Its reader sees EOF and exits; the peer sees the connection close. */
    shutdown(victim->fd, SHUT_RDWR);
    uint64_t idle_ms = clock_now_ms() - atomic_load(&victim->last_active_ms);
    log_warn(LOG_COMP,
             "connection limit (%u) reached: closing the connection from %s (idle for %llu ms) "
             "to admit %s",
             s->cfg.max_connections, victim->peer, (unsigned long long)idle_ms, peer);
    return true;
}

static void accept_one(struct tp_server *s)
{
    char peer[TP_PEER_STR_MAX] = "";
    struct km_error err;
    int fd;
    int r = tp_accept(s->listen_fd, &fd, peer, sizeof(peer), &err);
    if (r == KM_ERR_INCOMPLETE)
        return;
    if (r != KM_OK) {
        log_warn(LOG_COMP, "%s", err.msg);
        clock_sleep_ms(100); /* EMFILE and friends: back off, then retry */
        return;
    }
    pthread_mutex_lock(&s->lock);
    /* Evicted connections are on their way out: they do not count. */
    if (s->stats.connections_active - s->nevicted >= s->cfg.max_connections &&
        !make_room_locked(s, peer)) {
        pthread_mutex_unlock(&s->lock);
        close(fd);
        return;
    }
    struct srv_conn *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->fd = fd;
    memcpy(c->peer, peer, sizeof(c->peer));
    pthread_mutex_init(&c->wlock, NULL);
    tp_reader_init(&c->rd, s->cfg.max_frame);
    tp_reader_set_budget(&c->rd, &s->budget);
    atomic_init(&c->last_active_ms, clock_now_ms());
    c->refs = 1; /* the reader's */
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nreaders++;
    s->stats.connections_active++;
    s->stats.connections_accepted++;

    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int pr = pthread_create(&tid, &attr, reader_main, c);
    pthread_attr_destroy(&attr);
    if (pr != 0) {
        s->conns = c->next;
        if (c->next)
            c->next->prev = NULL;
        s->nreaders--;
        s->stats.connections_active--;
        tp_reader_release(&c->rd);
        conn_unref_locked(c);
        log_warn(LOG_COMP, "cannot start a reader for %s: %s", peer, strerror(pr));
    }
    pthread_mutex_unlock(&s->lock);
    if (pr == 0)
        log_debug(LOG_COMP, "connection from %s", peer);
}

/* Stop accepting, stop reading, finish queued work, close everything. */
static void drain(struct tp_server *s)
{
    close(s->listen_fd);
    s->listen_fd = -1;
    pthread_mutex_lock(&s->lock);
    for (struct srv_conn *c = s->conns; c != NULL; c = c->next)
        shutdown(c->fd, SHUT_RD);
    while (s->nreaders > 0)
        pthread_cond_wait(&s->readers_done, &s->lock);
    s->draining = true;
    pthread_cond_broadcast(&s->job_ready);
    pthread_mutex_unlock(&s->lock);
    for (unsigned i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    free(s->workers);
    s->workers = NULL;
    s->nworkers = 0;
}

int tp_server_run(struct tp_server *s)
{
    if (s->listen_fd < 0)
        KM_BUG("tp_server_run before tp_server_listen");
    s->workers = XALLOC_ARRAY(pthread_t, s->cfg.workers);
    for (unsigned i = 0; i < s->cfg.workers; i++) {
        if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0)
            KM_BUG("cannot start worker thread");
        s->nworkers++;
    }
    while (!atomic_load(&s->stopping)) {
        struct pollfd pfd[2] = {{.fd = s->listen_fd, .events = POLLIN},
                                {.fd = s->wake[0], .events = POLLIN}};
        int n = poll(pfd, 2, -1);
        if (n < 0 && errno != EINTR)
            KM_BUG("poll failed: %s", strerror(errno));
        if (n > 0 && (pfd[0].revents & POLLIN))
            accept_one(s);
    }
    drain(s);
    return KM_OK;
}

void tp_server_free(struct tp_server *s)
{
    if (s == NULL)
        return;
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    close(s->wake[0]);
    close(s->wake[1]);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->job_ready);
    pthread_cond_destroy(&s->readers_done);
    free(s->queue);
    free(s);
}
