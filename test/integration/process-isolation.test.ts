/**
 * Issue 15 item 3 with real processes: a process task runs as a uid of its own (not root), cannot
 * list the agent's data dir nor read its records, another task's work dir or /etc/shadow, runs
 * in a cgroup with its limits, and is OOM-killed (and reported so) past its memory limit.
 * Needs root (to switch users and make cgroups); skipped otherwise.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmdirSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TaskSpec } from '../../pkg/api/types.generated';
import { probeHost } from '../../pkg/runtime/cgroups';
import { ProcessRuntime, type TaskRecord } from '../../pkg/runtime/process';
import { DEFAULT_TASK_UIDS } from '../../pkg/runtime/task-users';
import type { ExitDetail, RuntimeTask } from '../../pkg/runtime/types';
import { silentLogger } from '../../pkg/util/log';
import { until } from '../harness/wait';

const isRoot = process.getuid?.() === 0;
const cgroups = isRoot ? probeHost().host : undefined;
const describeAsRoot = isRoot ? describe : describe.skip;
const itWithCgroups = cgroups ? it : it.skip;
const node = { hostname: 'host-test', nodeName: 'n1' };
const cgroupParent = `/shoal-test-${randomUUID().slice(0, 8)}`;

let dataDir: string;
let rt: ProcessRuntime;
const started: RuntimeTask[] = [];

beforeEach(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-isolation-'));
  rt = new ProcessRuntime({ dataDir, node, logger: silentLogger(), pollIntervalMs: 100, cgroupParent });
});
afterEach(async () => {
  await Promise.all(started.splice(0).map((t) => rt.stop(t.namespace, t.name, 0)));
  rt.close();
  await fs.rm(dataDir, { recursive: true, force: true });
});
afterAll(() => {
  if (!cgroups) return;
  const roots = cgroups.version === 2 ? [cgroups.root] : Object.values(cgroups.roots);
  for (const root of roots) if (existsSync(path.join(root!, cgroupParent))) rmdirSync(path.join(root!, cgroupParent));
});

function task(cmd: string, spec: Partial<TaskSpec> = {}): RuntimeTask {
  const t: RuntimeTask = {
    namespace: 'default',
    name: `iso-${randomUUID().slice(0, 6)}`,
    uid: randomUUID(),
    spec: { role: '*', cmd, resources: { cpus: 0.5, mem: 64, disk: 0 }, ports: [], healthChecks: [], readinessChecks: [], taskKillGracePeriodSeconds: 1, ...spec },
  };
  started.push(t);
  return t;
}

/** Starts `t` and resolves with its exit code and detail once it ends. */
async function runToEnd(t: RuntimeTask): Promise<{ code: number; detail?: ExitDetail }> {
  let ended: { code: number; detail?: ExitDetail } | undefined;
  await rt.start(t, (code, detail) => (ended = { code, detail }));
  return until('exit', async () => ended, 20_000);
}

async function record(t: RuntimeTask): Promise<TaskRecord> {
  const info = (await rt.inspect(t.namespace, t.name))!;
  return JSON.parse(await fs.readFile(path.join(info.dir, 'task.json'), 'utf8')) as TaskRecord;
}

const mode = async (p: string) => (await fs.stat(p)).mode & 0o7777;

