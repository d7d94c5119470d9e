/*
 * process_spawn.h - starts a KeyMeld process for a test or benchmark.
 *
 * The child's environment is the parent's minus the variables that would
 * change how the process under test is configured (drop_prefixes), plus
 * extra_env; stdout and stderr go to a log file. The child is sent
 * SIGTERM when the thread that spawned it dies (PR_SET_PDEATHSIG), so a
 * test killed half-way does not leave enclaves or gateways behind. Spawn
 * from the thread that lives for the whole test (normally main).
 */
#ifndef KM_TESTS_PROCESS_SPAWN_H
#define KM_TESTS_PROCESS_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Starts exe (argv[0] is its name as shown by ps). extra_env and
 * drop_prefixes are NULL-terminated and may be NULL; an inherited
 * "NAME=value" is left out when it starts with one of drop_prefixes
 * (e.g. "KEYMELD_" or "TRANSPORT_MODE="). The log is created 0600 and
 * truncated, or appended to when append is true.
 * Returns the pid, or -1 with errno set when the log cannot be opened or
 * fork fails. A failed exec shows as exit status 127.
 */
pid_t spawn_process(const char *exe, char *const argv[], const char *const *extra_env,
                    const char *const *drop_prefixes, const char *log_path, bool append);

#endif /* KM_TESTS_PROCESS_SPAWN_H */
