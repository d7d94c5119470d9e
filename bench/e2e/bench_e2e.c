/*
 * bench_e2e - full signing sessions through the whole system: 3 enclave
 * processes and a gateway process (SQLite WAL) on TCP loopback, driven by
 * concurrent client threads over HTTP.
 *
 * One keygen (3 participants), then each client thread loops: create a
 * signing session of one message with ?wait_ms (the reply carries the
 * outcome), decrypt the signature and verify it (BIP-340) under the
 * aggregate key.
 * Latency is measured from the create request to the verified signature.
 *
 * Baseline, measured in the same run: the same 3-party MuSig2 signing done
 * in-process with the crypto library only (NonceGen x3, NonceAgg, session,
 * Sign x3, checked aggregation, final verify), so the ratio shows what the
 * distribution (HTTP, SQLite, enclave links, encryption) costs on top.
 *
 * CPU per signing of each side (gateway, the 3 enclaves together, the
 * client threads), from /proc, is printed as a multiple of the baseline
 * too: on a shared machine these ratios move far less than rates do.
 *
 *   bench_e2e [seconds per case]     (default 5)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/session.h"
#include "common/clock.h"
#include "common/secure.h"
#include "crypto/musig.h"
#include "crypto/schnorr.h"
#include "stack.h"
#include "common/banned.h"

#define MAX_THREADS 64
#define MAX_SAMPLES 200000

struct run {
    const char *base_url;
    const struct client_keygen *k;
    uint64_t until_ms;
    uint64_t *lat_ns;
    size_t cap, n;
    unsigned failures;
    char last_error[512];
};

static void *client_main(void *arg)
{
    struct run *r = arg;
    struct rest_client *c = rest_client_new(r->base_url, 30000);
    while (clock_now_ms() < r->until_ms && r->n < r->cap) {
        uint8_t msg[1][32];
        struct client_signing s;
        struct km_error err;
        if (secure_random(msg, sizeof(msg)) != KM_OK ||
            client_signing_new(&s, (const uint8_t(*)[32])msg, 1) != KM_OK)
            abort();
        uint64_t t0 = clock_now_ns();
        int rc = client_sign_create(c, r->k, &s, 600, 30000, &err);
        if (rc == KM_OK && !client_signing_done(&s))
            rc = client_sign_wait(c, r->k, &s, 0, 30000, &err);
        if (rc == KM_OK)
            r->lat_ns[r->n++] = clock_now_ns() - t0;
        else {
            r->failures++;
            snprintf(r->last_error, sizeof(r->last_error), "%.400s (after %.1f ms)", err.msg,
                     (double)(clock_now_ns() - t0) / 1e6);
        }
        client_signing_clear(&s);
    }
    rest_client_free(c);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct result {
    double rate, p50_ms, p99_ms;
    size_t n;
    unsigned failures;
    double cpu_ms[3]; /* per signing: gateway, the 3 enclaves, this client */
};

/* CPU seconds (user + system) a process has used so far, from
 * /proc/<pid>/stat; 0 if unreadable. */
static double process_cpu_secs(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the parenthesised command name; utime and stime are
     * the 14th and 15th fields of the line. */
    const char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return 0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds so far of the gateway, the enclaves, and this process. */
static void stack_cpu(const struct stack *st, double out[3])
{
    out[0] = process_cpu_secs(st->gateway_pid);
    out[1] = 0;
    for (size_t i = 0; i < st->n; i++)
        out[1] += process_cpu_secs(st->enclave_pid[i]);
    out[2] = process_cpu_secs(getpid());
}

static struct result run_case(const struct stack *st, const struct client_keygen *k,
                              unsigned threads, unsigned seconds)
{
    const char *url = st->base_url;
    double cpu0[3], cpu1[3];
    stack_cpu(st, cpu0);
    struct run runs[MAX_THREADS];
    pthread_t t[MAX_THREADS];
    uint64_t start = clock_now_ms();
    for (unsigned i = 0; i < threads; i++) {
        runs[i] = (struct run){.base_url = url,
                               .k = k,
                               .until_ms = start + seconds * 1000u,
                               .cap = MAX_SAMPLES / threads};
        runs[i].lat_ns = calloc(runs[i].cap, sizeof(uint64_t));
        pthread_create(&t[i], NULL, client_main, &runs[i]);
    }
    uint64_t *all = calloc(MAX_SAMPLES, sizeof(uint64_t));
    struct result res = {0};
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        memcpy(all + res.n, runs[i].lat_ns, runs[i].n * sizeof(uint64_t));
        res.n += runs[i].n;
        res.failures += runs[i].failures;
        if (runs[i].failures)
            fprintf(stderr, "failure: %s\n", runs[i].last_error);
        free(runs[i].lat_ns);
    }
    double wall = (double)(clock_now_ms() - start) / 1000.0;
    qsort(all, res.n, sizeof(*all), cmp_u64);
    res.rate = (double)res.n / wall;
    if (res.n > 0) {
        res.p50_ms = (double)all[res.n / 2] / 1e6;
        res.p99_ms = (double)all[(res.n * 99) / 100] / 1e6;
    }
    free(all);
    stack_cpu(st, cpu1);
    for (int i = 0; i < 3 && res.n > 0; i++)
        res.cpu_ms[i] = (cpu1[i] - cpu0[i]) * 1000.0 / (double)res.n;
    return res;
}

