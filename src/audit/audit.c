/*
 * audit.c - the audit log writer (audit.h): open and continue a chain,
 * append one line per event, close.
 */
#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/internal.h"
#include "common/clock.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/xmalloc.h"
#include "common/banned.h"

#define LOG_COMP "audit"

struct audit_log {
    pthread_mutex_t mu;
    int fd;
    char *path;
    bool fsync_each_line;
    bool broken;                  /* a failed write could not be rolled back */
    uint64_t seq;                 /* of the last line (0: none) */
    uint8_t prev[AUDIT_HASH_LEN]; /* chain hash of the last line (zeros: none) */
    off_t end;                    /* file size after the last complete line */

    /* Group commit of fsync_each_line: a line is written under mu, then
     * synced outside it, and one fdatasync covers every line written
     * before it began (wait_synced). Lock order: sync_mu, then mu. */
    pthread_mutex_t sync_mu;
    pthread_cond_t synced_cond;
    uint64_t synced; /* every line up to this seq is on disk */
    /* The lines the last failed sync covered (none: from > upto), and why. */
    uint64_t failed_from, failed_upto;
    int failed_errno;
    bool syncing; /* a writer is in fdatasync */
};

/* ---- opening ------------------------------------------------------------------ */

static int read_at(int fd, uint8_t *out, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, out + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? errno : EIO;
        got += (size_t)r;
    }
    return 0;
}

/* Reads the last line of a non-empty file and continues its chain. */
static int continue_chain(struct audit_log *a, off_t size, struct km_error *err)
{
    /* The last line (at most AUDIT_MAX_LINE bytes), its "\n" and the "\n"
     * that ends the line before it. */
    size_t want = (size_t)AUDIT_MAX_LINE + 2;
    size_t chunk = (uint64_t)size < want ? (size_t)size : want;
    uint8_t *buf = xmalloc(chunk);
    int r = KM_OK;
    int e = read_at(a->fd, buf, chunk, size - (off_t)chunk);
    if (e != 0) {
        r = km_error_set(err, KM_ERR_IO, e, "%s: cannot read the audit log: %s", a->path,
                         strerror(e));
        goto out;
    }
    if (buf[chunk - 1] != '\n') {
        r = km_error_set(err, KM_ERR_INVALID, 0,
                         "%s: the last line of the audit log is incomplete (no newline at the "
                         "end: a crash during a write, or not an audit log); refusing to "
                         "continue its chain: check it with `keymeld audit verify` and move it "
                         "aside",
                         a->path);
        goto out;
    }
    size_t start = chunk - 1;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    if (start == 0 && chunk < (uint64_t)size) {
        r = km_error_set(err, KM_ERR_TOO_LARGE, 0,
                         "%s: the last line is longer than %u bytes: not an audit log; refusing "
                         "to continue it (move it aside)",
                         a->path, AUDIT_MAX_LINE);
        goto out;
    }
    size_t n = chunk - 1 - start;
    char why[256];
    uint8_t prev[AUDIT_HASH_LEN];
    if (audit_line_check(&a->seq, prev, buf + start, n, why, sizeof(why)) != KM_OK) {
        r = km_error_set(err, KM_ERR_INVALID, 0,
                         "%s: the last line is not an audit line (%s); refusing to continue its "
                         "chain: check it with `keymeld audit verify` and move it aside",
                         a->path, why);
        goto out;
    }
    audit_hash_line(a->prev, buf + start, n);
    a->end = size;
out:
    free(buf);
    return r;
}

struct audit_log *audit_open(const char *path, struct km_error *err)
{
    KM_ASSERT(path != NULL);
    if (err != NULL)
        km_error_clear(err);
    if (path[0] == '\0') {
        km_error_set(err, KM_ERR_INVALID, 0, "the audit log path is empty");
        return NULL;
    }
    struct audit_log *a = xcalloc(1, sizeof(*a));
    a->path = xstrdup(path);
    a->fsync_each_line = true;
    a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (a->fd < 0) {
        int e = errno;
        km_error_set(err, KM_ERR_IO, e, "%s: cannot open the audit log: %s", path, strerror(e));
        goto fail;
    }
    struct stat st;
    if (fstat(a->fd, &st) != 0) {
        int e = errno;
        km_error_set(err, KM_ERR_IO, e, "%s: cannot stat the audit log: %s", path, strerror(e));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        km_error_set(err, KM_ERR_INVALID, 0, "%s: the audit log is not a regular file", path);
        goto fail;
    }
    if (flock(a->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK)
            km_error_set(err, KM_ERR_EXISTS, e,
                         "%s: another process has the audit log open (two writers would break "
                         "its chain)",
                         path);
        else
            km_error_set(err, KM_ERR_IO, e, "%s: cannot lock the audit log: %s", path, strerror(e));
        goto fail;
    }
    if ((st.st_mode & 077) != 0)
        log_warn(LOG_COMP, "%s: the audit log is accessible to others (mode %04o): chmod 600", path,
                 (unsigned)(st.st_mode & 07777));
    if (st.st_size > 0 && continue_chain(a, st.st_size, err) != KM_OK)
        goto fail;
    if (pthread_mutex_init(&a->mu, NULL) != 0 || pthread_mutex_init(&a->sync_mu, NULL) != 0 ||
        pthread_cond_init(&a->synced_cond, NULL) != 0)
        KM_BUG("pthread_mutex_init");
    a->synced = a->seq; /* what an earlier run wrote is as durable as it will get */
    a->failed_from = 1; /* and no failed sync yet (failed_upto 0) */
    log_info(LOG_COMP, "audit log %s opened (%" PRIu64 " lines so far)", path, a->seq);
    return a;

fail:
    if (a->fd >= 0)
        close(a->fd);
    free(a->path);
    free(a);
    return NULL;
}

