/*
 * bench_e2e - full signings through the whole system: 3 enclave processes
 * and one or two gateway processes on TCP loopback, driven by concurrent
 * client threads over HTTP, for each database configuration (run in this
 * order, each on a fresh stack with a new database):
 *
 *   sqlite          one gateway, SQLite WAL, fsync_each_commit: true (default)
 *   sqlite-nofsync  one gateway, SQLite WAL, fsync_each_commit: false
 *   pg              one gateway on a throwaway PostgreSQL cluster
 *   pg2             two gateways on one throwaway PostgreSQL cluster
 *
 * One keygen (3 participants) through the first gateway, then each client
 * count in turn: every client thread loops creating a signing session of
 * one message with ?wait_ms (the reply carries the outcome), decrypting the
 * signature and verifying it (BIP-340) under the aggregate key. With two
 * gateways, client thread i uses gateway i % 2, as a load balancer without
 * stickiness spreads them (so 1 client uses only the first). Latency is
 * measured from the create request to the verified signature.
 *
 * Baseline ("base ms"), measured right before each case: the CPU time of
 * the same 3-party MuSig2 signing done in-process with the crypto library
 * only (NonceGen x3, NonceAgg, session, Sign x3, checked aggregation, final
 * verify), so the ratios show what the distribution (HTTP, database,
 * enclave links, encryption) costs on top.
 *
 * CPU per signing of each side, from /proc, as a multiple of the baseline:
 * on a shared machine these ratios move far less than rates do, and on 2
 * cores the gateways, enclaves and database compete for the same CPU, so
 * where it goes says what bounds the rate. "db" is the PostgreSQL cluster:
 * the postmaster (with the CPU of its exited children) and every process
 * whose parent it is (backends, WAL writer, ...). "cores" is the CPU all of
 * them used over the wall time, "per core" the signings per second of that
 * CPU (signings/s / cores): what other work on the machine leaves to the
 * stack moves the rate, much less the rate per core.
 *
 * The test cluster runs PostgreSQL with fsync=off, synchronous_commit=off
 * and full_page_writes=off (tests/support/pg_cluster.c: it dies with the
 * benchmark), so its commits never wait for the disk; sqlite-nofsync is the
 * nearest SQLite equivalent.
 *
 *   bench_e2e [seconds per case] [--backends LIST] [--clients LIST] [--batch N]
 *     seconds   default 5
 *     --batch N every signing session signs N messages (1..100, default 1);
 *               the rows then also report messages/s, and the baseline and
 *               the CPU ratios are per message (the crypto of one message's
 *               3-party signing)
 *     LIST      comma-separated: backends default sqlite,pg,pg2 (pg and pg2
 *               are skipped, with a note, when PostgreSQL is not installed
 *               and --backends was not given); clients default 1,2,4,8,32
 *
 * KEYMELD_BENCH_NONCE_POOL_SIZE=N runs the first gateway with
 * coordinator.nonce_pool_size N (0: every signing takes three rounds).
 *
 * keymeld-gateway and keymeld-enclave come from this build tree (KM_BIN_DIR,
 * set by CMake); PostgreSQL from $KEYMELD_TEST_PG_BINDIR or the system.
 */
#include <ctype.h>
#include <dirent.h>
#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/session.h"
#include "common/clock.h"
#include "common/secure.h"
#include "crypto/musig.h"
#include "crypto/schnorr.h"
#include "pg_cluster.h"
#include "stack.h"
#include "common/banned.h"

#define MAX_THREADS 64
#define MAX_SAMPLES 200000
#define MAX_LEVELS  16

/* What each configuration runs. */
struct config {
    const char *name; /* as given to --backends */
    bool postgres;
    bool two_gateways;
    bool fsync_each_commit; /* SQLite only */
    const char *title;
};

static const struct config CONFIGS[] = {
    {"sqlite", false, false, true,
     "SQLite WAL, one gateway, database.fsync_each_commit: true (the default)"},
    {"sqlite-nofsync", false, false, false,
     "SQLite WAL, one gateway, database.fsync_each_commit: false"},
    {"pg", true, false, true, "PostgreSQL, one gateway"},
    {"pg2", true, true, true,
     "PostgreSQL, two gateways on one database (client thread i -> gateway i % 2)"},
};
#define NCONFIGS (sizeof(CONFIGS) / sizeof(CONFIGS[0]))

struct options {
    unsigned seconds;
    unsigned batch; /* messages per signing session */
    bool backends_given;
    bool run[NCONFIGS];
    unsigned levels[MAX_LEVELS];
    size_t nlevels;
};

