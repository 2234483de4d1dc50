#!/usr/bin/env bash
# costsplit.sh: where a proxied HTTP/1.1 request's CPU goes, Monolake (each
# runtime) against nginx: microseconds of the proxy worker's CPU per request,
# split by perf samples into user space (the proxy's own code, and the shared
# libraries it calls: libc, and with -t libssl and libcrypto), the kernel's
# send path, its receive path and the rest of the kernel. Keep-alive unless
# -k, wrk on CPU 1 with the origin, the proxy on CPU 0.
#
#   scripts/costsplit.sh [-t STACK] [-k] [SECONDS [CONNS [PATH [ROUNDS]]]]   # 5 50 /0 3
#
# -t STACK: HTTPS, Monolake on TLS stack STACK (gotls or openssl), with the
# suite's TLS settings (see use_tls in rig.sh); -k: Connection: close (with
# -t, a full handshake per request). Monolake's own code is the Go binary,
# the runtime and its cgo glue included; gotls's crypto is in it too.
#
# The send path is everything under tcp_sendmsg: on loopback it includes the
# receiving socket's processing (tcp_v4_rcv in the softirq the send raises)
# and waking its reader, which the kernel charges to the sender. The receive
# path is everything under tcp_recvmsg. Both are the kernel's TCP work for
# the same bytes whichever proxy asks for it: what is left to a proxy to win
# is user space and the rest of the kernel (system call entries, epoll or
# io_uring). Rounds alternate the proxies; the figures are medians.
#
# Needs bin/monolake (make uring), nginx, wrk (scripts/install-deps.sh) and
# perf (Debian: linux-perf) allowed to sample other processes.
set -euo pipefail

stack="" close=()
while getopts t:k opt; do
	case $opt in
	t) stack=$OPTARG ;;
	k) close=(-H "Connection: close") ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
secs=${1:-5} conns=${2:-50} path=${3:-/0} rounds=${4:-3}
name=costsplit.sh
# shellcheck source=scripts/rig.sh
source "$(dirname "$0")/rig.sh"
command -v perf >/dev/null || { echo "$name: perf not found (Debian: linux-perf)" >&2; exit 1; }
perf record -o /dev/null -F 100 -- true 2>/dev/null || { echo "$name: perf cannot sample (kernel.perf_event_paranoid?)" >&2; exit 1; }
start_origin
[ -z "$stack" ] || use_tls "$stack"

# sample NAME: perf the worker over a wrk run and append a line to
# $work/rows: name, requests, samples in all, in user space and in shared
# libraries (1 sample = 500 us of CPU at 2000 Hz), and the percent of
# samples under tcp_sendmsg and under tcp_recvmsg.
sample() {
	local data=$work/perf.data reqs
	taskset -c 1 wrk -t1 -c"$conns" -d1s "${close[@]}" "$scheme://127.0.0.1:$port$path" >/dev/null # warm up
	perf record -F 2000 -g -p "$worker" -o "$data" 2>/dev/null >/dev/null &
	local rec=$!
	sleep 0.2
	reqs=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "${close[@]}" "$scheme://127.0.0.1:$port$path" | awk '/requests in/ {print $1}')
	kill -INT "$rec"
	wait "$rec" 2>/dev/null || true
	local total user libs send recv
	read -r total user libs < <(perf report -i "$data" -n --no-children --sort dso -g none 2>/dev/null |
		awk '/^ +[0-9.]+%/ {n += $2; if ($3 != "[kernel.kallsyms]") u += $2; if ($3 ~ /^lib.*\.so/) l += $2} END {print n + 0, u + 0, l + 0}')
	# Children's share (percent of all samples) of the two TCP entries.
	read -r send recv < <(perf report -i "$data" --children --sort sym -g none 2>/dev/null |
		awk '$NF == "tcp_sendmsg" {s = $1} $NF == "tcp_recvmsg" {r = $1} END {sub("%", "", s); sub("%", "", r); print s + 0, r + 0}')
	echo "$1 $reqs $total $user $libs $send $recv" >>"$work/rows"
}

: >"$work/rows"
for _ in $(seq "$rounds"); do
	each_proxy sample
done

what="HTTP/1.1 keep-alive"
[ ${#close[@]} -eq 0 ] || what="HTTP/1.1 Connection: close"
[ -z "$stack" ] || what="HTTPS ($stack) ${what#HTTP/1.1 }"
echo "$what, $conns connections, $path, $rounds rounds of ${secs}s: proxy worker CPU, us per request (medians)"
python3 - "$work/rows" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, reqs, total, user, libs, send, recv = line.split()
    per = 500.0 / float(reqs)  # us of CPU per sample, per request
    t = float(total) * per
    u, l = float(user) * per, float(libs) * per
    rows.setdefault(name, []).append([t, u, u - l, l, t * float(send) / 100, t * float(recv) / 100, t - u - t * (float(send) + float(recv)) / 100])
print(f"{'proxy':16} {'total':>7} {'user':>7} {'own':>7} {'libs':>7} {'send':>7} {'recv':>7} {'other kernel':>13}")
for name, rs in rows.items():
    t, u, o, l, s, r, k = (statistics.median(col) for col in zip(*rs))
    print(f"{name:16} {t:7.2f} {u:7.2f} {o:7.2f} {l:7.2f} {s:7.2f} {r:7.2f} {k:13.2f}")
PY
