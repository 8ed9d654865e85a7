# Strata — every target is a thin call into .ci/ or swift; `.ci/run` is what CI runs.
#
#   make run           install what is missing, build, start strata-serve on http://127.0.0.1:8080/
#   make audit         the host's ABI table against its headers and live kernel probes (strata-abi)
#   make fuzz          the libFuzzer targets (HTTP parser, TLS server session), FUZZ_SECONDS each (default 300)
#   make test          install what tests need, build, run every test (CI runs this)
#   make test-sanitize the tests under ThreadSanitizer, then AddressSanitizer
#   make abi-tools     install every cross compiler the tables are generated with
#   make abi-generate  regenerate abi-tables/*.json and the files derived from them
#   make abi-verify    compile every Linux target's assertion header with its cross compiler
#   make abi-mutation  prove that a wrong table fails `swift build`
#   make bench-micro   the ordo-one/benchmark micro benchmarks (Benchmarks/)
#   make bench-echo    strata-echo (io_uring, epoll) vs SwiftNIO vs a C epoll echo, pinned, ratios
#   make bench-http    strata-serve (when it exists) vs nginx, SwiftNIO, Hummingbird; wrk, pinned, ratios
#   make bench-tls     HTTPS: strata-serve (once it has --tls-cert) vs nginx, SwiftNIO + swift-nio-ssl; keep-alive,
#                      full/resumed handshakes, p99 under handshakes, idle bytes, mbedTLS cost in memory; pinned, ratios
#   make bench-resp    strata-resp (when it exists) vs redis-server; redis-benchmark, pinned, ratios
#   make bench         bench-http, bench-echo and bench-resp (tables into docs/benchmarks.md)

SWIFT ?= swift
# Exit tests crash child processes on purpose; the backtracer could hold each one for minutes.
export SWIFT_BACKTRACE := enable=no
ABI := .build/debug/strata-abi
# Targets `make test` verifies with cross compilers (CI); `make abi-verify` does all.
# Darwin/FreeBSD use zig cc (PyPI) against its bundled SDK headers: see .ci/abi-verify.sh.
CI_ABI_TARGETS := linux-gnu-x86_64 linux-gnu-aarch64 linux-gnu-armv7 linux-musl-x86_64 darwin-arm64 darwin-x86_64 freebsd-x86_64

.PHONY: run audit fuzz build test test-sanitize abi-tools abi-generate abi-verify abi-mutation bench-micro bench-echo bench-http bench-tls bench-resp bench clean

# CI runs each fuzzer for 60 s inside `make test`; `make fuzz` for longer.
FUZZ_SECONDS ?= 300
PORT ?= 8080

run:
	@.ci/deps.sh run
	$(SWIFT) build -c release --product strata-serve
	.build/release/strata-serve --port $(PORT) --root docs

audit:
	@.ci/deps.sh run
	$(SWIFT) build --product strata-abi
	$(ABI) audit

# Both run even if the first finds something; either finding fails the target.
fuzz:
	@.ci/deps.sh test
	@rc=0; Fuzz/run-http-parser.sh $(FUZZ_SECONDS) || rc=1; Fuzz/run-tls-session.sh $(FUZZ_SECONDS) || rc=1; exit $$rc

build:
	@.ci/deps.sh run
	$(SWIFT) build

test:
	@.ci/deps.sh test
	$(SWIFT) build --build-tests
	.ci/abi-verify.sh $(CI_ABI_TARGETS)
	STRATA_ABI=$(CURDIR)/$(ABI) .ci/abi-mutation.sh
	$(ABI) audit
	@if [ "$(CI)" = "true" ]; then mkdir -p .build-fuzz && echo "Fuzz/run-http-parser.sh 60 (log: .build-fuzz/ci.log)" && \
	  { Fuzz/run-http-parser.sh 60 > .build-fuzz/ci.log 2>&1 || { tail -60 .build-fuzz/ci.log; exit 1; }; } && tail -4 .build-fuzz/ci.log; fi
	@if [ "$(CI)" = "true" ]; then mkdir -p .build-fuzz && echo "Fuzz/run-tls-session.sh 60 (log: .build-fuzz/ci-tls.log)" && \
	  { Fuzz/run-tls-session.sh 60 > .build-fuzz/ci-tls.log 2>&1 || { tail -60 .build-fuzz/ci-tls.log; exit 1; }; } && tail -4 .build-fuzz/ci-tls.log; fi
	$(SWIFT) test

test-sanitize:
	@.ci/deps.sh test
	TSAN_OPTIONS=suppressions=$(CURDIR)/.ci/tsan.supp $(SWIFT) test --scratch-path .build-tsan --sanitize=thread
	ASAN_OPTIONS=suppressions=$(CURDIR)/.ci/asan.supp LSAN_OPTIONS=suppressions=$(CURDIR)/.ci/lsan.supp $(SWIFT) test --scratch-path .build-asan --sanitize=address

abi-tools:
	@.ci/deps.sh abi-tools

abi-generate: abi-tools
	$(SWIFT) build --product strata-abi
	$(ABI) generate

abi-verify: abi-tools
	.ci/abi-verify.sh

abi-mutation:
	@.ci/deps.sh test
	$(SWIFT) build --product strata-abi
	STRATA_ABI=$(CURDIR)/$(ABI) .ci/abi-mutation.sh

bench-micro:
	@.ci/deps.sh run
	cd Benchmarks && $(SWIFT) package --scratch-path ../.build-bench benchmark

bench-echo:
	@.ci/deps.sh run
	$(SWIFT) build -c release --product strata-echo
	cd Benchmarks && $(SWIFT) build -c release --scratch-path ../.build-bench --product nio-echo-server
	Benchmarks/scripts/bench-echo.sh

# One after another even under make -j (they pin to the same CPUs); all three run even if one fails.
bench:
	@rc=0; for t in bench-http bench-echo bench-resp; do $(MAKE) --no-print-directory $$t || rc=1; done; exit $$rc

bench-http:
	@.ci/deps.sh bench
	@SWIFT=$(SWIFT) Benchmarks/scripts/build-main-product.sh strata-serve
	cd Benchmarks && $(SWIFT) build -c release --scratch-path ../.build-bench --product nio-http-server
	cd Benchmarks && $(SWIFT) build -c release --scratch-path ../.build-bench --product hummingbird-server
	Benchmarks/scripts/bench-http.sh

bench-tls:
	@.ci/deps.sh bench
	@SWIFT=$(SWIFT) Benchmarks/scripts/build-main-product.sh strata-serve
	cd Benchmarks && $(SWIFT) build -c release --scratch-path ../.build-bench --product nio-ssl-server
	Benchmarks/scripts/bench-tls.sh

bench-resp:
	@.ci/deps.sh bench
	@SWIFT=$(SWIFT) Benchmarks/scripts/build-main-product.sh strata-resp
	Benchmarks/scripts/bench-resp.sh

clean:
	rm -rf .build .build-* abi-tables/.work
