/*
 * test_slowloris.c - one client address cannot starve the gateway
 * (docs/API.md "HTTP limits"): 127.0.0.2 keeps 1500 connections open, half
 * of them silent and half trickling header bytes (each byte resets
 * libmicrohttpd's idle timeout), reopening each one the server closes,
 * while a client on 127.0.0.1 gets /health and completes a signing within
 * 1 s each. Every attacking connection is closed at the request header
 * deadline (server.header_timeout_secs, 2 s here) with a WARN naming the
 * address, none lives longer, and the gateway stops cleanly afterwards.
 *
 * The stack's gateway lets one address hold 1024 connections (its test
 * clients all come from 127.0.0.1); here it gets max_connections 4096, so
 * the attacker holds 1024 connections (and gateway threads) at once and
 * the rest of its 1500 are refused at accept.
 */
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/session.h"
#include "common/clock.h"
#include "common/secure.h"
#include "stack.h"
#include "common/banned.h"

#define ATTACK_CONNS    1500
#define HEADER_DEADLINE 2    /* server.header_timeout_secs of this test */
#define TRICKLE_GAP_MS  500  /* one header byte per connection this often */
#define REOPEN_DELAY_MS 1000 /* an attacking slot reconnects after this */
#define MAX_LIFETIME_MS 4000 /* deadline + reaper pass + scheduling slack */
#define LEGIT_LIMIT_MS  1000
#define ROUNDS          5

static void stack_fail_cmocka(const char *msg)
{
    fail_msg("%s", msg);
}

struct attack {
    uint16_t port;
    atomic_bool stop;
    atomic_size_t open_now; /* connections currently open */
    pthread_t thread;
    int fd[ATTACK_CONNS];
    uint64_t opened_ms[ATTACK_CONNS];
    uint64_t next_ms[ATTACK_CONNS]; /* trickle: next byte; closed: reopen */
    size_t sent[ATTACK_CONNS];
    /* Results, read after the thread ended. */
    size_t connects;
    /* Closed by the server after the header deadline (not refused at
     * accept), trickling and silent ones. */
    size_t closed_trickle, closed_idle;
    uint64_t longest_ms; /* longest life of any attacking connection */
};

static const char trickle_head[] = "GET /health HTTP/1.1\r\nHost: gateway\r\nX-Slow: ";

static bool trickles(size_t i)
{
    return i % 2 == 1;
}

/* A non-blocking connection from 127.0.0.2 (no wait on a full backlog). */
static int attack_dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in from = {.sin_family = AF_INET};
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.2", &from.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (bind(fd, (struct sockaddr *)&from, sizeof(from)) != 0 ||
        (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void attack_open(struct attack *a, size_t i, uint64_t now)
{
    a->fd[i] = attack_dial(a->port);
    a->opened_ms[i] = now;
    a->next_ms[i] = now + (a->fd[i] >= 0 ? TRICKLE_GAP_MS : REOPEN_DELAY_MS);
    a->sent[i] = 0;
    if (a->fd[i] >= 0) {
        a->connects++;
        atomic_fetch_add(&a->open_now, 1);
    }
}

static void attack_closed(struct attack *a, size_t i, uint64_t now)
{
    uint64_t life = now - a->opened_ms[i];
    if (life > a->longest_ms)
        a->longest_ms = life;
    if (life >= HEADER_DEADLINE * 1000u - 100u && trickles(i))
        a->closed_trickle++;
    else if (life >= HEADER_DEADLINE * 1000u - 100u)
        a->closed_idle++;
    close(a->fd[i]);
    a->fd[i] = -1;
    a->next_ms[i] = now + REOPEN_DELAY_MS;
    atomic_fetch_sub(&a->open_now, 1);
}

/* One header byte: the head, then an endless header value. */
static void attack_trickle(struct attack *a, size_t i, uint64_t now)
{
    char c = a->sent[i] < sizeof(trickle_head) - 1 ? trickle_head[a->sent[i]] : 'a';
    ssize_t w = send(a->fd[i], &c, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w == 1)
        a->sent[i]++;
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)
        attack_closed(a, i, now);
    if (a->fd[i] >= 0)
        a->next_ms[i] = now + TRICKLE_GAP_MS;
}

