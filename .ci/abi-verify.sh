#!/usr/bin/env bash
# Compiles each Linux target's generated assertion header with that target's compiler
# (-fsyntax-only): a table that disagrees with the target's real headers fails here.
# It also checks that abi/host.h selects that target's header under that compiler.
# Usage: .ci/abi-verify.sh [target ...]   (default: every Linux target)
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
)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(linux-gnu-x86_64 linux-gnu-aarch64 linux-gnu-armv7 linux-gnu-riscv64 linux-gnu-i686 linux-gnu-ppc64le linux-gnu-s390x linux-musl-x86_64)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# musl-gcc sees only musl's headers: give it the kernel UAPI headers alone.
mkdir -p "$work/kernel"
ln -s /usr/include/linux "$work/kernel/linux"
ln -s /usr/include/asm-generic "$work/kernel/asm-generic"
ln -s /usr/include/x86_64-linux-gnu/asm "$work/kernel/asm"

fail=0
for t in "${targets[@]}"; do
  compiler=${cc[$t]:-}
  if [ -z "$compiler" ]; then echo "abi-verify: unknown target $t" >&2; exit 2; fi
  if ! command -v "$compiler" >/dev/null; then
    echo "abi-verify: $compiler not found for $t — run \`make abi-tools\`" >&2; fail=1; continue
  fi
  extra=()
  [ "$t" = linux-musl-x86_64 ] && extra=(-isystem "$work/kernel")
  if ! out=$("$compiler" "${extra[@]}" -std=gnu11 -D_GNU_SOURCE -fsyntax-only -x c "Modules/CStrataSys/abi/$t.h" 2>&1); then
    echo "FAIL $t ($compiler):"; echo "$out"; fail=1; continue
  fi
  selected=$("$compiler" "${extra[@]}" -std=gnu11 -D_GNU_SOURCE -dM -E -x c Modules/CStrataSys/abi/host.h 2>&1 | sed -n 's/^#define STRATA_ABI_TARGET "\(.*\)"$/\1/p')
  if [ "$selected" != "$t" ]; then
    echo "FAIL $t: abi/host.h selected '${selected:-nothing}' under $compiler"; fail=1; continue
  fi
  n=$(grep -c '_Static_assert' "Modules/CStrataSys/abi/$t.h")
  echo "ok   $t: $n static assertions hold under $compiler; host.h selects it"
done
exit $fail
