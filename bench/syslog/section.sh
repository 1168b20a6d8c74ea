# bench/syslog/section.sh: section_syslog of bench/run.sh (issue 4), sourced by it after its
# helpers (pin, field, free_port, cpu_ticks, metric, start_server, wait_server, start_daemon,
# stop_server, put, med, fmt, figure, md, cmdline, log_run, ratio, meets, loss_pct; SRC,
# TOOLS, DAEMON, WORK, RUNS, SERVER_CPU, CLIENT_CPU, CLK_TCK).
#
# Syslog messages per second parsed and written with no loss, measured in the same run for:
#   sink       the raw C receive limit (bench/sink: recvmmsg, counts only)
#   luadgramd  scripts/syslog.lua (bench/syslog/luadgramd.conf): every message parsed (RFC
#              5424 / RFC 3164) and written as one JSON line to a file
#   rsyslog    rsyslogd with imudp (bench/syslog/rsyslog.conf.in): parsed by its default
#              parsers and written as one JSON line with the same fields by omfile
# loadgen sends SYSLOG_SIZE-byte syslog lines (bench/syslog/payload.sh: half RFC 5424, half
# RFC 3164, each with its sequence number) at each rate of SYSLOG_RATES for SYSLOG_SECONDS
# (count = rate × seconds), to a fresh receiver per step pinned to SERVER_CPU (loadgen on
# CLIENT_CPU), each with 64 datagrams per recvmmsg and an 8 MiB socket receive buffer.
# Loss = datagrams sent - lines in the file once the receiver has stopped (SIGTERM: both
# write what they hold), or - what sink received; kernel drops (the socket's receive-buffer
# overflows) are shown beside it: luadgramd_kernel_drops_total, the socket's drops column of
# /proc/net/udp for rsyslog, sink's own. CPU per message: user + system time of the
# receiver (all threads, /proc/PID/stat) from before the load until the file stopped
# growing, divided by the lines written (sink: its own getrusage per datagram received).
# The loss-free rate is the highest step with no loss at it and at every step below.
#
# Prints each run's table (rate, then received / loss % / CPU-µs per message of each
# receiver) on stdout, the summary lines of run.sh (syslog VARIANT.FIGURE median= ...), and
# puts the figures, the per-rate medians and the commands in RESULTS.md.
# Environment: SYSLOG_RATES ("50000 100000 150000 200000"), SYSLOG_SECONDS (2), SYSLOG_SIZE (200),
# SYSLOG_LINES (100000 distinct lines, cycled). Needs rsyslog (Debian `rsyslog`; install_peers
# installs it and stops the service its package starts) and curl (luadgramd's /metrics).

SYSLOG_RATES=${SYSLOG_RATES:-"50000 100000 150000 200000"}
SYSLOG_SECONDS=${SYSLOG_SECONDS:-2}
SYSLOG_SIZE=${SYSLOG_SIZE:-200}
SYSLOG_LINES=${SYSLOG_LINES:-100000}
SYSLOG_KINDS=(sink luadgramd rsyslog)
# The section the steps' figures and commands go to (section_outputs runs the same steps
# under its own name), and receivers left out of the steps (not installed).
SYSLOG_SEC=syslog
SYSLOG_MISSING=
# The issue's figures, measured on a 2-core machine at 200 000 messages/s.
SYSLOG_ISSUE_RATE=200000

# Outputs settle when the line count stands still 8 polls (1.6 s: longer than rsyslog's
# 1 s flush interval).

# syslog_udp_drops PORT: the drops column of the socket bound to 127.0.0.1:PORT in
# /proc/net/udp (receive-buffer overflows), or nothing.
syslog_udp_drops() {
    awk -v a="$(printf '0100007F:%04X' "$1")" '$2 == a { print $NF; exit }' /proc/net/udp
}

# syslog_rq_wait PID: milliseconds the process's threads have waited for a CPU so far
# (/proc/PID/task/*/schedstat: time runnable but not running: other jobs on its core, and
# for rsyslog its own threads too), or nothing where the kernel keeps no schedstat. For the
# log: it helps tell a loss to a busy core.
syslog_rq_wait() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $2; n++ }
        END { if (n) printf "%.0f\n", s / 1e6 }'
}

