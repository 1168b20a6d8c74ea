#!/usr/bin/env bash
# bench/run.sh: the benchmark of issue 3. Builds luadgramd and the bench tools, installs the
# peers (install_peers), runs each section RUNS times next to the raw C limits and the
# peers, prints median/min/max of every figure and writes bench/RESULTS.md. Each section is
# a function section_<name> listed in SECTIONS. All traffic goes to 127.0.0.1, every load is
# bounded in count and time, servers are pinned to SERVER_CPU and clients to CLIENT_CPU,
# and every server started here is stopped on exit.
#
#   bench/run.sh                 build, install peers, run every section, write RESULTS.md
#   bench/run.sh echo dns        only the named sections (RESULTS.md only if RESULTS is set)
#   bench/run.sh --list          list the sections
# Environment: RUNS (3), SERVER_CPU (0), CLIENT_CPU (1), BENCH_BUILD (<repo>/build-bench2,
# a Release build of the whole tree), NO_BUILD=1 to use what is built there, NO_INSTALL=1
# to install nothing, RESULTS (file to write; default bench/RESULTS.md for a full run).
# Sizes: ECHO_SIZE (64), INFLIGHT (64), ECHO_SECONDS (3); COLLECT_COUNT (1000000),
# COLLECT_SIZE (200), COLLECT_RATE (200000); DNS_SECONDS (5), DNS_CLIENTS (8),
# DNS_OUTSTANDING (64); PROFILE_COUNT (20000); SIZE and SINK_COUNT for raw_sink/raw_echo;
# SYSLOG_*, SNMP_*, OUTPUTS_* and FAILOVER_* in bench/syslog, bench/snmp, bench/outputs.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BENCH_BUILD:-$SRC/build-bench2}
TOOLS=$BUILD/bench
DAEMON=$BUILD/luadgramd
RUNS=${RUNS:-3}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SIZE=${SIZE:-200}
SINK_COUNT=${SINK_COUNT:-500000}
ECHO_SIZE=${ECHO_SIZE:-64}
ECHO_SECONDS=${ECHO_SECONDS:-3}
INFLIGHT=${INFLIGHT:-64}
COLLECT_COUNT=${COLLECT_COUNT:-1000000}
COLLECT_SIZE=${COLLECT_SIZE:-200}
COLLECT_RATE=${COLLECT_RATE:-200000}
DNS_SECONDS=${DNS_SECONDS:-5}
DNS_CLIENTS=${DNS_CLIENTS:-8}
DNS_OUTSTANDING=${DNS_OUTSTANDING:-64}
PROFILE_COUNT=${PROFILE_COUNT:-20000}
# The full run: what `bench/run.sh` without arguments runs and puts in RESULTS.md.
# raw_sink and raw_echo are the quick stand-alone checks of the tools.
SECTIONS=(echo collect dns memory syslog snmp snmpv3 outputs outputs_failover profile)
EXTRA_SECTIONS=(raw_sink raw_echo)
PEER_PACKAGES=(lua-socket lua-luv dnsdist dnsperf python3 rsyslog snmp snmptrapd
               rsyslog-hiredis nats-server redis-server redis-tools)
# and what the script itself uses: callgrind for the profile, curl for /metrics, ss, taskset
TOOL_PACKAGES=(valgrind curl iproute2 util-linux)

WORK=$(mktemp -d)
SERVER_PID=
SAMPLER_PID=
PEER_PIDS=() # servers a section runs beside its receiver (the outputs' buses), by pid
CLK_TCK=$(getconf CLK_TCK)
cleanup() {
    local p
    if [[ -n $SAMPLER_PID ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; fi
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    for p in "${PEER_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/v" "$WORK/md"

# ---- helpers: building, pinning, servers ----

build_tools() {
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD" -j2 --target luadgramd bench_loadgen bench_rrclient bench_sink \
        bench_echo >/dev/null
    # the outputs' sections read JetStream streams with the specs' reader (when built)
    cmake --build "$BUILD" -j2 --target nats_stream >/dev/null 2>&1 || true
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
# settle STABLE TARGET CMD...: runs CMD (it prints a count) every 0.2 s until it prints
# TARGET or the same count STABLE times in a row (at most 30 s); prints the last count. For
# receivers that write their output after the load has ended.
settle() {
    local stable=$1 target=$2 last=-1 same=0 n=0 i; shift 2
    for ((i = 0; i < 150; i++)); do
        n=$("$@")
        [[ $n == "$target" ]] && break
        if [[ $n == "$last" ]]; then
            same=$((same + 1))
            ((same >= stable)) && break
        else
            same=0
        fi
        last=$n
        sleep 0.2
    done
    echo "$n"
}

# count_lines FILE: complete lines in FILE (0 when it does not exist yet).
count_lines() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }

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
    (pin "$cpu" "$@") >"$out" 2>>"$out.err" </dev/null &
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

# start_daemon OUT CPU SECONDS PATTERN CMD...: runs a server that logs PATTERN (a grep
# regex, on stdout or stderr) once it serves; waits at most SECONDS for it and sets
# SERVER_PID. Such servers run until stop_server.
start_daemon() {
    local out=$1 cpu=$2 secs=$3 pattern=$4 i; shift 4
    : >"$out.err"
    (pin "$cpu" "$@") >"$out" 2>>"$out.err" </dev/null &
    SERVER_PID=$!
    for ((i = 0; i < secs * 10; i++)); do
        grep -qE "$pattern" "$out" "$out.err" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "server did not start: $* : $(tail -n 5 "$out.err" "$out")" >&2
    stop_server
    return 1
}

# wait_server: waits for the server to finish by itself (it is bounded), then forgets it.
wait_server() {
    wait "$SERVER_PID" || true
    SERVER_PID=
}

# stop_server [SECONDS]: SIGTERM to the server, waits at most SECONDS (10) for it to exit,
# then SIGKILL; forgets it.
stop_server() {
    local secs=${1:-10} i
    [[ -n $SERVER_PID ]] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# free_port: a loopback port in 20000-29999 that no UDP or TCP socket uses now (below the
# ephemeral range, so clients' source ports do not take it meanwhile).
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 10000))
        if [[ -z $(ss -Hnua "sport = :$p" 2>/dev/null; ss -Hnta "sport = :$p" 2>/dev/null) ]]
        then echo "$p"; return 0; fi
    done
    echo "no free port" >&2
    return 1
}

# cpu_ticks PID: user + system clock ticks of the process (all its threads) so far.
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# rss_kb PID: the process's resident size (VmRSS) in KiB.
rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# metric PORT NAME: a value from luadgramd's /metrics (summed over its label sets).
metric() {
    { curl -s --max-time 2 "http://127.0.0.1:$1/metrics" || true; } |
        awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2; f = 1 }
                       END { if (f) print s; else print "" }'
}

# ---- helpers: figures and RESULTS.md ----

# put SECTION VARIANT FIGURE VALUE: one run's value of a figure.
put() {
    [[ -n $4 ]] || return 0
    echo "$4" >>"$WORK/v/$1.$2.$3"
}

# stat3 SECTION VARIANT FIGURE: "median min max n" of the values put, or nothing.
stat3() {
    local f=$WORK/v/$1.$2.$3
    [[ -s $f ]] || return 0
    sort -g "$f" | awk '{ v[NR] = $1 }
        END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              print m, v[1], v[NR], NR }'
}

