/*
 * log.h - leveled logging in two formats.
 *
 * Pretty (development):  2026-11-24T15:17:48.123Z  INFO transport: message key=value
 * JSON lines (production): {"time":"...","level":"info","component":"transport",
 *                           "message":"...","fields":{"key":"value"},"src":"file.c:42"}
 *
 * Output goes to stderr and, when configured, also appended to a file. Each
 * line is written with a single write() under a lock, so lines from
 * different threads never interleave.
 *
 * Rules (docs/CODING_STYLE.md): messages are lower case with no final
 * period; peer-supplied strings are truncated (%.100s); secrets are never
 * logged. Control characters in messages and field values are escaped, so a
 * peer cannot forge log lines.
 *
 * Per-thread context fields (log_context_set) are added to every line the
 * thread writes: the gateway sets "request_id" for the duration of a request.
 */
#ifndef KM_COMMON_LOG_H
#define KM_COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

enum log_level {
    LOG_LEVEL_TRACE = 0,
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVEL_ERROR,
    LOG_LEVEL_OFF,
};

enum log_format {
    LOG_FORMAT_PRETTY = 0,
    LOG_FORMAT_JSON,
};

enum log_field_kind {
    LOG_FIELD_STR,
    LOG_FIELD_INT,
};

/* A structured field. Build with LOG_STR / LOG_INT. */
struct log_field {
    const char *key;
    enum log_field_kind kind;
    const char *str;
    long long num;
};

#define LOG_STR(k, v) ((struct log_field){.key = (k), .kind = LOG_FIELD_STR, .str = (v)})
#define LOG_INT(k, v) ((struct log_field){.key = (k), .kind = LOG_FIELD_INT, .num = (long long)(v)})

/* Configures the process logger. file_path may be NULL (stderr only). When
 * a file is given it is opened for appending (created 0640); failure to open
 * it returns KM_ERR_IO with the path and cause in *err and leaves stderr
 * logging in place. May be called again to reconfigure. */
int log_configure(enum log_level level, enum log_format format, const char *file_path,
                  struct km_error *err) KM_WUR;

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
bool log_enabled(enum log_level level);

/* Closes the log file, if any. */
void log_shutdown(void);

/* Parse "trace|debug|info|warn|warning|error|off" and "pretty|json"
 * (case-insensitive). Return KM_OK or KM_ERR_INVALID. */
int log_level_parse(enum log_level *out, const char *s) KM_WUR;
int log_format_parse(enum log_format *out, const char *s) KM_WUR;
const char *log_level_name(enum log_level level);

/* Sets (or with value NULL removes) a context field for the calling thread.
 * Values longer than 63 bytes are truncated; at most 4 keys. */
void log_context_set(const char *key, const char *value);
void log_context_clear(void);

/* The primitive behind the macros. */
void log_write(enum log_level level, const char *component, const char *file, int line,
               const struct log_field *fields, size_t nfields, const char *fmt, ...)
    KM_PRINTF(7, 8);

#define LOG_AT_(lvl, comp, fields, nfields, ...)                                                   \
    do {                                                                                           \
        if (log_enabled(lvl))                                                                      \
            log_write((lvl), (comp), __FILE__, __LINE__, (fields), (nfields), __VA_ARGS__);        \
    } while (0)

#define log_trace(comp, ...) LOG_AT_(LOG_LEVEL_TRACE, comp, NULL, 0, __VA_ARGS__)
#define log_debug(comp, ...) LOG_AT_(LOG_LEVEL_DEBUG, comp, NULL, 0, __VA_ARGS__)
#define log_info(comp, ...)  LOG_AT_(LOG_LEVEL_INFO, comp, NULL, 0, __VA_ARGS__)
#define log_warn(comp, ...)  LOG_AT_(LOG_LEVEL_WARN, comp, NULL, 0, __VA_ARGS__)
#define log_error(comp, ...) LOG_AT_(LOG_LEVEL_ERROR, comp, NULL, 0, __VA_ARGS__)

/* With structured fields: log_info_f("pool", ((struct log_field[]){
 *     LOG_STR("endpoint", addr), LOG_INT("latency_ms", ms)}), 2, "connected"); */
#define log_debug_f(comp, f, n, ...) LOG_AT_(LOG_LEVEL_DEBUG, comp, f, n, __VA_ARGS__)
#define log_info_f(comp, f, n, ...)  LOG_AT_(LOG_LEVEL_INFO, comp, f, n, __VA_ARGS__)
#define log_warn_f(comp, f, n, ...)  LOG_AT_(LOG_LEVEL_WARN, comp, f, n, __VA_ARGS__)
#define log_error_f(comp, f, n, ...) LOG_AT_(LOG_LEVEL_ERROR, comp, f, n, __VA_ARGS__)

#endif /* KM_COMMON_LOG_H */
