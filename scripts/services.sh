#!/usr/bin/env bash
# Installs (from Debian's packages) and starts the real services the test suite uses:
# PostgreSQL (gradebook), and later Docker and Redis. Idempotent: safe to run again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need_pkgs=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_pkgs+=(postgresql)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# PostgreSQL: one cluster, a role and a database for the tests, on loopback only.
pg_version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
if ! pg_lsclusters -h | grep -q online; then
  pg_lsclusters -h | grep -q . || pg_createcluster "$pg_version" main >/dev/null
  pg_ctlcluster "$pg_version" main start
fi
su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='autograder'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE ROLE autograder LOGIN SUPERUSER PASSWORD 'autograder'\""
su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='autograder_test'\"" | grep -q 1 \
  || su postgres -c "createdb -O autograder autograder_test"
echo "services: postgresql $pg_version on 127.0.0.1:5432 (database autograder_test, user autograder)"