# med SECTION VARIANT FIGURE: the median, or nothing.
med() {
    local s
    s=$(stat3 "$@")
    echo "${s%% *}"
}

# fmt NUMBER: for the tables: whole numbers and from 100 up as integers, else 2 decimals
# from 1, 3 below.
fmt() {
    [[ -n ${1:-} ]] || { echo "–"; return; }
    awk -v v="$1" 'BEGIN { a = v < 0 ? -v : v
        if (a >= 100 || v == int(v)) printf "%.0f\n", v; else if (a >= 1) printf "%.2f\n", v
        else printf "%.3f\n", v }'
}

# ratio A B: A / B with 2 decimals, or "–" when either is missing or B is 0.
ratio() {
    if [[ -z ${1:-} || -z ${2:-} ]]; then echo "–"; return; fi
    awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "–"; else printf "%.2f\n", a / b }'
}

# meets VALUE OP LIMIT: "yes" or "**no**" (OP: >=, >, <=, <), "–" when VALUE is "–".
meets() {
    if [[ -z ${1:-} || $1 == "–" ]]; then echo "–"; return; fi
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        ok = (op == ">=") ? v >= l : (op == ">") ? v > l : (op == "<=") ? v <= l : v < l
        print ok ? "yes" : "**no**" }'
}

# shared SECTION BUSYFIGURE VARIANT...: " (server < 85 % busy)" when the median BUSYFIGURE
# of one of the variants is under 85 %: the server did not use its whole core (another job took
# part of it, or the client was the limit), so a ratio of rates says less about the servers.
shared() {
    local sec=$1 fig=$2 v b; shift 2
    for v in "$@"; do
        b=$(med "$sec" "$v" "$fig")
        if [[ -n $b ]] && awk -v b="$b" 'BEGIN { exit !(b < 85) }'; then
            echo " (server < 85 % busy)"; return 0
        fi
    done
}

# figure SECTION VARIANT FIGURE LABEL [RATIO TARGET MET]: prints the summary line on stdout
# and adds a table row "| LABEL | median | min | max | RATIO | TARGET | MET |".
figure() {
    local sec=$1 var=$2 fig=$3 label=$4 s m lo hi n
    s=$(stat3 "$sec" "$var" "$fig")
    [[ -n $s ]] || return 0
    read -r m lo hi n <<<"$s"
    echo "$sec $var.$fig median=$m min=$lo max=$hi n=$n"
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$(fmt "$m")" "$(fmt "$lo")" \
        "$(fmt "$hi")" "${5:-}" "${6:-}" "${7:-}" >>"$WORK/md/$sec.table"
}

# md SECTION TEXT...: a line of the section's part of RESULTS.md (after its table).
md() {
    local sec=$1; shift
    printf '%s\n' "$*" >>"$WORK/md/$sec.notes"
}

# cmdline SECTION CMD...: records the command line of the first run for RESULTS.md.
cmdline() {
    local sec=$1; shift
    (( run == 1 )) || return 0
    local q
    q=$(printf '%q ' "$@")
    printf '    %s\n' "${q% }" | sed "s|$BUILD/|\$BUILD/|g; s|$SRC/||g; s|$WORK/|\$WORK/|g" \
        >>"$WORK/md/$sec.cmds"
}

# log_run SECTION VARIANT RUN TEXT: a run's raw summary as a # comment on stderr.
log_run() {
    echo "# $1 $2 run $3: ${*:4}" >&2
}

# ---- peers ----

python_bin() {
    if [[ -x /usr/bin/python3 ]]; then echo /usr/bin/python3; else command -v python3 || true; fi
}

has_luasocket() { lua5.4 -e 'require "socket"' 2>/dev/null; }
has_luv() { lua5.4 -e 'require "luv"' 2>/dev/null; }

