/*
 * opts.h - option parsing for `keymeld` subcommands: "--name VALUE",
 * "--name=VALUE" and flags, plus checked numbers. Every subcommand walks
 * argv once with opts_next(); unknown options are usage errors.
 */
#ifndef KM_CMD_OPTS_H
#define KM_CMD_OPTS_H

#include <stdbool.h>
#include <stdint.h>

struct opts {
    int argc;
    char **argv;
    int i;               /* next index */
    const char *prog;    /* "keymeld demo", for messages */
    const char *value;   /* value of the last option matched with a value */
    const char *operand; /* a non-option argument, when opts_next returns OPT_OPERAND */
};

enum opt_result {
    OPT_END = 0,
    OPT_OPERAND, /* a positional argument in o->operand */
    OPT_OPTION,  /* an option: test it with opts_is / opts_flag */
};

void opts_init(struct opts *o, const char *prog, int argc, char **argv);
enum opt_result opts_next(struct opts *o);

/* The current option is `name` taking a value (sets o->value). A missing
 * value is reported and sets *bad. */
bool opts_value(struct opts *o, const char *name, bool *bad);
/* The current option is the flag `name` (or its short form, may be NULL). */
bool opts_flag(struct opts *o, const char *name, const char *short_name);
/* The current option, for "unknown option" messages. */
const char *opts_current(const struct opts *o);

/* Parses o->value as an integer in [min, max]; prints an error naming the
 * option and returns false otherwise. */
bool opts_uint(const struct opts *o, const char *name, uint64_t min, uint64_t max, uint64_t *out);

#endif /* KM_CMD_OPTS_H */
