/*
 * test_doc.c - attest_doc_parse() on the real documents (fields against
 * the .json, the Sig_structure digest) and on synthetic documents built
 * with the CBOR encoder, one syntax rule broken at a time; and
 * attest_doc_read_any() (raw or base64).
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "nitro_fixture.h"

#include "attest/cbor.h"
#include "attest/doc.h"
#include "common/buf.h"
#include "common/hex.h"
#include "common/banned.h"

static void test_real_documents(void **state)
{
    (void)state;
    static const char *const all[] = {
        "cape-2022-prod",
        "epsilon-2026-prod",
        "eternis-2024-debug",
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(all); i++) {
        json_t *j = nitro_json(all[i]);
        const json_t *cose = json_object_get(j, "cose");
        struct attest_doc d;
        struct km_error err;
        size_t len;
        uint8_t *doc = nitro_doc(all[i], &len);
        uint8_t want[96], digest[48];
        char sha[65];

        nitro_sha256_hex(sha, doc, len);
        CHECK_STR_EQ(sha, nitro_str(j, "doc_sha256"));
        CHECK_EQ(len, nitro_uint(j, "doc_len"));
        CHECK_OK(attest_doc_parse(&d, doc, len, &err));
        CHECK_STR_EQ(d.module_id, nitro_str(j, "module_id"));
        CHECK_EQ(d.timestamp_ms, nitro_uint(j, "timestamp_ms"));
        CHECK_STR_EQ(d.digest, "SHA384");
        CHECK_EQ(d.cabundle_len, nitro_uint(j, "cabundle_len"));
        CHECK_EQ(d.certificate.len, nitro_uint(json_object_get(j, "certificate"), "der_len"));
        /* The COSE pieces. */
        CHECK_EQ(d.protected_header.len, 4);
        CHECK_MEM_EQ(d.protected_header.data, "\xa1\x01\x38\x22", 4);
        CHECK_EQ(d.payload.len, nitro_uint(cose, "payload_len"));
        nitro_unhex(want, 96, nitro_str(cose, "signature_hex"));
        CHECK_MEM_EQ(d.signature, want, 96);
        attest_doc_sig_digest(&d, digest);
        nitro_unhex(want, 48, nitro_str(cose, "sig_structure_sha384"));
        CHECK_MEM_EQ(digest, want, 48);
        /* The payload map form. */
        bool indef = json_is_true(json_object_get(cose, "payload_uses_indefinite_length"));
        CHECK_EQ(d.payload.data[0], indef ? 0xbf : 0xa9);
        /* Optional fields: null means "not provided". */
        if (json_is_null(json_object_get(j, "public_key")))
            CHECK(!d.public_key.present);
        else
            CHECK(d.public_key.present);
        CHECK(d.nonce.present);
        CHECK(d.user_data.present);
        attest_doc_clear(&d);
        attest_doc_clear(&d); /* idempotent */
        free(doc);
        json_decref(j);
    }
    attest_doc_clear(NULL);
}

static void test_negative_files_parse(void **state)
{
    (void)state;
    /* These break the signature, root or chain, not the syntax. */
    static const char *const parse_ok[] = {
        "cape-2022-prod-bad-payload", "cape-2022-prod-bad-signature", "cape-2022-prod-bad-root",
        "cape-2022-prod-bad-chain",   "eternis-upstream-invalid",
    };
    struct attest_doc d;
    struct km_error err;
    size_t len;

    for (size_t i = 0; i < KM_ARRAY_LEN(parse_ok); i++) {
        uint8_t *doc = nitro_doc(parse_ok[i], &len);
        if (attest_doc_parse(&d, doc, len, &err) != KM_OK)
            fail_msg("%s: %s", parse_ok[i], err.msg);
        attest_doc_clear(&d);
        free(doc);
    }
    uint8_t *doc = nitro_doc("cape-2022-prod-bad-truncated", &len);
    CHECK_ERR(attest_doc_parse(&d, doc, len, &err), KM_ERR_INCOMPLETE);
    CHECK_CONTAINS(err.msg, "COSE_Sign1: ");
    CHECK_EQ(d.timestamp_ms, 0);
    CHECK_NULL(d.payload.data);
    free(doc);
}

