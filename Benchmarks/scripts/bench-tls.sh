#!/usr/bin/env bash
# bench-tls.sh: HTTPS "Hello, World!" servers side by side (DESIGN §9; issue 9 item 10;
# docs/benchmarks.md "TLS").
#
# Every server terminates TLS with the same certificate and the same suite: TLS 1.2 only,
# ECDHE-ECDSA-AES128-GCM-SHA256, group P-256, a P-256 ECDSA certificate (SAN DNS:localhost,
# IP:127.0.0.1) issued by a P-256 CA, both generated with the openssl CLI into the scratch
# directory at the start of the run (the server sends its own certificate only). Session
# tickets are on everywhere.
#
# For every scenario, every round and every server, in that order (rounds interleaved:
# A B C A B C), the script starts the server alone on CPU $SERVER_CPU with the open-file
# limit $NOFILE, waits until its port accepts, checks it (curl over TLS 1.2 with the CA:
# body "Hello, World!", Content-Length 13, Content-Type text/plain; `openssl s_client`
# without restrictions, as wrk connects, must negotiate TLSv1.2 and
# ECDHE-ECDSA-AES128-GCM-SHA256 with a certificate that verifies, and one offering only P-256
# must get P-256; the handshake tools offer only that suite and P-256), warms it up,
# samples its CPU time (/proc/PID/stat utime+stime of the server and its children, e.g.
# nginx's worker), runs the load on CPU $LOAD_CPU, samples again, stops it and waits until
# the port is free. Then bench-report.py (--bench tls) prints the tables, writes the raw
# results to $JSON_OUT and, with UPDATE_DOCS=1, the tables into docs/benchmarks.md
# (between <!-- bench-tls:begin/end -->).
#
# Scenarios (SCENARIOS, space-separated, default all):
#   keepalive  wrk -t1 -c64 https://..., keep-alive, one request per round trip: req/s and
#              server CPU per request
#   full       tls-handshakes -c $HS_CONNS: full handshakes (no session offered) per
#              second and server CPU per full handshake
#   resumed    tls-handshakes --resume -c $HS_CONNS: resumed handshakes (session ticket
#              of the first connection) per second, server CPU per resumed handshake, and
#              how many were really resumed (SSL_session_reused)
#   latency    wrk -t1 -c64 --latency paced with wrk-paced.lua ($LAT_DELAY_MS ms between a
#              connection's response and its next request): p50/p99 for $DURATION s, then
#              again for $DURATION s while tls-handshakes --rate $HS_RATE opens full
#              handshakes in the background (also on CPU $LOAD_CPU); p99 with ÷ without
#   idle       tls-idle-conns: RSS per idle TLS keep-alive connection ($IDLE_CONNS
#              connections, each after a full handshake and one request/response;
#              (VmRSS after - before) / IDLE_CONNS, read IDLE_SETTLE seconds (3) after the
#              last response: idle means idle for seconds, past strata-serve's 1-2 s sweep
#              that returns idle TLS sessions' record-buffer pages)
# Before the servers, each round runs mbedtls-mem (pinned to CPU $SERVER_CPU): the CPU an
# mbedTLS 2.28 client and server spend per full and per resumed handshake in memory, with
# no sockets (the library table). Server CPU per full handshake ÷ its server side is each
# server's "runtime overhead" (issue 9's target for strata-serve, whose TLS is mbedTLS: at
# most 1.15×); it is taken per run, paired: right after every full and resumed run (the
# server stopped) mbedtls-mem runs again on CPU $SERVER_CPU ($MBEDTLS_PAIRED_FULL full,
# $MBEDTLS_PAIRED_RESUMED resumed handshakes) and the run's ratio uses that figure.
#
# Environment (all optional): SERVERS ("name|command" per line; {port}, {root},
# {scratch}, {pki} are replaced; default below), SCENARIOS, ROUNDS (3), DURATION (10 s),
# WARMUP (1 s), PORT (19443), SERVER_CPU (0), LOAD_CPU (1), NOFILE (20000 or the hard
# limit), IDLE_CONNS (2000), HS_CONNS (32 handshakes in flight), HS_RATE (200 full
# handshakes/s behind the latency run), LAT_DELAY_MS (10), MBEDTLS_FULL (200 handshakes),
# MBEDTLS_RESUMED (2000), MBEDTLS_PAIRED_FULL (100), MBEDTLS_PAIRED_RESUMED (1000),
# QUIET_MAX (0.10 cores), QUIET_WAIT (300 s), RETRIES (2), JSON_OUT, MD_OUT, UPDATE_DOCS
# (1 when ROUNDS >= 3, else 0), CC.
# Quick check: ROUNDS=1 DURATION=3 make bench-tls (about 1.5 minutes for two servers).
#
# Strata's row: strata-serve (a product of the main package, built by `make bench-tls`)
# is measured when `.build/release/strata-serve --help` lists --tls-cert; until then the
# row is left out, and the script says so on stdout and in the tables ("not available yet").
# Its handshakes run on its handshake pool at nice 10 (the default, chosen by the latency
# scenario); the second row runs them on the loop (--tls-handshake loop). Default backend.
#
# Exit status: 0 if every run succeeded, 1 if any failed (the tables show which), 2 for
# bad settings or missing programs.

