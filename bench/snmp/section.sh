# bench/snmp/section.sh: section_snmp of bench/run.sh (issue 5), sourced by it after its
# helpers (pin, field, free_port, cpu_ticks, start_server, wait_server, start_daemon,
# stop_server, put, med, figure, md, cmdline, log_run, ratio, meets; TOOLS, DAEMON, WORK,
# RUNS, SERVER_CPU, CLIENT_CPU, CLK_TCK).
#
# SNMPv2c traps per second decoded and written with no loss, measured in the same run for:
#   sink       the raw C receive limit (bench/sink: recvmmsg, counts only)
#   luadgramd  scripts/snmptrap.lua (bench/snmp/luadgramd.conf): decoded in C, community
#              checked, one JSON line each in a file
#   snmptrapd  net-snmp's receiver (bench/snmp/snmptrapd.conf): one log line each in a file
# loadgen replays one captured trap (bench/snmp/trap_v2c.bin: a 206-byte linkDown with five
# bindings, made by bench/snmp/capture.sh) at each rate of SNMP_RATES for SNMP_SECONDS, to a
# fresh receiver per step pinned to SERVER_CPU, each with a 4 MiB socket receive buffer.
# Loss = datagrams sent - lines in the file (luadgramd: JSON lines; snmptrapd: log lines)
# once the count stops growing, or - what sink received. CPU per trap: user + system time
# of the receiver (all threads, /proc/PID/stat) over the step, divided by the traps counted.
# The loss-free rate is the highest step with no loss at it and at every step below.
#
# Prints each run's table (rate, then received / loss % / CPU-µs per trap of each receiver)
# on stdout, the summary lines of run.sh (snmp VARIANT.FIGURE median= ...), and puts the
# figures, the per-rate medians and the commands in RESULTS.md.
# Environment: SNMP_RATES ("10000 20000 50000 100000 200000"), SNMP_SECONDS (2),
# SNMP_PAYLOAD (bench/snmp/trap_v2c.bin). Needs snmptrapd (Debian `snmptrapd`).

SNMP_RATES=${SNMP_RATES:-"10000 20000 50000 100000 200000"}
SNMP_SECONDS=${SNMP_SECONDS:-2}
SNMP_PAYLOAD=${SNMP_PAYLOAD:-$SRC/bench/snmp/trap_v2c.bin}
SNMP_KINDS=(sink luadgramd snmptrapd)
# What section_snmpv3 changes: the figures' section, the receivers' configurations, and
# the line snmptrapd logs per trap.
SNMP_SEC=snmp
SNMP_LUADGRAMD_CONF=$SRC/bench/snmp/luadgramd.conf
SNMP_TRAPD_CONF=$SRC/bench/snmp/snmptrapd.conf
SNMP_TRAPD_MATCH='TRAP2, SNMP v2c'

snmp_trapd_lines() { grep -c "$SNMP_TRAPD_MATCH" "$1" 2>/dev/null || true; }

# snmp_load ADDR RATE COUNT: loadgen replays the trap from the client core; its summary.
snmp_load() {
    local cmd=("$TOOLS/loadgen" --to "$1" --count "$3" --rate "$2" --payload "$SNMP_PAYLOAD"
               --batch 32 --seconds $((SNMP_SECONDS * 4 + 10)))
    cmdline "$SNMP_SEC" "${cmd[@]}"
    (pin "$CLIENT_CPU" "${cmd[@]}") || true
}

