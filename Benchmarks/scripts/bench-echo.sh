#!/usr/bin/env bash
# shellcheck disable=SC2015  # "check && check || die" is meant: die when either check fails.
# bench-echo.sh: TCP echo servers side by side (DESIGN §9; docs/benchmarks.md "Echo (Events)").
#
# For every scenario (connections x message size), every round and every server, in
# that order (rounds interleaved: A B C A B C), the script starts the server alone on
# CPU $SERVER_CPU, waits until its port accepts, checks that it echoes correctly, runs
# the load generator (Benchmarks/echo-load/echo-load.c) on CPU $LOAD_CPU, samples the
# server's CPU time from /proc/PID/stat just before and just after the load run, stops
# the server and waits until the port is free. Then it prints one Markdown table per
# scenario (medians over the rounds, min-max, and ratios between the servers) and writes
# every raw result to $JSON_OUT.
#
# Environment (all optional):
#   SERVERS      "name:command" entries separated by newlines or ';'. "{port}" in a
#                command is replaced by the port. Default: strata-io_uring, strata-epoll,
#                nio, c-epoll (see DEFAULT_SERVERS below). Ratios are printed as
#                earlier / later for every pair, so list the server of interest first.
#   SCENARIOS    space-separated CONNSxSIZE or CONNSxSIZExPIPELINE
#                (default "1x64 64x64 1000x64 1x16384 64x16384 1000x16384")
#   ROUNDS       rounds per scenario and server (default 3)
#   DURATION     measured seconds per run (default 5)
#   WARMUP       warmup seconds per run, not measured (default 1)
#   PORT         TCP port the servers listen on (default 19099); it must be free
#   SERVER_CPU   CPU the server is pinned to (default 0)
#   LOAD_CPU     CPU the load generator is pinned to (default 1)
#   LOAD_THREADS load generator threads (default 1; all pinned to LOAD_CPU)
#   JSON_OUT     raw results (default .build-bench-tools/bench-echo.json)
#   MD_OUT       a copy of the tables printed on stdout (default .build-bench-tools/bench-echo.md)
#   CC           C compiler for the load generator and the C anchor (default cc)
#   QUIET_MAX    CPU (in cores) other processes may use during a run (default 0.10)
#   QUIET_WAIT   seconds to wait, before each run, for other processes to go below
#                QUIET_MAX (default 300); after that the run goes ahead anyway
#   RETRIES      times a disturbed run (other processes above QUIET_MAX) is repeated
#                (default 2); a run still disturbed after that is kept and flagged
#
# Example (before strata-echo exists):
#   SERVERS='nio:.build-bench/release/nio-echo-server --port {port} --threads 1;c-epoll:.build-bench-tools/c-echo-epoll --port {port}' \
#     ROUNDS=2 DURATION=3 Benchmarks/scripts/bench-echo.sh
#
# Other load: before each run the script waits (up to QUIET_WAIT s) until processes
# other than its own use at most QUIET_MAX cores; after each run it computes the CPU the
# other user-space processes used during it (from /proc/*/stat, children included) and
# repeats the run (up to RETRIES times) when that exceeds QUIET_MAX. A run still
# disturbed is kept and flagged in the tables and the JSON. (A parent that reaps a
# long-running child adds that child's whole CPU time at once, so the wait may
# briefly over-count; it never under-counts a process that stays alive.)
#
# Server CPU per round trip: (utime + stime) of the whole server process over the load
# run, divided by every round trip the server echoed in it: the measured ones plus the
# warmup and the final drain (the load run also includes connecting, which costs the
# server one accept per connection). Server util: the server's CPU seconds per second of
# the measured interval alone, sampled by echo-load -S at its start and end (near 1.00:
# the server is the bottleneck; load CPU near 1.00 per load thread: the generator is).
#
# Exit status: 0 if every run succeeded, 1 if any run failed (the tables show which),
# 2 for bad settings or missing binaries.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=$ROOT/.build-bench-tools
LOAD=$TOOLS/echo-load

DEFAULT_SERVERS="strata-io_uring:$ROOT/.build/release/strata-echo --port {port} --backend io_uring --loops 1
strata-epoll:$ROOT/.build/release/strata-echo --port {port} --backend epoll --loops 1
nio:$ROOT/.build-bench/release/nio-echo-server --port {port} --threads 1
c-epoll:$TOOLS/c-echo-epoll --port {port}"

