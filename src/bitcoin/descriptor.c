/*
 * descriptor.c - tr()/rawtr() descriptors with musig() keys: the BIP-380
 * checksum, a recursive-descent parser over (const char *, size_t), BIP-32
 * public (and, for the BIPs' vectors, private) derivation, evaluation to
 * the Taproot output key, and the canonical string form.
 */
#include "bitcoin/descriptor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <secp256k1.h>
#include <secp256k1_extrakeys.h>

#include "common/hex.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "crypto/ctx.h"
#include "crypto/musig.h"
#include "crypto/taproot.h"
#include "common/banned.h"

#define HARDENED     0x80000000u
#define XKEY_LEN     78
#define MAX_NUM_LEN  10 /* digits of 2^31 - 1 */
#define TOKEN_SHOW   40 /* characters of a bad token quoted in a message */
#define TAPSCRIPT_PK 34 /* <32-byte key> OP_CHECKSIG */

/* BIP-32 version bytes. */
static const uint8_t ver_xpub[4] = {0x04, 0x88, 0xb2, 0x1e};
static const uint8_t ver_xprv[4] = {0x04, 0x88, 0xad, 0xe4};
static const uint8_t ver_tpub[4] = {0x04, 0x35, 0x87, 0xcf};
static const uint8_t ver_tprv[4] = {0x04, 0x35, 0x83, 0x94};

/* BIP-328: SHA256("MuSig2MuSig2MuSig2"). */
static const uint8_t musig_chaincode[32] = {
    0x86, 0x80, 0x87, 0xca, 0x02, 0xa6, 0xf9, 0x74, 0xc4, 0x59, 0x89, 0x24, 0xc3, 0x6b, 0x57, 0x76,
    0x2d, 0x32, 0xcb, 0x45, 0x71, 0x71, 0x67, 0xe3, 0x00, 0x62, 0x2c, 0x71, 0x67, 0xe3, 0x89, 0x65};

/* ---- data model ---------------------------------------------------------- */

enum key_kind {
    KEY_CONST, /* hex public key or WIF */
    KEY_XKEY,  /* xpub/tpub, or xprv/tprv */
    KEY_MUSIG,
};

enum key_range {
    RANGE_NONE = 0,
    RANGE_UNHARDENED, /* STAR */
    RANGE_HARDENED,   /* STAR h */
};

/* Where a key expression sits: BIP-380 alone, in tr()/rawtr(), or as a
 * musig() participant. Decides x-only, uncompressed and musig(). */
enum key_ctx {
    CTX_PLAIN,
    CTX_TR,
    CTX_MUSIG,
};

struct path {
    uint32_t *step;
    size_t n, cap;
};

struct xkey {
    uint8_t version[4]; /* public version bytes (xpub or tpub) */
    uint8_t depth;
    uint8_t parent[4];
    uint8_t child[4];
    uint8_t chain[32];
    uint8_t pub[33];
};

struct dkey {
    enum key_kind kind;
    int has_origin;
    uint8_t fpr[4];
    struct path origin;
    uint8_t pub[65]; /* KEY_CONST: compressed (33), x-only (32) or uncompressed (65) */
    size_t pub_len;
    struct xkey x;  /* KEY_XKEY */
    int is_private; /* written as WIF or xprv */
    int has_secret; /* sec is kept: a hardened step of an xprv needs it */
    uint8_t sec[32];
    struct path path;
    enum key_range range;
    /* KEY_MUSIG: participants, each its own allocation so that no secret
     * ever moves through realloc. */
    struct dkey **part;
    size_t n_part, cap_part;
};

struct node {
    int leaf;
    struct dkey key; /* leaf: pk(key) */
    struct node *left, *right;
};

struct descriptor {
    int raw; /* rawtr() */
    struct dkey internal;
    struct node *tree; /* NULL without a tree */
    int ranged;
    int has_private;
};

struct parser {
    const char *s;
    size_t len; /* payload: the checksum is split off first */
    size_t pos;
    unsigned flags;
    struct km_error *err;
    size_t keys;  /* key expressions so far */
    size_t steps; /* derivation steps so far */
    int ranged;
    int has_private;
};

static void path_release(struct path *p)
{
    free(p->step);
    memset(p, 0, sizeof(*p));
}

static void path_push(struct path *p, uint32_t v)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? st_mult(p->cap, 2) : 4;
        p->step = xrealloc(p->step, st_mult(p->cap, sizeof(*p->step)));
    }
    p->step[p->n++] = v;
}

static void dkey_release(struct dkey *k)
{
    path_release(&k->origin);
    path_release(&k->path);
    for (size_t i = 0; i < k->n_part; i++) {
        dkey_release(k->part[i]);
        free(k->part[i]);
    }
    free(k->part);
    secure_wipe(k, sizeof(*k));
}

static void node_free(struct node *n)
{
    if (n == NULL)
        return;
    node_free(n->left);
    node_free(n->right);
    dkey_release(&n->key);
    free(n);
}

void descriptor_free(struct descriptor *d)
{
    if (d == NULL)
        return;
    dkey_release(&d->internal);
    node_free(d->tree);
    free(d);
}

int descriptor_is_ranged(const struct descriptor *d)
{
    return d->ranged;
}

int descriptor_has_private(const struct descriptor *d)
{
    return d->has_private;
}

/* ---- BIP-380 checksum ----------------------------------------------------- */

/* Three groups of 32 (BIP-380 "Character Set"). */
static const char input_charset[] = "0123456789()[],'/*abcdefgh@:$%{}"
                                    "IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~"
                                    "ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ";
static const char checksum_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint64_t descsum_polymod(uint64_t c, unsigned val)
{
    uint64_t c0 = c >> 35;
    c = ((c & 0x7ffffffffull) << 5) ^ val;
    if (c0 & 1)
        c ^= 0xf5dee51989ull;
    if (c0 & 2)
        c ^= 0xa9fdca3312ull;
    if (c0 & 4)
        c ^= 0x1bab10e32dull;
    if (c0 & 8)
        c ^= 0x3706b1677aull;
    if (c0 & 16)
        c ^= 0x644d626ffdull;
    return c;
}

/* Position of c in the input character set, or -1. */
static int charset_pos(char c)
{
    const char *p = c != '\0' ? memchr(input_charset, c, sizeof(input_charset) - 1) : NULL;
    return p == NULL ? -1 : (int)(p - input_charset);
}

int descriptor_checksum(char out[DESCRIPTOR_CHECKSUM_LEN + 1], const char *s, size_t len)
{
    uint64_t c = 1;
    unsigned cls = 0, clscount = 0;

    out[0] = '\0';
    for (size_t i = 0; i < len; i++) {
        int pos = charset_pos(s[i]);
        if (pos < 0)
            return KM_ERR_INVALID;
        /* The position in its group, then after every three characters
         * the three group numbers combined. */
        c = descsum_polymod(c, (unsigned)pos & 31);
        cls = cls * 3 + ((unsigned)pos >> 5);
        if (++clscount == 3) {
            c = descsum_polymod(c, cls);
            cls = 0;
            clscount = 0;
        }
    }
    if (clscount > 0)
        c = descsum_polymod(c, cls);
    for (int i = 0; i < DESCRIPTOR_CHECKSUM_LEN; i++)
        c = descsum_polymod(c, 0);
    c ^= 1;
    for (int i = 0; i < DESCRIPTOR_CHECKSUM_LEN; i++)
        out[i] = checksum_charset[(c >> (5 * (7 - i))) & 31];
    out[DESCRIPTOR_CHECKSUM_LEN] = '\0';
    return KM_OK;
}

