#!/usr/bin/env bash
# bench/run.sh: builds the bench tools and runs benchmark sections, each RUNS times, printing
# median/min/max of every figure. Each section is a function named section_<name> listed in
# SECTIONS; later sections (luadgramd, peers) are added the same way and reuse the helpers
# below (start_server, pin, field, summarize). All traffic goes to 127.0.0.1, every run is
# bounded in count and time, and servers started here are stopped on exit.
#
#   bench/run.sh                 build, then run every section
#   bench/run.sh raw_sink        only the named sections
#   bench/run.sh --list          list the sections
# Environment: RUNS (3), SIZE (200 bytes), SINK_COUNT (500000), ECHO_SECONDS (3),
# INFLIGHT (64), SERVER_CPU (0), CLIENT_CPU (1), BENCH_BUILD (<repo>/build-bench),
# NO_BUILD=1 to use the tools already built there.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BENCH_BUILD:-$SRC/build-bench}
RUNS=${RUNS:-3}
SIZE=${SIZE:-200}
SINK_COUNT=${SINK_COUNT:-500000}
ECHO_SECONDS=${ECHO_SECONDS:-3}
INFLIGHT=${INFLIGHT:-64}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SECTIONS=(raw_sink raw_echo)

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- helpers ----

build_tools() {
    cmake -S "$SRC/bench" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j2 >/dev/null
}

# pin CPU CMD...: runs CMD on one core when taskset and two cores are there (taskset execs
# CMD, so a background pin's $! is CMD's own pid).
pin() {
    local cpu=$1; shift
    if command -v taskset >/dev/null && (( $(nproc) >= 2 )); then
        exec taskset -c "$cpu" "$@"
    fi
    exec "$@"
}

# field KEY LINE: the value of KEY=value in a summary line.
field() {
    tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}

# summarize SECTION NAME VALUES...: one line "SECTION NAME median=M min=L max=H n=N".
summarize() {
    local section=$1 name=$2; shift 2
    printf '%s\n' "$@" | sort -g | awk -v s="$section" -v n="$name" '
        { v[NR] = $1 }
        END {
            if (NR == 0) { printf "%s %s n=0\n", s, n; exit }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%s %s median=%s min=%s max=%s n=%d\n", s, n, m, v[1], v[NR], NR
        }'
}

# start_server OUT CPU CMD...: runs a server in the background (stdout to OUT, stderr to
# OUT.err), waits at most 5 s for its "listening on ADDR" line, sets SERVER_PID and
# SERVER_ADDR.
start_server() {
    local out=$1 cpu=$2 i; shift 2
    : >"$out.err"
    (pin "$cpu" "$@") >"$out" 2>>"$out.err" &
    SERVER_PID=$!
    SERVER_ADDR=
    for ((i = 0; i < 50; i++)); do
        SERVER_ADDR=$(sed -n 's/.*listening on //p' "$out.err")
        [[ -n $SERVER_ADDR ]] && return 0
        sleep 0.1
    done
    echo "server did not start: $(cat "$out.err")" >&2
    return 1
}

# wait_server: waits for the server to finish by itself (it is bounded), then forgets it.
wait_server() {
    wait "$SERVER_PID" || true
    SERVER_PID=
}

# ---- sections ----

# raw_sink: the C receive limit. loadgen sends SINK_COUNT datagrams of SIZE bytes as fast as
# it can; the sink's own rate (first to last datagram), drops and CPU per million.
section_raw_sink() {
    local run out lg sk rates=() drops=() cpu=() lgrates=()
    for ((run = 1; run <= RUNS; run++)); do
        out=$WORK/sink.$run
        start_server "$out" "$SERVER_CPU" "$BUILD/sink" --bind 127.0.0.1:0 \
            --count "$SINK_COUNT" --seq --rcvbuf 4194304 --batch 64 --seconds 60 --idle 1
        lg=$( (pin "$CLIENT_CPU" "$BUILD/loadgen" --to "$SERVER_ADDR" --count "$SINK_COUNT" \
            --size "$SIZE" --rate 0 --seq --batch 64 --seconds 30) ) || true
        wait_server
        sk=$(cat "$out")
        echo "# raw_sink run $run: loadgen: $lg" >&2
        echo "# raw_sink run $run: sink: $sk" >&2
        rates+=("$(field rate "$sk")")
        drops+=("$(field drops "$sk")")
        cpu+=("$(field cpu_s_per_million "$sk")")
        lgrates+=("$(field rate "$lg")")
    done
    summarize raw_sink recv_per_s "${rates[@]}"
    summarize raw_sink drops "${drops[@]}"
    summarize raw_sink cpu_s_per_million "${cpu[@]}"
    summarize raw_sink loadgen_per_s "${lgrates[@]}"
}

# raw_echo: the C echo limit. rrclient keeps INFLIGHT requests of SIZE bytes outstanding for
# ECHO_SECONDS; replies per second, latency percentiles, the server's CPU per million.
section_raw_echo() {
    local run out rr ec rates=() p50=() p99=() lost=() cpu=()
    for ((run = 1; run <= RUNS; run++)); do
        out=$WORK/echo.$run
        start_server "$out" "$SERVER_CPU" "$BUILD/echo" --bind 127.0.0.1:0 --batch 64 \
            --seconds $((ECHO_SECONDS + 30)) --idle 1
        rr=$( (pin "$CLIENT_CPU" "$BUILD/rrclient" --to "$SERVER_ADDR" --size "$SIZE" \
            --inflight "$INFLIGHT" --seconds "$ECHO_SECONDS" --timeout 1000) ) || true
        wait_server
        ec=$(cat "$out")
        echo "# raw_echo run $run: rrclient: $rr" >&2
        echo "# raw_echo run $run: echo: $ec" >&2
        rates+=("$(field rate "$rr")")
        p50+=("$(field p50_us "$rr")")
        p99+=("$(field p99_us "$rr")")
        lost+=("$(field lost "$rr")")
        cpu+=("$(field cpu_s_per_million "$ec")")
    done
    summarize raw_echo replies_per_s "${rates[@]}"
    summarize raw_echo p50_us "${p50[@]}"
    summarize raw_echo p99_us "${p99[@]}"
    summarize raw_echo lost "${lost[@]}"
    summarize raw_echo cpu_s_per_million "${cpu[@]}"
}

# ---- main ----

main() {
    local s want=()
    for s in "$@"; do
        case $s in
            --list) printf '%s\n' "${SECTIONS[@]}"; return 0 ;;
            -h|--help) sed -n '2,15p' "$0"; return 0 ;;
            *) declare -F "section_$s" >/dev/null || { echo "unknown section: $s" >&2; return 2; }
               want+=("$s") ;;
        esac
    done
    (( ${#want[@]} )) || want=("${SECTIONS[@]}")
    [[ ${NO_BUILD:-} == 1 ]] || build_tools
    echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, RUNS=$RUNS SIZE=$SIZE" \
         "server cpu $SERVER_CPU, client cpu $CLIENT_CPU"
    for s in "${want[@]}"; do
        "section_$s"
    done
}

main "$@"
