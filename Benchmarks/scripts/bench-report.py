#!/usr/bin/env python3
"""bench-report.py: tables, raw JSON, SVG charts and docs for bench-http.sh / bench-resp.sh / bench-tls.sh.

Reads the raw results the scripts write (one JSON object per line: a "meta" line, then one
"run" line per server run) and

  * prints one Markdown table per scenario (medians over the rounds with min-max, and a
    matrix of ratios of medians to each peer) on stdout and into --md,
  * writes every raw result into --json (one object: meta and runs),
  * with --docs and --svg-dir: writes one SVG bar chart per scenario
    (SVG_DIR/BENCH-SCENARIO.svg) and replaces the text between
    <!-- bench-BENCH:begin --> and <!-- bench-BENCH:end --> in the docs file with the
    tables and the charts (hand-written text around the markers stays as it is).

With --bench tls (bench-tls.sh) the tables are the TLS ones (markdown_tls: a summary,
one table per scenario, mbedtls-mem's in-memory handshake cost), there are no charts, and
--docs alone updates the docs file. Its raw results hold, besides "meta" and "run" lines, a
"meta-extra" line (merged into meta) and "lib" lines (mbedtls-mem, one per round).

Standard library only (no plotting package).
"""

import argparse
import html
import json
import os
import re
import statistics
import sys

HTTP_TITLES = {
    "keepalive": "Keep-alive, 64 connections (wrk -t1 -c64)",
    "pipelined": "Pipelined ×16, 64 connections (wrk -t1 -c64, wrk-pipeline.lua)",
    "latency": "1 connection (wrk -t1 -c1): latency",
    "c1000": "1,000 connections (wrk -t1 -c1000)",
    "idle": "Idle keep-alive connections: memory per connection",
}


def title(bench, sc, meta):
    if bench == "http":
        t = HTTP_TITLES.get(sc, sc)
        if sc == "idle":
            t += " (%s connections)" % "{:,}".format(meta.get("idle_conns", 10000))
        return t
    m = re.fullmatch(r"(.+)-p(\d+)", sc)
    if m:
        return "%s, %s connections, pipeline %s (redis-benchmark -t %s -c %s -P %s)" % (
            m.group(1).upper(), meta.get("clients", 50), m.group(2), m.group(1), meta.get("clients", 50), m.group(2))
    if sc == "idle":
        return "Idle connections: memory per connection (%s connections)" % "{:,}".format(meta.get("idle_conns", 10000))
    return sc


def group(n):
    return "{:,.0f}".format(n)


def fmt_rate(v):
    return group(v)


def fmt_us(v):
    if v >= 100:
        return group(v)
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def fmt_cpu(v):
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def fmt_mib(kb):
    return "%.1f" % (kb / 1024.0)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return "%.2f×" % (a / b)


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def load(raw):
    meta, runs = None, []
    with open(raw) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            obj = json.loads(line)
            if obj.get("type") == "meta":
                meta = obj
            elif obj.get("type") == "meta-extra" and meta is not None:
                meta.update({k: v for k, v in obj.items() if k != "type"})
            else:
                runs.append(obj)
    if meta is None:
        sys.exit("bench-report: %s has no meta line" % raw)
    return meta, runs


HTTP_METRICS = ("rate", "p50_us", "p99_us", "cpu_us_per_req", "server_util", "hwm_kb",
                "bytes_per_conn", "rss_before_kb", "rss_after_kb", "bytes_per_resp")
PERCENTILES = ("p50_us", "p99_us", "hs_p50_us", "hs_p99_us")


def summarize(meta, runs, metrics=HTTP_METRICS):
    """{scenario: {server: {metric: (median, min, max)}, plus 'fail', 'disturbed', 'n'}}"""
    out = {}
    for sc in meta["scenarios"]:
        out[sc] = {}
        for s in meta["servers"]:
            name = s["name"]
            rs = [r for r in runs if r["scenario"] == sc and r["server"] == name]
            ok = [r for r in rs if r.get("ok")]
            entry = {"n": len(rs), "fail": len(rs) - len(ok),
                     "disturbed": sum(1 for r in ok if r.get("disturbed") == 1),
                     "errors": sum(r.get("errors", 0) or 0 for r in ok),
                     "fail_reasons": [r.get("error", "") for r in rs if not r.get("ok")]}
            for metric in metrics:
                vals = [r.get(metric) for r in ok]
                if metric in PERCENTILES:
                    # A percentile of 0 is no measurement (wrk 4.1's own walk returns 0 when it
                    # misses; the Lua scripts walk the histogram themselves): show no figure.
                    vals = [v if v and v > 0 else None for v in vals]
                entry[metric] = stats(vals)
            out[sc][name] = entry
    return out


