/** startEtcd: a real etcd on free ports, clean shutdown, and clear errors when it cannot run. */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { startEtcd } from '../../pkg/devcluster/etcd';

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: existence check only
    return true;
  } catch {
    return false;
  }
}

describe('startEtcd', () => {
  let tmp: string;

  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-launcher-test-'));
  });

  afterEach(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('starts a healthy etcd on free ports, and stop() leaves no process behind', async () => {
    const etcd = await startEtcd({ dataDir: path.join(tmp, 'data') });
    try {
      expect(etcd.endpoint).toBe(`http://127.0.0.1:${etcd.clientPort}`);
      const health = await (await fetch(`${etcd.endpoint}/health`)).json();
      expect(health).toMatchObject({ health: 'true' });
      expect(isRunning(etcd.pid)).toBe(true);
    } finally {
      await etcd.stop();
    }
    expect(isRunning(etcd.pid)).toBe(false);
    await etcd.stop(); // idempotent
  });

  it('reports a missing binary with the install-deps hint', async () => {
    const saved = process.env.SHOAL_ETCD_BIN;
    process.env.SHOAL_ETCD_BIN = '/nonexistent';
    try {
      await expect(startEtcd({ dataDir: path.join(tmp, 'data') })).rejects.toThrow(
        'etcd binary not found (looked for /nonexistent); install it with hack/install-deps.sh',
      );
    } finally {
      if (saved === undefined) delete process.env.SHOAL_ETCD_BIN;
      else process.env.SHOAL_ETCD_BIN = saved;
    }
  });

  it('fails with the tail of etcd output when etcd cannot start', async () => {
    const notADir = path.join(tmp, 'file');
    await fs.writeFile(notADir, 'not a directory');
    await expect(startEtcd({ dataDir: path.join(notADir, 'data') })).rejects.toThrow(/exited with code \d+[\s\S]*last output of etcd:\n.+/);
  });

  // Another etcd already answering /health on the port must not pass for this one, which failed
  // to bind it and exited. A CI failure fits this: a test SIGSTOPped "its" etcd, and etcd kept answering.
  it('fails when another etcd holds the client port, though that one answers the health check', async () => {
    const first = await startEtcd({ dataDir: path.join(tmp, 'first') });
    try {
      await expect(startEtcd({ dataDir: path.join(tmp, 'second'), clientPort: first.clientPort })).rejects.toThrow(/address already in use/);
    } finally {
      await first.stop();
    }
  });
});
