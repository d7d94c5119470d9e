#!/usr/bin/env bash
# checksrc.sh - project rules clang-format cannot check (docs/CODING_STYLE.md).
#  1. every .c file under src/, tests/, fuzz/, bench/ includes common/banned.h
#     (fuzz/replay_main.c and test support are exempt: they are harnesses);
#  2. no banned function appears outside banned.h;
#  3. no AF_VSOCK connect() outside src/transport (the build machines must
#     never connect a VSock socket; only the transport knows how).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
status=0

while IFS= read -r f; do
    case "$f" in
        fuzz/replay_main.c|tests/support/*) continue ;;
    esac
    if ! grep -q '#include "common/banned.h"' "$f"; then
        echo "$f: missing #include \"common/banned.h\""
        status=1
    fi
done < <(git ls-files 'src/*.c' 'tests/*.c' 'fuzz/*.c' 'bench/*.c')

banned='\b(strcpy|strcat|strncpy|sprintf|vsprintf|gets|strtok|atoi|atol|gmtime|localtime|ctime|mktemp|tmpnam)[[:space:]]*\('
if git ls-files '*.c' '*.h' | grep -v 'src/common/banned.h' | xargs grep -nE "$banned" ; then
    echo "checksrc: banned function used (see src/common/banned.h)"
    status=1
fi

# VSock sockets are created only by the transport module (and bound, never
# connected, by its tests): DESIGN.md §4 machine safety.
if git ls-files '*.c' '*.h' | grep -vE '^(src/transport/|tests/unit/transport/)' \
        | xargs grep -n 'AF_VSOCK' ; then
    echo "checksrc: AF_VSOCK outside src/transport"
    status=1
fi

exit $status