def med(entry, metric):
    s = entry.get(metric)
    return s[0] if s else None


def cell(entry, metric, f):
    s = entry.get(metric)
    if not s:
        return "—"
    m, lo, hi = s
    if lo == hi:
        return f(m)
    return "%s (%s–%s)" % (f(m), f(lo), f(hi))


def label(name, e, rounds):
    lab = name
    if e["fail"]:
        lab += " (**%d of %d run(s) FAILED**)" % (e["fail"], e["n"])
    if e["disturbed"]:
        lab += " (**%d run(s) disturbed by other processes**)" % e["disturbed"]
    if e["errors"]:
        lab += " (**%s wrk/load errors**)" % group(e["errors"])
    return lab


def markdown(bench, meta, summary, svg_rel=None):
    lines = []
    names = [s["name"] for s in meta["servers"]]
    bench_title = {"http": "HTTP benchmark", "resp": "RESP benchmark"}.get(bench, bench)
    load_tool = "wrk %s -t1" % meta.get("wrk", "") if bench == "http" else "redis-benchmark %s" % meta.get("redis_benchmark", "")
    lines.append("%s, %s, commit %s. Machine: %d × %s, Linux %s, glibc %s, %s GB; %s; nginx %s, redis %s, wrk %s." % (
        bench_title, meta["started"], meta["commit"], meta["cpus"], meta["cpu_model"], meta["kernel"], meta["glibc"],
        meta["mem_gb"], meta["swift"], meta["nginx"].replace("nginx/", ""), meta["redis"], meta["wrk"]))
    lines.append("")
    lines.append("Server on CPU %d, load (%s) on CPU %d; %d round(s) per server, interleaved; %s s measured after %s s warmup; "
                 "medians, min–max in brackets. Server CPU µs/req: utime+stime of the server's processes over the measured "
                 "run ÷ its requests. Util: server CPU seconds per second (1.00 = its core is saturated). Peak RSS: VmHWM. "
                 "Runs during which other processes used more than %s cores were repeated (up to %d times)." % (
                     meta["server_cpu"], load_tool.strip(), meta["load_cpu"], meta["rounds"], meta["duration_s"],
                     meta["warmup_s"], meta["quiet_max_cores"], meta["retries"]))
    lines.append("")
    for a in meta.get("absent", []):
        lines.append("- Row absent: %s." % a)
    if meta.get("absent"):
        lines.append("")
    for sc in meta["scenarios"]:
        rows = summary[sc]
        lines.append("#### %s" % title(bench, sc, meta))
        lines.append("")
        if svg_rel:
            lines.append("![%s](%s/%s-%s.svg)" % (title(bench, sc, meta), svg_rel, bench, sc))
            lines.append("")
        if sc == "idle":
            lines.append("| server | RSS before MiB | RSS after MiB | bytes per idle connection |")
            lines.append("|---|---:|---:|---:|")
            for n in names:
                e = rows[n]
                lines.append("| %s | %s | %s | %s |" % (label(n, e, meta["rounds"]), cell(e, "rss_before_kb", fmt_mib),
                                                    cell(e, "rss_after_kb", fmt_mib), cell(e, "bytes_per_conn", group)))
            metrics = [("bytes_per_conn", "bytes/conn")]
        else:
            lines.append("| server | req/s | p50 µs | p99 µs | server CPU µs/req | util | peak RSS MiB |")
            lines.append("|---|---:|---:|---:|---:|---:|---:|")
            for n in names:
                e = rows[n]
                u = med(e, "server_util")
                h = e.get("hwm_kb")
                lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                    label(n, e, meta["rounds"]), cell(e, "rate", fmt_rate), cell(e, "p50_us", fmt_us),
                    cell(e, "p99_us", fmt_us), cell(e, "cpu_us_per_req", fmt_cpu),
                    "%.2f" % u if u is not None else "—", fmt_mib(h[2]) if h else "—"))
            metrics = [("rate", "req/s"), ("p99_us", "p99"), ("cpu_us_per_req", "CPU/req")]
        if len(names) > 1:
            lines.append("")
            lines.append("| ratio of medians, row ÷ column (%s) | %s |" % (" · ".join(m[1] for m in metrics), " | ".join(names)))
            lines.append("|---|%s" % ("---:|" * len(names)))
            for a in names:
                cells = []
                for b in names:
                    if a == b:
                        cells.append("—")
                    else:
                        cells.append(" · ".join(ratio(med(rows[a], m), med(rows[b], m)) for m, _ in metrics))
                lines.append("| %s | %s |" % (a, " | ".join(cells)))
        fails = [(n, r) for n in names for r in rows[n]["fail_reasons"]]
        if fails:
            lines.append("")
            for n, r in fails:
                lines.append("- %s failed: %s" % (n, r))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


