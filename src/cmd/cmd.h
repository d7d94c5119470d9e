/*
 * cmd.h - shared pieces of the `keymeld` command line.
 *
 * A subcommand is a function `int cmd_<name>(int argc, char **argv)` whose
 * argv[0] is its own name (e.g. "config"); it returns an exit code. To add
 * one: write src/cmd/cmd_<name>.c, declare it below, add a row to the table
 * in keymeld.c and the file to src/cmd/CMakeLists.txt. Subcommands with
 * their own subcommands (`keymeld config check`) use cmd_dispatch() with a
 * nested table, which gives them `--help` for free.
 *
 * Output: results on stdout, usage errors on stderr.
 */
#ifndef KM_CMD_CMD_H
#define KM_CMD_CMD_H

#include <stddef.h>
#include <stdio.h>

enum cmd_exit {
    CMD_EXIT_OK = 0,    /* success */
    CMD_EXIT_FAIL = 1,  /* the operation ran and failed (e.g. invalid configuration) */
    CMD_EXIT_USAGE = 2, /* bad command line */
};

struct cmd_entry {
    const char *name;
    const char *args;    /* synopsis of the arguments, e.g. "[--config FILE]" */
    const char *summary; /* one line for the help listing */
    int (*run)(int argc, char **argv);
};

/*
 * Runs the entry of table named by argv[1]; prog is the command so far
 * ("keymeld", "keymeld config") for messages. With no argument, or with
 * -h/--help/help, prints the listing (stdout for help, stderr otherwise).
 * Returns the entry's exit code, or CMD_EXIT_USAGE.
 */
int cmd_dispatch(const char *prog, const struct cmd_entry *table, size_t n, int argc, char **argv);

/* Prints "usage: prog <command>" and the table's listing to out. */
void cmd_print_listing(FILE *out, const char *prog, const struct cmd_entry *table, size_t n);

/* 1 if s is -h, --help or help. */
int cmd_is_help(const char *s);

/* Subcommands. */
int cmd_config(int argc, char **argv);  /* cmd_config.c */
int cmd_enclave(int argc, char **argv); /* cmd_enclave.c */
int cmd_demo(int argc, char **argv);    /* cmd_demo.c */
int cmd_keygen(int argc, char **argv);  /* cmd_session.c */
int cmd_sign(int argc, char **argv);
int cmd_status(int argc, char **argv);

#endif /* KM_CMD_CMD_H */
