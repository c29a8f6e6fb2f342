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
need python3 python3                                                 # the OpenAPI conformance gate
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)   # its virtual environment
need chromium chromium                  # tests/api/console_browser.rs: the console in a real browser
need chromedriver chromium-driver       # ... driven over WebDriver
need openssl openssl # tests/api/tls.rs: an independent TLS client offers TLS 1.0/1.1 (refused); the README signs events
need curl curl       # tests/api/readme.rs: the README's examples call the demo server with curl

# The PostgreSQL tests (tests/api/pg.rs) start a throwaway cluster from the server binaries,
# which Debian keeps off PATH in /usr/lib/postgresql/VERSION/bin; the package also creates the
# unprivileged `postgres` user the cluster runs as when the tests run as root. Not needed when
# BILLER_INBOX_TEST_PG_URL names a server the tests may create databases on.
if [ -z "${BILLER_INBOX_TEST_PG_URL:-}" ] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
  && ! command -v initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi

if ((${#missing[@]})); then
  echo "scripts/test.sh: installing ${missing[*]} (apt-get)" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cargo test --locked

# The behaviour suite once more, on PostgreSQL: the same tests (tests/api/helpers.rs picks the
# backend from BILLER_INBOX_TEST_BACKEND), each on a fresh database of a throwaway cluster. The
# modules that test one backend's own machinery (sled's files, fsync and disk; PostgreSQL's
# start-up, replicas and faults) ran above and are not repeated.
BILLER_INBOX_TEST_BACKEND=postgres cargo test --locked --test api -- \
  admin:: binary:: crash:: empayre:: hostile:: orbipay_lookup:: orbipay_postings:: reliability:: \
  replay:: startup:: uniform_errors:: empayre_reconcile::

# The OpenAPI conformance gate: schemathesis and openapi-spec-validator (pinned, from PyPI, into a
# venv under target/ on first use) against the demo server. Alone: bash scripts/conformance.sh
bash scripts/conformance.sh
