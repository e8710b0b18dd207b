#!/usr/bin/env bash
# MQTT benchmark, rill against nats-server in the same run (alternating), with real MQTT
# clients: mosquitto_pub -l / mosquitto_sub -C for QoS 0 and QoS 1 throughput (one
# publisher, one subscriber, 16-byte payloads), and N idle MQTT 3.1.1 connections opened
# by bench/mqtt_idle.py for the memory each one costs (server RSS before and after).
#
#   cargo build --release -p rill-server
#   bench/mqtt.sh [target/release/rill-server] [messages] [idle connections]
#
# Needs mosquitto-clients, python3, nats-server on PATH, and `ulimit -n` above twice the
# idle connection count. Prints a markdown table and the load average (the machine may be
# shared: compare within a row).
set -euo pipefail
cd "$(dirname "$0")/.."

RILL=${1:-target/release/rill-server}
MSGS=${2:-100000}
IDLE=${3:-10000}
ulimit -n $((IDLE * 2 + 1024)) 2>/dev/null || true
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start <binary> <name>: runs it with JetStream and an MQTT listener; sets PID and MPORT.
start() {
  MPORT=$(free_port)
  rm -rf "$WORK/$2" && mkdir -p "$WORK/$2"
  cat > "$WORK/$2.conf" <<EOF
listen: 127.0.0.1:-1
jetstream { store_dir: "$WORK/$2" }
mqtt { host: 127.0.0.1, port: $MPORT }
EOF
  "$1" -c "$WORK/$2.conf" > "$WORK/$2.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do
    grep -q "Listening for MQTT clients" "$WORK/$2.log" && return 0
    sleep 0.1
  done
  echo "$2 did not start" >&2; cat "$WORK/$2.log" >&2; exit 1
}

stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; }

# rate <qos>: messages per second one subscriber receives from one publisher.
rate() {
  local topic="bench/q$1/$RANDOM"
  mosquitto_sub -h 127.0.0.1 -p "$MPORT" -t "$topic" -q "$1" -C "$MSGS" -W 300 > /dev/null &
  local sub=$!
  sleep 0.5
  local t0 t1
  t0=$(date +%s.%N)
  seq -f "%016g" "$MSGS" | mosquitto_pub -h 127.0.0.1 -p "$MPORT" -t "$topic" -q "$1" -l
  wait "$sub"
  t1=$(date +%s.%N)
  python3 -c "print(int($MSGS / ($t1 - $t0)))"
}

# idle: KiB of server RSS per idle MQTT connection.
idle() {
  python3 bench/mqtt_idle.py "$MPORT" "$IDLE" "$PID"
}

declare -A R
for round in 1 2; do
  for server in rill nats; do
    if [ "$server" = rill ]; then start "$RILL" rill; else start nats-server nats; fi
    R[$server.q0.$round]=$(rate 0)
    R[$server.q1.$round]=$(rate 1)
    R[$server.idle.$round]=$(idle)
    stop
  done
done

med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
row() {
  local a b
  a=$(med "${R[rill.$2.1]}" "${R[rill.$2.2]}")
  b=$(med "${R[nats.$2.1]}" "${R[nats.$2.2]}")
  python3 -c "a,b=float('$a'),float('$b'); r=(a/b if '$3'=='up' else b/a) if a and b else 0; print(f'| $1 | {a:,.1f} | {b:,.1f} | {r:.2f}x |')"
}
echo "| scenario ($MSGS msgs, $IDLE idle) | rill | nats-server | ratio (>1: rill better) |"
echo "|---|---:|---:|---:|"
row "QoS 0 msgs/s" q0 up
row "QoS 1 msgs/s" q1 up
row "idle connection KiB" idle down
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
