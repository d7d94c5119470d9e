/*
 * address.c - bech32 / bech32m (BIP-173, BIP-350), segwit addresses and
 * Base58Check.
 */
#include "bitcoin/address.h"

#include <string.h>

#include "bitcoin/tx.h"
#include "common/secure.h"
#include "common/banned.h"

#define BECH32M_CONST    0x2bc830a3u
#define BECH32_CHECKSUM  6
#define BASE58_MAX_BYTES 128

static const char b32_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
static const char b58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/* ---- networks ----------------------------------------------------------- */

const char *address_network_hrp(enum address_network net)
{
    switch (net) {
    case ADDRESS_MAINNET:
        return "bc";
    case ADDRESS_TESTNET:
    case ADDRESS_SIGNET:
        return "tb";
    case ADDRESS_REGTEST:
        return "bcrt";
    }
    KM_BUG("unknown network %d", (int)net);
}

const char *address_network_name(enum address_network net)
{
    switch (net) {
    case ADDRESS_MAINNET:
        return "mainnet";
    case ADDRESS_TESTNET:
        return "testnet";
    case ADDRESS_SIGNET:
        return "signet";
    case ADDRESS_REGTEST:
        return "regtest";
    }
    KM_BUG("unknown network %d", (int)net);
}

static int name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

int address_network_parse(enum address_network *out, const char *name, size_t len)
{
    *out = ADDRESS_MAINNET;
    if (name_is(name, len, "mainnet") || name_is(name, len, "main") ||
        name_is(name, len, "bitcoin"))
        return KM_OK;
    if (name_is(name, len, "testnet") || name_is(name, len, "test") ||
        name_is(name, len, "testnet3") || name_is(name, len, "testnet4")) {
        *out = ADDRESS_TESTNET;
        return KM_OK;
    }
    if (name_is(name, len, "signet")) {
        *out = ADDRESS_SIGNET;
        return KM_OK;
    }
    if (name_is(name, len, "regtest")) {
        *out = ADDRESS_REGTEST;
        return KM_OK;
    }
    return KM_ERR_INVALID;
}

/* ---- bech32 / bech32m ---------------------------------------------------- */

static uint32_t b32_polymod_step(uint32_t pre)
{
    uint32_t b = pre >> 25;
    return ((pre & 0x1ffffffu) << 5) ^ (-((b >> 0) & 1u) & 0x3b6a57b2u) ^
           (-((b >> 1) & 1u) & 0x26508e6du) ^ (-((b >> 2) & 1u) & 0x1ea119fau) ^
           (-((b >> 3) & 1u) & 0x3d4233ddu) ^ (-((b >> 4) & 1u) & 0x2a1462b3u);
}

static unsigned char b32_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static uint32_t encoding_const(enum address_encoding enc)
{
    return enc == ADDRESS_BECH32M ? BECH32M_CONST : 1u;
}

/* Checksum state after the expanded hrp (lower-cased on the fly). */
static uint32_t b32_hrp_state(const char *hrp, size_t hl)
{
    uint32_t chk = 1;
    for (size_t i = 0; i < hl; i++)
        chk = b32_polymod_step(chk) ^ ((uint32_t)b32_lower((unsigned char)hrp[i]) >> 5);
    chk = b32_polymod_step(chk);
    for (size_t i = 0; i < hl; i++)
        chk = b32_polymod_step(chk) ^ ((uint32_t)b32_lower((unsigned char)hrp[i]) & 0x1f);
    return chk;
}

/* An hrp we write: 1..83 characters in 33..126, no upper case. */
static int hrp_valid(const char *hrp, size_t hl)
{
    if (hl == 0 || hl > ADDRESS_HRP_MAX_LEN)
        return 0;
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)hrp[i];
        if (c < 33 || c > 126 || (c >= 'A' && c <= 'Z'))
            return 0;
    }
    return 1;
}

int address_bech32_encode(char *out, size_t outcap, enum address_encoding enc, const char *hrp,
                          const uint8_t *data, size_t n)
{
    size_t hl = strlen(hrp), k;
    uint32_t chk;

    if (outcap > 0)
        out[0] = '\0';
    if (!hrp_valid(hrp, hl) || n > ADDRESS_BECH32_MAX_LEN ||
        hl + 1 + n + BECH32_CHECKSUM > ADDRESS_BECH32_MAX_LEN)
        return KM_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        if (data[i] > 31)
            return KM_ERR_INVALID;
    }
    if (outcap < hl + 1 + n + BECH32_CHECKSUM + 1)
        return KM_ERR_TOO_LARGE;
    chk = b32_hrp_state(hrp, hl);
    memcpy(out, hrp, hl);
    k = hl;
    out[k++] = '1';
    for (size_t i = 0; i < n; i++) {
        chk = b32_polymod_step(chk) ^ data[i];
        out[k++] = b32_charset[data[i]];
    }
    for (int i = 0; i < BECH32_CHECKSUM; i++)
        chk = b32_polymod_step(chk);
    chk ^= encoding_const(enc);
    for (int i = 0; i < BECH32_CHECKSUM; i++)
        out[k++] = b32_charset[(chk >> (5 * (5 - i))) & 0x1f];
    out[k] = '\0';
    return KM_OK;
}

