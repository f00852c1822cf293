// Shared by the peer benchmarks: settings from the environment and the printed row.
export const JOBS = Number(process.env.JOBS ?? 20000);
export const LATENCY_JOBS = 200;
export const GAP_MS = 20;
export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const suffix = () => Math.random().toString(36).slice(2, 10);

export function percentile(values, p) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.round((s.length - 1) * p)];
}

export function report(name, setting, jobsPerSec, latencies) {
  const f = (x) => x.toFixed(1);
  console.log(
    `| ${name} | ${setting} | ${JOBS} | ${Math.round(jobsPerSec)} | ${f(percentile(latencies, 0.5))} | ${f(percentile(latencies, 0.99))} |`,
  );
}

/** Adds LATENCY_JOBS jobs GAP_MS apart with `add(sentAtMs)`; resolves with pickup latencies. */
export async function measureLatency(add, picked) {
  for (let i = 0; i < LATENCY_JOBS; i++) {
    await add(performance.timeOrigin + performance.now());
    await sleep(GAP_MS);
  }
  while (picked.length < LATENCY_JOBS) await sleep(10);
  return picked;
}

/** Drops a benchmark schema. */
export async function dropSchema(schema) {
  const { default: pg } = await import("pg");
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await c.end();
}
