/*
 * doc.c - syntax of a Nitro attestation document (doc.h): COSE_Sign1
 * envelope, protected header, payload map; the Sig_structure digest; and
 * reading a document as a file holds it (raw or base64).
 */
#include "attest/doc.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "attest/cbor.h"
#include "common/base64.h"
#include "common/banned.h"

#define COSE_TAG_SIGN1 18
#define COSE_HDR_ALG   1
#define COSE_ALG_ES384 (-35)

/* Copies at most 40 bytes of peer text into out, printable ASCII only, so a
 * message never carries control characters from the document. */
static const char *printable(char out[41], const uint8_t *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < 40; i++)
        out[k++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    out[k] = '\0';
    return out;
}

static int bytes_copy(struct attest_bytes *dst, const uint8_t *p, size_t len, struct km_error *err)
{
    dst->present = true;
    dst->len = len;
    dst->data = NULL;
    if (len == 0)
        return KM_OK;
    dst->data = malloc(len);
    if (dst->data == NULL) {
        dst->present = false;
        dst->len = 0;
        return km_error_set(err, KM_ERR_NOMEM, 0, "out of memory");
    }
    memcpy(dst->data, p, len);
    return KM_OK;
}

static void bytes_free(struct attest_bytes *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void attest_doc_clear(struct attest_doc *d)
{
    if (d == NULL)
        return;
    bytes_free(&d->certificate);
    for (size_t i = 0; i < ATTEST_CABUNDLE_MAX; i++)
        bytes_free(&d->cabundle[i]);
    bytes_free(&d->public_key);
    bytes_free(&d->user_data);
    bytes_free(&d->nonce);
    bytes_free(&d->protected_header);
    bytes_free(&d->payload);
    memset(d, 0, sizeof(*d));
}

/* A byte string of min..max bytes. */
static int want_bytes(const struct cbor_item *v, const char *name, size_t min, size_t max,
                      struct km_error *err)
{
    if (v->type != CBOR_BYTES)
        return km_error_set(err, KM_ERR_INVALID, 0, "payload: %s is not a byte string", name);
    if (v->len < min || v->len > max)
        return km_error_set(err, KM_ERR_INVALID, 0, "payload: %s has %zu bytes (allowed %zu..%zu)",
                            name, v->len, min, max);
    return KM_OK;
}

/* An optional field: CBOR null means "not provided". */
static int opt_bytes(struct attest_bytes *dst, const struct cbor_item *v, const char *name,
                     size_t min, size_t max, struct km_error *err)
{
    int r;
    if (v->type == CBOR_NULL)
        return KM_OK;
    if ((r = want_bytes(v, name, min, max, err)) != KM_OK)
        return r;
    return bytes_copy(dst, v->ptr, v->len, err);
}

static int parse_pcrs(struct attest_doc *out, const struct cbor_item *v, struct km_error *err)
{
    if (v->type != CBOR_MAP)
        return km_error_set(err, KM_ERR_INVALID, 0, "payload: pcrs is not a map");
    if (v->count < 1 || v->count > ATTEST_MAX_PCRS)
        return km_error_set(err, KM_ERR_INVALID, 0, "payload: pcrs has %zu entries (allowed 1..%d)",
                            v->count, ATTEST_MAX_PCRS);
    for (size_t i = 0; i < v->count; i++) {
        const struct cbor_item *k = &v->items[2 * i], *val = &v->items[2 * i + 1];
        if (k->type != CBOR_UINT || k->u >= ATTEST_MAX_PCRS)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "payload: pcrs key %zu is not an integer 0..%d", i,
                                ATTEST_MAX_PCRS - 1);
        if (val->type != CBOR_BYTES || (val->len != 32 && val->len != 48 && val->len != 64))
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "payload: PCR%u is not a byte string of 32, 48 or 64 bytes",
                                (unsigned)k->u);
        /* Keys are unique (the decoder refuses duplicates). */
        struct attest_pcr *p = &out->pcrs[k->u];
        p->present = true;
        p->len = val->len;
        memcpy(p->value, val->ptr, val->len);
    }
    return KM_OK;
}

