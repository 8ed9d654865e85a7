#!/usr/bin/env bash
# Builds the libFuzzer target for the StrataHTTP request parser into
# .build-fuzz/ and runs it for a bounded time (default 60 s), its corpus
# seeded from Tests/HTTPTests/Corpus/*.json.
#
#   Fuzz/run-http-parser.sh [SECONDS] [extra libFuzzer flags...]
#
# Exit status: 0 when the run ends without findings; libFuzzer's status
# otherwise (the crashing input is left in .build-fuzz/http-parser/artifacts/).
set -euo pipefail

seconds="${1:-60}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/.build-fuzz/http-parser"
mkdir -p "$out/corpus" "$out/seeds" "$out/artifacts"

export SWIFT_BACKTRACE=enable=no

echo "== building $out/fuzz-http-parser"
(cd "$out" && swiftc -sanitize=fuzzer,address -parse-as-library -O -wmo -g \
    -module-name StrataHTTPFuzz \
    "$root"/Modules/HTTP/Sources/Parser/*.swift \
    "$root"/Fuzz/HTTPParserFuzz/main.swift \
    -o "$out/fuzz-http-parser") 2>&1 |  # in $out: swiftc leaves .swiftmodule/.swiftdoc files in its working directory
    { grep -v "Cannot export local symbol '__asan" || true; }   # gold's noise about ASan's local symbols

echo "== extracting seeds from Tests/HTTPTests/Corpus"
# Each corpus case's "input" (a JSON string whose code points are bytes) becomes
# one seed file; a second copy with the first byte's low bit set exercises the
# small-limits mode of the target.
python3 - "$root/Tests/HTTPTests/Corpus" "$out/seeds" <<'EOF'
import json, os, sys, hashlib
src, dst = sys.argv[1], sys.argv[2]
n = 0
for name in sorted(os.listdir(src)):
    if not name.endswith(".json"):
        continue
    with open(os.path.join(src, name)) as fh:
        for case in json.load(fh)["cases"]:
            data = bytes(ord(c) & 0xFF for c in case["input"])
            for variant in (data, bytes([data[0] ^ 1]) + data[1:] if data else b""):
                path = os.path.join(dst, hashlib.sha1(variant).hexdigest())
                with open(path, "wb") as out:
                    out.write(variant)
                n += 1
print(f"{n} seed files")
EOF

echo "== fuzzing for ${seconds}s"
cd "$out"
./fuzz-http-parser corpus seeds \
    -max_total_time="$seconds" \
    -max_len=16384 \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -artifact_prefix="$out/artifacts/" \
    -print_final_stats=1 \
    "$@"
