#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/banned.h"

#define LOG_LINE_MAX    8192
#define LOG_MSG_MAX     2048
#define LOG_CTX_MAX     4
#define LOG_CTX_KEY_MAX 32
#define LOG_CTX_VAL_MAX 64

static atomic_int log_level_cur = LOG_LEVEL_INFO;
static enum log_format log_format_cur = LOG_FORMAT_PRETTY;
static int log_file_fd = -1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

struct log_ctx_entry {
    char key[LOG_CTX_KEY_MAX];
    char val[LOG_CTX_VAL_MAX];
};
static _Thread_local struct log_ctx_entry log_ctx[LOG_CTX_MAX];

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "off"};

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level > LOG_LEVEL_OFF)
        return "?";
    return level_names[level];
}

int log_level_parse(enum log_level *out, const char *s)
{
    for (int i = LOG_LEVEL_TRACE; i <= LOG_LEVEL_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return KM_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = LOG_LEVEL_WARN;
        return KM_OK;
    }
    return KM_ERR_INVALID;
}

int log_format_parse(enum log_format *out, const char *s)
{
    if (strcasecmp(s, "pretty") == 0 || strcasecmp(s, "compact") == 0 ||
        strcasecmp(s, "text") == 0) {
        *out = LOG_FORMAT_PRETTY;
        return KM_OK;
    }
    if (strcasecmp(s, "json") == 0) {
        *out = LOG_FORMAT_JSON;
        return KM_OK;
    }
    return KM_ERR_INVALID;
}

int log_configure(enum log_level level, enum log_format format, const char *file_path,
                  struct km_error *err)
{
    int r = KM_OK;
    pthread_mutex_lock(&log_lock);
    atomic_store(&log_level_cur, (int)level);
    log_format_cur = format;
    if (log_file_fd >= 0) {
        close(log_file_fd);
        log_file_fd = -1;
    }
    if (file_path != NULL && file_path[0] != '\0') {
        int fd = open(file_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0)
            r = km_error_set(err, KM_ERR_IO, errno, "cannot open log file '%s': %s", file_path,
                             strerror(errno));
        else
            log_file_fd = fd;
    }
    pthread_mutex_unlock(&log_lock);
    return r;
}

void log_set_level(enum log_level level)
{
    atomic_store(&log_level_cur, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&log_level_cur);
}

bool log_enabled(enum log_level level)
{
    return level != LOG_LEVEL_OFF && (int)level >= atomic_load(&log_level_cur);
}

void log_shutdown(void)
{
    pthread_mutex_lock(&log_lock);
    if (log_file_fd >= 0)
        close(log_file_fd);
    log_file_fd = -1;
    pthread_mutex_unlock(&log_lock);
}

void log_context_set(const char *key, const char *value)
{
    struct log_ctx_entry *slot = NULL;
    for (int i = 0; i < LOG_CTX_MAX; i++) {
        if (strcmp(log_ctx[i].key, key) == 0) {
            slot = &log_ctx[i];
            break;
        }
        if (slot == NULL && log_ctx[i].key[0] == '\0')
            slot = &log_ctx[i];
    }
    if (slot == NULL)
        return;
    if (value == NULL) {
        slot->key[0] = '\0';
        return;
    }
    snprintf(slot->key, sizeof(slot->key), "%s", key);
    snprintf(slot->val, sizeof(slot->val), "%s", value);
}

void log_context_clear(void)
{
    memset(log_ctx, 0, sizeof(log_ctx));
}

/* A bounded line under construction; overflow truncates silently. */
struct line {
    char buf[LOG_LINE_MAX];
    size_t len;
};

static void line_putc(struct line *l, char c)
{
    if (l->len < sizeof(l->buf) - 2)
        l->buf[l->len++] = c;
}

static void line_puts(struct line *l, const char *s)
{
    while (*s)
        line_putc(l, *s++);
}

static void line_printf(struct line *l, const char *fmt, ...) KM_PRINTF(2, 3);
static void line_printf(struct line *l, const char *fmt, ...)
{
    size_t room = sizeof(l->buf) - 2 - l->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, room + 1, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n < room ? (size_t)n : room;
}

