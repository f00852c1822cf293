// BullMQ on the local Redis.
import { Queue, Worker } from "bullmq";
import { JOBS, measureLatency, report, sleep, suffix } from "./common.mjs";

const connection = { host: process.env.REDIS_HOST ?? "127.0.0.1", port: Number(process.env.REDIS_PORT ?? 6379) };
const name = `bench_${suffix()}`;
const queue = new Queue(name, { connection });
for (let i = 0; i < JOBS; i += 1000) {
  const n = Math.min(1000, JOBS - i);
  await queue.addBulk(
    Array.from({ length: n }, () => ({ name: "noop", data: {}, opts: { removeOnComplete: true } })),
  );
}
let done = 0;
const picked = [];
const started = performance.now();
const worker = new Worker(
  name,
  async (job) => {
    if (job.name === "lat") picked.push(Date.now() - job.data.t);
    else done++;
  },
  { connection, concurrency: 100 },
);
while (done < JOBS) await sleep(5);
const jobsPerSec = JOBS / ((performance.now() - started) / 1000);
const lat = await measureLatency((t) => queue.add("lat", { t: Date.now() }, { removeOnComplete: true }), picked);
report("BullMQ (Redis)", "concurrency 100", jobsPerSec, lat);
await worker.close();
await queue.obliterate({ force: true });
await queue.close();
process.exit(0);
