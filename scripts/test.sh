#!/usr/bin/env bash
# The one test command (the README's, and what `.ci/run` runs): on a fresh Debian machine it installs
# the system programs the tests drive, then runs every test. A test never skips what it could not
# start; this script is what makes "could not start" not happen on a clean machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Programs the tests run, each with the Debian package that provides it.
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
# (one `need COMMAND PACKAGE` line per program a test drives)
need strace strace   # tests/api/durability.rs: a 2xx follows an fsync of the store

if ((${#missing[@]})); then
  echo "scripts/test.sh: installing ${missing[*]} (apt-get)" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cargo test --locked
