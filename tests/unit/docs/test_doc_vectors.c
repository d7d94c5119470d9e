/*
 * test_doc_vectors.c - the test vectors of docs/CRYPTO.md "Client formulas",
 * read from the page at test time and recomputed with the project's code:
 * the session and participant auth key derivations, the signing-approval
 * preimage, digest and signature (and that the enclave's approval check
 * accepts a signature made per the page, and refuses the layout that
 * docs/API.md once gave), request digests and signatures, and adaptor
 * completion. When the page and the code disagree, this fails.
 *
 * A vector is a fenced block with the info string "kmvec": first line
 * "vector: <kind>", then "name: value" lines (CRYPTO.md "Vector format").
 * The page is found through KM_DOCS_DIR (the source tree's docs/) or,
 * overriding it, the environment variable KEYMELD_DOCS_DIR.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <secp256k1.h>

#include "client/participant.h"
#include "client/session.h"
#include "common/hex.h"
#include "common/uuid.h"
#include "crypto/adaptor.h"
#include "crypto/auth.h"
#include "crypto/ctx.h"
#include "crypto/kdf.h"
#include "crypto/keypair.h"
#include "crypto/schnorr.h"
#include "enclave/policy.h"
#include "protocol/payload.h"
#include "common/banned.h"

#ifndef KM_DOCS_DIR
#error "KM_DOCS_DIR must name the source tree's docs directory"
#endif

#define MAX_FIELDS 32
#define MAX_VECS   64

struct field {
    const char *name; /* into the page text, NUL-terminated */
    const char *value;
};

struct vec {
    const char *kind;
    int line; /* of the opening fence, for messages */
    size_t n;
    struct field f[MAX_FIELDS];
};

static char *g_text;
static struct vec g_vecs[MAX_VECS];
static size_t g_nvecs;

static const char *docs_path(char *out, size_t cap)
{
    const char *dir = getenv("KEYMELD_DOCS_DIR");
    if (dir == NULL || dir[0] == '\0')
        dir = KM_DOCS_DIR;
    snprintf(out, cap, "%s/CRYPTO.md", dir);
    return out;
}

/* Splits the page into lines in place and collects every kmvec block. */
static void load_vectors(void)
{
    char path[1024];
    if (g_text != NULL)
        return;
    g_text = test_read_file(docs_path(path, sizeof(path)), NULL);
    struct vec *cur = NULL;
    int lineno = 0;
    for (char *p = g_text; p != NULL && *p != '\0';) {
        char *line = p, *nl = strchr(p, '\n');
        if (nl != NULL) {
            *nl = '\0';
            p = nl + 1;
        } else {
            p = NULL;
        }
        lineno++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (cur == NULL) {
            if (strcmp(line, "```kmvec") == 0) {
                if (g_nvecs == MAX_VECS)
                    fail_msg("%s: more than %d kmvec blocks", path, MAX_VECS);
                cur = &g_vecs[g_nvecs++];
                memset(cur, 0, sizeof(*cur));
                cur->line = lineno;
            }
            continue;
        }
        if (strcmp(line, "```") == 0) {
            if (cur->kind == NULL)
                fail_msg("CRYPTO.md:%d: kmvec block without a \"vector:\" line", cur->line);
            cur = NULL;
            continue;
        }
        if (len == 0 || line[0] == '#')
            continue;
        char *colon = strchr(line, ':');
        if (colon == NULL)
            fail_msg("CRYPTO.md:%d: not \"name: value\": %s", lineno, line);
        *colon = '\0';
        const char *value = colon + 1;
        if (*value == ' ')
            value++;
        if (cur->kind == NULL) {
            if (strcmp(line, "vector") != 0)
                fail_msg("CRYPTO.md:%d: a kmvec block must start with \"vector: <kind>\"", lineno);
            cur->kind = value;
            continue;
        }
        if (cur->n == MAX_FIELDS)
            fail_msg("CRYPTO.md:%d: more than %d fields in one vector", lineno, MAX_FIELDS);
        cur->f[cur->n].name = line;
        cur->f[cur->n++].value = value;
    }
    if (cur != NULL)
        fail_msg("CRYPTO.md:%d: kmvec block not closed", cur->line);
}

/* ---- field access ------------------------------------------------------------------------- */

static size_t count(const struct vec *v, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++)
        n += strcmp(v->f[i].name, name) == 0;
    return n;
}

