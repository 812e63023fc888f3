# Shared helpers for the benchmark scripts (sourced, not run).
# Every process started here is stopped by its pid on exit.
set -euo pipefail

KEYMESH_BIN=${KEYMESH_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/keymesh}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WORK=$(mktemp -d /tmp/keymesh-bench-XXXXXX)
chmod 755 "$WORK" # nginx workers (www-data) read the static file
PIDS=()

cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]:-}"; do
    [[ -n "$pid" ]] && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "bench: $1 is missing (make bench installs it)" >&2; exit 1; }
}

# start_keymesh [ENV=VALUE...]: starts a node on a free port; sets KM_PORT,
# KM_ADMIN_KEY and KM_PID. KM_NAME (default keymesh) names its data
# directory and log, so that one script can run several nodes.
start_keymesh() {
  local name=${KM_NAME:-keymesh}
  local data="$WORK/data"
  [[ "$name" == keymesh ]] || data="$WORK/$name-data"
  local log="$WORK/$name.log"
  env KEYMESH_HTTP_LISTEN=127.0.0.1:0 KEYMESH_NODE_DATA_DIR="$data" \
      KEYMESH_LOG_LEVEL=warn "$@" "$KEYMESH_BIN" serve >"$log" 2>&1 &
  KM_PID=$!
  PIDS+=("$KM_PID")
  # log level warn hides the ready line: find the port with ss instead.
  for _ in $(seq 1 500); do
    KM_PORT=$(ss -ltnpH 2>/dev/null | awk -v pid="pid=$KM_PID," '$0 ~ pid {split($4,a,":"); print a[length(a)]; exit}')
    [[ -n "${KM_PORT:-}" ]] && curl -sf "http://127.0.0.1:$KM_PORT/healthz/ready" >/dev/null && break
    sleep 0.02
  done
  [[ -n "${KM_PORT:-}" ]] || { echo "bench: keymesh did not start" >&2; cat "$log" >&2; exit 1; }
  KM_ADMIN_KEY=$(grep -v '^#' "$data/admin.keys" | head -n1)
}

# start_mariadb: a throw-away MariaDB (default durability: every commit is
# flushed) on a free loopback port, with database keymesh and user keymesh;
# sets DB_PORT, DB_PASSWORD_FILE and DB_PID.
start_mariadb() {
  need mariadbd
  local dir="$WORK/mariadb"
  mkdir -p "$dir"
  mariadb-install-db --no-defaults --datadir="$dir/data" --skip-test-db \
    --auth-root-authentication-method=normal --user="$(id -un)" >"$dir/install.log" 2>&1 \
    || { cat "$dir/install.log" >&2; exit 1; }
  DB_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mariadbd --no-defaults --datadir="$dir/data" --socket="$dir/sock" --port="$DB_PORT" \
    --bind-address=127.0.0.1 --user="$(id -un)" --skip-name-resolve \
    --innodb-buffer-pool-size=256M --innodb-log-file-size=256M --max-connections=500 \
    --pid-file="$dir/mysqld.pid" >"$dir/server.log" 2>&1 &
  DB_PID=$!
  PIDS+=("$DB_PID")
  for _ in $(seq 1 300); do
    mariadb --no-defaults -uroot --socket="$dir/sock" -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.1
  done
  DB_PASSWORD_FILE="$dir/password"
  echo "bench-$RANDOM$RANDOM" >"$DB_PASSWORD_FILE"
  DB_SOCKET="$dir/sock"
  mariadb --no-defaults -uroot --socket="$dir/sock" -e "CREATE DATABASE keymesh;
    CREATE USER 'keymesh'@'127.0.0.1' IDENTIFIED BY '$(cat "$DB_PASSWORD_FILE")';
    GRANT ALL ON keymesh.* TO 'keymesh'@'127.0.0.1';" \
    || { cat "$dir/server.log" >&2; exit 1; }
}

