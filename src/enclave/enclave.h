/*
 * enclave.h - the KeyMeld signer: its keypair, its sessions and the command
 * dispatcher behind `keymeld-enclave` (DESIGN.md §7, docs/PROTOCOL.md).
 *
 * enclave_handle() is a tp_handler_fn: the request server (transport/
 * server.h) calls it from its worker threads, concurrently. For each call it
 *  1. finds the command in the dispatch table (unknown -> unknown_command),
 *  2. decodes the arguments strictly (protocol/commands.h),
 *  3. consults the reply cache by command_id (enclave/idem.h): a repeated
 *     command gets its first reply, a duplicate in flight waits for it,
 *  4. for session commands, takes the session's turn (enclave/store.h) and
 *     checks the command against the session's state (invalid_state names
 *     both), then runs the handler,
 *  5. records the reply in the cache.
 * Every path ends in a result or a filled call->error; a handler that fails
 * without saying why becomes an "internal" error naming the command.
 *
 * Secrets (the enclave key, participants' keys, session secrets, secret
 * nonces) live in fixed-size buffers inside the sessions and are wiped when
 * a session completes, is cleared or expires, and by enclave_free. They are
 * never logged; debug logs name sessions, users, enclaves, counts, states.
 */
#ifndef KM_ENCLAVE_ENCLAVE_H
#define KM_ENCLAVE_ENCLAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "transport/server.h"

#define ENCLAVE_MAX_SESSIONS_DEFAULT 1024
#define ENCLAVE_IDEM_ENTRIES_DEFAULT 8192
#define ENCLAVE_IDEM_BYTES_DEFAULT   (64u << 20)
#define ENCLAVE_DUP_WAIT_MS_DEFAULT  30000

struct enclave_config {
    bool has_enclave_id; /* ENCLAVE_ID given; otherwise `configure` sets it */
    uint32_t enclave_id;
    size_t max_sessions;        /* keygen + signing; 0 = ENCLAVE_MAX_SESSIONS_DEFAULT */
    size_t pool_max_entries;    /* nonce-pool entries, all keygens; 0 = 16384 */
    size_t idem_entries;        /* 0 = ENCLAVE_IDEM_ENTRIES_DEFAULT */
    size_t idem_bytes;          /* 0 = ENCLAVE_IDEM_BYTES_DEFAULT */
    uint32_t duplicate_wait_ms; /* 0 = ENCLAVE_DUP_WAIT_MS_DEFAULT */
    /* Where get_attestation documents come from (attest/provider.h):
     * borrowed, must outlive the enclave; NULL = attestation off ("none"),
     * get_attestation then refuses. */
    struct attest_provider *attest;
    /* Where the identity key comes from (enclave/keysource.h): borrowed;
     * NULL = made at start, memory only (SEALER=none). With a key source
     * the enclave has no key until `configure` brings its sealed key or
     * lets it create one. */
    struct keysource *keysource;

    /* Test hooks, never set by keymeld-enclave (docs/ARCHITECTURE.md):
     * seckey   a fixed 32-byte enclave key (NULL: a fresh random key), so
     *          fuzz corpora can hold ciphertexts for it;
     * fault_cmd  the named command's handler fails without a message, to
     *          prove that every request still gets exactly one reply;
     * now_ms / wall_secs  clocks (NULL: clock_now_ms, time()). */
    const uint8_t *seckey;
    const char *fault_cmd;
    uint64_t (*now_ms)(void);
    uint64_t (*wall_secs)(void);
};

struct enclave;
struct attest_provider;
struct keysource;

/*
 * Creates an enclave: generates its keypair (or loads cfg->seckey) and
 * empty stores. cfg may be NULL (defaults).
 * Returns NULL with *err filled if the OS has no randomness or the test key
 * is invalid. Free with enclave_free.
 */
struct enclave *enclave_new(const struct enclave_config *cfg, struct km_error *err);

/* Stops the reaper, wipes every session and the keypair, frees. No call
 * may be running. NULL is a no-op. */
void enclave_free(struct enclave *en);

/* The request handler (tp_handler_fn); ud is the struct enclave. */
int enclave_handle(void *ud, struct tp_call *call) KM_WUR;

/* Starts a thread that wipes expired sessions every interval_ms. Returns
 * KM_OK or KM_ERR_INTERNAL (thread creation failed). */
int enclave_start_reaper(struct enclave *en, uint32_t interval_ms) KM_WUR;

/* Wipes expired sessions now; returns how many. */
size_t enclave_reap(struct enclave *en);

/* The enclave's compressed public key. false (out untouched) while an
 * enclave with a key source waits for configure. */
bool enclave_public_key(struct enclave *en, uint8_t out[33]);

/* The identity key's epoch (0 while there is no key). */
uint64_t enclave_key_epoch(struct enclave *en);

/* Live sessions of each kind. */
void enclave_session_counts(struct enclave *en, uint32_t *keygen, uint32_t *signing);

/* Nonce-pool entries held, over every keygen (tests, metrics). */
size_t enclave_pool_entries(struct enclave *en);

#endif /* KM_ENCLAVE_ENCLAVE_H */
