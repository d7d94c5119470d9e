/*
 * musig.h - BIP-327 MuSig2: key sorting and aggregation (with tweaks), nonce
 * generation and aggregation, session values, partial signing, partial
 * signature verification and aggregation, deterministic signing.
 *
 * Built on libsecp256k1 0.2's public API (no musig module there). The
 * object model follows libsecp256k1-zkp's musig module, so the BIP's
 * recomputations are cached:
 *
 *   struct musig_keyagg    KeyAgg context: Q, gacc, tacc, the key-list hash
 *                          and second key, plus every signer's parsed key
 *                          and coefficient (heap object, _new/_free).
 *   struct musig_secnonce  a signer's secret nonce (k1, k2, pk). Opaque,
 *                          heap-only, never copied or serialized; consumed
 *                          (wiped, marked used) by the first sign attempt.
 *   struct musig_pubnonce  a parsed public nonce (two points).
 *   struct musig_aggnonce  a parsed aggregate nonce (two points, each may be
 *                          infinity) with its 66-byte encoding.
 *   struct musig_session   GetSessionValues: b, R, e for one message and
 *                          aggregate nonce under one (tweaked) KeyAgg
 *                          context, optionally with an adaptor point.
 *
 * Flow for a signer: musig_keyagg_new (+ tweaks) -> musig_nonce_gen ->
 * (exchange pubnonces) -> musig_nonce_agg -> musig_session_init ->
 * musig_partial_sign. For the aggregator: musig_partial_sig_verify on each
 * partial signature, musig_partial_sig_agg, then schnorr_verify on the
 * result against musig_keyagg_xonly().
 *
 * Blame: functions that consume other parties' contributions take a
 * struct musig_blame * (may be NULL) and, on failure, say why and whom to
 * blame, matching the BIP's error model (test vectors check both).
 *
 * Deviation from the BIP text (as in libsecp256k1-zkp): musig_partial_sign
 * does not re-verify its own output (the BIP's optional last step; it would
 * triple the cost of signing). Callers that hand partial signatures on, as
 * the enclave does, run musig_partial_sig_verify on every partial signature
 * including their own (DESIGN.md §7).
 *
 * Constant time: NonceGen and Sign are constant time in the secret key and
 * nonces (the valgrind check in tests/unit/crypto/ctime_crypto.c). Every
 * other function handles public data only and may be variable time.
 */
#ifndef KM_CRYPTO_MUSIG_H
#define KM_CRYPTO_MUSIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <secp256k1.h>

#include "common/err.h"
#include "crypto/keypair.h"

#define MUSIG_PUBKEY_LEN   33 /* individual public key: cbytes */
#define MUSIG_XONLY_LEN    32
#define MUSIG_PUBNONCE_LEN 66
#define MUSIG_AGGNONCE_LEN 66
#define MUSIG_PSIG_LEN     32
#define MUSIG_SIG_LEN      64
#define MUSIG_TWEAK_LEN    32
/* Upper bound on signers per KeyAgg context (the BIP allows 2^32 - 1). */
#define MUSIG_MAX_SIGNERS 10000

/* Why a function failed, for the BIP's "blame signer i" model. */
enum musig_reason {
    MUSIG_R_NONE = 0,
    MUSIG_R_PUBKEY,           /* signer's individual public key is invalid */
    MUSIG_R_PUBNONCE,         /* signer's public nonce is invalid */
    MUSIG_R_AGGNONCE,         /* aggregate nonce invalid (blame the aggregator) */
    MUSIG_R_AGGOTHERNONCE,    /* DeterministicSign: aggothernonce invalid */
    MUSIG_R_PSIG,             /* signer's partial signature is out of range */
    MUSIG_R_PSIG_INVALID,     /* signer's partial signature does not verify */
    MUSIG_R_ADAPTOR,          /* adaptor point is invalid */
    MUSIG_R_KEYAGG_INFINITY,  /* the keys aggregate to infinity */
    MUSIG_R_TWEAK_RANGE,      /* "The tweak must be less than n." */
    MUSIG_R_TWEAK_INFINITY,   /* "The result of tweaking cannot be infinity." */
    MUSIG_R_SIGNER_NOT_FOUND, /* "The signer's pubkey must be included ..." */
    MUSIG_R_SECNONCE_USED,    /* the secret nonce was already consumed */
    MUSIG_R_SECNONCE_RANGE,   /* "first secnonce value is out of range." */
    MUSIG_R_SECNONCE_KEY,     /* secnonce was made for another public key */
    MUSIG_R_SESSION_KEYAGG,   /* session built for a different KeyAgg context */
    MUSIG_R_COUNT,            /* zero or more than MUSIG_MAX_SIGNERS items */
    MUSIG_R_LENGTH,           /* an encoding has the wrong length */
};