/* First character outside the input set (for the message), or len. */
static size_t first_bad_char(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (charset_pos(s[i]) < 0)
            return i;
    }
    return len;
}

int descriptor_checksum_check(size_t *payload_len, struct km_error *err, const char *s, size_t len,
                              int require)
{
    char want[DESCRIPTOR_CHECKSUM_LEN + 1];
    const char *hash = memchr(s, '#', len);
    size_t plen = hash ? (size_t)(hash - s) : len;

    *payload_len = len;
    if (hash != NULL && memchr(hash + 1, '#', len - plen - 1) != NULL)
        return km_error_set(err, KM_ERR_INVALID, 0, "descriptor: multiple '#' symbols");
    if (hash == NULL && require)
        return km_error_set(err, KM_ERR_INVALID, 0, "descriptor: missing checksum");
    if (hash != NULL && len - plen - 1 != DESCRIPTOR_CHECKSUM_LEN)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "descriptor: expected an 8-character checksum, not %zu characters",
                            len - plen - 1);
    if (descriptor_checksum(want, s, plen) != KM_OK)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "descriptor: character %zu is not allowed in a descriptor",
                            first_bad_char(s, plen) + 1);
    if (hash != NULL && memcmp(hash + 1, want, DESCRIPTOR_CHECKSUM_LEN) != 0)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "descriptor: checksum mismatch: \"%.8s\", expected \"%s\"", hash + 1,
                            want);
    *payload_len = plen;
    return KM_OK;
}

/* ---- parser helpers -------------------------------------------------------- */

static int perr(struct parser *p, size_t at, int code, const char *fmt, ...) KM_PRINTF(4, 5);

static int perr(struct parser *p, size_t at, int code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return km_error_set(p->err, code, 0, "descriptor: character %zu: %s", at + 1, msg);
}

static int peek_is(const struct parser *p, char c)
{
    return p->pos < p->len && p->s[p->pos] == c;
}

static int expect(struct parser *p, char c)
{
    if (peek_is(p, c)) {
        p->pos++;
        return KM_OK;
    }
    if (p->pos >= p->len)
        return perr(p, p->pos, KM_ERR_INVALID, "expected '%c', found the end", c);
    return perr(p, p->pos, KM_ERR_INVALID, "expected '%c', found '%c'", c, p->s[p->pos]);
}

static int starts_with(const struct parser *p, size_t at, const char *lit)
{
    size_t n = strlen(lit);
    return at <= p->len && p->len - at >= n && memcmp(p->s + at, lit, n) == 0;
}

static int is_delim(char c)
{
    return c == ',' || c == '(' || c == ')' || c == '{' || c == '}';
}

/* End of a key token (a key expression other than musig()). */
static size_t token_end(const struct parser *p, size_t from)
{
    while (from < p->len && !is_delim(p->s[from]))
        from++;
    return from;
}

static int is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static size_t ident_end(const struct parser *p, size_t from)
{
    while (from < p->len && is_ident(p->s[from]))
        from++;
    return from;
}

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return n > 0;
}

static int mem_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* ---- key paths --------------------------------------------------------------- */

/* One step s[a..b): decimal 0 .. 2^31-1, then 'h' or '\'' if hardened. */
static int parse_step(struct parser *p, size_t a, size_t b, uint32_t *out)
{
    uint32_t v = 0;
    int hard = 0;

    *out = 0;
    if (b > a && (p->s[b - 1] == 'h' || p->s[b - 1] == '\'')) {
        hard = 1;
        b--;
    }
    if (b == a)
        return perr(p, a, KM_ERR_INVALID, "empty derivation step");
    if (p->s[a] == '<')
        return perr(p, a, KM_ERR_UNSUPPORTED, "multipath steps (BIP-389) are not supported");
    if (b - a > MAX_NUM_LEN)
        return perr(p, a, KM_ERR_INVALID, "derivation step '%.*s' is out of range",
                    (int)(b - a < TOKEN_SHOW ? b - a : TOKEN_SHOW), p->s + a);
    for (size_t i = a; i < b; i++) {
        char c = p->s[i];
        if (c < '0' || c > '9')
            return perr(p, a, KM_ERR_INVALID, "derivation step '%.*s' is not a number",
                        (int)(b - a < TOKEN_SHOW ? b - a : TOKEN_SHOW), p->s + a);
        uint64_t next = (uint64_t)v * 10u + (uint64_t)(c - '0');
        if (next > 0x7fffffffu)
            return perr(p, a, KM_ERR_INVALID, "derivation step %.*s is out of range", (int)(b - a),
                        p->s + a);
        v = (uint32_t)next;
    }
    *out = v | (hard ? HARDENED : 0u);
    return KM_OK;
}

/*
 * Steps of s[a..b), which is empty or starts with '/'. With allow_range the
 * last step may be a STAR (sets *range). Derivation steps (count != 0)
 * count towards DESCRIPTOR_MAX_STEPS; origin steps do not cost anything.
 */
static int parse_path(struct parser *p, struct path *out, enum key_range *range, size_t a, size_t b,
                      int allow_range, int count)
{
    if (range != NULL)
        *range = RANGE_NONE;
    while (a < b) {
        size_t e = a + 1;
        uint32_t v;

        if (p->s[a] != '/')
            return perr(p, a, KM_ERR_INVALID, "expected '/', found '%c'", p->s[a]);
        while (e < b && p->s[e] != '/')
            e++;
        if (e - a >= 2 && p->s[a + 1] == '*') {
            int hard = e - a == 3 && (p->s[a + 2] == 'h' || p->s[a + 2] == '\'');
            if (!allow_range)
                return perr(p, a + 1, KM_ERR_INVALID, "'*' is not allowed in a key origin");
            if (e != b)
                return perr(p, a + 1, KM_ERR_INVALID, "'*' must be the last derivation step");
            if (e - a != 2 && !hard)
                return perr(p, a + 1, KM_ERR_INVALID, "invalid child step '%.*s'", (int)(e - a - 1),
                            p->s + a + 1);
            *range = hard ? RANGE_HARDENED : RANGE_UNHARDENED;
            if (++p->steps > DESCRIPTOR_MAX_STEPS)
                return perr(p, a, KM_ERR_TOO_LARGE, "more than %u derivation steps",
                            DESCRIPTOR_MAX_STEPS);
            p->ranged = 1;
            return KM_OK;
        }
        int r = parse_step(p, a + 1, e, &v);
        if (r != KM_OK)
            return r;
        if (out->n >= DESCRIPTOR_MAX_PATH)
            return perr(p, a, KM_ERR_TOO_LARGE, "more than %u steps in one path",
                        DESCRIPTOR_MAX_PATH);
        if (count && ++p->steps > DESCRIPTOR_MAX_STEPS)
            return perr(p, a, KM_ERR_TOO_LARGE, "more than %u derivation steps",
                        DESCRIPTOR_MAX_STEPS);
        path_push(out, v);
        a = e;
    }
    return KM_OK;
}

