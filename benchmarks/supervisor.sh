#!/usr/bin/env bash
# Measures the supervisor with the release build: time from start to READY, time to replace each killed
# worker (kill -9 until the new instance reports ready), and the resident memory of every process.
# Usage: benchmarks/supervisor.sh [rounds]    (builds first; prints a table; leaves nothing running)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-5}
"$root/scripts/build.sh" > /dev/null
bin="$root/.build/release/harmonylite"
work=$(mktemp -d /tmp/hl-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
sqlite3 "$work/app.db" "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
printf 'db_path = "%s/app.db"\nnode_id = 1\n' "$work" > "$work/node.toml"

now() { date +%s.%N; }
children() { cat "/proc/$1/task/$1/children" 2>/dev/null; }
child_named() {  # supervisor-pid name
  for c in $(children "$1"); do
    [ "$(tr '\0' '\n' < "/proc/$c/cmdline" | head -1 | xargs basename)" = "$2" ] && { echo "$c"; return; }
  done
}

echo "start to READY (embedded nats-server, 4 workers), $rounds rounds:"
for r in $(seq 1 "$rounds"); do
  "$bin" -config "$work/node.toml" > "$work/log" 2>&1 &
  pid=$!
  until grep -q "ready since start" "$work/log"; do sleep 0.01; done
  grep -o "ready since start seconds=[0-9.]*" "$work/log" | sed "s/^ready since start seconds=/  round $r: /; s/$/ s/"
  if [ "$r" = "$rounds" ]; then
    echo "resident memory after start (VmRSS):"
    printf "  %-24s %s\n" "harmonylite (supervisor)" "$(grep VmRSS /proc/$pid/status | awk '{print $2" kB"}')"
    for c in $(children "$pid"); do
      printf "  %-24s %s\n" "$(tr '\0' '\n' < /proc/$c/cmdline | head -1 | xargs basename)" "$(grep VmRSS /proc/$c/status | awk '{print $2" kB"}')"
    done
    echo "kill -9 to replacement ready (includes the 250 ms ±20% first restart delay):"
    for name in harmonylite-broker harmonylite-snapshotter harmonylite-applier harmonylite-capturer nats-server; do
      short=${name#harmonylite-}; [ "$short" = nats-server ] && short=nats
      before=$(grep -c "child ready child=$short " "$work/log")
      victim=$(child_named "$pid" "$name")
      t0=$(now); kill -9 "$victim"
      until [ "$(grep -c "child ready child=$short " "$work/log")" -gt "$before" ]; do sleep 0.005; done
      t1=$(now)
      printf "  %-24s %s s\n" "$name" "$(awk "BEGIN { printf \"%.3f\", $t1 - $t0 }")"
      sleep 1
    done
  fi
  kill -TERM "$pid"; wait "$pid" || true
done
