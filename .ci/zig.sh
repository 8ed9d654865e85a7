#!/usr/bin/env bash
# Prints the path of a zig compiler, installing ziglang from PyPI into .build-tools/
# on first use. Used only to cross-check the transcribed Darwin/FreeBSD tables.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.15.2
dir=.build-tools/zig-$version
if [ ! -x "$dir/ziglang/zig" ]; then
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --target "$dir" "ziglang==$version" >&2
fi
echo "$(pwd)/$dir/ziglang/zig"