# snmp_step KIND RATE: one receiver at one rate; puts sent, got, loss, cpu (µs per trap)
# under "snmp KIND FIGURE_RATE" and sets STEP_ROW to "got, loss %, µs".
snmp_step() {
    local kind=$1 rate=$2 count=$(($2 * SNMP_SECONDS)) out=$WORK/snmp.$1.$2.$run
    local lg got t0 t1 port dir cpu sent sk
    case $kind in
        sink)
            local cmd=("$TOOLS/sink" --bind 127.0.0.1:0 --count "$count" --rcvbuf 4194304
                       --batch 64 --idle 1 --seconds $((SNMP_SECONDS * 4 + 20)))
            cmdline "$SNMP_SEC" "${cmd[@]}"
            start_server "$out" "$SERVER_CPU" "${cmd[@]}" || return 0
            lg=$(snmp_load "$SERVER_ADDR" "$rate" "$count")
            wait_server
            sk=$(cat "$out")
            log_run "$SNMP_SEC" sink "$run" "$rate/s: loadgen: $lg; sink: $sk"
            got=$(field received "$sk")
            cpu=$(field cpu_s_per_million "$sk") # CPU-s per million = CPU-µs per datagram
            ;;
        luadgramd)
            port=$(free_port) || return 0
            rm -f "$out.jsonl"
            cmdline "$SNMP_SEC" env BENCH_PORT="$port" BENCH_OUT="$out.jsonl" "$DAEMON" \
                -c "$SNMP_LUADGRAMD_CONF"
            start_daemon "$out" "$SERVER_CPU" 10 ' running: ' env BENCH_PORT="$port" \
                BENCH_OUT="$out.jsonl" "$DAEMON" -c "$SNMP_LUADGRAMD_CONF" ||
                return 0
            t0=$(cpu_ticks "$SERVER_PID")
            lg=$(snmp_load "127.0.0.1:$port" "$rate" "$count")
            got=$(settle 6 "$(field sent "$lg")" count_lines "$out.jsonl")
            t1=$(cpu_ticks "$SERVER_PID")
            stop_server
            log_run "$SNMP_SEC" luadgramd "$run" "$rate/s: loadgen: $lg; lines=$got" \
                "cpu_ticks=$((t1 - t0)) $(grep -E ' (warn|error): ' "$out.err" | head -2 |
                                          tr '\n' ' ')"
            ;;
        snmptrapd)
            port=$(free_port) || return 0
            dir=$out.d
            mkdir -p "$dir/conf" "$dir/persist"
            # -Lf writes the log to OUT itself, where start_daemon looks for the start line.
            local cmd=(env MIBS= SNMPCONFPATH="$dir/conf" SNMP_PERSISTENT_DIR="$dir/persist"
                       snmptrapd -f -n -On -C -c "$SNMP_TRAPD_CONF" -M /dev/null
                       -Lf "$out" "udp:127.0.0.1:$port")
            cmdline "$SNMP_SEC" "${cmd[@]}"
            start_daemon "$out" "$SERVER_CPU" 10 'NET-SNMP version' "${cmd[@]}" || return 0
            t0=$(cpu_ticks "$SERVER_PID")
            lg=$(snmp_load "127.0.0.1:$port" "$rate" "$count")
            got=$(settle 6 "$(field sent "$lg")" snmp_trapd_lines "$out")
            t1=$(cpu_ticks "$SERVER_PID")
            stop_server
            log_run "$SNMP_SEC" snmptrapd "$run" "$rate/s: loadgen: $lg; lines=$got" \
                "cpu_ticks=$((t1 - t0))"
            ;;
    esac
    if [[ $kind != sink ]]; then
        cpu=$(awk -v t=$((t1 - t0)) -v h="$CLK_TCK" -v n="${got:-0}" \
            'BEGIN { if (n > 0) printf "%.2f", t / h / n * 1e6 }')
    fi
    sent=$(field sent "$lg")
    put "$SNMP_SEC" "$kind" "sent_$rate" "$sent"
    put "$SNMP_SEC" "$kind" "rate_$rate" "$(field rate "$lg")"
    put "$SNMP_SEC" "$kind" "got_$rate" "$got"
    put "$SNMP_SEC" "$kind" "loss_$rate" "$(loss_pct "$sent" "$got")"
    put "$SNMP_SEC" "$kind" "cpu_$rate" "$cpu"
    STEP_ROW="${got:-–}, $(loss_pct "$sent" "$got"), ${cpu:-–}"
    STEP_LOSSLESS=
    [[ -n $sent && $sent -gt 0 && $got == "$sent" ]] && STEP_LOSSLESS=1
    return 0
}

section_snmp() {
    local run rate kind row
    local -A lossfree lossy
    if ! command -v snmptrapd >/dev/null; then
        md "$SNMP_SEC" "snmptrapd is not installed (Debian package snmptrapd): no SNMP section."
        return 0
    fi
    if ! BENCH_PORT=1 BENCH_OUT=/dev/null "$DAEMON" -t -c "$SNMP_LUADGRAMD_CONF" \
            >"$WORK/snmp.check" 2>&1; then
        md "$SNMP_SEC" "scripts/snmptrap.lua does not load: $(tail -1 "$WORK/snmp.check")."
        return 0
    fi
    for ((run = 1; run <= RUNS; run++)); do
        lossfree=([sink]=0 [luadgramd]=0 [snmptrapd]=0)
        lossy=()
        echo "# $SNMP_SEC run $run: $(stat -c %s "$SNMP_PAYLOAD")-byte trap, $SNMP_SECONDS s" \
             "per step; each receiver: received, loss %, CPU-µs per trap"
        printf '| %-7s | %-24s | %-24s | %-24s |\n' "rate/s" "sink" "luadgramd" "snmptrapd"
        for rate in $SNMP_RATES; do
            row=()
            for kind in "${SNMP_KINDS[@]}"; do
                STEP_ROW="–" STEP_LOSSLESS=
                snmp_step "$kind" "$rate"
                row+=("$STEP_ROW")
                if [[ -n $STEP_LOSSLESS && -z ${lossy[$kind]:-} ]]; then
                    lossfree[$kind]=$rate
                else
                    lossy[$kind]=1
                fi
            done
            printf '| %-7s | %-24s | %-24s | %-24s |\n' "$rate" "${row[@]}"
        done
        for kind in "${SNMP_KINDS[@]}"; do
            put "$SNMP_SEC" "$kind" lossfree "${lossfree[$kind]}"
        done
        put "$SNMP_SEC" luadgramd vs_snmptrapd "$(awk -v a="${lossfree[luadgramd]}" \
            -v b="${lossfree[snmptrapd]}" 'BEGIN { if (b > 0) printf "%.2f", a / b }')"
    done
    snmp_results
}

