// graphile-worker 0.18 with its fastest documented settings: local queue and batched completion.
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import { DATABASE_URL, JOBS, dropSchema, measureLatency, report, sleep, suffix } from "./common.mjs";

const concurrency = Number(process.env.GW_CONCURRENCY ?? 24);
const preset = {
  worker: {
    connectionString: DATABASE_URL,
    schema: `gw_bench_${suffix()}`, // dropped at the end
    concurrentJobs: concurrency,
    maxPoolSize: concurrency + 1,
    pollInterval: 2000,
    localQueue: { size: 500 },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
  },
};
const logger = new Logger(() => () => {});
const utils = await makeWorkerUtils({ preset, logger });
await utils.migrate();

// Throughput.
for (let i = 0; i < JOBS; i += 1000) {
  const n = Math.min(1000, JOBS - i);
  await utils.addJobs(Array.from({ length: n }, () => ({ identifier: "noop", payload: {} })));
}
let done = 0;
const picked = [];
const started = performance.now();
const runner = await run({
  preset,
  logger,
  noHandleSignals: true,
  taskList: {
    noop: async () => {
      done++;
    },
    lat: async (payload) => {
      picked.push(performance.timeOrigin + performance.now() - payload.t);
    },
  },
});
while (done < JOBS) await sleep(5);
const jobsPerSec = JOBS / ((performance.now() - started) / 1000);
await sleep(200);

// Pickup latency: one job at a time, 20 ms apart.
const lat = await measureLatency((t) => utils.addJob("lat", { t }), picked);
report("graphile-worker 0.18", `localQueue 500, completeJobBatchDelay 0, concurrency ${concurrency}`, jobsPerSec, lat);
await runner.stop();
await utils.release();
await dropSchema(preset.worker.schema);
