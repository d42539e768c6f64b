#!/usr/bin/env bash
# Set-up shared by `npm run demo` and `npm test`: Node dependencies (Node 24 itself among them, see
# docs/runtime.md), then the local PostgreSQL and Redis when their URLs are not set and nothing answers on
# the default ports. Kafka is started by the TypeScript code itself (infra/kafka/local-broker.ts), which also
# fetches the broker jars on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing Node dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# npm puts node_modules/.bin first on the PATH of every script, so `node` here is the one the scripts run on:
# the project's own Node 24 (the optional dependency `node`) wherever the machine's Node is older.
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 24 ]; then
  echo "setup: this runs on Node $(node --version) ($(command -v node)); lienthong needs Node 24 or later." >&2
  if [ -x node_modules/.bin/node ]; then
    echo "       the project's Node 24 is node_modules/.bin/node: run this through npm (npm test, npm run demo)," >&2
    echo "       which puts it first on the PATH." >&2
  else
    echo "       node_modules/.bin/node is missing: reinstall without --omit=optional or --ignore-scripts" >&2
    echo "       (rm -rf node_modules && npm ci), or install Node 24 LTS on this machine." >&2
  fi
  exit 1
fi
echo "setup: Node $(node --version) ($(command -v node))"

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -z "${REDIS_URL:-}" ] && ! answers 6379; then
  if command -v redis-server >/dev/null; then
    echo "setup: starting Redis on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 1 50); do answers 6379 && break; sleep 0.1; done
  else
    echo "setup: Redis is not running on 127.0.0.1:6379 and redis-server is not installed;" >&2
    echo "       install it (apt-get install -y redis-server) or set REDIS_URL" >&2
    exit 1
  fi
fi

if [ -z "${DATABASE_URL:-}" ] && ! answers 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "setup: starting PostgreSQL on 127.0.0.1:5432"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
    for _ in $(seq 1 100); do answers 5432 && break; sleep 0.1; done
  else
    echo "setup: PostgreSQL is not running on 127.0.0.1:5432 and no local cluster was found;" >&2
    echo "       install it (apt-get install -y postgresql) or set DATABASE_URL" >&2
    exit 1
  fi
fi

# `--browser` (npm test): the ops console's test drives Debian's Chromium through playwright-core, which never
# downloads a browser of its own. Installed from the distribution when missing and this runs as root.
if [ "${1:-}" = "--browser" ] && [ ! -x "${LIENTHONG_CHROMIUM:-/usr/bin/chromium}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Chromium for the console test (apt-get install chromium)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: the console test needs Chromium at /usr/bin/chromium (or LIENTHONG_CHROMIUM):" >&2
    echo "       apt-get install -y chromium" >&2
    exit 1
  fi
fi

# `--bench` (npm run bench): the report measures the raw read rate of a topic with kcat (Debian package kcat).
if [ "${1:-}" = "--bench" ] && ! command -v kcat >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing kcat for the benchmark report's raw-read ceiling (apt-get install kcat)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat >/dev/null
  else
    echo "setup: kcat is not installed; the report will say its raw-read ceiling was not measured" >&2
    echo "       (apt-get install -y kcat)" >&2
  fi
fi