# syslog_after: after the load, sets t1 (the server's CPU ticks) and stats (CPU ticks and
# run-queue wait over the step, for the log); when the server is gone, t1 is empty (no CPU
# figure for the step) and stats says so.
syslog_after() {
    local w1
    if t1=$(cpu_ticks "$SERVER_PID" 2>/dev/null); then
        w1=$(syslog_rq_wait "$SERVER_PID")
        stats="cpu_ticks=$((t1 - t0)) rq_wait_ms=$((${w1:-0} - ${w0:-0}))"
    else
        t1=''
        stats="exited during the load: $(tail -3 "$out.err" 2>/dev/null | tr '\n' ' ')"
    fi
}

# syslog_first FILE: the file's first line, at most 300 bytes, for the log.
syslog_first() { head -c 300 "$1" 2>/dev/null | head -1; }

# syslog_cmdline CMD...: cmdline for the first step of the first run only (the other steps
# differ in --count and --rate, and in the ports and files).
syslog_cmdline() {
    [[ $rate == "${SYSLOG_RATES%% *}" ]] || return 0
    cmdline "$SYSLOG_SEC" "$@"
}

# syslog_load ADDR RATE COUNT: loadgen sends the payload lines from the client core; its
# summary.
syslog_load() {
    local cmd=("$TOOLS/loadgen" --to "$1" --count "$3" --rate "$2" --payload "$SYSLOG_PAYLOAD"
               --payload-lines --batch 64 --seconds $((SYSLOG_SECONDS * 4 + 10)))
    syslog_cmdline "${cmd[@]}"
    (pin "$CLIENT_CPU" "${cmd[@]}") || true
}

