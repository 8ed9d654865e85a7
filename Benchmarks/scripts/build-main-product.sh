#!/usr/bin/env bash
# build-main-product.sh NAME: builds the main package's executable product NAME in release
# (swift build -c release --product NAME, as `make bench-echo` builds strata-echo) when
# the main package declares it; otherwise says that its benchmark rows are left out.
# Exit status 0 in both cases; the build's status when the build fails.
set -euo pipefail
LIB_TAG=bench
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($# == 1)) || die "usage: $0 PRODUCT"
if main_has_product "$1"; then
    cd "$ROOT" && exec "${SWIFT:-swift}" build -c release --product "$1"
fi
say "$1 is not a product of the main package yet: its rows are left out of the tables"
