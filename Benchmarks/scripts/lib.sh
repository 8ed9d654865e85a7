# shellcheck shell=bash
# shellcheck disable=SC2015  # "check && check || die" is meant: die when either check fails.
# lib.sh: shell functions shared by the side-by-side server benchmarks (bench-http.sh,
# bench-resp.sh). Taken from bench-echo.sh's approach: servers pinned with taskset and
# started fresh per run, the PID is the server's own (exec), CPU time from
# /proc/PID/stat, waiting for a quiet machine and repeating disturbed runs.
#
# The sourcing script sets LIB_TAG (prefix of messages) and, before calling the
# process functions, PORT, SERVER_CPU, LOAD_CPU, NOFILE, QUIET_MAX, QUIET_WAIT.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=$ROOT/.build-bench-tools
LIB_TAG=${LIB_TAG:-bench}

START_TIMEOUT_S=${START_TIMEOUT_S:-30}   # a server must accept connections this soon after it starts
STOP_TIMEOUT_S=${STOP_TIMEOUT_S:-5}      # SIGTERM, then SIGKILL after this long
PORT_FREE_TIMEOUT_S=${PORT_FREE_TIMEOUT_S:-10}

die() { printf '%s: %s\n' "$LIB_TAG" "$*" >&2; exit 2; }
note() { printf '%s: %s\n' "$LIB_TAG" "$*" >&2; }
# say: a line on stdout too (things the reader of the tables must see, e.g. absent rows).
say() { printf '%s: %s\n' "$LIB_TAG" "$*"; }

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

# Common settings checks; sets CLK_TCK and raises this shell's open-file limit to NOFILE
# (the load generators inherit it; servers get it in start_server).
check_common() {
    check_uint ROUNDS 1 100
    check_seconds DURATION 1
    check_seconds WARMUP 0
    check_uint PORT 1 65535
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
    local hard
    hard=$(ulimit -Hn)
    if [[ $hard != unlimited ]] && ((NOFILE > hard)); then
        note "NOFILE=$NOFILE is above the hard open-file limit $hard; using $hard"
        NOFILE=$hard
    fi
    ulimit -n "$NOFILE" || die "cannot raise the open-file limit to $NOFILE"
}

# ------------------------------------------------------------------ binaries

# build_c_tool OUT SRC: builds a C tool when it is missing or older than its source.
build_c_tool() {
    local out=$1 src=$2
    if [[ ! -x $out || $src -nt $out ]]; then
        mkdir -p "$TOOLS"
        note "building $(basename "$out"): ${CC:-cc} -O2 -Wall -Wextra -o $out $src"
        "${CC:-cc}" -O2 -Wall -Wextra -o "$out" "$src" || die "building $out failed"
    fi
}

# main_has_product NAME: whether the main package (ROOT/Package.swift) declares an
# executable product NAME. Read from the manifest text, so that checking never runs
# SwiftPM in the main package's build directory.
main_has_product() {
    grep -Eq "\.executable\([[:space:]]*name:[[:space:]]*\"$1\"" "$ROOT/Package.swift"
}

# ------------------------------------------------------------------ processes

SERVER_PID=""
LOAD_PID=""

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

# start_server COMMAND LOG: starts COMMAND ({port} already replaced) pinned to SERVER_CPU,
# with the open-file limit NOFILE; returns when its port accepts. Sets SERVER_PID (the
# server's own PID: bash -> taskset -> server, all by exec) or FAIL_REASON.
start_server() {
    local cmd=$1 log=$2 rc
    if port_listening "$PORT" && ! wait_port_free; then
        note "port $PORT is in use by another process; free it or set PORT"
        exit 2
    fi
    bash -c "ulimit -n $NOFILE && exec taskset -c $SERVER_CPU $cmd" </dev/null >"$log" 2>&1 &
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

# tree_pids PID: PID and all its descendants (nginx: the master and its worker), comma-separated.
tree_pids() {
    awk -v root="$1" '{
        j = 0; for (k = length($0); k > 0; k--) if (substr($0, k, 1) == ")") { j = k; break }
        split(substr($0, j + 2), f, " "); parent[$1] = f[2] }
        END { out = root; n = 1; list[1] = root; changed = 1
              while (changed) { changed = 0
                  for (p in parent) if (!(p in seen) && (parent[p] in inlist || parent[p] == root)) {
                      seen[p] = 1; inlist[p] = 1; out = out "," p; changed = 1 } }
              print out }' /proc/[0-9]*/stat 2>/dev/null
}