struct run {
    const char *base_url;
    unsigned batch;
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
        uint8_t msg[100][32];
        struct client_signing s;
        struct km_error err;
        if (secure_random(msg, (size_t)r->batch * 32) != KM_OK ||
            client_signing_new(&s, (const uint8_t(*)[32])msg, r->batch) != KM_OK)
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

/* Where CPU is counted: one slot per side of the system. */
enum { CPU_GW1, CPU_GW2, CPU_ENCLAVES, CPU_DB, CPU_CLIENT, CPU_SLOTS };

struct result {
    double rate, p50_ms, p99_ms;
    size_t n;
    unsigned failures;
    double cpu_ms[CPU_SLOTS]; /* per signing */
    double cores;             /* CPU of all slots / wall time */
};

/* From /proc/<pid>/stat: the parent, the CPU seconds (user + system) the
 * process used and those of its children it has waited for. False if the
 * process is gone. */
static bool proc_stat(pid_t pid, pid_t *ppid, double *own, double *waited)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the parenthesised command name (which may hold spaces):
     * ppid is the 4th field of the line, utime..cstime the 14th..17th. */
    const char *p = strrchr(buf, ')');
    int parent;
    unsigned long long utime, stime;
    long long cutime, cstime;
    if (p == NULL || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld",
                            &parent, &utime, &stime, &cutime, &cstime) != 5)
        return false;
    double tick = (double)sysconf(_SC_CLK_TCK);
    *ppid = parent;
    *own = (double)(utime + stime) / tick;
    *waited = (double)(cutime + cstime) / tick;
    return true;
}

static double process_cpu_secs(pid_t pid)
{
    pid_t ppid;
    double own = 0, waited;
    if (pid <= 0 || !proc_stat(pid, &ppid, &own, &waited))
        return 0;
    return own;
}

/* CPU seconds of a PostgreSQL cluster: the postmaster, the backends and
 * helpers it forked (found by their parent: they are its direct children),
 * and those that exited meanwhile, which the postmaster has reaped into its
 * children's time. A connection closing between two readings thus moves
 * its time from one term to the other without losing it. */
static double cluster_cpu_secs(pid_t postmaster)
{
    pid_t ppid;
    double own, waited;
    if (postmaster <= 0 || !proc_stat(postmaster, &ppid, &own, &waited))
        return 0;
    double total = own + waited;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return total;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
        double child, child_waited;
        if (proc_stat(pid, &ppid, &child, &child_waited) && ppid == postmaster)
            total += child + child_waited;
    }
    closedir(d);
    return total;
}

/* CPU seconds so far of each side (see the CPU_ slots). */
static void stack_cpu(const struct stack *st, double out[CPU_SLOTS])
{
    out[CPU_GW1] = process_cpu_secs(st->gateway_pid);
    out[CPU_GW2] = process_cpu_secs(st->gateway2_pid);
    out[CPU_ENCLAVES] = 0;
    for (size_t i = 0; i < st->n; i++)
        out[CPU_ENCLAVES] += process_cpu_secs(st->enclave_pid[i]);
    out[CPU_DB] = st->pg != NULL ? cluster_cpu_secs(st->pg->pid) : 0;
    out[CPU_CLIENT] = process_cpu_secs(getpid());
}

