#!/usr/bin/env bash
# The test command (README): every test, with the Ray ones inside a private network namespace
# (`unshare -n`, loopback up) so that every Ray address is 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
  exec unshare -n bash -c 'ip link set lo up && exec python -m pytest -q "$@"' _ "$@"
fi
echo "tests/run.sh: no private network namespace here (needs root and unshare); Ray tests will be skipped" >&2
exec python -m pytest -q -m "not ray" "$@"
