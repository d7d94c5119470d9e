/*
 * km_test_server - the echo server (tests/support/echo_server.h) as a
 * process, for tests that must kill the peer (kill -9 mid-flight) and for
 * benchmarks.
 *
 *   km_test_server ADDRESS      e.g. tcp://127.0.0.1:0
 *
 * Prints "listening <port>" on stdout once ready; stops on SIGTERM/SIGINT.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "echo_server.h"
#include "common/banned.h"

static struct tp_server *server;

static void on_signal(int sig)
{
    (void)sig;
    tp_server_stop(server);
}

int main(int argc, char **argv)
{
    struct tp_addr addr;
    struct km_error err;
    if (argc != 2) {
        fprintf(stderr, "usage: km_test_server ADDRESS\n");
        return 2;
    }
    if (tp_addr_parse(&addr, argv[1], strlen(argv[1]), &err) != KM_OK) {
        /* Port 0 (ephemeral) is rejected by the parser: accept it here. */
        size_t n = strlen(argv[1]);
        if (n < 2 || strcmp(argv[1] + n - 2, ":0") != 0)
            goto bad;
        char tmp[512];
        snprintf(tmp, sizeof(tmp), "%.*s:1", (int)(n - 2), argv[1]);
        if (tp_addr_parse(&addr, tmp, strlen(tmp), &err) != KM_OK)
            goto bad;
        addr.port = 0;
    }
    struct echo_server es = {0};
    pthread_mutex_init(&es.lock, NULL);
    server = tp_server_new(NULL, echo_server_handle, &es);
    if (tp_server_listen(server, &addr, &err) != KM_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("listening %u\n", tp_server_port(server));
    fflush(stdout);
    int r = tp_server_run(server);
    tp_server_free(server);
    return r == KM_OK ? 0 : 1;
bad:
    fprintf(stderr, "km_test_server: %s\n", err.msg);
    return 2;
}
