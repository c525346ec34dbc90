#!/usr/bin/env bash
# make test: install what is missing, build, and run every test (unit, integration and the
# attack suites) against real RabbitMQ, Redis and PostgreSQL started by scripts/services.sh.
# make test-security (scripts/test.sh --security) runs the attack suites alone (Security* in
# Tests/SchedulerTests/Security); make test-chaos (--chaos) runs the chaos run, which make test
# skips: nine faults under a load of 5,400 tasks, about 6 minutes, its table to docs/CHAOS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

selection=()
case "${1:-}" in
  --security) shift; selection=(--filter Security) ;;
  --chaos)
    # The chaos run (Tests/SchedulerTests/Chaos, docs/CHAOS.md): skipped without FOG_CHAOS=1.
    shift; selection=(--filter Chaos)
    export FOG_CHAOS=1 FOG_CHAOS_REPORT=${FOG_CHAOS_REPORT:-$PWD/docs/CHAOS.md} ;;
esac

scripts/services.sh install --profile test
command -v swift >/dev/null || { echo "test: swift is not on PATH (expected /opt/swift/usr/bin)" >&2; exit 1; }

echo "== building (debug, with tests)"
swift build --build-tests

# The suites that need no server (the pure core, the simulator, the fog node's decisions and
# sandbox parts, the client helpers, the AMQP confirm ledger, settings and API codes) run
# first, in parallel: they share nothing.
pure='^((FogCoreTests|FogSimulatorTests|FogNodeTests|ClientSupportTests)\.'
pure+='|AMQPClientTests\.(AMQPConfigurationTests|ConfirmLedgerTests)/'
pure+='|SchedulerTests\.(APIErrorCodeTests|PlacementSettingsTests|SettingsFuzzTests|ServiceSettingsTests)/)'
if [ "${#selection[@]}" = 0 ] && [ "$#" = 0 ]; then
  echo "== running the tests that need no server, in parallel"
  swift test --skip-build --filter "$pure"
  selection=(--skip "$pure")
fi

echo "== running tests against the test services"
# Integration tests share the services and some kill their processes: run them one at a time.
scripts/with-test-services.sh swift test --skip-build --no-parallel "${selection[@]}" "$@"
