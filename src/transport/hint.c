#include "transport/hint.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/banned.h"

static char *hint_vsock_nodev(char *out, size_t cap, const struct tp_addr *a, const char *var,
                              bool development)
{
    if (a->cid >= 3 && development) {
        snprintf(out, cap,
                 "hint: CID %u is a guest CID, which does not exist in local development; use "
                 "CID 2 for all enclaves in development (config/development.yaml), check %s_CID "
                 "is not set, then restart the services",
                 a->cid, var);
    } else if (a->cid >= 3) {
        snprintf(out, cap,
                 "hint: no enclave has CID %u; AWS assigns CIDs at start-up: read EnclaveCID "
                 "from `nitro-cli describe-enclaves` and export %s_CID",
                 a->cid, var);
    } else {
        snprintf(out, cap,
                 "hint: VSock device unavailable: check `lsmod | grep vsock` (vsock, "
                 "vsock_loopback, vhost_vsock) and `ls -la /dev/vsock`, or use transport: tcp "
                 "(config/development-tcp.yaml)");
    }
    return out;
}

/* Loopback names and IP literals: no Kubernetes service behind them. */
static bool host_is_local(const char *host)
{
    if (strcmp(host, "localhost") == 0 || strchr(host, ':') != NULL)
        return true;
    for (const char *p = host; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            return false;
    }
    return true;
}

char *tp_error_hint(char *out, size_t outcap, const struct km_error *err,
                    const struct tp_addr *addr, int enclave_index, bool development)
{
    char var[48];
    if (enclave_index >= 0)
        snprintf(var, sizeof(var), "KEYMELD_ENCLAVE_%d", enclave_index);
    else
        snprintf(var, sizeof(var), "KEYMELD_ENCLAVE_<N>");
    out[0] = '\0';

    if (err->code == KM_ERR_RESOLVE) {
        snprintf(out, outcap,
                 "hint: ensure the service name matches tcp_host ('%s') or set %s_TCP_HOST; check "
                 "DNS: kubectl run -it --rm debug --image=busybox -- nslookup %s",
                 addr->host, var, addr->host);
        return out;
    }
    if (err->code == KM_ERR_TOO_LARGE) {
        snprintf(out, outcap,
                 "hint: a message exceeded max_message_size_bytes; both ends must use the same "
                 "limit");
        return out;
    }

    switch (err->sys_errno) {
    case ENODEV:
    case EHOSTUNREACH:
    case ENETUNREACH:
        if (addr->kind == TP_KIND_VSOCK)
            return hint_vsock_nodev(out, outcap, addr, var, development);
        snprintf(out, outcap, "hint: no route to the enclave host; check tcp_host and the network");
        break;
    case EAFNOSUPPORT:
        snprintf(out, outcap,
                 "hint: this kernel has no VSock support; load the vsock modules or use "
                 "transport: tcp (config/development-tcp.yaml, or %s_TRANSPORT=tcp)",
                 var);
        break;
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
        if (addr->kind == TP_KIND_VSOCK)
            snprintf(out, outcap,
                     "hint: enclave not listening yet on port %u: check it is running (grep "
                     "\"VSock server listening\" logs/enclave-*.log) and the port matches",
                     addr->port);
        else if (addr->kind == TP_KIND_TCP && host_is_local(addr->host))
            snprintf(out, outcap,
                     "hint: enclave not listening yet at %s:%u: check the enclave process runs "
                     "with TRANSPORT_MODE=tcp and VSOCK_PORT=%u (grep \"TCP server listening\" "
                     "logs/enclave-*.log), or that the socat bridge for it is up",
                     addr->host, addr->port, addr->port);
        else if (addr->kind == TP_KIND_TCP)
            snprintf(out, outcap,
                     "hint: enclave not listening yet at %s:%u: check the enclave (or its socat "
                     "bridge / Kubernetes service) is running: kubectl get pods; kubectl logs "
                     "<pod> -c vsock-proxy; kubectl get svc %s",
                     addr->host, addr->port, addr->host);
        else
            snprintf(out, outcap, "hint: enclave not listening yet on %s: check it is running",
                     addr->path);
        break;
    case ETIMEDOUT:
        snprintf(out, outcap,
                 "hint: no answer before the deadline: check the enclave is running and %s; "
                 "raise enclaves.vsock_timeout_secs only if it is just slow",
                 addr->kind == TP_KIND_VSOCK ? "its CID and port are right"
                                             : "its address is right");
        break;
    case ENOENT:
        if (addr->kind == TP_KIND_UNIX)
            snprintf(out, outcap,
                     "hint: no socket at %s: is the enclave started with UNIX_PATH=%s?", addr->path,
                     addr->path);
        break;
    default:
        break;
    }
    return out;
}
