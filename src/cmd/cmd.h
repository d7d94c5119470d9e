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

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct client_trust;
struct opts;
struct rest_client;

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

/*
 * A REST client for the gateway at url (rest_client_new). With
 * KEYMELD_CA_FILE set, https:// certificates are verified against the CA
 * certificates of that PEM file instead of the system store (a private
 * or test CA); a file that cannot be read is reported on stderr and the
 * system store stays in use. (dispatch.c)
 */
struct rest_client *cmd_rest_client(const char *url, unsigned timeout_ms);

/* Subcommands. */
int cmd_config(int argc, char **argv);  /* cmd_config.c */
int cmd_enclave(int argc, char **argv); /* cmd_enclave.c */
int cmd_demo(int argc, char **argv);    /* cmd_demo.c */
int cmd_keygen(int argc, char **argv);  /* cmd_session.c */
int cmd_sign(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_attest(int argc, char **argv); /* cmd_attest.c */
int cmd_dev_ca(int argc, char **argv);
int cmd_audit(int argc, char **argv);      /* cmd_audit.c */
int cmd_apikey(int argc, char **argv);     /* cmd_apikey.c */
int cmd_db(int argc, char **argv);         /* cmd_db.c */
int cmd_descriptor(int argc, char **argv); /* cmd_descriptor.c */
int cmd_psbt(int argc, char **argv);       /* cmd_psbt.c */
int cmd_verify(int argc, char **argv);     /* cmd_verify.c */
int cmd_key(int argc, char **argv);        /* cmd_join.c: every party on its own machine */
int cmd_keygen_join(int argc, char **argv);
int cmd_approve(int argc, char **argv);

/*
 * Trust options of the commands that encrypt to enclave keys (keygen,
 * demo), in cmd_attest.c:
 *   --trust-root PEM              default $KEYMELD_TRUST_ROOT, else the AWS root
 *   --pcrs FILE                   default $KEYMELD_PCR_POLICY; required unless
 *   --insecure-skip-attestation   (or KEYMELD_INSECURE_SKIP_ATTESTATION=1, which a
 *                                 PCR policy given in any way overrides)
 */
struct cmd_trust_opts {
    const char *root, *pcrs;
    bool pcrs_flag;     /* --pcrs on the command line */
    bool insecure_flag; /* --insecure-skip-attestation */
    bool env_insecure;  /* KEYMELD_INSECURE_SKIP_ATTESTATION=1 */
};

#define CMD_TRUST_USAGE                                                                            \
    "  --trust-root PEM    pinned attestation root; default $KEYMELD_TRUST_ROOT, else\n"           \
    "                      the AWS Nitro Enclaves Root-G1\n"                                       \
    "  --pcrs FILE         PCR policy the enclaves must match (required); default\n"               \
    "                      $KEYMELD_PCR_POLICY\n"                                                  \
    "  --insecure-skip-attestation\n"                                                              \
    "                      encrypt to enclave keys without verifying them (tests only;\n"          \
    "                      also KEYMELD_INSECURE_SKIP_ATTESTATION=1 when no policy is set)\n"

/* Sets the environment's defaults. */
void cmd_trust_opts_init(struct cmd_trust_opts *t);
/* In an opts_next() loop: true when the current option is one of the three
 * (a missing value sets *bad). */
bool cmd_trust_option(struct opts *o, struct cmd_trust_opts *t, bool *bad);
/* After parsing: false (message printed) for contradicting options. */
bool cmd_trust_check(const struct cmd_trust_opts *t, const char *prog);
/* Loads *out (client_trust_load, or client_trust_insecure with a warning on
 * stderr). Returns CMD_EXIT_OK, or CMD_EXIT_FAIL with the reason printed
 * ("prog: ..."). Release with client_trust_release. */
int cmd_trust_load(struct client_trust *out, const struct cmd_trust_opts *t, const char *prog);

#endif /* KM_CMD_CMD_H */
