/**
 * The process runtime with real processes in a temp data dir: environment and work dir, exit
 * codes (including signals), stop by process group with the grace period, adoption by a
 * restarted agent (and refusal of recycled pids), logs, exec and cleanup.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TaskSpec } from '../../pkg/api/types.generated';
import { ProcessRuntime, TaskAlreadyRanError, TaskNotFoundError, UNKNOWN_EXIT_CODE } from '../../pkg/runtime/process';
import type { RuntimeTask } from '../../pkg/runtime/types';
import { silentLogger } from '../../pkg/util/log';
import { until } from '../harness/wait';

const node = { hostname: 'host-test', nodeName: 'n1' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dataDir: string;
const runtimes: ProcessRuntime[] = [];
const started: RuntimeTask[] = [];

beforeEach(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-process-'));
});
afterEach(async () => {
  const rt = runtime();
  await Promise.all(started.splice(0).map((t) => rt.stop(t.namespace, t.name, 0)));
  runtimes.splice(0).forEach((r) => r.close());
  await fs.rm(dataDir, { recursive: true, force: true });
});

function runtime(): ProcessRuntime {
  const rt = new ProcessRuntime({ dataDir, node, logger: silentLogger(), pollIntervalMs: 100 });
  runtimes.push(rt);
  return rt;
}

function task(cmd: string | undefined, spec: Partial<TaskSpec> = {}): RuntimeTask {
  const t: RuntimeTask = {
    namespace: 'default',
    name: `t-${randomUUID().slice(0, 6)}`,
    uid: randomUUID(),
    spec: { role: '*', cmd, resources: { cpus: 0.1, mem: 32, disk: 0 }, ports: [], healthChecks: [], readinessChecks: [], taskKillGracePeriodSeconds: 1, ...spec },
    owner: 'web',
  };
  started.push(t);
  return t;
}

/** An onExit that records its calls. */
function exits(): { codes: number[]; onExit: (code: number) => void } {
  const codes: number[] = [];
  return { codes, onExit: (code) => codes.push(code) };
}

/** The task's own dir (its cwd and HOME). */
async function workDir(rt: ProcessRuntime, t: RuntimeTask): Promise<string> {
  return (await rt.inspect(t.namespace, t.name))!.workDir;
}

/** The agent's dir of the task (task.json, stdout, stderr), which holds its work dir. */
async function recordDir(rt: ProcessRuntime, t: RuntimeTask): Promise<string> {
  return (await rt.inspect(t.namespace, t.name))!.dir;
}

/** Starts a task and returns its pid (the process runtime always reports one). */
async function run(rt: ProcessRuntime, t: RuntimeTask, onExit: (code: number) => void): Promise<number> {
  const { pid } = await rt.start(t, onExit);
  if (pid === undefined) throw new Error('no pid');
  return pid;
}

