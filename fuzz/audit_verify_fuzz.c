/*
 * audit_verify_fuzz.c - the audit log verifier (audit/audit.h) on arbitrary
 * bytes. The committed seeds are a log written by audit_append and its
 * tampered variants (an edited character, a removed line, two lines
 * swapped, a truncated last line, CRLF line ends, a renumbered tail), an
 * empty file and lines of the wrong shape (not JSON, duplicate keys, extra
 * and missing members, wrong types).
 *
 * Contract checked: never crashes, leaks or reads out of bounds; an intact
 * chain has every line counted and no bad line; a broken one names the line
 * after the last good one, with a printable message that starts with
 * "line K: "; a small message buffer changes nothing but the text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t ok = 7, bad = 7;
    char why[512];
    int r = audit_verify(data, size, &ok, &bad, why, sizeof(why));
    if (r == KM_OK) {
        size_t lines = 0;
        for (size_t i = 0; i < size; i++)
            lines += data[i] == '\n';
        if (bad != 0 || ok != lines || why[0] != '\0' || (size > 0 && data[size - 1] != '\n'))
            abort();
    } else if (r == KM_ERR_INVALID) {
        char prefix[32];
        int n = snprintf(prefix, sizeof(prefix), "line %zu: ", bad);
        if (bad != ok + 1 || n <= 0 || strncmp(why, prefix, (size_t)n) != 0 || why[n] == '\0')
            abort();
        for (const char *p = why; *p != '\0'; p++) {
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                abort();
        }
    } else {
        abort();
    }

    size_t ok2, bad2;
    char tiny[6];
    int r2 = audit_verify(data, size, &ok2, &bad2, tiny, sizeof(tiny));
    if (r2 != r || ok2 != ok || bad2 != bad || strlen(tiny) >= sizeof(tiny))
        abort();
    return 0;
}
