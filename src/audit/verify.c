/*
 * verify.c - checking audit lines and chains (audit.h): the shape of one
 * line, the chain hash, and audit_verify over a whole file. Everything here
 * reads untrusted bytes: explicit limits, no NUL assumed, messages made of
 * printable ASCII only.
 */
#include "audit/internal.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/hex.h"
#include "common/banned.h"

/* The members of a line, in the order the writer puts them. */
static const char *const members[] = {"seq",        "time",    "event",  "outcome", "request_id",
                                      "api_key_id", "subject", "detail", "prev"};

void audit_hash_line(uint8_t out[AUDIT_HASH_LEN], const uint8_t *line, size_t len)
{
    unsigned int n = 0;
    static const uint8_t empty[1];
    if (EVP_Digest(len > 0 ? line : empty, len, out, &n, EVP_sha256(), NULL) != 1 ||
        n != AUDIT_HASH_LEN)
        KM_BUG("SHA-256 is not available");
}

bool audit_outcome_valid(const char *s, size_t len)
{
    return (len == 2 && memcmp(s, "ok", 2) == 0) || (len == 7 && memcmp(s, "refused", 7) == 0) ||
           (len == 6 && memcmp(s, "failed", 6) == 0);
}

bool audit_event_valid(const char *s, size_t len)
{
    if (len == 0 || len > AUDIT_MAX_EVENT)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool audit_subject_key_valid(const char *s, size_t len)
{
    if (len == 0 || len > AUDIT_MAX_SUBJECT_KEY || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static int reason(char *why, size_t whycap, int code, const char *fmt, ...) KM_PRINTF(4, 5);

static int reason(char *why, size_t whycap, int code, const char *fmt, ...)
{
    if (why != NULL && whycap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whycap, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Replaces every byte outside printable ASCII (jansson's messages quote
 * the input) so a crafted file cannot write to the terminal. */
static void printable(char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
    }
}

/* "2026-11-24T15:17:48.123Z" */
static bool time_valid(const char *s, size_t len)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (len != sizeof(pat) - 1)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
            return false;
    }
    return true;
}

static bool hex_lower(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return true;
}

/* A string of at most max bytes, or (when nullable) null. */
static int check_text(const json_t *v, const char *name, size_t max, bool nullable, char *why,
                      size_t whycap)
{
    if (nullable && json_is_null(v))
        return KM_OK;
    if (!json_is_string(v))
        return reason(why, whycap, KM_ERR_INVALID, "%s is not a string%s", name,
                      nullable ? " or null" : "");
    if (json_string_length(v) > max)
        return reason(why, whycap, KM_ERR_INVALID, "%s is longer than %zu bytes", name, max);
    return KM_OK;
}

static int check_subject(json_t *s, char *why, size_t whycap)
{
    if (!json_is_object(s))
        return reason(why, whycap, KM_ERR_INVALID, "subject is not an object");
    if (json_object_size(s) > AUDIT_MAX_SUBJECT_KEYS)
        return reason(why, whycap, KM_ERR_INVALID, "subject has more than %u members",
                      AUDIT_MAX_SUBJECT_KEYS);
    const char *key;
    json_t *v;
    json_object_foreach(s, key, v)
    {
        if (!audit_subject_key_valid(key, strlen(key)))
            return reason(why, whycap, KM_ERR_INVALID,
                          "subject has a member named '%.40s' (expected [a-z][a-z0-9_]*, at most "
                          "%u bytes)",
                          key, AUDIT_MAX_SUBJECT_KEY);
        if (json_is_integer(v)) {
            if (json_integer_value(v) < 0)
                return reason(why, whycap, KM_ERR_INVALID, "subject.%s is negative", key);
        } else if (!json_is_string(v)) {
            return reason(why, whycap, KM_ERR_INVALID,
                          "subject.%s is neither a string nor an integer", key);
        } else if (json_string_length(v) > AUDIT_MAX_ID) {
            return reason(why, whycap, KM_ERR_INVALID, "subject.%s is longer than %u bytes", key,
                          AUDIT_MAX_ID);
        }
    }
    return KM_OK;
}

static int check_members(json_t *o, uint64_t *seq, uint8_t prev[AUDIT_HASH_LEN], char *why,
                         size_t whycap)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        size_t i = 0;
        while (i < KM_ARRAY_LEN(members) && strcmp(key, members[i]) != 0)
            i++;
        if (i == KM_ARRAY_LEN(members))
            return reason(why, whycap, KM_ERR_INVALID, "unexpected member '%.40s'", key);
    }
    for (size_t i = 0; i < KM_ARRAY_LEN(members); i++) {
        if (json_object_get(o, members[i]) == NULL)
            return reason(why, whycap, KM_ERR_INVALID, "missing member '%s'", members[i]);
    }

    v = json_object_get(o, "seq");
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return reason(why, whycap, KM_ERR_INVALID, "seq is not a positive integer");
    *seq = (uint64_t)json_integer_value(v);

    v = json_object_get(o, "time");
    if (!json_is_string(v) || !time_valid(json_string_value(v), json_string_length(v)))
        return reason(why, whycap, KM_ERR_INVALID,
                      "time is not an RFC 3339 UTC time like 2026-11-24T15:17:48.123Z");
    v = json_object_get(o, "event");
    if (!json_is_string(v) || !audit_event_valid(json_string_value(v), json_string_length(v)))
        return reason(why, whycap, KM_ERR_INVALID,
                      "event is not a name of [a-z0-9._-] of at most %u bytes", AUDIT_MAX_EVENT);
    v = json_object_get(o, "outcome");
    if (!json_is_string(v) || !audit_outcome_valid(json_string_value(v), json_string_length(v)))
        return reason(why, whycap, KM_ERR_INVALID, "outcome is not ok, refused or failed");

    int r =
        check_text(json_object_get(o, "request_id"), "request_id", AUDIT_MAX_ID, true, why, whycap);
    if (r == KM_OK)
        r = check_text(json_object_get(o, "api_key_id"), "api_key_id", AUDIT_MAX_ID, true, why,
                       whycap);
    if (r == KM_OK)
        r = check_subject(json_object_get(o, "subject"), why, whycap);
    if (r == KM_OK)
        r = check_text(json_object_get(o, "detail"), "detail", AUDIT_MAX_DETAIL, true, why, whycap);
    if (r != KM_OK)
        return r;

    v = json_object_get(o, "prev");
    if (!json_is_string(v) || json_string_length(v) != AUDIT_HASH_HEX_LEN ||
        !hex_lower(json_string_value(v), AUDIT_HASH_HEX_LEN) ||
        hex_decode_exact(prev, AUDIT_HASH_LEN, json_string_value(v), AUDIT_HASH_HEX_LEN) != KM_OK)
        return reason(why, whycap, KM_ERR_INVALID, "prev is not 64 lower-case hex digits");
    return KM_OK;
}