# start_nginx ROOT: serves ROOT on a free port; sets NGX_PORT.
start_nginx() {
  need nginx
  local root=$1
  NGX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  default_type application/json;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$NGX_PORT;
    root $root;
    location = /api/pkeys { try_files /jwks.json =404; add_header Cache-Control "public, max-age=300"; }
  }
}
CONF
  nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
  PIDS+=("$!")
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$NGX_PORT/api/pkeys" >/dev/null && return 0
    sleep 0.02
  done
  echo "bench: nginx did not start" >&2
  cat "$WORK/nginx/error.log" >&2
  exit 1
}

# free_port_block N: the first of N consecutive free ports below Linux's
# ephemeral range (so that outgoing connections never take them meanwhile).
free_port_block() {
  python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(500):
    base = random.randint(20000, 30000)
    socks = []
    try:
        for i in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", base + i))
            socks.append(s)
        print(base)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
PY
}

# warm_up ARGS...: an unmeasured 3 s wrk run (connections, caches, allocator).
warm_up() {
  need wrk
  wrk "${@/#-d*/-d3s}" >/dev/null
}

# wrk_rps ARGS...: runs wrk and prints its requests per second.
wrk_rps() {
  need wrk
  wrk "$@" | awk '/Requests\/sec:/ {print $2}'
}

# wrk_checked ARGS...: wrk's requests/s with a script whose done() prints
# "non-2xx: N"; fails the run on any non-2xx answer.
wrk_checked() {
  need wrk
  local out
  out=$(wrk "$@")
  if ! grep -q '^non-2xx: 0$' <<<"$out"; then
    echo "bench: wrk saw failed requests:" >&2
    echo "$out" >&2
    exit 1
  fi
  awk '/Requests\/sec:/ {print $2}' <<<"$out"
}

# median A B C...: prints the median of the numbers.
median() {
  printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0) ? a / b : 0}'
}

# openssl_ecdsa_p256 COLUMN: sign/s (COLUMN=sign) or verify/s (COLUMN=verify)
# of `openssl speed -multi 2 ecdsap256`.
openssl_ecdsa_p256() {
  local out
  out=$(openssl speed -multi 2 -seconds 5 ecdsap256 2>/dev/null | grep -E '^ *256 bits ecdsa' | tail -n1)
  if [[ "$1" == sign ]]; then
    awk '{print $(NF-1)}' <<<"$out"
  else
    awk '{print $NF}' <<<"$out"
  fi
}

# stop_pid PID: stops a process this script started and waits for it.
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# A 3-node cluster (genclust, mutual TLS) for the cluster phases. Set
# cluster_http and cluster_port (e.g. cluster_http=$(free_port_block 6);
# cluster_port=$((cluster_http + 3))) and declare -A NODE_PID first.
# make_cluster DIR writes node-1..3; start_node DIR I [ENV...] starts node
# I (NODE_PID[I]); wait_ready PORT SECONDS; admin_of DIR I prints node I's
# admin key.
make_cluster() {
  "$KEYMESH_BIN" genclust --nodes 3 --out "$1" --http-port "$cluster_http" \
    --cluster-port "$cluster_port" >/dev/null
}
start_node() {
  local dir=$1 i=$2
  shift 2
  env KEYMESH_LOG_LEVEL=warn "$@" "$KEYMESH_BIN" serve --config "$dir/node-$i/keymesh.yaml" \
    >>"$dir/node-$i.log" 2>&1 &
  NODE_PID[$i]=$!
  PIDS+=("${NODE_PID[$i]}")
}
wait_ready() { # wait_ready PORT SECONDS
  local limit=$(($2 * 50))
  for _ in $(seq 1 "$limit"); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/healthz/ready")" == 200 ]] && return 0
    sleep 0.02
  done
  echo "bench: node on port $1 is not ready" >&2
  return 1
}
admin_of() { grep -v '^#' "$1/node-$2/data/admin.keys" | head -n1; }