TLS_METRICS = HTTP_METRICS + (
    "cpu_us_per_hs", "load_cpu", "handshakes", "resumed", "full", "client_cpu_us_per_hs",
    "hs_rate", "hs_p50_us", "hs_p99_us", "hs_server_util", "bg_rate", "bg_errors", "p99_ratio",
    "mb_server_us", "overhead")
LIB_METRICS = ("full_server_us", "full_client_us", "resumed_server_us", "resumed_client_us", "setup_server_us",
               "full_bytes_s2c", "full_bytes_c2s", "resumed_bytes_s2c", "resumed_bytes_c2s")


def ratio_matrix(lines, names, rows, metrics):
    """A matrix of ratios of medians, row ÷ column, one cell per pair (metrics: [(key, label)])."""
    if len(names) < 2:
        return
    lines.append("")
    lines.append("| ratio of medians, row ÷ column (%s) | %s |" % (" · ".join(m[1] for m in metrics), " | ".join(names)))
    lines.append("|---|%s" % ("---:|" * len(names)))
    for a in names:
        cells = []
        for b in names:
            cells.append("—" if a == b else " · ".join(ratio(med(rows[a], m), med(rows[b], m)) for m, _ in metrics))
        lines.append("| %s | %s |" % (a, " | ".join(cells)))


def fail_lines(lines, names, rows):
    fails = [(n, r) for n in names for r in rows[n]["fail_reasons"]]
    if fails:
        lines.append("")
        for n, r in fails:
            lines.append("- %s failed: %s" % (n, r))