static int path_has_hardened(const struct path *p)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->step[i] & HARDENED)
            return 1;
    }
    return 0;
}

/* ---- keys ---------------------------------------------------------------------- */

/* [fingerprint/steps] at s[a..close]. */
static int parse_origin(struct parser *p, struct dkey *k, size_t a, size_t close)
{
    size_t e = a + 1;

    while (e < close && p->s[e] != '/')
        e++;
    if (e - a - 1 != 8)
        return perr(p, a + 1, KM_ERR_INVALID,
                    "fingerprint is not 4 bytes (%zu characters instead of 8)", e - a - 1);
    if (!is_hex(p->s + a + 1, 8) || hex_decode_exact(k->fpr, 4, p->s + a + 1, 8) != KM_OK)
        return perr(p, a + 1, KM_ERR_INVALID, "fingerprint '%.8s' is not hex", p->s + a + 1);
    k->has_origin = 1;
    return parse_path(p, &k->origin, NULL, e, close, 0, 0);
}

static int key_len_error(struct parser *p, size_t a, size_t n, enum key_ctx ctx)
{
    if (n == 64 && ctx == CTX_MUSIG)
        return perr(p, a, KM_ERR_INVALID, "x-only keys are not allowed in musig()");
    if (n == 64)
        return perr(p, a, KM_ERR_INVALID, "x-only keys are only allowed in tr()");
    return perr(p, a, KM_ERR_INVALID, "'%.*s' is not a public key", (int)(n < 80 ? n : 80),
                p->s + a);
}

/* A hex public key at s[a..a+n). */
static int parse_hex_key(struct parser *p, struct dkey *k, size_t a, size_t n, enum key_ctx ctx)
{
    const secp256k1_context *sctx = crypto_ctx();
    secp256k1_pubkey pk;
    secp256k1_xonly_pubkey xk;
    size_t blen = n / 2;

    if ((n != 66 && n != 130 && !(n == 64 && ctx == CTX_TR)) ||
        hex_decode_exact(k->pub, blen, p->s + a, n) != KM_OK)
        return key_len_error(p, a, n, ctx);
    k->kind = KEY_CONST;
    k->pub_len = blen;
    if (blen == 32) {
        if (!secp256k1_xonly_pubkey_parse(sctx, &xk, k->pub))
            return perr(p, a, KM_ERR_INVALID, "x-only key %.64s is not on the curve", p->s + a);
        return KM_OK;
    }
    if ((blen == 33 && k->pub[0] != 2 && k->pub[0] != 3) || (blen == 65 && k->pub[0] != 4)) {
        if (blen == 65 && (k->pub[0] == 6 || k->pub[0] == 7))
            return perr(p, a, KM_ERR_INVALID, "hybrid public keys are not allowed");
        return perr(p, a, KM_ERR_INVALID, "public key has an invalid prefix 0x%02x", k->pub[0]);
    }
    if (!secp256k1_ec_pubkey_parse(sctx, &pk, k->pub, blen))
        return perr(p, a, KM_ERR_INVALID, "public key is not on the curve");
    if (blen == 65 && ctx != CTX_PLAIN)
        return perr(p, a, KM_ERR_INVALID, "uncompressed keys are not allowed in %s",
                    ctx == CTX_MUSIG ? "musig()" : "tr()");
    return KM_OK;
}

static int private_refused(struct parser *p, size_t a)
{
    return perr(p, a, KM_ERR_UNSUPPORTED,
                "private keys are refused (only public keys belong in a descriptor here)");
}

/* The 78-byte BIP-32 serialization in raw. */
static int parse_xkey(struct parser *p, struct dkey *k, size_t a, const uint8_t raw[XKEY_LEN])
{
    const secp256k1_context *sctx = crypto_ctx();
    secp256k1_pubkey pk;
    size_t plen = 33;
    int priv = memcmp(raw, ver_xprv, 4) == 0 || memcmp(raw, ver_tprv, 4) == 0;

    if (!priv && memcmp(raw, ver_xpub, 4) != 0 && memcmp(raw, ver_tpub, 4) != 0)
        return perr(p, a, KM_ERR_INVALID, "unknown extended key version %02x%02x%02x%02x", raw[0],
                    raw[1], raw[2], raw[3]);
    if (priv && !(p->flags & DESCRIPTOR_F_ALLOW_PRIVATE))
        return private_refused(p, a);
    k->kind = KEY_XKEY;
    memcpy(k->x.version,
           memcmp(raw, ver_xprv, 4) == 0   ? ver_xpub
           : memcmp(raw, ver_tprv, 4) == 0 ? ver_tpub
                                           : raw,
           4);
    k->x.depth = raw[4];
    memcpy(k->x.parent, raw + 5, 4);
    memcpy(k->x.child, raw + 9, 4);
    memcpy(k->x.chain, raw + 13, 32);
    if (priv) {
        if (raw[45] != 0 || !secp256k1_ec_seckey_verify(sctx, raw + 46) ||
            !secp256k1_ec_pubkey_create(sctx, &pk, raw + 46))
            return perr(p, a, KM_ERR_INVALID, "extended private key is invalid");
        memcpy(k->sec, raw + 46, 32);
        k->is_private = 1;
        p->has_private = 1;
    } else if (!secp256k1_ec_pubkey_parse(sctx, &pk, raw + 45, 33)) {
        return perr(p, a, KM_ERR_INVALID, "extended public key is invalid");
    }
    secp256k1_ec_pubkey_serialize(sctx, k->x.pub, &plen, &pk, SECP256K1_EC_COMPRESSED);
    return KM_OK;
}

/* A WIF private key (payload of 33 or 34 bytes after Base58Check). */
static int parse_wif(struct parser *p, struct dkey *k, size_t a, const uint8_t *raw, size_t n,
                     enum key_ctx ctx)
{
    const secp256k1_context *sctx = crypto_ctx();
    secp256k1_pubkey pk;
    int compressed = n == 34;
    size_t plen = compressed ? 33 : 65;