static void test_every_prefix_and_tag(void **state)
{
    (void)state;
    size_t len;
    uint8_t *doc = nitro_doc("cape-2022-prod", &len);
    struct attest_doc d;
    struct km_error err;

    for (size_t n = 0; n < len; n++) {
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, doc, n);
        CHECK_ERR(attest_doc_parse(&d, p, n, &err), KM_ERR_INCOMPLETE);
        free(p);
    }
    /* Tag 18 (COSE_Sign1) is accepted, other tags are not. */
    uint8_t *t = malloc(len + 1);
    memcpy(t + 1, doc, len);
    t[0] = 0xd2;
    CHECK_OK(attest_doc_parse(&d, t, len + 1, &err));
    CHECK_EQ(d.timestamp_ms, 1663263808848u);
    attest_doc_clear(&d);
    t[0] = 0xd1;
    CHECK_ERR(attest_doc_parse(&d, t, len + 1, &err), KM_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "unexpected tag");
    /* Trailing bytes. */
    memcpy(t, doc, len);
    t[len] = 0x00;
    CHECK_ERR(attest_doc_parse(&d, t, len + 1, &err), KM_ERR_TRAILING_DATA);
    free(t);
    /* Too large. */
    t = calloc(1, ATTEST_DOC_MAX_LEN + 1);
    t[0] = 0x84;
    CHECK_ERR(attest_doc_parse(&d, t, ATTEST_DOC_MAX_LEN + 1, &err), KM_ERR_TOO_LARGE);
    free(t);
    free(doc);
}

/* Synthetic documents: one rule broken at a time. */
enum mut {
    M_NONE,
    M_INDEFINITE,
    M_NULLS,
    M_ABSENT,
    M_NO_MODULE_ID,
    M_EMPTY_MODULE_ID,
    M_LONG_MODULE_ID,
    M_NUL_MODULE_ID,
    M_MODULE_ID_BYTES,
    M_DIGEST_SHA256,
    M_NO_DIGEST,
    M_TIMESTAMP_ZERO,
    M_TIMESTAMP_NEG,
    M_NO_TIMESTAMP,
    M_PCR_KEY_32,
    M_PCR_KEY_NEG,
    M_PCR_LEN_47,
    M_PCR_TEXT,
    M_PCRS_EMPTY,
    M_PCRS_ARRAY,
    M_PCRS_33,
    M_NO_PCRS,
    M_CERT_EMPTY,
    M_CERT_BIG,
    M_NO_CERT,
    M_CABUNDLE_EMPTY,
    M_CABUNDLE_17,
    M_CABUNDLE_TEXT,
    M_CABUNDLE_BIG,
    M_NO_CABUNDLE,
    M_PUBKEY_EMPTY,
    M_PUBKEY_BIG,
    M_USERDATA_513,
    M_NONCE_513,
    M_NONCE_UNDEFINED,
    M_NONCE_TEXT,
    M_UNKNOWN_KEY,
    M_INT_KEY,
    M_DUP_KEY,
    M_PAYLOAD_NOT_MAP,
    M_PAYLOAD_TRAILING,
    M_PAYLOAD_TRUNCATED,
    M_PAYLOAD_TEXT,
    M_PROT_ES256,
    M_PROT_EXTRA,
    M_PROT_EMPTY,
    M_PROT_MAP,
    M_UNPROT_ARRAY,
    M_UNPROT_FULL,
    M_SIG_95,
    M_ARRAY_3,
    M_NOT_ARRAY,
};

