/*
 * keyfile.h - a keygen session saved to disk by `keymeld keygen` and read
 * back by `keymeld sign` / `keymeld status`.
 *
 * The file holds what the participants hold: the session secret and every
 * participant's private key, in hex, in a JSON object. It is written with
 * mode 0600 (created exclusively, never overwritten) and must be protected
 * like a wallet. Auth keys are not stored: they are derived again from the
 * private keys and the session secret.
 *
 *   {"version":1,"gateway":"http://...","keygen_session_id":"<uuid>",
 *    "session_secret":"<hex32>","tweak":{...},"coordinator_enclave_id":N,
 *    "aggregate_public_key":"<hex33>",
 *    "participants":[{"user_id":"<uuid>","private_key":"<hex32>",
 *                     "enclave_id":N,"enclave_public_key":"<hex33>",
 *                     "require_signing_approval":false}, ...]}
 *
 * A party's file (every party on its own machine: keymeld keygen --invite,
 * keymeld keygen join, client/invite.h) holds only its own private key:
 * the other participants carry "public_key":"<hex33>" instead of
 * "private_key" and load as remote (struct client_user). At least one
 * participant has a private key.
 */
#ifndef KM_CLIENT_KEYFILE_H
#define KM_CLIENT_KEYFILE_H

#include "client/session.h"

#define KEYFILE_MAX_SIZE (4u << 20)

/* Writes k (completed) to a new file at path (KM_ERR_EXISTS if it exists).
 * Returns KM_OK or an error with the reason in *err. */
int keyfile_save(const char *path, const struct client_keygen *k, const char *gateway,
                 struct km_error *err) KM_WUR;

/* Reads a file written by keyfile_save into *k (release with
 * client_keygen_clear) and the gateway URL into gateway (cap bytes).
 * Validates every field; KM_ERR_INVALID names the first bad one. */
int keyfile_load(const char *path, struct client_keygen *k, char *gateway, size_t cap,
                 struct km_error *err) KM_WUR;

#endif /* KM_CLIENT_KEYFILE_H */