# install_peers: apt-get installs the peers (and the tools the script uses) that are
# missing, only as root (NO_INSTALL=1: never). The dnsdist, rsyslog, redis-server and
# nats-server packages enable a service: a policy-rc.d keeps it from starting during the
# install, and one that started anyway is stopped again through the init system, so that
# nothing of the packages is left listening or logging (the sections run their own
# instances).
install_peers() {
    local p missing=() before after svc
    for p in "${PEER_PACKAGES[@]}" "${TOOL_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    (( ${#missing[@]} )) || return 0
    if [[ ${NO_INSTALL:-} == 1 || $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
        echo "# peers not installed (need root and apt-get): ${missing[*]}" >&2
        return 0
    fi
    echo "# installing peers: ${missing[*]}" >&2
    # SERVICES: "process:service:systemd units" of the packages that start a service
    local services=("dnsdist:dnsdist:dnsdist.service"
                    "rsyslogd:rsyslog:rsyslog.service syslog.socket"
                    "redis-server:redis-server:redis-server.service"
                    "nats-server:nats-server:nats-server.service")
    before=$(for svc in "${services[@]}"; do pgrep -x "${svc%%:*}" || true; done)
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || true
    # a policy-rc.d answering 101 ("action forbidden") keeps the services from starting at
    # all (as .ci/deps does); only ours is removed afterwards. The check below stays for
    # init systems that do not ask it.
    local policy=
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2 || echo "# apt-get install failed; missing peers are skipped" >&2
    [[ -z $policy ]] || rm -f "$policy"
    for svc in "${services[@]}"; do
        after=$(pgrep -x "${svc%%:*}" || true)
        # only a process that was not there before the install (not the host's own syslog)
        if [[ -z $after ]] || ! grep -qvxF -f <(printf '%s\n' "$before") <<<"$after"; then
            continue
        fi
        p=${svc#*:}
        echo "# the ${p%%:*} package started its service; stopping it" >&2
        if [[ -d /run/systemd/system ]]; then
            # shellcheck disable=SC2086 # the units are a list
            systemctl disable --now ${p#*:} >&2 || true
        else
            service "${p%%:*}" stop >&2 || true
        fi
    done
}

# peer_versions: "| package | version |" rows for RESULTS.md.
peer_versions() {
    local p v
    for p in "${PEER_PACKAGES[@]}" valgrind; do
        v=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
        printf '| %s | %s |\n' "$p" "${v:-not installed}"
    done
    printf '| python3 used | %s (%s) |\n' "$(python_bin)" \
        "$("$(python_bin)" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo –)"
    printf '| dnsdist used | %s |\n' "$(dnsdist --version 2>/dev/null | head -1 || echo –)"
}

# ---- sections ----

# raw_sink: the C receive limit alone. loadgen sends SINK_COUNT datagrams of SIZE bytes as
# fast as it can; the sink's own rate (first to last datagram), drops and CPU per million.
section_raw_sink() {
    local run out lg sk rates=() drops=() cpu=() lgrates=()
    for ((run = 1; run <= RUNS; run++)); do
        out=$WORK/sink.$run
        start_server "$out" "$SERVER_CPU" "$TOOLS/sink" --bind 127.0.0.1:0 \
            --count "$SINK_COUNT" --seq --rcvbuf 4194304 --batch 64 --seconds 60 --idle 1
        lg=$( (pin "$CLIENT_CPU" "$TOOLS/loadgen" --to "$SERVER_ADDR" --count "$SINK_COUNT" \
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

# raw_echo: the C echo limit alone. rrclient keeps INFLIGHT requests of SIZE bytes
# outstanding for ECHO_SECONDS; replies per second, latency percentiles, CPU per million.
section_raw_echo() {
    local run out rr ec rates=() p50=() p99=() lost=() cpu=()
    for ((run = 1; run <= RUNS; run++)); do
        out=$WORK/echo.$run
        start_server "$out" "$SERVER_CPU" "$TOOLS/echo" --bind 127.0.0.1:0 --batch 64 \
            --seconds $((ECHO_SECONDS + 30)) --idle 1
        rr=$( (pin "$CLIENT_CPU" "$TOOLS/rrclient" --to "$SERVER_ADDR" --size "$SIZE" \
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

# echo_client VARIANT ADDR: rrclient against ADDR on the client core; puts its figures.
echo_client() {
    local var=$1 addr=$2 rr
    local cmd=("$TOOLS/rrclient" --to "$addr" --size "$ECHO_SIZE" --inflight "$INFLIGHT"
               --seconds "$ECHO_SECONDS" --timeout 1000)
    cmdline echo "${cmd[@]}"
    rr=$( (pin "$CLIENT_CPU" "${cmd[@]}") ) || true
    log_run echo "$var" "$run" "rrclient: $rr"
    put echo "$var" rate "$(field rate "$rr")"
    put echo "$var" p50 "$(field p50_us "$rr")"
    put echo "$var" p99 "$(field p99_us "$rr")"
    put echo "$var" lost "$(field lost "$rr")"
    ECHO_REPLIES=$(field replies "$rr")
    ECHO_RATE=$(field rate "$rr")
}

# busy CPU_S_PER_MILLION RATE: the share of its core the server used, in %.
busy() {
    [[ -n ${1:-} && -n ${2:-} ]] || return 0
    awk -v c="$1" -v r="$2" 'BEGIN { printf "%.1f", c * r / 1e4 }'
}

# echo_peer VARIANT CMD...: one run of a peer echo server (a bench/peers/*_echo program that
# takes IP PORT SECONDS IDLE), its CPU per million replies read from /proc.
echo_peer() {
    local var=$1 out=$WORK/echo.$1.$run t0 t1; shift
    cmdline echo "$@" 127.0.0.1 0 $((ECHO_SECONDS + 30)) 5
    start_server "$out" "$SERVER_CPU" "$@" 127.0.0.1 0 $((ECHO_SECONDS + 30)) 5 || return 0
    t0=$(cpu_ticks "$SERVER_PID")
    echo_client "$var" "$SERVER_ADDR"
    t1=$(cpu_ticks "$SERVER_PID")
    stop_server
    put echo "$var" cpu "$(awk -v t=$((t1 - t0)) -v h="$CLK_TCK" -v n="$ECHO_REPLIES" \
        'BEGIN { if (n > 0) printf "%.3f", t / h / n * 1e6 }')"
    put echo "$var" busy "$(busy "$(tail -1 "$WORK/v/echo.$var.cpu" 2>/dev/null)" "$ECHO_RATE")"
}

# echo: 64-byte datagrams, INFLIGHT in flight, closed loop: the raw C echo (the limit),
# luadgramd with scripts/echo.lua on one worker, and the peers. Runs are interleaved so that
# the machine's drift hits every server alike. luadgramd's RSS is sampled every 0.5 s.
section_echo() {
    local run out t0 t1 ec port mport luv=1 ls=1 py v
    py=$(python_bin)
    has_luasocket || { ls=; md echo "lua-socket is not installed: its row is skipped."; }
    has_luv || { luv=; md echo "lua-luv is not installed: its row is skipped."; }
    [[ -n $py ]] || md echo "python3 is not installed: its row is skipped."
    for ((run = 1; run <= RUNS; run++)); do
        # the raw C limit
        out=$WORK/echo.raw.$run
        cmdline echo "$TOOLS/echo" --bind 127.0.0.1:0 --batch 64 \
            --seconds $((ECHO_SECONDS + 30)) --idle 1
        start_server "$out" "$SERVER_CPU" "$TOOLS/echo" --bind 127.0.0.1:0 --batch 64 \
            --seconds $((ECHO_SECONDS + 30)) --idle 1
        echo_client raw "$SERVER_ADDR"
        wait_server
        ec=$(cat "$out")
        log_run echo raw "$run" "echo: $ec"
        put echo raw cpu "$(field cpu_s_per_million "$ec")"
        put echo raw busy "$(busy "$(field cpu_s_per_million "$ec")" "$ECHO_RATE")"

        # luadgramd, scripts/echo.lua
        out=$WORK/echo.luadgramd.$run
        port=$(free_port); mport=$(free_port)
        cmdline echo env BENCH_PORT="$port" BENCH_METRICS_PORT="$mport" "$DAEMON" \
            -c "$SRC/bench/luadgramd/echo.conf"
        start_daemon "$out" "$SERVER_CPU" 10 ' running: ' env BENCH_PORT="$port" \
            BENCH_METRICS_PORT="$mport" "$DAEMON" -c "$SRC/bench/luadgramd/echo.conf"
        put memory echo idle "$(rss_kb "$SERVER_PID")"
        rss_sampler "$SERVER_PID" "$WORK/rss.echo.$run"
        t0=$(cpu_ticks "$SERVER_PID")
        echo_client luadgramd "127.0.0.1:$port"
        t1=$(cpu_ticks "$SERVER_PID")
        kill "$SAMPLER_PID" 2>/dev/null || true
        wait "$SAMPLER_PID" 2>/dev/null || true
        SAMPLER_PID=
        put memory echo after "$(rss_kb "$SERVER_PID")"
        put memory echo max "$(sort -n "$WORK/rss.echo.$run" | tail -1)"
        put memory echo first "$(sed -n 3p "$WORK/rss.echo.$run")"
        log_run echo luadgramd "$run" "sent_total=$(metric "$mport" luadgramd_sent_total)" \
            "send_dropped=$(metric "$mport" luadgramd_send_dropped_total)" \
            "rss_kb=$(tr '\n' ' ' <"$WORK/rss.echo.$run")"
        put echo luadgramd cpu "$(awk -v t=$((t1 - t0)) -v h="$CLK_TCK" -v n="$ECHO_REPLIES" \
            'BEGIN { if (n > 0) printf "%.3f", t / h / n * 1e6 }')"
        put echo luadgramd busy "$(busy "$(tail -1 "$WORK/v/echo.luadgramd.cpu")" "$ECHO_RATE")"
        stop_server

        # the peers
        if [[ -n $ls ]]; then echo_peer luasocket lua5.4 "$SRC/bench/peers/luasocket_echo.lua"; fi
        if [[ -n $luv ]]; then echo_peer luv lua5.4 "$SRC/bench/peers/luv_echo.lua"; fi
        if [[ -n $py ]]; then echo_peer asyncio "$py" "$SRC/bench/peers/asyncio_echo.py"; fi
    done

    local raw ld best=0 bestname=
    raw=$(med echo raw rate); ld=$(med echo luadgramd rate)
    figure echo raw rate "raw C echo (recvmmsg+sendmmsg): replies/s" "1.00 (limit)"
    local r
    r=$(ratio "$ld" "$raw")
    figure echo luadgramd rate "**luadgramd, scripts/echo.lua: replies/s**" "$r" \
        "≥ 0.85 × raw" "$(meets "$r" ">=" 0.85)$(shared echo busy raw luadgramd)"
    r=$(ratio "$(med echo raw cpu)" "$(med echo luadgramd cpu)")
    if [[ $r != "–" ]]; then
        printf '| %s | | | | %s | %s | %s |\n' \
            "**the same from CPU per reply**: raw's CPU-s per million ÷ luadgramd's" \
            "$r" "≥ 0.85" "$(meets "$r" ">=" 0.85)" >>"$WORK/md/echo.table"
    fi
    for v in luasocket luv asyncio; do
        local m
        m=$(med echo "$v" rate)
        [[ -n $m ]] || continue
        if awk -v a="$m" -v b="$best" 'BEGIN { exit !(a > b) }'; then best=$m; bestname=$v; fi
    done
    figure echo luasocket rate "lua-socket echo, Lua 5.4: replies/s" \
        "$(ratio "$(med echo luasocket rate)" "$raw")"
    figure echo luv rate "luv echo, Lua 5.4: replies/s" "$(ratio "$(med echo luv rate)" "$raw")"
    figure echo asyncio rate "Python asyncio echo: replies/s" \
        "$(ratio "$(med echo asyncio rate)" "$raw")"
    if [[ -n $bestname ]]; then
        r=$(ratio "$ld" "$best")
        printf '| %s | | | | %s | %s | %s |\n' "luadgramd ÷ best peer ($bestname), medians" \
            "$r" "> 1 (ahead of every peer)" "$(meets "$r" ">" 1)" >>"$WORK/md/echo.table"
    fi
    for v in raw luadgramd luasocket luv asyncio; do
        figure echo "$v" p50 "$v: p50 latency, µs" \
            "$(ratio "$(med echo "$v" p50)" "$(med echo raw p50)")"
        figure echo "$v" p99 "$v: p99 latency, µs" \
            "$(ratio "$(med echo "$v" p99)" "$(med echo raw p99)")"
    done
    for v in raw luadgramd luasocket luv asyncio; do
        figure echo "$v" cpu "$v: server CPU-s per million replies" \
            "$(ratio "$(med echo "$v" cpu)" "$(med echo raw cpu)")"
    done
    for v in raw luadgramd luasocket luv asyncio; do
        figure echo "$v" busy "$v: server core busy, %"
    done
    for v in raw luadgramd luasocket luv asyncio; do
        figure echo "$v" lost "$v: requests lost (1 s timeout)"
    done
    md echo "\"busy\" is the server's CPU time over the run's wall time (CPU-s per million ×" \
        "replies/s): a server that had its core to itself is at 90-100 %; under 85 % another job" \
        "took part of it, and the ratio of rates is marked so."
}

# rss_sampler PID FILE: in the background (SAMPLER_PID), VmRSS of PID every 0.5 s into
# FILE, at most ECHO_SECONDS * 2 + 10 samples.
rss_sampler() {
    local pid=$1 file=$2
    (
        for ((i = 0; i < ECHO_SECONDS * 2 + 10; i++)); do
            rss_kb "$pid" >>"$file" 2>/dev/null || exit 0
            sleep 0.5
        done
    ) &
    SAMPLER_PID=$!
}

# collect: one-way collection. loadgen sends COLLECT_COUNT datagrams of COLLECT_SIZE bytes
# paced at COLLECT_RATE/s to the raw C sink and to luadgramd with a count-only handler
# (bench/luadgramd/count.lua), both with a 4 MiB receive buffer and 64 per recvmmsg:
# received, kernel drops, loss and the receiver's CPU per million.
section_collect() {
    local run out lg sk port mport t0 t1 rx prev i sent secs
    secs=$(( COLLECT_COUNT * 2 / (COLLECT_RATE > 0 ? COLLECT_RATE : 100000) + 10 ))
    for ((run = 1; run <= RUNS; run++)); do
        # the raw C sink
        out=$WORK/collect.sink.$run
        local skcmd=("$TOOLS/sink" --bind 127.0.0.1:0 --count "$COLLECT_COUNT" --seq
                     --rcvbuf 4194304 --batch 64 --seconds $((secs + 30)) --idle 1)
        cmdline collect "${skcmd[@]}"
        start_server "$out" "$SERVER_CPU" "${skcmd[@]}"
        lg=$(collect_load "$SERVER_ADDR")
        wait_server
        sk=$(cat "$out")
        log_run collect sink "$run" "loadgen: $lg"
        log_run collect sink "$run" "sink: $sk"
        sent=$(field sent "$lg")
        put collect sink sent "$sent"
        put collect sink rate "$(field rate "$lg")"
        put collect sink received "$(field received "$sk")"
        put collect sink drops "$(field drops "$sk")"
        put collect sink loss "$(loss_pct "$sent" "$(field received "$sk")")"
        put collect sink cpu "$(field cpu_s_per_million "$sk")"

        # luadgramd, count.lua
        out=$WORK/collect.luadgramd.$run
        port=$(free_port); mport=$(free_port)
        cmdline collect env BENCH_PORT="$port" BENCH_METRICS_PORT="$mport" "$DAEMON" \
            -c "$SRC/bench/luadgramd/count.conf"
        start_daemon "$out" "$SERVER_CPU" 10 ' running: ' env BENCH_PORT="$port" \
            BENCH_METRICS_PORT="$mport" "$DAEMON" -c "$SRC/bench/luadgramd/count.conf"
        t0=$(cpu_ticks "$SERVER_PID")
        lg=$(collect_load "127.0.0.1:$port")
        # wait (at most 3 s) until the count stops moving: the receive buffer drained
        prev=-1
        for ((i = 0; i < 15; i++)); do
            rx=$(metric "$mport" luadgramd_received_total)
            [[ $rx == "$prev" ]] && break
            prev=$rx
            sleep 0.2
        done
        t1=$(cpu_ticks "$SERVER_PID")
        sent=$(field sent "$lg")
        log_run collect luadgramd "$run" "loadgen: $lg"
        log_run collect luadgramd "$run" "received=$rx handled=$(metric "$mport" \
            luadgramd_handled_total) kernel_drops=$(metric "$mport" luadgramd_kernel_drops_total) \
            cpu_ticks=$((t1 - t0))"
        put collect luadgramd sent "$sent"
        put collect luadgramd rate "$(field rate "$lg")"
        put collect luadgramd received "$rx"
        put collect luadgramd drops "$(metric "$mport" luadgramd_kernel_drops_total)"
        put collect luadgramd loss "$(loss_pct "$sent" "$rx")"
        put collect luadgramd cpu "$(awk -v t=$((t1 - t0)) -v h="$CLK_TCK" -v n="$rx" \
            'BEGIN { if (n > 0) printf "%.3f", t / h / n * 1e6 }')"
        put memory collect after "$(rss_kb "$SERVER_PID")"
        stop_server
        log_run collect luadgramd "$run" \
            "log: $(grep -o 'count: [0-9]* datagrams' "$out.err" || true)"
    done

    local r
    figure collect sink sent "loadgen: datagrams sent (each run)"
    figure collect sink rate "loadgen: send rate to the sink, /s"
    figure collect luadgramd rate "loadgen: send rate to luadgramd, /s"
    figure collect sink received "raw C sink: received" "1.00 (limit)"
    figure collect luadgramd received "**luadgramd, count.lua: received**" \
        "$(ratio "$(med collect luadgramd received)" "$(med collect sink received)")"
    figure collect sink drops "raw C sink: kernel drops (SO_RXQ_OVFL)"
    figure collect luadgramd drops "luadgramd: kernel drops (luadgramd_kernel_drops_total)"
    figure collect sink loss "raw C sink: loss %"
    figure collect luadgramd loss "luadgramd: loss %"
    figure collect sink cpu "raw C sink: CPU-s per million received" "1.00 (limit)"
    r=$(ratio "$(med collect luadgramd cpu)" "$(med collect sink cpu)")
    figure collect luadgramd cpu "**luadgramd, count.lua: CPU-s per million received**" "$r" \
        "≤ 1.3 × raw" "$(meets "$r" "<=" 1.3)"
}

# collect_load ADDR: the paced loadgen run of section collect; prints its summary.
collect_load() {
    local cmd=("$TOOLS/loadgen" --to "$1" --count "$COLLECT_COUNT" --size "$COLLECT_SIZE"
               --rate "$COLLECT_RATE" --seq --batch 64 --seconds "$secs")
    cmdline collect "${cmd[@]}"
    (pin "$CLIENT_CPU" "${cmd[@]}") || true
}

# loss_pct SENT RECEIVED: (SENT - RECEIVED) / SENT in %.
loss_pct() {
    [[ -n ${1:-} && -n ${2:-} ]] || return 0
    awk -v s="$1" -v r="$2" 'BEGIN { if (s > 0) printf "%.3f", (s - r) / s * 100 }'
}

# dns_run VARIANT PORT PATTERN CMD...: one dnsperf run against a server started here
# (ready when it logs PATTERN); puts q/s, latency, lost, CPU per million, busy %.
dns_run() {
    local var=$1 port=$2 pattern=$3 out=$WORK/dns.$1.$run t0 t1 dp q; shift 3
    cmdline dns "$@"
    start_daemon "$out" "$SERVER_CPU" 10 "$pattern" "$@" || return 0
    local cmd=(dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -l "$DNS_SECONDS"
               -c "$DNS_CLIENTS" -T 1 -q "$DNS_OUTSTANDING" -t 2)
    cmdline dns "${cmd[@]}"
    t0=$(cpu_ticks "$SERVER_PID")
    dp=$( (pin "$CLIENT_CPU" "${cmd[@]}") 2>&1 ) || true
    t1=$(cpu_ticks "$SERVER_PID")
    # the same server under rrclient, the C closed-loop client, with the same query
    local rcmd=("$TOOLS/rrclient" --to "127.0.0.1:$port" --payload "$WORK/query.bin" --match=dnsid
                --inflight "$DNS_OUTSTANDING" --sockets "$DNS_CLIENTS" --seconds "$DNS_SECONDS"
                --timeout 1000) rr t2 t3
    cmdline dns "${rcmd[@]}"
    t2=$(cpu_ticks "$SERVER_PID")
    rr=$( (pin "$CLIENT_CPU" "${rcmd[@]}") ) || true
    t3=$(cpu_ticks "$SERVER_PID")
    [[ $var != luadgramd ]] || put memory dns after "$(rss_kb "$SERVER_PID")"
    stop_server
    log_run dns "$var" "$run" "rrclient: $rr"
    put dns "$var" rrqps "$(field rate "$rr")"
    put dns "$var" rrp50 "$(field p50_us "$rr")"
    put dns "$var" rrp99 "$(field p99_us "$rr")"
    put dns "$var" rrlost "$(field lost "$rr")"
    put dns "$var" rrbusy "$(awk -v t=$((t3 - t2)) -v h="$CLK_TCK" -v s="$(field seconds "$rr")" \
        'BEGIN { if (s > 0) printf "%.1f", t / h / s * 100 }')"
    q=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' <<<"$dp")
    log_run dns "$var" "$run" "$(grep -E 'Queries|Latency|Response codes' <<<"$dp" |
        tr -s ' ' | tr '\n' ';')"
    put dns "$var" qps "$(sed -n 's/^ *Queries per second: *//p' <<<"$dp")"
    put dns "$var" lat "$(sed -n 's/^ *Average Latency (s): *\([0-9.]*\).*/\1/p' <<<"$dp" |
        awk '{ if ($1 != "") printf "%.1f", $1 * 1e6 }')"
    put dns "$var" lost "$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' <<<"$dp")"
    put dns "$var" cpu "$(awk -v t=$((t1 - t0)) -v h="$CLK_TCK" -v n="${q:-0}" \
        'BEGIN { if (n > 0) printf "%.3f", t / h / n * 1e6 }')"
    put dns "$var" busy "$(busy "$(tail -1 "$WORK/v/dns.$var.cpu" 2>/dev/null)" \
        "$(sed -n 's/^ *Queries per second: *//p' <<<"$dp")")"
}

# dns_ceiling: dnsperf's own limit on its core in this run: dnsperf against the raw C echo,
# which sends each query back (dnsperf takes it as a NOERROR answer), so no DNS server
# on this machine can be measured by dnsperf above this rate.
dns_ceiling() {
    local out=$WORK/dns.ceiling.$run dp
    start_server "$out" "$SERVER_CPU" "$TOOLS/echo" --bind 127.0.0.1:0 --batch 64 \
        --seconds $((DNS_SECONDS + 30)) --idle 1 || return 0
    local cmd=(dnsperf -s 127.0.0.1 -p "${SERVER_ADDR##*:}" -d "$WORK/queries.txt"
               -l "$DNS_SECONDS" -c "$DNS_CLIENTS" -T 1 -q "$DNS_OUTSTANDING" -t 2)
    cmdline dns "$TOOLS/echo" --bind 127.0.0.1:0 --batch 64 --seconds $((DNS_SECONDS + 30)) \
        --idle 1
    cmdline dns "${cmd[@]}"
    dp=$( (pin "$CLIENT_CPU" "${cmd[@]}") 2>&1 ) || true
    wait_server
    log_run dns ceiling "$run" "$(grep -E 'Queries (per|lost)' <<<"$dp" | tr -s ' ' | tr '\n' ';')"
    put dns ceiling qps "$(sed -n 's/^ *Queries per second: *//p' <<<"$dp")"
}

# dns: dnsperf (one thread, DNS_CLIENTS sockets, DNS_OUTSTANDING in flight, DNS_SECONDS)
# asks "www.example.test A" of dnsdist with SpoofAction, dnsdist with a LuaAction that
# spoofs the same record, and luadgramd with scripts/dns.lua; then rrclient (--match=dnsid,
# the same in flight over as many sockets) asks the same server the same query. The
# targets are judged on dnsperf's figures, as in the issue, unless dnsperf itself is the
# limit: its ceiling measured in the same run (dns_ceiling) under 1.2 x LuaAction (then no
# server can show the target with dnsperf), or luadgramd at 95 % or more of it. A
# client-bound rate says nothing of the server, so the rrclient figures, under which every
# server's core is busy, judge them then.
section_dns() {
    local run port mport have_dnsdist=1 have_dns=1 r
    if ! command -v dnsperf >/dev/null; then
        md dns "dnsperf is not installed: the DNS section is skipped."
        return 0
    fi
    if ! command -v dnsdist >/dev/null; then
        have_dnsdist=; md dns "dnsdist is not installed: its rows are skipped."
    fi
    if [[ ! -f $SRC/scripts/dns.lua ]]; then
        have_dns=; md dns "scripts/dns.lua is not in the tree yet: the luadgramd row is skipped."
    elif ! BENCH_PORT=1 BENCH_METRICS_PORT=1 "$DAEMON" -t -c "$SRC/bench/luadgramd/dns.conf" \
            >"$WORK/dns.check" 2>&1; then
        have_dns=
        md dns "scripts/dns.lua does not load: $(tail -1 "$WORK/dns.check");" \
            "the luadgramd row is skipped."
    fi
    echo "www.example.test A" >"$WORK/queries.txt"
    # the same query for rrclient: ID 0 (rrclient writes its slot there), RD, A IN
    printf '\0\0\1\0\0\1\0\0\0\0\0\0\3www\7example\4test\0\0\1\0\1' >"$WORK/query.bin"
    for ((run = 1; run <= RUNS; run++)); do
        dns_ceiling
        if [[ -n $have_dnsdist ]]; then
            port=$(free_port)
            dns_run spoof "$port" '^Listening on' dnsdist --supervised --disable-syslog \
                -C "$SRC/bench/peers/dnsdist_spoof.conf" -l "127.0.0.1:$port"
            port=$(free_port)
            dns_run lua "$port" '^Listening on' dnsdist --supervised --disable-syslog \
                -C "$SRC/bench/peers/dnsdist_lua.conf" -l "127.0.0.1:$port"
        fi
        if [[ -n $have_dns ]]; then
            port=$(free_port); mport=$(free_port)
            dns_run luadgramd "$port" ' running: ' env BENCH_PORT="$port" \
                BENCH_METRICS_PORT="$mport" "$DAEMON" -c "$SRC/bench/luadgramd/dns.conf"
        fi
    done
    local ld lua spoof ceiling bound=
    ld=$(med dns luadgramd qps); lua=$(med dns lua qps); spoof=$(med dns spoof qps)
    ceiling=$(med dns ceiling qps)
    figure dns ceiling qps "dnsperf's ceiling on its core: the raw C echo answering, queries/s" \
        "$(ratio "$ceiling" "$lua") × LuaAction"
    # dnsperf cannot show 1.2 x LuaAction when even the raw C echo does not reach it
    r=$(ratio "$ceiling" "$lua")
    if [[ $r != "–" ]] && awk -v r="$r" 'BEGIN { exit !(r < 1.2) }'; then
        bound=" (client-bound: dnsperf's ceiling is $r × LuaAction, so no server can show 1.2 × with it here; judged by rrclient below)"
    fi
    r=$(ratio "$ld" "$ceiling")
    if [[ -z $bound && $r != "–" ]] && awk -v r="$r" 'BEGIN { exit !(r >= 0.95) }'; then
        bound=" (client-bound: luadgramd at $r × dnsperf's ceiling; judged by rrclient below)"
    fi
    figure dns spoof qps "dnsdist SpoofAction: queries/s" "$(ratio "$spoof" "$lua") × LuaAction"
    figure dns lua qps "dnsdist LuaAction: queries/s" "1.00 × LuaAction"
    r=$(ratio "$ld" "$lua")
    figure dns luadgramd qps "**luadgramd, scripts/dns.lua: queries/s**" "$r × LuaAction" \
        "≥ 1.2 × LuaAction" "$(meets "$r" ">=" 1.2)$(shared dns busy lua luadgramd)$bound"
    r=$(ratio "$ld" "$spoof")
    if [[ $r != "–" ]]; then
        printf '| %s | | | | %s | %s | %s |\n' "**luadgramd ÷ SpoofAction, queries/s medians**" \
            "$r" "≥ 1 × SpoofAction" \
            "$(meets "$r" ">=" 1)$(shared dns busy spoof luadgramd)$bound" >>"$WORK/md/dns.table"
    fi
    r=$(ratio "$(med dns lua cpu)" "$(med dns luadgramd cpu)")
    if [[ $r != "–" ]]; then
        printf '| %s | | | | %s | %s | %s |\n' \
            "the same from CPU per answer: LuaAction's CPU-s per million ÷ luadgramd's" \
            "$r" "≥ 1.2" "$(meets "$r" ">=" 1.2)${bound:+ (partial load)}" >>"$WORK/md/dns.table"
        r=$(ratio "$(med dns spoof cpu)" "$(med dns luadgramd cpu)")
        printf '| %s | | | | %s | %s | %s |\n' \
            "the same from CPU per answer: SpoofAction's CPU-s per million ÷ luadgramd's" \
            "$r" "≥ 1" "$(meets "$r" ">=" 1)${bound:+ (partial load)}" >>"$WORK/md/dns.table"
    fi
    local v
    for v in spoof lua luadgramd; do
        figure dns "$v" lat "$v: average latency, µs (dnsperf)"
    done
    for v in spoof lua luadgramd; do
        figure dns "$v" cpu "$v: server CPU-s per million answers" \
            "$(ratio "$(med dns "$v" cpu)" "$(med dns lua cpu)") × LuaAction"
    done
    for v in spoof lua luadgramd; do
        figure dns "$v" busy "$v: server core busy, %"
    done
    md dns "\"busy\" is the server's CPU time over the run's wall time: under 85 % the server had" \
        "time to spare, because the client was the limit (dnsperf's one thread) or another job" \
        "took part of its core, and the ratios of rates are marked so."
    for v in spoof lua luadgramd; do
        figure dns "$v" lost "$v: queries lost (2 s timeout)"
    done
    # rrclient: the same servers under the C client (dnsperf's one thread may be the limit)
    ld=$(med dns luadgramd rrqps); lua=$(med dns lua rrqps)
    figure dns spoof rrqps "rrclient: dnsdist SpoofAction: queries/s" \
        "$(ratio "$(med dns spoof rrqps)" "$lua") × LuaAction"
    figure dns lua rrqps "rrclient: dnsdist LuaAction: queries/s" "1.00 × LuaAction"
    r=$(ratio "$ld" "$lua")
    figure dns luadgramd rrqps "${bound:+**}rrclient: luadgramd, scripts/dns.lua: queries/s${bound:+**}" "$r × LuaAction" \
        "≥ 1.2 × LuaAction" "$(meets "$r" ">=" 1.2)$(shared dns rrbusy lua luadgramd)"
    r=$(ratio "$ld" "$(med dns spoof rrqps)")
    if [[ $r != "–" ]]; then
        printf '| %s | | | | %s | %s | %s |\n' \
            "${bound:+**}rrclient: luadgramd ÷ SpoofAction, queries/s medians${bound:+**}" "$r" \
            "≥ 1 × SpoofAction" \
            "$(meets "$r" ">=" 1)$(shared dns rrbusy spoof luadgramd)" \
            >>"$WORK/md/dns.table"
    fi
    for v in spoof lua luadgramd; do
        figure dns "$v" rrp50 "rrclient: $v: p50 latency, µs"
        figure dns "$v" rrp99 "rrclient: $v: p99 latency, µs"
    done
    for v in spoof lua luadgramd; do
        figure dns "$v" rrbusy "rrclient: $v: server core busy, %"
    done
    for v in spoof lua luadgramd; do
        figure dns "$v" rrlost "rrclient: $v: queries lost (1 s timeout)"
    done
}

# memory: luadgramd's resident size at idle with the default configuration (a copy of
# conf/luadgramd.conf on free ports, handlers from scripts/), and what the load sections
# measured: the echo run's RSS at its start, its highest sample, after it; after the
# collection and DNS loads.
section_memory() {
    local run out port mport conf=$WORK/default.conf
    for ((run = 1; run <= RUNS; run++)); do
        port=$(free_port); mport=$(free_port)
        sed -e "s/7777/$port/g" -e "s/9177/$mport/" "$SRC/conf/luadgramd.conf" >"$conf"
        printf 'script_path = "%s"\n' "$SRC/scripts" >>"$conf"
        cmdline memory "$DAEMON" -c "$conf"
        out=$WORK/memory.$run
        start_daemon "$out" "$SERVER_CPU" 10 ' running: ' "$DAEMON" -c "$conf" || continue
        sleep 1
        put memory default idle "$(rss_kb "$SERVER_PID")"
        log_run memory default "$run" "$(grep -E '^(VmRSS|VmHWM|RssAnon|RssFile|Threads)' \
            "/proc/$SERVER_PID/status" | tr -s ' \t' ' ' | tr '\n' ';')"
        stop_server
    done
    md memory "The default configuration is conf/luadgramd.conf with its two ports moved to free" \
        "ones and script_path set to scripts/ (the copy lives in a temporary folder)."
    local r idle_mib
    idle_mib=$(awk -v k="$(med memory default idle)" \
        'BEGIN { if (k != "") printf "%.2f", k / 1024 }')
    figure memory default idle "**luadgramd idle, default configuration: VmRSS KiB**" \
        "${idle_mib:+$idle_mib MiB}" "< 16 MiB" "$(meets "$idle_mib" "<" 16)"
    figure memory echo idle "echo.conf, started, before the load: VmRSS KiB"
    figure memory echo first "echo load, sample at 1 s: VmRSS KiB"
    figure memory echo max "echo load, highest 0.5 s sample: VmRSS KiB"
    figure memory echo after "echo load, at its end: VmRSS KiB"
    figure memory collect after "collection load, at its end: VmRSS KiB"
    figure memory dns after "DNS load, at its end: VmRSS KiB"
    local first max
    first=$(med memory echo first); max=$(med memory echo max)
    if [[ -n $first && -n $max ]]; then
        r=$(awk -v a="$max" -v b="$first" 'BEGIN { printf "%.0f", a - b }')
        printf '| %s | %s | | | | %s | %s |\n' "flat under load: highest − 1 s sample, KiB" \
            "$r" "≤ 1024 KiB" "$(meets "$r" "<=" 1024)" >>"$WORK/md/memory.table"
    fi
}

# syslog: (issue 4) luadgramd's syslog collector against rsyslog imudp→file and the raw sink.
# shellcheck source=bench/syslog/section.sh
source "$SRC/bench/syslog/section.sh"

# snmp: (issue 5) luadgramd's trap collector against snmptrapd.
# shellcheck source=bench/snmp/section.sh
source "$SRC/bench/snmp/section.sh"

# outputs, outputs_failover: (issue 13) the syslog collector into JetStream and Redis beside
# rsyslog's omhiredis; exactly once through a leader failover.
# shellcheck source=bench/outputs/section.sh
source "$SRC/bench/outputs/section.sh"

# profile: callgrind on luadgramd with scripts/echo.lua while rrclient sends PROFILE_COUNT
# requests; the top functions by instructions, and their share per shared object.
section_profile() {
    local run=1 out=$WORK/profile port mport cg=$WORK/callgrind.out rr
    if ! command -v valgrind >/dev/null || ! command -v callgrind_annotate >/dev/null; then
        md profile "valgrind is not installed: no profile."
        return 0
    fi
    port=$(free_port); mport=$(free_port)
    local cmd=(valgrind --tool=callgrind "--callgrind-out-file=$cg" "$DAEMON"
               -c "$SRC/bench/luadgramd/echo.conf")
    cmdline profile env BENCH_PORT="$port" BENCH_METRICS_PORT="$mport" "${cmd[@]}"
    start_daemon "$out" "$SERVER_CPU" 60 ' running: ' env BENCH_PORT="$port" \
        BENCH_METRICS_PORT="$mport" "${cmd[@]}" || return 0
    local rcmd=("$TOOLS/rrclient" --to "127.0.0.1:$port" --size "$ECHO_SIZE" --inflight "$INFLIGHT"
                --count "$PROFILE_COUNT" --seconds 120 --timeout 5000)
    cmdline profile "${rcmd[@]}"
    rr=$( (pin "$CLIENT_CPU" "${rcmd[@]}") ) || true
    log_run profile luadgramd 1 "rrclient: $rr"
    stop_server 60
    cmdline profile callgrind_annotate --inclusive=no "$cg"
    cmdline profile callgrind_annotate --inclusive=yes "$cg"
    if [[ ! -s $cg ]]; then
        md profile "callgrind wrote no profile: $(tail -3 "$out.err")"
        return 0
    fi
    callgrind_annotate --inclusive=no "$cg" >"$WORK/annotate.txt" 2>/dev/null || true
    callgrind_annotate --inclusive=yes "$cg" >"$WORK/inclusive.txt" 2>/dev/null || true
    local total
    total=$(sed -n 's/^ *\([0-9,]*\) *([^)]*) *PROGRAM TOTALS.*/\1/p' "$WORK/annotate.txt" |
        tr -d ,)
    {
        echo "rrclient under the profile: \`$rr\`"
        echo
        echo "Top 10 functions by instructions executed (self, not inclusive), of $total in all"
        echo "(start-up and shutdown included; the load dominates): about $(awk -v t="$total" \
            -v n="$PROFILE_COUNT" 'BEGIN { printf "%.0f", t / n }') instructions per datagram in"
        echo "user space, everything counted."
        echo
        echo '```'
        top_functions "$WORK/annotate.txt" 10 | sed 's|\[/[^]]*/\([^]/]*\)\]$|[\1]|'
        echo '```'
        echo
        echo "Named functions by inclusive instructions (with all they call), top 18; liblua's"
        echo "static functions have no symbols in Debian's build and are left out here:"
        echo
        echo '```'
        top_functions "$WORK/inclusive.txt" 400 | grep -v -e '???:0x' -e 'below main' \
            -e ':_start ' -e '__libc_start' | head -18 | sed 's|\[/[^]]*/\([^]/]*\)\]$|[\1]|'
        echo '```'
        echo
        echo "Instructions by object (all functions):"
        echo
        echo "| object | share of instructions |"
        echo "|---|---|"
        awk '/file:function/ { on = 1; next }
             on && NF && !/^-/ {
                 ir = $1; gsub(",", "", ir)
                 obj = "(no object shown)"
                 if (match($0, /\[[^]]*\]$/)) obj = substr($0, RSTART + 1, RLENGTH - 2)
                 n = split(obj, parts, "/"); obj = parts[n]
                 s[obj] += ir; t += ir
             }
             END { for (o in s) printf "%s\t%.1f\n", o, s[o] / t * 100 }' \
            "$WORK/annotate.txt" | sort -t$'\t' -k2 -gr | head -8 |
            awk -F'\t' '{ printf "| %s | %s %% |\n", $1, $2 }'
        echo
        echo "Callgrind counts user-space instructions only: the kernel's share (recvmmsg,"
        echo "sendmmsg, the UDP stack, which is most of the time on loopback) does not show."
    } >>"$WORK/md/profile.notes"
    echo "profile done: $(wc -l <"$WORK/annotate.txt") lines of callgrind_annotate"
}

# top_functions FILE N: the first N function lines of a callgrind_annotate output.
top_functions() {
    awk -v max="$2" '/file:function/ { on = 1; next }
        on && NF && !/^-/ && n < max { sub(/^ */, ""); print; n++ }' "$1"
}

# ---- RESULTS.md ----

SECTION_TITLES=(
    "echo:Echo: $ECHO_SIZE-byte datagrams, $INFLIGHT in flight, closed loop, ${ECHO_SECONDS} s"
    "collect:One-way collection: $COLLECT_COUNT datagrams of $COLLECT_SIZE bytes at $COLLECT_RATE/s"
    "dns:DNS: A www.example.test, dnsperf as the client"
    "memory:Memory"
    "syslog:Syslog collection (issue 4)"
    "snmp:SNMP traps (issue 5)"
    "snmpv3:SNMPv3 traps, authPriv SHA-256/AES (issue 12)"
    "outputs:Outputs: syslog into NATS JetStream and Redis Streams (issue 13)"
    "outputs_failover:Outputs: exactly once into JetStream R3 through a failover (issue 13)"
    "profile:Profile: callgrind on luadgramd with scripts/echo.lua"
)

# daemon_version: luadgramd -V, the commit, whether the tree had changes, the build type.
daemon_version() {
    local v c d=
    v=$("$DAEMON" -V 2>&1 | head -1)
    c=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')
    git -C "$SRC" diff --quiet 2>/dev/null || d=" (with uncommitted changes)"
    echo "$v, $c$d, Release build"
}

# write_results FILE INVOCATION LOAD_BEFORE: RESULTS.md from the sections' tables, notes
# and command lines; a block between <!-- notes --> and <!-- /notes --> in the old FILE
# (notes written by hand) is carried over.
write_results() {
    local file=$1 inv=$2 load0=$3 load1 kept=$WORK/kept-notes entry sec title busy
    load1=$(cut -d' ' -f1-3 /proc/loadavg)
    if [[ -f $file ]]; then
        sed -n '/^<!-- notes -->$/,/^<!-- \/notes -->$/p' "$file" >"$kept"
    fi
    busy=$(awk -v a="${load0%% *}" -v b="${load1%% *}" \
        'BEGIN { print (a > 0.5 || b > 1.5) ? 1 : 0 }')
    {
        echo "# Benchmark results"
        echo
        echo "Written by \`bench/run.sh\` on $(date -u '+%F %T UTC'); every figure is the"
        echo "median, minimum and maximum of RUNS=$RUNS runs, and the ratio compares medians"
        echo "measured in this same run of the script. Servers run on core $SERVER_CPU, clients on"
        echo "core $CLIENT_CPU (taskset); all traffic over loopback (127.0.0.1)."
        echo
        if [[ $busy == 1 ]]; then
            echo "**Preliminary:** the machine was not idle (load average $load0 before,"
            echo "$load1 after, on $(nproc) cores): other jobs shared the cores, so the absolute"
            echo "figures are low and noisy, and so is a ratio of rates marked"
            echo "\"server < 85 % busy\" (a server that had its core to itself shows 90-100 %"
            echo "in its \"busy\" row). The CPU-s per million figures and the ratios computed from"
            echo "them are the better guide then."
            echo
        fi
        echo "| machine | |"
        echo "|---|---|"
        echo "| cores (nproc) | $(nproc) |"
        echo "| CPU | $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1) |"
        echo "| kernel | $(uname -srm) |"
        # shellcheck disable=SC1091
        echo "| OS | $(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}") |"
        echo "| load average (1, 5, 15 min) before | $load0 |"
        echo "| load average after | $load1 |"
        echo "| luadgramd | $(daemon_version) |"
        echo
        echo "| peer package | version |"
        echo "|---|---|"
        peer_versions
        echo
        echo "Invocation: \`$inv\`. Command lines below are those of the first run (\$BUILD is"
        echo "\`${BUILD#"$SRC"/}\`, \$WORK a temporary folder; ports are picked free for each run)."
        for entry in "${SECTION_TITLES[@]}"; do
            sec=${entry%%:*}; title=${entry#*:}
            [[ -f $WORK/md/$sec.table || -f $WORK/md/$sec.notes || -f $WORK/md/$sec.cmds ]] ||
                continue
            echo
            echo "## $title"
            if [[ -f $WORK/md/$sec.table ]]; then
                echo
                echo "| figure | median | min | max | ratio to limit | target | met? |"
                echo "|---|---|---|---|---|---|---|"
                cat "$WORK/md/$sec.table"
            fi
            if [[ -f $WORK/md/$sec.notes ]]; then echo; cat "$WORK/md/$sec.notes"; fi
            if [[ -f $WORK/md/$sec.cmds ]]; then
                echo; echo "Commands:"; echo; cat "$WORK/md/$sec.cmds"
            fi
        done
        echo
        if [[ -s $kept ]]; then
            cat "$kept"
        else
            echo "<!-- notes -->"
            echo "<!-- /notes -->"
        fi
    } >"$file.tmp"
    mv "$file.tmp" "$file"
    echo "# wrote $file" >&2
}

# ---- main ----

main() {
    local s want=() all=1 load0 inv="bench/run.sh $*"
    for s in "$@"; do
        case $s in
            --list) printf '%s\n' "${SECTIONS[@]}" "${EXTRA_SECTIONS[@]}"; return 0 ;;
            -h|--help) sed -n '2,18p' "$0"; return 0 ;;
            *) declare -F "section_$s" >/dev/null || { echo "unknown section: $s" >&2; return 2; }
               want+=("$s"); all= ;;
        esac
    done
    (( ${#want[@]} )) || want=("${SECTIONS[@]}")
    [[ ${RUNS} != 3 ]] && inv="RUNS=$RUNS $inv"
    load0=$(cut -d' ' -f1-3 /proc/loadavg)
    install_peers
    [[ ${NO_BUILD:-} == 1 ]] || build_tools
    echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, RUNS=$RUNS" \
         "server cpu $SERVER_CPU, client cpu $CLIENT_CPU, load $load0"
    for s in "${want[@]}"; do
        "section_$s"
    done
    if [[ -n ${RESULTS:-} ]]; then
        write_results "$RESULTS" "${inv% }" "$load0"
    elif [[ -n $all ]]; then
        write_results "$SRC/bench/RESULTS.md" "${inv% }" "$load0"
    fi
}

main "$@"
