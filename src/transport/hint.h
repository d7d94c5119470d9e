/*
 * hint.h - the seed's troubleshooting advice, attached to transport errors.
 *
 * Errors say what happened ("Failed to connect: No such device (os error
 * 19)"); the hint says what to do about it, in the words of the seed's
 * "Common Issues and Solutions". The gateway logs both; `keymeld enclave
 * ping` prints both. Hints are chosen from the error code and errno, never
 * from matching message text.
 */
#ifndef KM_TRANSPORT_HINT_H
#define KM_TRANSPORT_HINT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "transport/addr.h"

/*
 * Writes a one-line fix for err (as returned by tp_connect, the pool or the
 * reader) when talking to addr, or "" when there is nothing useful to add.
 * enclave_index (>= 0) names the KEYMELD_ENCLAVE_<N>_* variables in the
 * advice; pass -1 when unknown. development selects the development-mode
 * advice (CID 2 for every enclave) over the production one (CIDs from
 * nitro-cli). Returns out.
 */
char *tp_error_hint(char *out, size_t outcap, const struct km_error *err,
                    const struct tp_addr *addr, int enclave_index, bool development);

#endif /* KM_TRANSPORT_HINT_H */
