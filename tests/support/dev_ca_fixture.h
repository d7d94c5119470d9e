/*
 * dev_ca_fixture.h - a development attestation CA in a temporary
 * directory, its root certificate and a development attestation provider,
 * plus the KMS stand-in (kms_server.h) configured to trust them. Shared by
 * the tests that run KMS against development documents
 * (unit.kms.client, unit.enclave.keysource_kms).
 */
#ifndef KM_TESTS_DEV_CA_FIXTURE_H
#define KM_TESTS_DEV_CA_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "attest/doc.h"
#include "attest/provider.h"
#include "kms_server.h"

struct dev_ca_fixture {
    char dir[64];                     /* the dev CA directory (removed by teardown) */
    uint8_t *root;                    /* its root certificate, DER, malloc'd */
    size_t root_len;                  /* bytes in root */
    uint8_t pcr0[ATTEST_PCR_LEN];     /* the provider's PCR0: pcr_byte repeated */
    struct attest_provider *provider; /* development documents from the CA */
};

/*
 * Makes a temporary directory "/tmp/<dir_prefix>-XXXXXX", a dev CA in it,
 * loads its root and makes a development provider with module_id whose
 * PCR0 is pcr_byte repeated. Returns 0, or -1 after printing why to
 * stderr (for a cmocka group setup).
 */
int dev_ca_fixture_setup(struct dev_ca_fixture *f, const char *dir_prefix, uint8_t pcr_byte,
                         const char *module_id);

/* Frees what setup made and removes the CA directory. */
void dev_ca_fixture_teardown(struct dev_ca_fixture *f);

/* A cmocka group teardown: dev_ca_fixture_teardown of *state (the
 * fixture the group setup stored there). Returns 0. */
int dev_ca_fixture_group_teardown(void **state);

/* Removes the directory tree at dir (files first); errors are ignored. */
void dev_ca_remove_tree(const char *dir);

/*
 * The stand-in's configuration: base (region, credentials, key id, ...)
 * with the root and PCR0 of f to verify documents against.
 */
struct kms_server_config dev_ca_server_config(const struct dev_ca_fixture *f,
                                              struct kms_server_config base);

/* Starts the stand-in with c; fails the test if it cannot. */
struct kms_server *dev_ca_server_start(const struct kms_server_config *c);

#endif /* KM_TESTS_DEV_CA_FIXTURE_H */
