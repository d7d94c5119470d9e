/*
 * store.h - the gateway's database: versioned schema, migrations and every
 * query the gateway runs, written once against the db.h seam. Backends:
 * SQLite (embedded, the default: a file path) and PostgreSQL (a
 * postgresql:// URL; several gateways may share one database).
 *
 * What is stored: session metadata (ids, states, counts, timestamps,
 * enclave assignments) and ciphertext. Everything secret arrives already
 * encrypted by a client or an enclave (ECIES to an enclave key, or sealed
 * with the participants' session secret) and is stored as the hex string it
 * arrived as. The store never sees a plaintext key, secret, message, nonce
 * or signature.
 *
 * Durability: a transaction is durable when its commit returns. SQLite:
 * WAL journal, with the WAL synced before a commit returns by default, so
 * a commit survives a crash of the gateway process (kill -9), of the
 * kernel, or a power loss. The sync is a group commit: the writer lock is
 * released first, and one sync of the WAL covers every commit written
 * before it (internal.h, store_make_durable). So another connection may
 * read a commit up to one sync (under a millisecond) before the commit
 * returns; only a power loss inside that window could undo what it read.
 * With fsync_each_commit off (synchronous=NORMAL, no sync) a commit still
 * survives a crash of the process, but a power loss may undo the last
 * commits;
 * store_close() checkpoints with wal_checkpoint(TRUNCATE). PostgreSQL: as
 * the server is configured.
 *
 * Concurrency: a pool of connections, so HTTP threads and coordinator
 * workers read in parallel; writes take one in-process writer lock (a
 * mutex, so a writer waits exactly as long as the one before it, never in
 * the engine's sleeping busy handler), then a write transaction that
 * excludes the writers of every other process (SQLite's BEGIN IMMEDIATE;
 * PostgreSQL's transaction-scoped advisory lock, shared by the gateways of
 * one database). Every function is thread-safe.
 *
 * Statements: prepared once per connection and reused; values are always
 * bound, never formatted into SQL.
 *
 * JSON columns. The documents the store only keeps (a session's step
 * outputs, subsets, items, results) are exchanged as JSON text, stored
 * as is and returned as stored: the store never parses them, the gateway
 * does where it needs their structure. Inputs borrow their text (NULL
 * stores SQL NULL); rows returned own theirs (released by the row's
 * _clear). A keygen's enclave keys are typed (struct store_enclave_key);
 * their column keeps its JSON object text {"<enclave id>":"<pubkey hex>"}
 * (the queries on it and `keymeld db migrate` read that format).
 */
#ifndef KM_STORE_STORE_H
#define KM_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define STORE_SCHEMA_VERSION 6

struct store;

struct store_options {
    /* The database: a file path or "sqlite:PATH" (SQLite; the file's
     * directory is created), or "postgresql://..." / "postgres://..."
     * (libpq's URI: user, password, host, port, database, parameters). */
    const char *url;
    unsigned connections;     /* pool size, 0 = 4 */
    uint32_t busy_timeout_ms; /* SQLite, 0 = 5000 */
    bool wal;                 /* SQLite journal_mode=WAL (default true via store_options_default) */
    bool fsync_each_commit;   /* SQLite synchronous=FULL (default true), else NORMAL */
};

void store_options_default(struct store_options *o, const char *url);

/* Opens (creating a SQLite file if needed) and migrates the database to
 * STORE_SCHEMA_VERSION. Refuses a database from a newer version. Returns
 * KM_OK, KM_ERR_INVALID (a malformed or unsupported URL), KM_ERR_IO or
 * another db_open error (cannot open, create or connect) or KM_ERR_STATE
 * (migration refused/failed), with the reason in *err (never the URL's
 * password). */
int store_open(struct store **out, const struct store_options *opts, struct km_error *err) KM_WUR;

/* Closes every connection (SQLite: checkpoints the WAL first, TRUNCATE),
 * frees. NULL is a no-op. */
