/**
 * End to end, as a user: `shoal dev` (real etcd child process + apiserver), then the compiled
 * CLI: apply, get, watch, describe, delete, bad manifests; then SIGINT stops everything.
 * Needs `npm run build` (make test does it).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePorts } from '../../pkg/util/net';
import { runShoal, SHOAL_MAIN, type CliResult } from '../harness/cli';
import { capture, killProcessesUnder, processesWith, stopProc } from '../harness/procs';
import { devEtcdctlFlags } from '../harness/dev';
import { Agent } from 'undici';

const run = promisify(execFile);
const MAIN = SHOAL_MAIN;
const EXAMPLE = join(__dirname, '../../manifests/examples/web.yaml');

let dir: string;
let dev: ChildProcess;
let devLog = '';
let etcdPort: number;
let apiPort: number;
let schedulerApiPort: number;
let env: NodeJS.ProcessEnv;

function shoal(...args: string[]): Promise<CliResult> {
  return runShoal(env, ...args);
}

async function etcdKeys(): Promise<string> {
  const { stdout } = await run('etcdctl', [...devEtcdctlFlags(dir), 'get', '--prefix', '/shoal/registry/'], { env: { ...process.env, ETCDCTL_API: '3' } });
  return stdout;
}

/** Keys only, registry and history: what an App leaves behind. */
async function appKeys(): Promise<string> {
  const { stdout } = await run('etcdctl', [...devEtcdctlFlags(dir), 'get', '--prefix', '--keys-only', '/shoal/'], { env: { ...process.env, ETCDCTL_API: '3' } });
  return stdout;
}

async function waitFor(what: string, ok: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; shoal dev log:\n${devLog}`);
}

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` (make test does)`);
  dir = mkdtempSync(join(tmpdir(), 'shoal-e2e-'));
  const [aPort, ePort, sPort] = await freePorts(3);
  apiPort = aPort;
  etcdPort = ePort;
  schedulerApiPort = sPort;
  env = { ...process.env, SHOAL_CONFIG: join(dir, 'config.yaml'), HOME: dir };
  dev = spawn('node', [MAIN, 'dev', '--data-dir', dir, '--api-port', String(apiPort), '--etcd-port', String(etcdPort), '--scheduler-api-port', String(schedulerApiPort), '--agents', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  dev.stdout!.on('data', (d) => (devLog += d));
  dev.stderr!.on('data', (d) => (devLog += d));
  await waitFor('config.yaml', () => existsSync(join(dir, 'config.yaml')));
}, 30_000);

afterAll(async () => {
  if (dev.exitCode === null) {
    dev.kill('SIGKILL');
    await new Promise((r) => dev.once('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
});

it('writesAConfigWithAnHttpsServerTheCaTokenAndSchedulerApi', () => {
  expect(readFileSync(join(dir, 'config.yaml'), 'utf8')).toBe(
    `server: https://127.0.0.1:${apiPort}\ntoken: ${/token: ([0-9a-f]{48})\n/.exec(readFileSync(join(dir, 'config.yaml'), 'utf8'))?.[1]}\n` +
    `certificate-authority: ${join(dir, 'pki', 'ca.crt')}\nschedulerApi: https://127.0.0.1:${schedulerApiPort}\n`,
  );
});

it('servesTheMesosSchedulerApi', async () => {
  const dispatcher = new Agent({ connect: { ca: readFileSync(join(dir, 'pki', 'ca.crt')) } });
  const res = await fetch(`https://127.0.0.1:${schedulerApiPort}/version`, { dispatcher } as RequestInit);
  expect(res.status).toBe(200);
  expect(await res.json()).toHaveProperty('version');
});

