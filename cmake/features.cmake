# cmake/features.cmake: the parts of the daemon that depend on a library the build may not
# have, each behind an option and a stub (README "Windows"). Included by CMakeLists.txt (the
# Linux build, where both are required) and cmake/windows.cmake (the Windows cross build,
# which builds neither library: both OFF).
#   LUADGRAM_USM:  SNMPv3 USM: daemon/codec/snmp_usm.c over OpenSSL's libcrypto, and the
#                  engine's state file daemon/engine_state.c. Without it:
#                  daemon/codec/snmp_usm_none.c and daemon/engine_state_none.c, and the
#                  snmptrap handler refuses `users` at init (usm_unavailable()).
#   LUADGRAM_MIBS: MIB names: daemon/codec/mib.c over libsmi. Without it:
#                  daemon/codec/mib_none.c, and the snmptrap handler refuses `mibs` at init
#                  (mib_unavailable()).
#   LUADGRAM_OUTPUTS: the outputs to NATS JetStream and Redis Streams: daemon/output/ over
#                  libnats, hiredis and zlib, and bindings/publish.c (luadgram.nats /
#                  luadgram.redis). Without it: bindings/publish_none.c, whose luadgram.nats
#                  and luadgram.redis raise, so a handler or a collector sink asking for one
#                  fails at init naming its listen (README "Outputs").

# Removes from the list variable `var` the files of the features left out, and the stubs of
# the ones built.
function(luadgram_feature_sources var)
  set(srcs ${${var}})
  if(LUADGRAM_USM)
    list(FILTER srcs EXCLUDE REGEX "/(snmp_usm|engine_state)_none\\.c$")
  else()
    list(FILTER srcs EXCLUDE REGEX "/(snmp_usm|engine_state)\\.c$")
  endif()
  if(LUADGRAM_MIBS)
    list(FILTER srcs EXCLUDE REGEX "/mib_none\\.c$")
  else()
    list(FILTER srcs EXCLUDE REGEX "/codec/mib\\.c$")
  endif()
  if(LUADGRAM_OUTPUTS)
    list(FILTER srcs EXCLUDE REGEX "/publish_none\\.c$")
  else()
    list(FILTER srcs EXCLUDE REGEX "(/daemon/output/[^/]*|/bindings/publish)\\.c$")
  endif()
  set(${var} ${srcs} PARENT_SCOPE)
endfunction()
