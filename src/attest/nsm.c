/*
 * nsm.c - the Nitro Secure Module provider: /dev/nsm, one NSM_IOCTL_RAW
 * per document, CBOR in and out (docs/ATTESTATION.md "Providers").
 *
 * The request and the response go through the same codecs the tests use
 * (attest_nsm_encode_request / attest_nsm_decode_response); only the raw
 * exchange differs, so the NSM path is tested through its interface on
 * machines without /dev/nsm.
 */
#include "attest/provider.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "attest/cbor.h"
#include "attest/provider_impl.h"
#include "common/xmalloc.h"
#include "common/banned.h"

/* The kernel's uapi (linux/nsm.h, Linux 6.8+), defined here because the
 * build machine's headers may predate it. */
struct attest_nsm_iovec {
    uint64_t addr;
    uint64_t len;
};
struct attest_nsm_raw_msg {
    struct attest_nsm_iovec request;
    struct attest_nsm_iovec response;
};
#define ATTEST_NSM_MAGIC     0x0A
#define ATTEST_NSM_IOCTL_RAW _IOWR(ATTEST_NSM_MAGIC, 0x0, struct attest_nsm_raw_msg)

struct nsm_provider {
    struct attest_provider base;
    attest_nsm_raw_fn raw;
    void *ctx;
    int fd; /* -1 when raw is injected */
    bool have_pcr0;
};

/* ---- Codecs --------------------------------------------------------------- */

static int put_optional(struct buf *out, const char *key, const uint8_t *p, size_t len)
{
    int r = cbor_put_text(out, key);
    if (r != KM_OK)
        return r;
    return p != NULL ? cbor_put_bytes(out, p, len) : cbor_put_null(out);
}

int attest_nsm_encode_request(struct buf *out, const struct attest_request *req)
{
    int r = cbor_put_map(out, 1);
    if (r == KM_OK)
        r = cbor_put_text(out, "Attestation");
    if (r == KM_OK)
        r = cbor_put_map(out, 3);
    if (r == KM_OK)
        r = put_optional(out, "public_key", req->public_key, req->public_key_len);
    if (r == KM_OK)
        r = put_optional(out, "user_data", req->user_data, req->user_data_len);
    if (r == KM_OK)
        r = put_optional(out, "nonce", req->nonce, req->nonce_len);
    return r;
}

static const struct cbor_limits nsm_response_limits = {
    .max_input = ATTEST_NSM_RESPONSE_MAX,
    .max_depth = 4,
    .max_items = 16,
    .max_container = 4,
};

static int decode_error_reply(const struct cbor_item *code, struct km_error *err)
{
    if (code->type != CBOR_TEXT)
        return km_error_set(err, KM_ERR_INVALID, 0, "NSM error reply without a code");
    return km_error_set(err, KM_ERR_REMOTE, 0,
                        "the Nitro Secure Module refused the attestation request: %.*s",
                        (int)(code->len > 64 ? 64 : code->len), (const char *)code->ptr);
}

int attest_nsm_decode_response(uint8_t **doc, size_t *doc_len, const uint8_t *p, size_t len,
                               struct km_error *err)
{
    *doc = NULL;
    *doc_len = 0;
    struct cbor_tree *t = NULL;
    int r = cbor_decode(&t, p, len, &nsm_response_limits, err);
    if (r != KM_OK) {
        km_error_prefix(err, "NSM response");
        return r;
    }
    const struct cbor_item *root = cbor_root(t);
    const struct cbor_item *e = cbor_map_get_text(root, "Error");
    const struct cbor_item *a = cbor_map_get_text(root, "Attestation");
    const struct cbor_item *d = a != NULL ? cbor_map_get_text(a, "document") : NULL;
    if (root->type != CBOR_MAP || root->count != 1)
        r = km_error_set(err, KM_ERR_INVALID, 0, "NSM response is not a one-entry map");
    else if (e != NULL)
        r = decode_error_reply(e, err);
    else if (d == NULL || d->type != CBOR_BYTES || d->len == 0 || d->len > ATTEST_DOC_MAX_LEN)
        r = km_error_set(err, KM_ERR_INVALID, 0,
                         "NSM response has no Attestation.document byte string");
    else {
        *doc = xmalloc(d->len);
        memcpy(*doc, d->ptr, d->len);
        *doc_len = d->len;
    }
    cbor_tree_free(t);
    return r;
}

