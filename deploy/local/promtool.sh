#!/usr/bin/env bash
# Checks the Prometheus alert rules (deploy/prometheus/alerts.yml) with `promtool check
# rules` and runs their unit tests (`promtool test rules deploy/prometheus/alerts.test.yml`).
#
# promtool comes from Debian's `prometheus` package, pinned below: the .deb is fetched
# with `apt-get download` (no install, no daemon) and only /usr/bin/promtool is unpacked
# into .data/tools/ the first time (and when the pin changes). `make test` runs this.
# Usage: deploy/local/promtool.sh [path to promtool]   (PROMTOOL=... also works)
set -euo pipefail
cd "$(dirname "$0")/../.."
pin="2.42.0+ds-5+deb12u1"
dir=".data/tools/prometheus-$pin"
promtool="${1:-${PROMTOOL:-$dir/promtool}}"
if [[ ! -x "$promtool" ]]; then
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
    echo "promtool: needs apt-get and dpkg-deb to fetch Debian's prometheus $pin (or pass a promtool)" >&2
    exit 1
  fi
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # apt-get download writes as the _apt user when it can: give it a directory it may write.
  chmod 0777 "$work"
  if ! (cd "$work" && apt-get download -q "prometheus=$pin" >/dev/null 2>&1); then
    # The package lists may be missing or stale on a fresh machine.
    apt-get update -q >/dev/null
    (cd "$work" && apt-get download -q "prometheus=$pin" >/dev/null)
  fi
  dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
  mkdir -p "$dir"
  install -m 0755 "$work/x/usr/bin/promtool" "$dir/promtool"
fi
"$promtool" --version 2>&1 | head -1
"$promtool" check rules deploy/prometheus/alerts.yml
"$promtool" test rules deploy/prometheus/alerts.test.yml
