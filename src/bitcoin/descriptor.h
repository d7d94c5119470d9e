/*
 * descriptor.h - output script descriptors for Taproot: the BIP-380
 * checksum and key expressions, tr() and its script trees (BIP-386),
 * musig() key expressions (BIP-390) with BIP-328 derivation from the
 * aggregate key, and Bitcoin Core's rawtr().
 *
 * What parses (anything else is refused, see the error codes below):
 *
 *   SCRIPT  tr(KEY) | tr(KEY,TREE) | rawtr(KEY)             top level only
 *   TREE    pk(KEY) | {TREE,TREE}                           depth <= 128
 *   KEY     [ORIGIN]BASE[/NUM...][/STAR]                    BIP-380
 *           musig(KEY,KEY,...)[/NUM...][/STAR]              BIP-390
 *   ORIGIN  8 hex digits (fingerprint) then /NUM or /NUMh steps
 *   BASE    66 hex (compressed key), 64 hex (x-only, tr() only), xpub or
 *           tpub; with DESCRIPTOR_F_ALLOW_PRIVATE also WIF and xprv/tprv
 *   NUM     0 .. 2^31-1, hardened with 'h' or '\''
 *   STAR    '*' (every unhardened child), or '*h' / '*\'' (hardened)
 *
 * musig(): the participants are derived first (each at the child index if
 * it ends in STAR), then sorted with BIP-327 KeySort and aggregated with
 * KeyAgg - the order written in the descriptor does not matter (BIP-390;
 * KeyMeld's groups sort the same way). A path after musig() derives from
 * the BIP-328 synthetic xpub of the plain aggregate key: unhardened steps
 * only, every participant an extended key, none of them ranged. musig()
 * may be the internal key or a pk() leaf key, never nested.
 *
 * The output: tr() tweaks the internal key with the merkle root of the
 * tree (BIP-341, hash_TapTweak of the key alone without a tree: BIP-86);
 * each pk(KEY) leaf is the tapscript <xonly(KEY)> OP_CHECKSIG, leaf version
 * 0xc0. rawtr(KEY) uses xonly(KEY) as the output key, untweaked.
 *
 * Private keys: refused unless DESCRIPTOR_F_ALLOW_PRIVATE. With it, WIF and
 * xprv keys are accepted so that the BIPs' test vectors run; the secret is
 * kept (wiped on free) only where a hardened step still needs it, and
 * descriptor_to_string refuses to write such a descriptor. KeyMeld itself
 * never needs them: a group's descriptor holds public keys only.
 *
 * Not supported (KM_ERR_UNSUPPORTED): other script expressions (pk, pkh,
 * wpkh, sh, wsh, multi, raw, addr, combo, sp) at the top level, leaves
 * other than pk() (pkh(), multi_a() and miniscript), multipath keys
 * (BIP-389 <a;b>). What the BIPs forbid is KM_ERR_INVALID: tr() below
 * the top level, musig() outside tr()/rawtr() or inside musig(), and
 * uncompressed keys in tr().
 *
 * Limits (explicit, docs/BITCOIN.md): DESCRIPTOR_MAX_LEN characters,
 * DESCRIPTOR_MAX_KEYS key expressions (musig() participants included),
 * DESCRIPTOR_MAX_PATH steps per origin or derivation path, DESCRIPTOR_MAX_STEPS
 * derivation steps in the whole descriptor (each costs an HMAC-SHA512 and a
 * point addition at every child index), tree depth DESCRIPTOR_MAX_DEPTH.
 * Memory is bounded by the input length: nothing is sized from a number
 * read from the input.
 *
 * Ownership: struct descriptor is a heap object (descriptor_parse,
 * descriptor_free). Errors: every failing function that takes a
 * struct km_error * fills it (may be NULL) with a message naming the
 * character position.
 */
#ifndef KM_BITCOIN_DESCRIPTOR_H
#define KM_BITCOIN_DESCRIPTOR_H

#include <stddef.h>
#include <stdint.h>

#include "bitcoin/address.h"
#include "common/buf.h"
#include "common/err.h"

/* Limits. 1000 keys is KeyMeld's participant limit (PROTO_MAX_PARTICIPANTS);
 * 128 KiB holds a musig() of 1000 xpubs with short paths; 255 is the BIP-32
 * depth limit (one byte); 128 is BIP-341's control block depth. */