/* The k-th value of name (fails the test when absent). */
static const char *nth(const struct vec *v, const char *name, size_t k)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->f[i].name, name) == 0 && k-- == 0)
            return v->f[i].value;
    fail_msg("CRYPTO.md:%d (%s): field \"%s\" missing", v->line, v->kind, name);
    return NULL;
}

/* The single value of name. */
static const char *get(const struct vec *v, const char *name)
{
    if (count(v, name) != 1)
        fail_msg("CRYPTO.md:%d (%s): field \"%s\" must appear exactly once", v->line, v->kind,
                 name);
    return nth(v, name, 0);
}

static void hex_exact(const struct vec *v, const char *name, size_t k, uint8_t *out, size_t n)
{
    const char *h = nth(v, name, k);
    if (hex_decode_exact(out, n, h, strlen(h)) != KM_OK)
        fail_msg("CRYPTO.md:%d (%s): \"%s\" must be %zu bytes of hex", v->line, v->kind, name, n);
}

static void hex1(const struct vec *v, const char *name, uint8_t *out, size_t n)
{
    (void)get(v, name);
    hex_exact(v, name, 0, out, n);
}

static void uuid_of(const struct vec *v, const char *name, size_t k, struct uuid *out)
{
    const char *s = nth(v, name, k);
    char back[UUID_STR_LEN + 1];
    if (uuid_parse(out, s, strlen(s)) != KM_OK)
        fail_msg("CRYPTO.md:%d (%s): \"%s\" is not a UUID", v->line, v->kind, name);
    /* The text form the formulas use: lower case, hyphenated. */
    uuid_format(back, out);
    if (strcmp(back, s) != 0)
        fail_msg("CRYPTO.md:%d (%s): \"%s\" is not in canonical text form", v->line, v->kind, name);
}

static uint64_t u64_of(const struct vec *v, const char *name)
{
    const char *s = get(v, name);
    char *end = NULL;
    unsigned long long x = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || end == NULL || *end != '\0')
        fail_msg("CRYPTO.md:%d (%s): \"%s\" is not a decimal number", v->line, v->kind, name);
    return (uint64_t)x;
}

/* Compares computed bytes with the page's value of name. */
static void expect_hex(const struct vec *v, const char *name, const uint8_t *got, size_t n)
{
    char have[2 * 512 + 1];
    if (n > 512)
        fail_msg("expect_hex: %zu bytes", n);
    hex_encode(have, sizeof(have), got, n);
    const char *want = get(v, name);
    if (strcmp(have, want) != 0)
        fail_msg("CRYPTO.md:%d (%s): \"%s\" differs from the code:\n  page %s\n  code %s", v->line,
                 v->kind, name, want, have);
}

static size_t run_kind(const char *kind, void (*fn)(const struct vec *))
{
    size_t n = 0;
    load_vectors();
    for (size_t i = 0; i < g_nvecs; i++) {
        if (strcmp(g_vecs[i].kind, kind) == 0) {
            fn(&g_vecs[i]);
            n++;
        }
    }
    printf("docs/CRYPTO.md: %zu %s vector(s) agree with the code\n", n, kind);
    return n;
}

/* ---- auth keys ---------------------------------------------------------------------------- */

static void check_session_auth_key(const struct vec *v)
{
    uint8_t secret[32], sk[32];
    struct keypair kp;
    const char *salt = get(v, "salt"), *info = get(v, "info");
    /* The constants the client uses (session.c, keyfile.c). */
    CHECK_STR_EQ(salt, CLIENT_SESSION_AUTH_SALT);
    CHECK_STR_EQ(info, CLIENT_SESSION_AUTH_INFO);
    hex1(v, "session_secret", secret, sizeof(secret));
    /* The formula as the page states it: plain HKDF-SHA256. */
    CHECK_OK(kdf_hkdf_sha256(sk, sizeof(sk), (const uint8_t *)salt, strlen(salt), secret,
                             sizeof(secret), (const uint8_t *)info, strlen(info)));
    expect_hex(v, "auth_seckey", sk, sizeof(sk));
    /* What the client calls. */
    CHECK_OK(auth_derive_keypair(&kp, secret, sizeof(secret), CLIENT_SESSION_AUTH_SALT,
                                 CLIENT_SESSION_AUTH_INFO));
    expect_hex(v, "auth_seckey", kp.seckey, 32);
    expect_hex(v, "auth_pubkey", kp.xonly, 32);
    keypair_clear(&kp);
}