    if ((raw[0] != 0x80 && raw[0] != 0xef) || (compressed && raw[33] != 1))
        return perr(p, a, KM_ERR_INVALID, "key is neither WIF nor an extended key");
    if (!(p->flags & DESCRIPTOR_F_ALLOW_PRIVATE))
        return private_refused(p, a);
    if (!secp256k1_ec_seckey_verify(sctx, raw + 1) ||
        !secp256k1_ec_pubkey_create(sctx, &pk, raw + 1))
        return perr(p, a, KM_ERR_INVALID, "WIF private key is out of range");
    if (!compressed && ctx != CTX_PLAIN)
        return perr(p, a, KM_ERR_INVALID, "uncompressed keys are not allowed in %s",
                    ctx == CTX_MUSIG ? "musig()" : "tr()");
    k->kind = KEY_CONST;
    k->is_private = 1;
    p->has_private = 1;
    secp256k1_ec_pubkey_serialize(sctx, k->pub, &plen, &pk,
                                  compressed ? SECP256K1_EC_COMPRESSED : SECP256K1_EC_UNCOMPRESSED);
    k->pub_len = plen;
    return KM_OK;
}

/* The key itself, s[a..e), followed by derivation s[e..b). */
static int parse_base(struct parser *p, struct dkey *k, size_t a, size_t e, size_t b,
                      enum key_ctx ctx)
{
    uint8_t raw[XKEY_LEN + 2];
    size_t n = 0;
    int r;

    if (e == a)
        return perr(p, a, KM_ERR_INVALID, "no key provided");
    if (is_hex(p->s + a, e - a)) {
        if (e != b)
            return perr(p, e, KM_ERR_INVALID, "derivation steps after a non-extended key");
        return parse_hex_key(p, k, a, e - a, ctx);
    }
    r = address_base58check_decode(raw, sizeof(raw), &n, p->s + a, e - a);
    if (r == KM_ERR_CRYPTO) {
        r = perr(p, a, KM_ERR_CRYPTO, "hashing failed");
    } else if (r != KM_OK || (n != XKEY_LEN && n != 33 && n != 34)) {
        r = perr(p, a, KM_ERR_INVALID, "key '%.*s' is not valid",
                 (int)(e - a < TOKEN_SHOW ? e - a : TOKEN_SHOW), p->s + a);
    } else if (n == XKEY_LEN) {
        r = parse_xkey(p, k, a, raw);
        if (r == KM_OK)
            r = parse_path(p, &k->path, &k->range, e, b, 1, 1);
        /* Keep an xprv's secret only while a hardened step needs it. */
        if (r == KM_OK && k->is_private)
            k->has_secret = path_has_hardened(&k->path) || k->range == RANGE_HARDENED;
        if (r == KM_OK && !k->has_secret)
            secure_wipe(k->sec, sizeof(k->sec));
    } else if (e != b) {
        r = perr(p, e, KM_ERR_INVALID, "derivation steps after a WIF private key");
    } else {
        r = parse_wif(p, k, a, raw, n, ctx);
    }
    secure_wipe(raw, sizeof(raw));
    return r;
}

static int parse_key(struct parser *p, struct dkey *k, enum key_ctx ctx);

/* Participants and derivation of musig(...) at p->pos. */
static int parse_musig(struct parser *p, struct dkey *k, enum key_ctx ctx)
{
    size_t start = p->pos, b;
    int all_xkeys = 1, any_ranged = 0, r;

    if (ctx == CTX_MUSIG)
        return perr(p, start, KM_ERR_INVALID, "musig() cannot be nested in musig()");
    if (ctx != CTX_TR)
        return perr(p, start, KM_ERR_INVALID, "musig() is only allowed in tr() and rawtr()");
    k->kind = KEY_MUSIG;
    p->pos += strlen("musig(");
    if (peek_is(p, ')'))
        return perr(p, p->pos, KM_ERR_INVALID, "musig() must contain key expressions");
    for (;;) {
        struct dkey *part = xcalloc(1, sizeof(*part));
        if (k->n_part == k->cap_part) {
            k->cap_part = k->cap_part ? st_mult(k->cap_part, 2) : 4;
            k->part = xrealloc(k->part, st_mult(k->cap_part, sizeof(*k->part)));
        }
        k->part[k->n_part++] = part;
        r = parse_key(p, part, CTX_MUSIG);
        if (r != KM_OK)
            return r;
        all_xkeys &= part->kind == KEY_XKEY;
        any_ranged |= part->range != RANGE_NONE;
        if (peek_is(p, ')'))
            break;
        r = expect(p, ',');
        if (r != KM_OK)
            return r;
    }
    p->pos++;
    b = token_end(p, p->pos);
    if (b == p->pos)
        return KM_OK;
    if (!all_xkeys)
        return perr(p, p->pos, KM_ERR_INVALID,
                    "musig() derivation requires every participant to be an extended key");
    if (any_ranged)
        return perr(p, p->pos, KM_ERR_INVALID,
                    "musig() cannot have ranged participants when it has derivation steps");
    r = parse_path(p, &k->path, &k->range, p->pos, b, 1, 1);
    if (r != KM_OK)
        return r;
    if (k->range == RANGE_HARDENED)
        return perr(p, p->pos, KM_ERR_INVALID, "musig() cannot have hardened child derivation");
    if (path_has_hardened(&k->path))
        return perr(p, p->pos, KM_ERR_INVALID, "musig() cannot have hardened derivation steps");
    p->pos = b;
    return KM_OK;
}

/* A key expression at p->pos, in context ctx. */
static int parse_key(struct parser *p, struct dkey *k, enum key_ctx ctx)
{
    size_t a = p->pos, b, e;
    const char *close;
    int r;

    if (starts_with(p, a, "musig("))
        return parse_musig(p, k, ctx);
    b = token_end(p, a);
    if (b < p->len && p->s[b] == '(')
        return perr(p, a, KM_ERR_INVALID, "%s",
                    b - a >= 5 && memcmp(p->s + b - 5, "musig", 5) == 0
                        ? "musig() cannot have key origin information"
                        : "expected a key expression");
    if (++p->keys > DESCRIPTOR_MAX_KEYS)
        return perr(p, a, KM_ERR_TOO_LARGE, "more than %u keys", DESCRIPTOR_MAX_KEYS);
    if (a < b && p->s[a] == '[') {
        close = memchr(p->s + a, ']', b - a);
        if (close == NULL)
            return perr(p, a, KM_ERR_INVALID, "key origin has no closing ']'");
        r = parse_origin(p, k, a, (size_t)(close - p->s));
        if (r != KM_OK)
            return r;
        a = (size_t)(close - p->s) + 1;
    }
    if (memchr(p->s + a, '[', b - a) != NULL)
        return perr(p, a, KM_ERR_INVALID, "multiple key origins");
    if (memchr(p->s + a, ']', b - a) != NULL)
        return perr(p, a, KM_ERR_INVALID, "key origin start '[' expected");
    e = a;
    while (e < b && p->s[e] != '/')
        e++;
    r = parse_base(p, k, a, e, b, ctx);
    if (r == KM_OK)
        p->pos = b;
    return r;
}

/* ---- scripts ------------------------------------------------------------------ */

/* 1 if s[0..len) calls name( somewhere (not as the tail of a longer
 * identifier). */
static int calls(const char *s, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i + n < len; i++) {
        if (memcmp(s + i, name, n) == 0 && s[i + n] == '(' && (i == 0 || !is_ident(s[i - 1])))
            return 1;
    }
    return 0;
}