#define DESCRIPTOR_MAX_LEN   131072u
#define DESCRIPTOR_MAX_KEYS  1000u
#define DESCRIPTOR_MAX_PATH  255u
#define DESCRIPTOR_MAX_STEPS 4096u
#define DESCRIPTOR_MAX_DEPTH 128u

#define DESCRIPTOR_CHECKSUM_LEN 8
/* Largest child index of a ranged descriptor (2^31 - 1). */
#define DESCRIPTOR_MAX_INDEX 0x7fffffffu
/* Length of a serialized extended key (BIP-32) in Base58Check. */
#define DESCRIPTOR_XPUB_STR_MAX 112

enum descriptor_flags {
    /* Refuse a descriptor without "#checksum". */
    DESCRIPTOR_F_REQUIRE_CHECKSUM = 1 << 0,
    /* Accept WIF and xprv/tprv keys (see above). */
    DESCRIPTOR_F_ALLOW_PRIVATE = 1 << 1,
};

struct descriptor;

/* What a descriptor produces at one child index. */
struct descriptor_output {
    uint8_t internal_key[32];  /* xonly of KEY (tr) or the output key (rawtr) */
    int has_tree;              /* tr(KEY,TREE) */
    uint8_t merkle_root[32];   /* when has_tree */
    uint8_t output_key[32];    /* the P2TR output key */
    int output_parity;         /* 1 if the output key has odd Y (tr only) */
    uint8_t script_pubkey[34]; /* OP_1 <output_key> */
};

/* ---- BIP-380 checksum ----------------------------------------------------- */

/*
 * The 8-character checksum of s[0..len) (without any '#').
 * Returns KM_OK or KM_ERR_INVALID (a character outside BIP-380's set).
 * Out: out  NUL-terminated checksum ("" on error)
 */
int descriptor_checksum(char out[DESCRIPTOR_CHECKSUM_LEN + 1], const char *s, size_t len) KM_WUR;

/*
 * Splits "SCRIPT#CHECKSUM" and verifies the checksum, as BIP-380 (and
 * Bitcoin Core) do: more than one '#', a checksum that is not exactly 8
 * characters, a character outside the set, or a wrong checksum is
 * KM_ERR_INVALID; no '#' is KM_ERR_INVALID only if require is nonzero.
 * Out: *payload_len  length of SCRIPT (len when there is no checksum)
 */
int descriptor_checksum_check(size_t *payload_len, struct km_error *err, const char *s, size_t len,
                              int require) KM_WUR;

/* ---- Parsing and evaluating ---------------------------------------------- */

/*
 * Parses a descriptor, with or without its checksum.
 * Returns KM_OK with *out set (free with descriptor_free), or with *out
 * NULL:
 *   KM_ERR_INVALID      bad syntax, checksum, key, path, hex or Base58Check;
 *                       an invalid point; nesting the BIPs forbid. (A
 *                       hardened step after an xpub parses, as BIP-380
 *                       says; descriptor_output then fails.)
 *   KM_ERR_TOO_LARGE    a limit above
 *   KM_ERR_UNSUPPORTED  a valid construct this module does not build, or a
 *                       private key without DESCRIPTOR_F_ALLOW_PRIVATE
 *   KM_ERR_CRYPTO       hashing failed (no OpenSSL provider)
 * In: flags  enum descriptor_flags
 */
int descriptor_parse(struct descriptor **out, struct km_error *err, const char *s, size_t len,
                     unsigned flags) KM_WUR;

/* Frees d, wiping any private key it holds. NULL is a no-op. */
void descriptor_free(struct descriptor *d);

/* 1 if some key ends in STAR (outputs depend on the child index), else 0. */
int descriptor_is_ranged(const struct descriptor *d);

/* 1 if d was parsed from private keys (descriptor_to_string refuses it). */
int descriptor_has_private(const struct descriptor *d);

/*
 * The output at child index `index` (ignored unless ranged).
 * Returns: KM_OK; KM_ERR_RANGE (ranged and index > DESCRIPTOR_MAX_INDEX);
 *          KM_ERR_UNSUPPORTED (a hardened step from an xpub: it needs the
 *          private key); KM_ERR_CRYPTO (a BIP-32 step or the Taproot tweak
 *          is invalid at this index, probability about 2^-127, or hashing
 *          failed); KM_ERR_INVALID (the musig() keys aggregate to
 *          infinity); KM_ERR_NOMEM.
 * Out: out  zeroed on error
 */
int descriptor_output(struct descriptor_output *out, struct km_error *err,
                      const struct descriptor *d, uint32_t index) KM_WUR;

