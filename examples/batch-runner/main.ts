/**
 * batch-runner: an example Mesos framework over the v1 scheduler HTTP API (through
 * pkg/client/mesos-scheduler.ts). It runs one shell command per line of a file as a task, retries
 * failures, and survives its own restarts and master failovers without launching a task twice:
 *
 *  - task ids are deterministic, cmd-<line>-<attempt>;
 *  - before a LAUNCH it writes its intent to a state file (the reconciliation doc's "persist the
 *    intent, then launch"), with the framework id once subscribed;
 *  - after every (re)subscription it reconciles explicitly every task it may have launched, and
 *    implicitly (anything else the master knows is killed if it is not the current attempt);
 *    a line whose latest attempt is not yet confirmed is never launched again until the master
 *    answers for it;
 *  - terminal updates are written to the state file before they are acknowledged.
 *
 * node dist/examples/batch-runner/main.js --master http://127.0.0.1:5050 --commands commands.txt
 *   [--role batch] [--cpus 0.1 --mem 32] [--retries 2] [--failover-timeout 60]
 *   [--token-file F | --principal P --secret S] [--state-file F] [--name N]
 *
 * Exit status: 0 when every command finished (TASK_FINISHED), 1 when one failed more than
 * --retries times, 2 on a usage error or when the master refused the framework. SIGINT/SIGTERM
 * stop without TEARDOWN: run it again with the same state file and it fails over.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  isTerminalState, MesosScheduler, offerRole, scalarOf, scalarResource,
  type MesosAuth, type Offer, type TaskInfo, type TaskStatus,
} from '../../pkg/client/mesos-scheduler';

type LineStatus = 'waiting' | 'launching' | 'active' | 'unknown' | 'done' | 'failed';

interface Line {
  n: number;
  cmd: string;
  /** The latest attempt launched (0: none yet). */
  attempt: number;
  /** Failed attempts (reconciliation's "unknown task" after a crash is not one). */
  failures: number;
  status: LineStatus;
  agentId?: string;
  lastState?: string;
}

interface StateFile {
  frameworkId?: string;
  commandsFile: string;
  lines: Record<string, { attempt: number; failures: number; status: LineStatus; agentId?: string; lastState?: string }>;
}

const USAGE = 'usage: batch-runner --master URL[,URL...] --commands FILE [--ca CA.crt] [--role R] [--cpus N] [--mem MB] [--retries N] [--failover-timeout S] [--token-file F | --principal P --secret S] [--state-file F] [--name N]';