static void check_participant_auth_key(const struct vec *v)
{
    uint8_t sk[32], d[32];
    struct keypair user, auth;
    struct uuid kid;
    const char *salt = get(v, "salt"), *info = get(v, "info");
    uuid_of(v, "keygen_session_id", 0, &kid);
    /* info is the keygen id's text form. */
    CHECK_STR_EQ(info, get(v, "keygen_session_id"));
    hex1(v, "private_key", sk, sizeof(sk));
    CHECK_OK(keypair_init(&user, sk));
    expect_hex(v, "public_key", user.pubkey, 33);
    CHECK_OK(kdf_hkdf_sha256(d, sizeof(d), (const uint8_t *)salt, strlen(salt), sk, sizeof(sk),
                             (const uint8_t *)info, strlen(info)));
    expect_hex(v, "auth_seckey", d, sizeof(d));
    CHECK_OK(participant_auth_keypair(&auth, &user, &kid));
    expect_hex(v, "auth_seckey", auth.seckey, 32);
    expect_hex(v, "auth_pubkey", auth.xonly, 32);
    keypair_clear(&user);
    keypair_clear(&auth);
}

static void test_session_auth_key(void **state)
{
    (void)state;
    CHECK(run_kind("session_auth_key", check_session_auth_key) >= 1);
}

static void test_participant_auth_key(void **state)
{
    (void)state;
    CHECK(run_kind("participant_auth_key", check_participant_auth_key) >= 1);
}

/* ---- signing approval --------------------------------------------------------------------- */

/* Runs the enclave's approval check for one required user. */
static int enclave_check(struct en_err *e, const struct uuid *sid, const struct uuid *kid,
                         const struct uuid *ids, const uint8_t (*msgs)[PROTO_MSG_LEN], size_t n,
                         const uint8_t pub[32], uint64_t ts, const uint8_t sig[64], uint64_t now)
{
    struct proto_approval a;
    struct policy_signer s;
    memset(&a, 0, sizeof(a));
    memset(&s, 0, sizeof(s));
    CHECK_OK(uuid_parse(&s.user_id, "0190f5e2-7000-7000-8000-00000000000b", UUID_STR_LEN));
    memcpy(s.auth_pubkey, pub, 32);
    a.user_id = s.user_id;
    a.timestamp = ts;
    memcpy(a.signature, sig, 64);
    struct policy_approval_input in = {
        .signing_id = sid,
        .keygen_id = kid,
        .item_ids = ids,
        .msgs = msgs,
        .n_items = n,
        .approvals = &a,
        .n_approvals = 1,
        .required = &s,
        .n_required = 1,
        .now_secs = now,
    };
    return policy_approvals(e, &in);
}

