/*
 * bench_enclave - 3-party MuSig2 signing sessions per second driven over
 * the enclave protocol: three keymeld-enclave processes on 127.0.0.1 (TCP),
 * one participant each, one keygen; then signing sessions of one message
 * (signing_init x3, signing_distribute_nonces x3, signing_finalize x1, the
 * driver opening and verifying the signature) with 1 and with 16 sessions
 * in flight.
 *
 * Beside them, measured in the same run: a `ping` round trip to one
 * enclave (the floor of every protocol round), and the baseline, the
 * crypto-only cost of the same
 * signing as three enclaves do it (3 NonceGen; per enclave: parse the 3
 * public nonces, NonceAgg, session values, Sign, verify its own partial
 * signature; the coordinator's checked aggregation), on one thread. The
 * ratio column is (crypto-only time per session) / (wall time per session).
 *
 * Each figure is the median of ROUNDS rounds. These are shared 2-core VMs:
 * compare ratios, not absolute numbers (docs/PERFORMANCE.md).
 *
 * Usage: bench_enclave [sessions per round]   (default 200)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "crypto/musig.h"
#include "crypto/taproot.h"
#include "procs.h"
#include "common/banned.h"

#define ROUNDS 5

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return v[n / 2];
}

static void must(int r, const struct km_error *err, const char *what)
{
    if (r != KM_OK) {
        fprintf(stderr, "bench_enclave: %s failed: %s\n", what, err ? err->msg : km_strerror(r));
        exit(1);
    }
}

/* ---- Crypto-only baseline ---------------------------------------------- */

struct base {
    struct keypair kp[3];
    struct musig_keyagg *ka;
    uint8_t aggpk[32];
};

static void base_init(struct base *b)
{
    uint8_t pks[3][33];
    for (int i = 0; i < 3; i++) {
        must(keypair_generate(&b->kp[i]), NULL, "keypair");
        memcpy(pks[i], b->kp[i].pubkey, 33);
    }
    musig_key_sort(pks, 3);
    must(musig_keyagg_new(&b->ka, NULL, (const uint8_t(*)[33])pks, 3), NULL, "keyagg");
    must(taproot_musig_tweak(b->ka, NULL), NULL, "tweak");
    musig_keyagg_xonly(b->ka, b->aggpk);
}

/* One 3-party signing as the three enclaves compute it. */
static void base_session(const struct base *b, const uint8_t msg[32])
{
    struct musig_secnonce *sn[3];
    uint8_t pub[3][66], psig[3][32], sig[64];
    struct musig_pubnonce pn[3];
    struct musig_aggnonce agg;
    struct musig_session s;
    size_t idx[3];
    for (int i = 0; i < 3; i++) {
        must(musig_nonce_gen(&sn[i], pub[i], &b->kp[i], b->aggpk, msg, 32, NULL, 0), NULL,
             "nonce_gen");
        must(musig_keyagg_find(b->ka, b->kp[i].pubkey, &idx[i]), NULL, "find");
    }
    for (int e = 0; e < 3; e++) { /* every enclave, for its signer */
        struct musig_pubnonce mine[3];
        for (int i = 0; i < 3; i++)
            must(musig_pubnonce_parse(&mine[idx[i]], pub[i], 66), NULL, "parse");
        must(musig_nonce_agg(&agg, NULL, mine, 3), NULL, "nonce_agg");
        must(musig_session_init(&s, b->ka, &agg, msg, 32, NULL, 0), NULL, "session");
        must(musig_partial_sign(psig[idx[e]], NULL, sn[e], &b->kp[e], b->ka, &s), NULL, "sign");
        must(musig_partial_sig_verify(psig[idx[e]], 32, &mine[idx[e]], b->ka, idx[e], &s), NULL,
             "verify own");
        memcpy(pn, mine, sizeof(pn));
        musig_secnonce_free(sn[e]);
    }
    must(musig_partial_sig_agg_verify(sig, NULL, b->ka, &s, pn, (const uint8_t(*)[32])psig, 3, msg,
                                      32),
         NULL, "agg_verify");
}

static double base_ns_per_session(const struct base *b, unsigned n)
{
    uint8_t msg[32] = {1};
    uint64_t t0 = clock_now_ns();
    for (unsigned i = 0; i < n; i++) {
        msg[0] = (uint8_t)i;
        base_session(b, msg);
    }
    return (double)(clock_now_ns() - t0) / n;
}

/* ---- Over the protocol ----------------------------------------------------- */

struct job {
    struct drv *d;
    struct drv_keygen *kg;
    unsigned n; /* sessions for this thread */
};

