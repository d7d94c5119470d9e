#include "config/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmalloc.h"
#include "common/banned.h"

void cfg_diag_init(struct cfg_diag *d)
{
    KM_ASSERT(d != NULL);
    memset(d, 0, sizeof(*d));
}

void cfg_diag_release(struct cfg_diag *d)
{
    if (d == NULL)
        return;
    free(d->entries);
    memset(d, 0, sizeof(*d));
}

static void diag_vadd(struct cfg_diag *d, enum cfg_severity sev, const char *loc, const char *fmt,
                      va_list ap) KM_PRINTF(4, 0);

static void diag_vadd(struct cfg_diag *d, enum cfg_severity sev, const char *loc, const char *fmt,
                      va_list ap)
{
    KM_ASSERT(d != NULL);
    if (sev == CFG_ERROR)
        d->errors++;
    else
        d->warnings++;
    if (d->count >= CFG_MAX_DIAG) {
        d->dropped++;
        return;
    }
    if (d->count == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 8;
        d->entries = xrealloc(d->entries, st_mult(d->cap, sizeof(*d->entries)));
    }
    struct cfg_diag_entry *e = &d->entries[d->count++];
    e->severity = sev;
    snprintf(e->loc, sizeof(e->loc), "%s", loc ? loc : "");
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

void cfg_diag_add(struct cfg_diag *d, enum cfg_severity sev, const char *loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vadd(d, sev, loc, fmt, ap);
    va_end(ap);
}

void cfg_diag_at(struct cfg_diag *d, enum cfg_severity sev, const char *file, uint32_t line,
                 const char *fmt, ...)
{
    char loc[sizeof(d->entries[0].loc)];
    if (file == NULL || file[0] == '\0')
        loc[0] = '\0';
    else if (line == 0)
        snprintf(loc, sizeof(loc), "%.300s", file);
    else
        snprintf(loc, sizeof(loc), "%.300s:%u", file, line);
    va_list ap;
    va_start(ap, fmt);
    diag_vadd(d, sev, loc, fmt, ap);
    va_end(ap);
}

char *cfg_diag_format(char *out, size_t outcap, const struct cfg_diag_entry *e)
{
    if (e->loc[0] != '\0')
        snprintf(out, outcap, "%s: %s", e->loc, e->msg);
    else
        snprintf(out, outcap, "%s", e->msg);
    return out;
}