void audit_set_fsync(struct audit_log *a, bool fsync_each_line)
{
    KM_ASSERT(a != NULL);
    pthread_mutex_lock(&a->mu);
    a->fsync_each_line = fsync_each_line;
    pthread_mutex_unlock(&a->mu);
}

uint64_t audit_last_seq(struct audit_log *a)
{
    KM_ASSERT(a != NULL);
    pthread_mutex_lock(&a->mu);
    uint64_t s = a->seq;
    pthread_mutex_unlock(&a->mu);
    return s;
}

void audit_close(struct audit_log *a)
{
    if (a == NULL)
        return;
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->sync_mu);
    pthread_cond_destroy(&a->synced_cond);
    close(a->fd);
    free(a->path);
    free(a);
}

/* ---- one line ------------------------------------------------------------------ */

/* At most max bytes of s with every byte outside printable ASCII replaced:
 * a caller's string can never break the line or smuggle a control
 * character into a terminal; NULL becomes null. */
static json_t *text_value(const char *s, size_t max)
{
    if (s == NULL)
        return json_null();
    size_t n = strnlen(s, max);
    char *copy = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        copy[i] = ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) ? '?' : s[i];
    json_t *v = json_stringn(copy, n);
    free(copy);
    if (v == NULL)
        KM_BUG("json_stringn");
    return v;
}

static int copy_subject(json_t **out, const json_t *subject, struct km_error *err)
{
    *out = NULL;
    if (subject == NULL) {
        *out = json_object();
        return KM_OK;
    }
    if (!json_is_object(subject))
        return km_error_set(err, KM_ERR_INVALID, 0, "audit: the subject is not an object");
    if (json_object_size(subject) > AUDIT_MAX_SUBJECT_KEYS)
        return km_error_set(err, KM_ERR_INVALID, 0, "audit: the subject has more than %u members",
                            AUDIT_MAX_SUBJECT_KEYS);
    json_t *s = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)subject, key, v)
    {
        json_t *copy = NULL;
        if (!audit_subject_key_valid(key, strlen(key))) {
            json_decref(s);
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "audit: subject member '%.40s' is not [a-z][a-z0-9_]* of at most "
                                "%u bytes",
                                key, AUDIT_MAX_SUBJECT_KEY);
        }
        if (json_is_integer(v) && json_integer_value(v) >= 0)
            copy = json_integer(json_integer_value(v));
        else if (json_is_string(v))
            copy = text_value(json_string_value(v), AUDIT_MAX_ID);
        if (copy == NULL) {
            json_decref(s);
            return km_error_set(err, KM_ERR_INVALID, 0,
                                "audit: subject.%s is neither a string nor a non-negative integer "
                                "(ids only)",
                                key);
        }
        json_object_set_new(s, key, copy);
    }
    *out = s;
    return KM_OK;
}

/* The line for ev with the next seq and the chain hash, followed by "\n";
 * caller holds a->mu. */
static int render(struct audit_log *a, char **line, size_t *len, const struct audit_event *ev,
                  json_t *subject, struct km_error *err)
{
    char time[25], prev[AUDIT_HASH_HEX_LEN + 1];
    clock_format_rfc3339(time, clock_wall_ms());
    hex_encode(prev, sizeof(prev), a->prev, AUDIT_HASH_LEN);

    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer((json_int_t)(a->seq + 1)));
    json_object_set_new(o, "time", json_string(time));
    json_object_set_new(o, "event", json_string(ev->event));
    json_object_set_new(o, "outcome", json_string(ev->outcome));
    json_object_set_new(o, "request_id", text_value(ev->request_id, AUDIT_MAX_ID));
    json_object_set_new(o, "api_key_id", text_value(ev->api_key_id, AUDIT_MAX_ID));
    json_object_set(o, "subject", subject);
    json_object_set_new(o, "detail", text_value(ev->detail, AUDIT_MAX_DETAIL));
    json_object_set_new(o, "prev", json_string(prev));
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    if (text == NULL)
        KM_BUG("json_dumps");
    size_t n = strlen(text);
    if (n > AUDIT_MAX_LINE) {
        free(text);
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "audit: a %s line would be %zu bytes",
                            ev->event, n);
    }
    *line = xrealloc(text, n + 2);
    (*line)[n] = '\n';
    (*line)[n + 1] = '\0';
    *len = n + 1;
    return KM_OK;
}

