/*
 * envelope.h - the gateway <-> enclave message envelope (docs/PROTOCOL.md).
 *
 * Every frame payload is one UTF-8 JSON object:
 *   request  {"v":1,"id":<u64>,"command_id":"<uuid>","cmd":"<name>","args":{...}}
 *   reply    {"v":1,"id":<same>,"ok":true,"result":{...}}
 *            {"v":1,"id":<same>,"ok":false,
 *             "error":{"code":"<snake_case>","message":"...","retryable":<bool>}}
 *
 * `id` routes a reply to its request on a multiplexed connection (a new id
 * per attempt); `command_id` is the idempotency key, identical across
 * retries, so the enclave executes a command at most once.
 *
 * Pure codec: bytes in, structs out, no I/O. Decoders take untrusted
 * (const uint8_t *, size_t) input, enforce the limits below, reject
 * duplicate keys, unknown versions and wrong types, and never abort.
 */
#ifndef KM_PROTOCOL_ENVELOPE_H
#define KM_PROTOCOL_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/uuid.h"

#define ENV_VERSION        1
#define ENV_CMD_MAX        64                  /* command names are short snake_case */
#define ENV_ERROR_CODE_MAX 64                  /* error codes likewise */
#define ENV_ERROR_MSG_MAX  1024                /* longer peer messages are truncated */
#define ENV_ID_MAX         9007199254740991ull /* 2^53-1: exact in every JSON parser */

struct env_request {
    uint64_t id;
    struct uuid command_id;
    char cmd[ENV_CMD_MAX + 1];
    json_t *args; /* owned: a JSON object (empty object when absent) */
};

struct env_error {
    char code[ENV_ERROR_CODE_MAX + 1];
    char message[ENV_ERROR_MSG_MAX + 1];
    bool retryable;
};

struct env_reply {
    uint64_t id;
    bool ok;
    json_t *result;         /* owned when ok (a JSON object), else NULL */
    struct env_error error; /* meaningful when !ok */
};

/*
 * Decodes a request. On success *out owns args (env_request_clear frees).
 * A command_id that is not a UUID, or is the nil UUID, is refused
 * ("\"command_id\" must not be the nil UUID"; docs/PROTOCOL.md).
 * On failure returns KM_ERR_INVALID (or KM_ERR_TOO_LARGE) with a message in
 * *err, and *has_id tells whether out->id was read before the failure, so a
 * server can still address its error reply to the request.
 */
int env_request_decode(struct env_request *out, bool *has_id, const uint8_t *p, size_t len,
                       struct km_error *err) KM_WUR;

/* Appends the JSON encoding of a request to out. args may be NULL (sent as
 * {}); it is borrowed. Returns KM_OK, KM_ERR_INVALID (bad cmd name) or a
 * buf error. */
int env_request_encode(struct buf *out, uint64_t id, const struct uuid *command_id, const char *cmd,
                       const json_t *args) KM_WUR;

/* The same with args already encoded: args_json[0..len) is the text
 * env_dump_json made of a JSON object (a fan-out encodes its arguments once
 * for every enclave). KM_ERR_INVALID if it does not look like an object. */
int env_request_encode_text(struct buf *out, uint64_t id, const struct uuid *command_id,
                            const char *cmd, const uint8_t *args_json, size_t len) KM_WUR;

/* Decodes a reply; on success *out owns result. */
int env_reply_decode(struct env_reply *out, const uint8_t *p, size_t len,
                     struct km_error *err) KM_WUR;

/* Appends an ok reply (result borrowed; NULL means {}). */
int env_reply_encode_ok(struct buf *out, uint64_t id, const json_t *result) KM_WUR;

/* Appends an error reply. code must be snake_case (a BUG otherwise);
 * message is truncated to ENV_ERROR_MSG_MAX. */
int env_reply_encode_error(struct buf *out, uint64_t id, const char *code, const char *message,
                           bool retryable) KM_WUR;

void env_request_clear(struct env_request *r);
void env_reply_clear(struct env_reply *r);

/* Helpers shared by the enclave's command decoders. */
/* True if s is 1..max chars of [a-z0-9_], starting with a letter. */
bool env_is_snake_name(const char *s, size_t max);
/* Appends json (compact, keys in insertion order) to out. */
int env_dump_json(struct buf *out, const json_t *json) KM_WUR;

#endif /* KM_PROTOCOL_ENVELOPE_H */
