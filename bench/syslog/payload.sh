#!/usr/bin/env bash
# bench/syslog/payload.sh: writes the payload of section_syslog (bench/syslog/section.sh):
# N syslog lines of exactly SIZE bytes (default 200), one per line, for
# `loadgen --payload FILE --payload-lines`. The lines cycle over ten kinds that collectors
# really receive, half RFC 5424 (nginx access, sshd, an audit event with two structured-data
# elements, postgres, a Java app logging a name in UTF-8) and half RFC 3164 (sshd
# TAG[pid]:, systemd, a kernel firewall line, Cisco IOS with its sequence number and
# %FAC-SEV-MNEMONIC, cron with a double-space day). Line i carries its sequence number twice:
# "seq=i" (zero-padded to 8 digits) in the message, and for RFC 5424 also
# [meta sequenceId="i"], so a lost message can be named; the timestamps advance one second
# per 1000 lines. The message is padded with " pad=abc..." (or cut) to SIZE bytes (bytes,
# not characters: awk runs in the C locale).
#   bench/syslog/payload.sh N OUT [SIZE]
set -euo pipefail
n=${1:?usage: payload.sh N OUT [SIZE]}
out=${2:?usage: payload.sh N OUT [SIZE]}
size=${3:-200}
[[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 1000000 ]] ||
    { echo "payload.sh: N must be 1..1000000" >&2; exit 2; }
[[ $size =~ ^[0-9]+$ && $size -ge 120 && $size -le 2000 ]] ||
    { echo "payload.sh: SIZE must be 120..2000" >&2; exit 2; }

LC_ALL=C awk -v n="$n" -v size="$size" '
function two(x) { return sprintf("%02d", x) }
BEGIN {
    split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", mon, " ")
    pad = " pad="
    abc = "abcdefghijklmnopqrstuvwxyz0123456789"
    for (k = 0; k < size; k++) pad = pad substr(abc, k % 36 + 1, 1)
    for (i = 0; i < n; i++) {
        t = 9 * 3600 + int(i / 1000)           # from 09:00:00, one second per 1000 lines
        hh = two(int(t / 3600) % 24); mm = two(int(t / 60) % 60); ss = two(t % 60)
        frac = sprintf("%06d", (i % 1000) * 1000 + 17)
        iso = "2026-11-24T" hh ":" mm ":" ss "." frac "Z"
        bsd = "Nov 24 " hh ":" mm ":" ss
        seq = sprintf("seq=%08d", i)
        sd = "[meta sequenceId=\"" i "\"]"
        host = sprintf("%02d", i % 17)
        pid = 1000 + i % 30000
        kind = i % 10
        if (kind == 0)
            l = "<190>1 " iso " web-" host ".example.net nginx " pid " access " sd " " seq \
                " 192.0.2." (i % 250 + 1) " - - \"GET /api/v1/items?page=" (i % 97) \
                " HTTP/1.1\" 200 5123 \"-\" \"curl/7.88.1\""
        else if (kind == 1)
            l = "<38>" bsd " gw-" host " sshd[" pid "]: " seq " Failed password for invalid user" \
                " admin from 203.0.113." (i % 250 + 1) " port " (40000 + i % 20000) " ssh2"
        else if (kind == 2)
            l = "<86>1 " iso " db-" host ".example.net sshd " pid " - " sd " " seq \
                " Accepted publickey for deploy from 198.51.100." (i % 250 + 1) " port " \
                (50000 + i % 10000) " ssh2: ED25519 SHA256:Qm9vYmFy"
        else if (kind == 3)
            l = "<30>" bsd " app-" host " systemd[1]: " seq " Started session-" (i % 5000) \
                ".scope - Session " (i % 5000) " of User deploy."
        else if (kind == 4)
            l = "<14>1 " iso " app-" host ".example.net billing " pid " AUDIT [exampleSDID@32473" \
                " iut=\"3\" eventSource=\"Application\" eventID=\"" (1000 + i % 100) "\"]" sd " " \
                seq " user=alice action=invoice.create id=" i
        else if (kind == 5)
            l = "<4>" bsd " fw-" host " kernel: [" sprintf("%d.%06d", 86400 + int(i / 1000), \
                i % 1000000) "] " seq " [UFW BLOCK] IN=eth0 OUT= SRC=203.0.113." (i % 250 + 1) \
                " DST=192.0.2.1 LEN=60 TTL=52 PROTO=TCP SPT=" (40000 + i % 20000) " DPT=22"
        else if (kind == 6)
            l = "<131>1 " iso " pg-" host ".example.net postgres " pid " - " sd " " seq \
                " ERROR:  duplicate key value violates unique constraint \"orders_pkey\""
        else if (kind == 7)
            l = "<189>" (i % 100000) ": *" bsd ".123: %LINEPROTO-5-UPDOWN: " seq " Line" \
                " protocol on Interface GigabitEthernet1/0/" (i % 48 + 1) ", changed state to up"
        else if (kind == 8)
            l = "<165>1 " iso " api-" host ".example.net java " pid " ORDER " sd " " seq \
                " order " i " placed by Zoë Dupré total=42.50 EUR"
        else
            l = "<78>Nov  4 " hh ":" mm ":" ss " cron-" host " CRON[" pid "]: " seq \
                " (root) CMD (/usr/local/bin/backup --incremental >/dev/null 2>&1)"
        if (length(l) < size) l = l substr(pad, 1, size - length(l))
        print substr(l, 1, size)
    }
}' >"$out"
