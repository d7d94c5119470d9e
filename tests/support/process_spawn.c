#include "process_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/xmalloc.h"
#include "common/banned.h"

extern char **environ;

static bool dropped(const char *var, const char *const *prefixes)
{
    for (size_t i = 0; prefixes != NULL && prefixes[i] != NULL; i++)
        if (strncmp(var, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* Built before fork: the child may only make async-signal-safe calls. */
static char **child_environment(const char *const *extra, const char *const *drop)
{
    size_t n = 0, m = 0;
    while (environ[n] != NULL)
        n++;
    while (extra != NULL && extra[m] != NULL)
        m++;
    char **envp = XALLOC_ARRAY(char *, n + m + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!dropped(environ[i], drop))
            envp[k++] = environ[i];
    for (size_t i = 0; i < m; i++)
        envp[k++] = (char *)(uintptr_t)extra[i];
    envp[k] = NULL;
    return envp;
}

pid_t spawn_process(const char *exe, char *const argv[], const char *const *extra_env,
                    const char *const *drop_prefixes, const char *log_path, bool append)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
    int log_fd = open(log_path, flags, 0600);
    if (log_fd < 0)
        return -1;
    char **envp = child_environment(extra_env, drop_prefixes);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
            _exit(125);
        if (dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
            _exit(126);
        execve(exe, argv, envp);
        _exit(127);
    }
    int saved = errno;
    close(log_fd);
    free(envp);
    errno = saved;
    return pid;
}