void store_close(struct store *s);

/* Liveness: SELECT 1 on a pooled connection. */
int store_ping(struct store *s, struct km_error *err) KM_WUR;

/* The schema version of the open database. */
int store_schema_version(struct store *s, int *version) KM_WUR;

struct store_stats {
    int64_t keygen_total, keygen_active;
    int64_t signing_total, signing_active;
    int64_t db_size_bytes; /* SQLite: the file; PostgreSQL: pg_database_size */
    /* Group commit (SQLite with fsync_each_commit): commits made durable
     * so far, and the WAL syncs that did it (0 and 0 otherwise). */
    uint64_t group_commits, group_syncs;
};
int store_stats(struct store *s, struct store_stats *out) KM_WUR;

/* ---- enclaves -------------------------------------------------------- */

/* The most enclaves one keygen relies on (the protocol's limit,
 * PROTO_MAX_ENCLAVES: the gateway asserts they agree; the store does not
 * depend on the protocol). */
#define STORE_MAX_ENCLAVES 64

/* An enclave's public key as a keygen recorded it: hex of the compressed
 * point (66 characters). */
struct store_enclave_key {
    uint32_t enclave_id;
    char public_key[67];
};

/*
 * Records the public key an enclave reported. Returns KM_OK and sets
 * *changed when it differs from the last one stored (an enclave restart:
 * its in-memory keypair is new), copying the previous key to old_key
 * (at least 67 bytes; "" when none); *first when none was stored before.
 * *epoch is the enclave's key epoch: 1 for the first key seen, +1 on every
 * change.
 */
/* An enclave's sealed identity key (hex of the ciphertext blob). */
struct store_sealed_key {
    uint32_t enclave_id;
    int64_t key_epoch;
    char sealer[24];
    char *sealed_key_hex; /* owned */
    char public_key[67];
};

void store_sealed_key_clear(struct store_sealed_key *k);

/* The current sealed key of an enclave. KM_ERR_NOT_FOUND when it has none
 * (the enclave then creates one). */
int store_sealed_key_current(struct store *s, uint32_t enclave_id,
                             struct store_sealed_key *out) KM_WUR;

/* Records a newly created sealed key as the enclave's current one, in one
 * transaction, unless the enclave already has one: KM_ERR_EXISTS (another
 * gateway, or an earlier attempt, got there first; nothing changes). */
int store_sealed_key_add(struct store *s, const struct store_sealed_key *k) KM_WUR;

/* ---- API keys (store/apikeys.c) ---- */

struct store_api_key {
    char id[40];            /* public part of the token: "kmk_<16 hex>" */
    char secret_sha256[65]; /* hex SHA-256 of the whole token */
    char name[64];
    uint32_t keygens_per_hour;
    uint32_t live_keygens;     /* reserved, collecting or running at once */
    uint32_t max_participants; /* per keygen */
    int64_t created_at, revoked_at;
};

/* Inserts a new key and sets k->created_at. KM_ERR_EXISTS if the id is taken. */
int store_api_key_create(struct store *s, struct store_api_key *k) KM_WUR;
/* KM_ERR_NOT_FOUND if absent (revoked keys are found: check revoked_at). */
int store_api_key_get(struct store *s, const char *id, struct store_api_key *out) KM_WUR;
/* Every key, oldest first; *out malloc'ed (free). */
int store_api_key_list(struct store *s, struct store_api_key **out, size_t *n) KM_WUR;
/* KM_ERR_NOT_FOUND if absent; revoking twice is KM_OK. */
int store_api_key_revoke(struct store *s, const char *id) KM_WUR;

/* The quotas store_keygen_reserve enforces for k->api_key_id, inside its
 * transaction (two reserves racing cannot both take the last unit). */
struct store_reserve_quota {
    uint32_t keygens_per_hour; /* 0 = none */
    uint32_t live_keygens;     /* 0 = none */
};

