#!/usr/bin/env bash
# bench-resp.sh: RESP (Redis protocol) servers side by side (DESIGN §9; docs/benchmarks.md "RESP").
#
# For every scenario, every round and every server, in that order (rounds interleaved:
# A B A B), the script starts the server alone on CPU $SERVER_CPU with the open-file limit
# $NOFILE, waits until its port accepts, checks it (redis-cli: PING -> PONG, SET then GET
# returns the value), warms it up with a short redis-benchmark run, samples the server's
# CPU time (/proc/PID/stat utime+stime), runs redis-benchmark on CPU $LOAD_CPU
# (-c $CLIENTS -t TEST -P DEPTH -n REQUESTS --csv), samples again, reads its peak RSS
# (VmHWM), stops it and waits until the port is free. Then bench-report.py prints one
# Markdown table per scenario (medians over rounds, min–max, ratios to each peer), writes
# the raw results to $JSON_OUT and, with UPDATE_DOCS=1, the tables and an SVG chart per
# scenario into docs/benchmarks.md (between <!-- bench-resp:begin/end -->) and docs/benchmarks/.
#
# Scenarios (SCENARIOS, space-separated): TEST-pDEPTH, TEST one of redis-benchmark's
# tests (ping_mbulk = PING as a RESP array, what clients send; ping_inline; set; get; ...),
# default "ping_mbulk-p1 set-p1 get-p1 ping_mbulk-p16 set-p16 get-p16 idle"
# (= redis-benchmark -t ping,set,get at pipeline 1 and 16, one test per measured run so
# that the server CPU per request is per command); "idle": RSS per idle connection
# (IDLE_CONNS connections, each after one PING/PONG).
#
# Requests per run: REQUESTS_P1 (default 100000 × DURATION) at pipeline 1,
# REQUESTS_PN (default 1000000 × DURATION) when pipelined: about DURATION seconds against
# redis-server on one core (redis-benchmark stops after a count, not a time).
#
# Environment (all optional): SERVERS ("name|command" per line; {port}, {root},
# {scratch} are replaced), SCENARIOS, ROUNDS (3), DURATION (5), WARMUP (1: a warmup run
# of 20000 × WARMUP requests; 0 = none), CLIENTS (50), PORT (19190), SERVER_CPU (0),
# LOAD_CPU (1), NOFILE (20000 or the hard limit), IDLE_CONNS (10000), QUIET_MAX (0.10),
# QUIET_WAIT (300), RETRIES (2), JSON_OUT, MD_OUT, UPDATE_DOCS (1 when ROUNDS >= 3).
#
# Strata's rows: strata-resp (a product of the main package, built by `make bench-resp`)
# is measured when the main package declares it; until then its rows are left out and the
# script says so on stdout.
#
# Exit status: 0 if every run succeeded, 1 if any failed, 2 for bad settings or missing programs.

set -euo pipefail
LIB_TAG=bench-resp
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEFAULT_SERVERS="
strata-resp (io_uring)|{root}/.build/release/strata-resp --port {port} --backend io_uring --loops 1
strata-resp (epoll)|{root}/.build/release/strata-resp --port {port} --backend epoll --loops 1
redis-server|redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no --maxclients 15000 --dir {scratch} --logfile ''
"