static int parse_cabundle(struct attest_doc *out, const struct cbor_item *v, struct km_error *err)
{
    int r;
    if (v->type != CBOR_ARRAY)
        return km_error_set(err, KM_ERR_INVALID, 0, "payload: cabundle is not an array");
    if (v->count < 1 || v->count > ATTEST_CABUNDLE_MAX)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "payload: cabundle has %zu certificates (allowed 1..%d)", v->count,
                            ATTEST_CABUNDLE_MAX);
    for (size_t i = 0; i < v->count; i++) {
        const struct cbor_item *c = &v->items[i];
        if (c->type != CBOR_BYTES || c->len < 1 || c->len > ATTEST_CERT_MAX_LEN)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "payload: cabundle[%zu] is not a byte string of 1..%d bytes", i,
                                ATTEST_CERT_MAX_LEN);
        if ((r = bytes_copy(&out->cabundle[i], c->ptr, c->len, err)) != KM_OK)
            return r;
        out->cabundle_len = i + 1;
    }
    return KM_OK;
}

enum {
    F_MODULE_ID = 1 << 0,
    F_DIGEST = 1 << 1,
    F_TIMESTAMP = 1 << 2,
    F_PCRS = 1 << 3,
    F_CERTIFICATE = 1 << 4,
    F_CABUNDLE = 1 << 5,
};

static int parse_payload(struct attest_doc *out, const struct cbor_item *m, struct km_error *err)
{
    static const struct {
        unsigned flag;
        const char *name;
    } required[] = {
        {F_MODULE_ID, "module_id"}, {F_DIGEST, "digest"},           {F_TIMESTAMP, "timestamp"},
        {F_PCRS, "pcrs"},           {F_CERTIFICATE, "certificate"}, {F_CABUNDLE, "cabundle"},
    };
    unsigned seen = 0;
    char text[41];
    int r;

    if (m->type != CBOR_MAP)
        return km_error_set(err, KM_ERR_INVALID, 0, "payload: not a map");
    /* Keys are unique (the decoder refuses duplicates). */
    for (size_t i = 0; i < m->count; i++) {
        const struct cbor_item *k = &m->items[2 * i], *v = &m->items[2 * i + 1];

        if (k->type != CBOR_TEXT)
            return km_error_set(err, KM_ERR_INVALID, 0, "payload: key %zu is not a text string", i);
        if (cbor_text_eq(k, "module_id")) {
            if (v->type != CBOR_TEXT || v->len < 1 || v->len > ATTEST_MODULE_ID_MAX ||
                memchr(v->ptr, '\0', v->len) != NULL)
                return km_error_set(err, KM_ERR_INVALID, 0,
                                    "payload: module_id is not a text string of 1..%d bytes",
                                    ATTEST_MODULE_ID_MAX);
            memcpy(out->module_id, v->ptr, v->len);
            out->module_id[v->len] = '\0';
            seen |= F_MODULE_ID;
        } else if (cbor_text_eq(k, "digest")) {
            if (!cbor_text_eq(v, "SHA384"))
                return km_error_set(err, KM_ERR_INVALID, 0, "payload: digest is not \"SHA384\"");
            memcpy(out->digest, "SHA384", sizeof("SHA384"));
            seen |= F_DIGEST;
        } else if (cbor_text_eq(k, "timestamp")) {
            if (v->type != CBOR_UINT || v->u == 0)
                return km_error_set(err, KM_ERR_INVALID, 0,
                                    "payload: timestamp is not a positive integer");
            out->timestamp_ms = v->u;
            seen |= F_TIMESTAMP;
        } else if (cbor_text_eq(k, "pcrs")) {
            if ((r = parse_pcrs(out, v, err)) != KM_OK)
                return r;
            seen |= F_PCRS;
        } else if (cbor_text_eq(k, "certificate")) {
            if ((r = want_bytes(v, "certificate", 1, ATTEST_CERT_MAX_LEN, err)) != KM_OK ||
                (r = bytes_copy(&out->certificate, v->ptr, v->len, err)) != KM_OK)
                return r;
            seen |= F_CERTIFICATE;
        } else if (cbor_text_eq(k, "cabundle")) {
            if ((r = parse_cabundle(out, v, err)) != KM_OK)
                return r;
            seen |= F_CABUNDLE;
        } else if (cbor_text_eq(k, "public_key")) {
            if ((r = opt_bytes(&out->public_key, v, "public_key", 1, ATTEST_PUBLIC_KEY_MAX, err)) !=
                KM_OK)
                return r;
        } else if (cbor_text_eq(k, "user_data")) {
            if ((r = opt_bytes(&out->user_data, v, "user_data", 0, ATTEST_USER_DATA_MAX, err)) !=
                KM_OK)
                return r;
        } else if (cbor_text_eq(k, "nonce")) {
            if ((r = opt_bytes(&out->nonce, v, "nonce", 0, ATTEST_NONCE_MAX, err)) != KM_OK)
                return r;
        } else {
            return km_error_set(err, KM_ERR_INVALID, 0, "payload: unknown key \"%s\"",
                                printable(text, k->ptr, k->len));
        }
    }
    for (size_t i = 0; i < KM_ARRAY_LEN(required); i++) {
        if (!(seen & required[i].flag))
            return km_error_set(err, KM_ERR_INVALID, 0, "payload: %s is missing", required[i].name);
    }
    return KM_OK;
}