/*
 * Appends the canonical form of d with its checksum: lower-case hex, 'h'
 * for hardened steps, extended keys re-encoded, no spaces. Parsing the
 * result gives a descriptor with the same outputs.
 * Returns KM_OK, KM_ERR_UNSUPPORTED (d holds private keys), or the buf
 * errors (KM_ERR_TOO_LARGE, KM_ERR_NOMEM).
 */
int descriptor_to_string(struct buf *out, const struct descriptor *d) KM_WUR;

/*
 * Checks one BIP-380 key expression outside any script: compressed and
 * uncompressed (130 hex) keys, WIF, extended keys with origin, path and
 * range. x-only keys and musig() are tr()-only, so refused here.
 * Returns KM_OK or the errors of descriptor_parse.
 */
int descriptor_key_check(struct km_error *err, const char *s, size_t len, unsigned flags) KM_WUR;

/*
 * BIP-328: the synthetic xpub (depth 0, child 0, fixed chain code
 * SHA256("MuSig2MuSig2MuSig2")) of a 33-byte plain aggregate key.
 * Returns KM_OK, KM_ERR_INVALID (not a valid compressed point) or
 * KM_ERR_TOO_LARGE (outcap < DESCRIPTOR_XPUB_STR_MAX).
 */
int descriptor_musig_xpub(char *out, size_t outcap, const uint8_t aggpk[33]) KM_WUR;

/* ---- A KeyMeld group's descriptor ---------------------------------------- */

/* How the group's aggregate key becomes the output key (the keygen tweak). */
enum descriptor_group_tweak {
    /* No tweak: signatures verify under xonly(KeyAgg), which is the output
     * key itself: rawtr(musig(...)). */
    DESCRIPTOR_GROUP_UNTWEAKED = 0,
    /* BIP-86 style key-path-only Taproot (KeyMeld "unspendable_taproot"):
     * tr(musig(...)). */
    DESCRIPTOR_GROUP_TAPROOT,
    /* Taproot with a script tree (KeyMeld "taproot_with_merkle_root"):
     * tr(musig(...),TREE) when the tree is given, see below. */
    DESCRIPTOR_GROUP_MERKLE_ROOT,
};

struct descriptor_group {
    /* The participants' 33-byte compressed keys, in the order the group
     * lists them (written in that order; the aggregation sorts them). */
    const uint8_t (*pubkeys)[33];
    size_t n; /* 1 .. DESCRIPTOR_MAX_KEYS */
    enum descriptor_group_tweak tweak;
    /* DESCRIPTOR_GROUP_MERKLE_ROOT only: the root (required), and
     * optionally the TREE expression whose root it must be (NULL: none;
     * not ranged). Any other tweak with a tree is KM_ERR_INVALID. */
    const uint8_t *merkle_root;
    const char *tree;
    size_t tree_len;
    /* Optional: the x-only key the group's signatures verify under (the
     * session's tweaked aggregate key). When set, a descriptor that does
     * not produce it is refused. NULL: no check. */
    const uint8_t *expect_output_key;
};

struct descriptor_group_result {
    char *descriptor;              /* "...#checksum", NUL-terminated; heap */
    char address[ADDRESS_STR_MAX]; /* bech32m P2TR address on the network */
    uint8_t output_key[32];
    /* 1 when the descriptor is rawtr(<output key>) because a merkle root
     * was given without its tree: a root names no scripts, so no tr()
     * descriptor can be written. The address is right; a wallet can watch
     * it but not learn the participants or spend by script path. */
    int opaque;
};

/*
 * Builds the group's descriptor (with checksum) and its address on net,
 * by writing the descriptor text and evaluating it with descriptor_parse,
 * so the string printed is the one that was checked.
 * Returns: KM_OK; KM_ERR_INVALID (an invalid key, n out of range, keys that
 *          aggregate to infinity, a bad or mismatched tree, a missing merkle
 *          root); KM_ERR_CRYPTO (the output key differs from
 *          expect_output_key, or hashing failed); the errors of
 *          descriptor_parse for the tree text.
 * Out: res  caller-owned; release with descriptor_group_result_clear (also
 *           after an error)
 */
int descriptor_for_group(struct descriptor_group_result *res, struct km_error *err,
                         const struct descriptor_group *g, enum address_network net) KM_WUR;

/* Frees res->descriptor and zeroes res. */
void descriptor_group_result_clear(struct descriptor_group_result *res);

#endif /* KM_BITCOIN_DESCRIPTOR_H */