def markdown_tls(meta, runs):
    """The TLS tables (bench-tls.sh): summary, one table per scenario, mbedtls-mem."""
    server_runs = [r for r in runs if r.get("type", "run") == "run"]
    lib_runs = [r for r in runs if r.get("type") == "lib" and r.get("ok")]
    lib_fail = [r for r in runs if r.get("type") == "lib" and not r.get("ok")]
    summary = summarize(meta, server_runs, TLS_METRICS)
    lib = {m: stats([r.get(m) for r in lib_runs]) for m in LIB_METRICS}
    names = [s["name"] for s in meta["servers"]]
    scen = meta["scenarios"]
    empty = {"n": 0, "fail": 0, "disturbed": 0, "errors": 0, "fail_reasons": []}

    def row(sc, n):
        return summary[sc][n] if sc in summary else empty

    lines = []
    lines.append("TLS benchmark, %s, commit %s. Machine: %d × %s, Linux %s, glibc %s, %s GB; %s; nginx %s with OpenSSL %s, "
                 "swift-nio-ssl %s (BoringSSL), mbedTLS %s; wrk %s." % (
                     meta["started"], meta["commit"], meta["cpus"], meta["cpu_model"], meta["kernel"], meta["glibc"],
                     meta["mem_gb"], meta["swift"], meta["nginx"].replace("nginx/", ""), meta.get("openssl", "?"),
                     meta.get("swift_nio_ssl", "?"), meta.get("mbedtls", "?"), meta["wrk"]))
    lines.append("")
    lines.append("TLS 1.2 only, ECDHE-ECDSA-AES128-GCM-SHA256, group P-256, one P-256 ECDSA certificate (generated per run), "
                 "session tickets on, for every server. Server on CPU %d, load (wrk, tls-handshakes, tls-idle-conns; OpenSSL "
                 "%s clients) on CPU %d; %d round(s) per server, interleaved; %s s measured after %s s warmup; medians, "
                 "min–max in brackets. Server CPU: utime+stime of the server's processes over the measured run ÷ its "
                 "requests or handshakes. Util: server CPU seconds per second (1.00 = its core is saturated); load CPU: the "
                 "same for the handshake load generator (near 1.00 = the client, not the server, was the limit). Runs during "
                 "which other processes used more than %s cores were repeated (up to %d times)." % (
                     meta["server_cpu"], meta.get("openssl", "?"), meta["load_cpu"], meta["rounds"], meta["duration_s"],
                     meta["warmup_s"], meta["quiet_max_cores"], meta["retries"]))
    lines.append("")
    for a in meta.get("absent", []):
        lines.append("- Row absent: %s." % a)
    if meta.get("absent"):
        lines.append("")

    # Summary: one row per server, the medians of every scenario.
    lines.append("#### Summary")
    lines.append("")
    lines.append("| server | keep-alive req/s | full handshakes/s | server CPU µs per full handshake | runtime overhead "
                 "(÷ mbedtls-mem server side) | resumed handshakes/s | server CPU µs per resumed handshake | "
                 "p99 with ÷ without %s handshakes/s | bytes per idle TLS connection |" % group(meta.get("hs_rate", 200)))
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in names:
        k, f, r, la, i = (row(sc, n) for sc in ("keepalive", "full", "resumed", "latency", "idle"))
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            n, cell(k, "rate", fmt_rate), cell(f, "rate", fmt_rate), cell(f, "cpu_us_per_hs", fmt_cpu),
            cell(f, "overhead", lambda v: "%.2f×" % v), cell(r, "rate", fmt_rate), cell(r, "cpu_us_per_hs", fmt_cpu),
            cell(la, "p99_ratio", lambda v: "%.2f×" % v), cell(i, "bytes_per_conn", group)))
    lines.append("")
    lines.append("Runtime overhead: the server's CPU per full handshake over TCP ÷ the server side of an mbedTLS 2.28 "
                 "handshake in memory (mbedtls-mem, run on the server's CPU right after each full-handshake run, so the "
                 "pair sees the same machine; median of the rounds' ratios): what the server spends beyond the TLS "
                 "library (sockets, kernel, event loop, HTTP). Issue 9's target is at most 1.15× for strata-serve, which "
                 "terminates TLS with mbedTLS; nginx (OpenSSL) and nio-ssl (BoringSSL) use other libraries, so their ratio "
                 "also holds the difference between the libraries.")
    lines.append("")

    if "keepalive" in scen:
        rows = summary["keepalive"]
        lines.append("#### Keep-alive HTTPS, 64 connections (wrk -t1 -c64)")
        lines.append("")
        lines.append("| server | req/s | p50 µs | p99 µs | server CPU µs/req | util | peak RSS MiB |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for n in names:
            e = rows[n]
            u = med(e, "server_util")
            h = e.get("hwm_kb")
            lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                label(n, e, meta["rounds"]), cell(e, "rate", fmt_rate), cell(e, "p50_us", fmt_us), cell(e, "p99_us", fmt_us),
                cell(e, "cpu_us_per_req", fmt_cpu), "%.2f" % u if u is not None else "—", fmt_mib(h[2]) if h else "—"))
        ratio_matrix(lines, names, rows, [("rate", "req/s"), ("cpu_us_per_req", "CPU/req")])
        fail_lines(lines, names, rows)
        groups = []
        for n in names:
            got = sorted({r.get("open_group") for r in server_runs if r.get("scenario") == "keepalive"
                          and r.get("server") == n and r.get("ok") and r.get("open_group") not in (None, "prime256v1")})
            if got:
                groups.append("- %s: wrk's 64 initial handshakes (its OpenSSL offers X25519 first) got the group %s, "
                              "not P-256; the handshake scenarios offer P-256 only." % (n, ", ".join(map(str, got))))
        if groups:
            lines.append("")
            lines.extend(groups)
        lines.append("")

    for sc, ttl, base_name in (
            ("full", "Full handshakes (tls-handshakes, %s in flight; no session offered)", "full"),
            ("resumed", "Resumed handshakes (tls-handshakes --resume, %s in flight; the first connection's session ticket)",
             "resumed")):
        if sc not in scen:
            continue
        rows = summary[sc]
        lines.append("#### " + ttl % meta.get("hs_conns", 32))
        lines.append("")
        lines.append("| server | handshakes/s | resumed / all | server CPU µs per handshake | util | load CPU | "
                     "handshake p50 µs | p99 µs | mbedtls-mem server side µs (%s, paired) | ratio |" % base_name)
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in names:
            e = rows[n]
            ok = [r for r in server_runs if r.get("scenario") == sc and r.get("server") == n and r.get("ok")]
            tot = sum(r.get("handshakes", 0) or 0 for r in ok)
            res = sum(r.get("resumed", 0) or 0 for r in ok)
            u, lc = med(e, "server_util"), med(e, "load_cpu")
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label(n, e, meta["rounds"]), cell(e, "rate", fmt_rate),
                "%s / %s" % (group(res), group(tot)) if ok else "—", cell(e, "cpu_us_per_hs", fmt_cpu),
                "%.2f" % u if u is not None else "—", "%.2f" % lc if lc is not None else "—",
                cell(e, "p50_us", fmt_us), cell(e, "p99_us", fmt_us), cell(e, "mb_server_us", fmt_cpu),
                cell(e, "overhead", lambda v: "%.2f×" % v)))
        ratio_matrix(lines, names, rows, [("rate", "handshakes/s"), ("cpu_us_per_hs", "CPU/handshake")])
        fail_lines(lines, names, rows)
        lines.append("")

    if "latency" in scen:
        rows = summary["latency"]
        lines.append("#### Latency of keep-alive requests with and without %s full handshakes/s "
                     "(wrk -t1 -c64 --latency, wrk-paced.lua: %s ms between a response and the next request)" % (
                         group(meta.get("hs_rate", 200)), meta.get("lat_delay_ms", 10)))
        lines.append("")
        lines.append("| server | req/s | p50 µs | p99 µs | handshakes/s behind | req/s | p50 µs | p99 µs | "
                     "p99 with ÷ without | util without → with |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in names:
            e = rows[n]
            u0, u1 = med(e, "server_util"), med(e, "hs_server_util")
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                label(n, e, meta["rounds"]), cell(e, "rate", fmt_rate), cell(e, "p50_us", fmt_us), cell(e, "p99_us", fmt_us),
                cell(e, "bg_rate", fmt_rate), cell(e, "hs_rate", fmt_rate), cell(e, "hs_p50_us", fmt_us),
                cell(e, "hs_p99_us", fmt_us), cell(e, "p99_ratio", lambda v: "%.2f×" % v),
                "%.2f → %.2f" % (u0, u1) if u0 is not None and u1 is not None else "—"))
        lines.append("")
        lines.append("p99 with ÷ without: per round (both halves run on the same server process, one after the other), "
                     "median of the rounds.")
        bg_err = [(n, sum(r.get("bg_errors", 0) or 0 for r in server_runs
                          if r.get("scenario") == "latency" and r.get("server") == n and r.get("ok"))) for n in names]
        for n, k in bg_err:
            if k:
                lines.append("- %s: **%s background handshakes failed**." % (n, group(k)))
        ratio_matrix(lines, names, rows, [("p99_us", "p99"), ("hs_p99_us", "p99 with handshakes")])
        fail_lines(lines, names, rows)
        lines.append("")

    if "idle" in scen:
        rows = summary["idle"]
        lines.append("#### Idle TLS keep-alive connections: memory per connection (%s connections, tls-idle-conns)" %
                     "{:,}".format(meta.get("idle_conns", 2000)))
        lines.append("")
        lines.append("| server | RSS before MiB | RSS after MiB | bytes per idle TLS connection |")
        lines.append("|---|---:|---:|---:|")
        for n in names:
            e = rows[n]
            lines.append("| %s | %s | %s | %s |" % (label(n, e, meta["rounds"]), cell(e, "rss_before_kb", fmt_mib),
                                                cell(e, "rss_after_kb", fmt_mib), cell(e, "bytes_per_conn", group)))
        ratio_matrix(lines, names, rows, [("bytes_per_conn", "bytes/conn")])
        fail_lines(lines, names, rows)
        lines.append("")

    lines.append("#### mbedTLS 2.28 handshake in memory (mbedtls-mem; no sockets; %s full and %s resumed handshakes per "
                 "round, CPU %d)" % (group(meta.get("mbedtls_full", 200)), group(meta.get("mbedtls_resumed", 2000)),
                                     meta["server_cpu"]))
    lines.append("")
    lines.append("| handshake | server CPU µs | client CPU µs | bytes server → client | bytes client → server |")
    lines.append("|---|---:|---:|---:|---:|")
    res_ok = sum(r.get("resumed_ok", 0) or 0 for r in lib_runs)
    res_n = sum(r.get("resumed_n", 0) or 0 for r in lib_runs)
    lines.append("| full | %s | %s | %s | %s |" % (cell(lib, "full_server_us", fmt_cpu), cell(lib, "full_client_us", fmt_cpu),
                                                 cell(lib, "full_bytes_s2c", group), cell(lib, "full_bytes_c2s", group)))
    lines.append("| resumed (session ticket; %s of %s resumed) | %s | %s | %s | %s |" % (
        group(res_ok), group(res_n), cell(lib, "resumed_server_us", fmt_cpu), cell(lib, "resumed_client_us", fmt_cpu),
        cell(lib, "resumed_bytes_s2c", group), cell(lib, "resumed_bytes_c2s", group)))
    lines.append("")
    lines.append("Each side's CPU is CLOCK_THREAD_CPUTIME_ID around its own mbedtls_ssl_handshake_step calls; the client "
                 "verifies the certificate chain and name. Server context set-up and free (mbedtls_ssl_setup, "
                 "mbedtls_ssl_free), timed apart: %s µs." % cell(lib, "setup_server_us", fmt_cpu))
    for r in lib_fail:
        lines.append("- mbedtls-mem round %s failed: %s" % (r.get("round"), r.get("error", "")))
    lines.append("")
    return "\n".join(lines).rstrip() + "\n"


