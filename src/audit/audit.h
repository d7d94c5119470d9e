/*
 * audit.h - the tamper-evident audit log: one JSON line per security event
 * (keygen, signing, approval, deletion, API-key change, enclave key event),
 * each line carrying the SHA-256 of the line before it.
 *
 * The file is JSON lines (one object per line, "\n" after each, ASCII only:
 * jansson writes every non-ASCII character as \uXXXX). A line is, in this
 * key order, with no spaces:
 *
 *   {"seq":7,"time":"2026-11-24T15:17:48.123Z","event":"signing.approve",
 *    "outcome":"ok","request_id":"0193...","api_key_id":"ak_1"|null,
 *    "subject":{"keygen_id":"...","signing_id":"...","user_id":"..."},
 *    "detail":"short text"|null,"prev":"<64 lower-case hex digits>"}
 *
 *   seq         1 for the first line of the file, then +1 per line
 *   time        wall clock, RFC 3339 UTC with milliseconds
 *   event       "<area>.<action>", [a-z0-9._-], at most 64 bytes
 *               (e.g. keygen.reserve, signing.approve, keygen.delete,
 *               api_key.create, enclave.key_rotated)
 *   outcome     "ok" | "refused" (the request was not allowed) |
 *               "failed" (allowed, but it did not succeed)
 *   request_id  the gateway's request id, or null (no request: the
 *               coordinator, the health loop)
 *   api_key_id  the id of the API key that signed the request, or null
 *   subject     ids only: at most AUDIT_MAX_SUBJECT_KEYS members, keys
 *               [a-z][a-z0-9_]* (keygen_id, signing_id, enclave_id,
 *               user_id, ...), values strings or non-negative integers
 *   detail      a short human text (at most AUDIT_MAX_DETAIL bytes), or null
 *   prev        the chain hash of the previous line, 64 zeros on line 1
 *
 * What is never written: secrets of any kind (keys, session secrets,
 * nonces, messages, signatures, request bodies, API key material). Only ids
 * and outcomes. Strings are truncated to their limits and any byte outside
 * printable ASCII becomes '?', so a caller cannot break the line format.
 *
 * The chain hash (how a third party checks the file with standard tools):
 *
 *   prev(line 1)   = "0000...0000" (64 zeros)
 *   prev(line K+1) = lower-case hex of SHA-256(the bytes of line K, without
 *                    its terminating "\n")
 *
 * e.g. for line 6 of audit.jsonl, the "prev" of line 7 must equal
 *
 *   sed -n 6p audit.jsonl | tr -d '\n' | sha256sum
 *
 * Editing any line K changes its hash, so line K+1's prev no longer
 * matches; removing or reordering lines also breaks seq. The chain is not a
 * signature: it cannot reveal a change of the last line or a truncated
 * tail, and whoever can write the file can rewrite it from some line on
 * with fresh hashes. Record the hash of the last line elsewhere (`keymeld
 * audit verify` prints it as the head; shipping lines off the host as they
 * are written does the same) and compare.
 *
 * Writing: each line is written with one write() on an O_APPEND descriptor
 * and, unless turned off, fdatasync()ed before audit_append returns. The
 * sync is a group commit: it runs after the log's lock is released, and
 * one fdatasync covers every line written before it began, so concurrent
 * writers share syncs instead of queueing behind each other's. A
 * process holds an exclusive flock() on the file while it is open, so two
 * gateways never interleave their chains in one file.
 */
#ifndef KM_AUDIT_AUDIT_H
#define KM_AUDIT_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define AUDIT_MAX_LINE         (64u * 1024u) /* bytes of one line, without "\n" */
#define AUDIT_HASH_LEN         32            /* SHA-256 */
#define AUDIT_HASH_HEX_LEN     64
#define AUDIT_MAX_EVENT        64  /* bytes of the event name */
#define AUDIT_MAX_ID           128 /* request_id, api_key_id, subject strings */
#define AUDIT_MAX_DETAIL       256
#define AUDIT_MAX_SUBJECT_KEYS 8
#define AUDIT_MAX_SUBJECT_KEY  32 /* bytes of a subject key */