static const uint8_t pcr_val[64] = {0xaa, 0xbb};
static const uint8_t blob[1100] = {0x30, 0x82};
static const char long_id[130] =
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/* Appends one "key: value" pair (or more) and returns how many. */
static size_t put_fields(struct buf *b, enum mut m)
{
    size_t n = 0;
    int r = KM_OK;

    if (m != M_NO_MODULE_ID) {
        r |= cbor_put_text(b, "module_id");
        if (m == M_EMPTY_MODULE_ID)
            r |= cbor_put_text(b, "");
        else if (m == M_LONG_MODULE_ID)
            r |= cbor_put_text_n(b, (const char *)long_id, 129);
        else if (m == M_NUL_MODULE_ID)
            r |= cbor_put_text_n(b, "i-1\0x", 5);
        else if (m == M_MODULE_ID_BYTES)
            r |= cbor_put_bytes(b, (const uint8_t *)"i-1", 3);
        else
            r |= cbor_put_text(b, "i-0123-enc0456");
        n++;
    }
    if (m != M_NO_DIGEST) {
        r |= cbor_put_text(b, "digest");
        r |= cbor_put_text(b, m == M_DIGEST_SHA256 ? "SHA256" : "SHA384");
        n++;
    }
    if (m != M_NO_TIMESTAMP) {
        r |= cbor_put_text(b, "timestamp");
        if (m == M_TIMESTAMP_NEG)
            r |= cbor_put_int(b, -5);
        else
            r |= cbor_put_uint(b, m == M_TIMESTAMP_ZERO ? 0 : 1700000000123u);
        n++;
    }
    if (m != M_NO_PCRS) {
        r |= cbor_put_text(b, "pcrs");
        if (m == M_PCRS_EMPTY) {
            r |= cbor_put_map(b, 0);
        } else if (m == M_PCRS_ARRAY) {
            r |= cbor_put_array(b, 1);
            r |= cbor_put_bytes(b, pcr_val, 48);
        } else if (m == M_PCRS_33) {
            r |= cbor_put_map(b, 33);
            for (unsigned i = 0; i < 33; i++) {
                r |= cbor_put_uint(b, i);
                r |= cbor_put_bytes(b, pcr_val, 48);
            }
        } else {
            r |= cbor_put_map(b, 4);
            r |= cbor_put_uint(b, 0);
            r |= cbor_put_bytes(b, pcr_val, 48);
            r |= cbor_put_uint(b, 1);
            r |= cbor_put_bytes(b, pcr_val, 32);
            r |= cbor_put_uint(b, 31);
            r |= cbor_put_bytes(b, pcr_val, 64);
            if (m == M_PCR_KEY_32)
                r |= cbor_put_uint(b, 32);
            else if (m == M_PCR_KEY_NEG)
                r |= cbor_put_int(b, -1);
            else
                r |= cbor_put_uint(b, 8);
            if (m == M_PCR_LEN_47)
                r |= cbor_put_bytes(b, pcr_val, 47);
            else if (m == M_PCR_TEXT)
                r |= cbor_put_text(b, "00");
            else
                r |= cbor_put_bytes(b, pcr_val, 48);
        }
        n++;
    }
    if (m != M_NO_CERT) {
        r |= cbor_put_text(b, "certificate");
        r |= cbor_put_bytes(b, blob, m == M_CERT_EMPTY ? 0 : m == M_CERT_BIG ? 1025 : 600);
        n++;
    }
    if (m != M_NO_CABUNDLE) {
        size_t count = m == M_CABUNDLE_EMPTY ? 0 : m == M_CABUNDLE_17 ? 17 : 3;
        r |= cbor_put_text(b, "cabundle");
        r |= cbor_put_array(b, count);
        for (size_t i = 0; i < count; i++) {
            if (m == M_CABUNDLE_TEXT && i == 1)
                r |= cbor_put_text(b, "cert");
            else
                r |= cbor_put_bytes(b, blob, m == M_CABUNDLE_BIG && i == 2 ? 1025 : 500 + i);
        }
        n++;
    }
    if (m == M_ABSENT)
        return r == KM_OK ? n : 0;
    r |= cbor_put_text(b, "public_key");
    if (m == M_NULLS)
        r |= cbor_put_null(b);
    else
        r |= cbor_put_bytes(b, blob, m == M_PUBKEY_EMPTY ? 0 : m == M_PUBKEY_BIG ? 1025 : 33);
    r |= cbor_put_text(b, "user_data");
    if (m == M_NULLS)
        r |= cbor_put_null(b);
    else
        r |= cbor_put_bytes(b, blob, m == M_USERDATA_513 ? 513 : 0);
    r |= cbor_put_text(b, "nonce");
    if (m == M_NULLS)
        r |= cbor_put_null(b);
    else if (m == M_NONCE_UNDEFINED)
        r |= buf_put_u8(b, 0xf7);
    else if (m == M_NONCE_TEXT)
        r |= cbor_put_text(b, "nonce");
    else
        r |= cbor_put_bytes(b, blob, m == M_NONCE_513 ? 513 : 16);
    n += 3;
    if (m == M_UNKNOWN_KEY) {
        r |= cbor_put_text(b, "extra\n\x01key");
        r |= cbor_put_uint(b, 1);
        n++;
    } else if (m == M_INT_KEY) {
        r |= cbor_put_uint(b, 7);
        r |= cbor_put_uint(b, 1);
        n++;
    } else if (m == M_DUP_KEY) {
        r |= cbor_put_text(b, "nonce");
        r |= cbor_put_null(b);
        n++;
    }
    CHECK_OK(r);
    return n;
}

