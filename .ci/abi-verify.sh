#!/usr/bin/env bash
# Compiles each target's generated assertion header with that target's compiler: a
# table that disagrees with the target's real headers fails here. It also checks
# that abi/host.h selects that target's header under that compiler.
#
# Linux targets use Debian's cross compilers and musl-gcc (`make abi-tools`).
# Darwin and FreeBSD tables are transcribed; they are cross-checked with zig cc,
# whose bundled libc headers include the macOS SDK's and FreeBSD's (zig comes from
# PyPI, installed into .build-tools/ by .ci/zig.sh). That is a check against
# published headers, not a host, so those tables stay marked "unverified".
#
# Usage: .ci/abi-verify.sh [target ...]   (default: every target)
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A cc=(
  [linux-gnu-x86_64]=gcc
  [linux-gnu-aarch64]=aarch64-linux-gnu-gcc
  [linux-gnu-armv7]=arm-linux-gnueabihf-gcc
  [linux-gnu-riscv64]=riscv64-linux-gnu-gcc
  [linux-gnu-i686]=i686-linux-gnu-gcc
  [linux-gnu-ppc64le]=powerpc64le-linux-gnu-gcc
  [linux-gnu-s390x]=s390x-linux-gnu-gcc
  [linux-musl-x86_64]=musl-gcc
  [darwin-arm64]=zig:aarch64-macos
  [darwin-x86_64]=zig:x86_64-macos
  [freebsd-x86_64]=zig:x86_64-freebsd.14.2-none
)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(linux-gnu-x86_64 linux-gnu-aarch64 linux-gnu-armv7 linux-gnu-riscv64
  linux-gnu-i686 linux-gnu-ppc64le linux-gnu-s390x linux-musl-x86_64 darwin-arm64 darwin-x86_64 freebsd-x86_64)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# musl-gcc sees only musl's headers: give it the kernel UAPI headers alone.
mkdir -p "$work/kernel"
ln -s /usr/include/linux "$work/kernel/linux"
ln -s /usr/include/asm-generic "$work/kernel/asm-generic"
ln -s /usr/include/x86_64-linux-gnu/asm "$work/kernel/asm"

fail=0
for t in "${targets[@]}"; do
  spec=${cc[$t]:-}
  if [ -z "$spec" ]; then echo "abi-verify: unknown target $t" >&2; exit 2; fi
  header="Modules/CStrataSys/abi/$t.h"
  if [[ $spec == zig:* ]]; then
    driver=("$(.ci/zig.sh)" cc -target "${spec#zig:}")
    # -S rather than -fsyntax-only (zig's driver then wants target libc files), into the
    # scratch directory: given -o /dev/null, zig writes <name>.s into the current directory.
    check=(-S -o "$work/$t.s")
  else
    if ! command -v "$spec" >/dev/null; then
      echo "FAIL $t: $spec not found — run \`make abi-tools\`"; fail=1; continue
    fi
    driver=("$spec")
    [ "$t" = linux-musl-x86_64 ] && driver+=(-isystem "$work/kernel")
    check=(-fsyntax-only)
  fi
  if ! out=$("${driver[@]}" -std=gnu11 -D_GNU_SOURCE "${check[@]}" -x c "$header" 2>&1); then
    echo "FAIL $t ($spec):"; grep -E "error" <<<"$out" | head -20; fail=1; continue
  fi
  selected=$("${driver[@]}" -std=gnu11 -D_GNU_SOURCE -dM -E -x c Modules/CStrataSys/abi/host.h 2>/dev/null |
    sed -n 's/^#define STRATA_ABI_TARGET "\(.*\)"$/\1/p')
  if [ "$selected" != "$t" ]; then
    echo "FAIL $t: abi/host.h selected '${selected:-nothing}' under $spec"; fail=1; continue
  fi
  echo "ok   $t: $(grep -c '_Static_assert' "$header") static assertions hold under $spec; host.h selects it"
done
exit $fail
