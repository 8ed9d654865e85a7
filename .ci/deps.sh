#!/usr/bin/env bash
# Installs the Debian packages a task needs, only those missing (apt-get update first).
# Usage: .ci/deps.sh run|test|abi-tools|bench
set -euo pipefail

run_pkgs=(liburing-dev libmbedtls-dev gcc)
test_pkgs=("${run_pkgs[@]}" musl-tools gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf redis-tools curl python3 python3-h11 python3-httpx python3-cryptography openssl gnutls-bin)
abi_pkgs=("${test_pkgs[@]}" gcc-riscv64-linux-gnu gcc-i686-linux-gnu gcc-powerpc64le-linux-gnu gcc-s390x-linux-gnu)
bench_pkgs=("${run_pkgs[@]}" wrk nginx-light redis-server redis-tools curl python3 openssl libssl-dev)

case "${1:-}" in
  run) want=("${run_pkgs[@]}") ;;
  test) want=("${test_pkgs[@]}") ;;
  abi-tools) want=("${abi_pkgs[@]}") ;;
  bench) want=("${bench_pkgs[@]}") ;;
  *) echo "usage: $0 run|test|abi-tools|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "error: missing Debian packages (${missing[*]}) and not root; install them: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
