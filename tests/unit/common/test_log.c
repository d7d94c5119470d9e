#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/banned.h"

static char *log_to_temp(enum log_format fmt, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "/tmp/km_test_log_XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    struct km_error err;
    CHECK_OK(log_configure(LOG_LEVEL_DEBUG, fmt, path, &err));
    return path;
}

static void test_json_line_has_fields_and_escapes(void **state)
{
    (void)state;
    char path[64];
    log_to_temp(LOG_FORMAT_JSON, path, sizeof(path));
    log_context_set("request_id", "r-1");
    log_info_f("transport",
               ((struct log_field[]){LOG_STR("endpoint", "tcp://h:1"), LOG_INT("latency_ms", 12)}),
               2, "connected to \"%s\"\nnext", "peer");
    log_trace("transport", "filtered out");
    log_context_clear();
    log_shutdown();

    char *text = test_read_file(path, NULL);
    CHECK_CONTAINS(text, "\"level\":\"info\"");
    CHECK_CONTAINS(text, "\"component\":\"transport\"");
    CHECK_CONTAINS(text, "\"message\":\"connected to \\\"peer\\\"\\u000anext\"");
    CHECK_CONTAINS(text, "\"fields\":{\"request_id\":\"r-1\",\"endpoint\":\"tcp://h:1\","
                         "\"latency_ms\":12}");
    CHECK(strstr(text, "filtered out") == NULL);
    /* One event, one line. */
    CHECK_EQ(strchr(text, '\n'), text + strlen(text) - 1);
    free(text);
    unlink(path);
}

static void test_pretty_line(void **state)
{
    (void)state;
    char path[64];
    log_to_temp(LOG_FORMAT_PRETTY, path, sizeof(path));
    log_warn("config", "bad value\rx");
    log_shutdown();
    char *text = test_read_file(path, NULL);
    CHECK_CONTAINS(text, " WARN config: bad value?x\n");
    free(text);
    unlink(path);
}

static void test_parse_levels_and_formats(void **state)
{
    (void)state;
    enum log_level l;
    enum log_format f;
    CHECK_OK(log_level_parse(&l, "DEBUG"));
    CHECK_EQ(l, LOG_LEVEL_DEBUG);
    CHECK_OK(log_level_parse(&l, "warning"));
    CHECK_EQ(l, LOG_LEVEL_WARN);
    CHECK_ERR(log_level_parse(&l, "loud"), KM_ERR_INVALID);
    CHECK_OK(log_format_parse(&f, "json"));
    CHECK_EQ(f, LOG_FORMAT_JSON);
    CHECK_ERR(log_format_parse(&f, "xml"), KM_ERR_INVALID);

    struct km_error err;
    CHECK_ERR(log_configure(LOG_LEVEL_INFO, LOG_FORMAT_PRETTY, "/nonexistent/dir/x.log", &err),
              KM_ERR_IO);
    CHECK_CONTAINS(err.msg, "/nonexistent/dir/x.log");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_json_line_has_fields_and_escapes),
        TEST(test_pretty_line),
        TEST(test_parse_levels_and_formats),
    };
    return RUN_TESTS("common.log", tests);
}