static void *signer(void *arg)
{
    struct job *j = arg;
    for (unsigned i = 0; i < j->n; i++) {
        struct drv_signing sg;
        struct km_error err;
        drv_signing_setup(&sg, 1);
        must(drv_sign_run(j->d, j->kg, &sg, &err), &err, "signing session");
        drv_signing_release(&sg);
    }
    return NULL;
}

/* Nanoseconds per ping round trip to enclave 0, one at a time. */
static double ping_ns(struct procs *p, unsigned n)
{
    struct km_error err;
    uint64_t rtt, t0 = clock_now_ns();
    for (unsigned i = 0; i < n; i++)
        must(pool_ping(p->pools.pool[0], &rtt, 5000, &err), &err, "ping");
    return (double)(clock_now_ns() - t0) / n;
}

/* Wall nanoseconds per session with `inflight` sessions at a time. */
static double protocol_ns_per_session(struct drv *d, struct drv_keygen *kg, unsigned inflight,
                                      unsigned sessions)
{
    pthread_t th[16];
    struct job jobs[16];
    unsigned per = sessions / inflight;
    uint64_t t0 = clock_now_ns();
    for (unsigned i = 0; i < inflight; i++) {
        jobs[i] = (struct job){.d = d, .kg = kg, .n = per};
        if (pthread_create(&th[i], NULL, signer, &jobs[i]) != 0)
            must(KM_ERR_INTERNAL, NULL, "pthread_create");
    }
    for (unsigned i = 0; i < inflight; i++)
        pthread_join(th[i], NULL);
    return (double)(clock_now_ns() - t0) / (per * inflight);
}

int main(int argc, char **argv)
{
    unsigned sessions = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 200;
    if (sessions < 16)
        sessions = 16;
    char dir[] = "/tmp/km_bench_enclave_XXXXXX";
    struct procs p;
    struct drv d;
    struct drv_link link;
    struct drv_keygen kg;
    struct km_error err;
    static const char *const env[] = {"ENCLAVE_MAX_SESSIONS=100000", NULL};
    if (mkdtemp(dir) == NULL)
        must(KM_ERR_IO, NULL, "mkdtemp");
    must(procs_start(&p, 3, dir, "info", env, &err), &err, "starting the enclaves");
    drv_link_pools(&link, &p.pools);
    must(drv_init(&d, &link, 3, &err), &err, "configure");
    drv_keygen_setup(&kg, 3, 3);
    kg.has_tweak = true;
    kg.tweak.type = PROTO_TWEAK_UNSPENDABLE_TAPROOT;
    must(drv_keygen_run(&d, &kg, &err), &err, "keygen");
    struct base b;
    base_init(&b);

    static const unsigned modes[] = {1, 16};
    double base_r[ROUNDS], ping_r[ROUNDS], proto_r[2][ROUNDS];
    protocol_ns_per_session(&d, &kg, 16, 32); /* warm the pools' connections */
    for (int r = 0; r < ROUNDS; r++) {
        base_r[r] = base_ns_per_session(&b, sessions / 4);
        ping_r[r] = ping_ns(&p, sessions);
        for (size_t m = 0; m < 2; m++)
            proto_r[m][r] = protocol_ns_per_session(&d, &kg, modes[m], sessions);
    }
    double base_ns = median(base_r, ROUNDS);
    printf("bench_enclave: 3 enclaves on 127.0.0.1 (TCP), 3 participants, 1 message per "
           "session; median of %d rounds of %u sessions\n",
           ROUNDS, sessions);
    printf("%-34s %12s %12s %10s\n", "", "sessions/s", "ms/session", "x crypto");
    printf("%-34s %12.1f %12.3f %10.2f\n", "crypto only (1 thread, baseline)", 1e9 / base_ns,
           base_ns / 1e6, 1.0);
    double ping = median(ping_r, ROUNDS);
    printf("%-34s %12s %12.3f %10.2f\n", "ping round trip (1 enclave)", "-", ping / 1e6,
           ping / base_ns);
    for (size_t m = 0; m < 2; m++) {
        double ns = median(proto_r[m], ROUNDS);
        char label[64];
        snprintf(label, sizeof(label), "over the protocol, %u in flight", modes[m]);
        printf("%-34s %12.1f %12.3f %10.2f\n", label, 1e9 / ns, ns / 1e6, ns / base_ns);
    }
    for (int i = 0; i < 3; i++)
        keypair_clear(&b.kp[i]);
    musig_keyagg_free(b.ka);
    drv_keygen_release(&kg);
    int bad = procs_stop(&p);
    for (size_t i = 0; i < 3; i++)
        unlink(p.log[i]);
    rmdir(dir);
    return bad ? 1 : 0;
}