struct musig_blame {
    enum musig_reason reason;
    long signer; /* index of the culprit, or -1 (aggregator / no one) */
};

/* Static lower-case text for a reason ("invalid public nonce"). */
const char *musig_reason_str(enum musig_reason reason);

/* ---- Key sorting and aggregation ------------------------------------ */

/* KeySort: sorts n 33-byte public keys lexicographically, in place. The
 * keys are not validated (KeyAgg does that). */
void musig_key_sort(uint8_t (*pubkeys)[MUSIG_PUBKEY_LEN], size_t n);

struct musig_keyagg;

/*
 * KeyAgg over pubkeys[0..n) in the given order (sort them first with
 * musig_key_sort if the protocol wants a canonical order).
 * Returns: KM_OK; KM_ERR_INVALID with blame {MUSIG_R_PUBKEY, i} for an
 *          invalid key i, {MUSIG_R_KEYAGG_INFINITY, -1} if the sum is
 *          infinity, {MUSIG_R_COUNT, -1} if n is 0 or > MUSIG_MAX_SIGNERS;
 *          KM_ERR_NOMEM; KM_ERR_CRYPTO (hashing failed).
 * Out: *out  new context, caller frees with musig_keyagg_free (NULL on error)
 *      blame may be NULL.
 * Cost: n - 1 variable-time point multiplications (the second key's
 *       coefficient is 1) and n point decompressions.
 */
int musig_keyagg_new(struct musig_keyagg **out, struct musig_blame *blame,
                     const uint8_t (*pubkeys)[MUSIG_PUBKEY_LEN], size_t n) KM_WUR;

/* Copies a context (to tweak a copy, e.g. one per batch item).
 * Returns KM_OK or KM_ERR_NOMEM (*out = NULL). */
int musig_keyagg_dup(struct musig_keyagg **out, const struct musig_keyagg *src) KM_WUR;

/* Frees ka. NULL is a no-op. */
void musig_keyagg_free(struct musig_keyagg *ka);

/*
 * ApplyTweak: Q' = g*Q + t*G with g = -1 iff is_xonly and Q has odd Y;
 * updates gacc and tacc. ka is unchanged on failure.
 * Returns: KM_OK; KM_ERR_RANGE {MUSIG_R_TWEAK_RANGE} if tweak >= n;
 *          KM_ERR_INVALID {MUSIG_R_TWEAK_INFINITY} if Q' is infinity.
 */
int musig_keyagg_apply_tweak(struct musig_keyagg *ka, struct musig_blame *blame,
                             const uint8_t tweak[MUSIG_TWEAK_LEN], int is_xonly) KM_WUR;

/* GetXonlyPubkey (the BIP-340 key signatures verify against) and
 * GetPlainPubkey (cbytes(Q), the key to tweak with BIP-32 style tweaks). */
void musig_keyagg_xonly(const struct musig_keyagg *ka, uint8_t out[MUSIG_XONLY_LEN]);
void musig_keyagg_plain(const struct musig_keyagg *ka, uint8_t out[MUSIG_PUBKEY_LEN]);

/* Number of signers, and signer i's public key (i < count, else BUG). */
size_t musig_keyagg_count(const struct musig_keyagg *ka);
void musig_keyagg_pubkey(const struct musig_keyagg *ka, size_t i, uint8_t out[MUSIG_PUBKEY_LEN]);

