#include "transport/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "transport/frame.h"
#include "common/banned.h"

#define READ_CHUNK (64u * 1024u)

static int set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void set_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* "No such device (os error 19)": the seed's wording, which is also what
 * operators search for. */
static int sys_error(struct km_error *err, int code, int e, const char *what)
{
    return km_error_set(err, code, e, "%s: %s (os error %d)", what, strerror(e), e);
}

static socklen_t vsock_sockaddr(struct sockaddr_vm *sa, uint32_t cid, uint32_t port)
{
    memset(sa, 0, sizeof(*sa));
    sa->svm_family = AF_VSOCK;
    sa->svm_cid = cid;
    sa->svm_port = port;
    return sizeof(*sa);
}

static socklen_t unix_sockaddr(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, strnlen(path, sizeof(sa->sun_path) - 1));
    return sizeof(*sa);
}

/* A Unix socket file whose owner is gone refuses connections: safe to
 * replace. Anything else (a live listener, a regular file) is kept. */
static int unix_path_is_stale(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return 0;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_un sa;
    socklen_t salen = unix_sockaddr(&sa, path);
    int stale = connect(fd, (struct sockaddr *)&sa, salen) != 0 && errno == ECONNREFUSED;
    close(fd);
    return stale;
}

static int listen_fd_on(int fd, const struct sockaddr *sa, socklen_t salen, int backlog)
{
    if (bind(fd, sa, salen) != 0 || listen(fd, backlog) != 0 || set_nonblocking(fd) != 0)
        return -1;
    return 0;
}

static int listen_tcp(int *fd_out, const struct tp_addr *addr, int backlog)
{
    struct addrinfo hints = {0}, *res = NULL;
    char port[16];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", addr->port);
    int gai = getaddrinfo(addr->host, port, &hints, &res);
    if (gai != 0) {
        errno = gai == EAI_SYSTEM ? errno : EADDRNOTAVAIL;
        return -1;
    }
    int saved = EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (listen_fd_on(fd, ai->ai_addr, ai->ai_addrlen, backlog) == 0) {
            freeaddrinfo(res);
            *fd_out = fd;
            return 0;
        }
        saved = errno;
        close(fd);
    }
    freeaddrinfo(res);
    errno = saved;
    return -1;
}

int tp_listen(int *fd_out, const struct tp_addr *addr, int backlog, struct km_error *err)
{
    char where[TP_ADDR_STR_MAX], what[TP_ADDR_STR_MAX + 64];
    int fd = -1, rc = -1;
    *fd_out = -1;

    if (addr->kind == TP_KIND_TCP) {
        rc = listen_tcp(&fd, addr, backlog);
    } else if (addr->kind == TP_KIND_VSOCK) {
        struct sockaddr_vm sa;
        socklen_t salen = vsock_sockaddr(&sa, addr->cid, addr->port);
        fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        rc = fd < 0 ? -1 : listen_fd_on(fd, (struct sockaddr *)&sa, salen, backlog);
    } else if (addr->kind == TP_KIND_UNIX) {
        struct sockaddr_un sa;
        socklen_t salen = unix_sockaddr(&sa, addr->path);
        if (unix_path_is_stale(addr->path))
            unlink(addr->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        rc = fd < 0 ? -1 : listen_fd_on(fd, (struct sockaddr *)&sa, salen, backlog);
    } else {
        KM_BUG("tp_listen: invalid address kind %d", (int)addr->kind);
    }
    if (rc != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        static const char *const names[] = {"?", "VSock", "TCP", "Unix"};
        snprintf(what, sizeof(what), "Failed to bind %s listener on %s", names[addr->kind],
                 tp_addr_format(where, sizeof(where), addr));
        return sys_error(err, KM_ERR_IO, e, what);
    }
    *fd_out = fd;
    return KM_OK;
}

int tp_listen_port(int fd, uint32_t *port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return KM_ERR_IO;
    switch (ss.ss_family) {
    case AF_INET:
        *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        return KM_OK;
    case AF_INET6:
        *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        return KM_OK;
    case AF_VSOCK:
        *port = ((struct sockaddr_vm *)&ss)->svm_port;
        return KM_OK;
    default:
        return KM_ERR_UNSUPPORTED;
    }
}

static void format_peer(char *out, size_t cap, const struct sockaddr_storage *ss)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    switch (ss->ss_family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(in->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
        break;
    }
    case AF_VSOCK: {
        const struct sockaddr_vm *vm = (const struct sockaddr_vm *)ss;
        snprintf(out, cap, "CID %u:%u", vm->svm_cid, vm->svm_port);
        break;
    }
    default:
        snprintf(out, cap, "unix");
        break;
    }
}

