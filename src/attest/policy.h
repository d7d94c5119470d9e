/*
 * policy.h - trust configuration files: the pinned root certificate and
 * the PCR policy (docs/ATTESTATION.md "Trust configuration").
 *
 * PCR policy file (JSON, at most 64 KiB):
 *   {"pcr_sets": [{"PCR0": "<96 hex>", "PCR1": "...", "PCR2": "...",
 *                  "PCR8": "..."}, ...]}
 * 1..16 sets; each set names 1..32 PCRs as "PCR<n>" (n in 0..31) with a
 * 48-byte value in hex; a document passes when it matches every PCR named
 * by at least one set (so an upgrade can roll: old and new image both
 * listed). Unknown keys are refused.
 */
#ifndef KM_ATTEST_POLICY_H
#define KM_ATTEST_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "attest/verify.h"
#include "common/err.h"

#define ATTEST_POLICY_FILE_MAX (64u * 1024u)

/* Parses a PCR policy file's bytes. KM_OK or KM_ERR_INVALID /
 * KM_ERR_TOO_LARGE with the offending key in *err. */
int attest_pcr_policy_parse(struct attest_pcr_policy *out, const uint8_t *p, size_t len,
                            struct km_error *err) KM_WUR;

/* Reads and parses a PCR policy file. KM_ERR_IO names the path. */
int attest_pcr_policy_load(struct attest_pcr_policy *out, const char *path,
                           struct km_error *err) KM_WUR;

/* Writes a one-set policy with PCR0/1/2 (and PCR8 when pcr8 != NULL). */
int attest_pcr_policy_write(const char *path, const uint8_t pcr0[ATTEST_PCR_LEN],
                            const uint8_t pcr1[ATTEST_PCR_LEN], const uint8_t pcr2[ATTEST_PCR_LEN],
                            const uint8_t *pcr8, struct km_error *err) KM_WUR;

/* Converts one PEM certificate to DER (malloc'ed, free()). KM_ERR_INVALID
 * when p holds no certificate. */
int attest_root_from_pem(uint8_t **der, size_t *der_len, const uint8_t *p, size_t len,
                         struct km_error *err) KM_WUR;

/* Reads a PEM file holding the root. KM_ERR_IO names the path. */
int attest_root_load(uint8_t **der, size_t *der_len, const char *path, struct km_error *err) KM_WUR;

/* The AWS Nitro Enclaves Root-G1 (PEM, NUL-terminated), shipped with the
 * project: the default trust root. SHA-256 of its DER:
 * 641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B. */
extern const char attest_aws_nitro_root_g1_pem[];

#endif /* KM_ATTEST_POLICY_H */
