#include "pg_cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/banned.h"

/* How long a server may take to start or stop (a loaded CI machine). */
#define PG_CLUSTER_WAIT_MS 60000
/* Poll interval while waiting for the server to answer or exit. */
#define PG_CLUSTER_POLL_MS 20
/* Ports tried when the first free one is taken before the server binds. */
#define PG_CLUSTER_PORT_TRIES 5

/* The user the tools run as when we are root; NULL when not root. Looked
 * up before fork: getpwnam is not async-signal-safe. */
struct run_as {
    uid_t uid;
    gid_t gid;
    bool active;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int get_run_as(struct run_as *ra)
{
    ra->active = geteuid() == 0;
    if (!ra->active)
        return 0;
    struct passwd *pw = getpwnam("postgres");
    if (pw == NULL) {
        fprintf(stderr, "pg_cluster: running as root needs the 'postgres' system user "
                        "(scripts/install-deps installs the postgresql package)\n");
        return -1;
    }
    ra->uid = pw->pw_uid;
    ra->gid = pw->pw_gid;
    return 0;
}

/* Prints the end of a log file (why a tool or the server failed). */
static void print_log_tail(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char buf[4096];
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > (long)sizeof(buf) - 1)
            (void)fseek(f, size - (long)sizeof(buf) + 1, SEEK_SET);
        else
            rewind(f);
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "---- %s (end) ----\n%s\n----\n", path, buf);
}

static bool is_dir_with(const char *dir, const char *exe)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dir, exe);
    return access(path, X_OK) == 0;
}

/* The newest /usr/lib/postgresql/<major>/bin (numeric order: 9.6 < 15). */
static bool find_debian_bindir(char *out, size_t n)
{
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/postgres", 0, NULL, &g) != 0)
        return false;
    long best = -1;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *v = g.gl_pathv[i] + strlen("/usr/lib/postgresql/");
        long major = strtol(v, NULL, 10);
        if (major > best) {
            best = major;
            snprintf(out, n, "%.*s", (int)(strrchr(g.gl_pathv[i], '/') - g.gl_pathv[i]),
                     g.gl_pathv[i]);
        }
    }
    globfree(&g);
    return best >= 0;
}

static bool find_path_bindir(char *out, size_t n)
{
    const char *path = getenv("PATH");
    if (path == NULL)
        return false;
    for (const char *p = path; *p != '\0';) {
        size_t len = strcspn(p, ":");
        snprintf(out, n, "%.*s", (int)len, p);
        if (len > 0 && is_dir_with(out, "initdb") && is_dir_with(out, "postgres"))
            return true;
        p += len + (p[len] == ':');
    }
    return false;
}

static int find_bindir(struct pg_cluster *pc)
{
    const char *env = getenv("KEYMELD_TEST_PG_BINDIR");
    if (env != NULL && env[0] != '\0')
        snprintf(pc->bindir, sizeof(pc->bindir), "%s", env);
    else if (!find_debian_bindir(pc->bindir, sizeof(pc->bindir)) &&
             !find_path_bindir(pc->bindir, sizeof(pc->bindir)))
        pc->bindir[0] = '\0';
    if (pc->bindir[0] == '\0' || !is_dir_with(pc->bindir, "initdb") ||
        !is_dir_with(pc->bindir, "postgres")) {
        fprintf(stderr, "pg_cluster: PostgreSQL server binaries (initdb, postgres) not found in "
                        "$KEYMELD_TEST_PG_BINDIR, /usr/lib/postgresql/*/bin or PATH: run "
                        "scripts/install-deps\n");
        return -1;
    }
    return 0;
}

/* A TCP port of 127.0.0.1 that was free a moment ago. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/*
 * Starts bindir/exe with argv (NULL-terminated, argv[0] included) in the
 * cluster directory, as the postgres user when root, output appended to
 * log. The child gets SIGQUIT (PostgreSQL's immediate shutdown) when the
 * calling thread dies. Returns the pid or -1.
 */