/* ---- key rotation (store/rotation.c, gateway/rotation.c) ---- */

/* The next sealed key of a rotation in progress; KM_ERR_NOT_FOUND: none. */
int store_sealed_key_next(struct store *s, uint32_t enclave_id,
                          struct store_sealed_key *out) KM_WUR;

/* Records the next sealed key (state "next") unless one is recorded:
 * KM_ERR_EXISTS. Written before anything is re-encrypted to it. */
int store_sealed_key_add_next(struct store *s, const struct store_sealed_key *k) KM_WUR;

/* The rotation's end, in one transaction: the current key retired, the
 * next one (key_epoch) current, the enclave's known public key updated
 * (so the gateway does not take the change for a restart). KM_ERR_STATE
 * when there is no such next key. */
int store_sealed_key_promote(struct store *s, uint32_t enclave_id, int64_t key_epoch,
                             const char *public_key_hex) KM_WUR;

/* Up to max completed keygens whose ciphertexts for enclave_id are still
 * under public_key_hex. *ids malloc'ed (free). */
int store_keygens_using_key(struct store *s, uint32_t enclave_id, const char *public_key_hex,
                            size_t max, char (**ids)[37], size_t *n) KM_WUR;

/* Keygens not finished (reserved, collecting, running) with a participant
 * on enclave_id: a rotation waits for them. */
int store_keygens_busy_on(struct store *s, uint32_t enclave_id, int64_t *count) KM_WUR;

/* One keygen's ciphertexts re-encrypted to an enclave's next key. */
struct store_keygen_rekey {
    const char *keygen_id;
    uint32_t enclave_id;
    const char *old_public_key;           /* compare-and-set on enclave_keys */
    const char *encrypted_session_secret; /* the whole column (changed or not) */
    const char *state;                    /* the whole step-output JSON text */
    /* Every key the keygen relies on, with the enclave's new one (at most
     * STORE_MAX_ENCLAVES; in the order to record them). */
    const struct store_enclave_key *enclave_keys;
    size_t nenclave_keys;
    size_t nslots;
    struct {
        const char *user_id;
        const char *encrypted_private_key;
    } * slots; /* the enclave's participants */
};

/* Writes it in one transaction; KM_ERR_STATE when the keygen was already
 * re-encrypted (enclave_keys no longer names the old key) or is gone. */
int store_keygen_rekey(struct store *s, const struct store_keygen_rekey *rk) KM_WUR;

int store_enclave_observe_key(struct store *s, uint32_t enclave_id, const char *public_key_hex,
                              char *old_key, size_t old_cap, bool *changed, bool *first,
                              int64_t *epoch) KM_WUR;

/* ---- keygen sessions ------------------------------------------------- */

enum store_keygen_status {
    STORE_KEYGEN_RESERVED = 0, /* reserved, waiting for initialize */
    STORE_KEYGEN_COLLECTING,   /* initialized, participants registering */
    STORE_KEYGEN_RUNNING,      /* all registered; coordinator driving enclaves */
    STORE_KEYGEN_COMPLETED,
    STORE_KEYGEN_FAILED,
};
const char *store_keygen_status_name(enum store_keygen_status st);

struct store_participant {
    char user_id[37];
    uint32_t enclave_id;
    bool registered;
    char *encrypted_private_key; /* NULL until registered */
    char auth_pubkey[65];
    bool require_signing_approval;
    int64_t registered_at;
};

