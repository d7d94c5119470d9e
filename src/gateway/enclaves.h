/*
 * enclaves.h - the gateway's view of its enclaves: one connection pool per
 * configured enclave, a health loop, and restart detection.
 *
 * Start-up: every enclave's public key is fetched (get_public_info) with
 * retries; each failure is logged with the endpoint and the seed's hint
 * (transport/hint.h). The gateway serves meanwhile: an enclave that comes
 * up later is picked up by the same loop, which keeps probing unhealthy
 * enclaves with back-off (1 s doubling to 30 s) and healthy ones every
 * health interval.
 *
 * Identity: an enclave is known by its public key. Its keypair lives in
 * memory only, so a key different from the last one seen means the
 * enclave restarted and lost every session: the store fails the sessions
 * that relied on the old key (one code path, whatever noticed it), and the
 * on_restart callback lets the coordinator react.
 */
#ifndef KM_GATEWAY_ENCLAVES_H
#define KM_GATEWAY_ENCLAVES_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "gateway/enclave_attest.h"
#include "store/store.h"
#include "transport/pool.h"

#define ENCLAVE_PUBKEY_HEX_LEN 66

/* A snapshot of one enclave, for routes and health endpoints. */
struct enclave_status {
    uint32_t id;
    char address[TP_ADDR_STR_MAX]; /* canonical, e.g. vsock://2:5000 */
    const char *transport;         /* "vsock" | "tcp" | "unix" */
    bool healthy;
    bool unresponsive; /* a request or probe timed out; nothing answered since */
    bool key_known;
    char public_key[ENCLAVE_PUBKEY_HEX_LEN + 1];
    int64_t key_epoch;
    bool rotating;          /* its key is being rotated: no new keygens */
    uint64_t uptime_secs;   /* as last reported */
    uint64_t active_keygen; /* sessions it reported */
    uint64_t active_signing;
    uint64_t latency_us;  /* last successful probe */
    uint64_t last_ok_ms;  /* wall clock of the last success, 0 = never */
    char last_error[512]; /* "" when healthy */
    char hint[512];
    struct pool_stats pool;
    /* Attestation (security.enable_attestation): "off" (not required),
     * "pending" (not checked yet), "verified" (this key's document passed),
     * "failed" (the enclave is not used: attest_error says why). */
    char sealer[24];     /* "none", "file", "aws-kms" */
    char key_origin[24]; /* "ephemeral", "created", "restored" */
    const char *attestation;
    char attest_error[512];
    char provider[PROTO_ATTESTATION_NAME_MAX + 1]; /* what the enclave reports */
    struct gw_attest_summary attested;             /* when "verified" */
};

struct enclave_mgr;

typedef void (*enclave_restart_fn)(void *ud, uint32_t enclave_id);

/* Creates a pool per cfg->enclaves entry (no connection yet). The config
 * must be valid; cfg and store must outlive the manager. attest (NULL:
 * attestation off) is owned by the manager from here on. */
struct enclave_mgr *enclave_mgr_new(const struct cfg *cfg, struct store *store,
                                    struct gw_attest *attest, enclave_restart_fn on_restart,
                                    void *ud);

/* The verified document of an enclave's current key (malloc'ed copy) and
 * that key. KM_ERR_NOT_FOUND for an unknown id, KM_ERR_STATE when there is
 * none (attestation off, pending or failed). */
int enclave_mgr_attestation(struct enclave_mgr *m, uint32_t id, uint8_t **doc, size_t *doc_len,
                            char key[ENCLAVE_PUBKEY_HEX_LEN + 1]) KM_WUR;

/* Starts the health loop thread. */
void enclave_mgr_start(struct enclave_mgr *m);

/* Stops the loop and frees everything. No request may be in flight. */
void enclave_mgr_free(struct enclave_mgr *m);

size_t enclave_mgr_count(const struct enclave_mgr *m);

/* The i-th configured enclave's id (configuration order). */
uint32_t enclave_mgr_id_at(const struct enclave_mgr *m, size_t i);

/* The pool for an enclave id, or NULL if not configured. */
struct pool *enclave_mgr_pool(struct enclave_mgr *m, uint32_t id);

/* Copies the current public key (hex). KM_ERR_NOT_FOUND for an unknown id,
 * KM_ERR_STATE when the key is not known yet (enclave never reached),
 * KM_ERR_CRYPTO when attestation is on and this key's document has not
 * passed (pending or failed): the enclave must not be used. */
int enclave_mgr_public_key(struct enclave_mgr *m, uint32_t id,
                           char out[ENCLAVE_PUBKEY_HEX_LEN + 1]) KM_WUR;

/* Snapshot of one enclave by configuration index. */
void enclave_mgr_status(struct enclave_mgr *m, size_t i, struct enclave_status *out);

/* Probes one enclave now (get_public_info), updating its status and
 * running restart detection. Returns the probe result. */
int enclave_mgr_probe(struct enclave_mgr *m, uint32_t id, struct km_error *err) KM_WUR;

/* The endpoint as errors name it ("CID 3:5000", "tcp://h:5000"); "?" for
 * an unknown id. Borrowed, valid for the manager's lifetime. */
const char *enclave_mgr_describe_addr(struct enclave_mgr *m, uint32_t id);

/* A request to the enclave failed in transport: mark it unhealthy with
 * that error now and probe it again at once (readiness and the demo see
 * the truth without waiting for the health interval). */
void enclave_mgr_report_failure(struct enclave_mgr *m, uint32_t id, const struct km_error *err);

/*
 * Hung enclaves. A request or probe that timed out marks the enclave
 * unresponsive (an enclave that refuses connections fails fast and needs
 * no mark); any reply from it, ok or error, or a successful probe clears
 * the mark. The coordinator lets one step at a time wait on an
 * unresponsive enclave, so a hung enclave cannot pin its workers
 * (coordinator.h).
 */
bool enclave_mgr_unresponsive(struct enclave_mgr *m, uint32_t id, char *why, size_t whycap);
void enclave_mgr_report_alive(struct enclave_mgr *m, uint32_t id);

/* Probe the enclave at once, not at the next interval: its key was rotated
 * (gateway/rotation.c), or it answered busy because it waits for its
 * sealed key (a restart the gateway has not noticed yet). */
void enclave_mgr_probe_soon(struct enclave_mgr *m, uint32_t id);

/* A rotation made public_key_hex (epoch key_epoch) the enclave's key (the
 * database says so already): use it from now on, attest it again at once. */
void enclave_mgr_key_rotated(struct enclave_mgr *m, uint32_t id, const char *public_key_hex,
                             int64_t key_epoch);

/* Marks the enclave as rotating its key (gateway/rotation.c): new keygens
 * do not pick it (status.rotating) until it is cleared. */
void enclave_mgr_set_rotating(struct enclave_mgr *m, uint32_t id, bool rotating);

/* Formats "Command failed to ...: ..." plus the hint for an error from
 * this enclave's pool into out. */
void enclave_mgr_describe_error(struct enclave_mgr *m, uint32_t id, const struct km_error *err,
                                char *out, size_t outcap);

#endif /* KM_GATEWAY_ENCLAVES_H */
