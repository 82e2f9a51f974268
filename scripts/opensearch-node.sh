#!/usr/bin/env bash
# A real OpenSearch 2.19 node with the k-NN plugin on loopback, for tests and by hand.
#
#   scripts/opensearch-node.sh start   builds tests/opensearch-node once (Maven; cached in ~/.m2
#                                      and its target/), starts the node on free loopback ports
#                                      in the background, waits for green health and the k-NN
#                                      plugin, and prints OPENSEARCH_URL=http://127.0.0.1:PORT as
#                                      its last line
#   scripts/opensearch-node.sh stop    ends the node it started (by its recorded pid only)
#   scripts/opensearch-node.sh url     prints the running node's OPENSEARCH_URL line
#
# State (node home, pid, log) lives in $OPENSEARCH_NODE_DIR (default: a folder under $TMPDIR or
# /tmp). The node is for tests only: no security plugin, single-node discovery, lucene engine
# (the k-NN zip on Maven Central has no native libraries, so faiss and nmslib cannot run here).
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
module="$here/tests/opensearch-node"
state="${OPENSEARCH_NODE_DIR:-${TMPDIR:-/tmp}/campaign-studio-opensearch-$(id -u)}"
pidfile="$state/node.pid"
urlfile="$state/url"
log="$state/node.log"

die() { echo "opensearch-node: $*" >&2; exit 1; }

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

build() {
  command -v java >/dev/null || die "java is not installed (Java 17 is needed)"
  command -v mvn >/dev/null || die "mvn is not installed (Maven 3.8 is needed)"
  local jar="$module/target/opensearch-node-1.jar"
  if [ -f "$jar" ] && [ -d "$module/target/knn" ] && [ "$jar" -nt "$module/pom.xml" ] &&
    [ -z "$(find "$module/src" -newer "$jar" -type f 2>/dev/null)" ]; then
    return
  fi
  echo "opensearch-node: building $module (Maven; first time downloads OpenSearch from Maven Central)" >&2
  mvn -q -B -f "$module/pom.xml" -DskipTests package >&2 || die "the Maven build failed (see above)"
}

# A loopback port nobody listens on, below the kernel's ephemeral range: a port inside it can
# be held by an outgoing connection (or one in TIME_WAIT after many test connections), which a
# connect check does not see and which makes the node's bind fail.
free_port() {
  local p low
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "$low" -gt 11000 ] 2>/dev/null || low=32768
  for _ in $(seq 1 200); do
    p=$(( (RANDOM * 32768 + RANDOM) % (low - 10000) + 10000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  die "no free loopback port found"
}

start() {
  if running; then
    echo "opensearch-node: already running (pid $(cat "$pidfile"))" >&2
    cat "$urlfile"
    return
  fi
  build
  mkdir -p "$state"
  rm -rf "$state/home"
  local http transport url deadline attempt
  # A port taken between the check and the node's bind fails the start: new ports, up to 3 tries.
  for attempt in 1 2 3; do
    rm -rf "$state/home"
    http=$(free_port)
    transport=$(free_port)
    [ "$http" != "$transport" ] || transport=$(free_port)
    # Own session (setsid) so the node outlives this script and its terminal.
    setsid java -Xms512m -Xmx1g \
      -Dopensearch.set.netty.runtime.available.processors=false \
      -cp "$module/target/classes:$module/target/lib/*:$module/target/knn/*" \
      campaignstudio.OpenSearchNode "$state/home" "$http" "$transport" \
      >"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    url="http://127.0.0.1:$http"
    deadline=$((SECONDS + 180))
    until curl -fsS "$url/_cluster/health?wait_for_status=green&timeout=5s" >/dev/null 2>&1; do
      if ! running; then
        if [ "$attempt" -lt 3 ] && grep -q "Address already in use" "$log"; then
          echo "opensearch-node: port $http or $transport was taken, trying others" >&2
          continue 2
        fi
        tail -n 40 "$log" >&2
        die "the node exited while starting (log: $log)"
      fi
      [ $SECONDS -lt $deadline ] || { tail -n 40 "$log" >&2; stop; die "no green health after 180 s (log: $log)"; }
      sleep 1
    done
    break
  done
  # Classpath plugins are listed by class name.
  curl -fsS "$url/_cat/plugins" | grep -qi "knn" ||
    { stop; die "the k-NN plugin is not loaded (log: $log)"; }
  echo "OPENSEARCH_URL=$url" >"$urlfile"
  echo "opensearch-node: started pid $(cat "$pidfile"), log $log" >&2
  cat "$urlfile"
}

stop() {
  if ! [ -f "$pidfile" ]; then
    echo "opensearch-node: not running" >&2
    return
  fi
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile" "$urlfile"
  echo "opensearch-node: stopped pid $pid" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) running && cat "$urlfile" || die "not running" ;;
  *) die "usage: $0 start|stop|url" ;;
esac