static void check_approval(const struct vec *v)
{
    struct uuid sid, kid, ids[8];
    uint8_t msgs[8][PROTO_MSG_LEN], sk[32], aux[32], sig[64], digest[32], d2[32];
    uint8_t mine[PROTO_APPROVAL_PREIMAGE_LEN(8)], pre[PROTO_APPROVAL_PREIMAGE_LEN(8)];
    struct keypair kp;
    struct en_err e;
    size_t n = count(v, "item_id");
    if (n == 0 || n > 8 || count(v, "msg") != n)
        fail_msg("CRYPTO.md:%d: an approval vector has 1..8 item_id lines, as many msg lines",
                 v->line);
    uuid_of(v, "signing_session_id", 0, &sid);
    uuid_of(v, "keygen_session_id", 0, &kid);
    uint64_t ts = u64_of(v, "timestamp");
    for (size_t i = 0; i < n; i++) {
        uuid_of(v, "item_id", i, &ids[i]);
        hex_exact(v, "msg", i, msgs[i], PROTO_MSG_LEN);
    }

    /* The layout table of the page, built by hand. */
    size_t len = 44 + 48 * n;
    memcpy(mine, sid.b, 16);
    memcpy(mine + 16, kid.b, 16);
    for (int b = 0; b < 8; b++)
        mine[32 + b] = (uint8_t)(ts >> (56 - 8 * b));
    for (int b = 0; b < 4; b++)
        mine[40 + b] = (uint8_t)((uint32_t)n >> (24 - 8 * b));
    for (size_t i = 0; i < n; i++) {
        memcpy(mine + 44 + 48 * i, ids[i].b, 16);
        memcpy(mine + 60 + 48 * i, msgs[i], PROTO_MSG_LEN);
    }
    expect_hex(v, "preimage", mine, len);
    /* The code's preimage and digest (client and enclave). */
    CHECK_EQ(proto_approval_preimage(pre, sizeof(pre), &sid, &kid, ts, ids,
                                     (const uint8_t(*)[PROTO_MSG_LEN])msgs, n),
             len);
    expect_hex(v, "preimage", pre, len);
    CHECK(secp256k1_tagged_sha256(crypto_ctx(), digest,
                                  (const unsigned char *)"KeyMeld/signing-approval",
                                  strlen("KeyMeld/signing-approval"), mine, len) == 1);
    expect_hex(v, "digest", digest, 32);
    policy_approval_digest(d2, &sid, &kid, ts, ids, (const uint8_t(*)[PROTO_MSG_LEN])msgs, n);
    expect_hex(v, "digest", d2, 32);

    /* The signature, with the page's auxiliary randomness. */
    hex1(v, "auth_seckey", sk, sizeof(sk));
    hex1(v, "aux_rand", aux, sizeof(aux));
    CHECK_OK(keypair_init(&kp, sk));
    expect_hex(v, "auth_pubkey", kp.xonly, 32);
    CHECK_OK(schnorr_sign(sig, &kp, digest, 32, aux));
    expect_hex(v, "signature", sig, 64);

    /* The enclave accepts the page's signature, within the window only. */
    uint8_t doc_sig[64];
    hex1(v, "signature", doc_sig, sizeof(doc_sig));
    const uint8_t(*cm)[PROTO_MSG_LEN] = (const uint8_t(*)[PROTO_MSG_LEN])msgs;
    CHECK_OK(enclave_check(&e, &sid, &kid, ids, cm, n, kp.xonly, ts, doc_sig, ts));
    CHECK_OK(enclave_check(&e, &sid, &kid, ids, cm, n, kp.xonly, ts, doc_sig, ts + 300));
    CHECK_OK(enclave_check(&e, &sid, &kid, ids, cm, n, kp.xonly, ts, doc_sig, ts - 60));
    CHECK_ERR(enclave_check(&e, &sid, &kid, ids, cm, n, kp.xonly, ts, doc_sig, ts + 301),
              KM_ERR_INVALID);
    CHECK_ERR(enclave_check(&e, &sid, &kid, ids, cm, n, kp.xonly, ts, doc_sig, ts - 61),
              KM_ERR_INVALID);
    /* ... and what the client library signs (fresh aux randomness). */
    CHECK_OK(participant_approval_sign(sig, &kp, &sid, &kid, ts, ids, cm, n));
    CHECK_OK(enclave_check(&e, &sid, &kid, ids, cm, n, kp.xonly, ts, sig, ts));

    /* The layout docs/API.md and docs/openapi.json used to give,
     * sid || kid || SHA-256(item_id || msg || ...) || be64(timestamp),
     * is refused: a client following it cannot get an approval through. */
    uint8_t wrong[16 + 16 + 32 + 8], items[8 * 48];
    for (size_t i = 0; i < n; i++) {
        memcpy(items + 48 * i, ids[i].b, 16);
        memcpy(items + 48 * i + 16, msgs[i], PROTO_MSG_LEN);
    }
    memcpy(wrong, sid.b, 16);
    memcpy(wrong + 16, kid.b, 16);
    CHECK_OK(auth_body_hash(wrong + 32, items, 48 * n)); /* plain SHA-256 */
    memcpy(wrong + 64, mine + 32, 8);
    CHECK(secp256k1_tagged_sha256(crypto_ctx(), d2,
                                  (const unsigned char *)"KeyMeld/signing-approval",
                                  strlen("KeyMeld/signing-approval"), wrong, sizeof(wrong)) == 1);
    CHECK_OK(schnorr_sign(sig, &kp, d2, 32, aux));
    CHECK_ERR(enclave_check(&e, &sid, &kid, ids, cm, n, kp.xonly, ts, sig, ts), KM_ERR_INVALID);
    CHECK_EQ(e.code, PROTO_E_INVALID_APPROVAL);
    CHECK_CONTAINS(e.msg, "does not verify");
    keypair_clear(&kp);
}

static void test_approval(void **state)
{
    (void)state;
    CHECK(run_kind("approval", check_approval) >= 1);
}

/* ---- request signature -------------------------------------------------------------------- */