/* Characters, case and separator of a bech32 string. Sets *sep to the
 * index of the last '1'. */
static int bech32_shape(size_t *sep, struct km_error *err, const char *s, size_t len)
{
    int lower = 0, upper = 0, have_sep = 0;

    if (len > ADDRESS_BECH32_MAX_LEN)
        return km_error_set(err, KM_ERR_INVALID, 0, "bech32: longer than %d characters",
                            ADDRESS_BECH32_MAX_LEN);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 33 || c > 126)
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "bech32: character %zu is out of range (0x%02x)", i, c);
        lower |= c >= 'a' && c <= 'z';
        upper |= c >= 'A' && c <= 'Z';
        if (c == '1') {
            *sep = i;
            have_sep = 1;
        }
    }
    if (lower && upper)
        return km_error_set(err, KM_ERR_INVALID, 0, "bech32: mixed case");
    if (!have_sep)
        return km_error_set(err, KM_ERR_INVALID, 0, "bech32: no separator character '1'");
    if (*sep == 0)
        return km_error_set(err, KM_ERR_INVALID, 0, "bech32: empty human-readable part");
    if (*sep > ADDRESS_HRP_MAX_LEN)
        return km_error_set(err, KM_ERR_INVALID, 0, "bech32: human-readable part too long");
    if (len - *sep - 1 < BECH32_CHECKSUM)
        return km_error_set(err, KM_ERR_INVALID, 0, "bech32: checksum too short");
    return KM_OK;
}

int address_bech32_decode(enum address_encoding *enc, char hrp[ADDRESS_HRP_MAX_LEN + 1],
                          uint8_t *data, size_t datacap, size_t *n, struct km_error *err,
                          const char *s, size_t len)
{
    size_t sep = 0, nd;
    uint32_t chk;
    int r;

    *enc = ADDRESS_BECH32;
    *n = 0;
    hrp[0] = '\0';
    r = bech32_shape(&sep, err, s, len);
    if (r != KM_OK)
        return r;
    nd = len - sep - 1;
    if (nd - BECH32_CHECKSUM > datacap)
        return km_error_set(err, KM_ERR_INVALID, 0, "bech32: data part too long");
    chk = b32_hrp_state(s, sep);
    for (size_t i = 0; i < nd; i++) {
        unsigned char c = b32_lower((unsigned char)s[sep + 1 + i]);
        const char *p = memchr(b32_charset, c, 32);
        if (p == NULL || c == '\0')
            return km_error_set(err, KM_ERR_INVALID, 0, "bech32: invalid %s character '%c'",
                                i + BECH32_CHECKSUM >= nd ? "checksum" : "data", c);
        uint8_t v = (uint8_t)(p - b32_charset);
        if (i + BECH32_CHECKSUM < nd)
            data[i] = v;
        chk = b32_polymod_step(chk) ^ v;
    }
    if (chk == 1u)
        *enc = ADDRESS_BECH32;
    else if (chk == BECH32M_CONST)
        *enc = ADDRESS_BECH32M;
    else
        return km_error_set(err, KM_ERR_INVALID, 0, "bech32: invalid checksum");
    for (size_t i = 0; i < sep; i++)
        hrp[i] = (char)b32_lower((unsigned char)s[i]);
    hrp[sep] = '\0';
    *n = nd - BECH32_CHECKSUM;
    return KM_OK;
}

/* ---- segwit ------------------------------------------------------------- */

static int program_valid(unsigned version, size_t len)
{
    if (version > 16 || len < ADDRESS_PROGRAM_MIN || len > ADDRESS_PROGRAM_MAX)
        return 0;
    return version != 0 || len == 20 || len == 32;
}

int address_segwit_encode(char *out, size_t outcap, const char *hrp, const struct address_segwit *w)
{
    uint8_t data[1 + (ADDRESS_PROGRAM_MAX * 8 + 4) / 5];
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;

    if (outcap > 0)
        out[0] = '\0';
    if (!program_valid(w->version, w->program_len))
        return KM_ERR_INVALID;
    data[n++] = (uint8_t)w->version;
    for (size_t i = 0; i < w->program_len; i++) {
        acc = ((acc << 8) | w->program[i]) & 0xfffu;
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            data[n++] = (uint8_t)((acc >> bits) & 0x1f);
        }
    }
    if (bits > 0)
        data[n++] = (uint8_t)((acc << (5 - bits)) & 0x1f);
    return address_bech32_encode(out, outcap, w->version == 0 ? ADDRESS_BECH32 : ADDRESS_BECH32M,
                                 hrp, data, n);
}

