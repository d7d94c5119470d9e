#!/usr/bin/env bash
# install.library: `cmake --install` into a temporary prefix, then the
# installed C library used as a wallet's build uses it (docs/INTEGRATION.md
# "Using the C library"):
#  - the files: the three binaries, libkeymeld-client.so.VERSION and its
#    soname links, the headers under include/keymeld/, keymeld-client.pc;
#  - the library: soname libkeymeld-client.so.MAJOR, no RUNPATH, only
#    system libraries needed;
#  - its ABI: the dynamic symbols are exactly the functions the installed
#    headers declare (gcc -aux-info) and the schema objects their inline
#    codecs use (PROTO_CODEC), all in the version node KEYMELD_CLIENT_*;
#  - every installed header compiles on its own (C11, -Wpedantic -Werror):
#    no header it includes was left out;
#  - examples/ builds through pkg-config, links the installed .so and its
#    offline checks pass (BIP-327 aggregate key).
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need pkg-config "Debian package pkg-config"
need readelf "Debian package binutils"
need nm "Debian package binutils"
need gcc "Debian package gcc"
need make "Debian package make"

CC=${CC:-cc}
STRICT=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
MAJOR=${VERSION%%.*}
PREFIX=$TMP/prefix
INC=$PREFIX/include/keymeld

if out=$(cmake --install "$BUILD" --prefix "$PREFIX" 2>&1); then
    ok "cmake --install $BUILD --prefix $PREFIX"
else
    bad "cmake --install: $out"
    finish
fi

# ---- files ----------------------------------------------------------------
for b in keymeld keymeld-gateway keymeld-enclave; do
    if [[ -x $PREFIX/bin/$b ]]; then ok "bin/$b"; else bad "bin/$b not installed"; fi
done
pc=$(find "$PREFIX" -name keymeld-client.pc)
if [[ -z $pc ]]; then
    bad "keymeld-client.pc not installed"
    finish
fi
LIBDIR=$(dirname "$(dirname "$pc")")
ok "keymeld-client.pc in ${LIBDIR#"$PREFIX"/}/pkgconfig"
LIB=$LIBDIR/libkeymeld-client.so.$VERSION
if [[ -f $LIB && ! -L $LIB ]]; then ok "libkeymeld-client.so.$VERSION"; else bad "no $LIB"; finish; fi
expect_eq "libkeymeld-client.so.$MAJOR -> the library" "libkeymeld-client.so.$VERSION" \
    "$(readlink "$LIBDIR/libkeymeld-client.so.$MAJOR" || true)"
expect_eq "libkeymeld-client.so -> the soname" "libkeymeld-client.so.$MAJOR" \
    "$(readlink "$LIBDIR/libkeymeld-client.so" || true)"
for f in "$SRC"/src/client/*.h; do
    [[ $f == *_internal.h ]] && continue # not part of the API
    h=client/$(basename "$f")
    if cmp -s "$f" "$INC/$h"; then ok "include/keymeld/$h"; else bad "include/keymeld/$h missing or stale"; fi
done

# ---- the shared library ---------------------------------------------------
dyn=$(readelf -d "$LIB")
expect_eq "soname" "libkeymeld-client.so.$MAJOR" \
    "$(sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p' <<< "$dyn")"
if grep -qE '\((RPATH|RUNPATH)\)' <<< "$dyn"; then bad "RPATH/RUNPATH in the installed library"; else ok "no RUNPATH"; fi
system='^(libc|libm|libpthread|libdl|ld-linux[-a-z0-9_]*|libcrypto|libssl|libsecp256k1|libjansson|libcurl)\.so'
needed=$(sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' <<< "$dyn")
others=$(grep -vE "$system" <<< "$needed" || true)
if [[ -z $others ]]; then
    ok "needs system libraries only: $(tr '\n' ' ' <<< "$needed")"
else
    bad "needs non-system libraries: $others"
fi

# ---- ABI: exported symbols == what the installed headers declare ---------
(cd "$INC" && find . -name '*.h' | sed 's,^\./,,' | sort) > "$TMP/headers"
sed 's/.*/#include "&"/' "$TMP/headers" > "$TMP/all.c"
if out=$(gcc "${STRICT[@]}" -I"$INC" -fsyntax-only -aux-info "$TMP/aux" "$TMP/all.c" 2>&1); then
    grep -F "/* $INC/" "$TMP/aux" | grep -v '\*/ static ' |
        sed -E 's,^/\*[^*]*\*/ *,,; s/ *\(.*//' | grep -oE '[A-Za-z_][A-Za-z0-9_]*$' |
        sort -u > "$TMP/declared"