/* Names of the script expressions of BIPs 381-385 and 387. */
static int known_script(const char *s, size_t n)
{
    static const char *const names[] = {"pk",    "pkh",         "sh",           "wpkh", "wsh",
                                        "multi", "sortedmulti", "raw",          "addr", "combo",
                                        "sp",    "multi_a",     "sortedmulti_a"};
    for (size_t i = 0; i < KM_ARRAY_LEN(names); i++) {
        if (mem_is(s, n, names[i]))
            return 1;
    }
    return 0;
}

/* A leaf of a tr() tree at p->pos. */
static int parse_leaf(struct parser *p, struct node *n)
{
    size_t a = p->pos, b = ident_end(p, a);
    int r;

    n->leaf = 1;
    if (b == a || b >= p->len || p->s[b] != '(')
        return perr(p, a, KM_ERR_INVALID, "expected a script expression such as pk(KEY)");
    if (mem_is(p->s + a, b - a, "pk")) {
        p->pos = b + 1;
        r = parse_key(p, &n->key, CTX_TR);
        return r == KM_OK ? expect(p, ')') : r;
    }
    if (mem_is(p->s + a, b - a, "tr") || mem_is(p->s + a, b - a, "rawtr"))
        return perr(p, a, KM_ERR_INVALID, "%.*s() is only allowed at the top level", (int)(b - a),
                    p->s + a);
    if (mem_is(p->s + a, b - a, "musig"))
        return perr(p, a, KM_ERR_INVALID, "musig() is a key, not a script: write pk(musig(...))");
    return perr(p, a, KM_ERR_UNSUPPORTED, "only pk() leaves are supported, not %.*s()",
                (int)(b - a < TOKEN_SHOW ? b - a : TOKEN_SHOW), p->s + a);
}

/* TREE at p->pos; depth counts the braces around it. The node is linked
 * into *out before anything can fail, so the caller's free releases it. */
static int parse_tree(struct parser *p, struct node **out, unsigned depth)
{
    struct node *n = xcalloc(1, sizeof(*n));
    int r;

    *out = n;
    if (!peek_is(p, '{'))
        return parse_leaf(p, n);
    if (depth + 1 > DESCRIPTOR_MAX_DEPTH)
        return perr(p, p->pos, KM_ERR_TOO_LARGE, "tr() supports at most %u nesting levels",
                    DESCRIPTOR_MAX_DEPTH);
    p->pos++;
    r = parse_tree(p, &n->left, depth + 1);
    if (r == KM_OK)
        r = expect(p, ',');
    if (r == KM_OK)
        r = parse_tree(p, &n->right, depth + 1);
    if (r == KM_OK)
        r = expect(p, '}');
    return r;
}

/* Top-level expressions this module does not build: say why. */
static int refuse_script(struct parser *p, size_t a, size_t b)
{
    const char *s = p->s + a;
    size_t n = b - a;

    if (!known_script(s, n))
        return perr(p, a, KM_ERR_INVALID, "unknown script expression '%.*s'",
                    (int)(n < TOKEN_SHOW ? n : TOKEN_SHOW), s);
    if (mem_is(s, n, "sp"))
        return perr(p, a, KM_ERR_UNSUPPORTED, "sp() descriptors are not supported");
    if (calls(p->s + b, p->len - b, "musig"))
        return perr(p, a, KM_ERR_INVALID, "musig() is only allowed in tr() and rawtr()");
    if (calls(p->s + b, p->len - b, "tr") || calls(p->s + b, p->len - b, "rawtr"))
        return perr(p, a, KM_ERR_INVALID, "tr() is only allowed at the top level");
    return perr(p, a, KM_ERR_UNSUPPORTED,
                "%.*s() descriptors are not supported (only tr()/rawtr())", (int)n, s);
}

static int parse_script(struct parser *p, struct descriptor *d)
{
    size_t a = p->pos, b = ident_end(p, a);
    int r;

    if (b == a || b >= p->len || p->s[b] != '(')
        return perr(p, a, KM_ERR_INVALID, "expected a script expression such as tr(KEY)");
    if (!mem_is(p->s + a, b - a, "tr") && !mem_is(p->s + a, b - a, "rawtr"))
        return refuse_script(p, a, b);
    d->raw = mem_is(p->s + a, b - a, "rawtr");
    p->pos = b + 1;
    r = parse_key(p, &d->internal, CTX_TR);
    if (r != KM_OK)
        return r;
    if (!d->raw && peek_is(p, ',')) {
        p->pos++;
        r = parse_tree(p, &d->tree, 0);
        if (r != KM_OK)
            return r;
    }
    r = expect(p, ')');
    if (r == KM_OK && p->pos != p->len)
        r = perr(p, p->pos, KM_ERR_INVALID, "unexpected '%c' after the descriptor", p->s[p->pos]);
    return r;
}

static void parser_init(struct parser *p, struct km_error *err, const char *s, size_t len,
                        unsigned flags)
{
    memset(p, 0, sizeof(*p));
    p->s = s;
    p->len = len;
    p->flags = flags;
    p->err = err;
}

int descriptor_parse(struct descriptor **out, struct km_error *err, const char *s, size_t len,
                     unsigned flags)
{
    struct descriptor *d = NULL;
    struct parser p;
    size_t plen;
    int r;

    *out = NULL;
    if (len > DESCRIPTOR_MAX_LEN + 1 + DESCRIPTOR_CHECKSUM_LEN)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "descriptor: longer than %u characters",
                            DESCRIPTOR_MAX_LEN);
    r = descriptor_checksum_check(&plen, err, s, len, (flags & DESCRIPTOR_F_REQUIRE_CHECKSUM) != 0);
    if (r != KM_OK)
        return r;
    if (plen > DESCRIPTOR_MAX_LEN)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "descriptor: longer than %u characters",
                            DESCRIPTOR_MAX_LEN);
    parser_init(&p, err, s, plen, flags);
    d = xcalloc(1, sizeof(*d));
    r = parse_script(&p, d);
    if (r != KM_OK) {
        descriptor_free(d);
        return r;
    }
    d->ranged = p.ranged;
    d->has_private = p.has_private;
    *out = d;
    return KM_OK;
}

int descriptor_key_check(struct km_error *err, const char *s, size_t len, unsigned flags)
{
    struct parser p;
    struct dkey k;
    int r;

    if (len > DESCRIPTOR_MAX_LEN)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "descriptor: longer than %u characters",
                            DESCRIPTOR_MAX_LEN);
    if (first_bad_char(s, len) != len)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "descriptor: character %zu is not allowed in a descriptor",
                            first_bad_char(s, len) + 1);
    parser_init(&p, err, s, len, flags);
    memset(&k, 0, sizeof(k));
    r = parse_key(&p, &k, CTX_PLAIN);
    if (r == KM_OK && p.pos != len)
        r = perr(&p, p.pos, KM_ERR_INVALID, "unexpected '%c' after the key", s[p.pos]);
    dkey_release(&k);
    return r;
}