# snmp_results: the summary figures, and the per-rate medians as a table in the notes.
snmp_results() {
    local top=${SNMP_RATES##* } low=${SNMP_RATES%% *} r kind rate
    figure "$SNMP_SEC" sink lossfree "raw C sink: highest loss-free rate, traps/s" "1.00 (limit)"
    figure "$SNMP_SEC" luadgramd lossfree \
        "**luadgramd, scripts/snmptrap.lua: highest loss-free rate, traps/s**" \
        "$(ratio "$(med "$SNMP_SEC" luadgramd lossfree)" "$(med "$SNMP_SEC" sink lossfree)")"
    figure "$SNMP_SEC" snmptrapd lossfree "snmptrapd -Lf file: highest loss-free rate, traps/s" \
        "$(ratio "$(med "$SNMP_SEC" snmptrapd lossfree)" "$(med "$SNMP_SEC" sink lossfree)")"
    r=$(med "$SNMP_SEC" luadgramd vs_snmptrapd)
    figure "$SNMP_SEC" luadgramd vs_snmptrapd \
        "**luadgramd ÷ snmptrapd, loss-free rates (per run)**" \
        "$(fmt "$r")" "≥ 10" "$(meets "${r:-–}" ">=" 10)"
    for kind in "${SNMP_KINDS[@]}"; do
        figure "$SNMP_SEC" "$kind" "cpu_$low" "$kind: CPU-µs per trap at $low/s" \
            "$(ratio "$(med "$SNMP_SEC" "$kind" "cpu_$low")" "$(med "$SNMP_SEC" sink "cpu_$low")")"
    done
    for kind in "${SNMP_KINDS[@]}"; do
        figure "$SNMP_SEC" "$kind" "loss_$top" "$kind: loss % at $top/s"
    done
    md "$SNMP_SEC" \
        "Per rate (medians of $RUNS runs; sent/s is what loadgen achieved towards sink):" \
        "received, loss %, CPU-µs per trap. The loss-free rate is bounded by the steps" \
        "($SNMP_RATES): a receiver loss-free at the top step may go higher."
    md "$SNMP_SEC" ""
    md "$SNMP_SEC" "| rate/s | sent/s | sink | luadgramd | snmptrapd |"
    md "$SNMP_SEC" "|---|---|---|---|---|"
    for rate in $SNMP_RATES; do
        local cells=()
        for kind in "${SNMP_KINDS[@]}"; do
            cells+=("$(fmt "$(med "$SNMP_SEC" "$kind" "got_$rate")"), $(fmt "$(med \
                "$SNMP_SEC" "$kind" \
                "loss_$rate")") %, $(fmt "$(med "$SNMP_SEC" "$kind" "cpu_$rate")") µs")
        done
        md "$SNMP_SEC" \
            "| $rate | $(fmt "$(med "$SNMP_SEC" sink "rate_$rate")") | ${cells[0]} |" \
            "${cells[1]} | ${cells[2]} |"
    done
}

# section_snmpv3: (issue 12) the same as section_snmp with an SNMPv3 authPriv SHA-256/AES
# trap (bench/snmp/trap_v3.bin) to luadgramd (bench/snmp/luadgramd_v3.conf: one user with
# the sender's engine_id) and snmptrapd (bench/snmp/snmptrapd_v3.conf: createUser -e, the
# same user): HMAC check and decryption per trap in both.
section_snmpv3() {
    local sec=$SNMP_SEC payload=$SNMP_PAYLOAD conf=$SNMP_LUADGRAMD_CONF
    local trapd=$SNMP_TRAPD_CONF match=$SNMP_TRAPD_MATCH
    SNMP_SEC=snmpv3 SNMP_PAYLOAD=${SNMP_V3_PAYLOAD:-$SRC/bench/snmp/trap_v3.bin}
    SNMP_LUADGRAMD_CONF=$SRC/bench/snmp/luadgramd_v3.conf
    SNMP_TRAPD_CONF=$SRC/bench/snmp/snmptrapd_v3.conf SNMP_TRAPD_MATCH='TRAP2, SNMP v3'
    section_snmp
    SNMP_SEC=$sec SNMP_PAYLOAD=$payload SNMP_LUADGRAMD_CONF=$conf SNMP_TRAPD_CONF=$trapd
    SNMP_TRAPD_MATCH=$match
}