# syslog_step KIND RATE: one receiver at one rate; puts sent, rate, got, loss, drops and
# cpu (µs per message) under "syslog KIND FIGURE_RATE", sets STEP_ROW to "got, loss %, µs"
# and STEP_LOSSLESS to 1 when every datagram sent was written.
syslog_step() {
    local kind=$1 rate=$2 count=$(($2 * SYSLOG_SECONDS)) out=$WORK/syslog.$1.$2.$run
    local lg got t0 t1 port mport dir cpu sent sk drops rx file='' w0 stats
    case $kind in
        sink)
            local cmd=("$TOOLS/sink" --bind 127.0.0.1:0 --count "$count" --rcvbuf 8388608
                       --batch 64 --idle 1 --seconds $((SYSLOG_SECONDS * 4 + 20)))
            syslog_cmdline "${cmd[@]}"
            start_server "$out" "$SERVER_CPU" "${cmd[@]}" || return 0
            lg=$(syslog_load "$SERVER_ADDR" "$rate" "$count")
            wait_server
            sk=$(cat "$out")
            log_run "$SYSLOG_SEC" sink "$run" "$rate/s: loadgen: $lg; sink: $sk"
            got=$(field received "$sk")
            drops=$(field drops "$sk")
            cpu=$(field cpu_s_per_million "$sk") # CPU-s per million = CPU-µs per datagram
            ;;
        luadgramd|luadgramd_*)
            # luadgramd_KIND: the same collector with another sink, set up by
            # syslog_setup_luadgramd_KIND (it may change conf, add to envs and replace
            # stored, the command printing the records stored so far) and torn down by
            # syslog_teardown_luadgramd_KIND.
            port=$(free_port) || return 0
            mport=$(free_port) || return 0
            file=$out.jsonl
            rm -f "$file"
            local conf=$SRC/bench/syslog/luadgramd.conf stored=(count_lines "$file")
            local envs=(env BENCH_PORT="$port" BENCH_METRICS_PORT="$mport" BENCH_OUT="$file")
            if [[ $kind != luadgramd ]]; then "syslog_setup_$kind" || return 0; fi
            syslog_cmdline "${envs[@]}" "$DAEMON" -c "$conf"
            if ! start_daemon "$out" "$SERVER_CPU" 10 ' running: ' "${envs[@]}" "$DAEMON" \
                    -c "$conf"; then
                [[ $kind == luadgramd ]] || "syslog_teardown_$kind"
                return 0
            fi
            t0=$(cpu_ticks "$SERVER_PID") w0=$(syslog_rq_wait "$SERVER_PID")
            lg=$(syslog_load "127.0.0.1:$port" "$rate" "$count")
            settle 8 "$(field sent "$lg")" "${stored[@]}" >/dev/null
            syslog_after
            drops=$(metric "$mport" luadgramd_kernel_drops_total)
            rx=$(metric "$mport" luadgramd_received_total)
            stop_server
            got=$("${stored[@]}")
            [[ $kind == luadgramd ]] || "syslog_teardown_$kind"
            log_run "$SYSLOG_SEC" "$kind" "$run" "$rate/s: loadgen: $lg; stored=$got" \
                "received=$rx kernel_drops=$drops $stats" \
                "$(grep -hE ' (warn|error): ' "$out.err" "$out" | head -2 | tr '\n' ' ')"
            ;;
        rsyslog)
            port=$(free_port) || return 0
            dir=$out.d
            file=$dir/syslog.jsonl
            rm -rf "$dir"
            mkdir -p "$dir"
            # rsyslog's own messages go to OUT, where start_daemon looks for its start line.
            sed -e "s|@PORT@|$port|g" -e "s|@OUT@|$file|g" \
                -e "s|@INTERNAL@|$out|g" -e "s|@WORKDIR@|$dir|g" \
                "$SRC/bench/syslog/rsyslog.conf.in" >"$dir/rsyslog.conf"
            local cmd=(rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid")
            syslog_cmdline "${cmd[@]}"
            start_daemon "$out" "$SERVER_CPU" 10 'rsyslogd: .*\] start$' "${cmd[@]}" ||
                return 0
            local i
            for ((i = 0; i < 20; i++)); do # until its socket is bound (it logs "start" then)
                [[ -n $(syslog_udp_drops "$port") ]] && break
                sleep 0.1
            done
            t0=$(cpu_ticks "$SERVER_PID") w0=$(syslog_rq_wait "$SERVER_PID")
            lg=$(syslog_load "127.0.0.1:$port" "$rate" "$count")
            settle 8 "$(field sent "$lg")" count_lines "$file" >/dev/null
            syslog_after
            drops=$(syslog_udp_drops "$port")
            stop_server
            got=$(count_lines "$file")
            log_run "$SYSLOG_SEC" rsyslog "$run" "$rate/s: loadgen: $lg; lines=$got" \
                "kernel_drops=$drops $stats" \
                "$(grep -v -e '\] start$' -e 'exiting on signal' -e 'rcvbuf size' "$out" |
                   head -2 | tr '\n' ' ')"
            ;;
    esac
    if [[ $kind != sink ]]; then
        cpu=$(awk -v t0="$t0" -v t1="$t1" -v h="$CLK_TCK" -v n="${got:-0}" \
            'BEGIN { if (n > 0 && t1 != "") printf "%.2f", (t1 - t0) / h / n * 1e6 }')
        if [[ $run == 1 && $rate == "${SYSLOG_RATES%% *}" && -f $file ]]; then
            log_run "$SYSLOG_SEC" "$kind" "$run" "first line written: $(syslog_first "$file")"
        fi
        rm -f "$file" # up to ~200 MB at 200k/s: one step's file at a time
    fi
    sent=$(field sent "$lg")
    put "$SYSLOG_SEC" "$kind" "sent_$rate" "$sent"
    put "$SYSLOG_SEC" "$kind" "rate_$rate" "$(field rate "$lg")"
    put "$SYSLOG_SEC" "$kind" "got_$rate" "$got"
    put "$SYSLOG_SEC" "$kind" "loss_$rate" "$(loss_pct "$sent" "$got")"
    put "$SYSLOG_SEC" "$kind" "drops_$rate" "$drops"
    put "$SYSLOG_SEC" "$kind" "cpu_$rate" "$cpu"
    STEP_ROW="${got:-–}, $(loss_pct "$sent" "$got"), ${cpu:-–}"
    STEP_LOSSLESS=
    [[ -n $sent && $sent -gt 0 && $got == "$sent" ]] && STEP_LOSSLESS=1
    return 0
}

# syslog_payload: writes the payload lines (SYSLOG_PAYLOAD) once per invocation of run.sh.
syslog_payload() {
    SYSLOG_PAYLOAD=$WORK/syslog.lines
    cmdline "$SYSLOG_SEC" "$SRC/bench/syslog/payload.sh" "$SYSLOG_LINES" "$SYSLOG_PAYLOAD" \
        "$SYSLOG_SIZE"
    [[ -s $SYSLOG_PAYLOAD ]] && return 0
    "$SRC/bench/syslog/payload.sh" "$SYSLOG_LINES" "$SYSLOG_PAYLOAD" "$SYSLOG_SIZE"
}