/* 5-bit groups to bytes; BIP-173: at most 4 padding bits, all zero. */
static int regroup_8(struct address_segwit *w, struct km_error *err, const uint8_t *d, size_t n)
{
    uint32_t acc = 0;
    unsigned bits = 0;

    for (size_t i = 0; i < n; i++) {
        acc = ((acc << 5) | d[i]) & 0xfffu;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (w->program_len >= ADDRESS_PROGRAM_MAX)
                return km_error_set(err, KM_ERR_INVALID, 0,
                                    "segwit address: program longer than %d bytes",
                                    ADDRESS_PROGRAM_MAX);
            w->program[w->program_len++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 4)
        return km_error_set(err, KM_ERR_INVALID, 0, "segwit address: more than 4 padding bits");
    if ((acc & ((1u << bits) - 1u)) != 0)
        return km_error_set(err, KM_ERR_INVALID, 0, "segwit address: non-zero padding");
    return KM_OK;
}

static int segwit_from_data(struct address_segwit *w, struct km_error *err,
                            enum address_encoding enc, const uint8_t *d, size_t n)
{
    int r;

    if (n == 0)
        return km_error_set(err, KM_ERR_INVALID, 0, "segwit address: empty data part");
    if (d[0] > 16)
        return km_error_set(err, KM_ERR_INVALID, 0, "segwit address: witness version %u > 16",
                            (unsigned)d[0]);
    w->version = d[0];
    r = regroup_8(w, err, d + 1, n - 1);
    if (r != KM_OK)
        return r;
    if (!program_valid(w->version, w->program_len))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "segwit address: invalid program length %zu for witness version %u",
                            w->program_len, w->version);
    if ((w->version == 0) != (enc == ADDRESS_BECH32))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "segwit address: witness version %u requires %s, not %s", w->version,
                            w->version == 0 ? "bech32" : "bech32m",
                            enc == ADDRESS_BECH32 ? "bech32" : "bech32m");
    return KM_OK;
}

static int segwit_decode_any(struct address_segwit *w, char hrp[ADDRESS_HRP_MAX_LEN + 1],
                             struct km_error *err, const char *addr, size_t len)
{
    uint8_t d[ADDRESS_BECH32_MAX_LEN];
    enum address_encoding enc;
    size_t n;

    memset(w, 0, sizeof(*w));
    int r = address_bech32_decode(&enc, hrp, d, sizeof(d), &n, err, addr, len);
    if (r == KM_OK)
        r = segwit_from_data(w, err, enc, d, n);
    if (r != KM_OK)
        memset(w, 0, sizeof(*w));
    return r;
}

int address_segwit_decode(struct address_segwit *w, struct km_error *err, const char *hrp,
                          const char *addr, size_t len)
{
    char got[ADDRESS_HRP_MAX_LEN + 1];
    int r = segwit_decode_any(w, got, err, addr, len);

    if (r == KM_OK && strcmp(got, hrp) != 0) {
        memset(w, 0, sizeof(*w));
        r = km_error_set(err, KM_ERR_INVALID, 0,
                         "segwit address: human-readable part \"%.83s\", expected \"%.83s\"", got,
                         hrp);
    }
    return r;
}

int address_decode(struct address_segwit *w, enum address_network *net, struct km_error *err,
                   const char *addr, size_t len)
{
    static const enum address_network nets[] = {ADDRESS_MAINNET, ADDRESS_TESTNET, ADDRESS_REGTEST};
    char got[ADDRESS_HRP_MAX_LEN + 1];
    int r = segwit_decode_any(w, got, err, addr, len);

    *net = ADDRESS_MAINNET;
    if (r != KM_OK)
        return r;
    for (size_t i = 0; i < KM_ARRAY_LEN(nets); i++) {
        if (strcmp(got, address_network_hrp(nets[i])) == 0) {
            *net = nets[i];
            return KM_OK;
        }
    }
    memset(w, 0, sizeof(*w));
    return km_error_set(err, KM_ERR_INVALID, 0,
                        "segwit address: unknown human-readable part \"%.83s\"", got);
}

