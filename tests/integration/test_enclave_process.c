/*
 * test_enclave_process.c - keymeld-enclave as a process: --help and
 * --version, configuration errors naming the variable, a bind failure
 * naming the address and cause, the VSock start-up line (bind only, never
 * connect; an ephemeral port, so none of this VM's agent ports), Unix and
 * TCP listeners, the ENCLAVE_CID check, production refusing to start
 * without the Nitro Secure Module, and a SIGTERM that lets an
 * in-flight command finish and reply before the enclave exits 0.
 */
#include "test.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "procs.h"
#include "common/banned.h"

extern char **environ;

struct run {
    int status; /* exit code, or -1 */
    char *out;
    char *err;
};

/* Runs the enclave with extra environment and args until it exits (or
 * SIGTERM after stop_after_ms, if non-zero, once `until` appears in
 * stderr). */
static struct run run_enclave(const char *const *args, const char *const *vars, const char *until)
{
    char out_path[] = "/tmp/km_proc_out_XXXXXX", err_path[] = "/tmp/km_proc_err_XXXXXX";
    int ofd = mkstemp(out_path), efd = mkstemp(err_path);
    CHECK(ofd >= 0 && efd >= 0);
    char *argv[8], *envp[64];
    size_t n = 0, m = 0;
    argv[n++] = (char *)(uintptr_t)procs_binary();
    for (size_t i = 0; args && args[i] && n < 7; i++)
        argv[n++] = (char *)(uintptr_t)args[i];
    argv[n] = NULL;
    for (size_t i = 0; environ[i] && m < 40; i++)
        if (strncmp(environ[i], "ASAN_", 5) == 0 || strncmp(environ[i], "UBSAN_", 6) == 0 ||
            strncmp(environ[i], "LSAN_", 5) == 0 || strncmp(environ[i], "PATH=", 5) == 0)
            envp[m++] = environ[i];
    for (size_t i = 0; vars && vars[i] && m < 62; i++)
        envp[m++] = (char *)(uintptr_t)vars[i];
    envp[m] = NULL;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    struct run r = {.status = -1};
    int status = 0;
    struct deadline dl = deadline_in_ms(15000);
    bool signalled = false;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (deadline_expired(dl)) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        if (until && !signalled) {
            char *text = procs_read_file(err_path, NULL);
            if (text && strstr(text, until)) {
                kill(pid, SIGTERM);
                signalled = true;
            }
            free(text);
        }
        clock_sleep_ms(10);
    }
    if (WIFEXITED(status))
        r.status = WEXITSTATUS(status);
    r.out = procs_read_file(out_path, NULL);
    r.err = procs_read_file(err_path, NULL);
    close(ofd);
    close(efd);
    unlink(out_path);
    unlink(err_path);
    return r;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static void test_help_version_usage(void **state)
{
    (void)state;
    const char *help[] = {"--help", NULL}, *ver[] = {"--version", NULL};
    struct run r = run_enclave(help, NULL, NULL);
    CHECK_EQ(r.status, 0);
    CHECK_CONTAINS(r.out, "TRANSPORT_MODE");
    CHECK_CONTAINS(r.out, "VSOCK_PORT");
    CHECK_CONTAINS(r.out, "ENCLAVE_CID");
    run_free(&r);
    r = run_enclave(ver, NULL, NULL);
    CHECK_EQ(r.status, 0);
    CHECK_CONTAINS(r.out, "keymeld-enclave " KM_VERSION);
    run_free(&r);
    const char *bad_mode[] = {"TRANSPORT_MODE=carrier-pigeon", NULL};
    r = run_enclave(NULL, bad_mode, NULL);
    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, "invalid TRANSPORT_MODE 'carrier-pigeon'");
    run_free(&r);
    const char *bad_port[] = {"VSOCK_PORT=50o0", NULL};
    r = run_enclave(NULL, bad_port, NULL);
    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, "invalid VSOCK_PORT '50o0'");
    run_free(&r);
    const char *bad_flag[] = {"--prot", "5000", NULL};
    r = run_enclave(bad_flag, NULL, NULL);
    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, "unknown option '--prot'");
    run_free(&r);
    const char *no_path[] = {"--transport", "unix", NULL};
    r = run_enclave(no_path, NULL, NULL);
    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, "needs UNIX_PATH");
    run_free(&r);

    /* The front door's limits: documented, and checked. */
    r = run_enclave(help, NULL, NULL);
    CHECK_CONTAINS(r.out, "ENCLAVE_IDLE_TIMEOUT_SECS] (default 300; 0 = never)");
    CHECK_CONTAINS(r.out, "ENCLAVE_MAX_CONNECTIONS]");
    CHECK_CONTAINS(r.out, "ENCLAVE_MAX_BUFFERED_BYTES] (default 67108864");
    run_free(&r);
    const char *small_budget[] = {"ENCLAVE_MAX_BUFFERED_BYTES=1048576", NULL};
    r = run_enclave(NULL, small_budget, NULL);
    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, "invalid ENCLAVE_MAX_BUFFERED_BYTES '1048576'");
    run_free(&r);
    const char *no_conns[] = {"--max-connections", "0", NULL};
    r = run_enclave(no_conns, NULL, NULL);
    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, "invalid --max-connections '0'");
    run_free(&r);
    const char *bad_idle[] = {"--idle-timeout", "5m", NULL};
    r = run_enclave(bad_idle, NULL, NULL);
    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, "invalid --idle-timeout '5m'");
    run_free(&r);
}

