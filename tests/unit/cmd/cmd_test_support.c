/*
 * cmd_test_support.c - see cmd_test_support.h.
 */
#include "cmd_test_support.h"

#include "test.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/hex.h"
#include "common/banned.h"

/* The keymeld binary under $KEYMELD_TEST_BUILD_DIR; fails the test when
 * that is unset. */
static const char *binary(void)
{
    static char path[4096];
    const char *dir = getenv("KEYMELD_TEST_BUILD_DIR");
    if (dir == NULL || dir[0] == '\0')
        fail_msg("KEYMELD_TEST_BUILD_DIR is not set (run the test through ctest)");
    snprintf(path, sizeof(path), "%s/src/cmd/keymeld", dir);
    return path;
}

const char *cmd_source_dir(void)
{
    const char *dir = getenv("KEYMELD_SOURCE_DIR");
    if (dir == NULL || dir[0] == '\0')
        fail_msg("KEYMELD_SOURCE_DIR is not set (run the test through ctest)");
    return dir;
}

int cmd_temp_file(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/km_test_cmd_XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    return fd;
}

/* Fills argv (CMD_MAX_ARGS + 2 slots) with the binary, args and NULL. */
static void build_argv(char **argv, const char *const *args)
{
    size_t n = 0;
    argv[n++] = (char *)(uintptr_t)binary();
    for (size_t i = 0; args[i] != NULL; i++) {
        CHECK(n <= CMD_MAX_ARGS);
        argv[n++] = (char *)(uintptr_t)args[i];
    }
    argv[n] = NULL;
}

/* Fills envp (24 slots) with vars (at most 20) and this process's
 * sanitizer options, then NULL. */
static void build_envp(char **envp, const char *const *vars)
{
    static const char *const keep[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};
    static char kept[3][1024];
    size_t m = 0;
    for (size_t i = 0; vars && vars[i] != NULL && m < 20; i++)
        envp[m++] = (char *)(uintptr_t)vars[i];
    for (size_t i = 0; i < KM_ARRAY_LEN(keep); i++) {
        const char *v = getenv(keep[i]);
        if (v != NULL) {
            snprintf(kept[i], sizeof(kept[i]), "%s=%s", keep[i], v);
            envp[m++] = kept[i];
        }
    }
    envp[m] = NULL;
}

/* In the child: redirects 0, 1, 2, changes to dir (NULL: stays) and execs
 * argv; never returns. */
static void exec_child(char **argv, char **envp, const char *dir, const char *in_path, int out_fd,
                       int err_fd)
{
    if ((dir != NULL && chdir(dir) != 0) || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
        _exit(126);
    int in_fd = open(in_path ? in_path : "/dev/null", O_RDONLY);
    if (in_fd < 0 || dup2(in_fd, 0) < 0)
        _exit(126);
    execve(argv[0], argv, envp);
    _exit(127);
}

/* Reads the file at path into a malloc'd string and removes it. */
static char *take_file(const char *path)
{
    char *s = test_read_file(path, NULL);
    unlink(path);
    return s;
}

void cmd_start(struct cmd_bg *b, const char *const *args, const char *const *vars,
               const char *in_path, bool in_source_dir)
{
    int out_fd = cmd_temp_file(b->out_path, sizeof(b->out_path));
    int err_fd = cmd_temp_file(b->err_path, sizeof(b->err_path));
    char *argv[CMD_MAX_ARGS + 2], *envp[24];
    build_argv(argv, args);
    build_envp(envp, vars);
    const char *dir = in_source_dir ? cmd_source_dir() : NULL;
    b->pid = fork();
    CHECK(b->pid >= 0);
    if (b->pid == 0)
        exec_child(argv, envp, dir, in_path, out_fd, err_fd);
    close(out_fd);
    close(err_fd);
}

struct run cmd_finish(struct cmd_bg *b)
{
    int st;
    CHECK(waitpid(b->pid, &st, 0) == b->pid);
    struct run r = {.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1};
    r.out = take_file(b->out_path);
    r.err = take_file(b->err_path);
    return r;
}

struct run cmd_run(const char *const *args, const char *const *vars, const char *in_path,
                   bool in_source_dir)
{
    struct cmd_bg b;
    cmd_start(&b, args, vars, in_path, in_source_dir);
    return cmd_finish(&b);
}

void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

void cmd_expect(const struct run *r, int status, const char *out_needle, const char *err_needle)
{
    if (r->status != status)
        fail_msg("exit %d, expected %d\nstdout:\n%s\nstderr:\n%s", r->status, status, r->out,
                 r->err);
    if (out_needle != NULL)
        CHECK_CONTAINS(r->out, out_needle);
    if (err_needle != NULL)
        CHECK_CONTAINS(r->err, err_needle);
}

uint8_t *cmd_hex_line(const char *text, size_t line, size_t *len)
{
    for (size_t i = 0; i < line; i++) {
        text = strchr(text, '\n');
        CHECK_NOT_NULL(text);
        text++;
    }
    size_t hexlen = strcspn(text, "\n");
    uint8_t *raw = malloc(hexlen / 2 + 1);
    CHECK_NOT_NULL(raw);
    CHECK_OK(hex_decode(raw, hexlen / 2 + 1, len, text, hexlen));
    return raw;
}