# shellcheck disable=SC2015  # "check && check || fail" is meant: fail when either check fails.
set -euo pipefail
LIB_TAG=bench-tls
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# lib.sh's tree_pids and other_procs hand the glob /proc/[0-9]*/stat to awk. Debian's awk is
# mawk, which stops (exit 2, no END block) at the first of those files that vanished between
# the glob and its open: on a busy machine tree_pids then prints nothing (the server's CPU
# reads as 0 ticks) and other_procs a truncated list (other processes' CPU reads as many
# cores). The same functions here read the files through cat, which skips vanished ones.
# (These belong in lib.sh; bench-http.sh and bench-resp.sh have the same problem.)
tree_pids() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '{
        j = 0; for (k = length($0); k > 0; k--) if (substr($0, k, 1) == ")") { j = k; break }
        split(substr($0, j + 2), f, " "); parent[$1] = f[2] }
        END { out = root; changed = 1
              while (changed) { changed = 0
                  for (p in parent) if (!(p in seen) && (parent[p] in inlist || parent[p] == root)) {
                      seen[p] = 1; inlist[p] = 1; out = out "," p; changed = 1 } }
              print out }'
}
other_procs() {
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v pg="$MY_PGRP" '{
        i = index($0, "("); j = 0
        for (k = length($0); k > 0; k--) if (substr($0, k, 1) == ")") { j = k; break }
        if (!i || !j) next
        split(substr($0, j + 2), f, " ") # f[1] = state (field 3), f[3] = pgrp, f[7] = flags
        if (f[3] == pg || int(f[7] / 2097152) % 2 == 1) next # our group; PF_KTHREAD
        print $1, f[12] + f[13] + f[14] + f[15], substr($0, i + 1, j - i - 1) }'
}

DEFAULT_SERVERS="
strata-serve|{root}/.build/release/strata-serve --port {port} --loops 1 --tls-cert {pki}/chain.pem --tls-key {pki}/key.pem
strata-serve (handshakes on loop)|{root}/.build/release/strata-serve --port {port} --loops 1 --tls-cert {pki}/chain.pem --tls-key {pki}/key.pem --tls-handshake loop
nginx|nginx -p {scratch}/nginx/ -e {scratch}/nginx/error.log -c {scratch}/nginx/nginx-{port}.conf
nio-ssl|{root}/.build-bench/release/nio-ssl-server --port {port} --threads 1 --cert {pki}/chain.pem --key {pki}/key.pem
"

SERVERS=${SERVERS:-$DEFAULT_SERVERS}
SCENARIOS=${SCENARIOS:-"keepalive full resumed latency idle"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
PORT=${PORT:-19443}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
NOFILE=${NOFILE:-20000}
IDLE_CONNS=${IDLE_CONNS:-2000}
IDLE_SETTLE=${IDLE_SETTLE:-3}
HS_CONNS=${HS_CONNS:-32}
HS_RATE=${HS_RATE:-200}
LAT_DELAY_MS=${LAT_DELAY_MS:-10}
MBEDTLS_FULL=${MBEDTLS_FULL:-200}
MBEDTLS_RESUMED=${MBEDTLS_RESUMED:-2000}
MBEDTLS_PAIRED_FULL=${MBEDTLS_PAIRED_FULL:-100}
MBEDTLS_PAIRED_RESUMED=${MBEDTLS_PAIRED_RESUMED:-1000}
QUIET_MAX=${QUIET_MAX:-0.10}
QUIET_WAIT=${QUIET_WAIT:-300}
RETRIES=${RETRIES:-2}
JSON_OUT=${JSON_OUT:-$TOOLS/bench-tls.json}
MD_OUT=${MD_OUT:-$TOOLS/bench-tls.md}
RAW=$TOOLS/bench-tls.raw.jsonl
if ((${ROUNDS:-0} >= 3)) 2>/dev/null; then UPDATE_DOCS=${UPDATE_DOCS:-1}; else UPDATE_DOCS=${UPDATE_DOCS:-0}; fi

check_common
check_uint IDLE_CONNS 1 100000
check_uint HS_CONNS 1 1000
check_uint HS_RATE 1 100000
check_uint LAT_DELAY_MS 0 10000
check_uint MBEDTLS_FULL 1 100000
check_uint MBEDTLS_RESUMED 1 1000000
check_uint MBEDTLS_PAIRED_FULL 1 100000
check_uint MBEDTLS_PAIRED_RESUMED 1 1000000
((IDLE_CONNS + 100 <= NOFILE)) || die "IDLE_CONNS=$IDLE_CONNS needs NOFILE >= $((IDLE_CONNS + 100)) (the open-file limit is $NOFILE)"

SCEN=()
for s in $SCENARIOS; do
    case $s in keepalive | full | resumed | latency | idle) SCEN+=("$s") ;; *) die "unknown scenario '$s' (keepalive full resumed latency idle)" ;; esac