else
    bad "gcc -aux-info over every installed header: $out"
    : > "$TMP/declared"
fi
grep -rh '^PROTO_CODEC(' "$INC" |
    sed -nE 's/^PROTO_CODEC\(([a-z0-9_]+)\).*/proto_\1_schema/p' | sort -u > "$TMP/declared_objects"
nm -D --defined-only "$LIB" > "$TMP/nm"
awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' "$TMP/nm" | sort -u > "$TMP/exported"
awk '$2 ~ /^[DRB]$/ { sub(/@.*/, "", $3); print $3 }' "$TMP/nm" | sort -u > "$TMP/exported_objects"
missing=$(comm -23 "$TMP/declared" "$TMP/exported" | tr '\n' ' ')
extra=$(comm -13 "$TMP/declared" "$TMP/exported" | tr '\n' ' ')
if [[ -s $TMP/declared && -z $missing && -z $extra ]]; then
    ok "exports exactly the $(wc -l < "$TMP/declared") functions of the installed headers"
else
    [[ -z $missing ]] || bad "declared in an installed header but not exported (cmake/keymeld-client.map): $missing"
    [[ -z $extra ]] || bad "exported but not in an installed header (internal symbols leak): $extra"
fi
missing=$(comm -23 "$TMP/declared_objects" "$TMP/exported_objects" | tr '\n' ' ')
extra=$(comm -13 "$TMP/declared_objects" "$TMP/exported_objects" | tr '\n' ' ')
if [[ -z $missing && -z $extra ]]; then
    ok "exports exactly the $(wc -l < "$TMP/declared_objects") schema objects of PROTO_CODEC"
else
    [[ -z $missing ]] || bad "schema objects not exported: $missing"
    [[ -z $extra ]] || bad "objects exported but not declared: $extra"
fi
unversioned=$(awk '$2 ~ /^[TDRB]$/ && $3 !~ /@@KEYMELD_CLIENT_/ { print $3 }' "$TMP/nm" | tr '\n' ' ')
if [[ -z $unversioned ]]; then ok "every symbol in a KEYMELD_CLIENT_* version node"; else bad "unversioned: $unversioned"; fi

# ---- headers, pkg-config, the example -------------------------------------
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
expect_eq "pkg-config --modversion" "$VERSION" "$(pkg-config --modversion keymeld-client 2>&1)"
cflags=$(pkg-config --cflags keymeld-client 2>&1) || bad "pkg-config --cflags: $cflags"
libs=$(pkg-config --libs keymeld-client 2>&1) || bad "pkg-config --libs: $libs"
expect_contains "Cflags" "-I$INC" "$cflags"
expect_contains "Libs" "-L$LIBDIR -lkeymeld-client" "$libs"

read -ra cflags_a <<< "$cflags"
while IFS= read -r h; do
    printf '#include "%s"\n' "$h" > "$TMP/one.c"
    if out=$("$CC" "${STRICT[@]}" "${cflags_a[@]}" -fsyntax-only "$TMP/one.c" 2>&1); then
        ok "#include \"$h\" compiles alone"
    else
        bad "#include \"$h\": $out"
    fi
done < "$TMP/headers"

if out=$(make -s -C "$SRC/examples" OUT="$TMP" CC="$CC" CFLAGS="-O2 -g ${STRICT[*]}" 2>&1); then
    ok "examples/ built with pkg-config"
else
    bad "examples/ build: $out"
    finish
fi
EX=$TMP/keymeld_example
expect_contains "example needs the soname" "[libkeymeld-client.so.$MAJOR]" "$(readelf -d "$EX")"
expect_contains "example loads the installed library" "$LIBDIR/libkeymeld-client.so.$MAJOR" \
    "$(LD_LIBRARY_PATH=$LIBDIR ldd "$EX")"
if out=$(LD_LIBRARY_PATH=$LIBDIR "$EX" 2>&1); then ok "keymeld_example (offline)"; else bad "keymeld_example: $out"; fi
expect_contains "BIP-327 aggregate key" \
    "aggregate x-only key: 69bc22bfa5d106306e48a20679de1d7389386124d07571d0d872686028c26a3e" "$out"
expect_contains "every offline check" "keymeld_example: all checks passed" "$out"
rc=0
LD_LIBRARY_PATH=$LIBDIR "$EX" --bogus > /dev/null 2>&1 || rc=$?
expect_eq "usage error exit status" 2 "$rc"

finish
