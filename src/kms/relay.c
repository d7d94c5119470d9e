/*
 * relay.c - the one-connection byte relay for libcurl versions that ignore
 * CURL_SOCKOPT_ALREADY_CONNECTED (relay.h).
 */
#include "kms/relay.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/hex.h"
#include "common/secure.h"
#include "common/banned.h"

#define RELAY_CHUNK 16384

bool kms_relay_needed(void)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    return v->version_num >= 0x075800 && v->version_num < 0x080000;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int set_blocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ? -1 : 0;
}

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Copies a -> b and b -> a until both have closed, an error, the deadline
 * or a stop request. An EOF on one side is passed on as a half close. */
static void pump(int a, int b, int stop, struct deadline dl)
{
    uint8_t chunk[RELAY_CHUNK];
    bool open[2] = {true, true};
    int fds[2] = {a, b};
    while (open[0] || open[1]) {
        struct pollfd p[3] = {
            {a, open[0] ? POLLIN : 0, 0}, {b, open[1] ? POLLIN : 0, 0}, {stop, POLLIN, 0}};
        int n = poll(p, 3, deadline_remaining_ms(dl));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || p[2].revents != 0)
            return;
        for (int i = 0; i < 2; i++) {
            if (!open[i] || (p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
                continue;
            ssize_t k = recv(fds[i], chunk, sizeof(chunk), 0);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                open[i] = false;
                shutdown(fds[1 - i], SHUT_WR);
            } else if (!write_all(fds[1 - i], chunk, (size_t)k)) {
                return;
            }
        }
    }
}

static void *relay_run(void *arg)
{
    struct kms_relay *r = arg;
    struct deadline dl = deadline_in_ms(r->timeout_ms);
    struct pollfd p[2] = {{r->listen_fd, POLLIN, 0}, {r->stop[0], POLLIN, 0}};
    int n;
    do
        n = poll(p, 2, deadline_remaining_ms(dl));
    while (n < 0 && errno == EINTR);
    if (n <= 0 || p[1].revents != 0 || (p[0].revents & POLLIN) == 0)
        return NULL;
    int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    close_fd(&r->listen_fd);
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    /* Only this process's libcurl may use the connection. */
    if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 &&
        cred.pid == getpid() && set_blocking(fd) == 0)
        pump(fd, r->peer_fd, r->stop[0], dl);
    if (fd >= 0)
        close(fd);
    return NULL;
}

int kms_relay_start(struct kms_relay *r, int peer_fd, uint32_t timeout_ms, struct km_error *err)
{
    uint8_t rnd[12];
    char hex[2 * sizeof(rnd) + 1];
    struct sockaddr_un sa;

    memset(r, 0, sizeof(*r));
    r->listen_fd = -1;
    r->stop[0] = r->stop[1] = -1;
    r->peer_fd = peer_fd;
    r->timeout_ms = timeout_ms;
    if (secure_random(rnd, sizeof(rnd)) != KM_OK)
        goto fail;
    hex_encode(hex, sizeof(hex), rnd, sizeof(rnd));
    snprintf(r->name, sizeof(r->name), "keymeld-kms-%s", hex);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t nlen = strlen(r->name);
    memcpy(sa.sun_path + 1, r->name, nlen); /* sun_path[0] = 0: abstract */
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + nlen);
    r->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r->listen_fd < 0 || bind(r->listen_fd, (struct sockaddr *)&sa, alen) != 0 ||
        listen(r->listen_fd, 1) != 0 || pipe2(r->stop, O_CLOEXEC) != 0 ||
        set_blocking(peer_fd) != 0)
        goto fail;
    if (pthread_create(&r->thread, NULL, relay_run, r) != 0)
        goto fail;
    r->running = true;
    return KM_OK;
fail:;
    int e = errno;
    kms_relay_stop(r);
    return km_error_set(err, KM_ERR_IO, e, "cannot set up the local relay for libcurl: %s",
                        strerror(e));
}

void kms_relay_stop(struct kms_relay *r)
{
    if (r->running) {
        ssize_t w;
        do
            w = write(r->stop[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(r->thread, NULL);
        r->running = false;
    }
    close_fd(&r->listen_fd);
    close_fd(&r->peer_fd);
    close_fd(&r->stop[0]);
    close_fd(&r->stop[1]);
}
