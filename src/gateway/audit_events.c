/*
 * audit_events.c - gw_audit (audit_events.h): the gateway's one entry
 * point into its audit log.
 */
#include "gateway/audit_events.h"

#include "audit/audit.h"
#include "common/log.h"
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