int tp_accept(int listen_fd, int *fd_out, char *peer, size_t peercap, struct km_error *err)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    *fd_out = -1;
    int fd = accept4(listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
            return KM_ERR_INCOMPLETE;
        return sys_error(err, KM_ERR_IO, errno, "accept failed");
    }
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
        set_nodelay(fd);
    if (peer != NULL && peercap > 0)
        format_peer(peer, peercap, &ss);
    *fd_out = fd;
    return KM_OK;
}

/* Waits for a non-blocking connect() to finish. */
static int connect_wait(int fd, struct deadline dl, int *e)
{
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    for (;;) {
        int n = poll(&pfd, 1, deadline_remaining_ms(dl));
        if (n > 0)
            break;
        if (n == 0) {
            *e = ETIMEDOUT;
            return KM_ERR_TIMEOUT;
        }
        if (errno != EINTR) {
            *e = errno;
            return KM_ERR_CONNECT;
        }
    }
    socklen_t len = sizeof(*e);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, e, &len) != 0)
        *e = errno;
    return *e == 0 ? KM_OK : KM_ERR_CONNECT;
}

/* One attempt on one sockaddr. On failure *e holds the errno. */
static int connect_one(int *fd_out, int family, const struct sockaddr *sa, socklen_t salen,
                       struct deadline dl, int *e)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *e = errno;
        return KM_ERR_CONNECT;
    }
    int r = KM_OK;
    if (connect(fd, sa, salen) != 0) {
        if (errno == EINPROGRESS)
            r = connect_wait(fd, dl, e);
        else {
            *e = errno;
            r = KM_ERR_CONNECT;
        }
    }
    if (r != KM_OK) {
        close(fd);
        return r;
    }
    if (family == AF_INET || family == AF_INET6)
        set_nodelay(fd);
    *fd_out = fd;
    return KM_OK;
}

static int connect_tcp(int *fd_out, const struct tp_addr *addr, struct deadline dl, int *e,
                       struct km_error *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    char port[16];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", addr->port);
    int gai = getaddrinfo(addr->host, port, &hints, &res);
    if (gai != 0)
        return km_error_set(err, KM_ERR_RESOLVE, 0, "Failed to resolve hostname: %s", addr->host);
    int r = KM_ERR_CONNECT;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        r = connect_one(fd_out, ai->ai_family, ai->ai_addr, ai->ai_addrlen, dl, e);
        if (r == KM_OK || r == KM_ERR_TIMEOUT)
            break;
    }
    freeaddrinfo(res);
    return r;
}

int tp_connect(int *fd_out, const struct tp_addr *addr, struct deadline dl, struct km_error *err)
{
    int e = 0, r;
    *fd_out = -1;
    if ((addr->kind != TP_KIND_UNIX && addr->port == 0) ||
        (addr->kind == TP_KIND_VSOCK && addr->cid == TP_VSOCK_CID_ANY))
        return km_error_set(err, KM_ERR_INVALID, 0, "Failed to connect: not a connectable address");

    switch (addr->kind) {
    case TP_KIND_TCP:
        r = connect_tcp(fd_out, addr, dl, &e, err);
        if (r == KM_ERR_RESOLVE)
            return r;
        break;
    case TP_KIND_VSOCK: {
        struct sockaddr_vm sa;
        socklen_t salen = vsock_sockaddr(&sa, addr->cid, addr->port);
        r = connect_one(fd_out, AF_VSOCK, (struct sockaddr *)&sa, salen, dl, &e);
        break;
    }
    case TP_KIND_UNIX: {
        struct sockaddr_un sa;
        socklen_t salen = unix_sockaddr(&sa, addr->path);
        r = connect_one(fd_out, AF_UNIX, (struct sockaddr *)&sa, salen, dl, &e);
        break;
    }
    default:
        KM_BUG("tp_connect: invalid address kind %d", (int)addr->kind);
    }
    if (r == KM_ERR_TIMEOUT)
        e = ETIMEDOUT; /* reported like the kernel's own connect timeout */
    if (r != KM_OK)
        return sys_error(err, KM_ERR_CONNECT, e, "Failed to connect");
    return KM_OK;
}

int tp_write_all(int fd, const uint8_t *p, size_t n, struct deadline dl, struct km_error *err)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int pr = poll(&pfd, 1, deadline_remaining_ms(dl));
            if (pr == 0)
                return km_error_set(err, KM_ERR_TIMEOUT, ETIMEDOUT, "Write timed out");
            if (pr < 0 && errno != EINTR)
                return sys_error(err, KM_ERR_IO, errno, "Failed to write message");
            continue;
        }
        int e = w < 0 ? errno : EPIPE;
        int code = (e == EPIPE || e == ECONNRESET) ? KM_ERR_CLOSED : KM_ERR_IO;
        return sys_error(err, code, e, "Failed to write message");
    }
    return KM_OK;
}

