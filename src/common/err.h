/*
 * err.h - the project's error codes and a detailed error record.
 *
 * Conventions (docs/CODING_STYLE.md):
 *  - Functions that can fail return int: KM_OK (0) or a negative KM_ERR_*.
 *    They are declared KM_WUR so a caller cannot drop the result.
 *  - KM_ERR_INCOMPLETE ("need more bytes") is distinct from KM_ERR_INVALID,
 *    KM_ERR_TOO_LARGE and KM_ERR_TRAILING_DATA so streaming parsers can tell
 *    "wait" from "reject".
 *  - Misuse by the programmer (NULL where the contract forbids it) is not an
 *    error code: it calls KM_BUG() and aborts.
 *  - Where a caller needs more than the code (a message naming a file:line,
 *    an endpoint, an errno), the function takes a struct km_error *.
 *
 * Argument order everywhere: context, outputs, in/out, inputs; a length
 * immediately follows its pointer; callbacks precede their opaque data.
 */
#ifndef KM_COMMON_ERR_H
#define KM_COMMON_ERR_H

#include <stddef.h>

#define KM_WUR                     __attribute__((warn_unused_result))
#define KM_PRINTF(fmt_idx, va_idx) __attribute__((format(printf, fmt_idx, va_idx)))
#define KM_NORETURN                __attribute__((noreturn))
#define KM_ARRAY_LEN(a)            (sizeof(a) / sizeof((a)[0]))

enum km_err {
    KM_OK = 0,
    KM_ERR_INTERNAL = -1,      /* broken invariant; a bug, but not fatal */
    KM_ERR_NOMEM = -2,         /* allocation failed */
    KM_ERR_INVALID = -3,       /* malformed input */
    KM_ERR_INCOMPLETE = -4,    /* input ends early: more bytes may complete it */
    KM_ERR_TOO_LARGE = -5,     /* input exceeds a configured maximum */
    KM_ERR_TRAILING_DATA = -6, /* valid input followed by unexpected bytes */
    KM_ERR_RANGE = -7,         /* number outside its allowed range */
    KM_ERR_IO = -8,            /* read/write/socket call failed (errno kept) */
    KM_ERR_TIMEOUT = -9,       /* a deadline passed */
    KM_ERR_CLOSED = -10,       /* the peer closed the connection */
    KM_ERR_CONNECT = -11,      /* connect() failed (errno kept) */
    KM_ERR_RESOLVE = -12,      /* host name did not resolve */
    KM_ERR_NOT_FOUND = -13,    /* no such session/id/file */
    KM_ERR_CRYPTO = -14,       /* decryption/verification failed */
    KM_ERR_STATE = -15,        /* operation not allowed in the current state */
    KM_ERR_LIMIT = -16,        /* a count or capacity limit was reached */
    KM_ERR_REMOTE = -17,       /* the peer answered with an error reply */
    KM_ERR_UNSUPPORTED = -18,  /* valid but not supported here */
    KM_ERR_CONFIG = -19,       /* configuration is invalid */
    KM_ERR_EXISTS = -20,       /* already exists */
    KM_ERR_CANCELLED = -21,    /* shutting down */
};
#define KM_ERR_MIN KM_ERR_CANCELLED

/* Returns a static, lower-case description of a KM_* code ("unknown error"
 * for anything else). Never NULL. */
const char *km_strerror(int err);

/* Returns the stable snake_case name of a code ("invalid", "timeout"); used
 * as the error "code" on the enclave link and in JSON logs. */
const char *km_errname(int err);

/*
 * A detailed error: the code, the errno that caused it (0 if none) and a
 * human message. Fixed size, no allocation, safe to copy. Messages never
 * contain secrets.
 */
struct km_error {
    int code;
    int sys_errno;
    char msg[512];
};

/* Resets e to KM_OK with an empty message. */
void km_error_clear(struct km_error *e);

/* Sets code, errno and a formatted message (truncated to fit). Returns code
 * so callers can write `return km_error_set(e, KM_ERR_INVALID, 0, "...")`.
 * e may be NULL, in which case only the code is returned. */
int km_error_set(struct km_error *e, int code, int sys_errno, const char *fmt, ...) KM_PRINTF(4, 5);

/* Prepends "prefix: " to e->msg (truncating at the end if needed). */
void km_error_prefix(struct km_error *e, const char *fmt, ...) KM_PRINTF(2, 3);

/* Aborts with file:line and a message. For programmer errors only. */
KM_NORETURN void km_bug(const char *file, int line, const char *func, const char *fmt, ...)
    KM_PRINTF(4, 5);

#define KM_BUG(...) km_bug(__FILE__, __LINE__, __func__, __VA_ARGS__)
/* Contract check that stays on in release builds (cheap, catches misuse). */
#define KM_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            KM_BUG("assertion failed: %s", #cond);                                                 \
    } while (0)

#endif /* KM_COMMON_ERR_H */
