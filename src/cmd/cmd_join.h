/*
 * cmd_join.h - the coordinator's side of every party on its own machine,
 * for cmd_keygen (cmd_session.c); the commands themselves are in cmd.h.
 */
#ifndef KM_CMD_CMD_JOIN_H
#define KM_CMD_CMD_JOIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/session.h"

/* How many public keys the comma-separated list of --invite names. */
size_t cmd_invite_count(const char *list);

/*
 * k was made by client_keygen_new with 1 + cmd_invite_count(list) users:
 * users 1.. become the invited parties (public keys only), then reserve,
 * initialize as the coordinator (user 0), write dir/invite-<i>.json per
 * party (printed unless json), and wait up to wait_secs for the parties to
 * join and the aggregate key (checked against every public key).
 */
int cmd_keygen_invite(struct rest_client *c, struct client_keygen *k, const char *list,
                      const char *dir, const char *gateway, uint32_t wait_secs, bool json,
                      struct km_error *err) KM_WUR;

#endif /* KM_CMD_CMD_JOIN_H */