struct store_keygen {
    char id[37];
    enum store_keygen_status status;
    int step;
    char coordinator_user_id[37];
    uint32_t coordinator_enclave_id;
    char *subsets;                 /* JSON text (an array) as stored, or NULL */
    char *encrypted_taproot_tweak; /* NULL = none */
    uint32_t timeout_secs;
    uint32_t max_signing_sessions;
    char session_public_key[65];    /* "" until reserved with one, or initialized */
    char api_key_id[40];            /* who reserved it ("" in open mode) */
    char *encrypted_session_secret; /* NULL until initialized */
    /* The enclave keys the session relies on (the keys handed to its
     * clients at reserve), in the order recorded; look one up with
     * store_keygen_enclave_key. */
    struct store_enclave_key enclave_keys[STORE_MAX_ENCLAVES];
    size_t nenclave_keys;
    /* Coordinator step outputs (ciphertext; JSON text as stored, or NULL):
     * loaded while running only. */
    char *state;
    char *encrypted_aggregate_public_key;
    char aggregate_check[65];
    char *subset_results; /* JSON text (an array) as stored, or NULL */
    char *error;
    int attempts;
    int64_t next_attempt_at;
    int64_t created_at, updated_at, expires_at, completed_at;
    struct store_participant *participants; /* in the order given at reserve */
    size_t nparticipants;
    size_t nregistered;
};

void store_keygen_clear(struct store_keygen *k);

/* The public key (hex) k recorded for enclave_id, or NULL when none. */
const char *store_keygen_enclave_key(const struct store_keygen *k, uint32_t enclave_id);

/* Records public_key_hex as enclave_id's key in k: replaces the one
 * recorded (keeping its place) or appends it. KM_ERR_LIMIT when k holds
 * STORE_MAX_ENCLAVES keys already, KM_ERR_INVALID when the key does not
 * fit struct store_enclave_key. */
int store_keygen_set_enclave_key(struct store_keygen *k, uint32_t enclave_id,
                                 const char *public_key_hex) KM_WUR;

/* Inserts a reserved session, the enclave keys it relies on (k->enclave_keys:
 * the keys handed to its clients; none: the column stays NULL), the
 * subsets (JSON text, stored as is), the session key given at reserve and the
 * API key that reserved it, and its participant slots (user -> enclave) in
 * one transaction. KM_ERR_EXISTS if the id is taken; KM_ERR_LIMIT (with
 * *which = "keygens_per_hour" / "live_keygens") when quota (may be NULL)
 * would be exceeded for k->api_key_id. */
int store_keygen_reserve(struct store *s, const struct store_keygen *k,
                         const struct store_reserve_quota *quota, const char **which) KM_WUR;

/* Loads a session with its participants. KM_ERR_NOT_FOUND if absent. */
int store_keygen_get(struct store *s, const char *id, struct store_keygen *out) KM_WUR;

/* The same with the step outputs (state) of a completed session too: what
 * a restore of the keygen into an enclave re-sends. */
int store_keygen_get_with_state(struct store *s, const char *id, struct store_keygen *out) KM_WUR;

/*
 * reserved -> collecting: stores the session auth key and the encrypted
 * session secret, and registers the coordinator's own participant slot.
 * KM_ERR_STATE if not reserved, KM_ERR_NOT_FOUND if absent.
 */
int store_keygen_initialize(struct store *s, const char *id, const char *session_public_key,
                            const char *encrypted_session_secret,
                            const struct store_participant *coordinator) KM_WUR;

/*
 * Registers one participant (its slot must exist and be unregistered:
 * KM_ERR_EXISTS if already registered with other data; registering the
 * identical data again is KM_OK). When the last participant registers the
 * session moves to running. Returns the counts after the update.
 */
int store_keygen_register(struct store *s, const char *id, const struct store_participant *p,
                          size_t *registered, size_t *expected, bool *now_running) KM_WUR;

/*
 * Commits one coordinator step: compare-and-set on (status, step). Sets the
 * new step, status and state; when status is COMPLETED also the results.
 * Resets attempts. KM_ERR_STATE when another writer moved the session.
 */
struct store_keygen_progress {
    int from_step;
    int to_step;
    enum store_keygen_status status;
    const char *state;                          /* JSON text, stored as is */
    const char *encrypted_aggregate_public_key; /* COMPLETED only */
    const char *aggregate_check;
    const char *subset_results; /* JSON text, stored as is; NULL keeps the stored one */
};
int store_keygen_advance(struct store *s, const char *id,
                         const struct store_keygen_progress *p) KM_WUR;