static uint8_t *build_doc(enum mut m, size_t *len)
{
    struct buf fields, payload, doc;
    uint8_t sig[96];
    int r = KM_OK;
    size_t n;

    buf_init(&fields, 64 * 1024);
    buf_init(&payload, 64 * 1024);
    buf_init(&doc, 64 * 1024);
    n = put_fields(&fields, m);
    if (m == M_PAYLOAD_NOT_MAP) {
        r |= cbor_put_array(&payload, 0);
    } else if (m == M_INDEFINITE) {
        r |= buf_put_u8(&payload, 0xbf);
        r |= buf_put(&payload, buf_peek(&fields), buf_len(&fields));
        r |= buf_put_u8(&payload, 0xff);
    } else {
        r |= cbor_put_map(&payload, n);
        r |= buf_put(&payload, buf_peek(&fields), buf_len(&fields));
    }
    if (m == M_PAYLOAD_TRAILING)
        r |= buf_put_u8(&payload, 0);

    if (m == M_NOT_ARRAY) {
        r |= cbor_put_map(&doc, 0);
    } else {
        r |= cbor_put_array(&doc, m == M_ARRAY_3 ? 3 : 4);
        if (m == M_PROT_ES256)
            r |= cbor_put_bytes(&doc, (const uint8_t *)"\xa1\x01\x26", 3);
        else if (m == M_PROT_EXTRA)
            r |= cbor_put_bytes(&doc, (const uint8_t *)"\xa2\x01\x38\x22\x04\x00", 6);
        else if (m == M_PROT_EMPTY)
            r |= cbor_put_bytes(&doc, NULL, 0);
        else if (m == M_PROT_MAP)
            r |= cbor_put_map(&doc, 0);
        else
            r |= cbor_put_bytes(&doc, (const uint8_t *)"\xa1\x01\x38\x22", 4);
        if (m == M_UNPROT_ARRAY) {
            r |= cbor_put_array(&doc, 0);
        } else if (m == M_UNPROT_FULL) {
            r |= cbor_put_map(&doc, 1);
            r |= cbor_put_uint(&doc, 4);
            r |= cbor_put_bytes(&doc, (const uint8_t *)"kid", 3);
        } else {
            r |= cbor_put_map(&doc, 0);
        }
        if (m == M_PAYLOAD_TEXT)
            r |= cbor_put_text(&doc, "payload");
        else
            r |= cbor_put_bytes(&doc, buf_peek(&payload),
                                buf_len(&payload) - (m == M_PAYLOAD_TRUNCATED ? 1 : 0));
        if (m != M_ARRAY_3) {
            memset(sig, 0x5a, sizeof(sig));
            r |= cbor_put_bytes(&doc, sig, m == M_SIG_95 ? 95 : 96);
        }
    }
    CHECK_OK(r);
    *len = buf_len(&doc);
    uint8_t *out = malloc(*len);
    memcpy(out, buf_peek(&doc), *len);
    buf_release(&fields);
    buf_release(&payload);
    buf_release(&doc);
    return out;
}