/* ---- The device ----------------------------------------------------------- */

static int device_raw(void *ctx, const uint8_t *req, size_t req_len, uint8_t *resp,
                      size_t *resp_len, struct km_error *err)
{
    struct nsm_provider *n = ctx;
    struct attest_nsm_raw_msg msg = {
        .request = {.addr = (uint64_t)(uintptr_t)req, .len = req_len},
        .response = {.addr = (uint64_t)(uintptr_t)resp, .len = *resp_len},
    };
    int rc;
    do
        rc = ioctl(n->fd, ATTEST_NSM_IOCTL_RAW, &msg);
    while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return km_error_set(err, KM_ERR_IO, errno,
                            "NSM_IOCTL_RAW on the Nitro Secure Module failed: %s", strerror(errno));
    if (msg.response.len > *resp_len)
        return km_error_set(err, KM_ERR_IO, 0,
                            "the NSM reported a response larger than its buffer");
    *resp_len = (size_t)msg.response.len;
    return KM_OK;
}

static int nsm_attest(struct attest_provider *p, uint8_t **doc, size_t *doc_len,
                      const struct attest_request *req, struct km_error *err)
{
    struct nsm_provider *n = (struct nsm_provider *)p;
    struct buf rq;
    buf_init(&rq, ATTEST_NSM_REQUEST_MAX);
    int r = attest_nsm_encode_request(&rq, req);
    if (r != KM_OK) {
        buf_release(&rq);
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "attestation request over the NSM's %u-byte limit",
                            ATTEST_NSM_REQUEST_MAX);
    }
    uint8_t *resp = xmalloc(ATTEST_NSM_RESPONSE_MAX);
    size_t resp_len = ATTEST_NSM_RESPONSE_MAX;
    r = n->raw(n->ctx, buf_peek(&rq), buf_len(&rq), resp, &resp_len, err);
    buf_release(&rq);
    if (r == KM_OK)
        r = attest_nsm_decode_response(doc, doc_len, resp, resp_len, err);
    free(resp);
    if (r == KM_OK && !n->have_pcr0) {
        struct attest_doc d;
        struct km_error ignored;
        if (attest_doc_parse(&d, *doc, *doc_len, &ignored) == KM_OK && d.pcrs[0].present &&
            d.pcrs[0].len == ATTEST_PCR_LEN) {
            memcpy(p->pcr0, d.pcrs[0].value, ATTEST_PCR_LEN);
            n->have_pcr0 = true;
        }
        attest_doc_clear(&d);
    }
    return r;
}

static void nsm_free(struct attest_provider *p)
{
    struct nsm_provider *n = (struct nsm_provider *)p;
    if (n->fd >= 0)
        close(n->fd);
    free(n);
}

static const struct attest_provider_ops nsm_ops = {"nsm", nsm_attest, nsm_free};

struct attest_provider *attest_nsm_new_raw(attest_nsm_raw_fn raw, void *ctx)
{
    struct nsm_provider *n = xcalloc(1, sizeof(*n));
    n->base.ops = &nsm_ops;
    n->raw = raw;
    n->ctx = ctx;
    n->fd = -1;
    return &n->base;
}

int attest_nsm_open(struct attest_provider **out, const char *path, struct km_error *err)
{
    *out = NULL;
    if (path == NULL)
        path = ATTEST_NSM_DEVICE;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return km_error_set(err, KM_ERR_IO, e,
                                "%s does not exist: this is not an AWS Nitro Enclave (or its "
                                "kernel lacks the nsm driver); run keymeld-enclave inside a Nitro "
                                "Enclave, or set ATTESTATION=development outside production",
                                path);
        return km_error_set(err, KM_ERR_IO, e, "cannot open the Nitro Secure Module %s: %s", path,
                            strerror(e));
    }
    struct nsm_provider *n = (struct nsm_provider *)attest_nsm_new_raw(device_raw, NULL);
    n->ctx = n;
    n->fd = fd;
    *out = &n->base;
    return KM_OK;
}