# cpu_ticks PIDS: utime + stime of the processes (comma-separated), in clock ticks.
cpu_ticks() {
    local pid total=0 stat rest f
    for pid in ${1//,/ }; do
        read -r stat <"/proc/$pid/stat" || return 1
        rest=${stat##*) } # the command name may hold spaces and parentheses
        read -r -a f <<<"$rest"
        # rest starts at field 3 (state); utime is field 14, stime field 15.
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

# vm_kb FIELD PIDS: a /proc/PID/status field (VmHWM, VmRSS) in kB, summed over the processes.
vm_kb() {
    local pid total=0 v
    for pid in ${2//,/ }; do
        v=$(awk -v k="$1:" '$1 == k { print $2; exit }' "/proc/$pid/status" 2>/dev/null) || return 1
        [[ -n $v ]] || return 1
        total=$((total + v))
    done
    echo "$total"
}

# Other processes' CPU time: "pid ticks comm" for every user-space process outside this
# script's process group (so not the servers, the load generator or this script), where
# ticks is utime + stime + cutime + cstime (children it reaped count too, so short-lived
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

# busiest BEFORE AFTER: the three other processes that used the most CPU in between.
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

# run_load OUTFILE SECONDS COMMAND...: a load generator pinned to LOAD_CPU, killed after
# SECONDS, output in OUTFILE; returns its status. In the background, so that a signal to
# the script interrupts the wait at once (the trap then stops the load and the server).
run_load() {
    local out=$1 budget=$2 rc=0
    shift 2
    taskset -c "$LOAD_CPU" timeout -k 5 "$budget" "$@" >"$out" 2>&1 </dev/null &
    LOAD_PID=$!
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=""
    return "$rc"
}

lib_cleanup() {
    if [[ -n $LOAD_PID ]]; then
        kill -TERM "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
    fi
    stop_server
}

# field KEY "k=v k=v ...": the value of KEY ("" when absent).
field() {
    local kv
    for kv in $2; do
        [[ $kv == "$1="* ]] && { echo "${kv#*=}"; return 0; }
    done
    echo ""
}

now_s() { date +%s.%N; }

json_str() { # JSON string literal
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\t'/\\t}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/}
    printf '"%s"' "$s"
}

# kv_json "k=v k=v ...": the pairs as JSON object members (numbers unquoted), ", k": v ...
kv_json() {
    local kv k v
    for kv in $1; do
        [[ $kv == *=* ]] || continue
        k=${kv%%=*}
        v=${kv#*=}
        if [[ $v =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; then printf ', "%s": %s' "$k" "$v"; else printf ', "%s": %s' "$k" "$(json_str "$v")"; fi
    done
}

# The machine and tool versions, as JSON object members (for the raw results' meta line).
machine_json() {
    local swiftv nginxv redisv wrkv rbv
    swiftv=$(swift --version 2>/dev/null | grep -m1 -o 'Swift version [^ ]*' || echo unknown)
    nginxv=$(nginx -v 2>&1 | sed -n 's/^nginx version: //p' || true)
    redisv=$(redis-server --version 2>/dev/null | awk '{ print $3 }' | sed 's/^v=//' || true)
    wrkv=$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }' || true)
    rbv=$(redis-benchmark --version 2>/dev/null | awk '{ print $2 }' || true)
    printf '"kernel": %s, "cpus": %d, "cpu_model": %s, "mem_gb": %s, "glibc": %s, "swift": %s, "nginx": %s, "redis": %s, "redis_benchmark": %s, "wrk": %s, "curl": %s' \
        "$(json_str "$(uname -r)")" "$(nproc)" "$(json_str "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)")" \
        "$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)" \
        "$(json_str "$(ldd --version 2>/dev/null | awk 'NR == 1 { print $NF }')")" "$(json_str "$swiftv")" \
        "$(json_str "${nginxv:-absent}")" "$(json_str "${redisv:-absent}")" "$(json_str "${rbv:-absent}")" \
        "$(json_str "${wrkv:-absent}")" "$(json_str "$(curl --version 2>/dev/null | awk 'NR == 1 { print $2 }')")"
}

# Commit of the tree, "+changes" when it has uncommitted changes.
tree_commit() {
    local c
    c=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    [[ -z $(git -C "$ROOT" status --porcelain 2>/dev/null | head -n 1) ]] || c="$c+changes"
    echo "$c"
}

# ------------------------------------------------------------------ servers and runs

# parse_servers TEXT: "name|command" entries, one per line (or ';'-separated); fills NAMES
# and CMDS. "{port}", "{root}" and "{scratch}" in a command are replaced when it starts.
# An entry whose program is a product of the main package ({root}/.build/release/NAME)
# that the main package does not declare yet is left out, and said so on stdout (ABSENT).
parse_servers() {
    local entry name cmd n prog
    NAMES=()
    CMDS=()
    ABSENT=()
    while IFS= read -r entry; do
        entry=${entry#"${entry%%[![:space:]]*}"}
        entry=${entry%"${entry##*[![:space:]]}"}
        [[ -n $entry && $entry != \#* ]] || continue
        [[ $entry == *"|"* ]] || die "bad SERVERS entry '$entry' (want name|command)"
        name=${entry%%|*}
        cmd=${entry#*|}
        name=${name%"${name##*[![:space:]]}"}
        [[ $name =~ ^[A-Za-z0-9._\ ()+,-]+$ ]] || die "bad server name '$name' (letters, digits, space . _ - ( ) + , only)"
        [[ $cmd == *"{port}"* ]] || die "the command of '$name' must contain {port}: $cmd"
        for n in "${NAMES[@]}"; do [[ $n != "$name" ]] || die "server name '$name' appears twice in SERVERS"; done
        read -r prog _ <<<"${cmd//\{root\}/$ROOT}"
        if [[ $prog == "$ROOT/.build/release/"* ]] && ! main_has_product "${prog##*/}"; then
            ABSENT+=("$name: the main package has no product ${prog##*/} yet")
            continue
        fi
        NAMES+=("$name")
        CMDS+=("$cmd")
    done < <(printf '%s\n' "$SERVERS" | tr ';' '\n')
    local a
    for a in "${ABSENT[@]}"; do say "row absent: $a (added automatically once it exists)"; done
    ((${#NAMES[@]} > 0)) || die "SERVERS is empty"
}

# check_binaries: every server's program exists (HOW_TO_BUILD NAME prints how to build it).
check_binaries() {
    local i prog missing=()
    for i in "${!NAMES[@]}"; do
        read -r prog _ <<<"$(expand_cmd "${CMDS[$i]}")"
        if [[ $prog == */* ]]; then [[ -x $prog ]] && continue; else command -v "$prog" >/dev/null && continue; fi
        missing+=("  ${NAMES[$i]}: $prog not found; $(how_to_build "$prog")")
    done
    if ((${#missing[@]} > 0)); then
        note "missing server programs:"
        printf '%s\n' "${missing[@]}" >&2
        exit 2
    fi
}

how_to_build() {
    case $1 in
    "$ROOT/.build/release/"*) echo "build it with: (cd $ROOT && swift build -c release --product ${1##*/})" ;;
    "$ROOT/.build-bench/release/"*) echo "build it with: (cd $ROOT/Benchmarks && swift build -c release --scratch-path ../.build-bench --product ${1##*/})" ;;
    nginx) echo "install it: .ci/deps.sh bench (Debian package nginx-light)" ;;
    redis-server) echo "install it: .ci/deps.sh bench (Debian package redis-server)" ;;
    *) echo "fix its path in SERVERS" ;;
    esac
}

expand_cmd() {
    local c=$1
    c=${c//\{port\}/$PORT}
    c=${c//\{root\}/$ROOT}
    c=${c//\{scratch\}/$SCRATCH}
    printf '%s' "$c"
}

# run_matrix: for every scenario, round and server (rounds interleaved: A B C A B C) waits
# for a quiet machine, calls run_one SCENARIO INDEX ROUND (the script's; it sets RES_LINE,
# "k=v ..." including other_cpu and disturbed, or FAIL_REASON and returns 1), repeats a
# disturbed run up to RETRIES times, prints progress (progress_text RES_LINE, the
# script's) and appends one JSON line per run to RAW.
run_matrix() {
    local total=$((${#SCEN[@]} * ROUNDS * ${#NAMES[@]})) done_runs=0 sc r i key ok attempt flag
    FAILURES=0
    for sc in "${SCEN[@]}"; do
        for ((r = 1; r <= ROUNDS; r++)); do
            for i in "${!NAMES[@]}"; do
                done_runs=$((done_runs + 1))
                for ((attempt = 0; ; attempt++)); do
                    RES_LINE="" FAIL_REASON=""
                    wait_quiet || true
                    run_one "$sc" "$i" "$r" && ok=1 || ok=0
                    ((ok)) && [[ $(field disturbed "$RES_LINE") == 1 ]] && ((attempt < RETRIES)) || break
                    note "[$done_runs/$total] $sc round $r ${NAMES[$i]}: disturbed (other processes used $(field other_cpu "$RES_LINE") cores); repeating it"
                done
                {
                    printf '{"type": "run", "scenario": %s, "server": %s, "round": %d, "ok": %s' \
                        "$(json_str "$sc")" "$(json_str "${NAMES[$i]}")" "$r" "$( ((ok)) && echo true || echo false)"
                    ((ok)) || printf ', "error": %s' "$(json_str "$FAIL_REASON")"
                    kv_json "$RES_LINE"
                    printf '}\n'
                } >>"$RAW"
                if ((ok)); then
                    flag=""
                    [[ $(field disturbed "$RES_LINE") != 1 ]] || flag=" [DISTURBED: other processes used $(field other_cpu "$RES_LINE") cores]"
                    note "[$done_runs/$total] $sc round $r ${NAMES[$i]}: $(progress_text "$RES_LINE"), others $(field other_cpu "$RES_LINE")$flag"
                else
                    FAILURES=$((FAILURES + 1))
                    note "[$done_runs/$total] $sc round $r ${NAMES[$i]}: FAILED: $FAIL_REASON"
                fi
            done
        done
    done
}

# measure_begin / measure_end: server CPU ticks and other processes' CPU around a measured
# window; measure_end prints "server_cpu_ticks=... wall_s=... other_cpu=... disturbed=..."
# and the server's peak RSS (VmHWM, summed over its processes) "hwm_kb=...".
measure_begin() {
    M_PIDS=$(tree_pids "$SERVER_PID")
    M_OTHERS0=$(other_procs)
    M_TICKS0=$(cpu_ticks "$M_PIDS") || return 1
    M_T0=$(now_s)
}
measure_end() {
    local ticks1 others1 t1 hwm
    t1=$(now_s)
    ticks1=$(cpu_ticks "$M_PIDS") || return 1
    others1=$(other_procs)
    hwm=$(vm_kb VmHWM "$M_PIDS") || hwm=0
    awk -v t="$((ticks1 - M_TICKS0))" -v hz="$CLK_TCK" -v t0="$M_T0" -v t1="$t1" -v hwm="$hwm" \
        -v ot="$(other_ticks "$M_OTHERS0" "$others1")" -v max="$QUIET_MAX" -v np="$(tr ',' '\n' <<<"$M_PIDS" | wc -l)" 'BEGIN {
        other = ot / hz / (t1 - t0)
        printf "server_cpu_ticks=%d server_cpu_s=%.3f wall_s=%.3f server_util=%.3f hwm_kb=%d server_procs=%d other_cpu=%.3f disturbed=%d",
            t, t / hz, t1 - t0, t / hz / (t1 - t0), hwm, np, other, (other > max) }'
}

# write_meta BENCH: the first line of RAW: settings, machine and servers.
write_meta() {
    local i
    mkdir -p "$(dirname "$RAW")"
    {
        printf '{"type": "meta", "benchmark": %s, "started": %s, "commit": %s, ' "$(json_str "$1")" \
            "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" "$(json_str "$(tree_commit)")"
        machine_json
        printf ', "server_cpu": %d, "load_cpu": %d, "rounds": %d, "duration_s": %s, "warmup_s": %s, "clk_tck": %d, "nofile": %d, "quiet_max_cores": %s, "retries": %d, "idle_conns": %d, "clients": %d' \
            "$SERVER_CPU" "$LOAD_CPU" "$ROUNDS" "$DURATION" "$WARMUP" "$CLK_TCK" "$NOFILE" "$QUIET_MAX" "$RETRIES" "${IDLE_CONNS:-0}" "${CLIENTS:-0}"
        printf ', "scenarios": ['
        for i in "${!SCEN[@]}"; do ((i == 0)) || printf ', '; json_str "${SCEN[$i]}"; done
        printf '], "servers": ['
        for i in "${!NAMES[@]}"; do
            ((i == 0)) || printf ', '
            printf '{"name": %s, "command": %s}' "$(json_str "${NAMES[$i]}")" "$(json_str "$(expand_cmd "${CMDS[$i]}")")"
        done
        printf '], "absent": ['
        for i in "${!ABSENT[@]}"; do ((i == 0)) || printf ', '; json_str "${ABSENT[$i]}"; done
        printf ']}\n'
    } >"$RAW"
}

# report BENCH: tables on stdout and in MD_OUT, the JSON of every run in JSON_OUT, SVG
# charts and docs/benchmarks.md between its markers (UPDATE_DOCS=1).
report() {
    local args=(--bench "$1" --raw "$RAW" --json "$JSON_OUT" --md "$MD_OUT")
    if [[ $UPDATE_DOCS == 1 ]]; then
        args+=(--docs "$ROOT/docs/benchmarks.md" --svg-dir "$ROOT/docs/benchmarks")
    fi
    python3 "$ROOT/Benchmarks/scripts/bench-report.py" "${args[@]}"
}