static void test_synthetic_ok(void **state)
{
    (void)state;
    static const enum mut ok[] = {M_NONE, M_INDEFINITE, M_NULLS, M_ABSENT, M_UNPROT_FULL};
    struct attest_doc d;
    struct km_error err;
    size_t len;

    for (size_t i = 0; i < KM_ARRAY_LEN(ok); i++) {
        uint8_t *doc = build_doc(ok[i], &len);
        if (attest_doc_parse(&d, doc, len, &err) != KM_OK)
            fail_msg("variant %d: %s", (int)ok[i], err.msg);
        CHECK_STR_EQ(d.module_id, "i-0123-enc0456");
        CHECK_EQ(d.timestamp_ms, 1700000000123u);
        CHECK(d.pcrs[0].present && d.pcrs[0].len == 48);
        CHECK(d.pcrs[1].present && d.pcrs[1].len == 32);
        CHECK(d.pcrs[31].present && d.pcrs[31].len == 64);
        CHECK(d.pcrs[8].present && d.pcrs[8].len == 48);
        CHECK(!d.pcrs[2].present);
        CHECK_MEM_EQ(d.pcrs[0].value, pcr_val, 48);
        CHECK_EQ(d.certificate.len, 600);
        CHECK_EQ(d.cabundle_len, 3);
        CHECK_EQ(d.cabundle[2].len, 502);
        CHECK_NULL(d.cabundle[3].data);
        if (ok[i] == M_NULLS || ok[i] == M_ABSENT) {
            CHECK(!d.public_key.present);
            CHECK(!d.user_data.present);
            CHECK(!d.nonce.present);
        } else {
            CHECK(d.public_key.present && d.public_key.len == 33);
            /* Present but empty: no allocation. */
            CHECK(d.user_data.present && d.user_data.len == 0 && d.user_data.data == NULL);
            CHECK(d.nonce.present && d.nonce.len == 16);
        }
        attest_doc_clear(&d);
        free(doc);
    }
}

