/*
 * address.h - Bitcoin address encodings: bech32 and bech32m (BIP-173,
 * BIP-350), native segwit addresses of witness versions 0 to 16, the
 * Taproot (witness v1) address of an output key per network, and
 * Base58Check (the encoding of BIP-32 extended keys and WIF private keys).
 *
 * Segwit rules (BIP-350 "Addresses for segregated witness outputs"):
 * version 0 uses bech32 and a 20- or 32-byte program; versions 1 to 16 use
 * bech32m and a 2- to 40-byte program. Decoding checks all of them, refuses
 * mixed case, and names the reason in *err (may be NULL).
 *
 * Networks and their human-readable parts: mainnet "bc", testnet and signet
 * "tb" (the two share it, so an address alone cannot tell them apart),
 * regtest "bcrt".
 *
 * Pure: no I/O, no allocation. Every decoder takes (const char *, size_t),
 * never reads past len and never assumes a NUL.
 */
#ifndef KM_BITCOIN_ADDRESS_H
#define KM_BITCOIN_ADDRESS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* BIP-173 limits: a whole bech32 string, its human-readable part. */
#define ADDRESS_BECH32_MAX_LEN 90
#define ADDRESS_HRP_MAX_LEN    83
/* Output buffer size that fits any bech32 string and its NUL. */
#define ADDRESS_STR_MAX (ADDRESS_BECH32_MAX_LEN + 1)
/* Witness program sizes (BIP-141). */
#define ADDRESS_PROGRAM_MIN 2
#define ADDRESS_PROGRAM_MAX 40
/* scriptPubKey of a segwit output: OP_n, push, program. */
#define ADDRESS_SCRIPT_MAX (2 + ADDRESS_PROGRAM_MAX)
/* Longest Base58Check string accepted (an extended key is 111). */
#define ADDRESS_BASE58_MAX_LEN 200

enum address_network {
    ADDRESS_MAINNET = 0,
    ADDRESS_TESTNET,
    ADDRESS_SIGNET,
    ADDRESS_REGTEST,
};

enum address_encoding {
    ADDRESS_BECH32 = 1,  /* BIP-173 checksum constant 1 */
    ADDRESS_BECH32M = 2, /* BIP-350 checksum constant 0x2bc830a3 */
};

/* A witness program: version 0..16 and 2..40 program bytes. */
struct address_segwit {
    unsigned version;
    uint8_t program[ADDRESS_PROGRAM_MAX];
    size_t program_len;
};

/* "bc", "tb", "tb" or "bcrt" (static). An unknown value is a BUG. */
const char *address_network_hrp(enum address_network net);

/* "mainnet", "testnet", "signet" or "regtest" (static). */
const char *address_network_name(enum address_network net);

/* Parses a network name: "mainnet" (or "main", "bitcoin"), "testnet" (or
 * "test", "testnet3", "testnet4"), "signet", "regtest". Returns KM_OK or
 * KM_ERR_INVALID. */
int address_network_parse(enum address_network *out, const char *name, size_t len) KM_WUR;

/*
 * Generic bech32 / bech32m encoding of 5-bit values data[0..n).
 * Returns: KM_OK; KM_ERR_INVALID (hrp empty, longer than 83 characters,
 *          upper case or outside 33..126; a value > 31; the result would
 *          exceed 90 characters); KM_ERR_TOO_LARGE (outcap too small).
 * Out: out  NUL-terminated lower-case string ("" on error when outcap > 0)
 */
int address_bech32_encode(char *out, size_t outcap, enum address_encoding enc, const char *hrp,
                          const uint8_t *data, size_t n) KM_WUR;

/*
 * Generic bech32 / bech32m decoding (either case, not mixed; at most 90
 * characters; the last '1' separates the hrp from the data; 6 checksum
 * characters).
 * Returns KM_OK or KM_ERR_INVALID with the reason in *err.
 * Out: *enc     which checksum matched
 *      hrp      the human-readable part, lower case, NUL-terminated
 *      data     the 5-bit values without the checksum, *n of them
 *               (datacap >= ADDRESS_BECH32_MAX_LEN always suffices)
 */
int address_bech32_decode(enum address_encoding *enc, char hrp[ADDRESS_HRP_MAX_LEN + 1],
                          uint8_t *data, size_t datacap, size_t *n, struct km_error *err,
                          const char *s, size_t len) KM_WUR;

/*
 * Encodes a segwit address (bech32 for version 0, bech32m otherwise).
 * Returns KM_OK; KM_ERR_INVALID (version > 16, program size outside the
 * rules above, bad hrp); KM_ERR_TOO_LARGE (outcap too small).
 */
int address_segwit_encode(char *out, size_t outcap, const char *hrp,
                          const struct address_segwit *w) KM_WUR;

/*
 * Decodes a segwit address whose hrp must be `hrp` (lower case; compared
 * case-insensitively). Returns KM_OK or KM_ERR_INVALID with the reason in
 * *err (wrong hrp, checksum, checksum variant for the version, version,
 * program length, padding). *w is zeroed on error.
 */
int address_segwit_decode(struct address_segwit *w, struct km_error *err, const char *hrp,
                          const char *addr, size_t len) KM_WUR;

/* Like address_segwit_decode for any of the three hrps; *net says which
 * ("tb" gives ADDRESS_TESTNET, never ADDRESS_SIGNET). */
int address_decode(struct address_segwit *w, enum address_network *net, struct km_error *err,
                   const char *addr, size_t len) KM_WUR;

/* The scriptPubKey of a witness program (OP_0 or OP_1..OP_16, then a push
 * of the program). Returns its length, 2 + program_len, or 0 if w breaks
 * the rules above. */
size_t address_segwit_script(uint8_t out[ADDRESS_SCRIPT_MAX], const struct address_segwit *w);

/* The P2TR address (witness v1, bech32m) of an x-only output key on net.
 * Returns KM_OK or KM_ERR_TOO_LARGE (outcap below 65; ADDRESS_STR_MAX
 * always fits). */
int address_taproot(char *out, size_t outcap, enum address_network net,
                    const uint8_t key[32]) KM_WUR;

/*
 * Base58Check: payload || first 4 bytes of SHA256d(payload), in Bitcoin's
 * base 58 alphabet, one leading '1' per leading zero byte.
 * encode returns KM_OK, KM_ERR_TOO_LARGE (outcap too small, or n > 128)
 * or KM_ERR_CRYPTO (hashing failed).
 * decode returns KM_OK with *outlen set, KM_ERR_INVALID (empty, a
 * character outside the alphabet, shorter than the checksum, bad
 * checksum), KM_ERR_TOO_LARGE (len > ADDRESS_BASE58_MAX_LEN or the
 * payload exceeds outcap) or KM_ERR_CRYPTO. out is zeroed on error.
 * The decoder is variable time: not for secrets that must not leak through
 * timing (WIF and xprv strings in descriptors are accepted only on the
 * user's own machine, see descriptor.h).
 */
int address_base58check_encode(char *out, size_t outcap, const uint8_t *p, size_t n) KM_WUR;
int address_base58check_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *s,
                               size_t len) KM_WUR;

#endif /* KM_BITCOIN_ADDRESS_H */
