/**
 * etcd baselines, measured on the scenario's own etcd in the same run, so every figure that
 * compares against etcd compares against this machine's etcd right now:
 * - etcdSequentialPutsPerSecond: one awaited put at a time (what one client round trip costs);
 * - etcdConcurrentPutsPerSecond: 64 puts in flight (what etcd sustains with pipelining);
 * - etcdBatchedKeysPerSecond: keys per second written as transactions of 128 puts, one at a time.
 * Values are 512 bytes (a small object); every key is deleted afterwards.
 */
import { Etcd3, type IRequestOp } from 'etcd3';
import type { Figures } from './lib';

const VALUE = Buffer.alloc(512, 'x');
const PREFIX = '/bench-baseline/';
const CONCURRENCY = 64;
const BATCH = 128;

export async function etcdBaselines(endpoint: string, seconds = 3): Promise<Figures> {
  const client = new Etcd3({ hosts: [endpoint] });
  try {
    await client.put(`${PREFIX}warmup`).value('x');
    const seq = await forSeconds(seconds, 1, async (i) => void (await client.put(`${PREFIX}seq/${i}`).value(VALUE)));
    const conc = await forSeconds(seconds, CONCURRENCY, async (i) => void (await client.put(`${PREFIX}conc/${i}`).value(VALUE)));
    const batched = await forSeconds(seconds, 1, async (i) => {
      const ops: IRequestOp[] = Array.from({ length: BATCH }, (_, j) => ({ request_put: { key: Buffer.from(`${PREFIX}batch/${i}/${j}`), value: VALUE } }));
      await client.kv.txn({ success: ops });
    });
    await client.delete().prefix(PREFIX);
    return {
      etcdSequentialPutsPerSecond: Math.round(seq),
      etcdConcurrentPutsPerSecond: Math.round(conc),
      etcdBatchedKeysPerSecond: Math.round(batched * BATCH),
    };
  } finally {
    client.close();
  }
}

/** Runs `op` from `workers` loops for `seconds`; returns completed ops per second. */
async function forSeconds(seconds: number, workers: number, op: (i: number) => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  let n = 0;
  let seq = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (process.hrtime.bigint() < end) {
        await op(seq++);
        n++;
      }
    }),
  );
  return n / (Number(process.hrtime.bigint() - start) / 1e9);
}