/* Records a failed attempt: attempts+1, next_attempt_at, last error. */
int store_keygen_retry_later(struct store *s, const char *id, int step, int64_t next_attempt_at,
                             const char *error) KM_WUR;

/* Terminal failure with a readable error (any non-terminal status). */
int store_keygen_fail(struct store *s, const char *id, const char *error) KM_WUR;

/* Deletes a session, its participants and its signing sessions. */
int store_keygen_delete(struct store *s, const char *id) KM_WUR;

/* Ids of sessions the coordinator must drive (running), and of unfinished
 * sessions (reserved/collecting/running) whose expires_at <= now. Caller
 * frees the arrays (each element 37 bytes). */
int store_keygen_list_running(struct store *s, char (**ids)[37], size_t *n) KM_WUR;
int store_keygen_list_expired(struct store *s, int64_t now, char (**ids)[37], size_t *n) KM_WUR;

/* ---- signing sessions ------------------------------------------------ */

enum store_signing_status {
    STORE_SIGNING_AWAITING_APPROVALS = 0,
    STORE_SIGNING_RUNNING,
    STORE_SIGNING_COMPLETED,
    STORE_SIGNING_FAILED,
};
const char *store_signing_status_name(enum store_signing_status st);

struct store_approval {
    char user_id[37];
    int64_t timestamp;
    char signature[129];
    int64_t approved_at;
};

struct store_signing {
    char id[37];
    char keygen_session_id[37];
    enum store_signing_status status;
    int step;
    /* JSON text, stored as is (owned; NULL when the column is NULL): */
    char *items; /* the array as accepted from the client (ciphertext) */
    uint32_t timeout_secs;
    char *state;   /* coordinator step outputs (ciphertext) */
    char *results; /* the array of per-item results (ciphertext) */
    char *error;
    int attempts;
    int64_t next_attempt_at;
    int64_t created_at, updated_at, expires_at, completed_at;
    struct store_approval *approvals;
    size_t napprovals;
};

void store_signing_clear(struct store_signing *sg);

/* Inserts a signing session and counts it against its keygen's quota.
 * KM_ERR_EXISTS if the id is taken; KM_ERR_LIMIT if the quota
 * (max_signing_sessions, counting every session ever created, whatever
 * became of it) is used up; KM_ERR_STATE if the keygen is not completed. */
int store_signing_create(struct store *s, const struct store_signing *sg) KM_WUR;

/* store_signing_create, except that it returns once the session is
 * committed and visible, before the commit is durable: *durable_ticket
 * names the wait, and the caller calls store_wait_durable with it before
 * anyone outside the gateway may learn of the session (its reply). The
 * gateway starts the signing's enclave round in between, so the sync and
 * the round overlap. Nothing the enclaves do can outlive a lost creation
 * to harm anyone: a signing session the database does not know is never
 * resumed, and its pool nonces are spent, not reused. */
int store_signing_create_deferred(struct store *s, const struct store_signing *sg,
                                  uint64_t *durable_ticket) KM_WUR;

/* Returns once the commit named by ticket (from a _deferred call; 0 is a
 * no-op) is durable, syncing the WAL itself if no sync covers it yet. */
void store_wait_durable(struct store *s, uint64_t ticket);

int store_signing_get(struct store *s, const char *id, struct store_signing *out) KM_WUR;

/* The session's status alone: a cheap read for long-polls, which reload the
 * whole session only once something they report has changed.
 * KM_ERR_NOT_FOUND if absent. */
int store_signing_status_get(struct store *s, const char *id,
                             enum store_signing_status *out) KM_WUR;

/* Records (or replaces) a user's approval while awaiting approvals. When
 * every required user has approved the session moves to running.
 * KM_ERR_STATE if not awaiting approvals. */
