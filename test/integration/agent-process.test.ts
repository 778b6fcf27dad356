/**
 * An agent with the real process runtime on a real etcd: what a user's `cmd` does becomes Task
 * status (RUNNING, FINISHED, FAILED with its exit code, KILLED), and an agent restart adopts the
 * processes it left running (same pid) and reports the ones that ended while it was down.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../pkg/agent/agent';
import { ProcessRuntime } from '../../pkg/runtime/process';
import { EtcdStore } from '../../pkg/store/etcd';
import { startTaskStatusRelay, type RunningRelay } from '../harness/relay';
import { assignmentKey } from '../../pkg/store/objects';
import { createLogger, silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { until } from '../harness/wait';
import { bindTask, readTask } from '../harness/tasks';

const log = process.env.DEBUG_AGENT ? createLogger('test', { level: 'debug' }) : silentLogger();
let store: EtcdStore;
let prefix: string;
let dataDir: string;
/** Folds the agent's reports into Tasks, as the controller-manager does. */
let relay: RunningRelay;

beforeAll(async () => {
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
  prefix = uniquePrefix().slice(0, -1);
  dataDir = mkdtempSync(join(tmpdir(), 'shoal-agent-process-'));
  relay = await startTaskStatusRelay(store, prefix);
});
afterAll(async () => {
  await relay.stop();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const stateOf = async (name: string) => (await readTask(store, prefix, name))?.status;

function agent(): Agent {
  const runtime = new ProcessRuntime({ dataDir, node: { hostname: 'host-p', nodeName: 'proc-1' }, logger: log });
  return new Agent({ store, prefix, nodeName: 'proc-1', runtime, runtimes: ['process'], capacity: { cpus: 2, mem: 512, disk: 0, ports: [[31000, 31010]] }, leaseTtlSeconds: 5, logger: log });
}

async function bind(name: string, cmd: string): Promise<void> {
  await bindTask(store, prefix, 'proc-1', name, { cmd, ports: [{ name: 'http', hostPort: 31001 }] }, { owner: 'demo' });
}

it('reportsWhatTheCommandDoesAndAdoptsAcrossAnAgentRestart', async () => {
  const first = agent();
  await first.start();
  await bind('ok', 'test "$PORT0" = 31001 && test "$SHOAL_APP_ID" = demo && test "$HOST" = host-p');
  await bind('bad', 'exit 3');
  await bind('long', 'sleep 300');
  await bind('ends-later', 'sleep 2; exit 4');
  await bind('vanishes', 'sleep 300');
  await until('ok FINISHED', async () => (await stateOf('ok'))?.state === 'FINISHED');
  expect(await stateOf('ok')).toMatchObject({ exitCode: 0 });
  await until('bad FAILED', async () => (await stateOf('bad'))?.state === 'FAILED');
  expect(await stateOf('bad')).toMatchObject({ exitCode: 3, message: 'exited with code 3' });
  await until('long RUNNING', async () => (await stateOf('long'))?.state === 'RUNNING');
  const pid = (await stateOf('long'))!.pid;
  expect(pid).toEqual(expect.any(Number));

  await until('vanishes RUNNING', async () => (await stateOf('vanishes'))?.state === 'RUNNING');
  const vanishingPid = (await stateOf('vanishes'))!.pid!;

  // The agent dies; its processes do not. One ends while nobody watches; one disappears without
  // a trace (as after a host reboot).
  first.crash();
  process.kill(-vanishingPid, 'SIGKILL');
  for (const dir of readdirSync(join(dataDir, 'tasks', 'default')).filter((d) => d.startsWith('vanishes-'))) {
    rmSync(join(dataDir, 'tasks', 'default', dir), { recursive: true, force: true });
  }
  await new Promise((r) => setTimeout(r, 2500));
  const second = agent();
  await second.start();
  await until('ends-later reported FAILED with its code', async () => (await stateOf('ends-later'))?.state === 'FAILED', 10_000);
  expect(await stateOf('ends-later')).toMatchObject({ exitCode: 4 });
  await until('vanishes LOST, not started again', async () => (await stateOf('vanishes'))?.state === 'LOST');
  expect(await stateOf('vanishes')).toMatchObject({ reason: 'TaskGone' });
  expect(second.runningTasks()).not.toContain('default/vanishes');
  expect(second.runningTasks()).toContain('default/long');
  expect(() => process.kill(pid!, 0)).not.toThrow(); // same process: adopted, not restarted
  expect((await stateOf('long'))!.pid).toBe(pid);

  // Removing the assignment kills it (SIGTERM to its group) and reports KILLED.
  await store.delete(assignmentKey(prefix, 'proc-1', 'default', 'long'));
  await until('long KILLED', async () => (await stateOf('long'))?.state === 'KILLED');
  expect(() => process.kill(pid!, 0)).toThrow();
  await second.stop({ revoke: true });
}, 30_000);

it('finishesAKillThatAnEarlierAgentProcessDidNotLiveToReport', async () => {
  const first = agent();
  await first.start();
  await bind('doomed', 'sleep 300');
  await until('doomed RUNNING', async () => (await stateOf('doomed'))?.state === 'RUNNING');
  const pid = (await stateOf('doomed'))!.pid!;
  // The kill as the earlier agent process got through it: the assignment withdrawn, KILLING
  // written, the process stopped, and then the agent SIGKILLed before its KILLED was written.
  first.crash();
  await store.delete(assignmentKey(prefix, 'proc-1', 'default', 'doomed'));
  const key = `${prefix}/registry/tasks/default/doomed`;
  const kv = (await store.get(key))!;
  const task = JSON.parse(kv.value);
  await store.update(key, JSON.stringify({ ...task, status: { ...task.status, state: 'KILLING' } }), kv.modRevision);
  process.kill(-pid, 'SIGKILL');
  await until('its process gone', async () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  });
  const second = agent();
  await second.start();
  await until('doomed KILLED', async () => (await stateOf('doomed'))?.state === 'KILLED', 10_000);
  expect(await stateOf('doomed')).toMatchObject({ reason: 'TaskKilled', message: 'ended while agent proc-1 was down; no longer assigned' });
  await until('its leftovers removed', async () => readdirSync(join(dataDir, 'tasks', 'default')).every((d) => !d.startsWith('doomed-')));
  await second.stop({ revoke: true });
}, 30_000);
