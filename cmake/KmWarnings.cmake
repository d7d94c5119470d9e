# Warning set shared by every target (STYLE.md rule 39).
set(KM_WARNINGS
    -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wold-style-definition -Wundef -Wcast-align -Wcast-qual -Wvla
    -Wwrite-strings -Wformat=2 -Wformat-security -Wimplicit-fallthrough
    -Wnull-dereference -Wpointer-arith -Wswitch-enum -Wno-switch-enum)
add_compile_options(${KM_WARNINGS})
if(KM_WERROR)
  add_compile_options(-Werror)
endif()

# Stricter conversion warnings for the pure byte-level modules, added per
# target with km_strict_conversions(<target>).
function(km_strict_conversions target)
  target_compile_options(${target} PRIVATE -Wconversion -Wsign-conversion)
endfunction()
