/*
 * pool.h - the gateway-side connection pool to one enclave.
 *
 * Requests are multiplexed over a few long-lived connections and matched to
 * replies by envelope id, so replies may arrive in any order. The pool opens
 * a new connection only when every open one already has
 * connection_load_threshold requests *in flight*, and never more than
 * max_connections. Connections are opened lazily by the first request that
 * needs one; concurrent requesters wait for that connect instead of
 * stampeding.
 *
 * Failure semantics:
 *  - every request has a deadline; a request still unanswered at its
 *    deadline fails with KM_ERR_TIMEOUT;
 *  - a connection that dies (EOF, reset, write error, an unreadable or
 *    oversized reply) fails all of its pending requests immediately, not at
 *    their deadlines;
 *  - except one case, handled inside the attempt: a request written alone
 *    on a reused connection that had nothing in flight, which then closes
 *    or resets before any reply. That is the enclave closing an idle
 *    connection (its idle timeout, or room for a new connection;
 *    server.h) just as the request went out, so the request is resent
 *    once, unchanged (same id and command_id), on a fresh connection,
 *    and counted in pool_stats.retries. A connection closed between
 *    requests is simply dropped: the next request opens a new one;
 *  - pool_request() is the one retry layer: it retries typed retryable
 *    failures (connection refused/reset/closed, connect timeout, DNS
 *    failure, and error replies flagged retryable) with exponential
 *    back-off, resending the same command_id under a new request id, which
 *    is safe because the enclave de-duplicates by command_id.
 *
 * Errors name the endpoint the way the seed shows them:
 *   "Command failed to CID 3:5000: Enclave communication error: Failed to
 *    connect: No such device (os error 19)"
 * km_error.sys_errno keeps the cause for tp_error_hint().
 *
 * Thread-safe: any number of threads may call pool_request / pool_call_*
 * concurrently. One reader thread per connection.
 */
#ifndef KM_TRANSPORT_POOL_H
#define KM_TRANSPORT_POOL_H

#include <stdint.h>

#include <jansson.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/uuid.h"
#include "protocol/envelope.h"
#include "transport/addr.h"

struct pool_config {
    size_t max_frame;                   /* 0 = 16 MiB (max_message_size_bytes) */
    unsigned connection_load_threshold; /* 0 = 50 requests in flight */
    unsigned max_connections;           /* 0 = 8 (max_connections_per_enclave) */
    uint32_t connect_timeout_ms;        /* 0 = 10000 (pool_acquire_timeout) */
    uint32_t request_timeout_ms;        /* 0 = 30000: the whole call, retries included */
    uint32_t write_timeout_ms;          /* 0 = 5000 (network_write_timeout) */
    unsigned max_attempts;              /* 0 = 3 (max_retry_attempts) */
    uint32_t initial_retry_delay_ms;    /* 0 = 100 */
    uint32_t max_retry_delay_ms;        /* 0 = 5000 */
    double retry_backoff_multiplier;    /* 0 = 2.0 */
};

/* Latency histogram bucket upper bounds, in microseconds (the last bucket
 * is +Inf). Prometheus-style, ready for /metrics. */
#define POOL_LATENCY_BUCKETS 15
extern const uint64_t pool_latency_bounds_us[POOL_LATENCY_BUCKETS - 1];

struct pool_stats {
    uint64_t requests;      /* attempts sent */
    uint64_t replies_ok;    /* ok replies */
    uint64_t replies_error; /* error replies from the enclave */
    uint64_t failures;      /* attempts that got no reply */
    uint64_t retries;       /* attempts beyond the first */
    uint64_t timeouts;      /* attempts that hit their deadline */
    uint64_t connections_opened;
    uint64_t connections_closed;
    uint64_t connect_failures;
    unsigned connections_open;
    unsigned in_flight;
    uint64_t latency_count;
    uint64_t latency_sum_us;
    uint64_t latency_buckets[POOL_LATENCY_BUCKETS]; /* non-cumulative */
};

struct pool;
struct pool_call;

/* Creates a pool for one enclave address; cfg may be NULL (defaults).
 * Connects nothing yet. */
struct pool *pool_new(const struct tp_addr *addr, const struct pool_config *cfg);

/* Closes every connection, fails nothing (no call may be outstanding:
 * that is a BUG), joins the reader threads and frees. NULL is a no-op. */
void pool_free(struct pool *p);

const struct tp_addr *pool_addr(const struct pool *p);

/*
 * Sends one command and waits for its reply, retrying as described above.
 * command_id may be NULL (a fresh UUIDv7 is used); args may be NULL ({}).
 * timeout_ms = 0 uses cfg.request_timeout_ms.
 * Returns:
 *   KM_OK          reply->ok is true; reply->result is owned by the caller
 *                  (env_reply_clear);
 *   KM_ERR_REMOTE  the enclave answered with an error: reply->error holds
 *                  its code/message/retryable, err->msg the formatted text;
 *   other          no reply (transport error); err says why, naming the
 *                  endpoint. reply is cleared.
 */
int pool_request(struct pool *p, struct env_reply *reply, const char *cmd,
                 const struct uuid *command_id, const json_t *args, uint32_t timeout_ms,
                 struct km_error *err) KM_WUR;

/* Sends "ping" and measures the round trip in microseconds. */
int pool_ping(struct pool *p, uint64_t *rtt_us, uint32_t timeout_ms, struct km_error *err) KM_WUR;

/*
 * One attempt, split in two so a caller can have many requests in flight
 * from one thread (fan-out). pool_call_start() sends the request and
 * returns a handle; pool_call_wait() blocks until the reply, the
 * connection's death or the deadline, fills reply (KM_OK) or err, and
 * frees the handle. Every started call must be waited for. No retries
 * (beyond the resend after an idle close described above).
 */
int pool_call_start(struct pool *p, struct pool_call **out, const char *cmd,
                    const struct uuid *command_id, const json_t *args, struct deadline dl,
                    struct km_error *err) KM_WUR;
int pool_call_wait(struct pool_call *c, struct env_reply *reply, struct km_error *err) KM_WUR;

/* pool_call_start with the arguments already encoded (env_dump_json of an
 * object: env_request_encode_text), so one text serves many enclaves. */
int pool_call_start_text(struct pool *p, struct pool_call **out, const char *cmd,
                         const struct uuid *command_id, const uint8_t *args_json, size_t len,
                         struct deadline dl, struct km_error *err) KM_WUR;

/* True if err (from pool_call_wait/pool_request) is worth retrying. */
bool pool_error_is_retryable(int code, const struct km_error *err, const struct env_reply *reply);

void pool_stats(struct pool *p, struct pool_stats *out);

#endif /* KM_TRANSPORT_POOL_H */
