// pg-boss 10.4.2: batch fetch, shortest polling interval it allows.
import PgBoss from "pg-boss";
import { DATABASE_URL, JOBS, dropSchema, measureLatency, report, sleep, suffix } from "./common.mjs";

const schema = `pgboss_bench_${suffix()}`;
const boss = new PgBoss({ connectionString: DATABASE_URL, schema, max: 10 });
boss.on("error", (e) => console.error(e));
await boss.start();
await boss.createQueue("noop");
await boss.createQueue("lat");
for (let i = 0; i < JOBS; i += 1000) {
  const n = Math.min(1000, JOBS - i);
  await boss.insert(Array.from({ length: n }, () => ({ name: "noop", data: {} })));
}
let done = 0;
const started = performance.now();
for (let w = 0; w < 4; w++) {
  await boss.work("noop", { batchSize: 100, pollingIntervalSeconds: 0.5 }, async (jobs) => {
    done += jobs.length;
  });
}
while (done < JOBS) await sleep(5);
const jobsPerSec = JOBS / ((performance.now() - started) / 1000);

const picked = [];
await boss.work("lat", { batchSize: 100, pollingIntervalSeconds: 0.5 }, async (jobs) => {
  for (const j of jobs) picked.push(performance.timeOrigin + performance.now() - j.data.t);
});
const lat = await measureLatency((t) => boss.send("lat", { t }), picked);
report("pg-boss 10.4.2", "4 workers, batchSize 100, polling 0.5 s", jobsPerSec, lat);
await boss.stop({ graceful: false, wait: true });
await dropSchema(schema);
process.exit(0);