static void test_bind_failure(void **state)
{
    (void)state;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    CHECK_EQ(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK_EQ(listen(s, 1), 0);
    CHECK_EQ(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    char port[32], want[96];
    snprintf(port, sizeof(port), "VSOCK_PORT=%u", ntohs(sa.sin_port));
    snprintf(want, sizeof(want), "Failed to bind TCP listener on tcp://127.0.0.1:%u",
             ntohs(sa.sin_port));
    const char *vars[] = {"TRANSPORT_MODE=tcp", port, NULL};
    struct run r = run_enclave(NULL, vars, NULL);
    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, want);
    CHECK_CONTAINS(r.err, "Address already in use");
    run_free(&r);
    close(s);
}

/* Production means the Nitro Secure Module: without /dev/nsm (any machine
 * but a Nitro Enclave) the enclave refuses to start and says what to do;
 * other providers are refused in production outright. */
static void test_production_requires_nsm(void **state)
{
    (void)state;
    const char *prod[] = {"KEYMELD_ENVIRONMENT=production", "TRANSPORT_MODE=tcp", "VSOCK_PORT=0",
                          NULL};
    struct run r = run_enclave(NULL, prod, NULL);
    CHECK_EQ(r.status, 1);
    CHECK_CONTAINS(r.err, "refusing to start: ATTESTATION=nsm: /dev/nsm does not exist");
    CHECK_CONTAINS(r.err, "not an AWS Nitro Enclave");
    run_free(&r);
    const char *dev[] = {"KEYMELD_ENVIRONMENT=production", "ATTESTATION=development",
                         "TRANSPORT_MODE=tcp", "VSOCK_PORT=0", NULL};
    r = run_enclave(NULL, dev, NULL);
    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, "KEYMELD_ENVIRONMENT=production requires ATTESTATION=nsm");
    run_free(&r);
    const char *no_ca[] = {"ATTESTATION=development", "TRANSPORT_MODE=tcp", "VSOCK_PORT=0", NULL};
    r = run_enclave(NULL, no_ca, NULL);
    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, "needs ATTESTATION_DEV_CA");
    run_free(&r);
    const char *bad[] = {"ATTESTATION=tpm", NULL};
    r = run_enclave(NULL, bad, NULL);
    CHECK_EQ(r.status, 2);
    CHECK_CONTAINS(r.err, "invalid ATTESTATION 'tpm'");
    run_free(&r);
}

