#!/usr/bin/env bash
# bench-http.sh: HTTP "Hello, World!" servers side by side (DESIGN §9; docs/benchmarks.md "HTTP").
#
# For every scenario, every round and every server, in that order (rounds interleaved:
# A B C A B C), the script starts the server alone on CPU $SERVER_CPU with the open-file
# limit $NOFILE, waits until its port accepts, checks its answer (curl: body
# "Hello, World!", Content-Length: 13, Content-Type text/plain; then two pipelined
# requests on one connection), warms it up with wrk for $WARMUP s, samples the server's
# CPU time (/proc/PID/stat utime+stime of the server and its children, e.g. nginx's worker),
# runs wrk -t1 on CPU $LOAD_CPU for $DURATION s, samples again, reads its peak RSS
# (VmHWM), stops it and waits until the port is free. Then bench-report.py prints one
# Markdown table per scenario (medians over rounds, min–max, ratios to each peer), writes
# the raw results to $JSON_OUT and, with UPDATE_DOCS=1, the tables and an SVG chart per
# scenario into docs/benchmarks.md (between <!-- bench-http:begin/end -->) and docs/benchmarks/.
#
# Scenarios (SCENARIOS, space-separated, default all):
#   keepalive  wrk -t1 -c64, one request per round trip (keep-alive)
#   pipelined  wrk -t1 -c64 with wrk-pipeline.lua: 16 requests per write
#   latency    wrk -t1 -c1: one connection, latency p50/p99
#   c1000      wrk -t1 -c1000
#   idle       idle-conns: RSS per idle keep-alive connection (IDLE_CONNS connections,
#              each after one request/response; (VmRSS after - before) / IDLE_CONNS)
#
# Environment (all optional): SERVERS ("name|command" per line; {port}, {root},
# {scratch} are replaced; default below), SCENARIOS, ROUNDS (3), DURATION (5 s),
# WARMUP (1 s), PORT (19180), SERVER_CPU (0), LOAD_CPU (1), NOFILE (open files for
# servers and load, 20000 or the hard limit), IDLE_CONNS (10000), QUIET_MAX (0.10 cores),
# QUIET_WAIT (300 s), RETRIES (2), JSON_OUT, MD_OUT, UPDATE_DOCS (1 when ROUNDS >= 3,
# else 0), CC.
#
# Strata's rows: strata-serve (a product of the main package, built by `make bench-http`)
# is measured when the main package declares it; until then its rows are left out and
# the script says so on stdout. Adding the async-handler row is uncommenting one line.
#
# Exit status: 0 if every run succeeded, 1 if any failed (the tables show which), 2 for
# bad settings or missing programs.

set -euo pipefail
LIB_TAG=bench-http
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEFAULT_SERVERS="
strata-serve (io_uring)|{root}/.build/release/strata-serve --port {port} --backend io_uring --loops 1
strata-serve (epoll)|{root}/.build/release/strata-serve --port {port} --backend epoll --loops 1
strata-serve (io_uring, async)|{root}/.build/release/strata-serve --port {port} --backend io_uring --loops 1 --handlers async
nginx|nginx -p {scratch}/nginx/ -e {scratch}/nginx/error.log -c {scratch}/nginx/nginx-{port}.conf
nio|{root}/.build-bench/release/nio-http-server --port {port} --threads 1
hummingbird|{root}/.build-bench/release/hummingbird-server --port {port} --threads 1
"

