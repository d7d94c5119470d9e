/*
 * provider.h - where an enclave gets its attestation documents: one
 * interface, two providers (docs/ATTESTATION.md "Providers").
 *
 *   nsm          the AWS Nitro Secure Module: /dev/nsm, ioctl NSM_IOCTL_RAW
 *                with a CBOR request {"Attestation": {"public_key",
 *                "user_data", "nonce"}} and the reply {"Attestation":
 *                {"document"}} (nsm.c). Production.
 *   development  documents in exactly AWS's format (COSE_Sign1, ES384,
 *                cabundle [root, intermediate]) signed by a development CA
 *                that `keymeld dev-ca init DIR` creates (dev.c). PCR0 is the
 *                SHA-384 of the enclave binary, so a changed binary shows a
 *                changed PCR; module_id starts with "development". Never
 *                trusted by a client that pins the AWS root.
 *
 * A provider is used from several threads: attest_provider_attest is
 * thread-safe.
 */
#ifndef KM_ATTEST_PROVIDER_H
#define KM_ATTEST_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/doc.h"
#include "common/buf.h"
#include "common/err.h"

/* What the enclave asks to have attested; any pointer may be NULL (length
 * 0) for "not provided". Limits: public_key <= ATTEST_PUBLIC_KEY_MAX,
 * user_data <= ATTEST_USER_DATA_MAX, nonce <= ATTEST_NONCE_MAX. */
struct attest_request {
    const uint8_t *public_key;
    size_t public_key_len;
    const uint8_t *user_data;
    size_t user_data_len;
    const uint8_t *nonce;
    size_t nonce_len;
};

struct attest_provider;

/* "nsm" or "development". */
const char *attest_provider_name(const struct attest_provider *p);

/* The PCR0 this provider reports (development: the binary's SHA-384;
 * nsm: read from the first document). For logs and /health. */
void attest_provider_pcr0(const struct attest_provider *p, uint8_t out[ATTEST_PCR_LEN]);

/*
 * Produces a document for req: KM_OK with *doc (malloc'ed raw COSE_Sign1,
 * free()) and *doc_len, or an error with a message saying what failed
 * (KM_ERR_INVALID for a request past the limits, KM_ERR_IO for the device,
 * KM_ERR_REMOTE for an NSM error reply, naming its code).
 */
int attest_provider_attest(struct attest_provider *p, uint8_t **doc, size_t *doc_len,
                           const struct attest_request *req, struct km_error *err) KM_WUR;

void attest_provider_free(struct attest_provider *p);

/* ---- nsm ------------------------------------------------------------------ */

#define ATTEST_NSM_DEVICE       "/dev/nsm"
#define ATTEST_NSM_REQUEST_MAX  0x1000 /* the driver's limits (linux/nsm.h) */
#define ATTEST_NSM_RESPONSE_MAX 0x3000

/* One raw NSM exchange: request in, response out (at most *resp_len bytes;
 * set to the length written). The device does it with NSM_IOCTL_RAW; tests
 * pass a function of their own. Returns KM_OK or KM_ERR_IO (errno kept in
 * *err). */
typedef int (*attest_nsm_raw_fn)(void *ctx, const uint8_t *req, size_t req_len, uint8_t *resp,
                                 size_t *resp_len, struct km_error *err);

/* Opens the NSM device (ATTEST_NSM_DEVICE when path is NULL). KM_ERR_IO
 * with a message that says why and what to do when it is missing (not a
 * Nitro enclave) or cannot be opened. */
int attest_nsm_open(struct attest_provider **out, const char *path, struct km_error *err) KM_WUR;

/* An nsm provider over an injected raw exchange (tests: the NSM path
 * through its interface, without /dev/nsm). ctx is borrowed. */
struct attest_provider *attest_nsm_new_raw(attest_nsm_raw_fn raw, void *ctx);

/* The NSM's CBOR request for req. Appends to out. */
int attest_nsm_encode_request(struct buf *out, const struct attest_request *req) KM_WUR;

/* Decodes an NSM response: KM_OK with the document (malloc'ed) for
 * {"Attestation": {"document": bstr}}; KM_ERR_REMOTE naming the code for
 * {"Error": "<code>"}; KM_ERR_INVALID for anything else. */
int attest_nsm_decode_response(uint8_t **doc, size_t *doc_len, const uint8_t *p, size_t len,
                               struct km_error *err) KM_WUR;

/* ---- development ------------------------------------------------------------ */

/* Files of a development CA directory. */
#define ATTEST_DEV_ROOT_CERT   "root.pem"
#define ATTEST_DEV_ROOT_KEY    "root.key"
#define ATTEST_DEV_INTERM_CERT "intermediate.pem"
#define ATTEST_DEV_INTERM_KEY  "intermediate.key"

/*
 * Creates a development CA in dir (created 0700 if missing): a P-384 root
 * (CN=KeyMeld development root, 20 years) and intermediate (5 years), keys
 * 0600. When the four files already exist and load, changes nothing and
 * sets *created = false (a stack restart keeps its trust root); a partial
 * directory is KM_ERR_STATE. KM_ERR_IO names the path that failed.
 */
int attest_dev_ca_init(const char *dir, bool *created, struct km_error *err) KM_WUR;

/*
 * A development provider signing with the CA in ca_dir. pcr0 is the SHA-384
 * of the enclave binary (attest_dev_measure). module_id names the enclave
 * ("development-...").
 */
int attest_dev_new(struct attest_provider **out, const char *ca_dir,
                   const uint8_t pcr0[ATTEST_PCR_LEN], const char *module_id,
                   struct km_error *err) KM_WUR;

/* SHA-384 of a file (the enclave binary: /proc/self/exe). */
int attest_dev_measure(uint8_t out[ATTEST_PCR_LEN], const char *path, struct km_error *err) KM_WUR;

#endif /* KM_ATTEST_PROVIDER_H */