static void test_listeners_and_cid(void **state)
{
    (void)state;
    /* VSock: bind on an ephemeral port and log the line operators grep
     * for; where this kernel has no VSock, fail clearly. */
    const char *vs[] = {"VSOCK_PORT=0", "ENCLAVE_CID=77", NULL};
    struct run r = run_enclave(NULL, vs, "server listening");
    if (strstr(r.err, "VSock server listening on CID ANY, port ") != NULL) {
        CHECK_EQ(r.status, 0);
        CHECK(strstr(r.err, "ENCLAVE_CID=77 but the local CID is") != NULL ||
              strstr(r.err, "the local CID cannot be read") != NULL);
    } else {
        CHECK_EQ(r.status, 1);
        CHECK_CONTAINS(r.err, "Failed to bind VSock listener");
    }
    run_free(&r);

    /* TCP on an ephemeral port. */
    const char *tcp[] = {"TRANSPORT_MODE=tcp", "VSOCK_PORT=0", "ENCLAVE_ID=4", NULL};
    r = run_enclave(NULL, tcp, "server listening");
    CHECK_EQ(r.status, 0);
    CHECK_CONTAINS(r.err, "TCP server listening on 127.0.0.1:");
    CHECK_CONTAINS(r.err, "enclave id 4");
    CHECK_CONTAINS(r.err, "shutting down");
    run_free(&r);

    /* Unix, with flags overriding the environment. */
    char dir[] = "/tmp/km_unix_XXXXXX", path[128], want[160];
    CHECK_NOT_NULL(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/enclave.sock", dir);
    snprintf(want, sizeof(want), "Unix server listening on %s", path);
    const char *ux_args[] = {"--transport", "unix", "--unix-path", path, NULL};
    const char *ux_vars[] = {"TRANSPORT_MODE=tcp", NULL};
    r = run_enclave(ux_args, ux_vars, "server listening");
    CHECK_EQ(r.status, 0);
    CHECK_CONTAINS(r.err, want);
    run_free(&r);
    unlink(path);
    rmdir(dir);
}

/* SIGTERM while a slow command runs: it finishes and replies, then the
 * enclave exits 0. */
static void test_graceful_shutdown(void **state)
{
    (void)state;
    char dir[64];
    struct procs p;
    struct drv d;
    struct drv_link link;
    struct drv_keygen kg;
    struct drv_signing sg;
    struct km_error err;
    snprintf(dir, sizeof(dir), "/tmp/km_term_XXXXXX");
    CHECK_NOT_NULL(mkdtemp(dir));
    CHECK_OK(procs_start(&p, 2, dir, "info", NULL, &err));
    drv_link_pools(&link, &p.pools);
    CHECK_OK(drv_init(&d, &link, 2, &err));
    drv_keygen_setup(&kg, 4, 2);
    CHECK_OK(drv_keygen_run(&d, &kg, &err));
    /* 100 items x 3 "or" configs x 3 points: 900 units, 1800 NonceGen on
     * enclave 0 (two local users): still running when the signal lands. */
    drv_signing_setup(&sg, 100);
    for (size_t i = 0; i < sg.n_items; i++)
        for (size_t c = 0; c < 3; c++)
            drv_item_add_adaptor(&sg.items[i], PROTO_ADAPTOR_OR, 3);
    json_t *args = drv_signing_init_args(&kg, &sg);
    struct pool_call *call;
    struct uuid cid;
    CHECK_OK(uuid_v7_new(&cid));
    CHECK_OK(pool_call_start(p.pools.pool[0], &call, "signing_init", &cid, args,
                             deadline_in_ms(30000), &err));
    clock_sleep_ms(50);
    kill(p.pid[0], SIGTERM);
    struct env_reply rep;
    CHECK_OK(pool_call_wait(call, &rep, &err));
    CHECK(rep.ok);
    CHECK_EQ(json_integer_value(json_object_get(rep.result, "units")), 900);
    env_reply_clear(&rep);
    json_decref(args);
    CHECK_EQ(procs_stop(&p), 0);
    char *log = procs_read_file(p.log[0], NULL);
    CHECK_CONTAINS(log, "shutting down: in-flight commands done; wiping 1 keygen and 1 signing");
    free(log);
    for (size_t i = 0; i < 2; i++)
        unlink(p.log[i]);
    rmdir(dir);
    drv_signing_release(&sg);
    drv_keygen_release(&kg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_help_version_usage),      TEST(test_bind_failure),
        TEST(test_production_requires_nsm), TEST(test_listeners_and_cid),
        TEST(test_graceful_shutdown),
    };
    return RUN_TESTS("integration.enclave.process", tests);
}
