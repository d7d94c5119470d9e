/*
 * server.h - the enclave-side request server.
 *
 * Listens on one address (VSock, TCP or Unix), reads framed requests from
 * every connection, hands each decoded request to a pool of worker threads
 * and writes the reply on the same connection. Replies go out as soon as
 * they are ready, so they may overtake earlier requests (the client matches
 * them by id).
 *
 * Guarantee: every request frame that arrives gets exactly one reply frame.
 *  - a frame that is not a valid envelope -> error "invalid_request"
 *    (addressed to its id when one could be read, else id 0);
 *  - the handler fails, with or without filling call->error -> an error
 *    reply (code from the handler, else km_errname of its return value);
 *  - the work queue is full -> error "busy" (retryable);
 *  - the reply does not fit in a frame -> error "too_large".
 * Only a dead connection loses replies, and then the client fails all its
 * pending requests at once (pool.h).
 *
 * A header announcing more than max_frame bytes gets an error reply and the
 * connection is closed (the rest of the stream cannot be trusted).
 *
 * Limits, so that no number of peers can hold the server or its memory:
 *  - frame_timeout_ms: a frame that starts must finish within this time of
 *    its first byte, however steadily its bytes trickle in; otherwise the
 *    connection is closed (logged).
 *  - idle_timeout_ms: a connection that sends no byte for this long while
 *    none of its requests is queued or running is closed (a debug line).
 *    The gateway's pool reconnects on demand, and resends a request whose
 *    idle connection was closed under it (pool.h).
 *  - max_connections: when a new connection arrives with max_connections
 *    open, the connection idle the longest (no partial frame buffered, no
 *    request queued or running) is closed to make room, so stale
 *    connections (a gateway that died without closing them) can never lock
 *    a restarted gateway out. When every connection is busy the new one is
 *    closed at once. Both are logged ("connection limit (N) reached: ...").
 *  - max_buffered_bytes: the read buffers of all connections share this
 *    budget (tp_read_budget, sock.h: each connection's first
 *    TP_READER_FREE_BYTES are free, so small requests are always read). A
 *    connection whose partial frame would push the total over the budget
 *    is closed (logged), so memory stays bounded whatever the number of
 *    connections; the other connections are still served. The budget must
 *    exceed max_frame for a frame of max_frame bytes to be readable.
 *
 * Threads: one accept loop (tp_server_run's caller), one reader per
 * connection, `workers` handler threads. The handler runs on a worker and
 * may block; it must be thread-safe.
 */
#ifndef KM_TRANSPORT_SERVER_H
#define KM_TRANSPORT_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "common/uuid.h"
#include "protocol/envelope.h"
#include "transport/addr.h"
#include "transport/sock.h"

#define TP_SERVER_MAX_CONNECTIONS_DEFAULT  256u
#define TP_SERVER_IDLE_TIMEOUT_DEFAULT_MS  (300u * 1000u)
#define TP_SERVER_FRAME_TIMEOUT_DEFAULT_MS (30u * 1000u)
#define TP_SERVER_MAX_BUFFERED_DEFAULT     ((size_t)64 * 1024 * 1024)
#define TP_SERVER_NO_TIMEOUT               UINT32_MAX /* idle_timeout_ms: never */

struct tp_server_config {
    size_t max_frame;          /* 0 = FRAME_MAX_DEFAULT (16 MiB) */
    unsigned max_connections;  /* 0 = TP_SERVER_MAX_CONNECTIONS_DEFAULT (256) */
    unsigned workers;          /* 0 = 8 */
    unsigned queue_capacity;   /* 0 = 1000 queued requests */
    uint32_t idle_timeout_ms;  /* 0 = 300000; TP_SERVER_NO_TIMEOUT = never */
    uint32_t frame_timeout_ms; /* 0 = 30000: time to finish a started frame */
    uint32_t write_timeout_ms; /* 0 = 5000 */
    size_t max_buffered_bytes; /* 0 = 64 MiB: all connections' read buffers */
};

/* One request as the handler sees it. */
struct tp_call {
    uint64_t id;
    struct uuid command_id;
    const char *cmd;  /* borrowed for the duration of the call */
    json_t *args;     /* borrowed: a JSON object */
    const char *peer; /* printable peer address */

    json_t *result;         /* out: on success, a new reference (NULL = {}) */
    struct env_error error; /* out: on failure (code empty = derive) */
};

/* Handles one call. Returns KM_OK with call->result set, or an error code
 * (optionally with call->error filled). Called concurrently from workers. */
typedef int (*tp_handler_fn)(void *ud, struct tp_call *call);

struct tp_server_stats {
    uint64_t connections_accepted;
    uint64_t connections_rejected; /* over max_connections, none idle */
    uint64_t connections_evicted;  /* longest idle, closed to admit a new one */
    uint64_t connections_idle_closed;
    uint64_t connections_frame_timeouts; /* a started frame did not finish */
    uint64_t connections_over_budget;    /* closed by max_buffered_bytes */
    unsigned connections_active;
    uint64_t requests;
    uint64_t error_replies;
    size_t buffered_bytes;      /* read-buffer budget in use now */
    size_t buffered_bytes_peak; /* its highest value (never above the budget) */
};

/* Creates a server; cfg may be NULL (all defaults). Free with
 * tp_server_free. */
struct tp_server *tp_server_new(const struct tp_server_config *cfg, tp_handler_fn handler,
                                void *ud);

/* Binds and listens (see tp_listen). Call once, before tp_server_run. */
int tp_server_listen(struct tp_server *s, const struct tp_addr *addr, struct km_error *err) KM_WUR;

/* The bound port (useful after listening on port 0). */
uint32_t tp_server_port(const struct tp_server *s);

/* Accepts and serves until tp_server_stop(). Then stops accepting, stops
 * reading new requests, lets queued and running requests finish and write
 * their replies, and closes every connection before returning KM_OK. */
int tp_server_run(struct tp_server *s) KM_WUR;

/* Asks tp_server_run to return. Async-signal-safe; callable from any
 * thread, before or during run. */
void tp_server_stop(struct tp_server *s);

void tp_server_stats(struct tp_server *s, struct tp_server_stats *out);

/* Frees a server that is not running. NULL is a no-op. */
void tp_server_free(struct tp_server *s);

#endif /* KM_TRANSPORT_SERVER_H */