static struct result run_case(const struct stack *st, const struct client_keygen *k,
                              unsigned threads, unsigned seconds, unsigned batch)
{
    /* With a second gateway, odd threads use it. */
    const char *urls[2] = {st->base_url, st->gateway2_pid > 0 ? st->base_url2 : st->base_url};
    double cpu0[CPU_SLOTS], cpu1[CPU_SLOTS];
    stack_cpu(st, cpu0);
    struct run runs[MAX_THREADS];
    pthread_t t[MAX_THREADS];
    uint64_t start = clock_now_ms();
    for (unsigned i = 0; i < threads; i++) {
        runs[i] = (struct run){.base_url = urls[i % 2],
                               .batch = batch,
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
    stack_cpu(st, cpu1);
    qsort(all, res.n, sizeof(*all), cmp_u64);
    res.rate = (double)res.n / wall;
    if (res.n > 0) {
        res.p50_ms = (double)all[res.n / 2] / 1e6;
        res.p99_ms = (double)all[(res.n * 99) / 100] / 1e6;
    }
    free(all);
    double used = 0;
    for (int i = 0; i < CPU_SLOTS; i++) {
        used += cpu1[i] - cpu0[i];
        if (res.n > 0)
            res.cpu_ms[i] = (cpu1[i] - cpu0[i]) * 1000.0 / (double)res.n;
    }
    res.cores = used / wall;
    return res;
}

/* CPU time of the calling thread: unlike wall time it leaves out the
 * time the thread waits for a core, which on a loaded 2-core machine can
 * be most of it; the CPU columns it is compared with are CPU time too. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        abort();
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The crypto of one 3-party signing, in-process: the floor the system
 * cannot go below. Returns CPU ns per signing (median of rounds). */
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
        uint64_t t0 = thread_cpu_ns();
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
        best[r] = thread_cpu_ns() - t0;
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

/* One keygen of 3 participants through the first gateway; false (with the
 * reason on stderr) if it failed. */
static bool make_keygen(struct stack *st, struct client_keygen *k)
{
    struct km_error err;
    struct client_trust trust;
    if (client_keygen_new(k, 3, NULL) != KM_OK)
        return false;
    k->max_signing_sessions = 100000;
    stack_client_trust(st, &trust);
    k->trust = &trust;
    struct rest_client *c = rest_client_new(st->base_url, 30000);
    int kr = client_keygen_run(c, k, 3600, 20000, &err);
    rest_client_free(c);
    client_trust_release(&trust);
    k->trust = NULL;
    if (kr != KM_OK) {
        fprintf(stderr, "keygen failed: %s\n", err.msg);
        client_keygen_clear(k);
        return false;
    }
    return true;
}

static void print_config_header(const struct config *cfg, unsigned batch)
{
    printf("\n== %s: %s\n", cfg->name, cfg->title);
    if (batch > 1)
        printf("   %u messages per signing session: base ms and the CPU ratios are per "
               "message\n",
               batch);
    if (cfg->postgres)
        printf("   test cluster: fsync=off, synchronous_commit=off, full_page_writes=off "
               "(commits never wait for the disk); each gateway: database.max_connections 16 "
               "+ 1 listening connection\n");
    printf("%58s  CPU per signing, x baseline (gw%s = gateways)\n", "",
           cfg->two_gateways ? " = gw1 + gw2" : "");
    printf("%-7s %7s %8s %10s %7s %7s %8s  %6s", "clients", "base ms", "signings", "signings/s",
           "p50 ms", "p99 ms", "p50/base", "gw");
    if (cfg->two_gateways)
        printf(" %6s %6s", "gw1", "gw2");
    printf(" %8s %6s %6s %6s %6s %8s %8s", "enclaves", "db", "client", "total", "cores", "per core",
           "failures");
    if (batch > 1)
        printf(" %10s", "messages/s");
    printf("\n");
}

/* With a batch, base_ns is one message's crypto, and the CPU ratios are
 * per message: CPU per signing / batch / base, and p50/base compares a
 * session's latency with the crypto of all its messages. */
static void print_row(const struct config *cfg, unsigned clients, const struct result *r,
                      double base_ns, unsigned batch)
{
    double x[CPU_SLOTS];
    for (int i = 0; i < CPU_SLOTS; i++)
        x[i] = r->cpu_ms[i] * 1e6 / base_ns / batch;
    printf("%-7u %7.3f %8zu %10.1f %7.2f %7.2f %7.1fx  %5.1fx", clients, base_ns / 1e6, r->n,
           r->rate, r->p50_ms, r->p99_ms, r->p50_ms * 1e6 / base_ns / batch,
           x[CPU_GW1] + x[CPU_GW2]);
    if (cfg->two_gateways)
        printf(" %5.1fx %5.1fx", x[CPU_GW1], x[CPU_GW2]);
    double total = 0;
    for (int i = 0; i < CPU_SLOTS; i++)
        total += x[i];
    printf(" %7.1fx %5.1fx %5.1fx %5.1fx %6.2f %8.0f %8u", x[CPU_ENCLAVES], x[CPU_DB],
           x[CPU_CLIENT], total, r->cores, r->cores > 0 ? r->rate / r->cores : 0, r->failures);
    if (batch > 1)
        printf(" %10.1f", r->rate * batch);
    printf("\n");
    fflush(stdout);
}

/* KEYMELD_BENCH_NONCE_POOL_SIZE=N: the first gateway runs with
 * coordinator.nonce_pool_size N (0 = pools off) instead of the default,
 * for comparing the two signing paths in one session. The stack's config
 * gets the key and the gateway is restarted with it. */
static void apply_pool_size(struct stack *st)
{
    const char *v = getenv("KEYMELD_BENCH_NONCE_POOL_SIZE");
    char *end = NULL;
    if (v == NULL || v[0] == '\0')
        return;
    long size = strtol(v, &end, 10);
    if (*end != '\0' || size < 0 || size > 128) {
        fprintf(stderr, "KEYMELD_BENCH_NONCE_POOL_SIZE must be 0..128\n");
        exit(2);
    }
    FILE *f = fopen(st->config_path, "rb");
    char text[16384];
    size_t n = f != NULL ? fread(text, 1, sizeof(text) - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    text[n] = '\0';
    const char *key = "coordinator:\n";
    char *at = strstr(text, key);
    f = at != NULL ? fopen(st->config_path, "wb") : NULL;
    if (f == NULL) {
        fprintf(stderr, "cannot set nonce_pool_size in %s\n", st->config_path);
        exit(1);
    }
    at += strlen(key);
    fwrite(text, 1, (size_t)(at - text), f);
    fprintf(f, "  nonce_pool_size: %ld\n", size);
    fputs(at, f);
    fclose(f);
    stack_kill_gateway(st);
    stack_start_gateway(st);
    printf("# gateway 1: coordinator.nonce_pool_size %ld\n", size);
}

/* One configuration: a fresh stack (and database), one keygen, then each
 * client count, each after its own baseline. */
static int run_config(const struct config *cfg, const struct options *o)
{
    struct stack st = {0};
    /* KEYMELD_BENCH_BIN_DIR runs another build's keymeld-gateway and
     * keymeld-enclave (an older commit's, say) under this benchmark, so two
     * builds can be measured alternately with the same client. */
    const char *bin = getenv("KEYMELD_BENCH_BIN_DIR");
    snprintf(st.bin_dir, sizeof(st.bin_dir), "%s", bin != NULL && bin[0] ? bin : KM_BIN_DIR);
    /* KEYMELD_BENCH_LOG_LEVEL=debug (with KEYMELD_TEST_KEEP_DIRS=1) leaves
     * per-command timings in the logs, for finding where a signing waits. */
    st.log_level = getenv("KEYMELD_BENCH_LOG_LEVEL") ? getenv("KEYMELD_BENCH_LOG_LEVEL") : "warn";
    st.no_fsync = !cfg->fsync_each_commit;
    /* The audit log as in production: every line synced, unless the
     * configuration measures fsync off. */
    st.audit_fsync = cfg->fsync_each_commit;
    st.postgres = cfg->postgres;
    stack_start(&st, 3);
    apply_pool_size(&st);
    if (cfg->two_gateways)
        stack_start_gateway2(&st);
    struct client_keygen k;
    if (!make_keygen(&st, &k)) {
        stack_stop(&st);
        return 1;
    }
    print_config_header(cfg, o->batch);
    for (size_t i = 0; i < o->nlevels; i++) {
        /* Measured again right before each case: the load other work puts
         * on a shared machine drifts within a run of a few minutes, and a
         * ratio is only as good as its baseline's timing. */
        double base_ns = crypto_baseline(&k);
        struct result r = run_case(&st, &k, o->levels[i], o->seconds, o->batch);
        if (r.failures > 0)
            st.keep_dir = true; /* the logs say why */
        print_row(cfg, o->levels[i], &r, base_ns, o->batch);
    }
    client_keygen_clear(&k);
    stack_stop(&st);
    return 0;
}

/* Whether pg_cluster.c will find a PostgreSQL server (the same places it
 * looks), so a default run can skip the PostgreSQL configurations on a
 * machine without one instead of failing. */
static bool postgres_installed(void)
{
    const char *env = getenv("KEYMELD_TEST_PG_BINDIR");
    char path[4096];
    if (env != NULL && env[0] != '\0') {
        snprintf(path, sizeof(path), "%s/postgres", env);
        return access(path, X_OK) == 0;
    }
    glob_t g;
    bool found = glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) == 0;
    if (found)
        globfree(&g);
    const char *p = getenv("PATH");
    while (!found && p != NULL && *p != '\0') {
        size_t len = strcspn(p, ":");
        snprintf(path, sizeof(path), "%.*s/postgres", (int)len, p);
        found = len > 0 && access(path, X_OK) == 0;
        p += len + (p[len] == ':');
    }
    return found;
}

static void usage_exit(const char *why)
{
    if (why != NULL)
        fprintf(stderr, "bench_e2e: %s\n", why);
    fprintf(stderr,
            "usage: bench_e2e [seconds per case] [--backends LIST] [--clients LIST] "
            "[--batch N]\n"
            "  --backends  comma-separated of sqlite, sqlite-nofsync, pg, pg2 "
            "(default sqlite,pg,pg2)\n"
            "  --clients   comma-separated client thread counts, 1..%d "
            "(default 1,2,4,8,32)\n"
            "  --batch     messages per signing session, 1..100 (default 1)\n",
            MAX_THREADS);
    exit(why != NULL ? 2 : 0);
}

static void parse_backends(struct options *o, const char *list)
{
    memset(o->run, 0, sizeof(o->run));
    o->backends_given = true;
    for (const char *p = list; *p != '\0';) {
        size_t len = strcspn(p, ",");
        size_t i = 0;
        while (i < NCONFIGS &&
               !(strlen(CONFIGS[i].name) == len && strncmp(CONFIGS[i].name, p, len) == 0))
            i++;
        if (i == NCONFIGS)
            usage_exit("unknown backend in --backends");
        o->run[i] = true;
        p += len + (p[len] == ',');
    }
    if (list[0] == '\0')
        usage_exit("--backends is empty");
}

static void parse_clients(struct options *o, const char *list)
{
    o->nlevels = 0;
    for (const char *p = list; *p != '\0';) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0') || v < 1 || v > MAX_THREADS ||
            o->nlevels == MAX_LEVELS)
            usage_exit("--clients takes up to 16 comma-separated counts of 1..64");
        o->levels[o->nlevels++] = (unsigned)v;
        p = end + (*end == ',');
    }
    if (o->nlevels == 0)
        usage_exit("--clients is empty");
}