SERVERS=${SERVERS:-$DEFAULT_SERVERS}
SCENARIOS=${SCENARIOS:-"1x64 64x64 1000x64 1x16384 64x16384 1000x16384"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
PORT=${PORT:-19099}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
LOAD_THREADS=${LOAD_THREADS:-1}
JSON_OUT=${JSON_OUT:-$TOOLS/bench-echo.json}
MD_OUT=${MD_OUT:-$TOOLS/bench-echo.md}
CC=${CC:-cc}
QUIET_MAX=${QUIET_MAX:-0.10}
QUIET_WAIT=${QUIET_WAIT:-300}
RETRIES=${RETRIES:-2}

START_TIMEOUT_S=30   # a server must accept connections this soon after it starts
STOP_TIMEOUT_S=5     # SIGTERM, then SIGKILL after this long
PORT_FREE_TIMEOUT_S=10

die() { printf 'bench-echo: %s\n' "$*" >&2; exit 2; }
note() { printf 'bench-echo: %s\n' "$*" >&2; }

# ------------------------------------------------------------------ settings

# check_uint NAME LO HI: the variable NAME holds a decimal integer in [LO, HI]; normalises it.
check_uint() {
    local name=$1 v=${!1}
    [[ $v =~ ^[0-9]{1,9}$ ]] && ((10#$v >= $2 && 10#$v <= $3)) || die "$name must be an integer from $2 to $3, got '$v'"
    printf -v "$name" '%d' "$((10#$v))"
}
# check_seconds NAME LO_EXCLUSIVE: the variable NAME holds seconds, > 0 (or >= 0), at most 3600.
check_seconds() {
    local name=$1 v=${!1}
    [[ $v =~ ^[0-9]{1,6}(\.[0-9]{1,6})?$ ]] && awk -v d="$v" -v x="$2" 'BEGIN { exit !((x ? d > 0 : d >= 0) && d <= 3600) }' ||
        die "$name must be a number of seconds $( (($2)) && echo '> 0' || echo '>= 0') and at most 3600, got '$v'"
}

check_uint ROUNDS 1 100
check_seconds DURATION 1
check_seconds WARMUP 0
check_uint PORT 1 65535
check_uint LOAD_THREADS 1 256
check_uint SERVER_CPU 0 4095
check_uint LOAD_CPU 0 4095
check_uint QUIET_WAIT 0 86400
check_uint RETRIES 0 10
[[ $QUIET_MAX =~ ^[0-9]{1,3}(\.[0-9]{1,3})?$ ]] || die "QUIET_MAX must be a number of cores such as 0.10, got '$QUIET_MAX'"
[[ $SERVER_CPU != "$LOAD_CPU" ]] || note "warning: SERVER_CPU and LOAD_CPU are both $LOAD_CPU: the load will compete with the server"
command -v taskset >/dev/null || die "taskset not found (Debian: apt-get install util-linux)"
taskset -c "$SERVER_CPU" true 2>/dev/null || die "cannot pin to SERVER_CPU=$SERVER_CPU (CPUs: $(nproc))"
taskset -c "$LOAD_CPU" true 2>/dev/null || die "cannot pin to LOAD_CPU=$LOAD_CPU (CPUs: $(nproc))"
CLK_TCK=$(getconf CLK_TCK)
[[ $CLK_TCK =~ ^[1-9][0-9]*$ ]] || die "getconf CLK_TCK gave '$CLK_TCK'"

# Scenarios: "CxS" or "CxSxP".
SCEN=()
for s in $SCENARIOS; do
    [[ $s =~ ^([0-9]{1,8})x([0-9]{1,9})(x([0-9]{1,4}))?$ ]] || die "bad scenario '$s' (want CONNSxSIZE or CONNSxSIZExPIPELINE)"
    c=$((10#${BASH_REMATCH[1]})) z=$((10#${BASH_REMATCH[2]})) p=$((10#${BASH_REMATCH[4]:-1}))
    ((c >= 1 && c <= 100000 && z >= 1 && z <= 16777216 && p >= 1 && p <= 1024)) ||
        die "bad scenario '$s' (connections 1-100000, size 1-16777216 bytes, pipeline 1-1024)"
    SCEN+=("$s")
done
((${#SCEN[@]} > 0)) || die "SCENARIOS is empty"

# Servers: "name:command" entries, newline or ';' separated.
NAMES=()
CMDS=()
while IFS= read -r entry; do
    entry=${entry#"${entry%%[![:space:]]*}"}
    entry=${entry%"${entry##*[![:space:]]}"}
    [[ -n $entry ]] || continue
    [[ $entry == *:* ]] || die "bad SERVERS entry '$entry' (want name:command)"
    name=${entry%%:*}
    cmd=${entry#*:}
    [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "bad server name '$name' (letters, digits, . _ - only)"
    [[ $cmd == *"{port}"* ]] || die "the command of '$name' must contain {port}: $cmd"
    for n in "${NAMES[@]}"; do [[ $n != "$name" ]] || die "server name '$name' appears twice in SERVERS"; done
    NAMES+=("$name")
    CMDS+=("$cmd")
done < <(printf '%s\n' "$SERVERS" | tr ';' '\n')
((${#NAMES[@]} > 0)) || die "SERVERS is empty"

# ------------------------------------------------------------------ binaries

# Builds a C tool when it is missing or older than its source.
build_c_tool() {
    local out=$1 src=$2
    if [[ ! -x $out || $src -nt $out ]]; then
        mkdir -p "$TOOLS"
        note "building $(basename "$out"): $CC -O2 -Wall -Wextra -o $out $src"
        "$CC" -O2 -Wall -Wextra -o "$out" "$src" || die "building $out failed"
    fi
}
build_c_tool "$LOAD" "$ROOT/Benchmarks/echo-load/echo-load.c"

missing=()
for i in "${!NAMES[@]}"; do
    read -r -a words <<<"${CMDS[$i]}"
    bin=${words[0]}
    if [[ $bin == "$TOOLS/c-echo-epoll" ]]; then
        build_c_tool "$bin" "$ROOT/Benchmarks/echo-load/c-echo-epoll.c"
    fi
    if [[ $bin == */* ]]; then [[ -x $bin ]] && continue; else command -v "$bin" >/dev/null && continue; fi
    case $bin in
    */strata-echo) how="(cd $ROOT && swift build -c release --product strata-echo)" ;;
    */nio-echo-server) how="(cd $ROOT/Benchmarks && swift build -c release --scratch-path ../.build-bench --product nio-echo-server)" ;;
    *) how="" ;;
    esac
    if [[ -n $how ]]; then
        missing+=("  ${NAMES[$i]}: $bin not found; build it with: $how")
    else
        missing+=("  ${NAMES[$i]}: $bin not found or not executable; fix its path in SERVERS")
    fi
done
if ((${#missing[@]} > 0)); then
    note "missing server binaries:"
    printf '%s\n' "${missing[@]}" >&2
    note "or measure only some servers, e.g.:"
    note "  SERVERS='nio:$ROOT/.build-bench/release/nio-echo-server --port {port} --threads 1;c-epoll:$TOOLS/c-echo-epoll --port {port}' $0"
    exit 2
fi

# ------------------------------------------------------------------ processes

SERVER_PID=""
LOAD_PID=""
LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/bench-echo.XXXXXX")

# Whether anything listens on TCP port $1 (IPv4 or IPv6).
port_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p="$hex" 'FNR > 1 { split($2, a, ":"); if (a[2] == p && $4 == "0A") found = 1 }
                     END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

wait_port_free() {
    local deadline=$((SECONDS + PORT_FREE_TIMEOUT_S))
    while port_listening "$PORT"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

stop_server() {
    local pid=$SERVER_PID
    [[ -n $pid ]] || return 0
    SERVER_PID=""
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for ((i = 0; i < STOP_TIMEOUT_S * 20; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null; then
            note "server $pid ignored SIGTERM for ${STOP_TIMEOUT_S}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    if [[ -n $LOAD_PID ]]; then
        kill -TERM "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
    fi
    stop_server
    rm -rf "$LOGDIR"
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT
trap 'note "terminated"; exit 143' TERM

# Starts server $1 (index) pinned to SERVER_CPU; returns when its port accepts.
start_server() {
    local i=$1 log=$2 cmd rc
    cmd=${CMDS[$i]//\{port\}/$PORT}
    if port_listening "$PORT" && ! wait_port_free; then
        note "port $PORT is in use by another process; free it or set PORT"
        exit 2
    fi
    # exec: the PID is the server's own (bash -> taskset -> server, all by exec).
    bash -c "exec taskset -c $SERVER_CPU $cmd" </dev/null >"$log" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + START_TIMEOUT_S))
    until port_listening "$PORT"; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" 2>/dev/null && rc=0 || rc=$?
            SERVER_PID=""
            FAIL_REASON="exited with status $rc during startup: $(tail -n 3 "$log" | tr '\n' ' ')"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            FAIL_REASON="did not listen on port $PORT within ${START_TIMEOUT_S}s"
            stop_server
            return 1
        fi
        sleep 0.02
    done
}

# utime + stime of a process, in clock ticks.
cpu_ticks() {
    local stat rest
    read -r stat <"/proc/$1/stat" || return 1
    rest=${stat##*) } # the command name may hold spaces and parentheses
    local f
    read -r -a f <<<"$rest"
    # rest starts at field 3 (state); utime is field 14, stime field 15.
    echo $((f[11] + f[12]))
}

# Other processes' CPU time: "pid ticks comm" for every user-space process outside this
# script's process group (so not the servers, echo-load or this script), where ticks is
# utime + stime + cutime + cstime (children it reaped count too, so short-lived
# compiler jobs are seen through their parents). Kernel threads are left out: the
# softirq work of the benchmark's own loopback traffic can run in them.
MY_PGRP=$(awk '{ j = 0; for (k = length($0); k > 0; k--) if (substr($0, k, 1) == ")") { j = k; break }
                 split(substr($0, j + 2), f, " "); print f[3] }' /proc/$$/stat)
other_procs() {
    awk -v pg="$MY_PGRP" '{
        i = index($0, "("); j = 0
        for (k = length($0); k > 0; k--) if (substr($0, k, 1) == ")") { j = k; break }
        if (!i || !j) next
        split(substr($0, j + 2), f, " ") # f[1] = state (field 3), f[3] = pgrp, f[7] = flags
        if (f[3] == pg || int(f[7] / 2097152) % 2 == 1) next # our group; PF_KTHREAD
        print $1, f[12] + f[13] + f[14] + f[15], substr($0, i + 1, j - i - 1) }' /proc/[0-9]*/stat 2>/dev/null
}

# other_ticks BEFORE AFTER: CPU ticks other processes used between two other_procs snapshots
# (a process new in AFTER counts whole; one gone from AFTER was counted by its parent).
other_ticks() {
    awk 'NR == FNR { t[$1] = $2; next } { d = $2 - (($1 in t) ? t[$1] : 0); if (d > 0) sum += d } END { print sum + 0 }' \
        <(printf '%s\n' "$1") <(printf '%s\n' "$2")
}

# busiest BEFORE AFTER: the three other processes that used the most CPU in between,
# e.g. "swift-frontend 95%, swift-build 20%" (percent of one core per second).
busiest() {
    awk -v hz="$CLK_TCK" 'NR == FNR { t[$1] = $2; next }
        { d = $2 - (($1 in t) ? t[$1] : 0); if (d > 0) { $1 = ""; $2 = ""; sub(/^ +/, ""); printf "%d %s\n", d * 100 / hz, $0 } }' \
        <(printf '%s\n' "$1") <(printf '%s\n' "$2") |
        sort -rn | head -n 3 | awk '{ c = $1; $1 = ""; sub(/^ +/, ""); printf "%s%s %d%%", (NR > 1 ? ", " : ""), $0, c }'
}

# Waits (at most QUIET_WAIT s) until other processes use at most QUIET_MAX cores.
wait_quiet() {
    local deadline=$((SECONDS + QUIET_WAIT)) said=0 s0 s1 cores
    while :; do
        s0=$(other_procs)
        sleep 1
        s1=$(other_procs)
        cores=$(awk -v d="$(other_ticks "$s0" "$s1")" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d / hz }')
        awk -v c="$cores" -v m="$QUIET_MAX" 'BEGIN { exit !(c <= m) }' && return 0
        if ((SECONDS >= deadline)); then
            note "other processes still use $cores cores after ${QUIET_WAIT}s; measuring anyway (the run may be flagged)"
            return 1
        fi
        if ((!said)); then
            said=1
            note "waiting up to ${QUIET_WAIT}s for other processes to go idle ($cores cores busy; busiest: $(busiest "$s0" "$s1"))"
        fi
    done
}

# The first error lines of an echo-load output (its errors start "echo-load: "), on one line.
load_errors() {
    local e
    e=$(printf '%s\n' "$1" | grep '^echo-load: ' | head -n 3 | tr '\n' ' ' || true)
    [[ -n $e ]] || e=$(printf '%s\n' "$1" | tail -n 3 | tr '\n' ' ')
    printf '%s' "${e%"${e##*[![:space:]]}"}"
}

# run_load OUTFILE SECONDS ARGS...: echo-load pinned to LOAD_CPU, killed after SECONDS,
# output in OUTFILE; returns its status. In the background, so that a signal to this
# script interrupts the wait at once (the trap then stops the load and the server).
run_load() {
    local out=$1 budget=$2 rc=0
    shift 2
    taskset -c "$LOAD_CPU" timeout -k 5 "$budget" "$LOAD" -p "$PORT" "$@" >"$out" 2>&1 </dev/null &
    LOAD_PID=$!
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=""
    return "$rc"
}

# Quick correctness checks: one small echo, then two pipelined 16 KiB echoes.
check_server() {
    local out=$LOGDIR/check.out
    if ! run_load "$out" 60 -c 1 -s 64 -d 0.2 -w 0 || ! run_load "$out" 60 -c 2 -s 16384 -P 2 -d 0.2 -w 0; then
        FAIL_REASON="failed the echo check: $(load_errors "$(cat "$out")")"
        return 1
    fi
}

# ------------------------------------------------------------------ running

declare -A RES    # "scenario|server|round" -> RESULT line (with extra fields appended)
declare -A FAIL   # "scenario|server|round" -> reason
FAILURES=0

field() { # field KEY "RESULT k=v ..." -> v
    local kv
    for kv in $2; do
        [[ $kv == "$1="* ]] && { echo "${kv#*=}"; return 0; }
    done
    echo ""
}

now_s() { date +%s.%N; }

run_one() {
    local sc=$1 i=$2 r=$3 name=${NAMES[$2]} conns size pipe key log out rc
    IFS=x read -r conns size pipe <<<"$sc"
    pipe=${pipe:-1}
    key="$sc|$name|$r"
    log=$LOGDIR/$name-$sc-$r.log
    FAIL_REASON=""
    if ! start_server "$i" "$log"; then
        FAIL[$key]=$FAIL_REASON
        return 1
    fi
    if ! check_server; then
        FAIL[$key]=$FAIL_REASON
        stop_server
        return 1
    fi
    local before after t0 t1 budget others0 others1
    others0=$(other_procs)
    if ! before=$(cpu_ticks "$SERVER_PID"); then
        FAIL[$key]="server exited before the run: $(tail -n 3 "$log" | tr '\n' ' ')"
        stop_server
        return 1
    fi
    t0=$(now_s)
    budget=$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN { printf "%d", w + d + 150 }')
    run_load "$LOGDIR/load.out" "$budget" -c "$conns" -s "$size" -P "$pipe" -S "$SERVER_PID" \
        -t "$LOAD_THREADS" -d "$DURATION" -w "$WARMUP" && rc=0 || rc=$?
    t1=$(now_s)
    out=$(cat "$LOGDIR/load.out")
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        FAIL[$key]="server died during the run: $(tail -n 3 "$log" | tr '\n' ' ')"
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
        return 1
    fi
    others1=$(other_procs)
    if ! after=$(cpu_ticks "$SERVER_PID"); then
        FAIL[$key]="server exited at the end of the run: $(tail -n 3 "$log" | tr '\n' ' ')"
        stop_server
        return 1
    fi
    stop_server
    if ! wait_port_free; then
        note "port $PORT still in use ${PORT_FREE_TIMEOUT_S}s after stopping $name"
        exit 1
    fi
    local line
    line=$(printf '%s\n' "$out" | grep '^RESULT ' | tail -n 1 || true)
    if ((rc != 0)) || [[ -z $line ]]; then
        FAIL[$key]="echo-load exit $rc: $(load_errors "$out")"
        [[ -n $line ]] && RES[$key]=$line
        return 1
    fi
    # Server CPU per round trip over every round trip of the load run.
    local all ticks extra
    all=$(($(field roundtrips "$line") + $(field warmup_roundtrips "$line") + $(field drained_roundtrips "$line")))
    ticks=$((after - before))
    # Other processes' CPU during the load run, in cores.
    extra=$(awk -v t="$ticks" -v hz="$CLK_TCK" -v n="$all" -v t0="$t0" -v t1="$t1" \
        -v ot="$(other_ticks "$others0" "$others1")" -v max="$QUIET_MAX" 'BEGIN {
        us = t * 1e6 / hz
        other = ot / hz / (t1 - t0)
        printf "server_cpu_ticks=%d server_cpu_us=%.0f server_roundtrips=%d server_cpu_us_per_rt=%.3f load_run_wall_s=%.3f other_cpu=%.3f disturbed=%d",
            t, us, n, (n > 0 ? us / n : 0), t1 - t0, other, (other > max) }')
    RES[$key]="$line $extra"
}

total=$((${#SCEN[@]} * ROUNDS * ${#NAMES[@]}))
done_runs=0
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1) ]] || commit="$commit+changes"
note "$total runs: scenarios [${SCEN[*]}] x $ROUNDS round(s) x servers [${NAMES[*]}], ${DURATION}s + ${WARMUP}s warmup each"
note "server on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU ($LOAD_THREADS thread(s)), port $PORT"

for sc in "${SCEN[@]}"; do
    for ((r = 1; r <= ROUNDS; r++)); do
        for i in "${!NAMES[@]}"; do
            done_runs=$((done_runs + 1))
            key="$sc|${NAMES[$i]}|$r"
            ok=0
            for ((attempt = 0; ; attempt++)); do
                unset "FAIL[$key]" "RES[$key]"
                wait_quiet || true
                run_one "$sc" "$i" "$r" && ok=1 || ok=0
                ((ok)) && [[ $(field disturbed "${RES[$key]}") == 1 ]] && ((attempt < RETRIES)) || break
                note "[$done_runs/$total] $sc round $r ${NAMES[$i]}: disturbed (other processes used $(field other_cpu "${RES[$key]}") cores); repeating it"
            done
            if ((ok)); then
                l=${RES[$key]}
                flag=""
                [[ $(field disturbed "$l") != 1 ]] || flag=" [DISTURBED: other processes used $(field other_cpu "$l") cores]"
                note "[$done_runs/$total] $sc round $r ${NAMES[$i]}: $(field rate "$l") rt/s," \
                    "p99 $(field p99_us "$l") us, server $(field server_cpu_us_per_rt "$l") us CPU/rt" \
                    "(measured window: $(field srv_cpu_us_per_rt "$l"), util $(field srv_cpu_util "$l"))," \
                    "load CPU $(field load_cpu "$l"), others $(field other_cpu "$l")$flag"
            else
                FAILURES=$((FAILURES + 1))
                note "[$done_runs/$total] $sc round $r ${NAMES[$i]}: FAILED: ${FAIL[$key]}"
            fi
        done
    done
done

# ------------------------------------------------------------------ report

# stats v1 v2 ... -> "median min max" (empty input -> "")
stats() {
    (($# > 0)) || { echo ""; return; }
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.6f %.6f %.6f\n", m, v[1], v[NR] }'
}

# fmt KIND value: rate -> grouped integer, us -> 3 significant-ish digits, cpu -> 2 decimals
fmt() {
    awk -v k="$1" -v v="$2" 'function group(n,   s, r) {
            s = sprintf("%.0f", n); r = ""
            while (length(s) > 3) { r = "," substr(s, length(s) - 2) r; s = substr(s, 1, length(s) - 3) }
            return s r }
        BEGIN {
            if (k == "rate") print group(v)
            else if (k == "us") { if (v >= 100) print group(v); else if (v >= 10) printf "%.1f\n", v; else printf "%.2f\n", v }
            else if (k == "cpu") { if (v >= 100) printf "%.0f\n", v; else if (v >= 10) printf "%.1f\n", v; else printf "%.2f\n", v }
            else printf "%.2f\n", v }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×\n", a / b; else print "—" }'; }

declare -A MED  # "scenario|server|metric" -> median
report() {
    local sc conns size pipe i name metric vals r l s med lo hi
    printf 'Echo benchmark, %s, commit %s; Linux %s, %d CPUs (%s); server on CPU %s, load generator (echo-load, %s thread(s)) on CPU %s.\n' \
        "$started" "$commit" "$(uname -r)" "$(nproc)" "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
        "$SERVER_CPU" "$LOAD_THREADS" "$LOAD_CPU"
    printf '%s s measured after %s s warmup per run; %d round(s) per server, interleaved; medians, min–max in brackets.\n' \
        "$DURATION" "$WARMUP" "$ROUNDS"
    printf 'Server CPU µs/rt: utime+stime of the server process from just before to just after the load run ÷ every round trip echoed in it (warmup and drain included).\n'
    printf 'Server util, load CPU: CPU seconds per second of the measured interval (1.00 = one core busy), median.\n'
    printf 'Runs during which other processes used more than %s cores were repeated (up to %d times).\n\n' "$QUIET_MAX" "$RETRIES"
    for sc in "${SCEN[@]}"; do
        IFS=x read -r conns size pipe <<<"$sc"
        printf '### %s connection%s × %s B%s\n\n' "$conns" "$( ((conns == 1)) || echo s)" "$size" \
            "$( [[ -z $pipe || $pipe == 1 ]] || echo ", pipeline $pipe")"
        printf '| server | round trips/s | p99 µs | server CPU µs/rt | server util | load CPU |\n'
        printf '|---|---:|---:|---:|---:|---:|\n'
        for i in "${!NAMES[@]}"; do
            name=${NAMES[$i]}
            local cells=()
            local nfail=0 ndist=0
            for ((r = 1; r <= ROUNDS; r++)); do
                [[ $(field disturbed "${RES["$sc|$name|$r"]:-}") != 1 ]] || ndist=$((ndist + 1))
            done
            for metric in rate p99_us server_cpu_us_per_rt srv_cpu_util load_cpu; do
                vals=()
                for ((r = 1; r <= ROUNDS; r++)); do
                    if [[ -n ${FAIL["$sc|$name|$r"]+x} ]]; then
                        [[ $metric == rate ]] && nfail=$((nfail + 1))
                        continue
                    fi
                    l=${RES["$sc|$name|$r"]:-}
                    [[ -n $l ]] && vals+=("$(field "$metric" "$l")")
                done
                s=$(stats "${vals[@]}")
                if [[ -z $s ]]; then
                    cells+=("—")
                    continue
                fi
                read -r med lo hi <<<"$s"
                MED["$sc|$name|$metric"]=$med
                case $metric in
                rate) cells+=("$(fmt rate "$med") ($(fmt rate "$lo")–$(fmt rate "$hi"))") ;;
                p99_us) cells+=("$(fmt us "$med") ($(fmt us "$lo")–$(fmt us "$hi"))") ;;
                server_cpu_us_per_rt) cells+=("$(fmt cpu "$med") ($(fmt cpu "$lo")–$(fmt cpu "$hi"))") ;;
                *) cells+=("$(fmt x "$med")") ;;
                esac
            done
            local label=$name
            ((nfail == 0)) || label="$label (**$nfail of $ROUNDS run(s) FAILED**)"
            ((ndist == 0)) || label="$label (**$ndist of $ROUNDS run(s) disturbed by other processes**)"
            printf '| %s | %s | %s | %s | %s | %s |\n' "$label" "${cells[@]}"
        done
        if ((${#NAMES[@]} > 1)); then
            printf '\n| ratio of medians | round trips/s | p99 latency | server CPU/rt |\n|---|---:|---:|---:|\n'
            local a b
            for ((a = 0; a < ${#NAMES[@]}; a++)); do
                for ((b = a + 1; b < ${#NAMES[@]}; b++)); do
                    local na=${NAMES[$a]} nb=${NAMES[$b]} cols=()
                    for metric in rate p99_us server_cpu_us_per_rt; do
                        local va=${MED["$sc|$na|$metric"]:-} vb=${MED["$sc|$nb|$metric"]:-}
                        if [[ -n $va && -n $vb ]]; then cols+=("$(ratio "$va" "$vb")"); else cols+=("—"); fi
                    done
                    printf '| %s / %s | %s | %s | %s |\n' "$na" "$nb" "${cols[@]}"
                done
            done
        fi
        printf '\n'
    done
    if ((FAILURES > 0)); then
        printf '**%d run(s) failed:**\n\n' "$FAILURES"
        local k
        for k in "${!FAIL[@]}"; do printf -- '- %s: %s\n' "$k" "${FAIL[$k]}"; done | sort
        printf '\n'
    fi
}

json_str() { # JSON string literal
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\t'/\\t}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/}
    printf '"%s"' "$s"
}

write_json() {
    local first=1 sc i r key l kv k v
    mkdir -p "$(dirname "$JSON_OUT")"
    {
        printf '{\n  "benchmark": "echo",\n  "started": %s,\n  "commit": %s,\n  "kernel": %s,\n  "cpus": %d,\n  "cpu_model": %s,\n' \
            "$(json_str "$started")" "$(json_str "$commit")" "$(json_str "$(uname -r)")" "$(nproc)" \
            "$(json_str "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)")"
        printf '  "quiet_max_cores": %s,\n  "retries": %d,\n' "$QUIET_MAX" "$RETRIES"
        printf '  "server_cpu": %d,\n  "load_cpu": %d,\n  "load_threads": %d,\n  "rounds": %d,\n  "duration_s": %s,\n  "warmup_s": %s,\n  "clk_tck": %d,\n' \
            "$SERVER_CPU" "$LOAD_CPU" "$LOAD_THREADS" "$ROUNDS" "$DURATION" "$WARMUP" "$CLK_TCK"
        printf '  "servers": ['
        for i in "${!NAMES[@]}"; do
            ((i == 0)) || printf ','
            printf '\n    {"name": %s, "command": %s}' "$(json_str "${NAMES[$i]}")" "$(json_str "${CMDS[$i]}")"
        done
        printf '\n  ],\n  "runs": ['
        for sc in "${SCEN[@]}"; do
            for ((r = 1; r <= ROUNDS; r++)); do
                for i in "${!NAMES[@]}"; do
                    key="$sc|${NAMES[$i]}|$r"
                    ((first)) || printf ','
                    first=0
                    printf '\n    {"scenario": %s, "server": %s, "round": %d' "$(json_str "$sc")" "$(json_str "${NAMES[$i]}")" "$r"
                    if [[ -n ${FAIL[$key]+x} ]]; then
                        printf ', "ok": false, "error": %s' "$(json_str "${FAIL[$key]}")"
                    else
                        printf ', "ok": true'
                    fi
                    l=${RES[$key]:-}
                    for kv in $l; do
                        [[ $kv == *=* ]] || continue
                        k=${kv%%=*}
                        v=${kv#*=}
                        if [[ $v =~ ^-?[0-9]+(\.[0-9]+)?$ ]]; then printf ', "%s": %s' "$k" "$v"; else printf ', "%s": %s' "$k" "$(json_str "$v")"; fi
                    done
                    printf '}'
                done
            done
        done
        printf '\n  ]\n}\n'
    } >"$JSON_OUT.tmp"
    mv "$JSON_OUT.tmp" "$JSON_OUT"
}

REPORT=$(report)
printf '%s\n' "$REPORT"
mkdir -p "$(dirname "$MD_OUT")"
printf '%s\n' "$REPORT" >"$MD_OUT"
write_json
if command -v jq >/dev/null && ! jq empty "$JSON_OUT" 2>/dev/null; then
    note "warning: $JSON_OUT is not valid JSON"
fi
note "tables: $MD_OUT; raw results: $JSON_OUT"
((FAILURES == 0)) || { note "$FAILURES run(s) failed"; exit 1; }