/* ---- BIP-32 derivation ------------------------------------------------------------- */

static int hmac_sha512(uint8_t out[64], const uint8_t chain[32], const uint8_t *data, size_t n)
{
    size_t outlen = 0;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA512", NULL, chain, 32, data, n, out, 64, &outlen) ==
            NULL ||
        outlen != 64) {
        secure_wipe(out, 64);
        return KM_ERR_CRYPTO;
    }
    return KM_OK;
}

/* CKDpub: pub and chain become child i's (unhardened only). */
static int ckd_pub(uint8_t pub[33], uint8_t chain[32], uint32_t i)
{
    const secp256k1_context *sctx = crypto_ctx();
    uint8_t data[37], I[64];
    secp256k1_pubkey pk;
    size_t plen = 33;
    int r;

    memcpy(data, pub, 33);
    buf_store_be32(data + 33, i);
    r = hmac_sha512(I, chain, data, sizeof(data));
    if (r == KM_OK && (!secp256k1_ec_pubkey_parse(sctx, &pk, pub, 33) ||
                       !secp256k1_ec_pubkey_tweak_add(sctx, &pk, I)))
        r = KM_ERR_CRYPTO; /* I_L >= n or the child is infinity */
    if (r == KM_OK) {
        secp256k1_ec_pubkey_serialize(sctx, pub, &plen, &pk, SECP256K1_EC_COMPRESSED);
        memcpy(chain, I + 32, 32);
    }
    secure_wipe(I, sizeof(I));
    return r;
}

/* CKDpriv: sec and chain become child i's. */
static int ckd_priv(uint8_t sec[32], uint8_t chain[32], uint32_t i)
{
    const secp256k1_context *sctx = crypto_ctx();
    uint8_t data[37], I[64];
    secp256k1_pubkey pk;
    size_t plen = 33;
    int r = KM_OK;

    if (i & HARDENED) {
        data[0] = 0;
        memcpy(data + 1, sec, 32);
    } else if (!secp256k1_ec_pubkey_create(sctx, &pk, sec)) {
        r = KM_ERR_CRYPTO;
    } else {
        secp256k1_ec_pubkey_serialize(sctx, data, &plen, &pk, SECP256K1_EC_COMPRESSED);
    }
    buf_store_be32(data + 33, i);
    if (r == KM_OK)
        r = hmac_sha512(I, chain, data, sizeof(data));
    if (r == KM_OK && !secp256k1_ec_seckey_tweak_add(sctx, sec, I))
        r = KM_ERR_CRYPTO; /* I_L >= n or the child key is zero */
    if (r == KM_OK)
        memcpy(chain, I + 32, 32);
    secure_wipe(data, sizeof(data));
    secure_wipe(I, sizeof(I));
    return r;
}

static uint32_t range_child(const struct dkey *k, uint32_t index)
{
    return k->range == RANGE_HARDENED ? index | HARDENED : index;
}

static int derive_error(struct km_error *err, int code, uint32_t index)
{
    if (code == KM_ERR_UNSUPPORTED)
        return km_error_set(err, code, 0,
                            "descriptor: hardened derivation from an extended public key needs "
                            "its private key");
    return km_error_set(err, code, 0, "descriptor: BIP-32 derivation failed at child index %u",
                        index);
}

static int xkey_eval(uint8_t out[33], struct km_error *err, const struct dkey *k, uint32_t index)
{
    const secp256k1_context *sctx = crypto_ctx();
    uint8_t chain[32], sec[32];
    secp256k1_pubkey pk;
    size_t plen = 33;
    int r = KM_OK;

    memcpy(chain, k->x.chain, 32);
    memcpy(out, k->x.pub, 33);
    if (k->has_secret) {
        memcpy(sec, k->sec, 32);
        for (size_t i = 0; i < k->path.n && r == KM_OK; i++)
            r = ckd_priv(sec, chain, k->path.step[i]);
        if (r == KM_OK && k->range != RANGE_NONE)
            r = ckd_priv(sec, chain, range_child(k, index));
        if (r == KM_OK && !secp256k1_ec_pubkey_create(sctx, &pk, sec))
            r = KM_ERR_CRYPTO;
        if (r == KM_OK)
            secp256k1_ec_pubkey_serialize(sctx, out, &plen, &pk, SECP256K1_EC_COMPRESSED);
        secure_wipe(sec, sizeof(sec));
    } else {
        if (path_has_hardened(&k->path) || k->range == RANGE_HARDENED)
            r = KM_ERR_UNSUPPORTED;
        for (size_t i = 0; i < k->path.n && r == KM_OK; i++)
            r = ckd_pub(out, chain, k->path.step[i]);
        if (r == KM_OK && k->range != RANGE_NONE)
            r = ckd_pub(out, chain, range_child(k, index));
    }
    secure_wipe(chain, sizeof(chain));
    return r == KM_OK ? KM_OK : derive_error(err, r, index);
}

static int key_eval(uint8_t out[33], struct km_error *err, const struct dkey *k, uint32_t index);

/* KeySort and KeyAgg of the derived participants, then BIP-328. */
static int musig_eval(uint8_t out[33], struct km_error *err, const struct dkey *k, uint32_t index)
{
    uint8_t(*keys)[MUSIG_PUBKEY_LEN] = xcalloc(k->n_part, MUSIG_PUBKEY_LEN);
    struct musig_keyagg *ka = NULL;
    struct musig_blame blame;
    uint8_t chain[32];
    int r = KM_OK;

    for (size_t i = 0; i < k->n_part && r == KM_OK; i++)
        r = key_eval(keys[i], err, k->part[i], index);
    if (r == KM_OK) {
        musig_key_sort(keys, k->n_part);
        r = musig_keyagg_new(&ka, &blame, (const uint8_t(*)[MUSIG_PUBKEY_LEN])keys, k->n_part);
        if (r != KM_OK)
            r = km_error_set(err, r == KM_ERR_NOMEM ? r : KM_ERR_INVALID, 0,
                             "descriptor: musig() key aggregation failed: %s",
                             musig_reason_str(blame.reason));
    }
    if (r == KM_OK) {
        musig_keyagg_plain(ka, out);
        memcpy(chain, musig_chaincode, 32);
        for (size_t i = 0; i < k->path.n && r == KM_OK; i++)
            r = ckd_pub(out, chain, k->path.step[i]);
        if (r == KM_OK && k->range != RANGE_NONE)
            r = ckd_pub(out, chain, index);
        if (r != KM_OK)
            r = derive_error(err, r, index);
    }
    musig_keyagg_free(ka);
    free(keys);
    return r;
}

