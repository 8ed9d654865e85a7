#!/usr/bin/env bash
# Builds the libFuzzer target for a StrataTLS server TLSSession into
# .build-fuzz/tls-session/ and runs it for a bounded time (default 60 s), its
# corpus seeded with real flights captured from in-memory handshakes.
#
#   Fuzz/run-tls-session.sh [SECONDS] [extra libFuzzer flags...]
#
# mbedTLS: the fuzzer is only guided by the code it can see, and Debian's
# libmbedtls is not instrumented. So the script fetches the Debian source of the
# installed libmbedtls-dev version (apt-get source, with the machine's own apt
# sources turned into deb-src in a private list: nothing system-wide changes),
# checks that its headers are the installed ones, and compiles the library with
# coverage and AddressSanitizer (the big-number, curve, cipher and hash code
# without, for speed) into .build-fuzz/tls-session/mbedtls-<version>/, once.
# When that is not possible, or with STRATA_FUZZ_MBEDTLS=system, it links the
# system's shared libraries instead and says so (coverage then stops at the
# Swift code).
#
# Needs: swiftc and clang (the Swift toolchain), the openssl CLI, libmbedtls-dev and
# liburing-dev (what `make test` installs).
#
# Exit status: 0 when the run ends without findings; libFuzzer's status
# otherwise (the crashing input is left in .build-fuzz/tls-session/artifacts/).
set -euo pipefail

seconds="${1:-60}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/.build-fuzz/tls-session"
deps="$out/deps"
pki="$out/pki"
mkdir -p "$out/corpus" "$out/seeds" "$out/artifacts" "$deps" "$pki"

export SWIFT_BACKTRACE=enable=no

for tool in swiftc clang openssl; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is missing (make fuzz installs what the fuzzers need)"; exit 2; }
done

