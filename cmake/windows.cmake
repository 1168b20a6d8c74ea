# cmake/windows.cmake: the Windows cross build (README "Windows"), included by CMakeLists.txt
# when CMAKE_SYSTEM_NAME is Windows (toolchain cmake/mingw-w64-x86_64.cmake). Builds Lua 5.4
# and libevent 2.1 from Debian's source packages (cmake/win-deps.sh, cached in
# ${LUADGRAM_WIN_DEPS}), then a static luadgramd.exe from the shared daemon code with the
# *_win.c platform layer in place of the *_linux.c one, and luadgramd-win64.zip with the
# scripts and the default configuration. No tests are registered here: the Linux build's
# ctest runs windows/smoke (spec/windows/smoke.sh) under Wine.
set(LUADGRAM_WIN_DEPS "${CMAKE_BINARY_DIR}/deps" CACHE PATH "Lua/libevent for Windows")
execute_process(COMMAND bash ${CMAKE_SOURCE_DIR}/cmake/win-deps.sh ${LUADGRAM_WIN_DEPS}
                RESULT_VARIABLE deps_rc)
if(NOT deps_rc EQUAL 0)
  message(FATAL_ERROR "building Lua and libevent for Windows failed (cmake/win-deps.sh)")
endif()
set(EV "${LUADGRAM_WIN_DEPS}/prefix/libevent")

# The Linux build's warnings, and -Werror with LUADGRAM_WERROR as there (windows/build passes
# the Linux build's setting on). Lua and lua-cjson are Debian's code, built with -w.
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes)
if(LUADGRAM_WERROR)
  add_compile_options(-Werror)
endif()
add_compile_definitions(_WIN32_WINNT=0x0A00 WIN32_LEAN_AND_MEAN __USE_MINGW_ANSI_STDIO=1 _POSIX_THREAD_SAFE_FUNCTIONS
  LUADGRAM_VERSION="${PROJECT_VERSION}" LUADGRAM_DATADIR="." LUADGRAM_SYSCONFDIR="conf")

file(GLOB LUA_SOURCES ${LUADGRAM_WIN_DEPS}/prefix/lua/src/*.c)
list(FILTER LUA_SOURCES EXCLUDE REGEX "/(lua|luac|onelua|linit)\\.c$")
set(CJSON ${LUADGRAM_WIN_DEPS}/prefix/cjson)
add_library(lua54 STATIC ${LUA_SOURCES} win/linit_win.c
  ${CJSON}/lua_cjson.c ${CJSON}/strbuf.c ${CJSON}/fpconv.c)
target_compile_definitions(lua54 PUBLIC LUA_COMPAT_5_3)
target_compile_options(lua54 PRIVATE -w)
target_include_directories(lua54 PUBLIC ${LUADGRAM_WIN_DEPS}/prefix/lua/src PRIVATE ${CJSON})

# SNMPv3 USM (libcrypto), MIB names (libsmi) and the NATS/Redis outputs (libnats, hiredis,
# zlib): none of these libraries is cross-built here (cmake/win-deps.sh builds Lua, libevent
# and lua-cjson only): their stubs go in, the snmptrap handler refuses `users` and `mibs`
# at init, and luadgram.nats / luadgram.redis raise (cmake/features.cmake).
option(LUADGRAM_USM "SNMPv3 USM (needs OpenSSL libcrypto: not in the Windows build)" OFF)
option(LUADGRAM_MIBS "MIB names (needs libsmi: not in the Windows build)" OFF)
option(LUADGRAM_OUTPUTS "NATS/Redis outputs (need libnats, hiredis: not in the Windows build)"
       OFF)
if(LUADGRAM_USM OR LUADGRAM_MIBS OR LUADGRAM_OUTPUTS)
  message(FATAL_ERROR "LUADGRAM_USM, LUADGRAM_MIBS and LUADGRAM_OUTPUTS need libcrypto, "
          "libsmi, libnats and hiredis, which the Windows build does not build "
          "(cmake/win-deps.sh): leave them OFF")
endif()
file(GLOB CORE_SOURCES CONFIGURE_DEPENDS daemon/*.c daemon/codec/*.c bindings/*.c)
# The Linux-only files: the *_linux.c platform layer, systemd's notify and watchdog (their
# no-op *_win.c stand in).
list(FILTER CORE_SOURCES EXCLUDE REGEX "(_linux\\.c|/main\\.c|/notify\\.c|/sdwatch\\.c)$")
luadgram_feature_sources(CORE_SOURCES)
add_executable(luadgramd ${CORE_SOURCES} daemon/main.c)
set_source_files_properties(daemon/main.c PROPERTIES COMPILE_DEFINITIONS main=luadgramd_main)
target_include_directories(luadgramd PRIVATE win/include daemon daemon/codec bindings ${EV}/include)
target_link_libraries(luadgramd PRIVATE lua54 ${EV}/lib/libevent_extra.a ${EV}/lib/libevent_core.a
  ws2_32 mswsock iphlpapi advapi32)
target_link_options(luadgramd PRIVATE -static)

# luadgramd-win64.zip: luadgramd/{luadgramd.exe, conf/, scripts/}; run from that folder as
# `luadgramd.exe` (default configuration conf\luadgramd.conf, which finds ..\scripts).
set(ZIP_ROOT ${CMAKE_BINARY_DIR}/zip/luadgramd)
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/luadgramd-win64.zip
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${CMAKE_BINARY_DIR}/zip
  COMMAND ${CMAKE_COMMAND} -E make_directory ${ZIP_ROOT}
  COMMAND ${CMAKE_COMMAND} -E copy $<TARGET_FILE:luadgramd> ${ZIP_ROOT}/
  COMMAND ${CMAKE_COMMAND} -E copy_directory ${CMAKE_SOURCE_DIR}/scripts ${ZIP_ROOT}/scripts
  COMMAND ${CMAKE_COMMAND} -E copy_directory ${CMAKE_SOURCE_DIR}/conf ${ZIP_ROOT}/conf
  COMMAND ${CMAKE_COMMAND} -E rm -f ${CMAKE_BINARY_DIR}/luadgramd-win64.zip
  COMMAND ${CMAKE_COMMAND} -E chdir ${CMAKE_BINARY_DIR}/zip
          zip -q -r ${CMAKE_BINARY_DIR}/luadgramd-win64.zip luadgramd
  DEPENDS luadgramd
  COMMENT "luadgramd-win64.zip")
add_custom_target(luadgramd_zip ALL DEPENDS ${CMAKE_BINARY_DIR}/luadgramd-win64.zip)