/* The compressed key of k at child index (an x-only key gets 0x02). */
static int key_eval(uint8_t out[33], struct km_error *err, const struct dkey *k, uint32_t index)
{
    switch (k->kind) {
    case KEY_CONST:
        if (k->pub_len == 32) {
            out[0] = 2;
            memcpy(out + 1, k->pub, 32);
        } else {
            KM_ASSERT(k->pub_len == 33);
            memcpy(out, k->pub, 33);
        }
        return KM_OK;
    case KEY_XKEY:
        return xkey_eval(out, err, k, index);
    case KEY_MUSIG:
        return musig_eval(out, err, k, index);
    }
    KM_BUG("unknown key kind %d", (int)k->kind);
}

/* Merkle root of a tree: pk() leaves are <xonly> OP_CHECKSIG. */
static int tree_hash(uint8_t out[32], struct km_error *err, const struct node *n, uint32_t index)
{
    uint8_t a[32], b[32], script[TAPSCRIPT_PK], pk[33];
    int r;

    if (n->leaf) {
        r = key_eval(pk, err, &n->key, index);
        if (r != KM_OK)
            return r;
        script[0] = 0x20;
        memcpy(script + 1, pk + 1, 32);
        script[33] = 0xac;
        taproot_leaf_hash(out, TAPROOT_LEAF_TAPSCRIPT, script, sizeof(script));
        return KM_OK;
    }
    r = tree_hash(a, err, n->left, index);
    if (r == KM_OK)
        r = tree_hash(b, err, n->right, index);
    if (r == KM_OK)
        taproot_branch_hash(out, a, b);
    return r;
}

int descriptor_output(struct descriptor_output *out, struct km_error *err,
                      const struct descriptor *d, uint32_t index)
{
    uint8_t internal[33];
    int r;

    memset(out, 0, sizeof(*out));
    if (d->ranged && index > DESCRIPTOR_MAX_INDEX)
        return km_error_set(err, KM_ERR_RANGE, 0, "descriptor: child index %u is hardened", index);
    r = key_eval(internal, err, &d->internal, index);
    if (r == KM_OK && d->tree != NULL) {
        r = tree_hash(out->merkle_root, err, d->tree, index);
        out->has_tree = 1;
    }
    if (r != KM_OK) {
        memset(out, 0, sizeof(*out));
        return r;
    }
    memcpy(out->internal_key, internal + 1, 32);
    if (d->raw) {
        memcpy(out->output_key, internal + 1, 32);
    } else {
        r = taproot_output_key(out->output_key, &out->output_parity, out->internal_key, 32,
                               out->has_tree ? out->merkle_root : NULL);
        if (r != KM_OK) {
            memset(out, 0, sizeof(*out));
            return km_error_set(err, KM_ERR_CRYPTO, 0, "descriptor: the Taproot tweak failed");
        }
    }
    taproot_script_pubkey(out->script_pubkey, out->output_key);
    return KM_OK;
}

/* ---- string form ------------------------------------------------------------------- */

static int put_hex(struct buf *b, const uint8_t *p, size_t n)
{
    char h[2 * 65 + 1];
    KM_ASSERT(n <= 65);
    hex_encode(h, sizeof(h), p, n);
    return buf_put(b, h, 2 * n);
}

static int put_path(struct buf *b, const struct path *p)
{
    int r = KM_OK;
    for (size_t i = 0; i < p->n && r == KM_OK; i++)
        r = buf_putf(b, "/%u%s", (unsigned)(p->step[i] & ~HARDENED),
                     (p->step[i] & HARDENED) ? "h" : "");
    return r;
}

static int put_xkey(struct buf *b, const struct xkey *x)
{
    uint8_t raw[XKEY_LEN];
    char s[DESCRIPTOR_XPUB_STR_MAX];

    memcpy(raw, x->version, 4);
    raw[4] = x->depth;
    memcpy(raw + 5, x->parent, 4);
    memcpy(raw + 9, x->child, 4);
    memcpy(raw + 13, x->chain, 32);
    memcpy(raw + 45, x->pub, 33);
    if (address_base58check_encode(s, sizeof(s), raw, sizeof(raw)) != KM_OK)
        return KM_ERR_CRYPTO;
    return buf_put_str(b, s);
}

static int put_key(struct buf *b, const struct dkey *k)
{
    int r = KM_OK;

    if (k->has_origin) {
        r = buf_put_u8(b, '[');
        if (r == KM_OK)
            r = put_hex(b, k->fpr, 4);
        if (r == KM_OK)
            r = put_path(b, &k->origin);
        if (r == KM_OK)
            r = buf_put_u8(b, ']');
    }
    if (r != KM_OK)
        return r;
    switch (k->kind) {
    case KEY_CONST:
        r = put_hex(b, k->pub, k->pub_len);
        break;
    case KEY_XKEY:
        r = put_xkey(b, &k->x);
        break;
    case KEY_MUSIG:
        r = buf_put_str(b, "musig(");
        for (size_t i = 0; i < k->n_part && r == KM_OK; i++) {
            if (i > 0)
                r = buf_put_u8(b, ',');
            if (r == KM_OK)
                r = put_key(b, k->part[i]);
        }
        if (r == KM_OK)
            r = buf_put_u8(b, ')');
        break;
    }
    if (r == KM_OK)
        r = put_path(b, &k->path);
    if (r == KM_OK && k->range != RANGE_NONE)
        r = buf_put_str(b, k->range == RANGE_HARDENED ? "/*h" : "/*");
    return r;
}

static int put_tree(struct buf *b, const struct node *n)
{
    int r;

    if (n->leaf) {
        r = buf_put_str(b, "pk(");
        if (r == KM_OK)
            r = put_key(b, &n->key);
        return r == KM_OK ? buf_put_u8(b, ')') : r;
    }
    r = buf_put_u8(b, '{');
    if (r == KM_OK)
        r = put_tree(b, n->left);
    if (r == KM_OK)
        r = buf_put_u8(b, ',');
    if (r == KM_OK)
        r = put_tree(b, n->right);
    return r == KM_OK ? buf_put_u8(b, '}') : r;
}

/* Appends '#' and the checksum of out's bytes from start on. */
static int put_checksum(struct buf *out, size_t start)
{
    char sum[DESCRIPTOR_CHECKSUM_LEN + 1];
    const uint8_t *p = buf_peek(out);

    KM_ASSERT(p != NULL && buf_len(out) >= start);
    if (descriptor_checksum(sum, (const char *)p + start, buf_len(out) - start) != KM_OK)
        return KM_ERR_INVALID;
    int r = buf_put_u8(out, '#');
    return r == KM_OK ? buf_put(out, sum, DESCRIPTOR_CHECKSUM_LEN) : r;
}

int descriptor_to_string(struct buf *out, const struct descriptor *d)
{
    size_t start = buf_len(out);
    int r;

    if (d->has_private)
        return KM_ERR_UNSUPPORTED;
    r = buf_put_str(out, d->raw ? "rawtr(" : "tr(");
    if (r == KM_OK)
        r = put_key(out, &d->internal);
    if (r == KM_OK && d->tree != NULL) {
        r = buf_put_u8(out, ',');
        if (r == KM_OK)
            r = put_tree(out, d->tree);
    }
    if (r == KM_OK)
        r = buf_put_u8(out, ')');
    if (r == KM_OK)
        r = put_checksum(out, start);
    return r;
}