static void test_synthetic_refused(void **state)
{
    (void)state;
    static const struct {
        enum mut m;
        int code;
        const char *msg;
    } bad[] = {
        {M_NO_MODULE_ID, KM_ERR_INVALID, "payload: module_id is missing"},
        {M_EMPTY_MODULE_ID, KM_ERR_INVALID, "payload: module_id"},
        {M_LONG_MODULE_ID, KM_ERR_INVALID, "payload: module_id"},
        {M_NUL_MODULE_ID, KM_ERR_INVALID, "payload: module_id"},
        {M_MODULE_ID_BYTES, KM_ERR_INVALID, "payload: module_id"},
        {M_DIGEST_SHA256, KM_ERR_INVALID, "payload: digest is not \"SHA384\""},
        {M_NO_DIGEST, KM_ERR_INVALID, "payload: digest is missing"},
        {M_TIMESTAMP_ZERO, KM_ERR_INVALID, "payload: timestamp"},
        {M_TIMESTAMP_NEG, KM_ERR_INVALID, "payload: timestamp"},
        {M_NO_TIMESTAMP, KM_ERR_INVALID, "payload: timestamp is missing"},
        {M_PCR_KEY_32, KM_ERR_INVALID, "payload: pcrs key 3 is not an integer 0..31"},
        {M_PCR_KEY_NEG, KM_ERR_INVALID, "payload: pcrs key 3"},
        {M_PCR_LEN_47, KM_ERR_INVALID, "payload: PCR8 is not a byte string of 32, 48 or 64"},
        {M_PCR_TEXT, KM_ERR_INVALID, "payload: PCR8"},
        {M_PCRS_EMPTY, KM_ERR_INVALID, "payload: pcrs has 0 entries"},
        {M_PCRS_ARRAY, KM_ERR_INVALID, "payload: pcrs is not a map"},
        {M_PCRS_33, KM_ERR_INVALID, "payload: pcrs has 33 entries"},
        {M_NO_PCRS, KM_ERR_INVALID, "payload: pcrs is missing"},
        {M_CERT_EMPTY, KM_ERR_INVALID, "payload: certificate has 0 bytes"},
        {M_CERT_BIG, KM_ERR_INVALID, "payload: certificate has 1025 bytes"},
        {M_NO_CERT, KM_ERR_INVALID, "payload: certificate is missing"},
        {M_CABUNDLE_EMPTY, KM_ERR_INVALID, "payload: cabundle has 0 certificates"},
        {M_CABUNDLE_17, KM_ERR_INVALID, "payload: cabundle has 17 certificates"},
        {M_CABUNDLE_TEXT, KM_ERR_INVALID, "payload: cabundle[1]"},
        {M_CABUNDLE_BIG, KM_ERR_INVALID, "payload: cabundle[2]"},
        {M_NO_CABUNDLE, KM_ERR_INVALID, "payload: cabundle is missing"},
        {M_PUBKEY_EMPTY, KM_ERR_INVALID, "payload: public_key has 0 bytes"},
        {M_PUBKEY_BIG, KM_ERR_INVALID, "payload: public_key has 1025 bytes"},
        {M_USERDATA_513, KM_ERR_INVALID, "payload: user_data has 513 bytes"},
        {M_NONCE_513, KM_ERR_INVALID, "payload: nonce has 513 bytes"},
        {M_NONCE_UNDEFINED, KM_ERR_INVALID, "payload: nonce is not a byte string"},
        {M_NONCE_TEXT, KM_ERR_INVALID, "payload: nonce is not a byte string"},
        {M_UNKNOWN_KEY, KM_ERR_INVALID, "payload: unknown key \"extra??key\""},
        {M_INT_KEY, KM_ERR_INVALID, "payload: key 9 is not a text string"},
        {M_DUP_KEY, KM_ERR_INVALID, "payload: duplicate map key"},
        {M_PAYLOAD_NOT_MAP, KM_ERR_INVALID, "payload: not a map"},
        {M_PAYLOAD_TRAILING, KM_ERR_TRAILING_DATA, "payload: 1 trailing bytes"},
        {M_PAYLOAD_TRUNCATED, KM_ERR_INVALID, "payload: "},
        {M_PAYLOAD_TEXT, KM_ERR_INVALID, "COSE_Sign1: payload is not a bstr"},
        {M_PROT_ES256, KM_ERR_INVALID, "protected header: not exactly {1: -35}"},
        {M_PROT_EXTRA, KM_ERR_INVALID, "protected header: not exactly {1: -35}"},
        {M_PROT_EMPTY, KM_ERR_INVALID, "protected header: empty input"},
        {M_PROT_MAP, KM_ERR_INVALID, "COSE_Sign1: protected header is not a bstr"},
        {M_UNPROT_ARRAY, KM_ERR_INVALID, "COSE_Sign1: unprotected header is not a map"},
        {M_SIG_95, KM_ERR_INVALID, "COSE_Sign1: signature is not a bstr of 96 bytes"},
        {M_ARRAY_3, KM_ERR_INVALID, "COSE_Sign1: not an array of 4 elements"},
        {M_NOT_ARRAY, KM_ERR_INVALID, "COSE_Sign1: not an array of 4 elements"},
    };
    struct attest_doc d;
    struct km_error err;
    size_t len;

    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++) {
        uint8_t *doc = build_doc(bad[i].m, &len);
        km_error_clear(&err);
        int r = attest_doc_parse(&d, doc, len, &err);
        if (r != bad[i].code || strstr(err.msg, bad[i].msg) == NULL)
            fail_msg("variant %d: want %d \"%s\", got %d \"%s\"", (int)bad[i].m, bad[i].code,
                     bad[i].msg, r, err.msg);
        /* Cleared on failure, nothing leaked (ASan). */
        CHECK_EQ(d.cabundle_len, 0);
        CHECK_NULL(d.certificate.data);
        CHECK_NULL(d.cabundle[0].data);
        CHECK_NULL(d.public_key.data);
        /* NULL err is fine. */
        CHECK_ERR(attest_doc_parse(&d, doc, len, NULL), bad[i].code);
        free(doc);
    }
}

static void read_any_ok(const char *in, const char *want_hex)
{
    uint8_t *out = NULL;
    size_t n;
    struct km_error err;
    char hex[256];

    if (attest_doc_read_any(&out, &n, (const uint8_t *)in, strlen(in), &err) != KM_OK)
        fail_msg("\"%s\": %s", in, err.msg);
    CHECK_STR_EQ(hex_encode(hex, sizeof(hex), out, n), want_hex);
    free(out);
}