static pid_t spawn(const struct pg_cluster *pc, const struct run_as *ra, const char *exe,
                   const char *const *argv, const char *log)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", pc->bindir, exe);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "pg_cluster: cannot open %s: %s\n", log, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Credentials first: changing them clears the parent-death signal. */
        if (ra->active && (setgroups(0, NULL) != 0 || setgid(ra->gid) != 0 || setuid(ra->uid) != 0))
            _exit(124);
        if (prctl(PR_SET_PDEATHSIG, SIGQUIT) != 0 || getppid() != parent)
            _exit(125);
        if (chdir(pc->dir) != 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(126);
        execv(path, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fd);
    if (pid < 0)
        fprintf(stderr, "pg_cluster: fork: %s\n", strerror(errno));
    return pid;
}

/* Waits for pid; -1 when it did not exit with status 0. */
static int wait_ok(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int run_initdb(const struct pg_cluster *pc, const struct run_as *ra)
{
    char data[96], log[96];
    snprintf(data, sizeof(data), "%s/data", pc->dir);
    snprintf(log, sizeof(log), "%s/initdb.log", pc->dir);
    /* C locale: no dependency on the machine's locales; no fsync: the
     * cluster dies with the test. */
    const char *const argv[] = {"initdb", "-D",   data,         "-A",
                                "trust",  "-U",   "keymeld",    "--no-sync",
                                "-E",     "UTF8", "--locale=C", "--no-instructions",
                                NULL};
    pid_t pid = spawn(pc, ra, "initdb", argv, log);
    if (pid < 0 || wait_ok(pid) != 0) {
        fprintf(stderr, "pg_cluster: initdb failed\n");
        print_log_tail(log);
        return -1;
    }
    return 0;
}

static void conninfo(const struct pg_cluster *pc, char *out, size_t n)
{
    snprintf(out, n, "host=127.0.0.1 port=%d user=keymeld dbname=postgres connect_timeout=5",
             pc->port);
}

/*
 * Waits until the server answers on TCP. 1: it exited instead (e.g. the
 * port was taken: the caller may try another), -1: timeout.
 */
static int wait_ready(struct pg_cluster *pc)
{
    char ci[128];
    conninfo(pc, ci, sizeof(ci));
    int64_t deadline = now_ms() + PG_CLUSTER_WAIT_MS;
    while (now_ms() < deadline) {
        if (PQping(ci) == PQPING_OK)
            return 0;
        int status;
        if (waitpid(pc->pid, &status, WNOHANG) == pc->pid) {
            pc->pid = 0;
            return 1;
        }
        sleep_ms(PG_CLUSTER_POLL_MS);
    }
    return -1;
}

/* Starts the postmaster on pc->port; see wait_ready for the results. */
static int launch(struct pg_cluster *pc, const struct run_as *ra)
{
    char data[96], log[96], port[16];
    snprintf(data, sizeof(data), "%s/data", pc->dir);
    snprintf(log, sizeof(log), "%s/server.log", pc->dir);
    snprintf(port, sizeof(port), "%d", pc->port);
    /* Durability off (the data dies with the test); small memory so many
     * tests can run side by side. */
    const char *const argv[] = {"postgres",
                                "-D",
                                data,
                                "-k",
                                pc->dir,
                                "-p",
                                port,
                                "-c",
                                "listen_addresses=127.0.0.1",
                                "-c",
                                "fsync=off",
                                "-c",
                                "full_page_writes=off",
                                "-c",
                                "synchronous_commit=off",
                                "-c",
                                "shared_buffers=16MB",
                                "-c",
                                "max_connections=120",
                                NULL};
    pc->pid = spawn(pc, ra, "postgres", argv, log);
    if (pc->pid < 0) {
        pc->pid = 0;
        return -1;
    }
    int r = wait_ready(pc);
    if (r < 0) {
        fprintf(stderr, "pg_cluster: the server did not accept connections within %d ms\n",
                PG_CLUSTER_WAIT_MS);
        print_log_tail(log);
        (void)pg_cluster_stop_server(pc);
    }
    return r;
}

static void print_server_exit(const struct pg_cluster *pc)
{
    char log[96];
    snprintf(log, sizeof(log), "%s/server.log", pc->dir);
    fprintf(stderr, "pg_cluster: the server exited while starting\n");
    print_log_tail(log);
}

static void set_url(struct pg_cluster *pc)
{
    snprintf(pc->url, sizeof(pc->url), "postgresql://keymeld@127.0.0.1:%d/postgres", pc->port);
}

int pg_cluster_start_server(struct pg_cluster *pc)
{
    if (pc->pid != 0)
        return 0; /* already running */
    struct run_as ra;
    if (get_run_as(&ra) != 0)
        return -1;
    int r = launch(pc, &ra);
    if (r > 0)
        print_server_exit(pc);
    return r == 0 ? 0 : -1;
}

int pg_cluster_stop_server(struct pg_cluster *pc)
{
    if (pc->pid == 0)
        return 0;
    /* SIGINT = fast shutdown: sessions are terminated, then a checkpoint. */
    (void)kill(pc->pid, SIGINT);
    int64_t deadline = now_ms() + PG_CLUSTER_WAIT_MS;
    int status;
    pid_t w;
    while ((w = waitpid(pc->pid, &status, WNOHANG)) == 0 && now_ms() < deadline)
        sleep_ms(PG_CLUSTER_POLL_MS / 2);
    int r = 0;
    if (w == 0) {
        fprintf(stderr, "pg_cluster: the server did not stop within %d ms: killed\n",
                PG_CLUSTER_WAIT_MS);
        (void)kill(pc->pid, SIGKILL);
        (void)waitpid(pc->pid, &status, 0);
        r = -1;
    }
    pc->pid = 0;
    return r;
}

int pg_cluster_restart(struct pg_cluster *pc)
{
    if (pg_cluster_stop_server(pc) != 0)
        return -1;
    return pg_cluster_start_server(pc);
}

int pg_cluster_start(struct pg_cluster *pc)
{
    memset(pc, 0, sizeof(*pc));
    struct run_as ra;
    if (find_bindir(pc) != 0 || get_run_as(&ra) != 0)
        return -1;
    snprintf(pc->dir, sizeof(pc->dir), "/tmp/km-pg-XXXXXX");
    if (mkdtemp(pc->dir) == NULL) {
        fprintf(stderr, "pg_cluster: mkdtemp: %s\n", strerror(errno));
        pc->dir[0] = '\0';
        return -1;
    }
    if (ra.active && chown(pc->dir, ra.uid, ra.gid) != 0) {
        fprintf(stderr, "pg_cluster: chown %s: %s\n", pc->dir, strerror(errno));
        pg_cluster_destroy(pc);
        return -1;
    }
    if (run_initdb(pc, &ra) != 0) {
        pg_cluster_destroy(pc);
        return -1;
    }
    /* The port is free when chosen, not necessarily when the server binds:
     * a server that exits at once gets another one. */
    int r = 1;
    for (int i = 0; i < PG_CLUSTER_PORT_TRIES && r > 0; i++) {
        pc->port = free_port();
        r = pc->port > 0 ? launch(pc, &ra) : -1;
    }
    if (r != 0) {
        if (r > 0)
            print_server_exit(pc);
        pg_cluster_destroy(pc);
        return -1;
    }
    set_url(pc);
    return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "pg_cluster: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

void pg_cluster_destroy(struct pg_cluster *pc)
{
    (void)pg_cluster_stop_server(pc);
    if (pc->dir[0] != '\0')
        (void)nftw(pc->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    pc->dir[0] = '\0';
    pc->url[0] = '\0';
}

int pg_cluster_create_db(struct pg_cluster *pc, char *url, size_t n)
{
    char ci[128], sql[64];
    conninfo(pc, ci, sizeof(ci));
    unsigned id = ++pc->databases_made;
    snprintf(sql, sizeof(sql), "CREATE DATABASE keymeld_test_%u", id);
    PGconn *c = PQconnectdb(ci);
    PGresult *res = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int r = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (r != 0)
        fprintf(stderr, "pg_cluster: %s: %s\n", sql, PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    snprintf(url, n, "postgresql://keymeld@127.0.0.1:%d/keymeld_test_%u", pc->port, id);
    return r;
}