int store_signing_approve(struct store *s, const char *id, const struct store_approval *a,
                          size_t required, const char *const *required_users,
                          bool *now_running) KM_WUR;

struct store_signing_progress {
    int from_step;
    int to_step;
    enum store_signing_status status;
    const char *state;   /* JSON text, stored as is */
    const char *results; /* COMPLETED only: JSON text, stored as is */
};
int store_signing_advance(struct store *s, const char *id,
                          const struct store_signing_progress *p) KM_WUR;
int store_signing_retry_later(struct store *s, const char *id, int step, int64_t next_attempt_at,
                              const char *error) KM_WUR;
int store_signing_fail(struct store *s, const char *id, const char *error) KM_WUR;
int store_signing_list_running(struct store *s, char (**ids)[37], size_t *n) KM_WUR;
int store_signing_list_expired(struct store *s, int64_t now, char (**ids)[37], size_t *n) KM_WUR;

/* Retention: deletes signing sessions that completed or failed, and
 * keygen sessions that failed, last updated before `before` (completed
 * keygens stay until deleted on purpose). Returns how many in *deleted. */
int store_prune_finished(struct store *s, int64_t before, size_t *deleted) KM_WUR;

/* Fails every unfinished keygen and signing session that relies on an
 * enclave whose key changed (enclave restart). Returns how many. */
int store_fail_sessions_of_enclave(struct store *s, uint32_t enclave_id, const char *old_key,
                                   const char *error, size_t *failed) KM_WUR;

/* ---- request-auth replay cache ---------------------------------------- */

/* One (auth key, nonce) pair a request used, remembered until expires_at.
 * The gateway decides claims in memory (gateway/replay.h) and records
 * them here in batches; the table makes the window survive a restart. */
struct store_auth_nonce {
    char key[65];   /* x-only public key, 64 hex */
    char nonce[33]; /* 32 hex */
    int64_t expires_at;
};

/* Whether (key, nonce) is recorded. A read: takes no writer turn. */
int store_auth_nonce_seen(struct store *s, const char *key_hex, const char *nonce_hex,
                          bool *seen) KM_WUR;

/* Records n pairs in one transaction; pairs already recorded are left as
 * they are. */
int store_auth_nonces_add(struct store *s, const struct store_auth_nonce *v, size_t n) KM_WUR;

/* Records one pair now and says whether it is new: KM_OK the first time,
 * KM_ERR_EXISTS if any gateway recorded it before (a database
 * constraint decides, so it holds across gateways). */
int store_auth_nonce_claim(struct store *s, const struct store_auth_nonce *v) KM_WUR;

int store_auth_nonce_prune(struct store *s, int64_t now) KM_WUR;

/* ---- several gateways on one database (PostgreSQL) ---------------------
 *
 * With SQLite one gateway owns the database. With PostgreSQL any number
 * of gateways may share it, active-active:
 *
 * Leases. A gateway (named host:port, the same after a restart, so it
 * takes its own sessions back at once) claims a running session's lease
 * (owner, expiry)
 * before it runs the session's steps and gives it back when the session
 * waits for clients or ends. A claim succeeds when the lease is free,
 * already ours, or expired: a gateway that dies loses its leases when they
 * expire, and the others' sweepers find those sessions
 * (store_lease_list_orphans) and resume each from its last committed step;
 * the enclaves' command-id idempotency makes a re-sent step safe, and the
 * compare-and-set step commits make a step count once even if two
 * gateways ran it.
 *
 * Change notices. Each committed change of a session is announced
 * (store_notify_changed: PostgreSQL NOTIFY) and every gateway's listener
 * thread wakes its long polls for it, so a client may wait on any
 * gateway. With SQLite both are no-ops.
 */

#define STORE_OWNER_MAX 80 /* a gateway's name: host:port */

enum store_session_kind {
    STORE_KEYGEN,
    STORE_SIGNING,
};

