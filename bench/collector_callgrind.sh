#!/usr/bin/env bash
# bench/collector_callgrind.sh: user-space instructions per datagram of a collector's default
# path (scripts/syslog.lua or scripts/snmptrap.lua writing a file), by callgrind: luadgramd
# (one worker, under valgrind) gets COUNT datagrams at RATE/s from bench's loadgen (syslog:
# the 200-byte lines of bench/syslog/payload.sh; snmptrap: bench/snmp/trap_v2c.bin) and is
# stopped once the file holds them. Prints callgrind's "Collected" total; run it with two
# counts and divide the difference by the difference of the counts (start-up cancels out).
# RATE (default 500/s: the daemon under valgrind idles between datagrams, so its batches,
# and the instructions per datagram, do not depend on the machine's load).
# SCRIPTS is the scripts folder to measure (a checkout's scripts/, or an older one).
#   bench/collector_callgrind.sh SCRIPTS syslog|syslogfwd|snmptrap COUNT
# syslogfwd: syslog with forward beside the file, to a python3 socket that reads and drops.
# BUILD (default build) is the build folder holding luadgramd and bench/loadgen.
set -euo pipefail
scripts=$(realpath "${1:?usage: collector_callgrind.sh SCRIPTS syslog|syslogfwd|snmptrap COUNT}")
kind=${2:?kind}; count=${3:?count}
[[ $count =~ ^[0-9]+$ && $count -le 1000000 ]] || { echo "COUNT: 0..1000000" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath "${BUILD:-$src/build}")
work=$(mktemp -d)
drain=
trap 'rm -rf "$work"; [ -z "$drain" ] || kill "$drain" 2>/dev/null' EXIT
free_port() {
  python3 -c "import socket
s = socket.socket(socket.AF_INET, socket.$1)
s.bind(('127.0.0.1', 0))
print(s.getsockname()[1])"
}
# Fails with the daemon's log when it is gone.
check_alive() {
  kill -0 "$pid" 2>/dev/null && return 0
  echo "luadgramd exited:" >&2
  tail -n 20 "$work/log" >&2
  exit 1
}
port=$(free_port SOCK_DGRAM); mport=$(free_port SOCK_STREAM)
file="file = { path = \"$work/out.jsonl\", flush_interval = 0.2, buffer_size = 65536 }"
case $kind in
  syslog) handler=syslog opts=$file ;;
  syslogfwd)
    handler=syslog fport=$(free_port SOCK_DGRAM)
    opts="$file, forward = \"127.0.0.1:$fport\""
    python3 -c "import socket,sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8388608)
s.bind(('127.0.0.1', $fport))
s.settimeout(120)
while True: s.recv(65535)" 2>/dev/null &
    drain=$! ;;
  snmptrap) handler=snmptrap opts="communities = { \"public\" }, $file" ;;
  *) echo "kind: syslog, syslogfwd or snmptrap" >&2; exit 2 ;;
esac
if [ "$handler" = syslog ]; then
  bash "$src/bench/syslog/payload.sh" 1000 "$work/payload.txt"
  payload=(--payload "$work/payload.txt" --payload-lines)
else
  payload=(--payload "$src/bench/snmp/trap_v2c.bin")
fi
cat > "$work/luadgramd.conf" <<CONF
workers = 1
log_level = "info"
metrics = "127.0.0.1:$mport"
script_path = "$scripts"
listen "bench" {
  bind = "127.0.0.1:$port", handler = "$handler",
  recv = { batch = 64, size = 65535, rcvbuf = 8388608 },
  options = { $opts },
}
CONF
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$build/luadgramd" \
  -c "$work/luadgramd.conf" > "$work/log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  check_alive
  curl -sf "http://127.0.0.1:$mport/metrics" >/dev/null && break
  sleep 0.1
done
if [ "$count" -gt 0 ]; then
  "$build/bench/loadgen" --to "127.0.0.1:$port" --count "$count" --rate "${RATE:-500}" \
    "${payload[@]}" >/dev/null
fi
for _ in $(seq 600); do
  check_alive
  [ -f "$work/out.jsonl" ] && [ "$(wc -l < "$work/out.jsonl")" -ge "$count" ] && break
  sleep 0.2
done
kill -TERM "$pid"
wait "$pid" || true
echo "$kind $count lines=$(wc -l < "$work/out.jsonl") $(grep -o 'Collected : [0-9]*' "$work/log")"
