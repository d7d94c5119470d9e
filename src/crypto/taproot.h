/*
 * taproot.h - BIP-341 / BIP-86 Taproot output keys. The P2TR address
 * (bech32m) of an output key is address_taproot in bitcoin/address.h.
 *
 * Output key Q = P + int(hash_TapTweak(xbytes(P) || merkle_root)) * G with P
 * the (even-Y) internal key. merkle_root NULL means a key-path-only output:
 * BIP-86's tweak hash_TapTweak(xbytes(P)), which is what KeyMeld's
 * "unspendable_taproot" mode uses; otherwise the 32-byte root of the script
 * tree (taproot_leaf_hash / taproot_branch_hash build it).
 *
 * For a MuSig2 aggregate key, taproot_musig_tweak applies the same tweak as
 * an x-only BIP-327 tweak, so partial signatures verify against the output
 * key.
 */
#ifndef KM_CRYPTO_TAPROOT_H
#define KM_CRYPTO_TAPROOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/keypair.h"
#include "crypto/musig.h"

#define TAPROOT_XONLY_LEN 32
#define TAPROOT_HASH_LEN  32
#define TAPROOT_SPK_LEN   34 /* OP_1 OP_PUSHBYTES_32 <key> */
/* Leaf version of BIP-342 tapscript. */
#define TAPROOT_LEAF_TAPSCRIPT 0xc0

/*
 * The tweak t = int(hash_TapTweak(internal || merkle_root)).
 * Returns KM_OK or KM_ERR_RANGE (t >= n; BIP-341 then fails; probability
 * about 2^-128).
 */
int taproot_tweak(uint8_t tweak[32], const uint8_t internal[TAPROOT_XONLY_LEN],
                  const uint8_t *merkle_root) KM_WUR;

/*
 * BIP-341 taproot_tweak_pubkey: the output key for an x-only internal key.
 * Returns: KM_OK; KM_ERR_INVALID (internal_len != 32 or not a valid x);
 *          KM_ERR_RANGE (tweak >= n).
 * Out: output  xbytes(Q); parity (may be NULL) 1 if Q has odd Y
 */
int taproot_output_key(uint8_t output[TAPROOT_XONLY_LEN], int *parity, const uint8_t *internal,
                       size_t internal_len, const uint8_t *merkle_root) KM_WUR;

/*
 * BIP-341 taproot_tweak_seckey: the key-path signing key for in's key.
 * Returns KM_OK, KM_ERR_RANGE (tweak >= n) or KM_ERR_CRYPTO (the tweaked
 * key is zero). out is caller-owned and must be cleared (keypair_clear).
 */
int taproot_tweak_keypair(struct keypair *out, const struct keypair *in,
                          const uint8_t *merkle_root) KM_WUR;

/*
 * Applies the Taproot tweak of ka's current x-only key as an x-only
 * BIP-327 tweak. Returns KM_OK or the errors of musig_keyagg_apply_tweak.
 */
int taproot_musig_tweak(struct musig_keyagg *ka, const uint8_t *merkle_root) KM_WUR;

/* hash_TapLeaf(leaf_version || compact_size(len) || script). */
void taproot_leaf_hash(uint8_t out[TAPROOT_HASH_LEN], uint8_t leaf_version, const uint8_t *script,
                       size_t len);

/* hash_TapBranch(min(a, b) || max(a, b)). */
void taproot_branch_hash(uint8_t out[TAPROOT_HASH_LEN], const uint8_t a[TAPROOT_HASH_LEN],
                         const uint8_t b[TAPROOT_HASH_LEN]);

/* scriptPubKey of a P2TR output: 0x51 0x20 || key. */
void taproot_script_pubkey(uint8_t out[TAPROOT_SPK_LEN], const uint8_t key[TAPROOT_XONLY_LEN]);

#endif /* KM_CRYPTO_TAPROOT_H */
