#!/usr/bin/env bash
# abtest.sh: two proxies under the same load in alternation, compared by
# the suite's figure (requests per CPU-second of the proxy's worker), for
# A/B tests of a change.
#
#   scripts/abtest.sh [-r ROUNDS] [-s SECS] [-c CONNS] [-p PATH] [-t STACK] [-k] A B
#
# A and B: nginx, a Monolake runtime (uring, epoll) of bin/monolake, or
# BINARY:RUNTIME (another build of Monolake). Both run side by side on CPU 0
# (only the one under load works), wrk and the origin on CPU 1 (the rig of
# scripts/rig.sh). Each round runs A and B for SECS each, the order turning
# every round, and takes the ratio B ÷ A; the output is the median, the mean
# and its standard error over the ROUNDS ratios (defaults: 30 rounds of 2 s,
# 50 keep-alive connections, /0). -t STACK makes the proxies serve HTTPS
# (Monolake on TLS stack STACK, gotls or openssl; the suite's TLS settings);
# -k sends Connection: close (a connection, with -t a handshake, per
# request). This VM's speed moves by 20 % and more over tens of seconds, for
# every proxy alike; a single run of each says little, short runs back to
# back and many of them do: two copies of one binary gave a median of 0.99
# with a standard error of 0.012 over 30 rounds.
set -euo pipefail

rounds=30 secs=2 conns=50 path=/0 stack="" close=()
while getopts r:s:c:p:t:k opt; do
	case $opt in
	r) rounds=$OPTARG ;;
	s) secs=$OPTARG ;;
	c) conns=$OPTARG ;;
	p) path=$OPTARG ;;
	t) stack=$OPTARG ;;
	k) close=(-H "Connection: close") ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 2 ] || { echo "usage: $0 [-r ROUNDS] [-s SECS] [-c CONNS] [-p PATH] [-t STACK] [-k] A B" >&2; exit 2; }
name=abtest.sh
# shellcheck source=scripts/rig.sh
source "$(dirname "$0")/rig.sh"
start_origin
[ -z "$stack" ] || use_tls "$stack"

# start_target SPEC PORT: SPEC on CPU 0, listening on PORT.
start_target() {
	local spec=$1 bin=$bin rt=$1
	if [ "$spec" = nginx ]; then
		start_nginx
		return
	fi
	if [[ $spec == *:* ]]; then
		bin=${spec%:*} rt=${spec##*:}
	fi
	[ -x "$bin" ] || { echo "$name: no binary $bin" >&2; exit 1; }
	sed "s/127.0.0.1:29502/127.0.0.1:$2/" "$work/monolake.toml" >"$work/monolake-$2.toml"
	start_proxy "$2" "$work/monolake-$2.log" "$bin" run --config "$work/monolake-$2.toml" --runtime "$rt"
}
[ "$1" != nginx ] || [ "$2" != nginx ] || { echo "$name: nginx against itself: give one copy" >&2; exit 2; }
start_target "$1" 29502
pa=$port wa=$worker
start_target "$2" 29503
pb=$port wb=$worker

# run PORT WORKER: requests and the worker's CPU ticks over one wrk run.
run() {
	local t0 reqs
	t0=$(ticks "$2")
	reqs=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "${close[@]}" "$scheme://127.0.0.1:$1$path" | awk '/requests in/ {print $1}')
	echo "$reqs $(($(ticks "$2") - t0))"
}
for p in $pa $pb; do
	taskset -c 1 wrk -t1 -c"$conns" -d1s "${close[@]}" "$scheme://127.0.0.1:$p$path" >/dev/null # warm up
done
: >"$work/pairs"
for i in $(seq "$rounds"); do
	if ((i % 2)); then
		a=$(run "$pa" "$wa")
		b=$(run "$pb" "$wb")
	else
		b=$(run "$pb" "$wb")
		a=$(run "$pa" "$wa")
	fi
	echo "$a $b" >>"$work/pairs"
done
hz=$(getconf CLK_TCK)
mode=keep-alive
[ ${#close[@]} -eq 0 ] || mode="Connection: close"
echo "$1 against $2: ${stack:+HTTPS ($stack) }HTTP/1.1 $mode, $conns connections, $path, $rounds rounds of ${secs}s each"
python3 - "$work/pairs" "$hz" "$1" "$2" <<'PY'
import statistics, sys
hz = float(sys.argv[2])
a_rate, b_rate, ratio = [], [], []
for line in open(sys.argv[1]):
    ar, at, br, bt = (float(x) for x in line.split())
    if at == 0 or bt == 0:
        continue
    a_rate.append(ar / (at / hz))
    b_rate.append(br / (bt / hz))
    ratio.append(b_rate[-1] / a_rate[-1])
if len(ratio) < 2:
    sys.exit("abtest.sh: too few rounds with CPU time to compare")
se = statistics.stdev(ratio) / len(ratio) ** 0.5
print(f"requests per worker CPU-second, medians: {sys.argv[3]} {statistics.median(a_rate):.0f}, {sys.argv[4]} {statistics.median(b_rate):.0f}")
print(f"B / A per round: median {statistics.median(ratio):.3f}, mean {statistics.mean(ratio):.3f} ± {se:.3f} (standard error), range {min(ratio):.3f}-{max(ratio):.3f}")
PY
