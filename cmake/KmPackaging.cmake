# Installation and Debian packages (docs/INTEGRATION.md "Using the C
# library"). Three install components, one .deb each:
#
#   bin  keymeld                 keymeld, keymeld-gateway, keymeld-enclave
#   lib  libkeymeld-client<N>    libkeymeld-client.so.<N> (N = soname major)
#   dev  libkeymeld-client-dev   headers, the .so link, keymeld-client.pc
#
# The library and its headers are installed by src/client/CMakeLists.txt.
#   cmake --install build --prefix DIR    (make install PREFIX=DIR)
#   cd build && cpack -G DEB
include(GNUInstallDirs)

install(TARGETS keymeld keymeld-gateway keymeld-enclave
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT bin)

# keymeld-client.pc names the prefix, which is known only at install time
# (`cmake --install --prefix`, cpack's /usr): everything else is filled in
# now, the prefix when the file is written into the install tree.
set(KM_PC_PREFIX "@KM_PC_PREFIX@")
configure_file(cmake/keymeld-client.pc.in keymeld-client.pc.in @ONLY)
install(CODE "
  set(KM_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(pc \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/keymeld-client.pc\")
  message(STATUS \"Installing: \$ENV{DESTDIR}\${pc}\")
  configure_file(\"${PROJECT_BINARY_DIR}/keymeld-client.pc.in\" \"\$ENV{DESTDIR}\${pc}\" @ONLY)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\$ENV{DESTDIR}\${pc}\")"
  COMPONENT dev)

# ---- CPack: Debian packages ---------------------------------------------
set(KM_PACKAGE_CONTACT "The KeyMeld developers <keymeld@invalid>" CACHE STRING
    "Maintainer field of the Debian packages")

set(CPACK_PACKAGE_NAME keymeld)
set(CPACK_PACKAGE_VENDOR "The KeyMeld developers")
set(CPACK_PACKAGE_CONTACT "${KM_PACKAGE_CONTACT}")
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
# Per package below: name, section, description (its first line is the
# summary), dependencies beyond those dpkg-shlibdeps finds.

set(CPACK_DEBIAN_BIN_PACKAGE_NAME keymeld)
set(CPACK_DEBIAN_BIN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_BIN_DESCRIPTION
  "distributed MuSig2 (BIP-327) Bitcoin signing service
The keymeld command line, the keymeld-gateway REST service and the
keymeld-enclave signer.")

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libkeymeld-client${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
# A shlibs file (only the lib package holds a shared object): programs
# built against this version need at least this version, since new symbols
# only ever come with a new version.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_LIB_DESCRIPTION
  "KeyMeld client library
The participant side of the KeyMeld MuSig2 signing service: session secret,
ECIES to attested enclave keys, session encryption, approvals, the REST
client and the keygen and signing flows.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libkeymeld-client-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DEPENDS lib)
# keymeld-client.pc requires these (its headers include <jansson.h> and
# <secp256k1.h>; pkg-config wants every Requires.private module too).
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "libjansson-dev, libsecp256k1-dev, libssl-dev, libcurl4-openssl-dev | libcurl-dev")
set(CPACK_DEBIAN_DEV_DESCRIPTION
  "KeyMeld client library: development files
Headers (include/keymeld/), the libkeymeld-client.so link and the
keymeld-client pkg-config file.")

include(CPack)
