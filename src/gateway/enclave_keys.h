/*
 * enclave_keys.h - the gateway's half of sealed enclave identity keys
 * (docs/OPERATIONS.md "Durable enclave keys").
 *
 * An enclave started with a sealer has no identity key until `configure`:
 * the gateway hands it the sealed key it keeps for that enclave (store:
 * enclave_sealed_keys), or, when it keeps none, lets the enclave create and
 * seal one and commits the returned blob before the key is used. A blob that
 * does not open (a wrong key-encryption key) is an error the operator sees;
 * nothing in the database changes.
 */
#ifndef KM_GATEWAY_ENCLAVE_KEYS_H
#define KM_GATEWAY_ENCLAVE_KEYS_H

#include <jansson.h>
#include <stdint.h>

#include "common/err.h"
#include "store/store.h"
#include "transport/pool.h"

/*
 * info is a get_public_info result. When it says key_state
 * "awaiting_configure", configures the enclave as above and replaces *info
 * with configure's result (a new reference; the old one is released).
 * Otherwise checks only that an enclave without a sealer has no sealed key
 * in the database (KM_ERR_STATE: it was started without its sealer by
 * mistake, and must not be taken for a restarted one). Returns KM_OK, or
 * the error (transport, enclave, store) with a message for the enclave's
 * status.
 */
int gw_enclave_key_handshake(struct store *store, struct pool *pool, uint32_t enclave_id,
                             json_t **info, struct km_error *err) KM_WUR;

struct proto_configure_args;

/* Fills a's AWS credentials from the gateway's environment (nothing when
 * unset): what an aws-kms enclave signs its KMS requests with. */
void gw_aws_credentials(struct proto_configure_args *a);

#endif /* KM_GATEWAY_ENCLAVE_KEYS_H */