/* Decodes a byte string nested in the document. Input that ends early is
 * malformed here, not "incomplete": more bytes cannot follow. */
static int decode_nested(struct cbor_tree **t, const struct cbor_item *bstr, const char *what,
                         struct km_error *err)
{
    int r = cbor_decode(t, bstr->ptr, bstr->len, &cbor_doc_limits, err);
    if (r == KM_ERR_INCOMPLETE) {
        r = KM_ERR_INVALID;
        if (err != NULL)
            err->code = r;
    }
    if (r != KM_OK && err != NULL)
        km_error_prefix(err, "%s", what);
    return r;
}

int attest_doc_parse(struct attest_doc *out, const uint8_t *doc, size_t len, struct km_error *err)
{
    struct cbor_tree *cose = NULL, *hdr = NULL, *pl = NULL;
    const struct cbor_item *root, *prot, *unprot, *payload, *sig, *alg;
    int r;

    KM_ASSERT(out != NULL);
    memset(out, 0, sizeof(*out));
    if (len > ATTEST_DOC_MAX_LEN) {
        r = km_error_set(err, KM_ERR_TOO_LARGE, 0, "document of %zu bytes exceeds %u bytes", len,
                         ATTEST_DOC_MAX_LEN);
        goto out;
    }
    if ((r = cbor_decode(&cose, doc, len, &cbor_doc_limits, err)) != KM_OK) {
        if (err != NULL)
            km_error_prefix(err, "COSE_Sign1");
        goto out;
    }
    root = cbor_root(cose);
    if (root->type == CBOR_TAG) {
        if (root->u != COSE_TAG_SIGN1) {
            r = km_error_set(err, KM_ERR_INVALID, 0, "COSE_Sign1: unexpected tag (only 18)");
            goto out;
        }
        root = &root->items[0];
    }
    if (root->type != CBOR_ARRAY || root->count != 4) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "COSE_Sign1: not an array of 4 elements");
        goto out;
    }
    prot = &root->items[0];
    unprot = &root->items[1];
    payload = &root->items[2];
    sig = &root->items[3];
    if (prot->type != CBOR_BYTES) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "COSE_Sign1: protected header is not a bstr");
        goto out;
    }
    if (unprot->type != CBOR_MAP) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "COSE_Sign1: unprotected header is not a map");
        goto out;
    }
    if (payload->type != CBOR_BYTES) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "COSE_Sign1: payload is not a bstr");
        goto out;
    }
    if (sig->type != CBOR_BYTES || sig->len != ATTEST_SIGNATURE_LEN) {
        r = km_error_set(err, KM_ERR_INVALID, 0,
                         "COSE_Sign1: signature is not a bstr of %d bytes (ES384 r || s)",
                         ATTEST_SIGNATURE_LEN);
        goto out;
    }
    if ((r = decode_nested(&hdr, prot, "protected header", err)) != KM_OK)
        goto out;
    alg = cbor_map_get_int(cbor_root(hdr), COSE_HDR_ALG);
    if (cbor_root(hdr)->type != CBOR_MAP || cbor_root(hdr)->count != 1 || alg == NULL ||
        alg->type != CBOR_NEGINT || alg->u != (uint64_t)(-(COSE_ALG_ES384 + 1))) {
        r = km_error_set(err, KM_ERR_INVALID, 0,
                         "protected header: not exactly {1: -35} (alg ES384)");
        goto out;
    }
    if ((r = decode_nested(&pl, payload, "payload", err)) != KM_OK)
        goto out;
    if ((r = parse_payload(out, cbor_root(pl), err)) != KM_OK)
        goto out;
    if ((r = bytes_copy(&out->protected_header, prot->ptr, prot->len, err)) != KM_OK ||
        (r = bytes_copy(&out->payload, payload->ptr, payload->len, err)) != KM_OK)
        goto out;
    memcpy(out->signature, sig->ptr, ATTEST_SIGNATURE_LEN);
out:
    cbor_tree_free(pl);
    cbor_tree_free(hdr);
    cbor_tree_free(cose);
    if (r != KM_OK)
        attest_doc_clear(out);
    return r;
}

