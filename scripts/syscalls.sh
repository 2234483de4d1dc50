#!/usr/bin/env bash
# syscalls.sh: system calls per proxied HTTP/1.1 request, Monolake (each
# runtime) against nginx, counted on the proxy's worker over a fixed wrk run
# (keep-alive, 50 connections, 1 KiB bodies).
#
#   scripts/syscalls.sh [SECONDS]      # default 5
#   SYSCALLS_TOOL=strace scripts/syscalls.sh
#
# The counter is perf (`perf stat` on the raw_syscalls and syscalls
# tracepoints) when it can read them, else strace -c -f. Prefer perf: it
# counts without stopping the target, while strace makes every system call
# several times slower, which lets more requests share each io_uring round
# and each epoll_wait than at full speed, so its counts for both proxies are
# lower than what they make unobserved (io_uring 0.2-0.8 per request under
# strace against 2.0-3.1 under perf, on the machine of the README).
#
# Needs bin/monolake (make uring), nginx and wrk (scripts/install-deps.sh
# installs them), and perf (Debian: linux-perf) or strace. Everything listens
# on 127.0.0.1:2950x and is stopped at the end.
set -euo pipefail

secs=${1:-5}
name=syscalls.sh
# shellcheck source=scripts/rig.sh
source "$(dirname "$0")/rig.sh"
tool=${SYSCALLS_TOOL:-}
if [ -z "$tool" ]; then
	if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -o /dev/null -- true 2>/dev/null; then
		tool=perf
	elif command -v strace >/dev/null; then
		tool=strace
	else
		echo "syscalls.sh: needs perf (with tracepoint access) or strace" >&2
		exit 1
	fi
fi
case $tool in
perf | strace) command -v "$tool" >/dev/null || { echo "syscalls.sh: $tool not found" >&2; exit 1; } ;;
*) echo "syscalls.sh: SYSCALLS_TOOL must be perf or strace, not $tool" >&2; exit 1 ;;
esac
start_origin

# perf's events: every system call for the total, and those named in the
# breakdown that this kernel has a tracepoint for.
if [ "$tool" = perf ]; then
	evs=raw_syscalls:sys_enter
	for n in io_uring_enter epoll_wait epoll_pwait read write readv writev recvfrom sendto recvmsg sendmsg getsockopt setsockopt getpid gettid futex nanosleep; do
		perf list "syscalls:sys_enter_$n" 2>/dev/null | grep -q "sys_enter_$n" && evs+=",syscalls:sys_enter_$n"
	done
fi

# count NAME: count the system calls of the proxy's worker ($worker) over a
# wrk run through $port (see each_proxy).
count() {
	local name=$1 pid=$worker out=$work/${1//\//-}.$tool
	local ctr
	if [ "$tool" = perf ]; then
		perf stat -x, -e "$evs" -p "$pid" -o "$out" &
	else
		strace -c -f -p "$pid" -o "$out" &
	fi
	ctr=$!
	sleep 0.5
	local reqs
	reqs=$(taskset -c 1 wrk -t1 -c50 -d"${secs}s" "http://127.0.0.1:$port/1k" | awk '/requests in/ {print $1}')
	kill -INT "$ctr"
	wait "$ctr" 2>/dev/null || true
	local total top
	if [ "$tool" = perf ]; then
		total=$(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$out")
		top=$(awk -F, -v reqs="$reqs" '$3 ~ /^syscalls:sys_enter_/ && $1 / reqs >= 0.01 { sub("syscalls:sys_enter_", "", $3); printf "%s %.2f\n", $3, $1 / reqs }' "$out" |
			sort -k2 -nr | head -6 | tr '\n' ' ')
	else
		total=$(awk '$NF == "total" { print $4 }' "$out")
		top=$(awk -v reqs="$reqs" '$1 ~ /^[0-9.]+$/ && $NF != "total" && $4 / reqs >= 0.01 { printf "%s %.2f\n", $NF, $4 / reqs }' "$out" |
			sort -k2 -nr | head -6 | tr '\n' ' ')
	fi
	printf '%-14s %8d requests  %5.2f syscalls/request by %s  (%s)\n' "$name" "$reqs" "$(echo "$total / $reqs" | bc -l)" "$tool" "$top"
}

each_proxy count
