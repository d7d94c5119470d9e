/*
 * stack_session.h - what the gateway's integration tests start from: a
 * running stack (stack.h), a REST client for its gateway, the stack's
 * attestation trust and one keygen of the C client (client/session.h).
 */
#ifndef KM_TESTS_STACK_SESSION_H
#define KM_TESTS_STACK_SESSION_H

#include <stddef.h>

#include "client/attest.h"
#include "client/rest.h"
#include "client/session.h"
#include "stack.h"

struct stack_session {
    struct stack stack;
    struct rest_client *http;
    struct client_trust trust;
    struct client_keygen k;
};

/* Starts s->stack with 3 enclaves (set its fields, e.g. log_level, before),
 * the REST client and a keygen of nusers with the unspendable Taproot
 * tweak, not yet run: set its users' options, then stack_session_keygen.
 * Any failure fails the running test. */
void stack_session_start(struct stack_session *s, size_t nusers);

/* Runs the keygen through the gateway (600 s session, 20 s wait). */
void stack_session_keygen(struct stack_session *s);

/* Releases everything and stops the stack. */
void stack_session_end(struct stack_session *s);

#endif /* KM_TESTS_STACK_SESSION_H */
