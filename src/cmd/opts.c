#include "cmd/opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/banned.h"

void opts_init(struct opts *o, const char *prog, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->prog = prog;
    o->argc = argc;
    o->argv = argv;
    o->i = 1; /* argv[0] is the subcommand itself */
}

enum opt_result opts_next(struct opts *o)
{
    o->value = o->operand = NULL;
    if (o->i >= o->argc)
        return OPT_END;
    const char *a = o->argv[o->i];
    if (a[0] != '-' || strcmp(a, "-") == 0) {
        o->operand = a;
        o->i++;
        return OPT_OPERAND;
    }
    return OPT_OPTION;
}

const char *opts_current(const struct opts *o)
{
    return o->i < o->argc ? o->argv[o->i] : "";
}

bool opts_value(struct opts *o, const char *name, bool *bad)
{
    const char *a = o->argv[o->i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return false;
    if (a[n] == '=') {
        o->value = a + n + 1;
        o->i++;
        return true;
    }
    if (a[n] != '\0')
        return false;
    if (o->i + 1 >= o->argc) {
        fprintf(stderr, "%s: %s needs a value\n", o->prog, name);
        *bad = true;
        o->i++;
        return true;
    }
    o->value = o->argv[o->i + 1];
    o->i += 2;
    return true;
}

bool opts_flag(struct opts *o, const char *name, const char *short_name)
{
    const char *a = o->argv[o->i];
    if (strcmp(a, name) == 0 || (short_name != NULL && strcmp(a, short_name) == 0)) {
        o->i++;
        return true;
    }
    return false;
}

bool opts_uint(const struct opts *o, const char *name, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *v = o->value ? o->value : "";
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || n < min || n > max) {
        fprintf(stderr, "%s: %s must be a whole number %llu..%llu, not '%.40s'\n", o->prog, name,
                (unsigned long long)min, (unsigned long long)max, v);
        return false;
    }
    *out = n;
    return true;
}
