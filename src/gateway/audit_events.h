/*
 * audit_events.h - the gateway's entries in the audit log (audit/audit.h):
 * keygen, signing, approval, deletion, API-key change and enclave key
 * events, one line each with the request id, the API key id and the
 * outcome. Only ids and outcomes: never a key, secret, nonce, message,
 * signature or request body.
 */
#ifndef KM_GATEWAY_AUDIT_EVENTS_H
#define KM_GATEWAY_AUDIT_EVENTS_H

#include <jansson.h>

#include "gateway/gateway.h"

/*
 * Records one event when the gateway has an audit log (audit.path set) and
 * does nothing otherwise. event is "<area>.<action>" ("keygen.reserve",
 * "signing.approve", "keygen.delete", "api_key.create",
 * "enclave.key_rotated", ...); outcome is "ok", "refused" or "failed";
 * request_id and api_key_id may be NULL or "" (recorded as null: events without
 * a request, unauthenticated requests); subject is an object of ids
 * ({"keygen_id": "...", "user_id": "...", "enclave_id": 2}) or NULL, and is
 * stolen (decref'd here in every case); detail is a short text or NULL.
 *
 * Never fails the caller: an event that cannot be recorded (a malformed
 * event, a full disk) is logged with log_error and dropped. Thread-safe.
 */
void gw_audit(struct gateway *gw, const char *event, const char *outcome, const char *request_id,
              const char *api_key_id, json_t *subject, const char *detail);

/*
 * Records a request refused for want of a valid API key (401): outcome
 * "refused", api_key_id null (nothing was authenticated), detail "no API
 * key" (none sent) or "invalid API key" (malformed, unknown, wrong secret
 * or revoked: gw_api_key_check does not say which), and, when the token
 * sent has the form of one, subject {"claimed_api_key_id": its first 20
 * characters} (the public id; nothing of the secret is written).
 */
void gw_audit_api_key_refused(struct gateway *gw, const char *event,
                              const struct http_request *req);

#endif /* KM_GATEWAY_AUDIT_EVENTS_H */
