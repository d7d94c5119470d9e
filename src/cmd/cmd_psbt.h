/*
 * cmd_psbt.h - what `keymeld psbt sign` knows about a PSBT, for
 * `keymeld approve --psbt` (cmd_join.c); the commands are in cmd.h.
 */
#ifndef KM_CMD_CMD_PSBT_H
#define KM_CMD_CMD_PSBT_H

#include <stdio.h>

#include "bitcoin/address.h"
#include "client/session.h"

/*
 * An approver's check of a PSBT signing request: reads the PSBT at path
 * (base64 or binary), works out the signatures `keymeld psbt sign` makes
 * for k's group (same rules), and requires the request's messages to be
 * exactly those sighashes, in that order. Then prints to out what the
 * transaction does: each input (amount, whether and how the group signs
 * it), each output (amount, address on net or the script in hex, whether
 * it pays the group) and the fee when every input's amount is known.
 * Returns KM_OK, or an error (*err) when the PSBT cannot be read or the
 * request signs anything else.
 */
int cmd_psbt_check_request(FILE *out, const struct client_keygen *k,
                           const struct client_signing *req, const char *path,
                           enum address_network net, struct km_error *err) KM_WUR;

#endif /* KM_CMD_CMD_PSBT_H */
