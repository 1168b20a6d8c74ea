# bench/outputs/section.sh: section_outputs and section_outputs_failover of bench/run.sh
# (issue 13), sourced by it after bench/syslog/section.sh (syslog_step, syslog_runs,
# syslog_payload, SYSLOG_*) and its helpers (pin, field, free_port, cpu_ticks, metric,
# start_daemon, stop_server, put, med, fmt, figure, md, cmdline, log_run, ratio, meets,
# loss_pct; SRC, BUILD, TOOLS, DAEMON, WORK, RUNS, SERVER_CPU, CLIENT_CPU, CLK_TCK,
# PEER_PIDS). It owns the bus servers it starts (nats-server, redis-server: pids in
# PEER_PIDS, which run.sh's cleanup stops) and their folders under WORK.
#
# section_outputs, on the same load (OUTPUTS_COUNT syslog lines of bench/syslog/payload.sh
# at OUTPUTS_RATE/s, loadgen on CLIENT_CPU):
#   nats_r1   luadgramd, scripts/syslog.lua with a nats sink (bench/outputs/luadgramd.conf)
#             into a JetStream stream of one replica (one nats-server)
#   nats_r3   the same into a stream of three replicas (three clustered nats-servers)
#   redis     the same with a redis sink (Redis Streams, one redis-server)
#   rsyslog   rsyslogd, imudp and omhiredis (bench/outputs/rsyslog.conf.in) writing the
#             same JSON fields into the same redis-server (mode "queue", a list: Debian 12's
#             omhiredis has no "stream" mode)
# Receivers on SERVER_CPU; the bus servers on OUTPUTS_BUS_CPU (CLIENT_CPU: the receiver
# keeps its core). Figures: records stored vs sent; records per second from the first
# datagram to the last record stored (the store polled every 0.1 s); CPU-µs per record (the
# receiver's utime + stime, all threads, over the same time / records stored); luadgramd's
# records per CPU-second over rsyslog's into Redis (target > 1).
# Then the receive path with and without the bus: syslog_runs (bench/syslog/section.sh) at
# SYSLOG_RATES, fresh receivers per step, luadgramd writing a JSON file (as section_syslog)
# and luadgramd_nats publishing to a fresh one-node JetStream R1: loss-free rate of each and
# their ratio (target 1: unchanged).
#
# section_outputs_failover: FAILOVER_COUNT datagrams at FAILOVER_RATE/s into an R3 stream
# (three nats-servers) while the stream's leader is SIGKILLed once FAILOVER_KILL_AT % of the
# records were published, and restarted once another node leads and FAILOVER_RESTART_AT %
# were published; an echo listener of the same worker is probed by rrclient (closed loop,
# FAILOVER_INFLIGHT in flight) meanwhile. Then (alldown) the same load while all three
# servers are stopped (SIGKILL) for ALLDOWN_SECONDS and started again. The stream is read
# back (spec/tools/nats_stream dump): records, distinct Nats-Msg-Ids, duplicate ids, and by
# the payload's sequence number ("seq=N") duplicates and missing ones; rrclient's p99.
# Environment: OUTPUTS_COUNT (100000), OUTPUTS_RATE (20000), OUTPUTS_WAIT (60 s at most for
# the last records to be stored), OUTPUTS_BUS_CPU (CLIENT_CPU); FAILOVER_COUNT (100000),
# FAILOVER_RATE (20000), FAILOVER_KILL_AT (30), FAILOVER_RESTART_AT (60), FAILOVER_INFLIGHT
# (4), ALLDOWN_SECONDS (10), FAILOVER_CASES ("leader alldown"). Needs nats-server,
# redis-server (redis-cli), rsyslog and rsyslog-hiredis (install_peers installs them and
# stops the services their packages start) and BUILD's nats_stream.

OUTPUTS_COUNT=${OUTPUTS_COUNT:-100000}
OUTPUTS_RATE=${OUTPUTS_RATE:-20000}
OUTPUTS_WAIT=${OUTPUTS_WAIT:-60}
OUTPUTS_BUS_CPU=${OUTPUTS_BUS_CPU:-$CLIENT_CPU}
OUTPUTS_KINDS=(nats_r1 nats_r3 redis rsyslog)
FAILOVER_COUNT=${FAILOVER_COUNT:-100000}
FAILOVER_RATE=${FAILOVER_RATE:-20000}
FAILOVER_KILL_AT=${FAILOVER_KILL_AT:-30}
FAILOVER_RESTART_AT=${FAILOVER_RESTART_AT:-60}
FAILOVER_INFLIGHT=${FAILOVER_INFLIGHT:-4}
ALLDOWN_SECONDS=${ALLDOWN_SECONDS:-10}
FAILOVER_CASES=${FAILOVER_CASES:-"leader alldown"}
NATS_TOOL=$BUILD/nats_stream