size_t address_segwit_script(uint8_t out[ADDRESS_SCRIPT_MAX], const struct address_segwit *w)
{
    if (!program_valid(w->version, w->program_len))
        return 0;
    /* OP_0 is 0x00; OP_1..OP_16 are 0x51..0x60. */
    out[0] = (uint8_t)(w->version == 0 ? 0 : 0x50 + w->version);
    out[1] = (uint8_t)w->program_len;
    memcpy(out + 2, w->program, w->program_len);
    return 2 + w->program_len;
}

int address_taproot(char *out, size_t outcap, enum address_network net, const uint8_t key[32])
{
    struct address_segwit w = {1, {0}, 32};
    memcpy(w.program, key, 32);
    return address_segwit_encode(out, outcap, address_network_hrp(net), &w);
}

/* ---- Base58Check --------------------------------------------------------- */

int address_base58check_encode(char *out, size_t outcap, const uint8_t *p, size_t n)
{
    /* log(256) / log(58) < 1.37: 138 / 100 digits per byte. */
    uint8_t in[BASE58_MAX_BYTES + 4], b58[(BASE58_MAX_BYTES + 4) * 138 / 100 + 1];
    uint8_t h[32];
    size_t zeros = 0, size = sizeof(b58), used = 0, k = 0;

    if (outcap > 0)
        out[0] = '\0';
    if (n > BASE58_MAX_BYTES)
        return KM_ERR_TOO_LARGE;
    if (tx_sha256d(h, p, n) != KM_OK)
        return KM_ERR_CRYPTO;
    if (n > 0)
        memcpy(in, p, n);
    memcpy(in + n, h, 4);
    n += 4;
    while (zeros < n && in[zeros] == 0)
        zeros++;
    memset(b58, 0, sizeof(b58));
    for (size_t i = zeros; i < n; i++) {
        uint32_t carry = in[i];
        size_t j = 0;
        for (size_t at = size; (carry != 0 || j < used) && at > 0; at--, j++) {
            carry += 256u * b58[at - 1];
            b58[at - 1] = (uint8_t)(carry % 58);
            carry /= 58;
        }
        used = j;
    }
    size_t start = size - used;
    while (start < size && b58[start] == 0)
        start++;
    if (outcap < zeros + (size - start) + 1)
        return KM_ERR_TOO_LARGE;
    for (size_t i = 0; i < zeros; i++)
        out[k++] = '1';
    for (size_t i = start; i < size; i++)
        out[k++] = b58_alphabet[b58[i]];
    out[k] = '\0';
    return KM_OK;
}

static int b58_digit(unsigned char c)
{
    const char *p = c != 0 ? memchr(b58_alphabet, c, 58) : NULL;
    return p == NULL ? -1 : (int)(p - b58_alphabet);
}

int address_base58check_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *s,
                               size_t len)
{
    /* log(58) / log(256) < 0.733 bytes per digit. */
    uint8_t b256[ADDRESS_BASE58_MAX_LEN * 733 / 1000 + 1], h[32];
    size_t zeros = 0, size = sizeof(b256), used = 0, n;
    int r = KM_ERR_INVALID;

    *outlen = 0;
    if (outcap > 0)
        memset(out, 0, outcap);
    if (len > ADDRESS_BASE58_MAX_LEN)
        return KM_ERR_TOO_LARGE;
    if (len == 0)
        return KM_ERR_INVALID;
    while (zeros < len && s[zeros] == '1')
        zeros++;
    memset(b256, 0, sizeof(b256));
    for (size_t i = zeros; i < len; i++) {
        int d = b58_digit((unsigned char)s[i]);
        if (d < 0)
            goto out;
        uint32_t carry = (uint32_t)d;
        size_t j = 0;
        for (size_t at = size; (carry != 0 || j < used) && at > 0; at--, j++) {
            carry += 58u * b256[at - 1];
            b256[at - 1] = (uint8_t)(carry & 0xff);
            carry >>= 8;
        }
        used = j;
    }
    size_t start = size - used;
    while (start < size && b256[start] == 0)
        start++;
    n = zeros + (size - start);
    if (n < 4)
        goto out;
    if (n - 4 > outcap) {
        r = KM_ERR_TOO_LARGE;
        goto out;
    }
    /* The payload is the zeros then b256[start..size) less 4 bytes. */
    {
        uint8_t full[sizeof(b256) + ADDRESS_BASE58_MAX_LEN];
        memset(full, 0, zeros);
        memcpy(full + zeros, b256 + start, size - start);
        if (tx_sha256d(h, full, n - 4) != KM_OK) {
            r = KM_ERR_CRYPTO;
        } else if (memcmp(h, full + n - 4, 4) == 0) {
            memcpy(out, full, n - 4);
            *outlen = n - 4;
            r = KM_OK;
        }
        secure_wipe(full, sizeof(full));
        secure_wipe(h, sizeof(h));
    }
out:
    secure_wipe(b256, sizeof(b256));
    return r;
}