# --- mbedTLS, instrumented --------------------------------------------------------------
# Files compiled without instrumentation: arithmetic and symmetric crypto, where coverage says
# nothing about input handling and ASan costs the most.
plain_files=" bignum ecp ecp_curves ecdsa rsa rsa_internal dhm aes aesni aria camellia des gcm ccm chacha20 poly1305 chachapoly sha1 sha256 sha512 md5 ripemd160 ctr_drbg hmac_drbg entropy entropy_poll havege "
mbedtls_link=(-lmbedtls -lmbedx509 -lmbedcrypto)
mbedtls_kind="system shared libraries (not instrumented)"
build_mbedtls() {
    local version lib work
    version=$(dpkg-query -W -f='${Version}' libmbedtls-dev 2>/dev/null) || { echo "libmbedtls-dev is not installed"; return 1; }
    lib="$out/mbedtls-$version/libmbedtls-fuzz.a"
    if [ -f "$lib" ]; then
        mbedtls_link=("$lib")
        mbedtls_kind="Debian $version source, instrumented ($lib)"
        return 0
    fi
    echo "== fetching the Debian source of mbedtls $version"
    work="$out/mbedtls-$version/work"
    rm -rf "$work" && mkdir -p "$work/lists/partial" "$work/sources.list.d" "$work/download"
    # The machine's own apt sources, as deb-src, in a private list.
    if [ -f /etc/apt/sources.list ]; then
        sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > "$work/sources.list"
    else
        : > "$work/sources.list"
    fi
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && sed 's/^Types:.*$/Types: deb-src/' "$f" > "$work/sources.list.d/$(basename "$f")"
    done
    for f in /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] && sed -n 's/^deb \(.*\)$/deb-src \1/p' "$f" > "$work/sources.list.d/$(basename "$f")"
    done
    local apt=(apt-get -q -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts="$work/sources.list.d"
               -o Dir::State::Lists="$work/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
               -o APT::Sandbox::User=root)
    "${apt[@]}" update > "$work/apt.log" 2>&1 || { tail -3 "$work/apt.log"; return 1; }
    (cd "$work/download" && "${apt[@]}" source --download-only "mbedtls=$version") >> "$work/apt.log" 2>&1 || { tail -3 "$work/apt.log"; return 1; }
    local tarballs=("$work"/download/mbedtls_*.orig.tar.*)
    [ -f "${tarballs[0]}" ] || { echo "no orig tarball in $work/download"; return 1; }
    mkdir -p "$work/src" && tar -xf "${tarballs[0]}" -C "$work/src" --strip-components=1
    # The installed headers must be this source's (Debian changes only config.h): the library
    # is compiled against the installed ones, which Swift imports.
    local h
    for h in "$work"/src/include/mbedtls/*.h; do
        [ "$(basename "$h")" = config.h ] && continue
        cmp -s "$h" "/usr/include/mbedtls/$(basename "$h")" || { echo "$(basename "$h") differs from the installed header"; return 1; }
    done
    echo "== compiling mbedtls $version with coverage and AddressSanitizer"
    mkdir -p "$work/obj"
    export plain_files work
    # shellcheck disable=SC2016  # expanded by the inner shell
    find "$work/src/library" -maxdepth 1 -name '*.c' -print0 | xargs -0 -n1 -P"$(nproc)" sh -c '
        name=$(basename "$1" .c)
        case "$plain_files" in
            *" $name "*) flags="-O2" ;;
            *) flags="-O1 -g -fsanitize=address -fsanitize=fuzzer-no-link" ;;
        esac
        clang -c $flags -I"$work/src/library" -I/usr/include -o "$work/obj/$name.o" "$1"' _ || return 1
    rm -f "$lib.tmp" && ar rcs "$lib.tmp" "$work"/obj/*.o && mv "$lib.tmp" "$lib"
    rm -rf "$work"
    mbedtls_link=("$lib")
    mbedtls_kind="Debian $version source, instrumented ($lib)"
}
if [ "${STRATA_FUZZ_MBEDTLS:-source}" != system ]; then
    build_mbedtls || echo "warning: cannot build an instrumented mbedTLS (above); linking the system's — coverage stops at the Swift code"
fi
# CStrataMbedTLS's header, without the module map's link lines (the libraries are named below).
mkdir -p "$deps/mbedtls-map"
cat > "$deps/mbedtls-map/module.modulemap" <<EOF
module CStrataMbedTLS [system] {
    header "$root/Modules/TLS/CStrataMbedTLS/CStrataMbedTLS.h"
    export *
}
EOF

# --- The PKI: a root CA and a server leaf for localhost (ECDSA P-256), made with openssl
# and compiled into the binary. Remade when missing or within 7 days of expiry
# (TLSConfiguration refuses an expired certificate).
if [ ! -s "$pki/server.pem" ] || ! openssl x509 -checkend 604800 -noout -in "$pki/server.pem" >/dev/null 2>&1; then
    echo "== making the fuzz PKI in $pki"
    (
        cd "$pki"
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out root.key 2>/dev/null
        openssl req -x509 -new -key root.key -sha256 -days 90 -subj "/CN=Strata Fuzz Root CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out root.pem
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key 2>/dev/null
        openssl req -new -key server.key -subj "/CN=localhost" -out server.csr
        printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n' > server.ext
        openssl x509 -req -in server.csr -CA root.pem -CAkey root.key -CAcreateserial -days 30 -sha256 \
            -extfile server.ext -out server.pem 2>/dev/null
    )
fi
{
    echo "// Generated by Fuzz/run-tls-session.sh from $pki (openssl); do not edit."
    for pair in root.pem:fuzzRootPEM server.pem:fuzzServerChainPEM server.key:fuzzServerKeyPEM; do
        echo "let ${pair#*:} = #\"\"\""
        cat "$pki/${pair%%:*}"
        echo "\"\"\"#"
    done
} > "$out/FuzzPKI.swift"

# --- StrataThreads and StrataSockets (what the session sources import), from their sources,
# with CStrataSys's shim. Rebuilt when a source is newer than the objects.
threads_sources=$(find "$root/Modules/Threads/Sources" -name '*.swift' | sort)
sockets_sources=$(find "$root/Modules/Sockets/Sources" -name '*.swift' | sort)
# shellcheck disable=SC2086,SC2012
newest_dep=$(ls -t $threads_sources $sockets_sources "$root"/Modules/CStrataSys/shim.c "$root"/Modules/CStrataSys/include/*.h "$0" | head -1)
if [ ! -f "$deps/StrataSockets.o" ] || [ "$newest_dep" -nt "$deps/StrataSockets.o" ]; then
    echo "== building StrataThreads and StrataSockets into $deps"
    cat > "$deps/module.modulemap" <<EOF
module CStrataSys {
    header "$root/Modules/CStrataSys/include/CStrataSys.h"
    export *
}
EOF
    clang -c -O1 -g -fsanitize=address -fsanitize=fuzzer-no-link \
        "$root/Modules/CStrataSys/shim.c" -o "$deps/shim.o"
    for module in Threads Sockets; do
        if [ $module = Threads ]; then sources=$threads_sources; else sources=$sockets_sources; fi
        # In $deps: swiftc leaves .swiftdoc/.swiftsourceinfo files in its working directory.
        # shellcheck disable=SC2086
        (cd "$deps" && swiftc -sanitize=address -parse-as-library -O -wmo -g -swift-version 6 \
            -module-name "Strata$module" -I "$deps" \
            -emit-module -emit-module-path "$deps/Strata$module.swiftmodule" \
            -emit-object -o "$deps/Strata$module.o" $sources)
    done
fi

# --- The fuzzer: every TLS source that imports neither Sched nor Events (TLSConnection and
# the Events adapter sit above the session), the harness and the PKI, as one module.
tls_sources=$(grep -L -E '^import (StrataSched|StrataEvents)' "$root"/Modules/TLS/Sources/*.swift)
# shellcheck disable=SC2046,SC2086
echo "== building $out/fuzz-tls-session from" $(for f in $tls_sources; do basename "$f"; done)
echo "   mbedTLS: $mbedtls_kind"
# shellcheck disable=SC2086
(cd "$out" && swiftc -sanitize=fuzzer,address -parse-as-library -O -wmo -g -swift-version 6 \
    -module-name StrataTLSFuzz \
    -I "$deps/mbedtls-map" -I "$deps" \
    $tls_sources \
    "$root/Fuzz/TLSSessionFuzz/main.swift" "$out/FuzzPKI.swift" \
    "$deps/StrataThreads.o" "$deps/StrataSockets.o" "$deps/shim.o" \
    "${mbedtls_link[@]}" -luring \
    -o "$out/fuzz-tls-session") 2>&1 |
    { grep -v "Cannot export local symbol '__asan" || true; }   # gold's noise about ASan's local symbols

echo "== capturing seeds from in-memory handshakes"
rm -f "$out"/seeds/*
STRATA_TLS_FUZZ_WRITE_SEEDS="$out/seeds" "$out/fuzz-tls-session"

echo "== fuzzing for ${seconds}s"
cd "$out"
./fuzz-tls-session corpus seeds \
    -max_total_time="$seconds" \
    -max_len=20000 \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -artifact_prefix="$out/artifacts/" \
    -print_final_stats=1 \
    "$@"