# ---- bus servers ----

# bus_start LOG CMD...: starts a bus server on OUTPUTS_BUS_CPU at nice OUTPUTS_BUS_NICE
# (output to LOG), adds its pid to PEER_PIDS and sets BUS_PID.
bus_start() {
    local log=$1; shift
    (pin "$OUTPUTS_BUS_CPU" nice -n "${OUTPUTS_BUS_NICE:-0}" "$@") >"$log" 2>&1 </dev/null &
    BUS_PID=$!
    PEER_PIDS+=("$BUS_PID")
}

# bus_stop PID [SIGNAL]: sends SIGNAL (TERM) to a bus server, waits for it (SIGKILL after
# 10 s) and drops it from PEER_PIDS.
bus_stop() {
    local pid=$1 sig=${2:-TERM} i keep=() p
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PEER_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PEER_PIDS=("${keep[@]}")
}

# wait_until SECONDS CMD...: runs CMD every 0.1 s until it succeeds (0) or SECONDS passed (1).
wait_until() {
    local end=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || return 1
        sleep 0.1
    done
}

# nats_up N DIR: starts N nats-servers with JetStream (clustered when N > 1; names n1..nN,
# stores under DIR) and waits until JetStream answers on each. Sets NATS_URLS (array),
# NATS_PID and NATS_CMD (per name).
declare -A NATS_PID NATS_CMD
NATS_URLS=()
nats_up() {
    local n=$1 dir=$2 i ports=() routes=() p cl
    mkdir -p "$dir"
    for ((i = 0; i < 2 * n; i++)); do
        p=$(free_port) || return 1
        [[ " ${ports[*]} " == *" $p "* ]] && { i=$((i - 1)); continue; }
        ports+=("$p")
    done
    for ((i = 1; i <= n; i++)); do routes+=("nats-route://127.0.0.1:${ports[2 * i - 1]}"); done
    NATS_URLS=() NATS_PID=() NATS_CMD=()
    for ((i = 1; i <= n; i++)); do
        cl=
        if ((n > 1)); then
            cl="cluster { name: bench, listen: 127.0.0.1:${ports[2 * i - 1]}, routes: [ $(
                IFS=,; echo "${routes[*]}") ] }"
        fi
        printf 'server_name: n%d\nlisten: 127.0.0.1:%d\n%s\n%s\n' "$i" "${ports[2 * i - 2]}" \
            "jetstream { store_dir: \"$dir/n$i\", max_file_store: 4G, max_memory_store: 64M }" \
            "$cl" >"$dir/n$i.conf"
        NATS_CMD[n$i]="nats-server -c $dir/n$i.conf"
        bus_start "$dir/n$i.log" nats-server -c "$dir/n$i.conf"
        NATS_PID[n$i]=$BUS_PID
        NATS_URLS+=("nats://127.0.0.1:${ports[2 * i - 2]}")
    done
    for p in "${NATS_URLS[@]}"; do
        if ! wait_until 30 "$NATS_TOOL" "$p" ready; then
            echo "# nats-server $p did not answer: $(tail -3 "$dir"/n*.log)" >&2
            return 1
        fi
    done
}

# nats_down: stops every nats-server nats_up started.
nats_down() {
    local name
    for name in "${!NATS_PID[@]}"; do bus_stop "${NATS_PID[$name]}"; done
    NATS_PID=()
}