/* The CBOR head of a byte string of n bytes (shortest form). */
static size_t bstr_head(uint8_t h[9], size_t n)
{
    uint64_t v = n;
    if (v < 24) {
        h[0] = (uint8_t)(0x40 | v);
        return 1;
    }
    if (v <= 0xff) {
        h[0] = 0x58, h[1] = (uint8_t)v;
        return 2;
    }
    if (v <= 0xffff) {
        h[0] = 0x59, h[1] = (uint8_t)(v >> 8), h[2] = (uint8_t)v;
        return 3;
    }
    if (v <= 0xffffffffu) {
        h[0] = 0x5a;
        h[1] = (uint8_t)(v >> 24), h[2] = (uint8_t)(v >> 16);
        h[3] = (uint8_t)(v >> 8), h[4] = (uint8_t)v;
        return 5;
    }
    h[0] = 0x5b;
    for (int i = 0; i < 8; i++)
        h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
    return 9;
}

static int md_bstr(EVP_MD_CTX *c, const struct attest_bytes *b)
{
    uint8_t h[9];
    size_t n = bstr_head(h, b->len);
    return EVP_DigestUpdate(c, h, n) == 1 &&
           (b->len == 0 || EVP_DigestUpdate(c, b->data, b->len) == 1);
}

void attest_doc_sig_digest(const struct attest_doc *d, uint8_t out[48])
{
    /* ["Signature1", protected, h'', payload]: array(4), text(10). */
    static const uint8_t head[] = {0x84, 0x6a, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', '1'};
    static const uint8_t empty_bstr = 0x40;
    unsigned int olen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();

    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha384(), NULL) == 1 &&
             EVP_DigestUpdate(c, head, sizeof(head)) == 1 && md_bstr(c, &d->protected_header) &&
             EVP_DigestUpdate(c, &empty_bstr, 1) == 1 && md_bstr(c, &d->payload) &&
             EVP_DigestFinal_ex(c, out, &olen) == 1 && olen == 48;
    EVP_MD_CTX_free(c);
    /* Only an allocation can fail here; a made-up digest could let a
     * forged signature through, so stop like xmalloc does on OOM. */
    if (!ok)
        KM_BUG("SHA-384 of the COSE Sig_structure failed");
}

static bool is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Strict standard base64 of s[0..n) (whitespace already removed), padded
 * or not (some tools drop the '='). */
static int b64_decode(uint8_t **out, size_t *out_len, const uint8_t *s, size_t n,
                      struct km_error *err)
{
    int r = base64_decode(out, out_len, (const char *)s, n, ATTEST_DOC_MAX_LEN, true);
    if (r == KM_ERR_TOO_LARGE)
        return km_error_set(err, r, 0, "document: more than %u bytes", ATTEST_DOC_MAX_LEN);
    if (r == KM_OK && *out_len == 0)
        r = KM_ERR_INVALID;
    if (r != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "document: not raw CBOR, and not base64 (bad length, padding, "
                            "character or unused bits)");
    return KM_OK;
}

int attest_doc_read_any(uint8_t **out, size_t *out_len, const uint8_t *in, size_t in_len,
                        struct km_error *err)
{
    /* Base64 of the largest document. */
    const size_t b64_max = (ATTEST_DOC_MAX_LEN + 2) / 3 * 4;
    uint8_t *s;
    size_t n = 0;
    int r;

    KM_ASSERT(out != NULL && out_len != NULL);
    *out = NULL;
    *out_len = 0;
    if (in_len == 0)
        return km_error_set(err, KM_ERR_INVALID, 0, "document: empty");
    if (in[0] == 0x84 || in[0] == 0xd2) {
        if (in_len > ATTEST_DOC_MAX_LEN)
            return km_error_set(err, KM_ERR_TOO_LARGE, 0,
                                "document: %zu bytes exceed the limit of %u", in_len,
                                ATTEST_DOC_MAX_LEN);
        *out = malloc(in_len);
        if (*out == NULL)
            return km_error_set(err, KM_ERR_NOMEM, 0, "out of memory");
        memcpy(*out, in, in_len);
        *out_len = in_len;
        return KM_OK;
    }
    s = malloc(in_len < b64_max ? in_len : b64_max);
    if (s == NULL)
        return km_error_set(err, KM_ERR_NOMEM, 0, "out of memory");
    for (size_t i = 0; i < in_len; i++) {
        if (is_space(in[i]))
            continue;
        if (n == b64_max) {
            free(s);
            return km_error_set(err, KM_ERR_TOO_LARGE, 0, "document: more than %u bytes",
                                ATTEST_DOC_MAX_LEN);
        }
        s[n++] = in[i];
    }
    r = b64_decode(out, out_len, s, n, err);
    free(s);
    return r;
}
