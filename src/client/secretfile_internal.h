/*
 * secretfile_internal.h - the JSON files the client keeps secrets in (session
 * files, party keys, invitations: keyfile.c, invite.c): written once, mode
 * 0600, never overwritten, the text wiped after; and the typed field
 * readers their loaders share. Internal to src/client.
 */
#ifndef KM_CLIENT_SECRETFILE_INTERNAL_H
#define KM_CLIENT_SECRETFILE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/err.h"
#include "common/uuid.h"

/* Writes doc (released here) as indented JSON to a new file of mode 0600,
 * fsync'ed; KM_ERR_EXISTS if path exists. The serialized text is wiped. */
int secretfile_write(const char *path, json_t *doc, struct km_error *err) KM_WUR;

/* A JSON string of the hex of p[0..n) (n <= SECRETFILE_HEX_MAX: a key, a
 * secret or an ECIES ciphertext of one). */
#define SECRETFILE_HEX_MAX 256
json_t *secretfile_hex_string(const uint8_t *p, size_t n);

/* obj[key] as exactly n bytes of hex into out; KM_ERR_INVALID naming
 * where and key otherwise. */
int secretfile_hex(uint8_t *out, size_t n, const json_t *obj, const char *key, const char *where,
                   struct km_error *err) KM_WUR;

/* obj[key] as a UUID into out (and its canonical text into text unless
 * NULL); KM_ERR_INVALID naming where and key otherwise. */
int secretfile_uuid(struct uuid *out, char *text, const json_t *obj, const char *key,
                    const char *where, struct km_error *err) KM_WUR;

#endif /* KM_CLIENT_SECRETFILE_INTERNAL_H */
