/*
 * sigv4.h - AWS Signature Version 4 (HMAC-SHA256) for request headers.
 *
 * sigv4_sign() is pure: from a request (method, path, query, headers, body),
 * a scope (region, service, X-Amz-Date) and credentials it computes the
 * three artefacts of the AWS algorithm, all exposed so tests compare each
 * with AWS's test suite (tests/data/sigv4):
 *
 *   canonical request  METHOD \n canonical URI \n canonical query \n
 *                      canonical headers (name:value\n each) \n
 *                      signed headers \n hex(SHA-256(body))
 *   string to sign     AWS4-HMAC-SHA256 \n date \n scope \n hex(SHA-256(creq))
 *   authorization      AWS4-HMAC-SHA256 Credential=AK/scope,
 *                      SignedHeaders=..., Signature=hex
 *
 * Canonicalization (AWS "Create a canonical request", non-S3 rules):
 *  - path: '//' collapsed, '.' and '..' segments resolved (a trailing '/'
 *    kept), then every byte of each segment but the unreserved
 *    A-Z a-z 0-9 - . _ ~ percent-encoded (upper-case hex). The path is taken as it appears in
 *    the request line, so an already-encoded "%2F" becomes "%252F" (AWS's
 *    double encoding for services other than S3).
 *  - query: split on '&', each name and value percent-decoded then encoded
 *    as above, sorted by name then value; "name" alone becomes "name=".
 *  - headers: names (tokens of at most 64 bytes) lower-cased and sorted; every header in the list
 * is signed. Values trimmed, runs of spaces/tabs collapsed to one space; obsolete folded lines (a
 * value holding "\n" + whitespace) joined with
 *    ','; repeated names merged in order with ','.
 *  - X-Amz-Date and X-Amz-Security-Token: when the list lacks them they are
 *    added from the parameters (so they are signed; the caller must send
 *    them too); when present they must equal the parameters.
 *
 * Secrets (the secret key, "AWS4" + secret and the derived keys) live in
 * fixed-size stack buffers wiped before return; they never enter the
 * outputs or an error message.
 */
#ifndef KM_KMS_SIGV4_H
#define KM_KMS_SIGV4_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"

#define SIGV4_ALGORITHM       "AWS4-HMAC-SHA256"
#define SIGV4_DATE_LEN        16 /* "YYYYMMDDTHHMMSSZ" */
#define SIGV4_KEY_LEN         32 /* HMAC-SHA256 */
#define SIGV4_SIG_HEX_LEN     64
#define SIGV4_MAX_HEADERS     64
#define SIGV4_SECRET_MAX      128           /* secret access key, bytes */
#define SIGV4_ACCESS_KEY_MAX  128           /* access key id, bytes */
#define SIGV4_TOKEN_MAX       4096          /* session token, bytes */
#define SIGV4_SCOPE_PART_MAX  64            /* region, service */
#define SIGV4_HEADER_NAME_MAX 64            /* a header name */
#define SIGV4_CANONICAL_MAX   (64u * 1024u) /* canonical request, bytes */

/* One request header as the caller sends it. name and value are
 * NUL-terminated; value may hold obsolete folded lines ("a\n  b"). */
struct sigv4_header {
    const char *name;
    const char *value;
};

/* What is signed. Every pointer is borrowed for the call. */
struct sigv4_request {
    const char *method;                 /* "GET", "POST" */
    const char *path;                   /* as in the request line, without the query; "" = "/" */
    const char *query;                  /* raw query string without '?'; NULL or "" = none */
    const struct sigv4_header *headers; /* must include Host */
    size_t nheaders;                    /* at most SIGV4_MAX_HEADERS */
    const uint8_t *body;                /* NULL when body_len == 0 */
    size_t body_len;
    const char *region;   /* "us-east-1" */
    const char *service;  /* "kms" */
    const char *amz_date; /* "YYYYMMDDTHHMMSSZ" (UTC) */
};

/* Borrowed credentials. session_token NULL = long-term credentials (no
 * X-Amz-Security-Token). */
struct sigv4_credentials {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
};

/* The outputs; every string is malloc'ed and owned by the struct. */
struct sigv4_signature {
    char *canonical_request;
    char *string_to_sign;
    char *authorization;  /* the Authorization header value */
    char *signed_headers; /* "host;x-amz-date" */
    char signature[SIGV4_SIG_HEX_LEN + 1];
};

/*
 * Signs req with cred. On KM_OK *out holds the four strings and the
 * signature (release with sigv4_signature_clear). On failure *out is
 * cleared and the code is KM_ERR_INVALID (a malformed date, region,
 * service, header name, credential or percent-escape; no Host header; an
 * X-Amz-Date or X-Amz-Security-Token header that differs from the
 * parameter), KM_ERR_LIMIT (too many headers), KM_ERR_TOO_LARGE (canonical
 * request past SIGV4_CANONICAL_MAX, credential past its maximum) or
 * KM_ERR_CRYPTO, with a message naming the field in *err (never a secret).
 */
int sigv4_sign(struct sigv4_signature *out, const struct sigv4_request *req,
               const struct sigv4_credentials *cred, struct km_error *err) KM_WUR;

/* Frees the strings and zeroes *s. NULL-safe on its members. */
void sigv4_signature_clear(struct sigv4_signature *s);

/*
 * The signing key HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date8), region),
 * service), "aws4_request"). date8 is "YYYYMMDD". The caller wipes out.
 * Returns KM_OK, KM_ERR_TOO_LARGE (secret past SIGV4_SECRET_MAX) or
 * KM_ERR_CRYPTO.
 */
int sigv4_signing_key(uint8_t out[SIGV4_KEY_LEN], const char *secret, const char *date8,
                      const char *region, const char *service) KM_WUR;

/* Formats t (seconds since the epoch) as "YYYYMMDDTHHMMSSZ". */
void sigv4_format_date(char out[SIGV4_DATE_LEN + 1], time_t t);

/* Parses "YYYYMMDDTHHMMSSZ" into seconds since the epoch. KM_OK or
 * KM_ERR_INVALID. */
int sigv4_parse_date(time_t *out, const char *s) KM_WUR;

/* An Authorization header taken apart (for a server that verifies). */
struct sigv4_authorization {
    char access_key_id[SIGV4_ACCESS_KEY_MAX + 1];
    char date8[9];
    char region[SIGV4_SCOPE_PART_MAX + 1];
    char service[SIGV4_SCOPE_PART_MAX + 1];
    size_t nsigned;
    char signed_headers[SIGV4_MAX_HEADERS][SIGV4_HEADER_NAME_MAX + 1]; /* lower case */
    char signature[SIGV4_SIG_HEX_LEN + 1];
};

/*
 * Parses "AWS4-HMAC-SHA256 Credential=AK/date/region/service/aws4_request,
 * SignedHeaders=a;b, Signature=hex" (spaces after the commas optional).
 * Returns KM_OK or KM_ERR_INVALID with the offending part in *err.
 */
int sigv4_parse_authorization(struct sigv4_authorization *out, const char *value,
                              struct km_error *err) KM_WUR;

#endif /* KM_KMS_SIGV4_H */