/* Index of the first signer whose key is pk. Returns KM_OK or
 * KM_ERR_NOT_FOUND. */
int musig_keyagg_find(const struct musig_keyagg *ka, const uint8_t pk[MUSIG_PUBKEY_LEN],
                      size_t *index) KM_WUR;

/* ---- Nonces ---------------------------------------------------------- */

struct musig_secnonce;

/* Only ever filled by musig_pubnonce_parse (or musig_nonce_agg's inputs
 * built from it): a zeroed struct is not a nonce, and passing one on is a
 * BUG (libsecp256k1's argument check aborts). */
struct musig_pubnonce {
    secp256k1_pubkey r[2]; /* R*_1, R*_2 (never infinity) */
};

struct musig_aggnonce {
    uint8_t bytes[MUSIG_AGGNONCE_LEN]; /* cbytes_ext(R1) || cbytes_ext(R2) */
    secp256k1_pubkey r[2];             /* valid where !inf[j] */
    int inf[2];
};

/*
 * NonceGen with fresh OS randomness and every optional input of BIP-327.
 * Returns: KM_OK; KM_ERR_IO (no randomness); KM_ERR_TOO_LARGE (extra_len
 *          >= 2^32); KM_ERR_NOMEM; KM_ERR_CRYPTO (hash failure, or a zero
 *          nonce: probability 2^-255).
 * Out: *secnonce  new secret nonce, for exactly one musig_partial_sign call;
 *                 free with musig_secnonce_free (NULL on error)
 *      pubnonce   the 66-byte public nonce to send to the other signers
 * In:  kp         the signer's key (sk and pk inputs of NonceGen)
 *      aggpk      optional 32-byte x-only aggregate key (NULL = absent)
 *      msg        optional message (NULL = absent; non-NULL with msglen 0 is
 *                 the empty message, which the BIP distinguishes)
 *      extra_in   optional auxiliary input (NULL = absent)
 */
int musig_nonce_gen(struct musig_secnonce **secnonce, uint8_t pubnonce[MUSIG_PUBNONCE_LEN],
                    const struct keypair *kp, const uint8_t *aggpk, const uint8_t *msg,
                    size_t msglen, const uint8_t *extra_in, size_t extra_len) KM_WUR;

/* Wipes and frees a secret nonce, used or not. NULL is a no-op. */
void musig_secnonce_free(struct musig_secnonce *secnonce);

/* 1 once a sign attempt consumed the nonce, else 0. */
int musig_secnonce_is_used(const struct musig_secnonce *secnonce);

/* Parses a 66-byte public nonce (two cpoint encodings).
 * Returns KM_OK or KM_ERR_INVALID (wrong length, bad tag, x not on the
 * curve or >= p). */
int musig_pubnonce_parse(struct musig_pubnonce *out, const uint8_t *in, size_t len) KM_WUR;
void musig_pubnonce_serialize(uint8_t out[MUSIG_PUBNONCE_LEN], const struct musig_pubnonce *pn);

/* Parses a 66-byte aggregate nonce (two cpoint_ext encodings: 33 zero
 * bytes stand for infinity). Returns KM_OK or KM_ERR_INVALID. */
int musig_aggnonce_parse(struct musig_aggnonce *out, const uint8_t *in, size_t len) KM_WUR;

/*
 * NonceAgg over parsed nonces[0..n). A half that sums to infinity is
 * encoded as 33 zero bytes (the BIP keeps going so that the culprit is found
 * at partial signature verification).
 * Returns: KM_OK or KM_ERR_INVALID {MUSIG_R_COUNT} (n == 0 or too many).
 */
int musig_nonce_agg(struct musig_aggnonce *out, struct musig_blame *blame,
                    const struct musig_pubnonce *nonces, size_t n) KM_WUR;

/* NonceAgg over 66-byte encodings: parses each (blame {MUSIG_R_PUBNONCE, i}
 * for the first invalid one) then aggregates. */