int descriptor_musig_xpub(char *out, size_t outcap, const uint8_t aggpk[33])
{
    struct xkey x;
    struct buf b;
    secp256k1_pubkey pk;
    int r;

    if (outcap > 0)
        out[0] = '\0';
    if ((aggpk[0] != 2 && aggpk[0] != 3) ||
        !secp256k1_ec_pubkey_parse(crypto_ctx(), &pk, aggpk, 33))
        return KM_ERR_INVALID;
    if (outcap < DESCRIPTOR_XPUB_STR_MAX)
        return KM_ERR_TOO_LARGE;
    memset(&x, 0, sizeof(x));
    memcpy(x.version, ver_xpub, 4);
    memcpy(x.chain, musig_chaincode, 32);
    memcpy(x.pub, aggpk, 33);
    buf_init(&b, DESCRIPTOR_XPUB_STR_MAX);
    r = put_xkey(&b, &x);
    if (r == KM_OK && buf_len(&b) < outcap) {
        memcpy(out, buf_peek(&b), buf_len(&b));
        out[buf_len(&b)] = '\0';
    } else if (r == KM_OK) {
        r = KM_ERR_TOO_LARGE;
    }
    buf_release(&b);
    return r;
}

/* ---- a KeyMeld group ------------------------------------------------------------------ */

void descriptor_group_result_clear(struct descriptor_group_result *res)
{
    free(res->descriptor);
    memset(res, 0, sizeof(*res));
}

/* "musig(k1,k2,...)" for the group's keys. */
static int put_group_musig(struct buf *b, const struct descriptor_group *g)
{
    int r = buf_put_str(b, "musig(");
    for (size_t i = 0; i < g->n && r == KM_OK; i++) {
        if (i > 0)
            r = buf_put_u8(b, ',');
        if (r == KM_OK)
            r = put_hex(b, g->pubkeys[i], 33);
    }
    return r == KM_OK ? buf_put_u8(b, ')') : r;
}

/* Parses b's text (as a caller's wallet would) and evaluates it. */
static int group_eval(struct descriptor_output *o, struct km_error *err, struct buf *b)
{
    struct descriptor *d = NULL;
    const char *s = buf_cstr(b);
    int r;

    if (s == NULL)
        return km_error_set(err, KM_ERR_NOMEM, 0, "descriptor: out of memory");
    r = descriptor_parse(&d, err, s, buf_len(b), 0);
    if (r == KM_OK && descriptor_is_ranged(d))
        r = km_error_set(err, KM_ERR_INVALID, 0, "descriptor: the script tree must not be ranged");
    if (r == KM_OK)
        r = descriptor_output(o, err, d, 0);
    descriptor_free(d);
    return r;
}

/* The descriptor text of g (without checksum) into b; sets *opaque. */
static int group_text(struct buf *b, struct km_error *err, const struct descriptor_group *g,
                      int *opaque)
{
    struct descriptor_output o;
    uint8_t key[32];
    int r;

    *opaque = 0;
    if (g->tweak == DESCRIPTOR_GROUP_MERKLE_ROOT && g->merkle_root == NULL)
        return km_error_set(err, KM_ERR_INVALID, 0, "descriptor: a merkle root is required");
    if (g->tweak != DESCRIPTOR_GROUP_MERKLE_ROOT && g->tree != NULL)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "descriptor: a script tree needs the merkle root tweak");
    r = buf_put_str(b, g->tweak == DESCRIPTOR_GROUP_UNTWEAKED ? "rawtr(" : "tr(");
    if (r == KM_OK)
        r = put_group_musig(b, g);
    if (r == KM_OK && g->tweak == DESCRIPTOR_GROUP_MERKLE_ROOT && g->tree != NULL) {
        r = buf_put_u8(b, ',');
        if (r == KM_OK)
            r = buf_put(b, g->tree, g->tree_len);
    }
    if (r == KM_OK)
        r = buf_put_u8(b, ')');
    if (r != KM_OK)
        return km_error_set(err, r, 0, "descriptor: too long");
    if (g->tweak != DESCRIPTOR_GROUP_MERKLE_ROOT || g->tree != NULL)
        return KM_OK;
    /* A root without its scripts: rawtr(<output key>), checked below. */
    r = group_eval(&o, err, b);
    if (r == KM_OK && taproot_output_key(key, NULL, o.internal_key, 32, g->merkle_root) != KM_OK)
        r = km_error_set(err, KM_ERR_CRYPTO, 0, "descriptor: the Taproot tweak failed");
    buf_reset(b);
    if (r == KM_OK && (buf_put_str(b, "rawtr(") != KM_OK || put_hex(b, key, 32) != KM_OK ||
                       buf_put_u8(b, ')') != KM_OK))
        r = km_error_set(err, KM_ERR_NOMEM, 0, "descriptor: out of memory");
    *opaque = r == KM_OK;
    return r;
}

int descriptor_for_group(struct descriptor_group_result *res, struct km_error *err,
                         const struct descriptor_group *g, enum address_network net)
{
    struct descriptor_output o;
    struct buf b;
    int r, opaque = 0;

    memset(res, 0, sizeof(*res));
    if (g->n == 0 || g->n > DESCRIPTOR_MAX_KEYS)
        return km_error_set(err, KM_ERR_INVALID, 0, "descriptor: %zu keys (1 to %u allowed)", g->n,
                            DESCRIPTOR_MAX_KEYS);
    buf_init(&b, DESCRIPTOR_MAX_LEN + 1 + DESCRIPTOR_CHECKSUM_LEN + 1);
    r = group_text(&b, err, g, &opaque);
    if (r == KM_OK)
        r = group_eval(&o, err, &b);
    if (r == KM_OK && g->tweak == DESCRIPTOR_GROUP_MERKLE_ROOT && !opaque &&
        memcmp(o.merkle_root, g->merkle_root, 32) != 0)
        r = km_error_set(err, KM_ERR_INVALID, 0,
                         "descriptor: the tree's merkle root differs from the group's");
    if (r == KM_OK && g->expect_output_key != NULL &&
        memcmp(o.output_key, g->expect_output_key, 32) != 0)
        r = km_error_set(err, KM_ERR_CRYPTO, 0,
                         "descriptor: the output key differs from the group's key");
    if (r == KM_OK && put_checksum(&b, 0) != KM_OK)
        r = km_error_set(err, KM_ERR_NOMEM, 0, "descriptor: out of memory");
    if (r == KM_OK &&
        address_taproot(res->address, sizeof(res->address), net, o.output_key) != KM_OK)
        r = km_error_set(err, KM_ERR_INTERNAL, 0, "descriptor: address encoding failed");
    if (r == KM_OK) {
        res->descriptor = xstrndup((const char *)buf_peek(&b), buf_len(&b));
        memcpy(res->output_key, o.output_key, 32);
        res->opaque = opaque;
    } else {
        descriptor_group_result_clear(res);
    }
    buf_release(&b);
    return r;
}