struct audit_log;

/* One event. Strings are borrowed for the duration of audit_append. */
struct audit_event {
    const char *event;      /* required: "keygen.reserve" ... */
    const char *outcome;    /* required: "ok", "refused" or "failed" */
    const char *request_id; /* NULL: null */
    const char *api_key_id; /* NULL: null */
    const json_t *subject;  /* borrowed; an object, or NULL for {} */
    const char *detail;     /* NULL: null */
};

/*
 * Opens (creating it with mode 0600) the audit log at path for appending,
 * and continues its chain: the next line gets the last line's seq + 1 and
 * its hash. Refuses, with a message naming the file: a path that is not a
 * regular file, a file another process holds (flock), a non-empty file that
 * does not end with "\n" (a truncated last line), and a last line that is
 * not an audit line (the message says why). Only the last line is read:
 * `keymeld audit verify` checks the whole chain. fsync is on.
 *
 * Returns a new log (release with audit_close), or NULL with *err filled
 * (KM_ERR_IO, KM_ERR_INVALID, KM_ERR_TOO_LARGE or KM_ERR_EXISTS when
 * another process holds it).
 */
struct audit_log *audit_open(const char *path, struct km_error *err);

/* Whether audit_append fdatasync()s each line (default true). Without it
 * a crash of the machine may lose the last lines (never corrupt the
 * chain in the middle: the file system then drops a tail). */
void audit_set_fsync(struct audit_log *a, bool fsync_each_line);

/*
 * Appends one line for ev (the format above). Thread-safe: lines from
 * several threads are serialized by a mutex and each gets its own seq.
 * Returns KM_OK; KM_ERR_INVALID for a malformed event (unknown outcome, an
 * event name outside [a-z0-9._-] or too long, a subject that is not an
 * object, has too many members, a bad key or a value that is not a string
 * or a non-negative integer); KM_ERR_IO when the write or the fdatasync
 * failed. A failed or short write is rolled back (ftruncate to the previous
 * end), so the chain stays intact and the next append may succeed; if even
 * that fails the log refuses further appends (KM_ERR_STATE). After a failed
 * fdatasync the line is in the file and the chain continues from it; every
 * line that sync covered (other threads' too) gets KM_ERR_IO, and later
 * lines are synced anew.
 */
int audit_append(struct audit_log *a, const struct audit_event *ev, struct km_error *err) KM_WUR;

/* The seq of the last line written or found at open (0: empty file). */
uint64_t audit_last_seq(struct audit_log *a);

/* Closes the file (releasing its lock) and frees a. NULL is a no-op. */
void audit_close(struct audit_log *a);

/* The chain hash of one line: SHA-256 of line[0..len) (the line without
 * its "\n"). */
void audit_hash_line(uint8_t out[AUDIT_HASH_LEN], const uint8_t *line, size_t len);

/*
 * Verifies a whole audit file held in data[0..len) (untrusted bytes; no NUL
 * needed). Each line must end with "\n", be at most AUDIT_MAX_LINE bytes, be
 * a JSON object with exactly the members above and their types, have seq
 * one more than the line before (1 on line 1) and prev equal to the chain
 * hash of the line before (64 zeros on line 1). An empty file is an intact,
 * empty chain.
 *
 * Returns KM_OK when every line passes: *lines_ok is the number of lines,
 * *bad_line 0. Otherwise KM_ERR_INVALID: *bad_line is the 1-based number of
 * the first line that fails, *lines_ok the lines before it, and why holds
 * "line K: <reason>", e.g.
 *   "line 7: prev does not match the hash of line 6 (edited, removed or
 *    reordered?)"
 * An edited line K is therefore named by line K+1 (the line whose check
 * fails), unless the edit breaks line K's own syntax, seq or types; a
 * removed line is named by the line that takes its place (its seq). why may
 * be NULL; it is always NUL-terminated when whycap > 0.
 */
int audit_verify(const uint8_t *data, size_t len, size_t *lines_ok, size_t *bad_line, char *why,
                 size_t whycap) KM_WUR;

#endif /* KM_AUDIT_AUDIT_H */