function fail(msg: string): never {
  process.stderr.write(`batch-runner: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function num(v: string | undefined, def: number, name: string): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) fail(`--${name} must be a non-negative number, not ${JSON.stringify(v)}`);
  return n;
}

const { values: a } = parseArgs({
  options: {
    master: { type: 'string' }, commands: { type: 'string' }, role: { type: 'string' },
    cpus: { type: 'string' }, mem: { type: 'string' }, retries: { type: 'string' },
    'failover-timeout': { type: 'string' }, 'token-file': { type: 'string' },
    principal: { type: 'string' }, secret: { type: 'string' }, 'state-file': { type: 'string' },
    name: { type: 'string' }, user: { type: 'string' }, ca: { type: 'string' }, help: { type: 'boolean' },
  },
  strict: true,
});
if (a.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (!a.master) fail('--master is required');
if (!a.commands) fail('--commands is required');
if (a['token-file'] && (a.principal || a.secret)) fail('give --token-file or --principal/--secret, not both');
if (Boolean(a.principal) !== Boolean(a.secret)) fail('--principal and --secret go together');

const cpus = num(a.cpus, 0.1, 'cpus');
const mem = num(a.mem, 32, 'mem');
const retries = num(a.retries, 2, 'retries');
const failoverTimeout = num(a['failover-timeout'], 60, 'failover-timeout');
const role = a.role ?? '*';
const commandsFile = a.commands;
const stateFile = a['state-file'] ?? `${commandsFile}.state.json`;

let auth: MesosAuth | undefined;
if (a['token-file']) {
  const token = readFileSync(a['token-file'], 'utf8').split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
  if (!token) fail(`${a['token-file']} holds no token`);
  auth = { bearer: token };
} else if (a.principal && a.secret) {
  auth = { principal: a.principal, secret: a.secret };
}

// ---------------------------------------------------------------------------------------------
// Commands and state.

const lines: Line[] = [];
readFileSync(commandsFile, 'utf8').split('\n').forEach((text, i) => {
  const cmd = text.trim();
  if (cmd && !cmd.startsWith('#')) lines.push({ n: i + 1, cmd, attempt: 0, failures: 0, status: 'waiting' });
});
if (!lines.length) fail(`${commandsFile} has no commands`);
const byNumber = new Map(lines.map((l) => [l.n, l]));

let frameworkId: string | undefined;
if (existsSync(stateFile)) {
  const saved = JSON.parse(readFileSync(stateFile, 'utf8')) as StateFile;
  frameworkId = saved.frameworkId;
  for (const [n, s] of Object.entries(saved.lines)) {
    const line = byNumber.get(Number(n));
    if (!line) continue;
    Object.assign(line, s);
    // Whatever was in flight is unknown until the master answers a reconciliation.
    if (line.status === 'launching' || line.status === 'active') line.status = 'unknown';
  }
  say(`resuming from ${stateFile}${frameworkId ? ` as framework ${frameworkId}` : ''}`);
}

function save(): void {
  const out: StateFile = { frameworkId, commandsFile, lines: {} };
  for (const l of lines) {
    if (l.attempt || l.status !== 'waiting') out.lines[l.n] = { attempt: l.attempt, failures: l.failures, status: l.status, agentId: l.agentId, lastState: l.lastState };
  }
  const tmp = `${stateFile}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(out, null, 2)}\n`);
  renameSync(tmp, stateFile);
}

function say(msg: string): void {
  process.stdout.write(`${new Date().toISOString()} ${msg}\n`);
}

const taskId = (l: Line, attempt = l.attempt) => `cmd-${l.n}-${attempt}`;

/** The CA that verifies an https:// master (shoal dev's: <data dir>/pki/ca.crt). */
function readCa(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    return fail(`--ca ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

function parseTaskId(id: string): { n: number; attempt: number } | undefined {
  const m = /^cmd-(\d+)-(\d+)$/.exec(id);
  return m ? { n: Number(m[1]), attempt: Number(m[2]) } : undefined;
}

// ---------------------------------------------------------------------------------------------
// The framework.

const scheduler = new MesosScheduler({
  master: a.master.split(',').map((m) => m.trim()).filter(Boolean),
  ...(a.ca && { ca: readCa(a.ca) }),
  frameworkId,
  auth,
  frameworkInfo: {
    user: a.user ?? process.env.USER ?? 'nobody',
    name: a.name ?? 'batch-runner',
    roles: [role],
    capabilities: [{ type: 'MULTI_ROLE' }],
    failover_timeout: failoverTimeout,
    checkpoint: true,
  },
});

let suppressed = false;
let finishing = false;
let reconcileTimer: NodeJS.Timeout | undefined;

const waiting = () => lines.filter((l) => l.status === 'waiting');
const unknown = () => lines.filter((l) => l.status === 'unknown');

function warn(what: string) {
  return (err: Error) => say(`warning: ${what}: ${err.message}`);
}

scheduler.on('subscribed', (s) => {
  const first = frameworkId === undefined;
  frameworkId = s.frameworkId;
  save();
  say(`${s.failover ? 're-subscribed' : 'subscribed'} as framework ${s.frameworkId} at ${s.master} (heartbeat ${s.heartbeatIntervalSeconds ?? '-'} s)`);
  suppressed = false;
  // Every line that may have a task in flight is unknown until the master says.
  for (const l of lines) if (l.status === 'launching' || l.status === 'active') l.status = 'unknown';
  if (!first || unknown().length) reconcile();
  scheduler.reconcile().catch(warn('implicit reconcile'));
  finishIfDone();
});

/** Explicit reconciliation of the unknown lines, repeated until each is answered. */
function reconcile(): void {
  if (reconcileTimer) clearTimeout(reconcileTimer);
  reconcileTimer = undefined;
  const tasks = unknown().map((l) => ({ taskId: taskId(l), ...(l.agentId ? { agentId: l.agentId } : {}) }));
  if (!tasks.length || !scheduler.subscribed) return;
  say(`reconciling ${tasks.map((t) => t.taskId).join(' ')}`);
  scheduler.reconcile(tasks).catch(warn('reconcile'));
  reconcileTimer = setTimeout(reconcile, 5000);
}

scheduler.on('offers', (offers) => {
  for (const offer of offers) handleOffer(offer);
});

function handleOffer(offer: Offer): void {
  if (finishing) {
    scheduler.decline([offer.id.value], { refuse_seconds: 60 }).catch(warn('decline'));
    return;
  }
  let c = scalarOf(offer.resources, 'cpus');
  let m = scalarOf(offer.resources, 'mem');
  const allocRole = offerRole(offer);
  const tasks: TaskInfo[] = [];
  for (const l of waiting()) {
    if (c + 1e-9 < cpus || m + 1e-9 < mem) break;
    c -= cpus;
    m -= mem;
    l.attempt++;
    l.status = 'launching';
    l.agentId = offer.agent_id.value;
    l.lastState = undefined;
    tasks.push({
      name: `batch-runner line ${l.n}`,
      task_id: { value: taskId(l) },
      agent_id: offer.agent_id,
      resources: [scalarResource('cpus', cpus, allocRole), scalarResource('mem', mem, allocRole)],
      command: { value: l.cmd, shell: true },
    });
  }
  if (!tasks.length) {
    const more = waiting().length > 0;
    scheduler.decline([offer.id.value], { refuse_seconds: more ? 1 : 30 }).catch(warn('decline'));
    if (!more && !suppressed) {
      suppressed = true;
      scheduler.suppress().catch(warn('suppress'));
    }
    return;
  }
  save(); // the intent is on disk before the LAUNCH leaves
  for (const t of tasks) say(`${t.task_id.value} LAUNCH on ${offer.agent_id.value} (${offer.hostname}): ${t.command!.value}`);
  scheduler.accept([offer.id.value], tasks, { refuse_seconds: 1 }).catch((err: Error) => {
    // Maybe launched, maybe not: ask the master rather than guess.
    say(`warning: ACCEPT of ${offer.id.value} failed (${err.message}); reconciling its tasks`);
    for (const t of tasks) {
      const l = byNumber.get(parseTaskId(t.task_id.value)!.n)!;
      if (l.status === 'launching' && taskId(l) === t.task_id.value) l.status = 'unknown';
    }
    save();
    reconcile();
  });
}

scheduler.on('update', (status) => {
  handleUpdate(status);
  save();
  // Acknowledge after the state is on disk (only updates with a uuid are acknowledged).
  scheduler.acknowledge(status).catch(warn(`acknowledge ${status.task_id.value}`));
  finishIfDone();
});

function handleUpdate(status: TaskStatus): void {
  const id = status.task_id.value;
  const parsed = parseTaskId(id);
  const line = parsed && byNumber.get(parsed.n);
  const detail = `${status.agent_id ? ` on ${status.agent_id.value}` : ''}${status.reason ? ` (${status.reason})` : ''}${status.message ? `: ${status.message}` : ''}`;
  if (!line || !parsed || parsed.attempt !== line.attempt) {
    // Not the current attempt of a line (another run's task, or a superseded attempt): stop it.
    if (!isTerminalState(status.state)) {
      say(`${id} ${status.state}${detail} — not a current attempt; killing it`);
      scheduler.kill(id, status.agent_id?.value).catch(warn(`kill ${id}`));
    }
    return;
  }
  if (line.status === 'done' || line.status === 'failed') return; // already settled (a repeated update)
  if (status.agent_id) line.agentId = status.agent_id.value;
  if (line.lastState !== status.state) say(`${id} ${status.state}${detail}`);
  line.lastState = status.state;
  if (!isTerminalState(status.state)) {
    line.status = 'active';
    if (!unknown().length && reconcileTimer) {
      clearTimeout(reconcileTimer);
      reconcileTimer = undefined;
    }
    return;
  }
  if (status.state === 'TASK_FINISHED') {
    line.status = 'done';
    return;
  }
  // Not a failure of the command: the master never knew the task (reconciliation), or dropped it
  // before it started (an offer that was rescinded or invalid).
  const neverLaunched = line.status !== 'active' && (
    status.state === 'TASK_DROPPED' || (status.state === 'TASK_LOST' && (status.reason === 'REASON_RECONCILIATION' || status.reason === 'REASON_INVALID_OFFERS')));
  if (!neverLaunched) line.failures++;
  if (line.failures > retries) {
    line.status = 'failed';
    say(`line ${line.n} failed ${line.failures} times (retries: ${retries}): ${line.cmd}`);
    return;
  }
  line.status = 'waiting';
  say(`line ${line.n} will run again as ${taskId(line, line.attempt + 1)}${neverLaunched ? ' (the last attempt never started)' : ` (${line.failures}/${retries} retries used)`}`);
  if (suppressed) {
    suppressed = false;
    scheduler.revive().catch(warn('revive'));
  }
}

scheduler.on('rescind', (offerId) => say(`offer ${offerId} rescinded`));
scheduler.on('failure', (f) => say(`failure: agent ${f.agent_id?.value ?? '-'}${f.executor_id ? ` executor ${f.executor_id.value}` : ''}${f.status !== undefined ? ` status ${f.status}` : ''}`));
scheduler.on('disconnected', (d) => {
  if (d.willReconnect) say(`disconnected (${d.reason}); reconnecting in ${d.retryInMs} ms`);
});
scheduler.on('error', (err) => {
  say(`error from the master: ${err.message}`);
  if (!finishing) {
    scheduler.stop();
    process.exit(2);
  }
});

function finishIfDone(): void {
  if (finishing || !scheduler.subscribed) return;
  const failed = lines.find((l) => l.status === 'failed');
  const allDone = lines.every((l) => l.status === 'done');
  if (!failed && !allDone) return;
  finishing = true;
  if (reconcileTimer) clearTimeout(reconcileTimer);
  const code = failed ? 1 : 0;
  say(failed ? `giving up: line ${failed.n} exhausted its retries; tearing down` : `all ${lines.length} commands finished; tearing down`);
  scheduler.teardown().then(
    () => {
      rmSync(stateFile, { force: true });
      process.exit(code);
    },
    (err: Error) => {
      say(`warning: TEARDOWN failed: ${err.message}`);
      process.exit(code);
    },
  );
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    say(`${sig}: stopping without TEARDOWN; run again with ${stateFile} to fail over`);
    save();
    scheduler.stop();
    process.exit(130);
  });
}

say(`${lines.length} commands from ${commandsFile}; ${cpus} cpus and ${mem} MB each; role ${role}; ${retries} retries`);
scheduler.start();
