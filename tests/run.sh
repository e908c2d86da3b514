#!/usr/bin/env bash
# The test command (README): every test, with the Ray ones inside a private network namespace
# (`unshare -n`, loopback up) so that every Ray address is 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
# tests/test_report.py opens the HTML report in headless Chromium; installs cannot happen inside the
# namespace (no network), so fetch it here when missing (Debian package, root only)
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && { apt-get update -q >/dev/null 2>&1 || true; } \
      && apt-get install -y -q chromium >/dev/null 2>&1; then
    echo "tests/run.sh: installed chromium for the report test" >&2
  else
    echo "tests/run.sh: no chromium and cannot install it (needs root and apt-get); the report's browser test will be skipped" >&2
  fi
fi
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
  exec unshare -n bash -c 'ip link set lo up && exec python -m pytest -q "$@"' _ "$@"
fi
echo "tests/run.sh: no private network namespace here (needs root and unshare); Ray tests will be skipped" >&2
exec python -m pytest -q -m "not ray" "$@"
