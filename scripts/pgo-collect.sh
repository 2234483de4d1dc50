#!/usr/bin/env bash
# Profile-guided optimisation, for trying it: collect worker CPU profiles
# under the suite's kinds of load (HTTP on both runtimes; HTTPS on both TLS
# stacks, keep-alive and Connection: close) and merge them into one profile.
#   make uring && bash scripts/pgo-collect.sh
#   CGO_ENABLED=1 go build -tags 'uring openssl' -pgo=/tmp/monolake.pgo -o /tmp/ml-pgo ./cmd/monolake
#   scripts/abtest.sh uring /tmp/ml-pgo:uring
# The builds do not use a profile: README.md (Build targets) says what PGO
# measured here. SECS sets each load's length (default 8); OUT the merged
# profile's path (default /tmp/monolake.pgo). Moving the file to
# cmd/monolake/default.pgo would make every `go build` of the binary use it.
set -euo pipefail
name=pgo-collect.sh
source "$(dirname "$0")/rig.sh"
bin=${BIN:-$bin}
start_origin
dir=$(mktemp -d /tmp/monolake-pgo.XXXXXX)
out=$dir/prof
load() { # conns path [close]
	taskset -c 1 wrk -t1 -c"$1" -d"${SECS:-8}s" ${3:+-H "Connection: close"} "$scheme://127.0.0.1:$port$2" | awk '/Requests\/sec/ {print "  " $0}'
}
for rt in uring epoll; do
	MONOLAKE_CPUPROFILE=$out-http-$rt start_proxy 29502 "$work/m.log" "$bin" run --config "$work/monolake.toml" --runtime "$rt"
	echo "http $rt"; load 50 /0; load 200 /1k; load 50 /1k
	stop_proxy
done
use_tls openssl
for st in openssl gotls; do
	sed -i "s/stack = \"[a-z]*\"/stack = \"$st\"/" "$work/monolake.toml"
	MONOLAKE_CPUPROFILE=$out-tls-$st start_proxy 29502 "$work/m.log" "$bin" run --config "$work/monolake.toml" --runtime uring
	echo "https $st"; load 50 /0; load 200 /1k; load 50 /0 close
	stop_proxy
done
merged=${OUT:-/tmp/monolake.pgo}
go tool pprof -proto $out-* > "$merged"
echo "pgo-collect: $(ls $out-* | wc -l) profiles merged into $merged"
rm -rf "$dir"