/** Whether `pid` runs; a zombie (ended, not yet reaped by whoever inherited it) does not. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.on('data', (c: Buffer) => (text += c.toString()));
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
  });
}

describe('ProcessRuntime', () => {
  it('runsTheCmdInItsWorkDirWithOnlyTheTasksEnvironment', async () => {
    process.env.SHOAL_TEST_SECRET = 'agent-secret';
    try {
      const rt = runtime();
      const t = task('env > env.out; pwd > pwd.out; echo out; echo err >&2', { env: { GREETING: 'hi' }, ports: [{ name: 'http', hostPort: 31234, protocol: 'tcp' }] });
      const e = exits();
      const pid = await run(rt, t, e.onExit);
      expect(pid).toBeGreaterThan(1);
      await until('exit', async () => e.codes.length > 0);
      const dir = await workDir(rt, t);
      const records = await recordDir(rt, t);
      expect(records).toBe(path.join(dataDir, 'tasks', 'default', `${t.name}-${t.uid.slice(0, 8)}`));
      expect(dir).toBe(path.join(records, 'work'));
      const env = Object.fromEntries((await fs.readFile(path.join(dir, 'env.out'), 'utf8')).trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      expect(env).toMatchObject({ PORT0: '31234', PORT_HTTP: '31234', HOST: 'host-test', SHOAL_TASK_ID: t.name, SHOAL_APP_ID: 'web', GREETING: 'hi', HOME: dir });
      expect(env.PATH).toBe('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
      expect(env.SHOAL_TEST_SECRET).toBeUndefined();
      const allowed = ['PORT0', 'PORT_HTTP', 'PORT', 'PORTS', 'HOST', 'SHOAL_NODE', 'SHOAL_NAMESPACE', 'SHOAL_TASK_ID', 'SHOAL_APP_ID', 'GREETING', 'HOME', 'PATH', 'PWD', 'USER', 'LOGNAME'];
      expect(Object.keys(env).filter((k) => !allowed.includes(k))).toEqual([]);
      expect((await fs.readFile(path.join(dir, 'pwd.out'), 'utf8')).trim()).toBe(await fs.realpath(dir));
      expect(await fs.readFile(path.join(records, 'stdout'), 'utf8')).toBe('out\n');
      expect(await fs.readFile(path.join(records, 'stderr'), 'utf8')).toBe('err\n');
      const record = JSON.parse(await fs.readFile(path.join(records, 'task.json'), 'utf8'));
      expect(record).toMatchObject({ namespace: 'default', name: t.name, uid: t.uid, pid });
    } finally {
      delete process.env.SHOAL_TEST_SECRET;
    }
  });

  it('reportsExitCodesOnce', async () => {
    const rt = runtime();
    const ok = exits();
    const bad = exits();
    await rt.start(task('exit 0'), ok.onExit);
    await rt.start(task('exit 3'), bad.onExit);
    await until('both exits', async () => ok.codes.length > 0 && bad.codes.length > 0);
    await sleep(200);
    expect(ok.codes).toEqual([0]);
    expect(bad.codes).toEqual([3]);
    expect(await rt.list()).toEqual([]); // dirs of ended tasks are not running tasks
  });

  it('reports128PlusTheSignalOfAKilledProcess', async () => {
    const rt = runtime();
    const self = exits();
    await rt.start(task('kill -TERM $$'), self.onExit);
    const outside = exits();
    const pid = await run(rt, task('sleep 30'), outside.onExit);
    await sleep(100);
    process.kill(-pid, 'SIGKILL'); // the whole group, wrapper included: only the child handle knows
    await until('both exits', async () => self.codes.length > 0 && outside.codes.length > 0);
    expect(self.codes).toEqual([143]);
    expect(outside.codes).toEqual([137]);
  });

  it('stopsTheWholeGroupWithSigtermAndReportsNoExit', async () => {
    const rt = runtime();
    const e = exits();
    const t = task("trap 'echo got-term; exit 0' TERM; sleep 100 & echo $! > child.pid; wait");
    const pid = await run(rt, t, e.onExit);
    const dir = await workDir(rt, t);
    const childPid = await until('child pid', async () => Number(await fs.readFile(path.join(dir, 'child.pid'), 'utf8').catch(() => '')) || undefined);
    const begun = Date.now();
    await rt.stop(t.namespace, t.name, 5);
    expect(Date.now() - begun).toBeLessThan(2000); // TERM sufficed: no wait for the grace period
    expect(alive(pid)).toBe(false);
    expect(alive(childPid)).toBe(false);
    expect(await fs.readFile(path.join(await recordDir(rt, t), 'stdout'), 'utf8')).toContain('got-term');
    await sleep(200);
    expect(e.codes).toEqual([]);
    await rt.stop(t.namespace, t.name, 5); // stopping again, or an unknown task, does nothing
    await rt.stop('default', 'no-such-task', 5);
  });

  it('sigkillsTheGroupAfterTheGraceWhenTermIsIgnored', async () => {
    const rt = runtime();
    const e = exits();
    const t = task("trap '' TERM; sleep 100 & echo $! > child.pid; sleep 100");
    const pid = await run(rt, t, e.onExit);
    const dir = await workDir(rt, t);
    const childPid = await until('child pid', async () => Number(await fs.readFile(path.join(dir, 'child.pid'), 'utf8').catch(() => '')) || undefined);
    const begun = Date.now();
    await rt.stop(t.namespace, t.name, 1);
    const took = Date.now() - begun;
    expect(took).toBeGreaterThanOrEqual(950);
    expect(took).toBeLessThan(2500);
    expect(alive(pid)).toBe(false);
    expect(alive(childPid)).toBe(false);
    await sleep(200);
    expect(e.codes).toEqual([]);
  });

  it('letsARestartedAgentAdoptARunningTaskAndSeeItsExitCode', async () => {
    const first = runtime();
    const e1 = exits();
    const t = task('while [ ! -f go ]; do sleep 0.05; done; exit 7');
    const pid = await run(first, t, e1.onExit);
    const dir = await workDir(first, t);
    first.close(); // the agent dies; the process does not

    const second = runtime();
    expect(await second.list()).toEqual([{ namespace: t.namespace, name: t.name, uid: t.uid }]);
    const e2 = exits();
    expect(await second.adopt({ namespace: t.namespace, name: t.name, uid: t.uid }, e2.onExit)).toBe(true);
    expect(await second.start(t, e2.onExit)).toEqual({ pid }); // idempotent: no second copy
    await fs.writeFile(path.join(dir, 'go'), '');
    await until('adopted exit', async () => e2.codes.length > 0);
    await sleep(300);
    expect(e2.codes).toEqual([7]);
    expect(e1.codes).toEqual([]);
    expect(await second.list()).toEqual([]);
    expect(await second.inspect(t.namespace, t.name)).toMatchObject({ running: false, exitCode: 7, pid });
    await expect(second.start(t, e2.onExit)).rejects.toThrow(TaskAlreadyRanError); // a task never runs twice
  });

  it('stopsATaskOfAnEarlierAgentWithoutAdoptingItFirst', async () => {
    const first = runtime();
    const t = task('sleep 100');
    const pid = await run(first, t, () => undefined);
    first.close();
    const second = runtime();
    await second.stop(t.namespace, t.name, 1);
    expect(alive(pid)).toBe(false);
    expect(await second.list()).toEqual([]);
  });

  it('reportsAnUnknownCodeForAnAdoptedTaskWhoseWrapperWasSigkilled', async () => {
    const first = runtime();
    const t = task('sleep 100');
    const pid = await run(first, t, () => undefined);
    first.close();
    const second = runtime();
    const e = exits();
    await second.adopt({ namespace: t.namespace, name: t.name, uid: t.uid }, e.onExit);
    process.kill(-pid, 'SIGKILL');
    await until('adopted exit', async () => e.codes.length > 0);
    expect(e.codes).toEqual([UNKNOWN_EXIT_CODE]);
  });

  it('neverAdoptsARecycledPid', async () => {
    const rt = runtime();
    const live = task('sleep 100');
    const pid = await run(rt, live, () => undefined);
    const liveDir = await recordDir(rt, live);
    const record = JSON.parse(await fs.readFile(path.join(liveDir, 'task.json'), 'utf8'));
    // A stale dir whose pid now belongs to another process (this test's own, alive).
    const ghost = path.join(dataDir, 'tasks', 'default', 'ghost-abcdef12');
    await fs.mkdir(ghost, { recursive: true });
    await fs.writeFile(path.join(ghost, 'task.json'), JSON.stringify({ ...record, name: 'ghost', uid: 'abcdef12-0', pid: process.pid }));
    const restarted = runtime();
    expect((await restarted.list()).map((r) => r.name)).toEqual([live.name]);
    await restarted.stop('default', 'ghost', 0); // must not signal the pid's new owner
    expect(alive(process.pid)).toBe(true);
    expect((await restarted.inspect('default', 'ghost'))?.running).toBe(false);
    expect(alive(pid)).toBe(true);
  });

  it('tailsAndFollowsLogs', async () => {
    const rt = runtime();
    const e = exits();
    const t = task('for i in 1 2 3 4 5; do echo line$i; done; echo err1 >&2; while [ ! -f go ]; do sleep 0.05; done; echo late; exit 0');
    await rt.start(t, e.onExit);
    const dir = await workDir(rt, t);
    await until('output', async () => (await fs.readFile(path.join(await recordDir(rt, t), 'stderr'), 'utf8')).includes('err1'));
    expect(await readStream(rt.logs(t.namespace, t.name, { tail: 2, stream: 'stdout' }))).toBe('line4\nline5\n');
    expect(await readStream(rt.logs(t.namespace, t.name, { stream: 'stderr' }))).toBe('err1\n');
    expect(await readStream(rt.logs(t.namespace, t.name, { tail: 1 }))).toBe('line5\nerr1\n');
    const followed = readStream(rt.logs(t.namespace, t.name, { tail: 1, follow: true, stream: 'stdout' }));
    await sleep(300);
    await fs.writeFile(path.join(dir, 'go'), '');
    expect(await followed).toBe('line5\nlate\n'); // ends by itself once the task exits
    expect(e.codes).toEqual([0]);
    await expect(readStream(rt.logs('default', 'no-such-task'))).rejects.toThrow(TaskNotFoundError);
  });

  it('tailsASnapshotWhileTheTaskKeepsWriting', async () => {
    // Without follow, tail=N is N lines as they were when asked, not those plus what the task
    // wrote while they were read (the standalone-agent e2e once got two lines for tail=1).
    const rt = runtime();
    const t = task('i=0; while true; do i=$((i+1)); echo "line $i"; done');
    await rt.start(t, () => undefined);
    await until('output', async () => (await fs.stat(path.join(await recordDir(rt, t), 'stdout'))).size > 0);
    for (let n = 0; n < 20; n++) expect(await readStream(rt.logs(t.namespace, t.name, { tail: 1, stream: 'stdout' }))).toMatch(/^line \d+\n$/);
    expect((await readStream(rt.logs(t.namespace, t.name, { tail: 3, stream: 'stdout' }))).split('\n')).toHaveLength(4);
  });

  it('givesOnlyWholeLinesForTailWhileALineIsBeingWritten', async () => {
    // A line caught half-written (the flaky "line 9122" without its newline above) is not a line
    // yet: tail stops before it while the task runs; the whole log and an ended task's tail have it.
    const rt = runtime();
    const t = task("printf 'a\\nb\\npart'; exec sleep 30");
    await rt.start(t, () => undefined);
    await until('output', async () => (await fs.stat(path.join(await recordDir(rt, t), 'stdout'))).size === 8);
    expect(await readStream(rt.logs(t.namespace, t.name, { tail: 1, stream: 'stdout' }))).toBe('b\n');
    expect(await readStream(rt.logs(t.namespace, t.name, { tail: 5, stream: 'stdout' }))).toBe('a\nb\n');
    expect(await readStream(rt.logs(t.namespace, t.name, { stream: 'stdout' }))).toBe('a\nb\npart');
    await rt.stop(t.namespace, t.name, 0);
    expect(await readStream(rt.logs(t.namespace, t.name, { tail: 1, stream: 'stdout' }))).toBe('part');
  });

  it('endsAFollowWhenTheConsumerDestroysIt', async () => {
    const rt = runtime();
    const t = task('echo hello; sleep 100');
    await rt.start(t, () => undefined);
    const stream = rt.logs(t.namespace, t.name, { follow: true }) as NodeJS.ReadableStream & { destroy(): void };
    const first = await new Promise<string>((resolve) => stream.once('data', (c: Buffer) => resolve(c.toString())));
    expect(first).toBe('hello\n');
    const closed = new Promise((resolve) => stream.once('close', resolve));
    stream.destroy();
    await closed;
  });

  it('execsHealthCheckCommandsInTheTasksDirAndEnvWithATimeout', async () => {
    const rt = runtime();
    const t = task('sleep 100', { env: { FOO: 'bar' } });
    await rt.start(t, () => undefined);
    const dir = await workDir(rt, t);
    const ok = await rt.exec(t.namespace, t.name, 'echo $FOO; pwd; echo oops >&2; exit 2', 5);
    expect(ok).toEqual({ exitCode: 2, output: `bar\n${await fs.realpath(dir)}\noops\n`, timedOut: false });
    const begun = Date.now();
    const slow = await rt.exec(t.namespace, t.name, 'sleep 10 & echo started; wait', 1);
    expect(slow).toMatchObject({ exitCode: 124, timedOut: true, output: 'started\n' });
    expect(Date.now() - begun).toBeLessThan(2500);
    await expect(rt.exec('default', 'no-such-task', 'true', 1)).rejects.toThrow(TaskNotFoundError);
  });

  it('rejectsAContainerOnlyTaskClearly', async () => {
    const rt = runtime();
    const t = task(undefined, { container: { image: 'busybox' } });
    await expect(rt.start(t, () => undefined)).rejects.toThrow(`task default/${t.name} has no cmd; the process runtime cannot run container images`);
  });

  it('removesTheWorkDirOfAStoppedTaskOnly', async () => {
    const rt = runtime();
    const t = task('sleep 100');
    await rt.start(t, () => undefined);
    const dir = await workDir(rt, t);
    await expect(rt.remove(t.namespace, t.name)).rejects.toThrow(/still runs/);
    await rt.stop(t.namespace, t.name, 0);
    await rt.remove(t.namespace, t.name);
    await expect(fs.stat(dir)).rejects.toThrow(/ENOENT/);
    expect(await rt.inspect(t.namespace, t.name)).toBeUndefined();
  });
});