static void parse_batch(struct options *o, const char *a)
{
    char *end;
    unsigned long v = strtoul(a, &end, 10);
    if (!isdigit((unsigned char)a[0]) || *end != '\0' || v < 1 || v > 100)
        usage_exit("--batch takes a message count of 1..100");
    o->batch = (unsigned)v;
}

/* The positional argument: seconds per case, 1..3600. */
static bool parse_seconds(struct options *o, const char *a)
{
    char *end;
    unsigned long v = strtoul(a, &end, 10);
    if (!isdigit((unsigned char)a[0]) || *end != '\0' || v < 1 || v > 3600)
        return false;
    o->seconds = (unsigned)v;
    return true;
}

static void parse_options(struct options *o, int argc, char **argv)
{
    static const unsigned default_levels[] = {1, 2, 4, 8, 32};
    *o = (struct options){.seconds = 5, .batch = 1, .nlevels = 5};
    memcpy(o->levels, default_levels, sizeof(default_levels));
    for (size_t i = 0; i < NCONFIGS; i++)
        o->run[i] = strcmp(CONFIGS[i].name, "sqlite-nofsync") != 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            usage_exit(NULL);
        else if (strcmp(a, "--backends") == 0 && i + 1 < argc)
            parse_backends(o, argv[++i]);
        else if (strncmp(a, "--backends=", 11) == 0)
            parse_backends(o, a + 11);
        else if (strcmp(a, "--clients") == 0 && i + 1 < argc)
            parse_clients(o, argv[++i]);
        else if (strncmp(a, "--clients=", 10) == 0)
            parse_clients(o, a + 10);
        else if (strcmp(a, "--batch") == 0 && i + 1 < argc)
            parse_batch(o, argv[++i]);
        else if (strncmp(a, "--batch=", 8) == 0)
            parse_batch(o, a + 8);
        else if (!parse_seconds(o, a))
            usage_exit("unknown argument");
    }
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(&o, argc, argv);
    stack_fail_hook = stack_fail_exit;
    /* The configurations say which database each stack gets; the ctest
     * variable that would put every stack on PostgreSQL must not. */
    unsetenv("KEYMELD_TEST_DB");
    if (!o.backends_given && !postgres_installed()) {
        printf("PostgreSQL server binaries not found (scripts/install-deps): pg and pg2 "
               "skipped\n");
        for (size_t i = 0; i < NCONFIGS; i++)
            o.run[i] = o.run[i] && !CONFIGS[i].postgres;
    }
    printf("end-to-end 3-party signings: 3 enclave processes + gateway(s), TCP loopback, "
           "%u message(s) per session, %u s per case\n",
           o.batch, o.seconds);
    for (size_t i = 0; i < NCONFIGS; i++)
        if (o.run[i] && run_config(&CONFIGS[i], &o) != 0)
            return 1;
    return 0;
}