void tp_read_budget_init(struct tp_read_budget *b, size_t limit)
{
    if (limit == 0)
        KM_BUG("tp_read_budget_init: limit must be > 0");
    b->limit = limit;
    atomic_init(&b->used, 0);
    atomic_init(&b->peak, 0);
}

/* Takes n bytes from the budget, all or nothing. */
static bool budget_take(struct tp_read_budget *b, size_t n)
{
    size_t cur = atomic_load(&b->used);
    do {
        if (n > b->limit - cur)
            return false;
    } while (!atomic_compare_exchange_weak(&b->used, &cur, cur + n));
    size_t peak = atomic_load(&b->peak);
    while (peak < cur + n && !atomic_compare_exchange_weak(&b->peak, &peak, cur + n)) {}
    return true;
}

/* What a buffer of capacity cap costs the budget. */
static size_t charge_for(size_t cap)
{
    return cap > TP_READER_FREE_BYTES ? cap - TP_READER_FREE_BYTES : 0;
}

/* Brings the charge in line with the buffer's capacity now: returns what
 * a shrunk (or freed) buffer no longer needs, adds what an unforeseen
 * growth took. */
static void reader_settle(struct tp_reader *r)
{
    size_t now = charge_for(r->rbuf.cap);
    if (r->budget == NULL || now == r->charged)
        return;
    if (now < r->charged)
        atomic_fetch_sub(&r->budget->used, r->charged - now);
    else
        atomic_fetch_add(&r->budget->used, now - r->charged);
    r->charged = now;
}

void tp_reader_init(struct tp_reader *r, size_t max_frame)
{
    /* The buffer holds at most one frame plus the next one's beginning. */
    buf_init(&r->rbuf, max_frame + FRAME_HEADER_LEN + READ_CHUNK);
    r->max_frame = max_frame;
    r->consume_next = 0;
    r->budget = NULL;
    r->charged = 0;
    atomic_init(&r->buffered, 0);
}

void tp_reader_set_budget(struct tp_reader *r, struct tp_read_budget *b)
{
    if (r->charged != 0)
        KM_BUG("tp_reader_set_budget on a reader in use");
    r->budget = b;
}

void tp_reader_release(struct tp_reader *r)
{
    buf_release(&r->rbuf);
    reader_settle(r);
    r->consume_next = 0;
    atomic_store(&r->buffered, 0);
}

size_t tp_reader_buffered(const struct tp_reader *r)
{
    return atomic_load(&((struct tp_reader *)(uintptr_t)r)->buffered);
}

/* Reserves, before buf_ensure(want) allocates, what the grown buffer will
 * cost: buf doubles its capacity until the unread bytes, want more and a
 * terminator fit, and never goes beyond its maximum + 1. */
static int reader_reserve(struct tp_reader *r, size_t want, struct km_error *err)
{
    size_t need = st_add(st_add(buf_len(&r->rbuf), want), 1);
    if (r->budget == NULL || need <= r->rbuf.cap)
        return KM_OK;
    size_t cap = r->rbuf.cap ? r->rbuf.cap : 64;
    while (cap < need)
        cap = st_mult(cap, 2);
    if (cap > r->rbuf.max + 1)
        cap = r->rbuf.max + 1;
    size_t charge = charge_for(cap);
    if (charge <= r->charged)
        return KM_OK;
    if (!budget_take(r->budget, charge - r->charged))
        return km_error_set(err, KM_ERR_LIMIT, 0,
                            "a partial frame of %zu bytes would exceed the read buffer budget "
                            "(%zu bytes, %zu in use)",
                            buf_len(&r->rbuf), r->budget->limit, atomic_load(&r->budget->used));
    r->charged = charge;
    return KM_OK;
}