int audit_line_check(uint64_t *seq, uint8_t prev[AUDIT_HASH_LEN], const uint8_t *line, size_t len,
                     char *why, size_t whycap)
{
    *seq = 0;
    memset(prev, 0, AUDIT_HASH_LEN);
    if (len == 0)
        return reason(why, whycap, KM_ERR_INVALID, "empty line");
    if (len > AUDIT_MAX_LINE)
        return reason(why, whycap, KM_ERR_TOO_LARGE, "longer than %u bytes", AUDIT_MAX_LINE);
    /* The writer puts nothing around the object; a "\r" here is the usual
     * sign of a file converted to CRLF line ends. */
    if (line[0] != '{' || line[len - 1] != '}')
        return reason(why, whycap, KM_ERR_INVALID, "not a JSON object on one line%s",
                      line[len - 1] == '\r' ? " (it ends with a carriage return: the file must "
                                              "use \"\\n\" line ends)"
                                            : "");
    json_error_t jerr;
    json_t *o = json_loadb((const char *)line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        int r = reason(why, whycap, KM_ERR_INVALID, "not valid JSON: %.120s (column %d)", jerr.text,
                       jerr.column);
        printable(why);
        return r;
    }
    int r = json_is_object(o) ? check_members(o, seq, prev, why, whycap)
                              : reason(why, whycap, KM_ERR_INVALID, "not a JSON object");
    json_decref(o);
    if (r != KM_OK) {
        *seq = 0;
        memset(prev, 0, AUDIT_HASH_LEN);
        printable(why);
    }
    return r;
}

static int broken(char *why, size_t whycap, size_t lineno, const char *fmt, ...) KM_PRINTF(4, 5);

static int broken(char *why, size_t whycap, size_t lineno, const char *fmt, ...)
{
    if (why != NULL && whycap > 0) {
        int n = snprintf(why, whycap, "line %zu: ", lineno);
        if (n > 0 && (size_t)n < whycap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(why + n, whycap - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return KM_ERR_INVALID;
}

int audit_verify(const uint8_t *data, size_t len, size_t *lines_ok, size_t *bad_line, char *why,
                 size_t whycap)
{
    KM_ASSERT(lines_ok != NULL && bad_line != NULL && (data != NULL || len == 0));
    *lines_ok = 0;
    *bad_line = 0;
    if (why != NULL && whycap > 0)
        why[0] = '\0';

    uint8_t expect_prev[AUDIT_HASH_LEN] = {0};
    size_t pos = 0;
    for (size_t lineno = 1; pos < len; lineno++) {
        const uint8_t *line = data + pos;
        size_t avail = len - pos;
        size_t scan = avail < (size_t)AUDIT_MAX_LINE + 1 ? avail : (size_t)AUDIT_MAX_LINE + 1;
        const uint8_t *nl = memchr(line, '\n', scan);
        *bad_line = lineno;
        if (nl == NULL && avail > AUDIT_MAX_LINE)
            return broken(why, whycap, lineno, "longer than %u bytes", AUDIT_MAX_LINE);
        if (nl == NULL)
            return broken(why, whycap, lineno,
                          "incomplete last line (no \"\\n\" at its end: truncated, or a write in "
                          "progress)");
        size_t n = (size_t)(nl - line);

        char r[256];
        uint64_t seq;
        uint8_t prev[AUDIT_HASH_LEN];
        if (audit_line_check(&seq, prev, line, n, r, sizeof(r)) != KM_OK)
            return broken(why, whycap, lineno, "%s", r);
        if (seq != (uint64_t)lineno) {
            if (lineno == 1)
                return broken(why, whycap, lineno,
                              "seq is %" PRIu64 ", expected 1 (lines removed from the start?)",
                              seq);
            return broken(why, whycap, lineno,
                          "seq is %" PRIu64 ", expected %zu (a line removed, inserted or "
                          "reordered?)",
                          seq, lineno);
        }
        if (memcmp(prev, expect_prev, AUDIT_HASH_LEN) != 0) {
            if (lineno == 1)
                return broken(why, whycap, lineno,
                              "prev is not 64 zeros, as the first line's must be (lines removed "
                              "from the start?)");
            return broken(why, whycap, lineno,
                          "prev does not match the hash of line %zu (edited, removed or "
                          "reordered?)",
                          lineno - 1);
        }
        audit_hash_line(expect_prev, line, n);
        *lines_ok = lineno;
        pos += n + 1;
    }
    *bad_line = 0;
    return KM_OK;
}
