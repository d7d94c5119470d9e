/*
 * pg_cluster.h - a throwaway PostgreSQL server for one test.
 *
 * pg_cluster_start makes a directory under /tmp (short: the Unix socket
 * lives there and its path is limited to 107 bytes), runs initdb in it
 * (trust authentication, superuser "keymeld", no fsync) and starts the
 * server on a free TCP port of 127.0.0.1 plus a socket in the directory.
 * The tests never touch a system cluster (the Debian package's "main").
 *
 * The server is the test's own child, started with PR_SET_PDEATHSIG: a test
 * that crashes or is killed by its timeout takes the server with it rather
 * than leaving it running (pg_ctl would detach it). Call from the thread
 * that lives for the whole test (normally main).
 *
 * Root: PostgreSQL refuses to run as root, so when geteuid() == 0 the
 * directory is given to the "postgres" system user (created by the Debian
 * package) and initdb and the server run as that user; otherwise they run
 * as the caller.
 *
 * Binaries: $KEYMELD_TEST_PG_BINDIR, else the newest
 * /usr/lib/postgresql/<version>/bin (Debian), else initdb and postgres from
 * PATH. scripts/install-deps installs them; when they are missing,
 * pg_cluster_start fails with a message saying so.
 *
 * Failures print what went wrong (with the tail of the tool's or server's
 * log) to stderr and return -1.
 */
#ifndef KM_TESTS_PG_CLUSTER_H
#define KM_TESTS_PG_CLUSTER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct pg_cluster {
    char dir[64];            /* the cluster's directory (socket, logs, data/) */
    char bindir[PATH_MAX];   /* where initdb and postgres are */
    int port;                /* TCP port on 127.0.0.1 */
    pid_t pid;               /* the postmaster, or 0 when stopped */
    char url[128];           /* postgresql://keymeld@127.0.0.1:PORT/postgres */
    unsigned databases_made; /* for pg_cluster_create_db names */
};

/* Creates and starts a cluster; pc->url connects to it as superuser. */
int pg_cluster_start(struct pg_cluster *pc);

/* Stops the server (if running) and removes the directory. Safe on a
 * cluster whose start failed or that was already destroyed. */
void pg_cluster_destroy(struct pg_cluster *pc);

/* Fast shutdown (clients are disconnected, as on a real server restart);
 * returns once the server has exited. */
int pg_cluster_stop_server(struct pg_cluster *pc);

/* Starts the stopped server again on the same port and waits until it
 * accepts connections. */
int pg_cluster_start_server(struct pg_cluster *pc);

/* pg_cluster_stop_server, then pg_cluster_start_server. */
int pg_cluster_restart(struct pg_cluster *pc);

/* Creates a new empty database "keymeld_test_<n>" and writes its URL to
 * url (n bytes). */
int pg_cluster_create_db(struct pg_cluster *pc, char *url, size_t n);

#endif /* KM_TESTS_PG_CLUSTER_H */
