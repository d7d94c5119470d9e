#include "procs.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/xmalloc.h"
#include "transport/addr.h"
#include "process_spawn.h"
#include "common/banned.h"

#define LISTEN_LINE "TCP server listening on 127.0.0.1:"

const char *procs_binary(void)
{
    const char *b = getenv("KEYMELD_ENCLAVE_BIN");
    return b != NULL && b[0] != '\0' ? b : KM_ENCLAVE_BIN;
}

char *procs_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* Our enclave settings replace inherited ones; the rest of the
 * environment (sanitizer options, PATH) is kept. */
static const char *const enclave_settings[] = {
    "TRANSPORT_MODE=",    "VSOCK_PORT=",         "ENCLAVE_ID=",
    "ENCLAVE_CID=",       "TCP_HOST=",           "UNIX_PATH=",
    "KEYMELD_LOG_LEVEL=", "KEYMELD_LOG_FORMAT=", NULL};

static pid_t spawn(const char *log, size_t id, const char *level, const char *const *extra)
{
    char idv[32], lv[64];
    snprintf(idv, sizeof(idv), "ENCLAVE_ID=%zu", id);
    snprintf(lv, sizeof(lv), "KEYMELD_LOG_LEVEL=%s", level);
    size_t m = 0;
    while (extra != NULL && extra[m] != NULL)
        m++;
    const char **env = XALLOC_ARRAY(const char *, m + 6);
    size_t k = 0;
    env[k++] = "TRANSPORT_MODE=tcp";
    env[k++] = "TCP_HOST=127.0.0.1";
    env[k++] = "VSOCK_PORT=0";
    env[k++] = idv;
    env[k++] = lv;
    for (size_t i = 0; i < m; i++)
        env[k++] = extra[i];
    env[k] = NULL;
    char *argv[] = {(char *)(uintptr_t)procs_binary(), NULL};
    pid_t pid = spawn_process(argv[0], argv, env, enclave_settings, log, false);
    free(env);
    return pid;
}

/* Waits for the start-up line in log; 0 if the process died or 10 s passed. */
static uint32_t wait_port(const char *log, pid_t pid)
{
    struct deadline dl = deadline_in_ms(10000);
    while (!deadline_expired(dl)) {
        char *text = procs_read_file(log, NULL);
        const char *p = text ? strstr(text, LISTEN_LINE) : NULL;
        unsigned long port = p ? strtoul(p + strlen(LISTEN_LINE), NULL, 10) : 0;
        free(text);
        if (port > 0 && port < 65536)
            return (uint32_t)port;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return 0;
        clock_sleep_ms(10);
    }
    return 0;
}

int procs_start(struct procs *p, size_t n, const char *dir, const char *log_level,
                const char *const *extra_env, struct km_error *err)
{
    memset(p, 0, sizeof(*p));
    if (n > DRV_MAX_ENCLAVES)
        KM_BUG("too many enclaves");
    for (size_t i = 0; i < n; i++, p->n++) {
        snprintf(p->log[i], sizeof(p->log[i]), "%s/enclave-%zu.log", dir, i);
        p->pid[i] = spawn(p->log[i], i, log_level, extra_env);
        p->port[i] = p->pid[i] > 0 ? wait_port(p->log[i], p->pid[i]) : 0;
        struct tp_addr a;
        if (p->port[i] == 0 || tp_addr_tcp(&a, "127.0.0.1", p->port[i], err) != KM_OK) {
            p->n++;
            procs_stop(p);
            return km_error_set(err, KM_ERR_IO, 0, "enclave %zu did not start (see %s)", i,
                                p->log[i]);
        }
        p->pools.pool[i] = pool_new(&a, NULL);
    }
    p->pools.n = n;
    p->pools.timeout_ms = 60000;
    return KM_OK;
}

int procs_stop(struct procs *p)
{
    int bad = 0;
    for (size_t i = 0; i < p->n; i++) {
        pool_free(p->pools.pool[i]);
        p->pools.pool[i] = NULL;
        if (p->pid[i] > 0)
            kill(p->pid[i], SIGTERM);
    }
    for (size_t i = 0; i < p->n; i++) {
        if (p->pid[i] <= 0)
            continue;
        int status = 0;
        struct deadline dl = deadline_in_ms(10000);
        pid_t w;
        while ((w = waitpid(p->pid[i], &status, WNOHANG)) == 0 && !deadline_expired(dl))
            clock_sleep_ms(10);
        if (w == 0) {
            kill(p->pid[i], SIGKILL);
            waitpid(p->pid[i], &status, 0);
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            bad++;
        p->pid[i] = 0;
    }
    return bad;
}