# nats_restart NAME: starts node NAME again with the same configuration (and store).
nats_restart() {
    local conf=${NATS_CMD[$1]#nats-server -c }
    bus_start "${conf%.conf}.log.$SECONDS" nats-server -c "$conf"
    NATS_PID[$1]=$BUS_PID
}

# nats_ask ARGS...: nats_stream ARGS on the first node that answers (at most 20 s each).
nats_ask() {
    local url
    for url in "${NATS_URLS[@]}"; do
        timeout 20 "$NATS_TOOL" "$url" "$@" 2>/dev/null && return 0
    done
    return 1
}

# nats_count STREAM: the records the stream holds (0 when it does not answer).
nats_count() {
    local out
    out=$(nats_ask count "$1") || { echo 0; return 0; }
    echo "${out#count }"
}

# redis_up DIR: starts redis-server on a free port with its data in DIR (AOF, fsync every
# second: Redis' durable default), sets REDIS_PORT and REDIS_PID; waits for its PONG.
redis_up() {
    mkdir -p "$1"
    REDIS_PORT=$(free_port) || return 1
    bus_start "$1/redis.log" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$1" \
        --appendonly yes --appendfsync everysec --save '' --daemonize no
    REDIS_PID=$BUS_PID
    wait_until 20 redis_pong || { echo "# redis-server did not answer" >&2; return 1; }
}
redis_pong() { [[ $(redis-cli -p "$REDIS_PORT" PING 2>/dev/null) == PONG ]]; }

# redis_count KEY: XLEN of the stream (0 when Redis does not answer).
# redis_list_count KEY: LLEN of the list (rsyslog's omhiredis, mode queue).
redis_count() {
    local n
    n=$(redis-cli -p "$REDIS_PORT" XLEN "$1" 2>/dev/null) || n=0
    echo "${n:-0}"
}
redis_list_count() {
    local n
    n=$(redis-cli -p "$REDIS_PORT" LLEN "$1" 2>/dev/null) || n=0
    echo "${n:-0}"
}

# ---- one measured load ----

# outputs_wait_stored TARGET CMD...: polls CMD (prints a count) every 0.1 s until it prints
# TARGET, or the count stood still OUTPUTS_STILL s (5), or OUTPUTS_WAIT s passed; prints
# "COUNT T" with T the epoch time (date +%s.%N) the count last grew.
OUTPUTS_STILL=5
outputs_wait_stored() {
    local target=$1 n last=-1 t_last end=$((SECONDS + OUTPUTS_WAIT)) still=$SECONDS; shift
    t_last=$(date +%s.%N)
    while ((SECONDS < end)); do
        n=$("$@")
        if [[ $n != "$last" ]]; then
            last=$n still=$SECONDS t_last=$(date +%s.%N)
        fi
        [[ $n == "$target" ]] && break
        ((SECONDS - still >= OUTPUTS_STILL)) && break
        sleep 0.1
    done
    echo "$last $t_last"
}

# outputs_measure KIND MPORT CMD...: sends the load to 127.0.0.1:PORT (the receiver is
# SERVER_PID), waits until CMD (a count of the records stored) reaches the datagrams sent;
# puts sent, stored, rate, cpu (µs per record) of the run and logs them with the receiver's
# output counters (luadgramd: MPORT is its metrics port; rsyslog: empty).
outputs_measure() {
    local kind=$1 mport=$2; shift 2
    local cmd=("$TOOLS/loadgen" --to "127.0.0.1:$OUTPUTS_PORT" --count "$OUTPUTS_COUNT"
               --rate "$OUTPUTS_RATE" --payload "$SYSLOG_PAYLOAD" --payload-lines --batch 64
               --seconds $((OUTPUTS_COUNT * 4 / OUTPUTS_RATE + 10)))
    local c0 c1 t0 lg sent stored t_end secs counters=
    cmdline outputs "${cmd[@]}"
    c0=$(cpu_ticks "$SERVER_PID")
    t0=$(date +%s.%N)
    lg=$( (pin "$CLIENT_CPU" "${cmd[@]}") ) || true
    sent=$(field sent "$lg")
    read -r stored t_end < <(outputs_wait_stored "$sent" "$@")
    c1=$(cpu_ticks "$SERVER_PID" 2>/dev/null) || c1=
    if [[ -n $mport ]]; then
        local f
        for f in published_total acked_total retried_total spooled_total dropped_total inflight \
                 spool_bytes; do
            counters+=" $f=$(metric "$mport" "luadgramd_output_$f")"
        done
        counters+=" kernel_drops=$(metric "$mport" luadgramd_kernel_drops_total)"
    fi
    secs=$(awk -v a="$t0" -v b="$t_end" 'BEGIN { printf "%.3f", b - a }')
    log_run outputs "$kind" "$run" "loadgen: $lg; stored=$stored seconds=$secs" \
        "cpu_ticks=$((${c1:-0} - c0))$counters"
    put outputs "$kind" sent "$sent"
    put outputs "$kind" lgrate "$(field rate "$lg")"
    put outputs "$kind" stored "$stored"
    put outputs "$kind" loss "$(loss_pct "$sent" "$stored")"
    put outputs "$kind" rate "$(awk -v n="$stored" -v s="$secs" \
        'BEGIN { if (s > 0 && n > 0) printf "%.0f", n / s }')"
    [[ -n $c1 ]] && put outputs "$kind" cpu "$(awk -v t=$((c1 - c0)) -v h="$CLK_TCK" \
        -v n="$stored" 'BEGIN { if (n > 0) printf "%.2f", t / h / n * 1e6 }')"
    return 0
}

# outputs_env OUTPUT STREAM [ECHO_PORT]: sets OUTPUTS_PORT, OUTPUTS_MPORT and LD_ENV (the env
# command line of bench/outputs/luadgramd.conf for the sink OUTPUT into STREAM, spool in
# WORK/spool.STREAM; the bus from NATS_URLS or REDIS_PORT).
outputs_env() {
    OUTPUTS_PORT=$(free_port) || return 1
    OUTPUTS_MPORT=$(free_port) || return 1
    LD_ENV=(env BENCH_PORT="$OUTPUTS_PORT" BENCH_METRICS_PORT="$OUTPUTS_MPORT"
            BENCH_OUTPUT="$1" BENCH_STREAM="$2" BENCH_SPOOL="$WORK/spool.$2")
    if [[ $1 == nats ]]; then
        LD_ENV+=(BENCH_NATS_URLS="${NATS_URLS[*]}" BENCH_REPLICAS="${#NATS_URLS[@]}")
    else
        LD_ENV+=(BENCH_REDIS="127.0.0.1:$REDIS_PORT")
    fi
    if [[ -n ${3:-} ]]; then LD_ENV+=(BENCH_ECHO_PORT="$3"); fi
}

# outputs_luadgramd KIND OUTPUT STREAM COUNT_CMD...: one measured load of luadgramd's
# syslog collector with the sink OUTPUT into STREAM.
outputs_luadgramd() {
    local kind=$1 output=$2 stream=$3 out=$WORK/outputs.$1.$run; shift 3
    outputs_env "$output" "$stream" || return 0
    cmdline outputs "${LD_ENV[@]}" "$DAEMON" -c "$SRC/bench/outputs/luadgramd.conf"
    start_daemon "$out" "$SERVER_CPU" 30 ' running: ' "${LD_ENV[@]}" "$DAEMON" \
        -c "$SRC/bench/outputs/luadgramd.conf" || return 0
    outputs_measure "$kind" "$OUTPUTS_MPORT" "$@" "$stream"
    if [[ $run == 1 && $output == redis ]]; then
        log_run outputs "$kind" 1 "a record: $(redis-cli -p "$REDIS_PORT" --raw XRANGE \
            "$stream" - + COUNT 1 | tr '\n' ' ' | head -c 400)"
    fi
    stop_server 30
    log_run outputs "$kind" "$run" "log: $(grep -hE ' (warn|error|info): .*(nats|redis)' \
        "$out.err" "$out" | head -4 | tr '\n' ' ')"
}

# outputs_rsyslog KEY: one measured load of rsyslog (imudp, omhiredis) into the stream KEY.
outputs_rsyslog() {
    local key=$1 out=$WORK/outputs.rsyslog.$run dir=$WORK/outputs.rsyslog.$run.d
    mkdir -p "$dir"
    OUTPUTS_PORT=$(free_port) || return 0
    sed -e "s|@PORT@|$OUTPUTS_PORT|g" -e "s|@REDIS_PORT@|$REDIS_PORT|g" -e "s|@KEY@|$key|g" \
        -e "s|@INTERNAL@|$out|g" -e "s|@WORKDIR@|$dir|g" -e "s|@MODDIR@|$OMHIREDIS_DIR|g" \
        "$SRC/bench/outputs/rsyslog.conf.in" >"$dir/rsyslog.conf"
    local cmd=(rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid")
    cmdline outputs "${cmd[@]}"
    start_daemon "$out" "$SERVER_CPU" 10 'rsyslogd: .*\] start$' "${cmd[@]}" || return 0
    wait_until 5 syslog_udp_drops_bound "$OUTPUTS_PORT" || true # its socket is bound
    outputs_measure rsyslog "" redis_list_count "$key"
    ((run > 1)) || log_run outputs rsyslog 1 "a record: $(redis-cli -p "$REDIS_PORT" \
        LINDEX "$key" 0 | head -c 400)"
    stop_server
    log_run outputs rsyslog "$run" "log: $(grep -v -e '\] start$' -e 'exiting on signal' \
        -e 'rcvbuf size' "$out" | head -2 | tr '\n' ' ')"
}
syslog_udp_drops_bound() { [[ -n $(syslog_udp_drops "$1") ]]; }

# omhiredis_dir: the folder of rsyslog's omhiredis.so (Debian rsyslog-hiredis), or nothing.
omhiredis_dir() {
    local f
    f=$(dpkg -L rsyslog-hiredis 2>/dev/null | grep '/omhiredis\.so$' | head -1)
    [[ -n $f && -f $f ]] && dirname "$f"
}

section_outputs() {
    local run missing=''
    if ! command -v nats-server >/dev/null || ! command -v redis-server >/dev/null ||
            [[ ! -x $NATS_TOOL ]]; then
        md outputs "nats-server, redis-server or $NATS_TOOL is missing: no figures."
        return 0
    fi
    OMHIREDIS_DIR=$(omhiredis_dir || true)
    if ! command -v rsyslogd >/dev/null || [[ -z $OMHIREDIS_DIR ]]; then
        md outputs "rsyslog or rsyslog-hiredis is not installed: its rows are skipped."
        missing=rsyslog
    fi
    run=1
    # shellcheck disable=SC2034 # read by syslog_step and syslog_runs (bench/syslog)
    local SYSLOG_SEC=outputs
    syslog_payload || return 0
    for ((run = 1; run <= RUNS; run++)); do
        # R1: one node; R3: three; Redis: luadgramd then rsyslog into one redis-server
        nats_up 1 "$WORK/nats1.$run" && outputs_luadgramd nats_r1 nats R1 nats_count
        nats_down
        rm -rf "$WORK/nats1.$run"
        nats_up 3 "$WORK/nats3.$run" && outputs_luadgramd nats_r3 nats R3 nats_count
        nats_down
        rm -rf "$WORK/nats3.$run"
        if redis_up "$WORK/redis.$run"; then
            outputs_luadgramd redis redis luadgramd redis_count
            [[ -n $missing ]] || outputs_rsyslog rsyslog
            bus_stop "$REDIS_PID"
        fi
        rm -rf "$WORK/redis.$run"
    done
    # the receive path's loss-free rate with a file sink and with a JetStream R1 sink
    # shellcheck disable=SC2034 # read by syslog_runs
    local SYSLOG_MISSING=''
    syslog_runs luadgramd luadgramd_nats
    outputs_results
}

# The nats R1 sink of syslog_step (bench/syslog/section.sh): a fresh one-node JetStream per
# step (stream R1), luadgramd with bench/outputs/luadgramd.conf.
syslog_setup_luadgramd_nats() {
    local dir=$WORK/nats.step
    # the step's nats-server shares the load generator's core: at nice 19 it takes only what
    # loadgen leaves, so that loadgen offers the step's rate (the bus is another host in
    # production); luadgramd spools what the server does not take in time
    local OUTPUTS_BUS_NICE=19
    rm -rf "$dir"
    nats_up 1 "$dir" || { nats_down; return 1; }
    # conf, envs and stored are syslog_step's (bench/syslog/section.sh)
    conf=$SRC/bench/outputs/luadgramd.conf
    # shellcheck disable=SC2034
    envs=(env BENCH_PORT="$port" BENCH_METRICS_PORT="$mport" BENCH_OUTPUT=nats BENCH_STREAM=R1
          BENCH_SPOOL="$dir/spool" BENCH_NATS_URLS="${NATS_URLS[*]}" BENCH_REPLICAS=1)
    stored=(nats_count R1)
}
syslog_teardown_luadgramd_nats() {
    nats_down
    rm -rf "$WORK/nats.step"
}

# outputs_results: the table of section_outputs.
outputs_results() {
    local kind r label
    local -A labels=(
        [nats_r1]="luadgramd, syslog.lua → JetStream R1"
        [nats_r3]="luadgramd, syslog.lua → JetStream R3 (3 nodes)"
        [redis]="luadgramd, syslog.lua → Redis Streams"
        [rsyslog]="rsyslog imudp → omhiredis (list, LPUSH)")
    for kind in "${OUTPUTS_KINDS[@]}"; do
        figure outputs "$kind" stored "${labels[$kind]}: records stored (of $OUTPUTS_COUNT sent)" \
            "" "$OUTPUTS_COUNT" "$(meets "$(med outputs "$kind" stored)" ">=" "$OUTPUTS_COUNT")"
    done
    for kind in "${OUTPUTS_KINDS[@]}"; do
        figure outputs "$kind" rate "${labels[$kind]}: records/s, first datagram to last stored" \
            "$(ratio "$(med outputs "$kind" rate)" "$OUTPUTS_RATE") × offered"
    done
    for kind in "${OUTPUTS_KINDS[@]}"; do
        figure outputs "$kind" lgrate "loadgen: send rate achieved towards $kind" \
            "$(ratio "$(med outputs "$kind" lgrate)" "$OUTPUTS_RATE") × offered"
    done
    for kind in "${OUTPUTS_KINDS[@]}"; do
        figure outputs "$kind" cpu "${labels[$kind]}: CPU-µs per record" \
            "$(ratio "$(med outputs "$kind" cpu)" "$(med outputs rsyslog cpu)") × rsyslog"
    done
    # records per CPU-second = 1e6 / CPU-µs per record: luadgramd's over rsyslog's
    r=$(ratio "$(med outputs rsyslog cpu)" "$(med outputs redis cpu)")
    if [[ $r != "–" ]]; then
        printf '| %s | | | | %s | %s | %s |\n' \
            "**luadgramd ÷ rsyslog into Redis, records per CPU-second (medians)**" "$r" "> 1" \
            "$(meets "$r" ">" 1)" >>"$WORK/md/outputs.table"
    fi
    figure outputs luadgramd lossfree \
        "receive path, syslog.lua → JSON file: highest loss-free rate, messages/s"
    r=$(ratio "$(med outputs luadgramd_nats lossfree)" "$(med outputs luadgramd lossfree)")
    figure outputs luadgramd_nats lossfree \
        "**receive path, syslog.lua → JetStream R1: highest loss-free rate, messages/s**" \
        "$r × file" "1 × file (unchanged)" "$(meets "$r" ">=" 1)"
    for r in $SYSLOG_RATES; do
        for kind in luadgramd luadgramd_nats; do
            label="receive path → file"
            [[ $kind == luadgramd ]] || label="receive path → JetStream R1"
            figure outputs "$kind" "cpu_$r" "$label: CPU-µs per message at $r/s" \
                "$(ratio "$(med outputs "$kind" "cpu_$r")" "$(med outputs luadgramd "cpu_$r")") × file"
        done
    done
    md outputs "Each load: loadgen sends $OUTPUTS_COUNT $SYSLOG_SIZE-byte syslog lines" \
        "(bench/syslog/payload.sh) at $OUTPUTS_RATE/s from core $CLIENT_CPU to a receiver on" \
        "core $SERVER_CPU; the bus servers run on core $OUTPUTS_BUS_CPU (nats-server 2.9 with" \
        "JetStream file storage in a temporary folder; redis-server with appendonly yes," \
        "appendfsync everysec). luadgramd (bench/outputs/luadgramd.conf) parses every message" \
        "with scripts/syslog.lua and publishes its JSON line through one sink (nats: one" \
        "stream created with 1 or 3 replicas, Nats-Msg-Id per record, max_inflight 4096;" \
        "redis: XADD id, data); rsyslog (bench/outputs/rsyslog.conf.in) parses with its" \
        "default parsers and writes the same JSON fields with omhiredis into the same" \
        "redis-server (another key): Debian 12's omhiredis (rsyslog 8.2302) has no \"stream\"" \
        "mode, so it runs in mode \"queue\" (LPUSH of each JSON line to a list, pipelined per" \
        "batch: one command of one value per record, as XADD). Records/s" \
        "run from the first datagram to the last record stored (the stream's length, polled" \
        "every 0.1 s): at an offered $OUTPUTS_RATE/s they show whether the receiver kept up," \
        "not its ceiling. CPU-µs per record: the receiver's user + system time (all threads," \
        "/proc/PID/stat) over that time, divided by the records stored; the CPU the bus" \
        "servers spend is not counted (they would be other hosts)."
    md outputs ""
    md outputs "The loss-free rows: the steps of section_syslog (bench/syslog/section.sh," \
        "SYSLOG_RATES $SYSLOG_RATES, $SYSLOG_SECONDS s each, a fresh receiver per step) in" \
        "the same run for luadgramd writing the JSON file and luadgramd publishing to a fresh" \
        "one-node JetStream R1 (at nice 19 on the load generator's core, so that the load is" \
        "offered at the step's rate; stored = the stream's count once it stood still 1.6 s)."
}

# ---- failover ----

# failover_published MPORT: the records the output published so far (0 when unknown).
failover_published() {
    local n
    n=$(metric "$1" luadgramd_output_published_total)
    echo "${n:-0}"
}

# failover_wait_published MPORT N LOADGEN_PID: waits until the output published N records
# (or the load ended).
failover_wait_published() {
    while kill -0 "$3" 2>/dev/null; do
        (($(failover_published "$1") >= $2)) && return 0
        sleep 0.05
    done
}

# failover_new_leader OLD: waits (30 s at most) until a node other than OLD leads stream
# R3; prints it.
failover_new_leader() {
    local l i
    for ((i = 0; i < 300; i++)); do
        l=$(nats_ask leader R3 || true)
        if [[ -n $l && $l != "$1" ]]; then echo "$l"; return 0; fi
        sleep 0.1
    done
    return 1
}

# failover_check DUMP: "records= ids= dup_ids= dup_seqs= missing=" of a nats_stream dump
# (line 1 "count N", then "ID DATA" per record; the data holds "seq=N", 0 .. FAILOVER_COUNT-1).
failover_check() {
    awk -v n="$FAILOVER_COUNT" 'NR == 1 { next }
        { ids[$1]++; if (ids[$1] == 2) dupid++
          if (match($0, /seq=[0-9]+/)) {
              s = substr($0, RSTART + 4, RLENGTH - 4) + 0
              seen[s]++; if (seen[s] == 2) dupseq++ } }
        END { for (i = 0; i < n; i++) if (!(i in seen)) miss++
              printf "records=%d ids=%d dup_ids=%d dup_seqs=%d missing=%d\n",
                  NR - 1, length(ids), dupid, dupseq, miss }' "$1"
}

# failover_case CASE: one load into R3 with the leader killed (leader) or all nodes down
# for ALLDOWN_SECONDS (alldown); puts the figures under "outputs_failover CASE".
failover_case() {
    local case=$1 out=$WORK/failover.$1.$run dir=$WORK/failover.$1.$run.d
    local echo_port lg_pid rr_pid lg rr leader new='' t_kill t_new name chk stored t_end
    nats_up 3 "$dir" || { nats_down; return 0; }
    echo_port=$(free_port) || return 0
    outputs_env nats R3 "$echo_port" || return 0
    cmdline outputs_failover "${LD_ENV[@]}" "$DAEMON" -c "$SRC/bench/outputs/luadgramd.conf"
    if ! start_daemon "$out" "$SERVER_CPU" 30 ' running: ' "${LD_ENV[@]}" "$DAEMON" \
            -c "$SRC/bench/outputs/luadgramd.conf"; then
        nats_down
        return 0
    fi
    leader=$(nats_ask leader R3) || leader=
    if [[ -z $leader || -z ${NATS_PID[$leader]:-} ]]; then
        md outputs_failover "run $run, $case: stream R3 has no leader: $(tail -2 "$out.err")"
        stop_server 30
        nats_down
        return 0
    fi
    local lcmd=("$TOOLS/loadgen" --to "127.0.0.1:$OUTPUTS_PORT" --count "$FAILOVER_COUNT"
                --rate "$FAILOVER_RATE" --payload "$FAILOVER_PAYLOAD" --payload-lines
                --batch 16 --seconds $((FAILOVER_COUNT * 4 / FAILOVER_RATE + 10)))
    local secs=$((FAILOVER_COUNT / FAILOVER_RATE + ALLDOWN_SECONDS + 5))
    local rcmd=("$TOOLS/rrclient" --to "127.0.0.1:$echo_port" --size 64
                --inflight "$FAILOVER_INFLIGHT" --seconds "$secs" --timeout 1000)
    cmdline outputs_failover "${lcmd[@]}"
    cmdline outputs_failover "${rcmd[@]}"
    (pin "$CLIENT_CPU" "${rcmd[@]}") >"$out.rr" 2>&1 &
    rr_pid=$!
    (pin "$CLIENT_CPU" "${lcmd[@]}") >"$out.lg" 2>&1 &
    lg_pid=$!
    failover_wait_published "$OUTPUTS_MPORT" $((FAILOVER_COUNT * FAILOVER_KILL_AT / 100)) "$lg_pid"
    t_kill=$(date +%s.%N)
    local at_kill
    at_kill=$(failover_published "$OUTPUTS_MPORT")
    if [[ $case == leader ]]; then
        bus_stop "${NATS_PID[$leader]}" KILL
        new=$(failover_new_leader "$leader") || new=
        t_new=$(date +%s.%N)
        failover_wait_published "$OUTPUTS_MPORT" \
            $((FAILOVER_COUNT * FAILOVER_RESTART_AT / 100)) "$lg_pid"
        nats_restart "$leader"
        log_run outputs_failover "$case" "$run" "leader $leader SIGKILLed at $at_kill" \
            "published; new leader ${new:-none} after $(awk -v a="$t_kill" -v b="$t_new" \
            'BEGIN { printf "%.2f", b - a }') s; $leader restarted at" \
            "$(failover_published "$OUTPUTS_MPORT") published"
    else
        for name in "${!NATS_PID[@]}"; do bus_stop "${NATS_PID[$name]}" KILL; done
        sleep "$ALLDOWN_SECONDS" # the outage itself: how long the bus stays away
        for name in n1 n2 n3; do nats_restart "$name"; done
        log_run outputs_failover "$case" "$run" "all three SIGKILLed at $at_kill published," \
            "restarted after" \
            "$ALLDOWN_SECONDS s; spooled so far $(metric "$OUTPUTS_MPORT" \
            luadgramd_output_spooled_total)"
    fi
    wait "$lg_pid" || true
    wait "$rr_pid" || true
    lg=$(tail -1 "$out.lg") rr=$(tail -1 "$out.rr")
    local OUTPUTS_STILL=20 # a cluster back from an outage takes seconds to elect leaders
    read -r stored t_end < <(outputs_wait_stored "$(field sent "$lg")" nats_count R3)
    local counters='' f
    for f in published_total acked_total retried_total spooled_total dropped_total inflight \
             spool_bytes; do
        counters+=" $f=$(metric "$OUTPUTS_MPORT" "luadgramd_output_$f")"
    done
    put outputs_failover "$case" retried "$(metric "$OUTPUTS_MPORT" luadgramd_output_retried_total)"
    put outputs_failover "$case" spooled "$(metric "$OUTPUTS_MPORT" luadgramd_output_spooled_total)"
    stop_server 30
    timeout 300 "$NATS_TOOL" "${NATS_URLS[0]}" dump R3 >"$out.dump" 2>/dev/null ||
        nats_ask dump R3 >"$out.dump" || true
    chk=$(failover_check "$out.dump")
    log_run outputs_failover "$case" "$run" "loadgen: $lg; rrclient: $rr; stream: $stored;" \
        "check: $chk;$counters; log: $(grep -hE 'nats' "$out.err" "$out" | grep -vE ' running: ' |
        cut -c1-160 | head -8 | tr '\n' ' ')"
    put outputs_failover "$case" sent "$(field sent "$lg")"
    local k
    for k in records ids dup_ids dup_seqs missing; do
        put outputs_failover "$case" "$k" "$(field "$k" "$chk")"
    done
    put outputs_failover "$case" p99 "$(field p99_us "$rr")"
    put outputs_failover "$case" max "$(field max_us "$rr")"
    put outputs_failover "$case" lost "$(field lost "$rr")"
    nats_down
    rm -rf "$dir"
}

section_outputs_failover() {
    local run case
    if ! command -v nats-server >/dev/null || [[ ! -x $NATS_TOOL ]]; then
        md outputs_failover "nats-server or $NATS_TOOL is missing: no figures."
        return 0
    fi
    FAILOVER_PAYLOAD=$WORK/failover.lines
    run=1
    cmdline outputs_failover "$SRC/bench/syslog/payload.sh" "$FAILOVER_COUNT" \
        "$FAILOVER_PAYLOAD" "$SYSLOG_SIZE"
    "$SRC/bench/syslog/payload.sh" "$FAILOVER_COUNT" "$FAILOVER_PAYLOAD" "$SYSLOG_SIZE" ||
        return 0
    for ((run = 1; run <= RUNS; run++)); do
        for case in $FAILOVER_CASES; do failover_case "$case"; done
    done
    failover_results
}

failover_results() {
    local case label k
    local -A labels=([leader]="leader SIGKILLed and restarted"
                     [alldown]="all three down ${ALLDOWN_SECONDS} s")
    for case in $FAILOVER_CASES; do
        label=${labels[$case]}
        figure outputs_failover "$case" records "**$label: records in the stream (of $FAILOVER_COUNT)**" \
            "" "$FAILOVER_COUNT" "$(meets "$(med outputs_failover "$case" records)" ">=" \
            "$FAILOVER_COUNT")$(awk -v v="$(med outputs_failover "$case" records)" \
            -v n="$FAILOVER_COUNT" 'BEGIN { if (v > n) print " (more: duplicates)" }')"
        figure outputs_failover "$case" ids "$label: distinct Nats-Msg-Ids"
        figure outputs_failover "$case" dup_ids "$label: duplicate ids" "" 0 \
            "$(meets "$(med outputs_failover "$case" dup_ids)" "<=" 0)"
        figure outputs_failover "$case" dup_seqs "$label: duplicate records (by seq=)" "" 0 \
            "$(meets "$(med outputs_failover "$case" dup_seqs)" "<=" 0)"
        figure outputs_failover "$case" missing "$label: missing records (by seq=)" "" 0 \
            "$(meets "$(med outputs_failover "$case" missing)" "<=" 0)"
        figure outputs_failover "$case" p99 "$label: echo on the same worker, p99 µs" "" \
            "< 50000" "$(meets "$(med outputs_failover "$case" p99)" "<" 50000)"
        figure outputs_failover "$case" max "$label: echo, max µs"
        figure outputs_failover "$case" lost "$label: echo requests lost (1 s timeout)"
        figure outputs_failover "$case" retried "$label: output retried_total"
        figure outputs_failover "$case" spooled "$label: output spooled_total"
    done
    md outputs_failover "Three nats-servers (JetStream, file storage in a temporary folder) on" \
        "core $OUTPUTS_BUS_CPU with loadgen and rrclient; luadgramd (bench/outputs/luadgramd.conf" \
        "with BENCH_ECHO_PORT: the syslog listener publishing to R3 and an echo listener, one" \
        "worker) on core $SERVER_CPU. loadgen sends $FAILOVER_COUNT distinct syslog lines" \
        "(payload.sh, each with seq=N) at $FAILOVER_RATE/s. leader: the stream's leader (asked" \
        "with nats_stream) gets SIGKILL once $FAILOVER_KILL_AT % of the records were published" \
        "(luadgramd_output_published_total), and is started again on its store once another" \
        "node leads and $FAILOVER_RESTART_AT % were published. alldown: the three get SIGKILL at" \
        "the same point and start again $ALLDOWN_SECONDS s later. Then the stream is read back" \
        "record by record (nats_stream dump): records, distinct Nats-Msg-Ids, and by seq=N" \
        "duplicates and the numbers missing. rrclient keeps $FAILOVER_INFLIGHT requests in" \
        "flight to the echo listener for the whole load."
}