# syslog_runs KIND...: RUNS runs, each a step of every rate of SYSLOG_RATES for each receiver
# KIND (those in SYSLOG_MISSING are shown as "–"); prints each run's table and puts each
# receiver's loss-free rate (the highest step with no loss at it and every step below).
syslog_runs() {
    local kinds=("$@") run rate kind row
    local -A lossfree lossy
    for ((run = 1; run <= RUNS; run++)); do
        lossfree=() lossy=()
        for kind in "${kinds[@]}"; do lossfree[$kind]=0; done
        echo "# $SYSLOG_SEC run $run: $SYSLOG_SIZE-byte syslog lines, $SYSLOG_SECONDS s per" \
             "step; each receiver: received, loss %, CPU-µs per message"
        printf '| %-7s |' "rate/s"; printf ' %-24s |' "${kinds[@]}"; echo
        for rate in $SYSLOG_RATES; do
            row=()
            for kind in "${kinds[@]}"; do
                STEP_ROW="–" STEP_LOSSLESS=
                if [[ " $SYSLOG_MISSING " != *" $kind "* ]]; then syslog_step "$kind" "$rate"; fi
                row+=("$STEP_ROW")
                if [[ -n $STEP_LOSSLESS && -z ${lossy[$kind]:-} ]]; then
                    lossfree[$kind]=$rate
                else
                    lossy[$kind]=1
                fi
            done
            printf '| %-7s |' "$rate"; printf ' %-24s |' "${row[@]}"; echo
        done
        for kind in "${kinds[@]}"; do
            [[ " $SYSLOG_MISSING " == *" $kind "* ]] ||
                put "$SYSLOG_SEC" "$kind" lossfree "${lossfree[$kind]}"
        done
    done
}

section_syslog() {
    if ! BENCH_PORT=1 BENCH_METRICS_PORT=1 BENCH_OUT=/dev/null "$DAEMON" -t \
            -c "$SRC/bench/syslog/luadgramd.conf" >"$WORK/syslog.check" 2>&1; then
        md syslog "scripts/syslog.lua does not load: $(tail -1 "$WORK/syslog.check")."
        return 0
    fi
    SYSLOG_MISSING=
    if ! command -v rsyslogd >/dev/null; then
        md syslog "rsyslog is not installed (Debian package rsyslog): its rows are skipped."
        SYSLOG_MISSING=rsyslog
    fi
    local run=1 # cmdline records the first run's commands
    syslog_payload || return 0
    syslog_runs "${SYSLOG_KINDS[@]}"
    syslog_results
}