/* Notices the connections the server closed (end of file or an error). */
static void attack_poll(struct attack *a, struct pollfd *p, size_t *idx)
{
    nfds_t n = 0;
    for (size_t i = 0; i < ATTACK_CONNS; i++) {
        if (a->fd[i] < 0)
            continue;
        p[n] = (struct pollfd){.fd = a->fd[i], .events = POLLIN};
        idx[n++] = i;
    }
    if (poll(p, n, 20) <= 0)
        return;
    uint64_t now = clock_now_ms();
    for (nfds_t k = 0; k < n; k++) {
        if (p[k].revents == 0)
            continue;
        char b[256];
        ssize_t r = recv(p[k].fd, b, sizeof(b), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            attack_closed(a, idx[k], now);
    }
}

static void *attack_main(void *arg)
{
    struct attack *a = arg;
    struct pollfd *p = calloc(ATTACK_CONNS, sizeof(*p));
    size_t *idx = calloc(ATTACK_CONNS, sizeof(*idx));
    uint64_t now = clock_now_ms();
    for (size_t i = 0; i < ATTACK_CONNS; i++)
        attack_open(a, i, now);
    while (!atomic_load(&a->stop)) {
        attack_poll(a, p, idx);
        now = clock_now_ms();
        for (size_t i = 0; i < ATTACK_CONNS; i++) {
            if (now < a->next_ms[i])
                continue;
            if (a->fd[i] < 0)
                attack_open(a, i, now);
            else if (trickles(i))
                attack_trickle(a, i, now);
        }
    }
    /* What is still open must be younger than the deadline allows. */
    now = clock_now_ms();
    for (size_t i = 0; i < ATTACK_CONNS; i++) {
        if (a->fd[i] < 0)
            continue;
        if (now - a->opened_ms[i] > a->longest_ms)
            a->longest_ms = now - a->opened_ms[i];
        close(a->fd[i]);
    }
    free(p);
    free(idx);
    return NULL;
}

/* Enough descriptors for the attacker here and the gateway (it inherits
 * the limit): 1500 connections each, plus the rest. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t want = 8192;
    if (rl.rlim_cur >= want)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want && geteuid() != 0)
        fail_msg("the open-file limit is %llu and cannot be raised to %llu here: run as root "
                 "or raise the hard limit (ulimit -Hn)",
                 (unsigned long long)rl.rlim_max, (unsigned long long)want);
    rl.rlim_cur = want;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
        rl.rlim_max = want; /* root may raise the hard limit */
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* Restarts the gateway (SIGTERM, exit status 0) with extra server keys. */
static void restart_gateway_with(struct stack *s, const char *server_keys)
{
    kill(s->gateway_pid, SIGTERM);
    int status = 0;
    CHECK_EQ(waitpid(s->gateway_pid, &status, 0), s->gateway_pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    s->gateway_pid = 0;
    size_t len = 0;
    char *yaml = test_read_file(s->config_path, &len);
    char *at = strstr(yaml, "server:\n");
    CHECK_NOT_NULL(at);
    at += strlen("server:\n");
    FILE *f = fopen(s->config_path, "w");
    CHECK_NOT_NULL(f);
    fwrite(yaml, 1, (size_t)(at - yaml), f);
    fputs(server_keys, f);
    fputs(at, f);
    CHECK_EQ(fclose(f), 0);
    free(yaml);
    stack_start_gateway(s);
}

/* GET /health and a signing (the reply carries the signatures) from
 * 127.0.0.1; each within LEGIT_LIMIT_MS. */
static void legit_round(struct stack *s, struct rest_client *c, const struct client_keygen *k,
                        int round)
{
    struct km_error err;
    uint64_t t0 = clock_now_ms();
    CHECK_EQ(stack_http_get(s, "/health", NULL), 200);
    uint64_t health_ms = clock_now_ms() - t0;
    uint8_t msgs[2][32];
    CHECK_OK(secure_random(msgs, sizeof(msgs)));
    struct client_signing g;
    CHECK_OK(client_signing_new(&g, (const uint8_t(*)[32])msgs, 2));
    t0 = clock_now_ms();
    if (client_sign_create(c, k, &g, 600, 20000, &err) != KM_OK)
        fail_msg("signing under attack: %s", err.msg);
    uint64_t sign_ms = clock_now_ms() - t0;
    CHECK(client_signing_done(&g));
    client_signing_clear(&g);
    print_message("round %d: /health %llu ms, signing %llu ms\n", round,
                  (unsigned long long)health_ms, (unsigned long long)sign_ms);
    CHECK(health_ms < LEGIT_LIMIT_MS);
    CHECK(sign_ms < LEGIT_LIMIT_MS);
}

static void test_slowloris(void **state)
{
    (void)state;
    struct stack s = {0};
    struct km_error err;
    stack_fail_hook = stack_fail_cmocka;
    raise_fd_limit();
    stack_start(&s, 3);
    char keys[128];
    snprintf(keys, sizeof(keys), "  max_connections: 4096\n  header_timeout_secs: %d\n",
             HEADER_DEADLINE);
    restart_gateway_with(&s, keys);

    struct rest_client *c = rest_client_new(s.base_url, 30000);
    struct client_trust trust;
    stack_client_trust(&s, &trust);
    struct client_keygen k;
    struct proto_tweak tweak = {.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT};
    CHECK_OK(client_keygen_new(&k, 3, &tweak));
    k.trust = &trust;
    if (client_keygen_run(c, &k, 600, 20000, &err) != KM_OK)
        fail_msg("keygen: %s", err.msg);
    legit_round(&s, c, &k, 0); /* before the attack, for comparison */

    struct attack *a = calloc(1, sizeof(*a));
    a->port = s.gateway_port;
    CHECK_EQ(pthread_create(&a->thread, NULL, attack_main, a), 0);
    /* Wait until the attacker holds what the gateway lets it (1024). */
    uint64_t until = clock_now_ms() + 10000;
    while (atomic_load(&a->open_now) < 1000 && clock_now_ms() < until)
        clock_sleep_ms(20);
    print_message("attacker holds %zu connections\n", atomic_load(&a->open_now));
    CHECK(atomic_load(&a->open_now) >= 1000);
    for (int r = 1; r <= ROUNDS; r++) {
        legit_round(&s, c, &k, r);
        clock_sleep_ms(1000);
    }
    atomic_store(&a->stop, true);
    CHECK_EQ(pthread_join(a->thread, NULL), 0);
    print_message("attacker: %zu connects, %zu trickling and %zu silent ones closed at the "
                  "deadline, longest life %llu ms\n",
                  a->connects, a->closed_trickle, a->closed_idle,
                  (unsigned long long)a->longest_ms);
    /* Both kinds were closed by the header deadline, none lived longer. */
    CHECK(a->closed_trickle >= 300);
    CHECK(a->closed_idle >= 300);
    CHECK(a->longest_ms < MAX_LIFETIME_MS);
    char warn[96];
    snprintf(warn, sizeof(warn),
             "closing the connection from 127.0.0.2: request headers not complete within %d s",
             HEADER_DEADLINE);
    CHECK(stack_log_contains(&s, "gateway.log", warn));
    free(a);

    legit_round(&s, c, &k, ROUNDS + 1); /* and after it */
    client_keygen_clear(&k);
    client_trust_release(&trust);
    rest_client_free(c);
    stack_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_slowloris),
    };
    return RUN_TESTS("integration.slowloris", tests);
}
