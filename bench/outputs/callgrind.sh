#!/usr/bin/env bash
# bench/outputs/callgrind.sh: user-space instructions per record (callgrind, all threads) of
# luadgramd's syslog collector publishing through a sink (bench/outputs/luadgramd.conf) and
# of rsyslogd (imudp, omhiredis: bench/outputs/rsyslog.conf.in), on the 200-byte lines of
# bench/syslog/payload.sh sent at RATE/s (default 500: the receiver idles between
# datagrams, so its batches, and the count, do not depend on the machine's load). Owns a
# temporary folder with a one-node nats-server (JetStream) and a redis-server on ephemeral
# loopback ports, stopped by their pids at exit. Prints "KIND COUNT INSTRUCTIONS stored=N";
# run with two counts and divide the difference by the difference of the counts (start-up
# cancels out), as bench/collector_callgrind.sh.
#   bench/outputs/callgrind.sh nats|redis|rsyslog COUNT...
# BUILD (default build-bench2) holds luadgramd, nats_stream and bench/loadgen.
set -euo pipefail
kind=${1:?usage: callgrind.sh nats|redis|rsyslog COUNT...}; shift
[[ $kind == nats || $kind == redis || $kind == rsyslog ]] || { echo "kind: nats, redis or rsyslog" >&2; exit 2; }
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(realpath "${BUILD:-$src/build-bench2}")
rate=${RATE:-500}
work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() {
  python3 -c "import socket
s = socket.socket(socket.AF_INET, socket.$1)
s.bind(('127.0.0.1', 0))
print(s.getsockname()[1])"
}
# wait_for SECONDS CMD...: runs CMD every 0.1 s until it succeeds; fails after SECONDS.
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do ((SECONDS < end)) || return 1; sleep 0.1; done
}
# wait_count TARGET SECONDS CMD...: until CMD prints TARGET.
wait_count() {
  local target=$1 end=$((SECONDS + $2)); shift 2
  until [[ $("$@") == "$target" ]]; do
    ((SECONDS < end)) || { echo "stored $("$@") of $target" >&2; return 1; }
    sleep 0.1
  done
}
nport=$(free_port SOCK_STREAM); rport=$(free_port SOCK_STREAM)
printf 'server_name: n1\nlisten: 127.0.0.1:%d\njetstream { store_dir: "%s/js" }\n' \
  "$nport" "$work" >"$work/nats.conf"
nats-server -c "$work/nats.conf" >"$work/nats.log" 2>&1 &
pids+=($!)
redis-server --bind 127.0.0.1 --port "$rport" --dir "$work" --appendonly yes \
  --appendfsync everysec --save '' >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for 30 "$build/nats_stream" "nats://127.0.0.1:$nport" ready
wait_for 30 redis-cli -p "$rport" PING
bash "$src/bench/syslog/payload.sh" 10000 "$work/payload"
nats_count() { "$build/nats_stream" "nats://127.0.0.1:$nport" count "$1" | awk '{ print $2 }'; }
moddir=$(dirname "$(dpkg -L rsyslog-hiredis 2>/dev/null | grep '/omhiredis\.so$' | head -1)")

for count in "$@"; do
  [[ $count =~ ^[0-9]+$ && $count -le 100000 ]] || { echo "COUNT: 0..100000" >&2; exit 2; }
  port=$(free_port SOCK_DGRAM); mport=$(free_port SOCK_STREAM)
  out=$work/$kind.$count key=k$count
  if [[ $kind == rsyslog ]]; then
    mkdir -p "$out.d"
    sed -e "s|@PORT@|$port|g" -e "s|@REDIS_PORT@|$rport|g" -e "s|@KEY@|$key|g" \
      -e "s|@INTERNAL@|$out.internal|g" -e "s|@WORKDIR@|$out.d|g" -e "s|@MODDIR@|$moddir|g" \
      "$src/bench/outputs/rsyslog.conf.in" >"$out.conf"
    valgrind --tool=callgrind "--callgrind-out-file=$out.cg" rsyslogd -n -f "$out.conf" \
      -i "$out.pid" >"$out.log" 2>&1 &
    pid=$!
    wait_for 60 grep -q '\] start$' "$out.internal"
    wait_for 10 grep -q ":$(printf '%04X' "$port") " /proc/net/udp # its socket is bound
    stored=(redis-cli -p "$rport" LLEN "$key")
  else
    env BENCH_PORT="$port" BENCH_METRICS_PORT="$mport" BENCH_OUTPUT="$kind" \
      BENCH_STREAM="$key" BENCH_SPOOL="$work/spool" BENCH_REPLICAS=1 \
      BENCH_NATS_URLS="nats://127.0.0.1:$nport" BENCH_REDIS="127.0.0.1:$rport" \
      valgrind --tool=callgrind "--callgrind-out-file=$out.cg" "$build/luadgramd" \
      -c "$src/bench/outputs/luadgramd.conf" >"$out.log" 2>&1 &
    pid=$!
    wait_for 60 curl -sf "http://127.0.0.1:$mport/metrics"
    if [[ $kind == nats ]]; then stored=(nats_count "$key"); else stored=(redis-cli -p "$rport" XLEN "$key"); fi
  fi
  "$build/bench/loadgen" --to "127.0.0.1:$port" --count "$count" --rate "$rate" \
    --payload "$work/payload" --payload-lines >/dev/null
  wait_count "$count" 120 "${stored[@]}" || true
  kill -TERM "$pid"
  wait "$pid" || true
  echo "$kind $count $(grep -o 'Collected : [0-9]*' "$out.log" | awk '{ s += $3 } END { print s }')" \
    "stored=$("${stored[@]}")"
done