describeAsRoot('process task isolation', () => {
  it('runsAsAUidOfItsOwnThatCannotReadTheAgentOtherTasksOrShadow', async () => {
    const other = task('echo other-secret > secret.txt; sleep 100');
    const otherPid = (await rt.start(other, () => undefined)).pid!;
    const otherInfo = (await rt.inspect(other.namespace, other.name))!;
    await until('other wrote its secret', async () => existsSync(path.join(otherInfo.workDir, 'secret.txt')));
    await fs.writeFile(path.join(dataDir, 'agent-state'), 'agent-secret', { mode: 0o600 });

    const probe = (what: string, sh: string) => `if ${sh} >/dev/null 2>&1; then echo "${what}: yes"; else echo "${what}: no"; fi`;
    const me = task([
      'echo "uid: $(id -u)"; echo "groups: $(id -G)"; echo "user: $USER home: $HOME"',
      probe('list data dir', 'ls "$DATA"'),
      probe('read agent file', 'cat "$DATA/agent-state"'),
      probe('list tasks', 'ls "$DATA/tasks/default"'),
      probe('read other record', 'cat "$OTHER/task.json"'),
      probe('read other stdout', 'cat "$OTHER/stdout"'),
      probe('list other work', 'ls "$OTHER/work"'),
      probe('read other secret', 'cat "$OTHER/work/secret.txt"'),
      probe('read other environ', 'cat "/proc/$OTHER_PID/environ"'),
      probe('signal other', 'kill -0 "$OTHER_PID"'),
      probe('read shadow', 'cat /etc/shadow'),
      probe('write own home', 'touch "$HOME/mine"'),
    ].join('\n'), { env: { DATA: dataDir, OTHER: otherInfo.dir, OTHER_PID: String(otherPid) } });
    const { code } = await runToEnd(me);
    expect(code).toBe(0);
    const info = (await rt.inspect(me.namespace, me.name))!;
    const out = await fs.readFile(path.join(info.dir, 'stdout'), 'utf8');
    const uid = Number(/^uid: (\d+)$/m.exec(out)?.[1]);
    expect(uid).toBe(info.user);
    expect(uid).toBeGreaterThanOrEqual(DEFAULT_TASK_UIDS[0]);
    expect(uid).toBeLessThanOrEqual(DEFAULT_TASK_UIDS[1]);
    expect(otherInfo.user).not.toBe(uid); // one uid per task
    expect(out).toContain(`groups: ${uid}\n`); // no supplementary groups of the agent
    expect(out).toContain(`user: ${uid} home: ${info.workDir}\n`);
    for (const denied of ['list data dir', 'read agent file', 'list tasks', 'read other record', 'read other stdout', 'list other work', 'read other secret', 'read other environ', 'signal other', 'read shadow']) {
      expect(out).toContain(`${denied}: no\n`);
    }
    expect(out).toContain('write own home: yes\n');

    // The modes that make it so.
    expect(await mode(dataDir)).toBe(0o711);
    expect(await mode(path.join(dataDir, 'tasks'))).toBe(0o711);
    expect(await mode(info.dir)).toBe(0o711);
    expect(await mode(path.join(info.dir, 'task.json'))).toBe(0o600);
    expect(await mode(info.workDir)).toBe(0o700);
    expect((await fs.stat(info.workDir)).uid).toBe(uid);
    expect((await fs.stat(path.join(info.dir, 'task.json'))).uid).toBe(0);
  });

  it('execsHealthChecksAsTheTasksUser', async () => {
    const t = task('sleep 100');
    await rt.start(t, () => undefined);
    const info = (await rt.inspect(t.namespace, t.name))!;
    expect(await rt.exec(t.namespace, t.name, 'id -u; cat /etc/shadow >/dev/null 2>&1 || echo denied', 5)).toMatchObject({ exitCode: 0, output: `${info.user}\ndenied\n` });
  });

  it('failsTheStartNamingADirectoryTheTaskUserCannotPass', async () => {
    const locked = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-locked-')); // 0700, root's
    try {
      const inner = new ProcessRuntime({ dataDir: path.join(locked, 'agent'), node, logger: silentLogger(), cgroupParent });
      await expect(inner.start(task('true'), () => undefined)).rejects.toThrow(`${locked} (owner uid 0, mode 0700) does not let it through`);
      inner.close();
    } finally {
      await fs.rm(locked, { recursive: true, force: true });
    }
  });

  itWithCgroups('limitsCpuMemoryAndPidsInTheTasksCgroup', async () => {
    const t = task('sleep 100', { resources: { cpus: 0.25, mem: 48, disk: 0 } });
    const pid = (await rt.start(t, () => undefined)).pid!;
    const r = await record(t);
    expect(r.cgroups?.length).toBeGreaterThan(0);
    const files = Object.fromEntries(r.cgroups!.flatMap((dir) => ['cgroup.procs', 'memory.max', 'memory.limit_in_bytes', 'pids.max', 'cpu.max', 'cpu.cfs_quota_us']
      .filter((f) => existsSync(path.join(dir, f))).map((f) => [f, readFileSync(path.join(dir, f), 'utf8').trim()])));
    expect(files['cgroup.procs'].split('\n').map(Number)).toContain(pid);
    expect(files['memory.max'] ?? files['memory.limit_in_bytes']).toBe(String(48 * 1024 * 1024));
    expect(files['pids.max']).toBe('1024');
    expect(files['cpu.max'] ?? files['cpu.cfs_quota_us']).toMatch(/^25000\b/);
    await rt.stop(t.namespace, t.name, 0);
    await until('cgroup removed', async () => r.cgroups!.every((dir) => !existsSync(dir)));
  });

  itWithCgroups('oomKillsATaskPastItsMemoryLimitAndSaysSo', async () => {
    // dd reads 256 MiB into one buffer, against a limit of 32.
    const t = task('dd if=/dev/zero of=/dev/null bs=256M count=1', { resources: { cpus: 1, mem: 32, disk: 0 } });
    const { code, detail } = await runToEnd(t);
    expect(code).toBe(137);
    expect(detail).toEqual({ reason: 'OOMKilled', message: expect.stringMatching(/out of memory.*memory limit of 32 MiB/) });
    const r = await record(t);
    await until('cgroup removed', async () => r.cgroups!.every((dir) => !existsSync(dir)));
  });
});