done
((${#SCEN[@]} > 0)) || die "SCENARIOS is empty"

command -v wrk >/dev/null || die "wrk not found; install it: .ci/deps.sh bench"
command -v curl >/dev/null || die "curl not found; install it: .ci/deps.sh bench"
command -v openssl >/dev/null || die "the openssl command was not found; install it: .ci/deps.sh bench"
command -v python3 >/dev/null || die "python3 not found (the report is written by bench-report.py)"

# The C tools: built when missing or older than their source (lib.sh's build_c_tool,
# with the libraries these need).
build_tls_tool() { # OUT SRC LIBS...
    local out=$1 src=$2
    shift 2
    if [[ ! -x $out || $src -nt $out ]]; then
        mkdir -p "$TOOLS"
        note "building $(basename "$out"): ${CC:-cc} -O2 -Wall -Wextra -o $out $src $*"
        "${CC:-cc}" -O2 -Wall -Wextra -o "$out" "$src" "$@" ||
            die "building $out failed (the headers come from libssl-dev and libmbedtls-dev: .ci/deps.sh bench)"
    fi
}
HS=$TOOLS/tls-handshakes
IDLE=$TOOLS/tls-idle-conns
MBED=$TOOLS/mbedtls-mem
build_tls_tool "$HS" "$ROOT/Benchmarks/tls/tls-handshakes.c" -lssl -lcrypto
build_tls_tool "$IDLE" "$ROOT/Benchmarks/tls/tls-idle-conns.c" -lssl -lcrypto
build_tls_tool "$MBED" "$ROOT/Benchmarks/tls/mbedtls-mem.c" -lmbedtls -lmbedx509 -lmbedcrypto
PACED=$ROOT/Benchmarks/tls/wrk-paced.lua

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/bench-tls.XXXXXX")
LOGDIR=$SCRATCH/logs
PKI=$SCRATCH/pki
mkdir -p "$LOGDIR" "$PKI"
BG_PID=""
stop_bg() {
    if [[ -n $BG_PID ]]; then
        kill -TERM "$BG_PID" 2>/dev/null || true
        wait "$BG_PID" 2>/dev/null || true
        BG_PID=""
    fi
}
trap 'stop_bg; lib_cleanup; rm -rf "$SCRATCH"' EXIT
trap 'note "interrupted"; exit 130' INT
trap 'note "terminated"; exit 143' TERM

# ------------------------------------------------------------------ certificates

# A P-256 CA and a P-256 server certificate it signs (SHA-256), valid for 30 days:
# pki/ca.pem, pki/chain.pem (the server's certificate), pki/key.pem (its key, PKCS#8).
make_pki() {
    local ossl=(openssl)
    "${ossl[@]}" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out "$PKI/ca.key" 2>"$LOGDIR/pki.log" &&
        "${ossl[@]}" req -x509 -new -key "$PKI/ca.key" -sha256 -days 30 -subj "/CN=Strata benchmark CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -out "$PKI/ca.pem" 2>>"$LOGDIR/pki.log" &&
        "${ossl[@]}" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out "$PKI/key.pem" 2>>"$LOGDIR/pki.log" &&
        "${ossl[@]}" req -new -key "$PKI/key.pem" -subj "/CN=localhost" -out "$PKI/server.csr" 2>>"$LOGDIR/pki.log" &&
        printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
            "subjectAltName=DNS:localhost,IP:127.0.0.1" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" >"$PKI/server.ext" &&
        "${ossl[@]}" x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
            -days 30 -sha256 -extfile "$PKI/server.ext" -out "$PKI/chain.pem" 2>>"$LOGDIR/pki.log" &&
        "${ossl[@]}" verify -CAfile "$PKI/ca.pem" "$PKI/chain.pem" >>"$LOGDIR/pki.log" 2>&1 ||
        die "generating the certificates failed: $(tr '\n' ' ' <"$LOGDIR/pki.log")"
}
make_pki
note "certificates: P-256 CA and server certificate (SAN DNS:localhost, IP:127.0.0.1) in $PKI"

# ------------------------------------------------------------------ servers

# strata-serve's row runs once its --help lists --tls-cert (the TLS flags are being written).
STRATA_ABSENT=()
filter_strata() {
    local entry prog out="" help
    while IFS= read -r entry; do
        read -r prog _ <<<"${entry#*|}"
        prog=${prog//\{root\}/$ROOT}
        help=""
        # (--help exits with status 2 after printing the usage: only its text counts.)
        [[ $entry != *"|"* || $entry =~ ^[[:space:]]*# || $prog != */strata-serve || ! -x $prog ]] ||
            help=$(timeout 10 "$prog" --help 2>&1 </dev/null || true)
        if [[ -n $help && $help != *--tls-cert* ]]; then
            STRATA_ABSENT+=("${entry%%|*}: not available yet (${prog#"$ROOT"/} --help does not list --tls-cert)")
            continue
        fi
        out+="$entry"$'\n'
    done < <(printf '%s\n' "$SERVERS" | tr ';' '\n')
    SERVERS=$out
}
filter_strata
SERVERS=${SERVERS//\{pki\}/$PKI}
parse_servers
for a in "${STRATA_ABSENT[@]}"; do say "row absent: $a (added automatically once it exists)"; done
ABSENT+=("${STRATA_ABSENT[@]}")
for i in "${!ABSENT[@]}"; do [[ ${ABSENT[$i]} != *"no product strata-serve yet"* ]] || ABSENT[i]="${ABSENT[$i]} (not available yet)"; done
check_binaries

# nginx: one worker, `return 200`, TLS as every server, run as the current user with every
# path in the scratch directory (no root needed). As root, nginx would switch its worker to
# "nobody": keep root. ssl_session_cache is nginx's default ("none": no server-side
# cache); resumption is by session ticket, with the key nginx generates at start.
mkdir -p "$SCRATCH/nginx"
{
    (($(id -u) != 0)) || echo "user $(id -un) $(id -gn);"
    cat <<NGINX
worker_processes 1;
worker_rlimit_nofile $NOFILE;
daemon off;
pid $SCRATCH/nginx/nginx.pid;
error_log $SCRATCH/nginx/error.log warn;
events {
    worker_connections $((NOFILE - 100));
    use epoll;
}
http {
    access_log off;
    default_type text/plain;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    tcp_nodelay on;
    client_body_temp_path $SCRATCH/nginx/client_body;
    proxy_temp_path $SCRATCH/nginx/proxy;
    fastcgi_temp_path $SCRATCH/nginx/fastcgi;
    uwsgi_temp_path $SCRATCH/nginx/uwsgi;
    scgi_temp_path $SCRATCH/nginx/scgi;
    server {
        listen 127.0.0.1:$PORT ssl backlog=8192;
        ssl_certificate $PKI/chain.pem;
        ssl_certificate_key $PKI/key.pem;
        ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256;
        ssl_ecdh_curve prime256v1;
        ssl_session_tickets on;
        location / {
            return 200 "Hello, World!";
        }
    }
}
NGINX
} >"$SCRATCH/nginx/nginx-$PORT.conf"

# check_https: GET / over TLS 1.2 with the CA (curl) answers "Hello, World!" with
# Content-Length 13 and Content-Type text/plain; a client without restrictions (openssl
# s_client, like wrk) negotiates TLSv1.2 and ECDHE-ECDSA-AES128-GCM-SHA256 and verifies the
# certificate; a client offering only P-256 (as tls-handshakes and tls-idle-conns) gets
# P-256. Sets OPEN_GROUP: the group the unrestricted client got (a server may prefer X25519
# when it is offered; that touches only wrk's 64 initial handshakes, said in the tables).
check_https() {
    local body headers out
    OPEN_GROUP=""
    if ! body=$(curl -sS --max-time 5 --cacert "$PKI/ca.pem" --resolve "localhost:$PORT:127.0.0.1" \
        --tlsv1.2 --tls-max 1.2 -D "$LOGDIR/headers" "https://localhost:$PORT/" 2>&1); then
        FAIL_REASON="curl failed: $body"
        return 1
    fi
    headers=$(tr -d '\r' <"$LOGDIR/headers")
    if [[ $body != "Hello, World!" ]]; then
        FAIL_REASON="GET / answered '${body:0:80}', not 'Hello, World!'"
        return 1
    fi
    grep -Eqi '^content-length: *13$' <<<"$headers" || { FAIL_REASON="no 'Content-Length: 13' in the response: $(tr '\n' ' ' <<<"$headers")"; return 1; }
    grep -Eqi '^content-type: *text/plain' <<<"$headers" || { FAIL_REASON="no 'Content-Type: text/plain' in the response: $(tr '\n' ' ' <<<"$headers")"; return 1; }
    out=$(timeout 5 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -CAfile "$PKI/ca.pem" \
        -verify_return_error -brief </dev/null 2>&1) || true
    grep -q '^Protocol version: TLSv1.2$' <<<"$out" &&
        grep -q '^Ciphersuite: ECDHE-ECDSA-AES128-GCM-SHA256$' <<<"$out" &&
        grep -q '^Verification: OK$' <<<"$out" || {
        FAIL_REASON="an unrestricted client did not get TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256 with a verified certificate: $(grep -E '^(Protocol version|Ciphersuite|Server Temp Key|Verification)|error' <<<"$out" | head -n 5 | tr '\n' ' ')"
        return 1
    }
    # "Server Temp Key: ECDH, prime256v1, 256 bits" or "Server Temp Key: X25519, 253 bits"
    OPEN_GROUP=$(sed -n 's/^Server Temp Key: \(ECDH, \)\{0,1\}\([^,]*\),.*/\2/p' <<<"$out" | head -n 1)
    out=$(timeout 5 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -groups P-256 -brief </dev/null 2>&1) || true
    grep -q '^Server Temp Key: ECDH, prime256v1' <<<"$out" || {
        FAIL_REASON="a client offering only P-256 did not get it: $(grep -E '^(Protocol version|Ciphersuite|Server Temp Key)|error' <<<"$out" | head -n 4 | tr '\n' ' ')"
        return 1
    }
}

URL="https://127.0.0.1:$PORT/"

# wrk_run OUT SECONDS [paced]: wrk -t1 -c64 on LOAD_CPU; keep-alive, or paced (wrk-paced.lua).
wrk_run() {
    local out=$1 secs=$2 budget
    budget=$(awk -v d="$secs" 'BEGIN { printf "%d", d + 60 }')
    if [[ ${3:-} == paced ]]; then
        run_load "$out" "$budget" wrk -t1 -c64 "-d$secs" --timeout 10s --latency -s "$PACED" "$URL" -- "$LAT_DELAY_MS"
    else
        run_load "$out" "$budget" wrk -t1 -c64 "-d$secs" --timeout 10s -s "$ROOT/Benchmarks/scripts/wrk-report.lua" "$URL"
    fi
}

wrk_errors() { # the sum of wrk's error counts in a RESULT line
    local l=$1
    echo $(($(field err_connect "$l") + $(field err_read "$l") + $(field err_write "$l") + $(field err_status "$l") + $(field err_timeout "$l")))
}

result_line() { # result_line FILE: its last RESULT line without "RESULT " ("" when none)
    local line
    line=$(grep '^RESULT ' "$1" | tail -n 1 || true)
    echo "${line#RESULT }"
}

kv_last() { # kv_last "k=v ...": every key once, where it first appears, with its last value
    local kv k out="" keys=()
    local -A val=()
    for kv in $1; do
        k=${kv%%=*}
        [[ -n ${val[$k]+x} ]] || keys+=("$k")
        val[$k]=${kv#*=}
    done
    for k in "${keys[@]}"; do out+=" $k=${val[$k]}"; done
    echo "${out# }"
}

prefixed() { # prefixed PREFIX "k=v ...": every key with PREFIX
    local kv out=""
    for kv in $2; do out+=" $1$kv"; done
    echo "${out# }"
}

server_gone() { # the server died during a run: sets FAIL_REASON
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        FAIL_REASON="server died during the run: $(tail -n 3 "$LOGDIR/server.log" | tr '\n' ' ')"
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
        return 0
    fi
    return 1
}

sampled() { # sampled "measure_end output": the server's /proc entries were read (else FAIL_REASON)
    [[ $(field hwm_kb "$1") != 0 ]] && return 0
    FAIL_REASON="the server's /proc/PID/status could not be read (PIDs '$M_PIDS'): no CPU figure"
    return 1
}

finish_run() { # stop the server and wait for its port
    stop_server
    wait_port_free || { note "port $PORT still in use after stopping ${NAMES[$1]}"; exit 1; }
}

run_one() {
    local sc=$1 i=$2 name=${NAMES[$2]} log line m rc=0 errs
    log=$LOGDIR/server.log
    if ! start_server "$(expand_cmd "${CMDS[$i]}")" "$log"; then return 1; fi
    if ! check_https; then stop_server; return 1; fi
    case $sc in
    idle)
        measure_begin || { FAIL_REASON="server exited before the run"; stop_server; return 1; }
        run_load "$LOGDIR/load.out" 180 "$IDLE" -p "$PORT" -S "$M_PIDS" -n "$IDLE_CONNS" -w "$IDLE_SETTLE" && rc=0 || rc=$?
        m=$(measure_end) || { FAIL_REASON="server exited during the run: $(tail -n 3 "$log" | tr '\n' ' ')"; stop_server; return 1; }
        finish_run "$i"
        sampled "$m" || return 1
        line=$(result_line "$LOGDIR/load.out")
        if ((rc != 0)) || [[ -z $line ]]; then
            FAIL_REASON="tls-idle-conns exit $rc: $(grep -v '^RESULT' "$LOGDIR/load.out" | head -n 3 | tr '\n' ' ')"
            return 1
        fi
        RES_LINE="$line $m"
        ;;
    keepalive)
        [[ $WARMUP == 0 ]] || wrk_run "$LOGDIR/warmup.out" "$WARMUP" || true
        measure_begin || { FAIL_REASON="server exited before the run"; stop_server; return 1; }
        wrk_run "$LOGDIR/load.out" "$DURATION" && rc=0 || rc=$?
        if server_gone; then return 1; fi
        m=$(measure_end) || { FAIL_REASON="server exited at the end of the run"; stop_server; return 1; }
        finish_run "$i"
        sampled "$m" || return 1
        line=$(result_line "$LOGDIR/load.out")
        if ((rc != 0)) || [[ -z $line ]]; then
            FAIL_REASON="wrk exit $rc: $(tail -n 3 "$LOGDIR/load.out" | tr '\n' ' ')"
            return 1
        fi
        # Server CPU per request: the server's CPU over the measured wrk run ÷ its requests.
        RES_LINE="$line $m $(awk -v n="$(field requests "$line")" -v s="$(field server_cpu_s "$m")" \
            'BEGIN { printf "cpu_us_per_req=%.3f", (n > 0 ? s * 1e6 / n : 0) }') errors=$(wrk_errors "$line") open_group=${OPEN_GROUP:-unknown}"
        ;;
    full | resumed)
        local mode=()
        [[ $sc == full ]] || mode=(--resume)
        [[ $WARMUP == 0 ]] || run_load "$LOGDIR/warmup.out" 60 "$HS" -p "$PORT" -c "$HS_CONNS" -d "$WARMUP" "${mode[@]}" || true
        measure_begin || { FAIL_REASON="server exited before the run"; stop_server; return 1; }
        run_load "$LOGDIR/load.out" "$(awk -v d="$DURATION" 'BEGIN { printf "%d", d + 60 }')" \
            "$HS" -p "$PORT" -c "$HS_CONNS" -d "$DURATION" "${mode[@]}" && rc=0 || rc=$?
        if server_gone; then return 1; fi
        m=$(measure_end) || { FAIL_REASON="server exited at the end of the run"; stop_server; return 1; }
        finish_run "$i"
        sampled "$m" || return 1
        line=$(result_line "$LOGDIR/load.out")
        if [[ -z $line ]] || ((rc != 0 && rc != 1)); then
            FAIL_REASON="tls-handshakes exit $rc: $(grep -v '^RESULT' "$LOGDIR/load.out" | head -n 3 | tr '\n' ' ')"
            return 1
        fi
        if (($(field handshakes "$line") == 0)); then
            FAIL_REASON="no handshake completed: $(grep -v '^RESULT' "$LOGDIR/load.out" | head -n 3 | tr '\n' ' ')"
            return 1
        fi
        # Server CPU per handshake: the server's CPU over the measured run ÷ its handshakes.
        RES_LINE="$line $m $(awk -v n="$(field handshakes "$line")" -v s="$(field server_cpu_s "$m")" \
            'BEGIN { printf "cpu_us_per_hs=%.3f", (n > 0 ? s * 1e6 / n : 0) }')"
        # Runtime overhead, paired: mbedtls-mem on the same CPU right after the run (the
        # server is stopped), so that both figures see the same state of the machine.
        local mb key
        [[ $sc == full ]] && key=full_server_us || key=resumed_server_us
        if mb=$(taskset -c "$SERVER_CPU" "$MBED" -c "$PKI/chain.pem" -k "$PKI/key.pem" -a "$PKI/ca.pem" -w 2 \
            -n "$MBEDTLS_PAIRED_FULL" -r "$MBEDTLS_PAIRED_RESUMED" 2>/dev/null); then
            mb=$(field "$key" "$(result_line <(printf '%s\n' "$mb"))")
            RES_LINE="$RES_LINE mb_server_us=$mb $(awk -v c="$(field cpu_us_per_hs "$RES_LINE")" -v b="$mb" \
                'BEGIN { printf "overhead=%.3f", (b > 0 ? c / b : 0) }')"
        else
            note "$name: mbedtls-mem after the $sc run failed; no paired runtime overhead"
        fi
        [[ $(field errors "$line") == 0 ]] || note "$name: $(grep -v '^RESULT' "$LOGDIR/load.out" | head -n 2 | tr '\n' ' ')"
        ;;
    latency)
        local line2 m2 bg bgsecs
        [[ $WARMUP == 0 ]] || wrk_run "$LOGDIR/warmup.out" "$WARMUP" paced || true
        # Without handshakes.
        measure_begin || { FAIL_REASON="server exited before the run"; stop_server; return 1; }
        wrk_run "$LOGDIR/load.out" "$DURATION" paced && rc=0 || rc=$?
        if server_gone; then return 1; fi
        m=$(measure_end) || { FAIL_REASON="server exited at the end of the run"; stop_server; return 1; }
        line=$(result_line "$LOGDIR/load.out")
        if ((rc != 0)) || [[ -z $line ]]; then
            FAIL_REASON="wrk exit $rc: $(tail -n 3 "$LOGDIR/load.out" | tr '\n' ' ')"
            stop_server
            return 1
        fi
        # With full handshakes arriving at HS_RATE per second, from half a second before
        # the measured wrk run until after it.
        bgsecs=$(awk -v d="$DURATION" 'BEGIN { printf "%.1f", d + 1.5 }')
        taskset -c "$LOAD_CPU" "$HS" -p "$PORT" -c "$HS_CONNS" -d "$bgsecs" --rate "$HS_RATE" >"$LOGDIR/bg.out" 2>&1 </dev/null &
        BG_PID=$!
        sleep 0.5
        measure_begin || { FAIL_REASON="server exited before the run"; stop_bg; stop_server; return 1; }
        wrk_run "$LOGDIR/load2.out" "$DURATION" paced && rc=0 || rc=$?
        if server_gone; then stop_bg; return 1; fi
        m2=$(measure_end) || { FAIL_REASON="server exited at the end of the run"; stop_bg; stop_server; return 1; }
        wait "$BG_PID" 2>/dev/null || true
        BG_PID=""
        finish_run "$i"
        sampled "$m" && sampled "$m2" || return 1
        line2=$(result_line "$LOGDIR/load2.out")
        bg=$(result_line "$LOGDIR/bg.out")
        if ((rc != 0)) || [[ -z $line2 ]]; then
            FAIL_REASON="wrk (with handshakes) exit $rc: $(tail -n 3 "$LOGDIR/load2.out" | tr '\n' ' ')"
            return 1
        fi
        if [[ -z $bg ]]; then
            FAIL_REASON="the background tls-handshakes gave no result: $(head -n 3 "$LOGDIR/bg.out" | tr '\n' ' ')"
            return 1
        fi
        errs=$(($(wrk_errors "$line") + $(wrk_errors "$line2")))
        # The run counts as disturbed when either half was.
        RES_LINE="$line $m $(prefixed hs_ "$line2") $(prefixed hs_ "$m2") $(prefixed bg_ "$bg") errors=$errs"
        RES_LINE="$RES_LINE $(awk -v a="$(field p99_us "$line")" -v b="$(field p99_us "$line2")" \
            -v d1="$(field disturbed "$m")" -v d2="$(field disturbed "$m2")" -v o1="$(field other_cpu "$m")" -v o2="$(field other_cpu "$m2")" \
            'BEGIN { printf "p99_ratio=%.3f", (a > 0 ? b / a : 0); printf " disturbed=%d other_cpu=%.3f", (d1 || d2), (o1 > o2 ? o1 : o2) }')"
        RES_LINE=$(kv_last "$RES_LINE")
        ;;
    esac
    return 0
}

progress_text() {
    local l=$1
    if [[ -n $(field bytes_per_conn "$l") ]]; then
        echo "$(field bytes_per_conn "$l") B per idle TLS connection (RSS $(field rss_before_kb "$l") -> $(field rss_after_kb "$l") kB)"
    elif [[ -n $(field p99_ratio "$l") ]]; then
        echo "p99 $(field p99_us "$l") us at $(field rate "$l") req/s; with $(field bg_rate "$l") full handshakes/s: p99 $(field hs_p99_us "$l") us ($(field p99_ratio "$l")x), errors $(field errors "$l") + handshakes $(field bg_errors "$l")"
    elif [[ -n $(field handshakes "$l") ]]; then
        echo "$(field rate "$l") handshakes/s ($(field resumed "$l") resumed, $(field full "$l") full), server $(field cpu_us_per_hs "$l") us CPU/handshake (util $(field server_util "$l")), load CPU $(field load_cpu "$l"), errors $(field errors "$l")"
    else
        echo "$(field rate "$l") req/s, p50 $(field p50_us "$l") us, p99 $(field p99_us "$l") us, server $(field cpu_us_per_req "$l") us CPU/req (util $(field server_util "$l")), peak RSS $(field hwm_kb "$l") kB, errors $(field errors "$l")"
    fi
}

# mbedtls-mem, once per round, pinned to SERVER_CPU (no server runs meanwhile).
run_mbedtls() {
    local r line rc
    for ((r = 1; r <= ROUNDS; r++)); do
        wait_quiet || true
        taskset -c "$SERVER_CPU" "$MBED" -c "$PKI/chain.pem" -k "$PKI/key.pem" -a "$PKI/ca.pem" \
            -n "$MBEDTLS_FULL" -r "$MBEDTLS_RESUMED" >"$LOGDIR/mbedtls.out" 2>&1 && rc=0 || rc=$?
        line=$(result_line "$LOGDIR/mbedtls.out")
        {
            printf '{"type": "lib", "tool": "mbedtls-mem", "round": %d, "ok": %s' "$r" "$( ((rc == 0)) && [[ -n $line ]] && echo true || echo false)"
            ((rc == 0)) && [[ -n $line ]] || printf ', "error": %s' "$(json_str "exit $rc: $(head -n 3 "$LOGDIR/mbedtls.out" | tr '\n' ' ')")"
            kv_json "$line"
            printf '}\n'
        } >>"$RAW"
        if ((rc == 0)) && [[ -n $line ]]; then
            note "mbedtls-mem round $r: full handshake server $(field full_server_us "$line") us, client $(field full_client_us "$line") us CPU; resumed server $(field resumed_server_us "$line") us, client $(field resumed_client_us "$line") us ($(field resumed_ok "$line")/$(field resumed_n "$line") resumed)"
        else
            FAILURES=$((FAILURES + 1))
            note "mbedtls-mem round $r: FAILED: $(head -n 3 "$LOGDIR/mbedtls.out" | tr '\n' ' ')"
        fi
    done
}

# The versions of the TLS libraries, next to the meta line's machine and tools.
write_tls_meta() {
    local nioSSL mbed
    nioSSL=$(python3 -c 'import json,sys
try:
    pins = json.load(open(sys.argv[1]))["pins"]
    print(next(p["state"].get("version", "") for p in pins if p["identity"] == "swift-nio-ssl"))
except Exception:
    print("")' "$ROOT/Benchmarks/Package.resolved" 2>/dev/null || true)
    mbed=$(dpkg-query -W -f='${Version}' libmbedtls-dev 2>/dev/null || true)
    printf '{"type": "meta-extra", "openssl": %s, "mbedtls": %s, "swift_nio_ssl": %s, "hs_conns": %d, "hs_rate": %d, "lat_delay_ms": %d, "mbedtls_full": %d, "mbedtls_resumed": %d}\n' \
        "$(json_str "$(openssl version | awk '{ print $2 }')")" "$(json_str "${mbed:-unknown}")" "$(json_str "${nioSSL:-unknown}")" \
        "$HS_CONNS" "$HS_RATE" "$LAT_DELAY_MS" "$MBEDTLS_FULL" "$MBEDTLS_RESUMED" >>"$RAW"
}

note "$((${#SCEN[@]} * ROUNDS * ${#NAMES[@]})) runs: scenarios [${SCEN[*]}] x $ROUNDS round(s) x servers [${NAMES[*]}], ${DURATION}s + ${WARMUP}s warmup each; mbedtls-mem x $ROUNDS"
note "server on CPU $SERVER_CPU, load on CPU $LOAD_CPU, port $PORT, open files $NOFILE; TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256 P-256"
write_meta tls
write_tls_meta
FAILURES=0
run_mbedtls
MB_FAILURES=$FAILURES
run_matrix
FAILURES=$((FAILURES + MB_FAILURES))

args=(--bench tls --raw "$RAW" --json "$JSON_OUT" --md "$MD_OUT")
[[ $UPDATE_DOCS != 1 ]] || args+=(--docs "$ROOT/docs/benchmarks.md")
python3 "$ROOT/Benchmarks/scripts/bench-report.py" "${args[@]}"
((FAILURES == 0)) || { note "$FAILURES run(s) failed"; exit 1; }