/* The crypto of one 3-party signing, in-process: the floor the system
 * cannot go below. Returns ns per signing (median of rounds). */
static double crypto_baseline(const struct client_keygen *k)
{
    uint8_t pks[3][33];
    for (int i = 0; i < 3; i++)
        memcpy(pks[i], k->users[i].kp.pubkey, 33);
    musig_key_sort(pks, 3);
    struct musig_keyagg *ka;
    if (musig_keyagg_new(&ka, NULL, (const uint8_t(*)[33])pks, 3) != KM_OK)
        abort();
    enum { ROUNDS = 400 };
    uint64_t best[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        uint8_t msg[32], agg_x[32], sig[64];
        if (secure_random(msg, 32) != KM_OK)
            abort();
        musig_keyagg_xonly(ka, agg_x);
        uint64_t t0 = clock_now_ns();
        struct musig_secnonce *sn[3];
        uint8_t pn[3][66], psig[3][32];
        struct musig_pubnonce pubs[3], ordered[3];
        struct musig_aggnonce an;
        struct musig_session s;
        for (int i = 0; i < 3; i++) {
            if (musig_nonce_gen(&sn[i], pn[i], &k->users[i].kp, agg_x, msg, 32, NULL, 0) != KM_OK ||
                musig_pubnonce_parse(&pubs[i], pn[i], 66) != KM_OK)
                abort();
        }
        if (musig_nonce_agg(&an, NULL, pubs, 3) != KM_OK ||
            musig_session_init(&s, ka, &an, msg, 32, NULL, 0) != KM_OK)
            abort();
        for (int i = 0; i < 3; i++) {
            size_t idx;
            if (musig_keyagg_find(ka, k->users[i].kp.pubkey, &idx) != KM_OK ||
                musig_partial_sign(psig[idx], NULL, sn[i], &k->users[i].kp, ka, &s) != KM_OK)
                abort();
            ordered[idx] = pubs[i];
            musig_secnonce_free(sn[i]);
        }
        if (musig_partial_sig_agg_verify(sig, NULL, ka, &s, ordered, (const uint8_t(*)[32])psig, 3,
                                         msg, 32) != KM_OK)
            abort();
        best[r] = clock_now_ns() - t0;
    }
    musig_keyagg_free(ka);
    qsort(best, ROUNDS, sizeof(best[0]), cmp_u64);
    return (double)best[ROUNDS / 2];
}

static void stack_fail_exit(const char *msg)
{
    fprintf(stderr, "bench_e2e: %s\n", msg);
    exit(1);
}

/* One stack (fresh database), one keygen, then each concurrency level. */
static int run_mode(bool fsync_each_commit, unsigned seconds, double *base_ns)
{
    struct stack st = {0};
    snprintf(st.bin_dir, sizeof(st.bin_dir), "%s", KM_BIN_DIR);
    st.log_level = "warn";
    st.no_fsync = !fsync_each_commit;
    stack_start(&st, 3);

    struct client_keygen k;
    struct km_error err;
    struct rest_client *c = rest_client_new(st.base_url, 30000);
    struct client_trust trust;
    if (client_keygen_new(&k, 3, NULL) != KM_OK)
        return 1;
    k.max_signing_sessions = 100000;
    stack_client_trust(&st, &trust);
    k.trust = &trust;
    int kr = client_keygen_run(c, &k, 3600, 20000, &err);
    client_trust_release(&trust);
    k.trust = NULL;
    if (kr != KM_OK) {
        fprintf(stderr, "keygen failed: %s\n", err.msg);
        rest_client_free(c);
        client_keygen_clear(&k);
        stack_stop(&st);
        return 1;
    }
    rest_client_free(c);
    if (*base_ns == 0) {
        *base_ns = crypto_baseline(&k);
        printf("baseline: the same signing's crypto in-process = %.3f ms\n", *base_ns / 1e6);
    }
    printf("\ndatabase.fsync_each_commit: %s\n", fsync_each_commit ? "true (default)" : "false");
    printf("%-8s %9s %11s %8s %8s %13s %9s %9s %9s %9s\n", "clients", "signings", "signings/s",
           "p50 ms", "p99 ms", "p50/baseline", "cpu:gw", "enclaves", "client", "failures");
    static const unsigned levels[] = {1, 2, 4, 8, 32};
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        struct result r = run_case(&st, &k, levels[i], seconds);
        if (r.failures > 0)
            st.keep_dir = true; /* the logs say why */
        printf("%-8u %9zu %11.1f %8.2f %8.2f %12.1fx %8.1fx %8.1fx %8.1fx %9u\n", levels[i], r.n,
               r.rate, r.p50_ms, r.p99_ms, r.p50_ms * 1e6 / *base_ns, r.cpu_ms[0] * 1e6 / *base_ns,
               r.cpu_ms[1] * 1e6 / *base_ns, r.cpu_ms[2] * 1e6 / *base_ns, r.failures);
    }
    client_keygen_clear(&k);
    stack_stop(&st);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned seconds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 5;
    stack_fail_hook = stack_fail_exit;
    printf("end-to-end 3-party signings: 3 enclave processes + gateway (SQLite WAL), TCP "
           "loopback, 1 message per session, %u s per case\n",
           seconds);
    double base_ns = 0;
    if (run_mode(true, seconds, &base_ns) != 0 || run_mode(false, seconds, &base_ns) != 0)
        return 1;
    return 0;
}