int musig_nonce_agg_bytes(struct musig_aggnonce *out, struct musig_blame *blame,
                          const uint8_t (*pubnonces)[MUSIG_PUBNONCE_LEN], size_t n) KM_WUR;

/* ---- Session --------------------------------------------------------- */

struct musig_session {
    uint8_t b[32];      /* nonce coefficient */
    uint8_t e[32];      /* BIP-340 challenge */
    uint8_t r_x[32];    /* xbytes(R), the signature's first half */
    int r_even;         /* has_even_y(R); the nonce parity is !r_even */
    uint8_t q_x[32];    /* xbytes(Q) of the KeyAgg context used */
    int q_even;         /* has_even_y(Q) */
    int gacc_neg;       /* gacc == -1 */
    uint8_t tacc[32];   /* accumulated tweak */
    uint8_t tacc_e[32]; /* e * g * tacc, added by PartialSigAgg */
    int has_adaptor;    /* built with an adaptor point T (R includes T) */
};

/*
 * GetSessionValues for msg[0..msglen) under ka and aggnonce. With an
 * adaptor point T (33-byte compressed), the final nonce is R1 + b*R2 + T,
 * so the aggregated signature is a pre-signature (adaptor.h).
 * Returns: KM_OK; KM_ERR_INVALID {MUSIG_R_ADAPTOR} (bad T or its length);
 *          KM_ERR_CRYPTO (hashing failed).
 * Out: s  caller-owned; holds only public values (copyable).
 */
int musig_session_init(struct musig_session *s, const struct musig_keyagg *ka,
                       const struct musig_aggnonce *aggnonce, const uint8_t *msg, size_t msglen,
                       const uint8_t *adaptor, size_t adaptor_len) KM_WUR;

/* 1 if the final nonce R has odd Y (adaptor "nonce parity"), else 0. */
int musig_session_nonce_parity(const struct musig_session *s);

/* ---- Signing and aggregation ----------------------------------------- */

/*
 * Sign: the partial signature of kp's key under session s.
 * The secret nonce is consumed at entry, before any check, so it can never
 * sign twice even after a failure.
 * Returns: KM_OK;
 *          KM_ERR_STATE {MUSIG_R_SECNONCE_USED} (second use) or
 *                       {MUSIG_R_SESSION_KEYAGG} (s was built for another ka);
 *          KM_ERR_INVALID {MUSIG_R_SECNONCE_RANGE} (k1 or k2 not in 1..n-1),
 *                         {MUSIG_R_SECNONCE_KEY} (nonce made for another key),
 *                         {MUSIG_R_SIGNER_NOT_FOUND} (kp's key not in ka);
 *          KM_ERR_CRYPTO (a libsecp256k1 call failed unexpectedly).
 * Out: psig  32 bytes (zeroed on error)
 * Constant time in the secret key and nonces.
 */
int musig_partial_sign(uint8_t psig[MUSIG_PSIG_LEN], struct musig_blame *blame,
                       struct musig_secnonce *secnonce, const struct keypair *kp,
                       const struct musig_keyagg *ka, const struct musig_session *s) KM_WUR;

/*
 * PartialSigVerifyInternal for signer `signer` of ka, whose public nonce is
 * pubnonce. All inputs public.
 * Returns: KM_OK if valid; KM_ERR_INVALID (psiglen != 32 or s >= n);
 *          KM_ERR_CRYPTO (does not verify); KM_ERR_RANGE (signer >= count);
 *          KM_ERR_STATE (s built for another ka).
 */
int musig_partial_sig_verify(const uint8_t *psig, size_t psiglen,
                             const struct musig_pubnonce *pubnonce, const struct musig_keyagg *ka,
                             size_t signer, const struct musig_session *s) KM_WUR;

/*
 * PartialSigAgg: sig = xbytes(R) || (sum s_i + e*g*tacc). With an adaptor
 * session the result is a pre-signature (adaptor.h), not a valid signature.
 * Returns: KM_OK; KM_ERR_INVALID {MUSIG_R_PSIG, i} if psig i >= n,
 *          {MUSIG_R_COUNT, -1} if n is 0 or too many.
 */