static void check_request(const struct vec *v)
{
    struct auth_request ar;
    uint8_t sk[32], aux[32], sig[64], digest[32], mine[32], doc_sig[64];
    struct keypair kp;
    const char *method = get(v, "method"), *path = get(v, "path");
    const char *body = count(v, "body") ? get(v, "body") : "";
    memset(&ar, 0, sizeof(ar));
    ar.method = method;
    ar.method_len = strlen(method);
    ar.path = path;
    ar.path_len = strlen(path);
    ar.timestamp = u64_of(v, "timestamp");
    hex1(v, "nonce", ar.nonce, sizeof(ar.nonce));
    CHECK_OK(auth_body_hash(ar.body_hash, (const uint8_t *)body, strlen(body)));
    expect_hex(v, "body_sha256", ar.body_hash, 32);

    /* The formula, built by hand. */
    size_t ml = strlen(method), pl = strlen(path), len = 4 + ml + 4 + pl + 8 + 16 + 32;
    uint8_t *m = malloc(len), *p = m;
    CHECK_NOT_NULL(m);
    for (int b = 0; b < 4; b++)
        *p++ = (uint8_t)((uint32_t)ml >> (24 - 8 * b));
    memcpy(p, method, ml);
    p += ml;
    for (int b = 0; b < 4; b++)
        *p++ = (uint8_t)((uint32_t)pl >> (24 - 8 * b));
    memcpy(p, path, pl);
    p += pl;
    for (int b = 0; b < 8; b++)
        *p++ = (uint8_t)(ar.timestamp >> (56 - 8 * b));
    memcpy(p, ar.nonce, 16);
    memcpy(p + 16, ar.body_hash, 32);
    CHECK(secp256k1_tagged_sha256(crypto_ctx(), mine, (const unsigned char *)"KeyMeld/request/v1",
                                  strlen("KeyMeld/request/v1"), m, len) == 1);
    free(m);
    expect_hex(v, "digest", mine, 32);
    CHECK_OK(auth_request_digest(digest, &ar));
    expect_hex(v, "digest", digest, 32);

    hex1(v, "seckey", sk, sizeof(sk));
    hex1(v, "aux_rand", aux, sizeof(aux));
    CHECK_OK(keypair_init(&kp, sk));
    expect_hex(v, "pubkey", kp.xonly, 32);
    CHECK_OK(schnorr_sign(sig, &kp, digest, 32, aux));
    expect_hex(v, "signature", sig, 64);

    /* The gateway's check (gw_auth_check calls auth_verify). */
    hex1(v, "signature", doc_sig, sizeof(doc_sig));
    CHECK_OK(auth_verify(doc_sig, 64, kp.xonly, 32, &ar));
    CHECK_OK(auth_sign(sig, &kp, &ar));
    CHECK_OK(auth_verify(sig, 64, kp.xonly, 32, &ar));
    ar.timestamp++;
    CHECK_ERR(auth_verify(doc_sig, 64, kp.xonly, 32, &ar), KM_ERR_CRYPTO);
    ar.timestamp--;
    ar.path_len--;
    CHECK_ERR(auth_verify(doc_sig, 64, kp.xonly, 32, &ar), KM_ERR_CRYPTO);
    keypair_clear(&kp);
}

static void test_request(void **state)
{
    (void)state;
    CHECK(run_kind("request", check_request) >= 2);
}

/* ---- adaptor completion ------------------------------------------------------------------- */

static int g_seen_parity[2], g_seen_and;

