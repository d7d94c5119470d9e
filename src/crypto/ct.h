/*
 * ct.h - constant-time discipline helpers (internal to src/crypto).
 *
 * The constant-time check (tests/unit/crypto/ctime_crypto.c, run under
 * valgrind) marks secret inputs "undefined"; memcheck then reports every
 * branch or memory index that depends on them. Some values derived from
 * secrets are public by design (a public nonce, a public key, "the secret
 * key was valid"). Code that is about to branch on such a value, or hand it
 * to a variable-time routine, calls ct_declassify() first, as libsecp256k1
 * does internally (secp256k1_declassify). Each call site says why the value
 * is safe to reveal.
 *
 * Outside valgrind (and when the valgrind headers are absent) these are
 * no-ops: a client request is a handful of instructions that do nothing on
 * real hardware.
 */
#ifndef KM_CRYPTO_CT_H
#define KM_CRYPTO_CT_H

#include <stddef.h>

#if defined(KM_HAVE_VALGRIND) && !defined(KM_SANITIZED)
#include <valgrind/memcheck.h>
#define KM_CT_DEFINE(p, n)   ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#define KM_CT_UNDEFINE(p, n) ((void)VALGRIND_MAKE_MEM_UNDEFINED((p), (n)))
#else
#define KM_CT_DEFINE(p, n)   ((void)(p), (void)(n))
#define KM_CT_UNDEFINE(p, n) ((void)(p), (void)(n))
#endif

/* Marks p[0..n) as public: no longer tracked as secret by the ctime check. */
static inline void ct_declassify(const void *p, size_t n)
{
    KM_CT_DEFINE(p, n);
}

/* Marks p[0..n) as secret (test code: the ctime check's inputs). */
static inline void ct_classify(const void *p, size_t n)
{
    KM_CT_UNDEFINE(p, n);
}

/* Returns 1 if every byte of p[0..n) is zero, in time depending only on n. */
static inline int ct_is_zero(const unsigned char *p, size_t n)
{
    unsigned acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return (int)(1u & ((acc - 1u) >> 8));
}

#endif /* KM_CRYPTO_CT_H */
