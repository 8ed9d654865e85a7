#!/usr/bin/env bash
# Proves that a wrong table fails the real package build: in a scratch copy of the
# repository, change one constant (O_NONBLOCK → Darwin's 4) and one struct size
# (pthread_mutex_t → Darwin's 64) of the host table, regenerate the derived files,
# and require `swift build --target CStrataSys` to fail naming both entries.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
abi=${STRATA_ABI:-$root/.build/debug/strata-abi}
[ -x "$abi" ] || swift build --product strata-abi >/dev/null
host=$("$abi" audit --no-headers --json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target"])')

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
git ls-files -z --cached --others --exclude-standard | (cd "$root" && xargs -0 cp --parents -t "$scratch")
python3 - "$scratch/abi-tables/$host.json" <<'PY'
import json, sys
p = sys.argv[1]
t = json.load(open(p))
t["constants"]["O_NONBLOCK"] = 4
t["types"]["pthread_mutex_t"]["size"] = 64
json.dump(t, open(p, "w"), indent=2, sort_keys=True, separators=(",", " : "))
open(p, "a").write("\n")
PY
"$abi" generate --render-only --root "$scratch" >/dev/null
cd "$scratch"
if out=$(swift build --target CStrataSys 2>&1); then
  echo "FAIL: the build succeeded with a wrong $host table"; exit 1
fi
for needle in "O_NONBLOCK = 4 disagrees with the headers" "sizeof(pthread_mutex_t) = 64 disagrees with the headers"; do
  if ! grep -qF "$needle" <<<"$out"; then
    echo "FAIL: the build failed, but not naming '$needle':"; echo "$out" | tail -20; exit 1
  fi
done
echo "ok   abi-mutation: a wrong $host table (O_NONBLOCK = 4, sizeof(pthread_mutex_t) = 64) fails swift build:"
grep -F "disagrees with the headers" <<<"$out" | sed 's/^/     /' | sort -u | head -4
