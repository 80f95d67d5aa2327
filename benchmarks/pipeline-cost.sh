#!/usr/bin/env bash
# Where a replicated row's instructions go, step by step (valgrind's callgrind counts them the same on a busy or
# an idle machine): `harmonylite-benchmark pipeline-cost` runs every step of the pipeline in one process on real
# SQLite files and a real nats-server (see Sources/benchmark/PipelineCost.swift); this prints each step's
# inclusive instructions per row, for three shapes of load:
#   paced:   1-row transactions, 1 row per message (a trickle: every message carries one row)
#   1-row:   1-row transactions, 32 rows per message (saturation with single-row transactions)
#   100-row: 100-row transactions, 512 rows per message (saturation, a full scan_max_changes read)
# Usage: benchmarks/pipeline-cost.sh [rows, default 20000]
# Environment: HL_SKIP_BUILD=1 uses the release binaries as they are; HL_PIPELINE_SHAPES="1:1 1:32 100:512".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind > /dev/null || { echo "pipeline-cost.sh needs valgrind (apt-get install valgrind)" >&2; exit 1; }
[ -n "${HL_SKIP_BUILD:-}" ] || "$root/scripts/build.sh" > /dev/null
# valgrind cannot read the debug information Swift emits: count a copy without it (the symbols stay).
binary=$(mktemp)
work=$(mktemp -d)
# valgrind cannot spawn a child: the nats-server is started here (stopped by its PID).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
/usr/sbin/nats-server -a 127.0.0.1 -p "$port" -js -sd "$work/js" > "$work/nats.log" 2>&1 &
nats=$!
trap 'kill "$nats" 2> /dev/null; wait "$nats" 2> /dev/null; rm -rf "$binary" "$work"; true' EXIT
export HL_PIPELINE_NATS_URL="nats://127.0.0.1:$port" HL_PIPELINE_NATS_PID="$nats"
sleep 0.5
strip --strip-debug -o "$binary" "$root/.build/release/harmonylite-benchmark"
chmod 700 "$binary"
rows=${1:-20000}
shapes=${HL_PIPELINE_SHAPES:-"1:1 1:32 100:512"}
for shape in $shapes; do
    tx=${shape%%:*}
    per=${shape##*:}
    out="$work/callgrind.$tx.$per"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$binary" pipeline-cost "$tx" "$per" "$rows" > "$work/run.$tx.$per" 2> "$work/valgrind.$tx.$per" \
        || { cat "$work/valgrind.$tx.$per" >&2; exit 1; }
    callgrind_annotate --inclusive=yes --threshold=100 "$out" 2> /dev/null | grep '???:hl_stage_' \
        | sed -E 's/^ *([0-9,]+) .*(hl_stage_[0-9a-z_]+).*/\2 \1/' | tr -d ',' | sort -u -k1,1 > "$work/stages.$tx.$per"
    sed -n 's/.*Collected : \([0-9]*\).*/total \1/p' "$work/valgrind.$tx.$per" >> "$work/stages.$tx.$per"
done
# One table: step, then instructions per row for each shape.
awk -v rows="$rows" -v shapes="$shapes" '
    BEGIN { n = split(shapes, shape, " ") }
    FNR == 1 { file++ }
    { cost[$1, file] = $2; if (!($1 in seen)) { seen[$1] = 1; order[++steps] = $1 } }
    END {
        header = "| step |"; rule = "|---|"
        for (i = 1; i <= n; i++) { split(shape[i], p, ":"); header = header sprintf(" %s-row tx, %s rows/msg |", p[1], p[2]); rule = rule "---|" }
        print header; print rule
        for (s = 1; s <= steps; s++) {
            name = order[s]; label = name; sub(/^hl_stage_[0-9]+_/, "", label)
            line = "| " label " |"
            for (i = 1; i <= n; i++) line = line sprintf(" %.0f |", cost[name, i] / rows)
            print line
        }
    }' $(for shape in $shapes; do echo "$work/stages.${shape%%:*}.${shape##*:}"; done)
for shape in $shapes; do cat "$work/run.${shape%%:*}.${shape##*:}"; done
