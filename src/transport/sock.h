/*
 * sock.h - stream sockets for the three transports, with deadlines.
 *
 * All sockets returned are non-blocking and close-on-exec; the I/O helpers
 * below wait with poll() until their deadline. TCP sockets get TCP_NODELAY
 * (request/response traffic: latency beats coalescing).
 *
 * Errors keep errno in km_error.sys_errno and word the message the way the
 * seed document shows it, e.g.
 *   "Failed to connect: No such device (os error 19)"
 *   "Failed to resolve hostname: keymeld-enclave-0"
 * The pool adds the endpoint ("Command failed to CID 3:5000: Enclave
 * communication error: ..."); tp_error_hint() (hint.h) adds the fix.
 *
 * SAFETY (DESIGN.md §4): on the build machines VSock CID 2 is the
 * hypervisor. Tests never pass a VSock address to tp_connect().
 */
#ifndef KM_TRANSPORT_SOCK_H
#define KM_TRANSPORT_SOCK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "transport/addr.h"

#define TP_PEER_STR_MAX 128

/* Creates a listening socket bound to addr (VSock binds its CID, normally
 * TP_VSOCK_CID_ANY). Port 0 (VSock: TP_VSOCK_PORT_ANY) picks a free port;
 * read it back with tp_listen_port(). A Unix path left over by a dead
 * process is replaced; a live one is not. Returns KM_OK or KM_ERR_IO with
 * "Failed to bind <kind> listener on <addr>: <cause> (os error N)". */
int tp_listen(int *fd_out, const struct tp_addr *addr, int backlog, struct km_error *err) KM_WUR;

#define TP_VSOCK_PORT_ANY 0xffffffffu

/* The port a listening TCP or VSock socket is bound to. */
int tp_listen_port(int fd, uint32_t *port) KM_WUR;

/* Accepts one connection (non-blocking listener: KM_ERR_INCOMPLETE when
 * none is pending). peer receives a printable peer address. */
int tp_accept(int listen_fd, int *fd_out, char *peer, size_t peercap, struct km_error *err) KM_WUR;

/* Connects to addr before the deadline. TCP resolves tcp_host with
 * getaddrinfo and tries each address. Returns KM_OK, KM_ERR_RESOLVE or
 * KM_ERR_CONNECT with the errno kept (ETIMEDOUT when the deadline passed). */
int tp_connect(int *fd_out, const struct tp_addr *addr, struct deadline dl,
               struct km_error *err) KM_WUR;

/* Writes all n bytes before the deadline. KM_ERR_TIMEOUT, KM_ERR_CLOSED
 * (EPIPE/ECONNRESET) or KM_ERR_IO. A partial write leaves the stream
 * unusable: the caller must close it. */
int tp_write_all(int fd, const uint8_t *p, size_t n, struct deadline dl,
                 struct km_error *err) KM_WUR;

/*
 * A budget of read-buffer memory shared by the readers of one server, so
 * that many connections each holding a large partial frame cannot grow the
 * process without bound. Each reader may hold TP_READER_FREE_BYTES of
 * buffer capacity without charge (what any small frame needs; bounded by
 * the number of connections); capacity beyond that is charged to the
 * budget before it is allocated and returned when the reader shrinks or is
 * released. Thread-safe (atomics); the owner keeps it alive longer than
 * every reader that uses it.
 */
struct tp_read_budget {
    size_t limit;
    atomic_size_t used; /* bytes charged now, never above limit */
    atomic_size_t peak; /* the highest value of used */
};

#define TP_READER_FREE_BYTES (128u * 1024u)

/* An empty budget of limit bytes (limit > 0). */
void tp_read_budget_init(struct tp_read_budget *b, size_t limit);

/*
 * Buffered frame reader for one connection.
 *
 * tp_reader_next() returns the next complete frame's payload, borrowed from
 * the reader's buffer until the next call. While no byte of a new frame has
 * arrived it waits until idle_dl (a quiet connection is fine); once a frame
 * has begun, the rest must arrive within frame_timeout_ms of the call that
 * saw its first byte, however steadily bytes trickle in, so a peer that
 * sends half a frame and stalls (or sends it a byte at a time) cannot hold
 * the connection and its buffer.
 * Returns KM_OK, KM_ERR_CLOSED (orderly EOF between frames, or a reset),
 * KM_ERR_TIMEOUT (tp_reader_buffered() tells an idle timeout, 0, from a
 * frame timeout), KM_ERR_TOO_LARGE (header over max_frame; nothing more is
 * read), KM_ERR_LIMIT (growing the buffer for a partial frame would exceed
 * the budget set with tp_reader_set_budget; the stream is unusable),
 * KM_ERR_INVALID (EOF inside a frame) or KM_ERR_IO. Memory grows with bytes
 * actually received, never with the length a peer claims, and a buffer
 * that grew for a large frame is shrunk once that frame is consumed.
 */
struct tp_reader {
    struct buf rbuf;
    size_t max_frame;
    size_t consume_next; /* bytes of the previous frame still in rbuf */
    struct tp_read_budget *budget;
    size_t charged;         /* bytes of rbuf's capacity charged to budget */
    atomic_size_t buffered; /* unread bytes in rbuf, for other threads */
};

void tp_reader_init(struct tp_reader *r, size_t max_frame);

/* Charges r's buffer growth to b (NULL: no budget). Call before the first
 * tp_reader_next. */
void tp_reader_set_budget(struct tp_reader *r, struct tp_read_budget *b);

/* Frees the buffer and returns its charge to the budget. */
void tp_reader_release(struct tp_reader *r);
int tp_reader_next(struct tp_reader *r, int fd, struct deadline idle_dl, uint32_t frame_timeout_ms,
                   const uint8_t **payload, size_t *len, struct km_error *err) KM_WUR;

/* Bytes received but not yet returned as a frame (0: between frames). Safe
 * to call from any thread while the reader is in use. */
size_t tp_reader_buffered(const struct tp_reader *r);

/* Reads the local VSock CID from /dev/vsock. KM_ERR_IO if unavailable. */
int tp_vsock_local_cid(uint32_t *cid) KM_WUR;

#endif /* KM_TRANSPORT_SOCK_H */
