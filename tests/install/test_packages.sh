#!/usr/bin/env bash
# install.packages: `cpack -G DEB` into a temporary directory
# (docs/INTEGRATION.md "Debian packages"), then, with dpkg-deb:
#  - exactly three packages: keymeld, libkeymeld-client<MAJOR> and
#    libkeymeld-client-dev, VERSION, this machine's architecture;
#  - each holds its files and nothing of the others' (dpkg-deb -c);
#  - dependencies: dpkg-shlibdeps' for the binaries and the library, the
#    library (= VERSION) and the -dev packages the .pc needs for -dev;
#  - the library's shlibs file, and a keymeld-client.pc with prefix=/usr;
#  - lib + dev unpacked into a directory are enough to build and run
#    examples/ (pkg-config with PKG_CONFIG_SYSROOT_DIR).
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need cpack "Debian package cmake"
need dpkg-deb "Debian package dpkg"
need dpkg-shlibdeps "Debian package dpkg-dev"
need file "Debian package file: CPack's shlibdeps step runs it"
need pkg-config "Debian package pkg-config"

MAJOR=${VERSION%%.*}
LIBDIR=${KEYMELD_INSTALL_LIBDIR:-lib}
ARCH=$(dpkg --print-architecture)
OUT=$TMP/packages
BIN_DEB=$OUT/keymeld_${VERSION}_$ARCH.deb
LIB_DEB=$OUT/libkeymeld-client${MAJOR}_${VERSION}_$ARCH.deb
DEV_DEB=$OUT/libkeymeld-client-dev_${VERSION}_$ARCH.deb

if out=$(cd "$TMP" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$OUT" 2>&1); then
    ok "cpack -G DEB"
else
    bad "cpack -G DEB: $out"
    finish
fi
expect_eq "the packages" \
    "$(printf '%s\n' "$BIN_DEB" "$DEV_DEB" "$LIB_DEB" | sort)" \
    "$(find "$OUT" -maxdepth 1 -name '*.deb' | sort)"
for deb in "$BIN_DEB" "$LIB_DEB" "$DEV_DEB"; do
    [[ -f $deb ]] || finish
done

# files DEB: the paths in the package (symlinks as "path -> target")
files() {
    dpkg-deb -c "$1" | awk '$1 !~ /^d/ { $1 = $2 = $3 = $4 = $5 = ""; sub(/^ +/, ""); print }'
}
# expect_files DEB WANT... : exactly these (sorted) paths
expect_files() {
    local deb=$1
    shift
    expect_eq "$(basename "$deb") contents" "$(printf '%s\n' "$@" | sort)" "$(files "$deb" | sort)"
}

expect_files "$BIN_DEB" ./usr/bin/keymeld ./usr/bin/keymeld-enclave ./usr/bin/keymeld-gateway
expect_files "$LIB_DEB" "./usr/$LIBDIR/libkeymeld-client.so.$VERSION" \
    "./usr/$LIBDIR/libkeymeld-client.so.$MAJOR -> libkeymeld-client.so.$VERSION"
mapfile -t headers < <(cd "$BUILD" && cmake --install . --prefix "$TMP/prefix" --component dev > /dev/null &&
    cd "$TMP/prefix" && find include -name '*.h' | sed 's,^,./usr/,')
if ((${#headers[@]} >= 5)); then ok "${#headers[@]} installed headers"; else bad "headers: ${headers[*]}"; fi
expect_files "$DEV_DEB" "${headers[@]}" "./usr/$LIBDIR/pkgconfig/keymeld-client.pc" \
    "./usr/$LIBDIR/libkeymeld-client.so -> libkeymeld-client.so.$MAJOR"

# ---- control fields -------------------------------------------------------
field() { dpkg-deb -f "$1" "$2"; }
for deb in "$BIN_DEB" "$LIB_DEB" "$DEV_DEB"; do
    expect_eq "$(basename "$deb") Version" "$VERSION" "$(field "$deb" Version)"
    expect_eq "$(basename "$deb") Architecture" "$ARCH" "$(field "$deb" Architecture)"
done
deps=$(field "$BIN_DEB" Depends)
for d in libc6 libsecp256k1 libssl3 libjansson4 libcurl4 libmicrohttpd libsqlite3 libpq5; do
    expect_contains "keymeld Depends $d" "$d" "$deps"
done
deps=$(field "$LIB_DEB" Depends)
for d in libc6 libsecp256k1 libssl3 libjansson4 libcurl4; do
    expect_contains "libkeymeld-client$MAJOR Depends $d" "$d" "$deps"
done
for d in libsqlite3 libpq5 libmicrohttpd; do
    if [[ $deps == *"$d"* ]]; then bad "libkeymeld-client$MAJOR depends on $d"; else ok "library without $d"; fi
done
deps=$(field "$DEV_DEB" Depends)
for d in "libkeymeld-client$MAJOR (= $VERSION)" libjansson-dev libsecp256k1-dev libssl-dev libcurl; do
    expect_contains "libkeymeld-client-dev Depends $d" "$d" "$deps"
done
expect_eq "shlibs" "libkeymeld-client $MAJOR libkeymeld-client$MAJOR (>= $VERSION)" \
    "$(dpkg-deb -I "$LIB_DEB" shlibs 2>&1)"

# ---- lib + dev are enough to build against --------------------------------
ROOT=$TMP/root
dpkg-deb -x "$LIB_DEB" "$ROOT"
dpkg-deb -x "$DEV_DEB" "$ROOT"
expect_eq "keymeld-client.pc prefix" "prefix=/usr" \
    "$(grep '^prefix=' "$ROOT/usr/$LIBDIR/pkgconfig/keymeld-client.pc")"
export PKG_CONFIG_PATH=$ROOT/usr/$LIBDIR/pkgconfig PKG_CONFIG_SYSROOT_DIR=$ROOT
if out=$(make -s -C "$SRC/examples" OUT="$TMP" 2>&1); then
    ok "examples/ built against the unpacked packages"
    if out=$(LD_LIBRARY_PATH=$ROOT/usr/$LIBDIR "$TMP/keymeld_example" 2>&1); then
        ok "keymeld_example with the packaged library"
    else
        bad "keymeld_example: $out"
    fi
else
    bad "examples/ build: $out"
fi

finish