# syslog_results: the summary figures, and the per-rate medians as a table in the notes.
syslog_results() {
    local top=${SYSLOG_RATES##* } r kind rate met
    figure syslog sink lossfree "raw C sink: highest loss-free rate, messages/s" "1.00 (limit)"
    r=$(ratio "$(med syslog luadgramd lossfree)" "$(med syslog sink lossfree)")
    met=$(meets "$(med syslog luadgramd lossfree)" ">=" "$SYSLOG_ISSUE_RATE")
    (( top >= SYSLOG_ISSUE_RATE )) || met="– (top step below $SYSLOG_ISSUE_RATE/s)"
    figure syslog luadgramd lossfree \
        "**luadgramd, scripts/syslog.lua → JSON file: highest loss-free rate, messages/s**" \
        "$r" "≥ $SYSLOG_ISSUE_RATE" "$met"
    figure syslog rsyslog lossfree "rsyslog imudp → JSON file: highest loss-free rate, messages/s" \
        "$(ratio "$(med syslog rsyslog lossfree)" "$(med syslog sink lossfree)")"
    for kind in "${SYSLOG_KINDS[@]}"; do
        met=
        if [[ $kind == luadgramd ]]; then
            met=$(meets "$(med syslog luadgramd "loss_$top")" "<=" 0)
            (( top >= SYSLOG_ISSUE_RATE )) || met="– (top step below $SYSLOG_ISSUE_RATE/s)"
        fi
        figure syslog "$kind" "loss_$top" "$kind: loss % at $top/s" "" \
            "${met:+0 at $SYSLOG_ISSUE_RATE/s}" "$met"
    done
    for kind in "${SYSLOG_KINDS[@]}"; do
        figure syslog "$kind" "drops_$top" "$kind: kernel receive-buffer drops at $top/s"
    done
    for kind in "${SYSLOG_KINDS[@]}"; do
        figure syslog "$kind" "rate_$top" "loadgen: send rate achieved towards $kind at $top/s"
    done
    for rate in $SYSLOG_RATES; do
        for kind in "${SYSLOG_KINDS[@]}"; do
            r=$(ratio "$(med syslog "$kind" "cpu_$rate")" "$(med syslog sink "cpu_$rate")")
            figure syslog "$kind" "cpu_$rate" "$kind: CPU-µs per message at $rate/s" "$r × sink"
        done
    done
    r=$(ratio "$(med syslog luadgramd "cpu_$top")" "$(med syslog rsyslog "cpu_$top")")
    if [[ $r != "–" ]]; then
        printf '| %s | | | | %s | %s | %s |\n' \
            "**luadgramd ÷ rsyslog, CPU-µs per message at $top/s (medians)**" "$r" "≤ 1" \
            "$(meets "$r" "<=" 1)" >>"$WORK/md/syslog.table"
    fi
    r=$(ratio "$(med syslog luadgramd "cpu_$top")" "$(med syslog sink "cpu_$top")")
    if [[ $r != "–" ]]; then
        printf '| %s | | | | %s | | |\n' \
            "luadgramd ÷ raw C sink, CPU-µs per message at $top/s (medians)" "$r" \
            >>"$WORK/md/syslog.table"
    fi
    md syslog "Each step: loadgen sends rate × $SYSLOG_SECONDS s of $SYSLOG_SIZE-byte syslog" \
        "lines (bench/syslog/payload.sh: $SYSLOG_LINES distinct lines cycled, half RFC 5424" \
        "with structured data, half RFC 3164 with Cisco and kernel variants, each with its" \
        "sequence number) to a fresh receiver. luadgramd (bench/syslog/luadgramd.conf) and" \
        "rsyslog (bench/syslog/rsyslog.conf.in with the port and paths filled in: imudp, a" \
        "250 000-message queue, omfile with asyncWriting and a 64 KiB buffer) both parse every" \
        "message and write one JSON line per message with the same fields (rsyslog writes" \
        "structured data as its text, luadgramd as a list of elements and parameters); every" \
        "receiver takes 64 datagrams per recvmmsg into an 8 MiB receive buffer. rsyslog" \
        "receives, queues and writes on three threads, luadgramd does all of it in its one" \
        "worker's loop; all of them are pinned to core $SERVER_CPU. Loss = sent − lines in the" \
        "file after the receiver stopped; CPU-µs per message = the receiver's CPU time (all" \
        "threads) over the lines written; each run's log (stderr) also has the receiver's" \
        "kernel drops and the time its threads waited for the core (rq_wait_ms: other jobs," \
        "and for rsyslog its own threads)." \
        "The issue's reference, measured on a 2-core machine at $SYSLOG_ISSUE_RATE/s: rsyslog" \
        "2.9 CPU-µs per message with 0.2 % loss, a raw C recvmmsg sink 1.65."
    md syslog ""
    md syslog "Per rate (medians of $RUNS runs): received, loss %, CPU-µs per message, kernel" \
        "drops, and the rate loadgen achieved towards that receiver (below the step's rate when" \
        "the client core was shared or late). The loss-free rate is bounded by the steps" \
        "($SYSLOG_RATES): a receiver loss-free at the top step may go higher."
    md syslog ""
    md syslog "| rate/s | sink | luadgramd | rsyslog |"
    md syslog "|---|---|---|---|"
    for rate in $SYSLOG_RATES; do
        local cells=()
        for kind in "${SYSLOG_KINDS[@]}"; do
            cells+=("$(fmt "$(med syslog "$kind" "got_$rate")"), $(fmt "$(med syslog "$kind" \
                "loss_$rate")") %, $(fmt "$(med syslog "$kind" "cpu_$rate")") µs, $(fmt \
                "$(med syslog "$kind" "drops_$rate")") drops, sent at $(fmt "$(med syslog \
                "$kind" "rate_$rate")")/s")
        done
        md syslog "| $rate | ${cells[0]} | ${cells[1]} | ${cells[2]} |"
    done
}
