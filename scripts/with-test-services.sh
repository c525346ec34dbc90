#!/usr/bin/env bash
# Runs a command with the test services up and their FOG_TEST_* variables exported:
# starts them (test profile: own ports and folder, so a running demo is untouched) unless
# they are already running, and stops afterwards only what this run started.
#
#   scripts/with-test-services.sh COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
services="$here/services.sh"

started=no
if ! "$services" status --profile test >/dev/null 2>&1; then
  "$services" up --profile test >/dev/null
  started=yes
fi

stop_started() {
  if [ "$started" = yes ] && [ "${FOG_KEEP_TEST_SERVICES:-}" != 1 ]; then
    "$services" down --profile test || true
  fi
}
trap stop_started EXIT

# shellcheck source=/dev/null # written by services.sh up
. "${FOG_SVC_STATE_DIR:-/var/tmp/fogscheduler/test}/env"
"$@"
