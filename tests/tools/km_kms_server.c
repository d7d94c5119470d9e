/*
 * km_kms_server - the KMS stand-in (tests/support/kms_server.h) as a
 * process, for end-to-end tests of enclaves that seal their identity key.
 *
 *   km_kms_server [--port N] [--region R] [--key-id ID]
 *                 [--root PEM] [--pcr0 HEX96] [--max-skew SECS]
 *
 * Credentials come from the environment, as an AWS SDK reads them:
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (optional).
 * With --root documents are verified against that PEM root (a development
 * CA's root.pem); with --pcr0 their PCR0 must match.
 *
 * Prints "listening on PORT" on stdout once ready; serves until SIGTERM or
 * SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/doc.h"
#include "attest/policy.h"
#include "common/hex.h"
#include "kms_server.h"
#include "common/banned.h"

static void usage(void)
{
    fprintf(stderr, "usage: km_kms_server [--port N] [--region R] [--key-id ID] [--root PEM] "
                    "[--pcr0 HEX] [--max-skew SECS]\n"
                    "credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                    "AWS_SESSION_TOKEN (optional)\n");
}

static int parse_uint(unsigned long *out, const char *s, unsigned long max)
{
    char *end = NULL;
    errno = 0;
    *out = strtoul(s, &end, 10);
    return errno == 0 && end != s && *end == '\0' && *out <= max ? 0 : -1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},   {"region", required_argument, NULL, 'r'},
        {"key-id", required_argument, NULL, 'k'}, {"root", required_argument, NULL, 't'},
        {"pcr0", required_argument, NULL, '0'},   {"max-skew", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    struct kms_server_config cfg;
    struct km_error err;
    uint8_t pcr0[ATTEST_PCR_LEN];
    uint8_t *root = NULL;
    unsigned long v;
    int c;

    memset(&cfg, 0, sizeof(cfg));
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (parse_uint(&v, optarg, 65535) != 0)
                goto bad;
            cfg.port = (uint16_t)v;
            break;
        case 'r':
            cfg.region = optarg;
            break;
        case 'k':
            cfg.key_id = optarg;
            break;
        case 't':
            if (attest_root_load(&root, &cfg.root_der_len, optarg, &err) != KM_OK) {
                fprintf(stderr, "km_kms_server: %s\n", err.msg);
                return 2;
            }
            cfg.root_der = root;
            break;
        case '0':
            if (hex_decode_exact(pcr0, sizeof(pcr0), optarg, strlen(optarg)) != KM_OK)
                goto bad;
            cfg.pcr0 = pcr0;
            break;
        case 's':
            if (parse_uint(&v, optarg, 86400) != 0)
                goto bad;
            cfg.max_skew_secs = (uint32_t)v;
            break;
        default:
            goto bad;
        }
    }
    if (optind != argc)
        goto bad;
    cfg.access_key_id = getenv("AWS_ACCESS_KEY_ID");
    cfg.secret_access_key = getenv("AWS_SECRET_ACCESS_KEY");
    cfg.session_token = getenv("AWS_SESSION_TOKEN");
    if (cfg.session_token != NULL && cfg.session_token[0] == '\0')
        cfg.session_token = NULL;

    /* Block the stop signals before any thread starts, then wait for one. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    struct kms_server *s = NULL;
    if (kms_server_start(&s, &cfg, &err) != KM_OK) {
        fprintf(stderr, "km_kms_server: %s\n", err.msg);
        free(root);
        return 1;
    }
    printf("listening on %u\n", kms_server_port(s));
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    unsigned ok = 0, n = kms_server_requests(s, &ok);
    fprintf(stderr, "km_kms_server: stopping (%u requests, %u succeeded)\n", n, ok);
    kms_server_stop(s);
    free(root);
    return 0;
bad:
    usage();
    free(root);
    return 2;
}
