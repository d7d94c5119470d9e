/*
 * audit_events.c - gw_audit (audit_events.h): the gateway's one entry
 * point into its audit log.
 */
#include "gateway/audit_events.h"

#include <string.h>
#include <strings.h>

#include "audit/audit.h"
#include "common/log.h"
#include "gateway/apikeys.h"
#include "common/banned.h"

#define LOG_COMP "audit"

void gw_audit(struct gateway *gw, const char *event, const char *outcome, const char *request_id,
              const char *api_key_id, json_t *subject, const char *detail)
{
    if (gw == NULL || gw->audit == NULL) {
        json_decref(subject);
        return;
    }
    struct audit_event ev = {
        .event = event,
        .outcome = outcome,
        /* "" (open mode, no request): recorded as null. */
        .request_id = request_id != NULL && request_id[0] != '\0' ? request_id : NULL,
        .api_key_id = api_key_id != NULL && api_key_id[0] != '\0' ? api_key_id : NULL,
        .subject = subject,
        .detail = detail,
    };
    struct km_error err;
    /* The request has happened either way; a lost audit line is an
     * operator's problem, not the client's. */
    if (audit_append(gw->audit, &ev, &err) != KM_OK)
        log_error(LOG_COMP, "audit event %.64s (%.20s) not recorded: %s",
                  event != NULL ? event : "(null)", outcome != NULL ? outcome : "(null)", err.msg);
    json_decref(subject);
}

/* The token as gw_api_key_check reads it: "Authorization: Bearer" first,
 * else X-KeyMeld-API-Key; NULL when neither is sent. */
static const char *sent_token(const struct http_request *req)
{
    const char *auth = http_header(req, "Authorization");
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
        return auth + 7;
    return http_header(req, "X-KeyMeld-API-Key");
}

/* The id a token claims ("kmk_" + 16 lower-case hex digits, its first 20
 * characters) into out, when the token has a key's length and form there;
 * otherwise false and nothing of it is kept. */
static bool claimed_id(const char *token, char out[21])
{
    if (strlen(token) != GW_API_KEY_TOKEN_LEN || strncmp(token, "kmk_", 4) != 0 || token[20] != '_')
        return false;
    for (size_t i = 4; i < 20; i++)
        if (strchr("0123456789abcdef", token[i]) == NULL)
            return false;
    memcpy(out, token, 20);
    out[20] = '\0';
    return true;
}

void gw_audit_api_key_refused(struct gateway *gw, const char *event, const struct http_request *req)
{
    const char *token = sent_token(req);
    char id[21];
    json_t *subject = token != NULL && claimed_id(token, id)
                          ? json_pack("{s:s}", "claimed_api_key_id", id)
                          : NULL;
    gw_audit(gw, event, "refused", req->request_id, NULL, subject,
             token != NULL ? "invalid API key" : "no API key");
}
