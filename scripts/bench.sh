#!/usr/bin/env bash
# The benchmark suite against nginx (`make bench`, `make bench-smoke`).
#
# Installs what the suite needs (scripts/install-deps.sh: nginx, its stream
# module, wrk, h2load), builds the most capable monolake binary the machine
# allows, then runs bench/cmd/monobench with the arguments given, e.g.
#
#   scripts/bench.sh                         # the full suite
#   scripts/bench.sh -smoke                  # ~10 s of load, for CI
#   scripts/bench.sh -protos l4 -workers 1 -reps 5 -duration 10s
#   go run ./bench/cmd/monobench -h          # every flag
#
# Results land in bench/results/<UTC timestamp>/ and bench/results/latest/
# (smoke: bench/results/smoke/). Environment: BENCH_SKIP_DEPS=1 skips the
# package install, BENCH_SKIP_BUILD=1 uses bin/monolake as it is.
#
# Without liburing and OpenSSL (or when the cgo build fails) the binary is
# the pure-Go one, and monobench stops on the io_uring and OpenSSL variants
# it lacks unless given -allow-unsupported (or narrower -runtimes and
# -tls-backends): a downgraded build never passes for a full run.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

if [ "${BENCH_SKIP_DEPS:-0}" != 1 ]; then
	bash scripts/install-deps.sh
fi

monolake=bin/monolake
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
	built=0
	if pkg-config --exists liburing 2>/dev/null && pkg-config --exists libssl 2>/dev/null; then
		make --no-print-directory uring && built=1 ||
			echo "bench: the cgo build FAILED; trying the pure-Go one (no io_uring, no OpenSSL)" >&2
	else
		echo "bench: no liburing or libssl headers (scripts/install-deps.sh); building the pure-Go binary (no io_uring, no OpenSSL)" >&2
	fi
	if [ "$built" = 0 ]; then
		make --no-print-directory build && built=1 || true
	fi
	if [ "$built" = 0 ]; then
		echo "bench: monolake does not build; monobench will stop unless given -allow-unsupported" >&2
		monolake=
	fi
fi

mkdir -p bin
"$GO" build -o bin/monobench ./bench/cmd/monobench
exec bin/monobench -monolake "$monolake" "$@"