static void read_any_bad(const char *in, int code)
{
    uint8_t *out = (uint8_t *)1;
    size_t n = 5;
    struct km_error err;
    CHECK_ERR(attest_doc_read_any(&out, &n, (const uint8_t *)in, strlen(in), &err), code);
    CHECK_NULL(out);
    CHECK_EQ(n, 0);
    CHECK(err.msg[0] != '\0');
}

static void test_read_any(void **state)
{
    (void)state;
    /* base64 (RFC 4648 section 10 vectors), with and without padding. */
    read_any_ok("Zg==", "66");
    read_any_ok("Zm8=", "666f");
    read_any_ok("Zm9v", "666f6f");
    read_any_ok("Zm9vYg==", "666f6f62");
    read_any_ok("Zm9vYmE=", "666f6f6261");
    read_any_ok("Zm9vYmFy", "666f6f626172");
    read_any_ok("Zg", "66");
    read_any_ok("Zm8", "666f");
    read_any_ok("Zm9vYg", "666f6f62");
    read_any_ok("+/+/", "fbffbf");
    /* Whitespace anywhere. */
    read_any_ok(" Zm9v\nYmFy\r\n\t", "666f6f626172");
    read_any_ok("Zm9vYg=\n=\n", "666f6f62");
    /* Raw CBOR passes through. */
    read_any_ok("\x84\x40\xa0", "8440a0");
    read_any_ok("\xd2\x84", "d284");

    read_any_bad("", KM_ERR_INVALID);
    read_any_bad("   \n", KM_ERR_INVALID);
    read_any_bad("Z", KM_ERR_INVALID);     /* one char of a group */
    read_any_bad("Zm9vY", KM_ERR_INVALID); /* 4k + 1 */
    read_any_bad("Zm9=v", KM_ERR_INVALID); /* '=' inside */
    read_any_bad("Zm9v=", KM_ERR_INVALID); /* padding after a full group */
    read_any_bad("Zg=", KM_ERR_INVALID);   /* half padding */
    read_any_bad("Zg===", KM_ERR_INVALID); /* too much padding */
    read_any_bad("====", KM_ERR_INVALID);
    read_any_bad("Zh==", KM_ERR_INVALID);     /* non-zero unused bits */
    read_any_bad("Zm9=", KM_ERR_INVALID);     /* non-zero unused bits */
    read_any_bad("Zm9v-_==", KM_ERR_INVALID); /* base64url is not accepted */
    read_any_bad("Zm9v\x01", KM_ERR_INVALID);

    /* Size limits: raw and base64. */
    uint8_t *big = malloc(64 * 1024);
    uint8_t *out;
    size_t n;
    struct km_error err;
    memset(big, 0x84, ATTEST_DOC_MAX_LEN + 1);
    CHECK_ERR(attest_doc_read_any(&out, &n, big, ATTEST_DOC_MAX_LEN + 1, &err), KM_ERR_TOO_LARGE);
    CHECK_OK(attest_doc_read_any(&out, &n, big, ATTEST_DOC_MAX_LEN, &err));
    CHECK_EQ(n, ATTEST_DOC_MAX_LEN);
    free(out);
    memset(big, 'A', 64 * 1024);
    CHECK_ERR(attest_doc_read_any(&out, &n, big, 64 * 1024, &err), KM_ERR_TOO_LARGE);
    CHECK_OK(attest_doc_read_any(&out, &n, big, ATTEST_DOC_MAX_LEN / 3 * 4, &err));
    CHECK_EQ(n, ATTEST_DOC_MAX_LEN / 3 * 3);
    free(out);
    /* Lots of whitespace around a small document is fine. */
    memset(big, ' ', 64 * 1024);
    memcpy(big + 1000, "Zm9v", 4);
    CHECK_OK(attest_doc_read_any(&out, &n, big, 64 * 1024, &err));
    CHECK_EQ(n, 3);
    free(out);
    free(big);

    /* The fixture files decode to documents whose SHA-256 the .json gives
     * (nitro_doc uses attest_doc_read_any; checked in test_real_documents). */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_real_documents), TEST(test_negative_files_parse), TEST(test_every_prefix_and_tag),
        TEST(test_synthetic_ok),   TEST(test_synthetic_refused),    TEST(test_read_any),
    };
    return RUN_TESTS("unit.attest.doc", tests);
}