int musig_partial_sig_agg(uint8_t sig[MUSIG_SIG_LEN], struct musig_blame *blame,
                          const struct musig_session *s, const uint8_t (*psigs)[MUSIG_PSIG_LEN],
                          size_t n) KM_WUR;

/*
 * The coordinator's step: PartialSigAgg, then "every partial signature and
 * the final signature verify" (DESIGN.md §7), at the cost of n - 1 partial
 * verifications plus one BIP-340 verification: when the final signature
 * verifies, signer n-1's partial signature is implied by the others (the
 * aggregate equation is the sum of the partial ones). If the final signature
 * fails, all n are checked to name the culprit. Adaptor sessions (whose
 * result is a pre-signature) check all n partial signatures.
 * Returns: KM_OK (sig is valid for msg under musig_keyagg_xonly(ka), or a
 *          verified pre-signature); KM_ERR_INVALID {MUSIG_R_PSIG, i} (psig i
 *          out of range), {MUSIG_R_COUNT}; KM_ERR_CRYPTO
 *          {MUSIG_R_PSIG_INVALID, i} (psig i does not verify) or
 *          {MUSIG_R_NONE, -1} (every partial verifies but the signature does
 *          not: msg differs from the session's); KM_ERR_STATE (s was built
 *          for another ka). sig is zeroed on error.
 * In: pubnonces[i], psigs[i]  signer i's public nonce and partial signature,
 *                             for all n = musig_keyagg_count(ka) signers
 */
int musig_partial_sig_agg_verify(uint8_t sig[MUSIG_SIG_LEN], struct musig_blame *blame,
                                 const struct musig_keyagg *ka, const struct musig_session *s,
                                 const struct musig_pubnonce *pubnonces,
                                 const uint8_t (*psigs)[MUSIG_PSIG_LEN], size_t n,
                                 const uint8_t *msg, size_t msglen) KM_WUR;

/*
 * The same, where known[i] (NULL: none) says the caller made signer i's
 * partial signature itself and verified it against this very session
 * (musig_partial_sig_verify): it is not verified again, and the signature
 * implied by the final one is the last one not known. An enclave that
 * signed for a signer and verified its own output thus saves a partial
 * verification at aggregation. A wrong known[i] cannot make an invalid
 * final signature pass: that one is always verified (but an adaptor
 * pre-signature then rests on the caller's claim).
 */
int musig_partial_sig_agg_verify_known(uint8_t sig[MUSIG_SIG_LEN], struct musig_blame *blame,
                                       const struct musig_keyagg *ka, const struct musig_session *s,
                                       const struct musig_pubnonce *pubnonces,
                                       const uint8_t (*psigs)[MUSIG_PSIG_LEN], const bool *known,
                                       size_t n, const uint8_t *msg, size_t msglen) KM_WUR;

/*
 * DeterministicSign (BIP-327 "Deterministic and Stateless Signing for a
 * Single Signer"): for the last signer only, given the aggregate of all the
 * other signers' public nonces. No secret nonce state.
 * Returns: KM_OK; KM_ERR_INVALID {MUSIG_R_AGGOTHERNONCE, -1} (bad
 *          aggothernonce or length), {MUSIG_R_SIGNER_NOT_FOUND}, or any
 *          error of musig_partial_sign; KM_ERR_CRYPTO.
 * Out: pubnonce  this signer's public nonce (send it to the aggregator)
 *      psig      its partial signature
 * In:  rand      optional 32 bytes of auxiliary randomness (NULL = none)
 */
int musig_deterministic_sign(uint8_t pubnonce[MUSIG_PUBNONCE_LEN], uint8_t psig[MUSIG_PSIG_LEN],
                             struct musig_blame *blame, const struct keypair *kp,
                             const uint8_t *aggothernonce, size_t aggothernonce_len,
                             const struct musig_keyagg *ka, const uint8_t *msg, size_t msglen,
                             const uint8_t *rand) KM_WUR;

#endif /* KM_CRYPTO_MUSIG_H */
