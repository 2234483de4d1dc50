# rig.sh: the loopback rig shared by syscalls.sh, costsplit.sh, floor.sh and
# abtest.sh, sourced by them. It sets up, under a temporary directory $work:
#   - an nginx origin on 127.0.0.1:29500 (CPU 1) serving /0 (empty), /1k and /16k;
#   - nginx.conf for nginx as the proxy under test on 127.0.0.1:29501;
#   - monolake.toml for Monolake (one worker) on 127.0.0.1:29502;
# and gives wait_port and start_* helpers. Everything it starts is stopped
# on exit. Callers set `name` (for messages) before sourcing it.

root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/bin/monolake
for tool in nginx wrk taskset curl; do
	command -v "$tool" >/dev/null || { echo "$name: $tool not found; run scripts/install-deps.sh" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "$name: no $bin; run make uring" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work" # nginx's workers run as another user and read the bodies below it
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www" "$work/origin" "$work/proxy"
: >"$work/www/0"
head -c 1024 /dev/zero | tr '\0' a >"$work/www/1k"
head -c 16384 /dev/zero | tr '\0' a >"$work/www/16k"

# nginx_conf DIR HTTP-BODY: a one-worker nginx config in DIR/nginx.conf,
# its pid and temp files in DIR, HTTP-BODY inside the http block.
nginx_conf() {
	local dir=$1 body=$2 temps=""
	for t in client_body proxy fastcgi uwsgi scgi; do temps+="${t}_temp_path $dir/$t; "; done
	cat >"$dir/nginx.conf" <<NGINX
worker_processes 1;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off; keepalive_timeout 75s; keepalive_requests 100000000; tcp_nodelay on; $temps
    $body
}
NGINX
}

# The configs follow the suite's (bench/config.go): the origin serves from
# cached file handles, without sendfile and without ETag, so
# that it costs CPU 1, which it shares with wrk, as little as it can; the
# nginx proxy keeps its upstream connections for good (nginx's own
# default closes each after 1000 requests).
nginx_conf "$work/origin" "default_type application/octet-stream; sendfile off; etag off;
    open_file_cache max=64 inactive=600s; open_file_cache_valid 600s;
    server { listen 127.0.0.1:29500 backlog=4096; root $work/www; location / { try_files \$uri =404; } }"
# nginx does what Monolake does by default, as in the benchmark suite: the
# client's Host and the X-Forwarded fields upstream, X-Request-Id both ways.
nginx_conf "$work/proxy" 'map $http_x_request_id $req_id { "" $request_id; default $http_x_request_id; }
    upstream origin { server 127.0.0.1:29500; keepalive 256; keepalive_requests 100000000; keepalive_timeout 600s; }
    server {
        listen 127.0.0.1:29501 backlog=4096;
        location / {
            proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Request-Id $req_id;
            add_header X-Request-Id $req_id always;
        }
    }'
cat >"$work/monolake.toml" <<TOML
[runtime]
worker_threads = 1
cpu_affinity = false
[servers.p]
name = "p"
listener = { type = "socket", value = "127.0.0.1:29502" }
[[servers.p.routes]]
path = "/{*p}"
upstreams = [{ endpoint = { type = "uri", value = "http://127.0.0.1:29500" } }]
TOML

# use_tls STACK: from here on the proxies under test serve HTTPS on their
# ports, as in the suite (TLS 1.3 only, TLS_AES_128_GCM_SHA256, X25519, an
# ECDSA P-256 certificate, no resumption), Monolake with TLS stack STACK
# (gotls or openssl); $scheme is then https.
scheme=http
use_tls() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
	sed -i "s|listen 127.0.0.1:29501 backlog=4096;|listen 127.0.0.1:29501 ssl backlog=4096;\\
        ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ssl_protocols TLSv1.3;\\
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256; ssl_ecdh_curve X25519;\\
        ssl_session_cache off; ssl_session_tickets off; ssl_conf_command NumTickets 0;|" "$work/proxy/nginx.conf"
	sed -i "s|^listener = .*|&\\
tls = { chain = \"$work/cert.pem\", key = \"$work/key.pem\", stack = \"$1\", session_tickets = false }|" "$work/monolake.toml"
	scheme=https
}

# ticks PID: user + system clock ticks of PID (every thread).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

wait_port() {
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "$name: nothing listens on port $1" >&2
	return 1
}

# start_origin: the origin, pinned to CPU 1 with the load generator. It
# fails unless the origin serves each body whole (wrk counts any status).
start_origin() {
	taskset -c 1 nginx -p "$work/origin" -c "$work/origin/nginx.conf" -e "$work/origin/error.log" -g "daemon off;" &
	pids+=($!)
	wait_port 29500
	check_bodies 29500 http
}

# check_bodies PORT [SCHEME]: GET /0, /1k and /16k on PORT must answer 200 with 0,
# 1024 and 16384 bytes.
check_bodies() {
	local p want got proto=${2:-$scheme}
	for p in 0:0 1k:1024 16k:16384; do
		want="200 ${p#*:}"
		got=$(curl -sk -o /dev/null -w '%{http_code} %{size_download}' "$proto://127.0.0.1:$1/${p%%:*}") || true
		[ "$got" = "$want" ] || { echo "$name: GET /${p%%:*} on port $1 answered \"$got\", want \"$want\"" >&2; return 1; }
	done
}

# start_nginx, start_monolake RUNTIME: the proxy under test on CPU 0; the
# worker's pid is left in $worker, the port in $port. stop_proxy ends it.
start_nginx() {
	start_proxy 29501 "$work/proxy/stderr.log" nginx -p "$work/proxy" -c "$work/proxy/nginx.conf" -e "$work/proxy/error.log" -g "daemon off; master_process on;"
}
start_monolake() {
	start_proxy 29502 "$work/monolake-$1.log" "$bin" run --config "$work/monolake.toml" --runtime "$1"
}
# start_proxy PORT LOG CMD...: CMD on CPU 0, its stderr in LOG.
start_proxy() {
	port=$1
	local log=$2
	shift 2
	taskset -c 0 "$@" 2>"$log" &
	pids+=($!)
	wait_port "$port"
	sleep 0.3
	worker=$(pgrep -P "${pids[-1]}" | head -1)
	check_bodies "$port"
}
stop_proxy() {
	kill "${pids[-1]}"
	wait "${pids[-1]}" 2>/dev/null || true
}
# each_proxy FN: runs FN NAME with nginx, then Monolake on io_uring and on
# epoll, each started alone ($port and $worker set) and stopped after.
each_proxy() {
	start_nginx
	"$1" nginx
	stop_proxy
	for rt in uring epoll; do
		start_monolake "$rt"
		"$1" "monolake/$rt"
		stop_proxy
	done
}