SERVERS=${SERVERS:-$DEFAULT_SERVERS}
SCENARIOS=${SCENARIOS:-"ping_mbulk-p1 set-p1 get-p1 ping_mbulk-p16 set-p16 get-p16 idle"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CLIENTS=${CLIENTS:-50}
PORT=${PORT:-19190}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
NOFILE=${NOFILE:-20000}
IDLE_CONNS=${IDLE_CONNS:-10000}
QUIET_MAX=${QUIET_MAX:-0.10}
QUIET_WAIT=${QUIET_WAIT:-300}
RETRIES=${RETRIES:-2}
JSON_OUT=${JSON_OUT:-$TOOLS/bench-resp.json}
MD_OUT=${MD_OUT:-$TOOLS/bench-resp.md}
RAW=$TOOLS/bench-resp.raw.jsonl
if ((${ROUNDS:-0} >= 3)) 2>/dev/null; then UPDATE_DOCS=${UPDATE_DOCS:-1}; else UPDATE_DOCS=${UPDATE_DOCS:-0}; fi

check_common
check_uint NOFILE 1024 1048576
check_uint IDLE_CONNS 1 100000
check_uint CLIENTS 1 10000
((IDLE_CONNS + 100 <= NOFILE)) || die "IDLE_CONNS=$IDLE_CONNS needs NOFILE >= $((IDLE_CONNS + 100)) (the open-file limit is $NOFILE)"
REQUESTS_P1=${REQUESTS_P1:-$(awk -v d="$DURATION" 'BEGIN { printf "%d", 100000 * d }')}
REQUESTS_PN=${REQUESTS_PN:-$(awk -v d="$DURATION" 'BEGIN { printf "%d", 1000000 * d }')}
check_uint REQUESTS_P1 1 1000000000
check_uint REQUESTS_PN 1 1000000000

SCEN=()
for s in $SCENARIOS; do
    [[ $s == idle || $s =~ ^[a-z_]+-p[0-9]{1,4}$ ]] || die "bad scenario '$s' (want TEST-pDEPTH, e.g. set-p16, or idle)"
    SCEN+=("$s")
done
((${#SCEN[@]} > 0)) || die "SCENARIOS is empty"

for t in redis-benchmark redis-cli python3; do
    command -v "$t" >/dev/null || die "$t not found; install it: .ci/deps.sh bench"
done
IDLE=$TOOLS/idle-conns
build_c_tool "$IDLE" "$ROOT/Benchmarks/http-idle/idle-conns.c"

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/bench-resp.XXXXXX")
LOGDIR=$SCRATCH/logs
mkdir -p "$LOGDIR"
trap 'lib_cleanup; rm -rf "$SCRATCH"' EXIT
trap 'note "interrupted"; exit 130' INT
trap 'note "terminated"; exit 143' TERM

parse_servers
check_binaries

# check_resp: PING -> PONG; SET then GET returns the value.
check_resp() {
    local out v
    v="v$RANDOM$RANDOM"
    out=$(timeout 5 redis-cli -p "$PORT" PING 2>&1) || true
    [[ $out == PONG ]] || { FAIL_REASON="PING answered '${out:0:80}', not PONG"; return 1; }
    out=$(timeout 5 redis-cli -p "$PORT" SET bench:check "$v" 2>&1) || true
    [[ $out == OK ]] || { FAIL_REASON="SET answered '${out:0:80}', not OK"; return 1; }
    out=$(timeout 5 redis-cli -p "$PORT" GET bench:check 2>&1) || true
    [[ $out == "$v" ]] || { FAIL_REASON="GET answered '${out:0:80}', not the value just SET ($v)"; return 1; }
}

# redis-benchmark's CSV row for one test -> "rate=... p50_us=... p99_us=... ..."
parse_csv() {
    awk -F'","' 'NR > 1 { gsub(/"/, "", $1); gsub(/"/, "", $NF)
        printf "test=%s rate=%.1f mean_us=%.0f p50_us=%.0f p95_us=%.0f p99_us=%.0f max_us=%.0f\n",
            $1, $2, $3 * 1000, $5 * 1000, $6 * 1000, $7 * 1000, $8 * 1000; exit }' "$1"
}

run_one() {
    local sc=$1 i=$2 r=$3 name=${NAMES[$2]} log line m rc=0 test depth n
    log=$LOGDIR/server.log
    if ! start_server "$(expand_cmd "${CMDS[$i]}")" "$log"; then return 1; fi
    if ! check_resp; then stop_server; return 1; fi
    if [[ $sc == idle ]]; then
        measure_begin || { FAIL_REASON="server exited before the run"; stop_server; return 1; }
        run_load "$LOGDIR/load.out" 120 "$IDLE" -p "$PORT" -S "$M_PIDS" -n "$IDLE_CONNS" -m resp && rc=0 || rc=$?
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
    test=${sc%-p*}
    depth=${sc##*-p}
    if ((depth > 1)); then n=$REQUESTS_PN; else n=$REQUESTS_P1; fi
    if [[ $WARMUP != 0 ]]; then
        run_load "$LOGDIR/warmup.out" 120 redis-benchmark -p "$PORT" -c "$CLIENTS" -t "$test" -P "$depth" \
            -n "$(awk -v w="$WARMUP" -v d="$depth" 'BEGIN { printf "%d", 20000 * w * (d > 1 ? 10 : 1) }')" --csv || true
    fi
    measure_begin || { FAIL_REASON="server exited before the run"; stop_server; return 1; }
    run_load "$LOGDIR/load.out" 600 redis-benchmark -p "$PORT" -c "$CLIENTS" -t "$test" -P "$depth" -n "$n" --csv && rc=0 || rc=$?
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        FAIL_REASON="server died during the run: $(tail -n 3 "$log" | tr '\n' ' ')"
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
        return 1
    fi
    m=$(measure_end) || { FAIL_REASON="server exited at the end of the run"; stop_server; return 1; }
    stop_server
    wait_port_free || { note "port $PORT still in use after stopping $name"; exit 1; }
    line=$(parse_csv "$LOGDIR/load.out")
    if ((rc != 0)) || [[ -z $line ]]; then
        FAIL_REASON="redis-benchmark exit $rc: $(tail -n 3 "$LOGDIR/load.out" | tr '\n' ' ')"
        return 1
    fi
    RES_LINE="$line requests=$n $m $(awk -v n="$n" -v s="$(field server_cpu_s "$m")" \
        'BEGIN { printf "cpu_us_per_req=%.3f", (n > 0 ? s * 1e6 / n : 0) }')"
}

progress_text() {
    local l=$1
    if [[ -n $(field bytes_per_conn "$l") ]]; then
        echo "$(field bytes_per_conn "$l") B per idle connection (RSS $(field rss_before_kb "$l") -> $(field rss_after_kb "$l") kB)"
    else
        echo "$(field rate "$l") req/s, p50 $(field p50_us "$l") us, p99 $(field p99_us "$l") us, server $(field cpu_us_per_req "$l") us CPU/req (util $(field server_util "$l")), peak RSS $(field hwm_kb "$l") kB"
    fi
}

note "$((${#SCEN[@]} * ROUNDS * ${#NAMES[@]})) runs: scenarios [${SCEN[*]}] x $ROUNDS round(s) x servers [${NAMES[*]}]; $CLIENTS connections; $REQUESTS_P1 requests per run at pipeline 1, $REQUESTS_PN pipelined"
note "server on CPU $SERVER_CPU, redis-benchmark on CPU $LOAD_CPU, port $PORT, open files $NOFILE"
write_meta resp
run_matrix
report resp
((FAILURES == 0)) || { note "$FAILURES run(s) failed"; exit 1; }