COLORS = ["#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b7791f", "#c53030", "#319795", "#4a5568"]


def svg_chart(bench, sc, meta, rows, names):
    """A horizontal bar chart of the median (req/s, or bytes per idle connection) with min-max whiskers."""
    metric, unit = ("bytes_per_conn", "bytes per idle connection (lower is better)") if sc == "idle" else (
        "rate", "requests per second, median of rounds, min–max whiskers (higher is better)")
    data = []
    for i, n in enumerate(names):
        s = rows[n].get(metric)
        data.append((n, s, COLORS[i % len(COLORS)]))
    top_value = max([s[2] for _, s, _ in data if s] + [1])
    step = nice_step(top_value / 5)
    ticks = int(-(-top_value // step))  # ceil
    vmax = step * ticks
    left, right, top, bar, gap = 190, 110, 58, 26, 12
    width = 760
    plot = width - left - right
    height = top + len(data) * (bar + gap) + 34
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
           'font-family="Helvetica, Arial, sans-serif" font-size="13">' % (width, height, width, height),
           '<rect width="100%" height="100%" fill="#ffffff"/>',
           '<text x="10" y="22" font-size="15" font-weight="bold">%s</text>' % html.escape(title(bench, sc, meta)),
           '<text x="10" y="42" fill="#4a5568">%s; %s, %s</text>' % (html.escape(unit), html.escape(meta["started"][:10]),
                                                                      html.escape(meta["commit"]))]
    for k in range(ticks + 1):
        v = step * k
        x = left + plot * k / ticks
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e2e8f0"/>' % (x, top - 6, x, height - 28))
        out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#718096" font-size="11">%s</text>' % (
            x, height - 12, html.escape(short(v))))
    for i, (n, s, color) in enumerate(data):
        y = top + i * (bar + gap)
        out.append('<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>' % (
            left - 8, y + bar / 2, html.escape(n)))
        if not s:
            out.append('<text x="%d" y="%.1f" dominant-baseline="middle" fill="#c53030">no result</text>' % (left + 4, y + bar / 2))
            continue
        m, lo, hi = s
        w = plot * m / vmax
        out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>' % (left, y, w, bar, color))
        if hi > lo:
            x0, x1 = left + plot * lo / vmax, left + plot * hi / vmax
            cy = y + bar / 2
            out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#1a202c" stroke-width="1.5"/>' % (x0, cy, x1, cy))
            out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#1a202c" stroke-width="1.5"/>' % (x0, y + 6, x0, y + bar - 6))
            out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#1a202c" stroke-width="1.5"/>' % (x1, y + 6, x1, y + bar - 6))
        out.append('<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>' % (
            left + max(w, plot * hi / vmax) + 6, y + bar / 2, html.escape(group(m))))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def nice_step(raw):
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above raw (axis ticks at round numbers)."""
    k = 10 ** int(len(str(int(max(raw, 1)))) - 1)
    for m in (1, 2, 2.5, 5, 10):
        if m * k >= raw:
            return m * k
    return 10 * k


def short(v):
    if v >= 1e6:
        return ("%.2f" % (v / 1e6)).rstrip("0").rstrip(".") + "M"
    if v >= 1e3:
        return ("%.1f" % (v / 1e3)).rstrip("0").rstrip(".") + "k"
    return ("%.1f" % v).rstrip("0").rstrip(".")


def update_docs(path, bench, block):
    """Replaces the lines from "<!-- bench-BENCH:begin -->" to "<!-- bench-BENCH:end -->" (each
    alone on its line; mentions of them inside prose are left alone), or appends them."""
    begin, end = "<!-- bench-%s:begin -->" % bench, "<!-- bench-%s:end -->" % bench
    text = open(path).read() if os.path.exists(path) else ""
    note = "<!-- Generated by Benchmarks/scripts/bench-%s.sh (bench-report.py); edit the text outside the markers. -->\n" % bench
    new = "%s\n%s\n%s%s\n" % (begin, note, block, end)
    m = re.search(r"^%s[ \t]*\n.*?^%s[ \t]*(\n|\Z)" % (re.escape(begin), re.escape(end)), text, re.M | re.S)
    if m:
        text = text[:m.start()] + new + text[m.end():]
    else:
        text = text.rstrip("\n") + "\n\n" + new
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_outputs(a, meta, runs, md):
    """The tables on stdout and into --md; every raw result into --json."""
    sys.stdout.write(md)
    os.makedirs(os.path.dirname(os.path.abspath(a.md)), exist_ok=True)
    with open(a.md, "w") as f:
        f.write(md)
    with open(a.json + ".tmp", "w") as f:
        json.dump({"meta": meta, "runs": runs}, f, indent=1)
        f.write("\n")
    os.replace(a.json + ".tmp", a.json)
    print("bench-%s: tables: %s; raw results: %s" % (a.bench, a.md, a.json), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", required=True)
    ap.add_argument("--docs")
    ap.add_argument("--svg-dir")
    a = ap.parse_args()
    meta, runs = load(a.raw)
    if a.bench == "tls":
        md = markdown_tls(meta, runs)
        write_outputs(a, meta, runs, md)
        if a.docs:
            update_docs(a.docs, a.bench, md)
            print("bench-tls: updated %s" % a.docs, file=sys.stderr)
        else:
            print("bench-tls: docs/benchmarks.md not updated (UPDATE_DOCS=1 to update it; the default when ROUNDS >= 3)",
                  file=sys.stderr)
        return
    summary = summarize(meta, runs)
    names = [s["name"] for s in meta["servers"]]
    md = markdown(a.bench, meta, summary)
    write_outputs(a, meta, runs, md)
    if a.docs and a.svg_dir:
        os.makedirs(a.svg_dir, exist_ok=True)
        for sc in meta["scenarios"]:
            p = os.path.join(a.svg_dir, "%s-%s.svg" % (a.bench, sc))
            with open(p, "w") as f:
                f.write(svg_chart(a.bench, sc, meta, summary[sc], names))
        rel = os.path.relpath(os.path.abspath(a.svg_dir), os.path.dirname(os.path.abspath(a.docs)))
        update_docs(a.docs, a.bench, markdown(a.bench, meta, summary, svg_rel=rel))
        print("bench-%s: updated %s and %s/%s-*.svg" % (a.bench, a.docs, a.svg_dir, a.bench), file=sys.stderr)
    else:
        print("bench-%s: docs/benchmarks.md not updated (UPDATE_DOCS=1 to update it; the default when ROUNDS >= 3)" % a.bench,
              file=sys.stderr)


if __name__ == "__main__":
    main()