/* JSON string body: escapes quotes, backslashes and control characters. */
static void line_put_json_str(struct line *l, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            line_putc(l, '\\');
            line_putc(l, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            line_printf(l, "\\u%04x", c);
        } else {
            line_putc(l, (char)c);
        }
    }
}

/* Pretty text: control characters become '?' so a value cannot break the
 * one-line-per-event rule. */
static void line_put_plain(struct line *l, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        line_putc(l, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
    }
}

static void line_put_field_json(struct line *l, bool *first, const char *key,
                                const struct log_field *f, const char *ctxval)
{
    line_puts(l, *first ? "\"" : ",\"");
    *first = false;
    line_put_json_str(l, key);
    line_puts(l, "\":");
    if (f != NULL && f->kind == LOG_FIELD_INT) {
        line_printf(l, "%lld", f->num);
        return;
    }
    line_putc(l, '"');
    line_put_json_str(l, ctxval ? ctxval : (f->str ? f->str : ""));
    line_putc(l, '"');
}

static void line_put_field_plain(struct line *l, const char *key, const struct log_field *f,
                                 const char *ctxval)
{
    line_putc(l, ' ');
    line_put_plain(l, key);
    line_putc(l, '=');
    if (f != NULL && f->kind == LOG_FIELD_INT)
        line_printf(l, "%lld", f->num);
    else
        line_put_plain(l, ctxval ? ctxval : (f->str ? f->str : ""));
}

static const char *log_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void log_format_json(struct line *l, const char *ts, enum log_level level,
                            const char *component, const char *msg, const char *file, int lineno,
                            const struct log_field *fields, size_t nfields)
{
    line_printf(l, "{\"time\":\"%s\",\"level\":\"%s\",\"component\":\"", ts, log_level_name(level));
    line_put_json_str(l, component);
    line_puts(l, "\",\"message\":\"");
    line_put_json_str(l, msg);
    line_puts(l, "\",\"fields\":{");
    bool first = true;
    for (int i = 0; i < LOG_CTX_MAX; i++) {
        if (log_ctx[i].key[0])
            line_put_field_json(l, &first, log_ctx[i].key, NULL, log_ctx[i].val);
    }
    for (size_t i = 0; i < nfields; i++)
        line_put_field_json(l, &first, fields[i].key, &fields[i], NULL);
    line_printf(l, "},\"src\":\"%s:%d\"}", log_basename(file), lineno);
}

static void log_format_pretty(struct line *l, const char *ts, enum log_level level,
                              const char *component, const char *msg,
                              const struct log_field *fields, size_t nfields)
{
    static const char *const tags[] = {"TRACE", "DEBUG", " INFO", " WARN", "ERROR", "  OFF"};
    line_printf(l, "%s %s %s: ", ts, tags[level], component);
    line_put_plain(l, msg);
    for (int i = 0; i < LOG_CTX_MAX; i++) {
        if (log_ctx[i].key[0])
            line_put_field_plain(l, log_ctx[i].key, NULL, log_ctx[i].val);
    }
    for (size_t i = 0; i < nfields; i++)
        line_put_field_plain(l, fields[i].key, &fields[i], NULL);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report a logging failure */
        }
        p += w;
        n -= (size_t)w;
    }
}

void log_write(enum log_level level, const char *component, const char *file, int lineno,
               const struct log_field *fields, size_t nfields, const char *fmt, ...)
{
    if ((unsigned)level >= LOG_LEVEL_OFF)
        return;
    int saved_errno = errno;
    char msg[LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    char ts[25];
    clock_format_rfc3339(ts, clock_wall_ms());

    static _Thread_local struct line l;
    l.len = 0;
    pthread_mutex_lock(&log_lock);
    if (log_format_cur == LOG_FORMAT_JSON)
        log_format_json(&l, ts, level, component, msg, file, lineno, fields, nfields);
    else
        log_format_pretty(&l, ts, level, component, msg, fields, nfields);
    l.buf[l.len++] = '\n';
    write_all(STDERR_FILENO, l.buf, l.len);
    if (log_file_fd >= 0)
        write_all(log_file_fd, l.buf, l.len);
    pthread_mutex_unlock(&log_lock);
    errno = saved_errno;
}