/* Reads what is available (at least one byte) before the deadline. */
static int reader_fill(struct tp_reader *r, int fd, size_t need, struct deadline dl,
                       struct km_error *err)
{
    size_t have = buf_len(&r->rbuf);
    size_t want = need > have ? need - have : 1;
    /* Grow with what has arrived (at most doubling), never with what the
     * peer claims: a header announcing 16 MiB costs nothing until the
     * bytes come. */
    size_t grow_cap = have > READ_CHUNK ? have : READ_CHUNK;
    if (want > grow_cap)
        want = grow_cap;
    if (want < READ_CHUNK)
        want = READ_CHUNK; /* read ahead: several small frames per syscall */
    size_t room_max = r->rbuf.max - have;
    if (want > room_max)
        want = room_max;
    int rc = reader_reserve(r, want, err);
    if (rc != KM_OK)
        return rc;
    rc = buf_ensure(&r->rbuf, want);
    reader_settle(r);
    if (rc != KM_OK)
        return km_error_set(err, rc, 0, "read buffer: %s", km_strerror(rc));
    for (;;) {
        ssize_t n = recv(fd, buf_tail_direct(&r->rbuf), buf_tail_avail(&r->rbuf), 0);
        if (n > 0) {
            buf_commit(&r->rbuf, (size_t)n);
            atomic_store(&r->buffered, buf_len(&r->rbuf));
            return KM_OK;
        }
        if (n == 0)
            return have == 0 ? km_error_set(err, KM_ERR_CLOSED, 0, "Connection closed")
                             : km_error_set(err, KM_ERR_INVALID, 0,
                                            "Connection closed in the middle of a frame");
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int pr = poll(&pfd, 1, deadline_remaining_ms(dl));
            if (pr == 0)
                return km_error_set(err, KM_ERR_TIMEOUT, ETIMEDOUT,
                                    have == 0 ? "Idle timeout" : "Timeout reading frame");
            if (pr < 0 && errno != EINTR)
                return sys_error(err, KM_ERR_IO, errno, "Failed to read message");
            continue;
        }
        int code = errno == ECONNRESET ? KM_ERR_CLOSED : KM_ERR_IO;
        return sys_error(err, code, errno, "Failed to read message");
    }
}

/* Drops the frame returned last time. A buffer that grew beyond the free
 * allowance for a large frame goes back to a small one (keeping the next
 * frame's first bytes), so an idle connection does not keep megabytes. */
static void reader_consume(struct tp_reader *r)
{
    if (r->consume_next > 0) {
        if (buf_consume(&r->rbuf, r->consume_next) != KM_OK)
            KM_BUG("tp_reader: consume beyond buffer");
        r->consume_next = 0;
    }
    size_t left = buf_len(&r->rbuf);
    if (r->rbuf.cap > TP_READER_FREE_BYTES && left <= READ_CHUNK) {
        struct buf small;
        buf_init(&small, r->rbuf.max);
        if (left > 0 && buf_put(&small, buf_peek(&r->rbuf), left) != KM_OK)
            KM_BUG("tp_reader: cannot keep %zu bytes", left);
        buf_release(&r->rbuf);
        r->rbuf = small;
        reader_settle(r);
    }
    atomic_store(&r->buffered, left);
}

int tp_reader_next(struct tp_reader *r, int fd, struct deadline idle_dl, uint32_t frame_timeout_ms,
                   const uint8_t **payload, size_t *len, struct km_error *err)
{
    *payload = NULL;
    *len = 0;
    reader_consume(r);
    struct deadline frame_dl = deadline_never();
    bool started = buf_len(&r->rbuf) > 0;
    if (started)
        frame_dl = deadline_in_ms(frame_timeout_ms);
    for (;;) {
        size_t off, plen, consumed, need;
        int rc = frame_decode(buf_peek(&r->rbuf), buf_len(&r->rbuf), r->max_frame, &off, &plen,
                              &consumed, &need);
        if (rc == KM_OK) {
            *payload = buf_peek(&r->rbuf) + off;
            *len = plen;
            r->consume_next = consumed;
            return KM_OK;
        }
        if (rc == KM_ERR_TOO_LARGE)
            return km_error_set(err, KM_ERR_TOO_LARGE, 0, "Message too large: %zu bytes (max %zu)",
                                plen, r->max_frame);
        /* Checked here too, not only by poll: bytes that keep arriving
         * just in time never make poll wait. */
        if (started && deadline_expired(frame_dl))
            return km_error_set(err, KM_ERR_TIMEOUT, ETIMEDOUT,
                                "Timeout reading frame: %zu of %zu bytes after %u ms",
                                buf_len(&r->rbuf), need, frame_timeout_ms);
        rc = reader_fill(r, fd, need, started ? frame_dl : idle_dl, err);
        if (rc == KM_ERR_TIMEOUT && started)
            return km_error_set(err, KM_ERR_TIMEOUT, ETIMEDOUT,
                                "Timeout reading frame: %zu of %zu bytes after %u ms",
                                buf_len(&r->rbuf), need, frame_timeout_ms);
        if (rc != KM_OK)
            return rc;
        if (!started) {
            started = true;
            frame_dl = deadline_in_ms(frame_timeout_ms);
        }
    }
}

int tp_vsock_local_cid(uint32_t *cid)
{
    int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return KM_ERR_IO;
    unsigned int c = 0;
    int rc = ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &c);
    close(fd);
    if (rc != 0)
        return KM_ERR_IO;
    *cid = c;
    return KM_OK;
}
