#!/usr/bin/env bash
# bench/snmp/capture.sh: captures the SNMPv2c trap that net-snmp's snmptrap sends (a linkDown
# with five interface bindings, as a switch sends it) into bench/snmp/trap_v2c.bin, the
# payload that section_snmp replays with loadgen; with "v3", the same trap as SNMPv3 authPriv
# SHA-256/AES from engine 80001f888062656e6368 user "bench" (bench/snmp/trap_v3.bin, for
# section_snmpv3; traps have no replay protection, so one message replayed is a fair load).
# Run it again only to change the payload.
# Needs snmptrap (Debian `snmp`), lua5.4 and lua-socket; talks to 127.0.0.1 only.
#   bench/snmp/capture.sh [OUT [v3]]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VERSION=${2:-v2c}
OUT=${1:-$HERE/trap_$VERSION.bin}
SECURITY=(-v 2c -c public)
if [[ $VERSION == v3 ]]; then
    SECURITY=(-v 3 -e 80001f888062656e6368 -u bench -l authPriv -a SHA-256 -A bench-auth-pass
              -x AES -X bench-priv-pass)
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# A one-shot UDP receiver on an ephemeral port: prints the port, writes the first datagram.
lua5.4 - "$OUT" >"$TMP/port" <<'LUA' &
local socket = require "socket"
local s = assert(socket.udp4())
assert(s:setsockname("127.0.0.1", 0))
local _, port = s:getsockname()
io.write(port, "\n") io.flush()
s:settimeout(5)
local data = assert(s:receive())
local f = assert(io.open(arg[1], "wb"))
f:write(data) f:close()
LUA
RECV=$!
for _ in $(seq 50); do [[ -s $TMP/port ]] && break; sleep 0.1; done
PORT=$(cat "$TMP/port")

mkdir -p "$TMP/conf" "$TMP/persist"
# -On and numeric OIDs: no MIB files needed. Fixed uptime, so the capture is repeatable but
# for the request-id.
env MIBS= SNMPCONFPATH="$TMP/conf" SNMP_PERSISTENT_DIR="$TMP/persist" \
  snmptrap "${SECURITY[@]}" -On -M /dev/null "127.0.0.1:$PORT" 123456789 \
    1.3.6.1.6.3.1.1.5.3 \
    1.3.6.1.2.1.2.2.1.1.17 i 17 \
    1.3.6.1.2.1.2.2.1.7.17 i 1 \
    1.3.6.1.2.1.2.2.1.8.17 i 2 \
    1.3.6.1.2.1.2.2.1.2.17 s "GigabitEthernet1/0/17" \
    1.3.6.1.2.1.31.1.1.1.18.17 s "uplink to core-sw2 port 48"
wait "$RECV"
echo "wrote $(stat -c %s "$OUT") bytes to $OUT"
