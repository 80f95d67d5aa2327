#!/usr/bin/env bash
# Builds HarmonyLite and runs a three-node cluster on this machine, on the embedded default: each node runs
# its own nats-server, and the three servers form one JetStream cluster over loopback routes.
#
#   deploy/local-cluster/run-cluster.sh            # runs until Ctrl-C
#   deploy/local-cluster/run-cluster.sh --for 20   # runs 20 seconds, then stops (a smoke test)
#
# Databases: /tmp/harmonylite-{1,2,3}.db (recreated at every run, with a Books table and 7 rows).
# Logs: /tmp/harmonylite-{1,2,3}.log. Client ports 4231-4233, cluster routes 4221-4223.
# The embedded servers authenticate: the three nodes share the cluster secret /tmp/harmonylite-cluster.secret
# (the default beside the databases; created 0600 by the first node to start, kept between runs).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
run_for=""
if [ "${1:-}" = "--for" ]; then run_for="${2:?--for takes a number of seconds}"; fi

echo "building (release)..."
"$root/scripts/build.sh" 2>&1 | tail -n 1
bin="$root/.build/release/harmonylite"

pids=()
stop_nodes() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_nodes EXIT
trap 'exit 130' INT TERM

for i in 1 2 3; do
  rm -rf "/tmp/harmonylite-$i.db" "/tmp/harmonylite-$i.db-wal" "/tmp/harmonylite-$i.db-shm" \
    "/tmp/harmonylite-$i-seq-map.cbor" "/tmp/.harmonylite-$i.db.harmonylite" "/tmp/nats/harmonylite-node-$i"
  sqlite3 "/tmp/harmonylite-$i.db" > /dev/null <<'SQL'
PRAGMA journal_mode = WAL;
CREATE TABLE Books (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, author TEXT NOT NULL, publication_year INTEGER);
INSERT INTO Books (title, author, publication_year) VALUES
  ('The Hitchhiker''s Guide to the Galaxy', 'Douglas Adams', 1979),
  ('The Lord of the Rings', 'J.R.R. Tolkien', 1954),
  ('Harry Potter and the Sorcerer''s Stone', 'J.K. Rowling', 1997),
  ('The Catcher in the Rye', 'J.D. Salinger', 1951),
  ('To Kill a Mockingbird', 'Harper Lee', 1960),
  ('1984', 'George Orwell', 1949),
  ('The Great Gatsby', 'F. Scott Fitzgerald', 1925);
SQL
done

for i in 1 2 3; do
  peers=""
  for j in 1 2 3; do
    [ "$j" = "$i" ] || peers="${peers:+$peers,}nats://127.0.0.1:$((4220 + j))/"
  done
  "$bin" -config "$here/node-$i.toml" -cluster-addr "127.0.0.1:$((4220 + i))" -cluster-peers "$peers" \
    > "/tmp/harmonylite-$i.log" 2>&1 &
  pids+=($!)
  echo "node $i: pid $!, log /tmp/harmonylite-$i.log"
done

for i in 1 2 3; do
  for _ in $(seq 1 600); do
    grep -q "all processes ready" "/tmp/harmonylite-$i.log" && break
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { echo "node $i exited; its log:"; cat "/tmp/harmonylite-$i.log"; exit 1; }
    sleep 0.1
  done
  grep -q "all processes ready" "/tmp/harmonylite-$i.log" || { echo "node $i is not ready after 60 s"; exit 1; }
done
echo "all three nodes are ready."
echo "  write:  sqlite3 /tmp/harmonylite-1.db \"INSERT INTO Books (title, author, publication_year) VALUES ('Dune', 'Frank Herbert', 1965);\""
echo "  read:   sqlite3 /tmp/harmonylite-2.db 'SELECT * FROM Books;'"
echo "  reload: kill -HUP ${pids[0]}    (restarts node 1's workers one at a time)"

if [ -n "$run_for" ]; then
  sleep "$run_for"
else
  echo "Ctrl-C stops the cluster."
  wait
fi