it('appliesAnExampleThenReportsUnchanged', async () => {
  expect(await shoal('apply', '-f', EXAMPLE)).toMatchObject({ code: 0, stdout: 'app/web created\n' });
  expect(await shoal('apply', '-f', EXAMPLE)).toMatchObject({ code: 0, stdout: 'app/web unchanged\n' });
  expect(await etcdKeys()).toMatch(/^\/shoal\/registry\/apps\/default\/web\n\{.*"name":"web"/m);
});

it('showsEveryDefaultInJson', async () => {
  const res = await shoal('get', 'app', 'web', '-o', 'json');
  const app = JSON.parse(res.stdout);
  expect(app.spec).toMatchObject({
    instances: 2, role: '*', constraints: [], readinessChecks: [], killSelection: 'YoungestFirst',
    taskKillGracePeriodSeconds: 3, backoff: { seconds: 1, factor: 1.15, maxLaunchDelaySeconds: 300 },
    resources: { cpus: 0.1, mem: 32, disk: 0 }, ports: [{ name: 'http', containerPort: 8080, hostPort: 0, protocol: 'tcp' }],
  });
  expect(app.spec.healthChecks[0]).toMatchObject({ maxConsecutiveFailures: 3, delaySeconds: 1, timeoutSeconds: 2 });
});

it('printsChangesAsTheyHappenWithGetWatch', async () => {
  const watch = spawn('node', [MAIN, 'get', 'apps', '-w'], { env });
  let out = '';
  watch.stdout.on('data', (d) => (out += d));
  await waitFor('the watch table', () => /^web\s+\d+\/2\s/m.test(out));
  await shoal('scale', 'app', 'web', '--instances', '4');
  await waitFor('the scaled row', () => /^web\s+\d+\/4\s/m.test(out));
  watch.kill('SIGINT');
  expect(await new Promise((r) => watch.once('exit', r))).toBe(0);
});

describe('rollout', () => {
  it('listsHistoryRestartsAndUndoes', async () => {
    const history = await shoal('rollout', 'history', 'app', 'web');
    expect(history).toMatchObject({ code: 0, stderr: '' });
    expect(history.stdout).toMatch(/^REVISION\s+CREATED\s+CHANGE\n1\s+\S+\s+created\n2\s+\S+\s+instances\n$/m);
    expect(await shoal('rollout', 'restart', 'app/web')).toMatchObject({ code: 0, stdout: 'app "web" restarted\n' });
    const restarted = JSON.parse((await shoal('get', 'app', 'web', '-o', 'json')).stdout);
    expect(restarted.metadata.generation).toBe(3);
    expect(Date.parse(restarted.spec.restartedAt)).not.toBeNaN();
    expect(await shoal('rollout', 'undo', 'apps', 'web')).toMatchObject({ code: 0, stdout: 'app "web" rolled back (to revision 2)\n' });
    const undone = JSON.parse((await shoal('get', 'app', 'web', '-o', 'json')).stdout);
    expect(undone.metadata.generation).toBe(4);
    expect(undone.spec.restartedAt).toBeUndefined();
    expect(undone.spec.instances).toBe(4);
    expect((await shoal('rollout', 'history', 'app', 'web')).stdout).toMatch(/^3\s+\S+\s+restartedAt\n4\s+\S+\s+restartedAt\n$/m);
    expect((await shoal('rollout', 'history', 'app', 'web', '--revision', '1')).stdout).toMatch(/^spec:\n(  .*\n)*  instances: 2\n/m);
    expect(await shoal('rollout', 'undo', 'app', 'web', '--to-revision', '9')).toMatchObject({ code: 1, stderr: 'error: app "web" has no revision 9 (stored: 1, 2, 3, 4)\n' });
  });

  it('waitsForTheRolloutAndTimesOut', async () => {
    // No agents: instances cannot start, so the rollout of 4 instances never finishes.
    const once = await shoal('rollout', 'status', 'app', 'web', '--watch=false');
    expect(once).toMatchObject({ code: 0, stderr: '' });
    expect(once.stdout).toMatch(/^Waiting for app "web" (spec update to be observed|rollout to finish: .*)\.\.\.\n$/);
    const timedOut = await shoal('rollout', 'status', 'app', 'web', '--timeout', '1500ms');
    expect(timedOut.code).toBe(1);
    expect(timedOut.stderr).toBe('error: timed out after 1500ms waiting for app "web" rollout to finish\n');
  });

  it('finishesARolloutToZeroInstances', async () => {
    const zero = join(dir, 'zero.yaml');
    writeFileSync(zero, 'apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: zero\nspec:\n  instances: 0\n  cmd: sleep 1000\n');
    expect(await shoal('apply', '-f', zero)).toMatchObject({ code: 0 });
    expect(await shoal('rollout', 'status', 'app', 'zero', '--timeout', '15s')).toMatchObject({ code: 0, stdout: expect.stringMatching(/app "zero" successfully rolled out\n$/) });
    expect(await shoal('delete', 'app', 'zero')).toMatchObject({ code: 0 });
  });
});

it('rejectsABadManifestNamingFileLineAndFieldAndWritesNothing', async () => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: good\nspec:\n  cmd: x\n---\napiVersion: shoal/v1\nkind: App\nmetadata:\n  name: bad\nspec:\n  cmd: x\n  instances: -1\n');
  const before = await etcdKeys();
  const res = await shoal('apply', '-f', bad);
  expect(res.code).toBe(1);
  expect(res.stderr).toBe(`error: ${bad}:14: app/bad: spec.instances: must be >= 0\n`);
  expect(await etcdKeys()).toBe(before);
});

