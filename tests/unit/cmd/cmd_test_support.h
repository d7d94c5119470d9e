/*
 * cmd_test_support.h - runs the built `keymeld` binary
 * ($KEYMELD_TEST_BUILD_DIR/src/cmd/keymeld) as a child process and
 * captures its exit code and output, for the unit.cmd.* tests.
 */
#ifndef KM_TESTS_CMD_TEST_SUPPORT_H
#define KM_TESTS_CMD_TEST_SUPPORT_H

#include <stdbool.h>
#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

/* Most arguments cmd_run passes after the binary's name. */
#define CMD_MAX_ARGS 24

struct run {
    int status; /* exit code, or -1 if it did not exit normally */
    char *out;  /* stdout, malloc'd */
    char *err;  /* stderr, malloc'd */
};

/* The source tree ($KEYMELD_SOURCE_DIR); fails the test when unset. */
const char *cmd_source_dir(void);

/* Makes and opens an empty temporary file, its name into path (cap bytes);
 * returns the descriptor (fails the test on error). */
int cmd_temp_file(char *path, size_t cap);

/*
 * Runs keymeld with args (NULL-terminated, at most CMD_MAX_ARGS), stdin
 * from in_path (NULL: /dev/null), in the source directory if in_source_dir
 * (else in this process's), with exactly the environment vars
 * (NULL-terminated "NAME=VALUE", NULL: none) plus the sanitizer options of
 * this process, so the child sees no stray KEYMELD_*. Waits for it; free
 * the result with run_free.
 */
struct run cmd_run(const char *const *args, const char *const *vars, const char *in_path,
                   bool in_source_dir);

/* cmd_run in two halves, for a command that runs while the test goes on
 * (e.g. a party waiting for the others): cmd_start forks it, cmd_finish
 * waits for it and collects its outputs. */
struct cmd_bg {
    pid_t pid;
    char out_path[64], err_path[64];
};
void cmd_start(struct cmd_bg *b, const char *const *args, const char *const *vars,
               const char *in_path, bool in_source_dir);
struct run cmd_finish(struct cmd_bg *b);

/* Frees the output of r. */
void run_free(struct run *r);

/* Fails the test, showing both outputs, unless r exited with status; then
 * checks that stdout contains out_needle and stderr err_needle (each
 * unless NULL). */
void cmd_expect(const struct run *r, int status, const char *out_needle, const char *err_needle);

/* The bytes of line `line` (from 0) of text, which must be hex; malloc'ed,
 * *len bytes. Fails the test otherwise. */
uint8_t *cmd_hex_line(const char *text, size_t line, size_t *len);

#endif /* KM_TESTS_CMD_TEST_SUPPORT_H */
