#!/usr/bin/env bash
# bench/outputs/run.sh: records per second and CPU-µs per record of luadgramd publishing
# every datagram (bench/outputs/publish.lua) into JetStream R1 (one nats-server), JetStream
# R3 (three clustered nats-servers) and Redis Streams, and of rsyslog's omhiredis into the
# same redis-server on the same load (issue 13). Every server runs in a temporary folder on
# ephemeral loopback ports and is stopped by its PID at exit.
#   bench/outputs/run.sh BUILD_DIR [COUNT [RATE]]     (default 100000 at 20000/s)
# Needs nats-server, redis-server (.ci/deps test), rsyslog and rsyslog-hiredis for the last
# target (skipped without them). Prints one line per target:
#   target=... sent= stored= seconds= records_per_s= cpu_us_per_record= kernel_drops=
# seconds: from the first datagram to the last record stored; CPU: the collector's
# utime+stime over that time (/proc/PID/stat), divided by the records stored.
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR [COUNT [RATE]]}
count=${2:-100000}
rate=${3:-20000}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_until() { # wait_until SECONDS CMD...: polls CMD every 0.1 s
    local end=$((SECONDS + $1)); shift
    until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.1; done
}

"$here/../syslog/payload.sh" "$count" "$work/payload" 200

nats_cluster() { # nats_cluster N: starts N clustered nodes, sets NATS_URLS
    local n=$1 i routes="" ports=()
    for i in $(seq 1 "$n"); do ports+=("$(free_port) $(free_port)"); done
    for i in $(seq 1 "$n"); do routes+="nats-route://127.0.0.1:${ports[i-1]#* }, "; done
    NATS_URLS=""
    for i in $(seq 1 "$n"); do
        local c=${ports[i-1]% *} r=${ports[i-1]#* } cl=""
        [ "$n" -eq 1 ] || cl="cluster { name: bench, listen: 127.0.0.1:$r, routes: [ ${routes%, } ] }"
        printf 'server_name: b%d\nlisten: 127.0.0.1:%d\njetstream { store_dir: "%s/js%d" }\n%s\n' \
            "$i" "$c" "$work" "$i" "$cl" > "$work/nats$i.conf"
        nats-server -c "$work/nats$i.conf" > "$work/nats$i.log" 2>&1 &
        pids+=($!)
        NATS_URLS+="\"nats://127.0.0.1:$c\", "
    done
    wait_until 30 "$build/nats_stream" "nats://127.0.0.1:${ports[0]% *}" ready
    NATS_FIRST="nats://127.0.0.1:${ports[0]% *}"
}

# measure TARGET PID PORT STORED_CMD: sends the load to PORT, waits until STORED_CMD prints
# COUNT (at most 120 s), prints the line.
measure() {
    local target=$1 pid=$2 port=$3; shift 3
    local t0 c0 out stored=0
    t0=$(date +%s.%N); c0=$(cpu_ticks "$pid")
    out=$("$build/bench/loadgen" --to "127.0.0.1:$port" --count "$count" --rate "$rate" \
          --payload "$work/payload" --payload-lines --seconds 600)
    local end=$((SECONDS + 120))
    while [ $SECONDS -lt $end ]; do
        stored=$("$@" 2>/dev/null || echo 0)
        [ "$stored" -ge "$count" ] 2>/dev/null && break
        sleep 0.05
    done
    local t1 c1 hz
    t1=$(date +%s.%N); c1=$(cpu_ticks "$pid"); hz=$(getconf CLK_TCK)
    awk -v t="$target" -v sent="${out#sent=}" -v st="$stored" -v s="$(echo "$t1 - $t0" | bc)" \
        -v cpu="$(( c1 - c0 ))" -v hz="$hz" 'BEGIN {
        split(sent, a, " "); printf "target=%s sent=%s stored=%d seconds=%.2f records_per_s=%.0f cpu_us_per_record=%.2f\n",
        t, a[1], st, s, st / s, st ? cpu / hz * 1e6 / st : 0 }'
}

luadgramd_run() { # luadgramd_run TARGET OPTIONS_LUA STORED_CMD...
    local target=$1 opts=$2; shift 2
    local port; port=$(free_port)
    cat > "$work/$target.conf" <<CONF
workers = 1
log_level = "warn"
listen "bench" {
  bind = "127.0.0.1:$port", handler = "$here/publish.lua",
  recv = { batch = 64, rcvbuf = 8388608 },
  options = { $opts },
}
CONF
    "$build/luadgramd" -c "$work/$target.conf" 2> "$work/$target.log" &
    local pid=$!
    pids+=("$pid")
    sleep 1
    measure "$target" "$pid" "$port" "$@"
    kill -TERM "$pid"; wait "$pid" || true
}

nats_count() { "$build/nats_stream" "$NATS_FIRST" count "$1" | awk '{print $2}'; }

# JetStream R1 and R3
nats_cluster 1
luadgramd_run nats_r1 "nats = { servers = { $NATS_URLS }, subject = \"bench.r1\", stream = \"R1\", create = { replicas = 1 } }" nats_count R1
nats_cluster 3
luadgramd_run nats_r3 "nats = { servers = { $NATS_URLS }, subject = \"bench.r3\", stream = \"R3\", create = { replicas = 3 } }" nats_count R3

# Redis: luadgramd, then rsyslog's omhiredis
rport=$(free_port)
redis-server --bind 127.0.0.1 --port "$rport" --dir "$work" --save '' --appendonly no \
    > "$work/redis.log" 2>&1 &
pids+=($!)
wait_until 20 sh -c "redis-cli -p $rport PING | grep -q PONG"
luadgramd_run redis "redis = { server = \"127.0.0.1:$rport\", stream = \"lua\" }" \
    redis-cli -p "$rport" XLEN lua
if command -v rsyslogd >/dev/null && [ -e /usr/lib/x86_64-linux-gnu/rsyslog/omhiredis.so ]; then
    sport=$(free_port)
    sed -e "s|@PORT@|$sport|; s|@REDIS_PORT@|$rport|; s|@KEY@|rsyslog|; s|@WORKDIR@|$work|; s|@INTERNAL@|$work/rsyslog.internal|" \
        "$here/rsyslog.conf.in" > "$work/rsyslog.conf"
    rsyslogd -n -f "$work/rsyslog.conf" -i "$work/rsyslogd.pid" &
    rpid=$!
    pids+=("$rpid")
    sleep 1
    measure rsyslog_omhiredis "$rpid" "$sport" redis-cli -p "$rport" XLEN rsyslog
else
    echo "target=rsyslog_omhiredis skipped: install rsyslog and rsyslog-hiredis" >&2
fi