static void check_adaptor(const struct vec *v)
{
    uint8_t xonly[32], msg[32], point[33], presig[64], t[32], ti[8][32], sig[64], got[33];
    uint8_t s[32], doc_sig[64], back[32];
    const char *type = get(v, "adaptor_type");
    size_t n = count(v, "adaptor_secret");
    int is_and = strcmp(type, "and") == 0;
    if (!is_and && strcmp(type, "single") != 0 && strcmp(type, "or") != 0)
        fail_msg("CRYPTO.md:%d: adaptor_type must be single, and or or", v->line);
    if (n == 0 || n > 8 || (!is_and && n != 1) || (is_and && n < 2))
        fail_msg("CRYPTO.md:%d: wrong number of adaptor_secret lines", v->line);
    hex1(v, "aggregate_xonly", xonly, sizeof(xonly));
    hex1(v, "msg", msg, sizeof(msg));
    hex1(v, "adaptor_point", point, sizeof(point));
    hex1(v, "presignature", presig, sizeof(presig));
    hex1(v, "signature", doc_sig, sizeof(doc_sig));
    uint64_t parity = u64_of(v, "nonce_parity");
    CHECK(parity <= 1);
    int par = (int)parity;
    g_seen_parity[par] = 1;
    g_seen_and |= is_and;

    /* t = sum of the secrets mod n; t*G must be the adaptor point. */
    for (size_t i = 0; i < n; i++)
        hex_exact(v, "adaptor_secret", i, ti[i], 32);
    memcpy(t, ti[0], 32);
    for (size_t i = 1; i < n; i++)
        CHECK(secp256k1_ec_seckey_tweak_add(crypto_ctx(), t, ti[i]) == 1);
    CHECK_OK(adaptor_point(got, t));
    expect_hex(v, "adaptor_point", got, 33);

    /* The pre-signature is valid for the key, message and point, under its
     * parity only. */
    CHECK_OK(adaptor_presig_verify(presig, 64, par, point, 33, xonly, 32, msg, 32));
    CHECK_ERR(adaptor_presig_verify(presig, 64, !par, point, 33, xonly, 32, msg, 32),
              KM_ERR_CRYPTO);

    /* The page's rule: s = s' + t (parity 0) or s' - t (parity 1) mod n. */
    memcpy(s, t, 32);
    if (par)
        CHECK(secp256k1_ec_seckey_negate(crypto_ctx(), s) == 1);
    CHECK(secp256k1_ec_seckey_tweak_add(crypto_ctx(), s, presig + 32) == 1);
    memcpy(sig, presig, 32);
    memcpy(sig + 32, s, 32);
    expect_hex(v, "signature", sig, 64);
    /* The library's completion, and the client's (which sums the secrets). */
    CHECK_OK(adaptor_adapt(sig, presig, t, par));
    expect_hex(v, "signature", sig, 64);
    struct proto_adaptor_result res;
    memset(&res, 0, sizeof(res));
    res.adaptor_type = is_and                    ? PROTO_ADAPTOR_AND
                       : strcmp(type, "or") == 0 ? PROTO_ADAPTOR_OR
                                                 : PROTO_ADAPTOR_SINGLE;
    memcpy(res.adaptor_point, point, 33);
    memcpy(res.presignature, presig, 64);
    res.nonce_parity = (uint32_t)par;
    CHECK_OK(participant_adaptor_complete(sig, &res, (const uint8_t(*)[32])ti, n));
    expect_hex(v, "signature", sig, 64);
    /* An ordinary BIP-340 signature. */
    CHECK_OK(schnorr_verify(doc_sig, 64, msg, 32, xonly, 32));
    /* Ignoring the parity gives one that does not verify. */
    CHECK_OK(adaptor_adapt(sig, presig, t, !par));
    CHECK_ERR(schnorr_verify(sig, 64, msg, 32, xonly, 32), KM_ERR_CRYPTO);
    /* The published signature reveals t. */
    CHECK_OK(adaptor_extract(back, doc_sig, 64, presig, 64, par, point, 33));
    CHECK_MEM_EQ(back, t, 32);
}

static void test_adaptor(void **state)
{
    (void)state;
    CHECK(run_kind("adaptor", check_adaptor) >= 3);
    /* Both parities and a sum of secrets are covered. */
    CHECK(g_seen_parity[0] && g_seen_parity[1] && g_seen_and);
}

/* Every block is of a kind this test knows: none is silently skipped. */
static void test_known_kinds(void **state)
{
    static const char *const kinds[] = {"session_auth_key", "participant_auth_key", "approval",
                                        "request", "adaptor"};
    (void)state;
    load_vectors();
    CHECK(g_nvecs > 0);
    for (size_t i = 0; i < g_nvecs; i++) {
        int ok = 0;
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
            ok |= strcmp(g_vecs[i].kind, kinds[k]) == 0;
        if (!ok)
            fail_msg("CRYPTO.md:%d: unknown vector kind \"%s\"", g_vecs[i].line, g_vecs[i].kind);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_known_kinds), TEST(test_session_auth_key), TEST(test_participant_auth_key),
        TEST(test_approval),    TEST(test_request),          TEST(test_adaptor),
    };
    int rc = RUN_TESTS("unit.docs.vectors", tests);
    free(g_text);
    return rc;
}
