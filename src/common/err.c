#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/banned.h"

struct err_desc {
    int code;
    const char *name;
    const char *text;
};

static const struct err_desc err_table[] = {
    {KM_OK, "ok", "success"},
    {KM_ERR_INTERNAL, "internal", "internal error"},
    {KM_ERR_NOMEM, "out_of_memory", "out of memory"},
    {KM_ERR_INVALID, "invalid", "invalid input"},
    {KM_ERR_INCOMPLETE, "incomplete", "incomplete input"},
    {KM_ERR_TOO_LARGE, "too_large", "input too large"},
    {KM_ERR_TRAILING_DATA, "trailing_data", "unexpected trailing data"},
    {KM_ERR_RANGE, "out_of_range", "value out of range"},
    {KM_ERR_IO, "io", "i/o error"},
    {KM_ERR_TIMEOUT, "timeout", "timed out"},
    {KM_ERR_CLOSED, "connection_closed", "connection closed"},
    {KM_ERR_CONNECT, "connect_failed", "connection failed"},
    {KM_ERR_RESOLVE, "resolve_failed", "host name resolution failed"},
    {KM_ERR_NOT_FOUND, "not_found", "not found"},
    {KM_ERR_CRYPTO, "crypto", "cryptographic check failed"},
    {KM_ERR_STATE, "invalid_state", "not allowed in the current state"},
    {KM_ERR_LIMIT, "limit_exceeded", "limit exceeded"},
    {KM_ERR_REMOTE, "remote_error", "peer reported an error"},
    {KM_ERR_UNSUPPORTED, "unsupported", "not supported"},
    {KM_ERR_CONFIG, "config", "invalid configuration"},
    {KM_ERR_EXISTS, "already_exists", "already exists"},
    {KM_ERR_CANCELLED, "cancelled", "cancelled"},
};

static const struct err_desc *err_lookup(int err)
{
    for (size_t i = 0; i < KM_ARRAY_LEN(err_table); i++) {
        if (err_table[i].code == err)
            return &err_table[i];
    }
    return NULL;
}

const char *km_strerror(int err)
{
    const struct err_desc *d = err_lookup(err);
    return d ? d->text : "unknown error";
}

const char *km_errname(int err)
{
    const struct err_desc *d = err_lookup(err);
    return d ? d->name : "unknown";
}

void km_error_clear(struct km_error *e)
{
    e->code = KM_OK;
    e->sys_errno = 0;
    e->msg[0] = '\0';
}

int km_error_set(struct km_error *e, int code, int sys_errno, const char *fmt, ...)
{
    if (e == NULL)
        return code;
    e->code = code;
    e->sys_errno = sys_errno;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return code;
}

void km_error_prefix(struct km_error *e, const char *fmt, ...)
{
    char prefix[256];
    char old[sizeof(e->msg)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof(old));
    /* Truncation at the end is intended: the prefix names the context and
     * must survive. */
    size_t plen = strlen(prefix), olen = strnlen(old, sizeof(old) - 1);
    size_t cap = sizeof(e->msg) - 1, pos = 0;
    memcpy(e->msg, prefix, plen);
    pos = plen;
    if (olen > 0 && pos + 2 <= cap) {
        memcpy(e->msg + pos, ": ", 2);
        pos += 2;
        size_t n = olen < cap - pos ? olen : cap - pos;
        memcpy(e->msg + pos, old, n);
        pos += n;
    }
    e->msg[pos] = '\0';
}

void km_bug(const char *file, int line, const char *func, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "BUG: %s:%d %s(): ", file, line, func);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
