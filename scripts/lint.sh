#!/usr/bin/env bash
# make lint: shellcheck over every shell script of the project (settings in .shellcheckrc),
# swift format lint over the Swift sources (.swift-format), and the module graph against
# tools/architecture.json (without the binaries: make check-architecture builds them).
# Installs Debian's shellcheck when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v shellcheck >/dev/null; then
  echo "lint: installing shellcheck"
  install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 shellcheck >/dev/null; }
  # A fresh machine may have no package lists yet.
  install 2>/dev/null || { apt-get update -qq && install; }
fi
mapfile -t scripts < <(printf '%s\n' scripts/*.sh scripts/lib/*.sh scripts/swarm/*.sh scripts/services/*.sh deploy/*.sh .ci/run)
shellcheck -x "${scripts[@]}"
echo "lint: shellcheck clean (${#scripts[@]} scripts)"
# The Swift sources against .swift-format (swift-format's defaults but for AlwaysUseLowerCamelCase:
# the snake_case fields are JSON keys and SQL recordset columns, named as on the wire).
swift format lint --strict --recursive --parallel Sources Tests Package.swift
echo "lint: swift format clean"
tools/check-architecture
