#!/usr/bin/env bash
# make bench-clients: AMQPClient's confirmed-publish and consume rates beside pika's, measured
# in the same run against the same 3-node cluster, with the same queue type, message count,
# size, window of unconfirmed publishes and prefetch. A benchmark, not a test: it prints ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES=${MESSAGES:-20000}
SIZE=${SIZE:-256}
WINDOW=${WINDOW:-1000}
PREFETCH=${PREFETCH:-500}
ROUNDS=${ROUNDS:-3}

scripts/services.sh install --profile test
venv=.venv-bench
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" 2>/dev/null || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q pika
fi
swift build -c release --static-swift-stdlib --product fog-bench

run() {
  local swift_out=() pika_out=()
  # Queue on rmq1 for both; rounds alternate so neither always runs on a warmer broker.
  local url=${FOG_TEST_BROKER_URL%%,*}
  for _ in $(seq "$ROUNDS"); do
    swift_out+=("$(.build/release/fog-bench clients --broker-url "$url" --queue fog.bench.swift \
      --messages "$MESSAGES" --size "$SIZE" --window "$WINDOW" --prefetch "$PREFETCH" 2>/dev/null)")
    pika_out+=("$("$venv/bin/python" Benchmarks/pika/bench_pika.py --broker-url "$url" --queue fog.bench.pika \
      --messages "$MESSAGES" --size "$SIZE" --window "$WINDOW" --prefetch "$PREFETCH")")
  done
  printf '%s\n' "${swift_out[@]}" >/tmp/fog-bench-swift.jsonl
  printf '%s\n' "${pika_out[@]}" >/tmp/fog-bench-pika.jsonl
  python3 - /tmp/fog-bench-swift.jsonl /tmp/fog-bench-pika.jsonl <<'PY'
import json, statistics, sys
swift = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
pika = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
def median(rows, key): return statistics.median(r[key] for r in rows)
print(f"{'client':<22}{'publish msg/s':>15}{'consume msg/s':>15}   (median of {len(swift)} rounds, {swift[0]['messages']} msgs of {swift[0]['size']} B)")
for name, rows in (("swift AMQPClient", swift), (pika[0]["client"], pika)):
    print(f"{name:<22}{median(rows, 'publish_per_s'):>15,.0f}{median(rows, 'consume_per_s'):>15,.0f}")
print(f"{'ratio swift/pika':<22}{median(swift, 'publish_per_s') / median(pika, 'publish_per_s'):>15.2f}"
      f"{median(swift, 'consume_per_s') / median(pika, 'consume_per_s'):>15.2f}")
PY
}
export -f run
export MESSAGES SIZE WINDOW PREFETCH ROUNDS venv
scripts/with-test-services.sh bash -c run