/* Whether other gateways may share the database (PostgreSQL). */
bool store_shared(const struct store *s);

/* Claims session id's lease for owner until now + lease_secs. KM_OK, or
 * KM_ERR_STATE when another gateway holds a live lease or the session is
 * not running. */
int store_lease_claim(struct store *s, enum store_session_kind kind, const char *id,
                      const char *owner, int64_t now, uint32_t lease_secs) KM_WUR;

/* Gives back owner's lease (no-op when owner does not hold it). */
int store_lease_release(struct store *s, enum store_session_kind kind, const char *id,
                        const char *owner) KM_WUR;

/* Running sessions nobody drives: the lease expired (or was never taken),
 * no retry is pending and the row did not change in the last 2 s. */
int store_lease_list_orphans(struct store *s, enum store_session_kind kind, int64_t now,
                             char (**ids)[37], size_t *n) KM_WUR;

/* Announces that session id changed (owner: this gateway's instance id). */
int store_notify_changed(struct store *s, const char *owner, const char *id) KM_WUR;

/* Starts a thread that calls fn(ud, id) for every change another gateway
 * announces, and fn(ud, "") after its connection was lost and restored
 * (changes may have been missed: treat every session as changed). No-op
 * with SQLite. Stopped by store_listen_stop or store_close. */
typedef void (*store_change_fn)(void *ud, const char *id);
int store_listen_start(struct store *s, const char *owner, store_change_fn fn, void *ud,
                       struct km_error *err) KM_WUR;
void store_listen_stop(struct store *s);

/* ==== Copying a database (store/copy.c) ================================
 *
 * `keymeld db migrate`: a deployment's data copied into a new database,
 * typically from SQLite to PostgreSQL (docs/OPERATIONS.md "Moving from
 * SQLite to PostgreSQL"). Run it with every gateway of both databases
 * stopped.
 */

#define STORE_COPY_MAX_TABLES 16

/* One table of the copy. */
struct store_copy_table {
    const char *name;    /* static */
    int64_t rows;        /* rows read from the source and written to the target */
    int64_t target_rows; /* rows the target held when checked */
    bool checked;        /* counts and content digests of source and target matched */
};

struct store_copy_report {
    size_t ntables; /* every table, in the order copied */
    struct store_copy_table tables[STORE_COPY_MAX_TABLES];
    bool committed;   /* the target holds the copy, checked */
    bool rolled_back; /* failed once copying had begun: undone, no row left */
};

/*
 * Copies every table of the database at from_url into the one at to_url
 * (URLs as store_options.url) and checks the copy.
 *
 * The source must exist (a missing SQLite file is KM_ERR_NOT_FOUND, never
 * created) and be at STORE_SCHEMA_VERSION (older: start the current
 * gateway on it once; KM_ERR_STATE). Nothing is written to it: a write
 * transaction is held on it, and rolled back, only so that no writer
 * changes it meanwhile. The target is created or migrated to
 * STORE_SCHEMA_VERSION and must hold no row in any table (KM_ERR_EXISTS,
 * naming the table). Both schemas must be exactly the tables and columns
 * the copy knows (KM_ERR_STATE otherwise: nothing is left out quietly).
 *
 * Every row is copied in one transaction of the target, in dependency
 * order, each value as int64, text or NULL. Before the commit every table
 * is read back from the target: its row count and a SHA-256 digest of its
 * contents must equal the source's (KM_ERR_STATE otherwise). Any error
 * rolls the transaction back: the target then holds no copied row (the
 * schema a migration created stays). rep (always filled with the table
 * names) says how many rows each table had and whether it checked out;
 * rep->committed is true exactly when KM_OK is returned.
 *
 * Errors in *err name the side ("source database", "target database") and
 * the table; never a URL's password.
 */
int store_copy(const char *from_url, const char *to_url, struct store_copy_report *rep,
               struct km_error *err) KM_WUR;

#endif /* KM_STORE_STORE_H */