/* Undoes a partial write so the file ends with a complete line again.
 * Only bytes beyond our own end are removed, and only if they can be ours:
 * a file that shrank or grew by more (rotated under us, another writer)
 * is left alone and the log refuses further lines. */
static bool roll_back(struct audit_log *a, size_t attempted)
{
    struct stat st;
    if (fstat(a->fd, &st) != 0 || st.st_size < a->end ||
        (uint64_t)(st.st_size - a->end) > attempted)
        return false;
    return st.st_size == a->end || ftruncate(a->fd, a->end) == 0;
}

static int write_line(struct audit_log *a, const char *line, size_t len, struct km_error *err)
{
    ssize_t w;
    do {
        w = write(a->fd, line, len);
    } while (w < 0 && errno == EINTR);
    if (w >= 0 && (size_t)w == len)
        return KM_OK;
    int e = w < 0 ? errno : ENOSPC;
    if (!roll_back(a, len)) {
        a->broken = true;
        return km_error_set(err, KM_ERR_IO, e,
                            "%s: audit write failed (%s) and could not be undone: the log "
                            "refuses further lines until it is repaired and reopened",
                            a->path, strerror(e));
    }
    return km_error_set(err, KM_ERR_IO, e, "%s: audit write failed: %s", a->path, strerror(e));
}

/* Returns once line seq is on disk: the first waiter syncs (reading the
 * last seq written just before, so its fdatasync covers every line up to
 * there), the others wait for a sync that covers them. A line a failed sync
 * covered gets that failure, never a later sync's success: after a failed
 * fdatasync the kernel may have dropped the pages it could not write. */
static int wait_synced(struct audit_log *a, uint64_t seq, struct km_error *err)
{
    int r = KM_OK;
    pthread_mutex_lock(&a->sync_mu);
    for (;;) {
        if (seq >= a->failed_from && seq <= a->failed_upto) {
            r = km_error_set(err, KM_ERR_IO, a->failed_errno,
                             "%s: fdatasync of the audit log failed: %s", a->path,
                             strerror(a->failed_errno));
            break;
        }
        if (a->synced >= seq)
            break;
        if (a->syncing) {
            pthread_cond_wait(&a->synced_cond, &a->sync_mu);
            continue;
        }
        a->syncing = true;
        pthread_mutex_lock(&a->mu);
        uint64_t target = a->seq;
        pthread_mutex_unlock(&a->mu);
        pthread_mutex_unlock(&a->sync_mu);
        int rc = fdatasync(a->fd), e = errno;
        pthread_mutex_lock(&a->sync_mu);
        a->syncing = false;
        if (rc == 0) {
            a->synced = target;
        } else {
            a->failed_from = a->synced + 1;
            a->failed_upto = target;
            a->failed_errno = e;
        }
        pthread_cond_broadcast(&a->synced_cond);
    }
    pthread_mutex_unlock(&a->sync_mu);
    return r;
}

int audit_append(struct audit_log *a, const struct audit_event *ev, struct km_error *err)
{
    KM_ASSERT(a != NULL && ev != NULL);
    if (err != NULL)
        km_error_clear(err);
    if (ev->event == NULL || !audit_event_valid(ev->event, strlen(ev->event)))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "audit: event '%.64s' is not a name of [a-z0-9._-] of at most %u "
                            "bytes",
                            ev->event != NULL ? ev->event : "(null)", AUDIT_MAX_EVENT);
    if (ev->outcome == NULL || !audit_outcome_valid(ev->outcome, strlen(ev->outcome)))
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "audit: %s: outcome '%.20s' is not ok, refused or failed", ev->event,
                            ev->outcome != NULL ? ev->outcome : "(null)");
    json_t *subject;
    int r = copy_subject(&subject, ev->subject, err);
    if (r != KM_OK)
        return r;

    char *line = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    bool sync = false;
    pthread_mutex_lock(&a->mu);
    if (a->broken) {
        r = km_error_set(err, KM_ERR_STATE, 0,
                         "%s: the audit log is broken by an earlier failed write; repair it and "
                         "restart",
                         a->path);
        goto out;
    }
    r = render(a, &line, &len, ev, subject, err);
    if (r == KM_OK)
        r = write_line(a, line, len, err);
    if (r != KM_OK)
        goto out;
    a->seq++;
    audit_hash_line(a->prev, (const uint8_t *)line, len - 1);
    a->end += (off_t)len;
    seq = a->seq;
    sync = a->fsync_each_line;
out:
    pthread_mutex_unlock(&a->mu);
    free(line);
    json_decref(subject);
    /* Synced outside mu, so the next line is written meanwhile. */
    if (r == KM_OK && sync)
        r = wait_synced(a, seq, err);
    return r;
}