SERVERS=${SERVERS:-$DEFAULT_SERVERS}
SCENARIOS=${SCENARIOS:-"keepalive pipelined latency c1000 idle"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
PORT=${PORT:-19180}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
NOFILE=${NOFILE:-20000}
IDLE_CONNS=${IDLE_CONNS:-10000}
QUIET_MAX=${QUIET_MAX:-0.10}
QUIET_WAIT=${QUIET_WAIT:-300}
RETRIES=${RETRIES:-2}
JSON_OUT=${JSON_OUT:-$TOOLS/bench-http.json}
MD_OUT=${MD_OUT:-$TOOLS/bench-http.md}
RAW=$TOOLS/bench-http.raw.jsonl
if ((${ROUNDS:-0} >= 3)) 2>/dev/null; then UPDATE_DOCS=${UPDATE_DOCS:-1}; else UPDATE_DOCS=${UPDATE_DOCS:-0}; fi

check_common
check_uint NOFILE 1024 1048576
check_uint IDLE_CONNS 1 100000
((IDLE_CONNS + 100 <= NOFILE)) || die "IDLE_CONNS=$IDLE_CONNS needs NOFILE >= $((IDLE_CONNS + 100)) (the open-file limit is $NOFILE)"

declare -A SC_CONNS=([keepalive]=64 [pipelined]=64 [latency]=1 [c1000]=1000 [idle]=0)
declare -A SC_DEPTH=([keepalive]=1 [pipelined]=16 [latency]=1 [c1000]=1 [idle]=0)
SCEN=()
for s in $SCENARIOS; do
    [[ -n ${SC_CONNS[$s]+x} ]] || die "unknown scenario '$s' (keepalive pipelined latency c1000 idle)"
    SCEN+=("$s")
done
((${#SCEN[@]} > 0)) || die "SCENARIOS is empty"

command -v wrk >/dev/null || die "wrk not found; install it: .ci/deps.sh bench"
command -v curl >/dev/null || die "curl not found; install it: .ci/deps.sh bench"
command -v python3 >/dev/null || die "python3 not found (the report is written by bench-report.py)"
IDLE=$TOOLS/idle-conns
build_c_tool "$IDLE" "$ROOT/Benchmarks/http-idle/idle-conns.c"

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/bench-http.XXXXXX")
LOGDIR=$SCRATCH/logs
mkdir -p "$LOGDIR"
trap 'lib_cleanup; rm -rf "$SCRATCH"' EXIT
trap 'note "interrupted"; exit 130' INT
trap 'note "terminated"; exit 143' TERM

parse_servers
check_binaries

# nginx: one worker, `return 200`, run as the current user with every path in the scratch
# directory (no root needed). As root, nginx would switch its worker to "nobody": keep root.
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
        listen 127.0.0.1:$PORT backlog=8192;
        location / {
            return 200 "Hello, World!";
        }
    }
}
NGINX
} >"$SCRATCH/nginx/nginx-$PORT.conf"

# check_http: the answer to GET / is "Hello, World!" with Content-Length 13 and
# Content-Type text/plain, and two pipelined requests on one connection get two answers.
check_http() {
    local body headers n
    if ! body=$(curl -sS --max-time 5 -D "$LOGDIR/headers" "http://127.0.0.1:$PORT/" 2>&1); then
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
    n=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$PORT"'
        printf "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" >&3
        cat <&3' 2>/dev/null | grep -o 'Hello, World!' | wc -l) || true
    [[ $n == 2 ]] || { FAIL_REASON="two pipelined requests got $n answer(s), not 2"; return 1; }
}

wrk_args() { # wrk_args SCENARIO SECONDS
    local c=${SC_CONNS[$1]} d=${SC_DEPTH[$1]}
    printf '%s\n' -t1 "-c$c" "-d$2" --timeout 10s
    if ((d > 1)); then
        printf '%s\n' -s "$ROOT/Benchmarks/scripts/wrk-pipeline.lua" "http://127.0.0.1:$PORT/" -- "$d"
    else
        printf '%s\n' -s "$ROOT/Benchmarks/scripts/wrk-report.lua" "http://127.0.0.1:$PORT/"
    fi
}

run_one() {
    local sc=$1 i=$2 r=$3 name=${NAMES[$2]} log line m rc=0 budget args
    log=$LOGDIR/server.log
    if ! start_server "$(expand_cmd "${CMDS[$i]}")" "$log"; then return 1; fi
    if ! check_http; then stop_server; return 1; fi
    if [[ $sc == idle ]]; then
        measure_begin || { FAIL_REASON="server exited before the run"; stop_server; return 1; }
        run_load "$LOGDIR/load.out" 120 "$IDLE" -p "$PORT" -S "$M_PIDS" -n "$IDLE_CONNS" -m http && rc=0 || rc=$?
        m=$(measure_end) || { FAIL_REASON="server exited during the run: $(tail -n 3 "$log" | tr '\n' ' ')"; stop_server; return 1; }
        stop_server
        wait_port_free || { note "port $PORT still in use after stopping $name"; exit 1; }
        line=$(grep '^RESULT ' "$LOGDIR/load.out" | tail -n 1 || true)
        if ((rc != 0)) || [[ -z $line ]]; then
            FAIL_REASON="idle-conns exit $rc: $(grep -v '^RESULT' "$LOGDIR/load.out" | head -n 3 | tr '\n' ' ')"
            return 1
        fi
        RES_LINE="${line#RESULT } $m"
        return 0
    fi
    mapfile -t args < <(wrk_args "$sc" "$WARMUP")
    if [[ $WARMUP != 0 ]]; then
        run_load "$LOGDIR/warmup.out" 60 wrk "${args[@]}" || true
    fi
    measure_begin || { FAIL_REASON="server exited before the run"; stop_server; return 1; }
    mapfile -t args < <(wrk_args "$sc" "$DURATION")
    budget=$(awk -v d="$DURATION" 'BEGIN { printf "%d", d + 60 }')
    run_load "$LOGDIR/load.out" "$budget" wrk "${args[@]}" && rc=0 || rc=$?
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        FAIL_REASON="server died during the run: $(tail -n 3 "$log" | tr '\n' ' ')"
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
        return 1
    fi
    m=$(measure_end) || { FAIL_REASON="server exited at the end of the run"; stop_server; return 1; }
    stop_server
    wait_port_free || { note "port $PORT still in use after stopping $name"; exit 1; }
    line=$(grep '^RESULT ' "$LOGDIR/load.out" | tail -n 1 || true)
    if ((rc != 0)) || [[ -z $line ]]; then
        FAIL_REASON="wrk exit $rc: $(tail -n 3 "$LOGDIR/load.out" | tr '\n' ' ')"
        return 1
    fi
    line=${line#RESULT }
    # Server CPU per request: the server's CPU over the measured wrk run ÷ its requests.
    RES_LINE="$line $m $(awk -v n="$(field requests "$line")" -v s="$(field server_cpu_s "$m")" \
        'BEGIN { printf "cpu_us_per_req=%.3f", (n > 0 ? s * 1e6 / n : 0) }')"
    local errs
    errs=$(($(field err_connect "$line") + $(field err_read "$line") + $(field err_write "$line") + $(field err_status "$line") + $(field err_timeout "$line")))
    RES_LINE="$RES_LINE errors=$errs"
}

progress_text() {
    local l=$1
    if [[ -n $(field bytes_per_conn "$l") ]]; then
        echo "$(field bytes_per_conn "$l") B per idle connection (RSS $(field rss_before_kb "$l") -> $(field rss_after_kb "$l") kB)"
    else
        echo "$(field rate "$l") req/s, p50 $(field p50_us "$l") us, p99 $(field p99_us "$l") us, server $(field cpu_us_per_req "$l") us CPU/req (util $(field server_util "$l")), peak RSS $(field hwm_kb "$l") kB, errors $(field errors "$l")"
    fi
}

note "$((${#SCEN[@]} * ROUNDS * ${#NAMES[@]})) runs: scenarios [${SCEN[*]}] x $ROUNDS round(s) x servers [${NAMES[*]}], ${DURATION}s + ${WARMUP}s warmup each"
note "server on CPU $SERVER_CPU, wrk -t1 on CPU $LOAD_CPU, port $PORT, open files $NOFILE"
write_meta http
run_matrix
report http
((FAILURES == 0)) || { note "$FAILURES run(s) failed"; exit 1; }
