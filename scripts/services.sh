#!/usr/bin/env bash
# Installs (from Debian's packages) and starts the real services the test suite uses:
# PostgreSQL (gradebook), Docker, Redis (Celery broker) and Chromium (browser tests). Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

need_pkgs=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_pkgs+=(postgresql)
# Docker (the docker sandbox backend): Debian's engine, and debootstrap for the grading image.
[ -x /usr/bin/docker ] && command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
# Redis (the Celery broker of `autograder worker`) and Chromium (the browser tests drive Debian's
# build through Playwright; `playwright install` downloads browsers and is never used).
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
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

# Redis: loopback only, no persistence needed by the tests (the database is the source of truth
# for jobs; a lost broker message is re-published by the sweeper). Started once; a running server
# (ours or the distribution's service) is left alone.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save "" --appendonly no \
    --logfile /var/log/autograder-redis.log
  for _ in $(seq 1 30); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
    sleep 0.2
  done
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || {
    echo "services: redis-server did not start; see /var/log/autograder-redis.log" >&2
    exit 1
  }
fi
echo "services: redis $(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p') on 127.0.0.1:6379"
echo "services: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium: not runnable') at /usr/bin/chromium"

# Docker: start dockerd if no engine answers, then build the grading image (cached: a build whose
# inputs did not change is skipped in seconds). Debian's /usr/bin/docker is the client here.
docker_cli=/usr/bin/docker
if ! "$docker_cli" info >/dev/null 2>&1; then
  nohup dockerd >/var/log/autograder-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 90); do
    "$docker_cli" info >/dev/null 2>&1 && break
    sleep 1
  done
  "$docker_cli" info >/dev/null 2>&1 || {
    echo "services: dockerd did not start; see /var/log/autograder-dockerd.log" >&2
    tail -n 20 /var/log/autograder-dockerd.log >&2 || true
    exit 1
  }
fi
cd "$(dirname "$0")/.."
make -s .venv/.installed
.venv/bin/autograder image build
echo "services: docker $("$docker_cli" version --format '{{.Server.Version}}'), image autograder-runner:latest"
