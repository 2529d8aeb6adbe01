#!/usr/bin/env bash
# Peak memory of a dry run of 100 000 CSV recipients (the `plan` benchmark's
# playbook), measured on the release binary with GNU time.
# Usage: scripts/bench-memory.sh [RECIPIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

sed -n '/^pub const PLAYBOOK: &str = r#"/,/^"#;/p' benches/support/workload.rs | sed '1s/.*r#"//; $d' > "$dir/bench.yaml"
awk -v n="$n" 'BEGIN {
  split("212 312 415 617 713 305 206 303 404 503", areas, " ")
  split("America/New_York America/Chicago America/Los_Angeles Europe/Berlin", zones, " ")
  split("storage;primary storage network dba;oncall", tags, " ")
  print "name,phone,timezone,tags,team"
  for (i = 0; i < n; i++) {
    k = int(i / 10)
    printf "Person %d,+1 (%s) %d-%04d,%s,%s,team-%d\n", i, areas[i % 10 + 1], 230 + int(k / 10000), k % 10000, zones[i % 4 + 1], tags[i % 4 + 1], i % 17
  }
}' > "$dir/people.csv"

cargo build --release --quiet
/usr/bin/time -f "%e s wall, %M KB peak RSS" \
  target/release/callbook run "$dir/bench.yaml" --dry-run --format json --now 2026-11-26T15:00:00Z \
  > "$dir/report.json"
echo "$n recipients, report of $(wc -c < "$dir/report.json") bytes"