it('rejectsInvalidYamlWithFileAndLine', async () => {
  const bad = join(dir, 'broken.yaml');
  writeFileSync(bad, 'kind: App\nmetadata:\n  name: x\n   bad: indent\n');
  const res = await shoal('apply', '-f', bad);
  expect(res.code).toBe(1);
  expect(res.stderr).toMatch(new RegExp(`^error: ${bad}:4: .+\\n$`));
});

describe('bad manifests through apply', () => {
  const head = 'apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: x\n';
  const bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' +
    'bcdefghi'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill('*' + 'abcdefghi'[i]).join(',')}]`).join('\n') + '\n';
  const cases: Array<[string, string, RegExp]> = [
    ['a YAML alias bomb', bomb, /^error: FILE:2: column \d+: YAML aliases \(\*name\) are not allowed in manifests$/],
    ['5,000-deep nesting', head + 'spec:\n  cmd: ' + '['.repeat(5000) + ']'.repeat(5000) + '\n', /^error: FILE:6: column \d+: nesting exceeded maxDepth \(64\)$/],
    ['a __proto__ key', head + '  __proto__: {polluted: true}\nspec:\n  cmd: x\n', /^error: FILE:5: app\/x: metadata.__proto__: key "__proto__" is not allowed$/],
    ['a constructor key', head + 'spec:\n  cmd: x\n  env:\n    constructor: x\n', /^error: FILE:8: app\/x: spec.env.constructor: key "constructor" is not allowed$/],
    ['an unknown field', head + 'spec:\n  cmd: x\n  replicas: 3\n', /^error: FILE:7: app\/x: spec.replicas: unknown field$/],
    ['a wrong type', head + 'spec:\n  cmd: x\n  instances: three\n', /^error: FILE:7: app\/x: spec.instances: must be integer, not string$/],
    ['an unknown kind', 'apiVersion: shoal/v1\nkind: Pod\nmetadata:\n  name: x\n', /^error: FILE:2: .*kind: unknown kind "Pod"/],
    ['an unknown apiVersion', 'apiVersion: apps/v1\nkind: App\nmetadata:\n  name: x\nspec:\n  cmd: x\n', /^error: FILE:1: .*apiVersion: unsupported "apps\/v1"/],
    ['a missing name', 'apiVersion: shoal/v1\nkind: App\nmetadata: {}\nspec:\n  cmd: x\n', /^error: FILE:3: .*metadata.name: is required$/],
    ['a name that is not a DNS-1123 label', head.replace('name: x', 'name: My_App') + 'spec:\n  cmd: x\n', /^error: FILE:4: .*metadata.name: must be a DNS-1123 label/],
    ['a 5 MB manifest', head + 'spec:\n  cmd: ' + 'x'.repeat(5 << 20) + '\n', /^error: FILE:6: app\/x: spec.cmd: is 5242880 characters long: at most 65536$/],
  ];
  it.each(cases)('rejects %s, writing nothing', async (_name, text, message) => {
    const file = join(dir, 'bad-input.yaml');
    writeFileSync(file, text);
    const before = await etcdKeys();
    const res = await shoal('apply', '-f', file);
    expect(res.code).toBe(1);
    const lines = res.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0].replace(file, 'FILE')).toMatch(message);
    expect(await etcdKeys()).toBe(before);
  });
});

it('describesAndDeletes', async () => {
  const described = (await shoal('describe', 'app', 'web')).stdout;
  expect(described).toMatch(/^Name:\s+web$/m);
  expect(described).toMatch(/^Tasks:\s+<none>$/m);
  expect(await shoal('delete', 'app/web')).toMatchObject({ code: 0, stdout: 'app/web deleted\n' });
  // The App controller removes its finalizer (no tasks to stop here), and with it the App and its history.
  await waitFor('the app and its history to go', async () => !/\/(registry|history)\/apps\/default\/web\b/.test(await appKeys()));
  const missing = await shoal('get', 'app', 'web');
  expect(missing.code).toBe(1);
  expect(missing.stderr).toBe('error: app "web" not found\n');
});

it('stopsEtcdAndTheApiOnSigint', async () => {
  dev.kill('SIGINT');
  expect(await new Promise((r) => dev.once('exit', (code) => r(code)))).toBe(0);
  const res = await shoal('get', 'apps');
  expect(res.code).toBe(1);
  expect(res.stderr).toMatch(/^error: cannot reach server https:\/\/127\.0\.0\.1:\d+/);
  await expect(run('etcdctl', [...devEtcdctlFlags(dir), '--dial-timeout', '1s', 'get', 'x'], { env: { ...process.env, ETCDCTL_API: '3' } })).rejects.toThrow();
});

/**
 * `shoal dev` takes its tasks with it: SIGTERM stops the process tasks its agents run, unless
 * --keep-tasks. The App asks for Marathon's default cpus (1), which a dev agent must offer
 * whatever the machine (each agent advertises all its cores).
 */
describe('stopping shoal dev with tasks running', () => {
  const started: Array<{ proc: ChildProcess; dir: string }> = [];
  afterAll(async () => {
    for (const { proc, dir: d } of started) {
      await stopProc(proc, 'SIGKILL');
      killProcessesUnder(d);
      rmSync(d, { recursive: true, force: true });
    }
  });

  /** A dev cluster with one process agent running an App of one `sleep` marked `mark`; resolves once it runs. */
  async function devWithTask(mark: string, ...flags: string[]): Promise<{ proc: ChildProcess; env: NodeJS.ProcessEnv; log: () => string }> {
    const d = mkdtempSync(join(tmpdir(), 'shoal-e2e-stop-'));
    chmodSync(d, 0o711); // agents' data dirs are inside: process tasks' users must get through
    const [apiPort, ePort] = await freePorts(2);
    const denv = { ...process.env, SHOAL_CONFIG: join(d, 'config.yaml'), HOME: d };
    const proc = spawn('node', [MAIN, 'dev', '--data-dir', d, '--api-port', String(apiPort), '--etcd-port', String(ePort), '--no-scheduler-api', '--agents', '1', '--runtime', 'process', ...flags], { env: denv, stdio: ['ignore', 'pipe', 'pipe'] });
    started.push({ proc, dir: d });
    const logs = new Map<string, string>();
    capture(logs, 'dev', proc);
    const log = () => logs.get('dev') ?? '';
    const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
      const deadline = Date.now() + 25_000;
      while (Date.now() < deadline) {
        if (await ok()) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`timed out waiting for ${what}; shoal dev log:\n${log()}`);
    };
    await until('config.yaml', () => existsSync(join(d, 'config.yaml')));
    const file = join(d, 'sleeper.yaml');
    writeFileSync(file, `apiVersion: shoal/v1\nkind: App\nmetadata:\n  name: sleeper\nspec:\n  instances: 1\n  cmd: 'exec sleep 600 # ${mark}'\n`);
    expect(await runShoal(denv, 'apply', '-f', file)).toMatchObject({ code: 0 });
    await until(`a process marked ${mark}`, async () => (await processesWith(mark)).length > 0);
    return { proc, env: denv, log };
  }

  it('stopsTheTasksOfItsAgentsOnSigterm', async () => {
    const mark = `shoal-e2e-stop-${process.pid}-${Date.now()}`;
    const { proc, log } = await devWithTask(mark);
    proc.kill('SIGTERM');
    expect(await new Promise((r) => (proc.exitCode !== null ? r(proc.exitCode) : proc.once('exit', (code) => r(code))))).toBe(0);
    expect(await processesWith(mark)).toEqual([]);
    expect(log()).toMatch(/task stopped with the dev cluster/);
  }, 60_000);

  it('leavesThemRunningWithKeepTasks', async () => {
    const mark = `shoal-e2e-keep-${process.pid}-${Date.now()}`;
    const { proc } = await devWithTask(mark, '--keep-tasks');
    proc.kill('SIGTERM');
    expect(await new Promise((r) => (proc.exitCode !== null ? r(proc.exitCode) : proc.once('exit', (code) => r(code))))).toBe(0);
    const left = await processesWith(mark);
    expect(left.length).toBeGreaterThan(0);
    for (const pid of left) process.kill(Number(pid), 'SIGKILL');
  }, 60_000);

  it('refusesABadAgentCpus', async () => {
    const res = await shoal('dev', '--agent-cpus', '0');
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/--agent-cpus must be a number of CPUs above 0 \(e\.g\. 0\.5 or 4\), not "0"/);
  });
});
