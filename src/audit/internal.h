/*
 * internal.h - pieces shared by the files of src/audit; not a public API.
 *
 *  audit.c   the writer (audit_open, audit_append, audit_close)
 *  verify.c  the line checker, the chain hash and audit_verify
 */
#ifndef KM_AUDIT_INTERNAL_H
#define KM_AUDIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"

/*
 * Checks that line[0..len) (without its "\n"; untrusted bytes) is one audit
 * line of the format in audit.h: a JSON object with exactly its members, in
 * any order, with their types and limits. On KM_OK sets *seq and prev (the
 * decoded "prev"). Otherwise returns KM_ERR_INVALID or KM_ERR_TOO_LARGE and
 * writes the reason (without a line number, printable ASCII) to why.
 * Chain checks (seq order, prev against the line before) are the caller's.
 */
int audit_line_check(uint64_t *seq, uint8_t prev[AUDIT_HASH_LEN], const uint8_t *line, size_t len,
                     char *why, size_t whycap) KM_WUR;

/* Outcome and event names as audit_append accepts them. */
bool audit_outcome_valid(const char *s, size_t len);
bool audit_event_valid(const char *s, size_t len);
/* A subject key: [a-z][a-z0-9_]*, 1..AUDIT_MAX_SUBJECT_KEY bytes. */
bool audit_subject_key_valid(const char *s, size_t len);

#endif /* KM_AUDIT_INTERNAL_H */
