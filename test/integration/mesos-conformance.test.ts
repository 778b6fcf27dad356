/**
 * Conformance of the controller-manager's Mesos v1 scheduler HTTP API with Mesos' documentation,
 * checked with raw node:http requests and a RecordIO reader written here (neither the server's
 * code nor pkg/client/mesos-scheduler.ts is used):
 *
 *   https://mesos.apache.org/documentation/latest/scheduler-http-api/
 *   https://mesos.apache.org/documentation/latest/recordio/
 *   https://mesos.apache.org/documentation/latest/reconciliation/
 *   https://mesos.apache.org/documentation/latest/task-state-reasons/
 *   include/mesos/v1/scheduler/scheduler.proto, include/mesos/v1/mesos.proto
 *
 * A real etcd, two controller-managers (one leads, the other is a standby answering 307) and an
 * in-process agent on the process runtime.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../pkg/agent/agent';
import type { Task } from '../../pkg/api/types.generated';
import { startControllerManager, type ControllerManagerHandle } from '../../pkg/controllers/start';
import { ProcessRuntime } from '../../pkg/runtime/process';
import { EtcdStore } from '../../pkg/store/etcd';
import { decodeKeyValue } from '../../pkg/store/objects';
import { silentLogger } from '../../pkg/util/log';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';

jest.setTimeout(60_000);

const log = silentLogger();
const PATH = '/api/v1/scheduler';
const ROLE = 'conformance';
let store: EtcdStore;
let prefix: string;
let dataDir: string;
let agent: Agent;
const cms: ControllerManagerHandle[] = [];
let leaderPort = 0;
let standbyPort = 0;

// ---------------------------------------------------------------------------------------------
// Raw HTTP and RecordIO, from the docs.

interface Reply { status: number; headers: IncomingHttpHeaders; text: string }

function send(port: number, method: string, path: string, body: string | undefined, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {}), ...headers } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer in 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

function call(port: number, streamId: string | undefined, body: unknown, contentType = 'application/json'): Promise<Reply> {
  return send(port, 'POST', PATH, typeof body === 'string' ? body : JSON.stringify(body), {
    'Content-Type': contentType, Accept: 'application/json', ...(streamId !== undefined ? { 'Mesos-Stream-Id': streamId } : {}),
  });
}

/** An open SUBSCRIBE stream: events decoded from RecordIO as they arrive. */
class Subscription {
  events: any[] = [];
  ended = false;
  status = 0;
  headers: IncomingHttpHeaders = {};
  text = '';
  res?: IncomingMessage;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private req?: ReturnType<typeof request>;

  static open(port: number, frameworkInfo: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<Subscription> {
    const s = new Subscription();
    const body = JSON.stringify({ type: 'SUBSCRIBE', subscribe: { framework_info: frameworkInfo }, ...extra });
    return new Promise((resolve, reject) => {
      s.req = request({ host: '127.0.0.1', port, method: 'POST', path: PATH, agent: false, headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'Content-Length': String(Buffer.byteLength(body)) } }, (res) => {
        s.res = res;
        s.status = res.statusCode ?? 0;
        s.headers = res.headers;
        res.on('data', (c: Buffer) => {
          if (s.status !== 200) {
            s.text += c.toString();
            return;
          }
          s.buf = Buffer.concat([s.buf, c]);
          s.parse();
        });
        const end = () => {
          s.ended = true;
          s.wake();
        };
        res.on('end', end);
        res.on('close', end);
        res.on('error', end);
        if (s.status === 200) resolve(s);
        else res.on('end', () => resolve(s));
      });
      s.req.on('error', (err) => (s.status ? (s.ended = true, s.wake()) : reject(err)));
      s.req.end(body);
    });
  }

  /** record = record-size LF record-data; record-size = 1*DIGIT. */
  private parse(): void {
    for (;;) {
      const lf = this.buf.indexOf(0x0a);
      if (lf < 0) return;
      const sizeText = this.buf.subarray(0, lf).toString('ascii');
      if (!/^\d+$/.test(sizeText)) throw new Error(`bad RecordIO size line ${JSON.stringify(sizeText)}`);
      const size = Number(sizeText);
      if (this.buf.length < lf + 1 + size) return;
      this.events.push(JSON.parse(this.buf.subarray(lf + 1, lf + 1 + size).toString('utf8')));
      this.buf = this.buf.subarray(lf + 1 + size);
      this.wake();
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  get streamId(): string {
    return String(this.headers['mesos-stream-id']);
  }

  get frameworkId(): string {
    return this.events[0]?.subscribed?.framework_id?.value;
  }

  /** The first event from index `from` matching pred (waits for it). */
  async next(what: string, pred: (e: any) => boolean, ms = 15_000, from = 0): Promise<any> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.events.slice(from).find(pred);
      if (found) return found;
      if (this.ended) throw new Error(`stream ended before ${what}; events: ${this.summary()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; events: ${this.summary()}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  summary(): string {
    return this.events.map((e) => (e.type === 'UPDATE' ? `UPDATE(${e.update?.status?.task_id?.value}:${e.update?.status?.state})` : e.type)).join(' ');
  }

  async untilEnded(ms = 10_000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.ended;
  }

  close(): void {
    this.req?.destroy();
    this.res?.destroy();
  }
}

const subs: Subscription[] = [];
async function subscribe(name: string, extraInfo: Record<string, unknown> = {}): Promise<Subscription> {
  const s = await Subscription.open(leaderPort, { user: 'tester', name, roles: [ROLE], capabilities: [{ type: 'MULTI_ROLE' }], failover_timeout: 30, ...extraInfo });
  subs.push(s);
  if (s.status !== 200) throw new Error(`SUBSCRIBE: HTTP ${s.status}: ${s.text}`);
  await s.next('SUBSCRIBED', (e) => e.type === 'SUBSCRIBED', 10_000);
  return s;
}

function fw(s: Subscription) {
  return { framework_id: { value: s.frameworkId } };
}

function launch(s: Subscription, offer: any, id: string, cmd: string, cpus = 0.1, mem = 16) {
  const role = offer.allocation_info?.role ?? ROLE;
  return call(leaderPort, s.streamId, {
    ...fw(s), type: 'ACCEPT',
    accept: {
      offer_ids: [offer.id],
      operations: [{
        type: 'LAUNCH',
        launch: {
          task_infos: [{
            name: id, task_id: { value: id }, agent_id: offer.agent_id,
            resources: [
              { name: 'cpus', type: 'SCALAR', scalar: { value: cpus }, allocation_info: { role } },
              { name: 'mem', type: 'SCALAR', scalar: { value: mem }, allocation_info: { role } },
            ],
            command: { value: cmd, shell: true },
          }],
        },
      }],
      filters: { refuse_seconds: 0.1 },
    },
  });
}

const isUpdate = (id: string, state?: string) => (e: any) => e.type === 'UPDATE' && e.update?.status?.task_id?.value === id && (!state || e.update.status.state === state);

async function teardown(s: Subscription): Promise<void> {
  if (s.ended || !s.frameworkId) return;
  await call(leaderPort, s.streamId, { ...fw(s), type: 'TEARDOWN' }).catch(() => undefined);
  await s.untilEnded(5000);
  s.close();
}

async function shoalTasks(): Promise<Task[]> {
  return (await store.list(`${prefix}/registry/tasks/`)).items.map((kv) => decodeKeyValue<Task>(kv));
}

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
  prefix = uniquePrefix().slice(0, -1);
  dataDir = mkdtempSync(join(tmpdir(), 'shoal-mesos-conf-'));
  const runtime = new ProcessRuntime({ dataDir, node: { hostname: 'host-m', nodeName: 'mesos-node-1' }, logger: log });
  agent = new Agent({ store, prefix, nodeName: 'mesos-node-1', hostname: 'host-m', runtime, runtimes: ['process'], capacity: { cpus: 2, mem: 1024, disk: 0, ports: [[31100, 31110]] }, leaseTtlSeconds: 5, logger: log });
  await agent.start();
  for (const identity of ['cm-a', 'cm-b']) {
    cms.push(await startControllerManager({ store, prefix, identity, logger: log, leaderLeaseSeconds: 2, allocationIntervalMs: 100, schedulerApi: { port: 0, heartbeatIntervalSeconds: 1 } }));
  }
  // Find the leader the way a scheduler does: the standby answers 307 pointing at it.
  const ports = cms.map((c) => c.schedulerApiPort!);
  const deadline = Date.now() + 20_000;
  while (!leaderPort) {
    if (Date.now() > deadline) throw new Error(`no leader answered on ${ports.join(', ')}`);
    for (const p of ports) {
      // A call (not a SUBSCRIBE, which would register a framework): the leader refuses it with
      // 4xx, a standby redirects it, and before any election both answer 503.
      const r = await call(p, 'probe', { type: 'REVIVE', framework_id: { value: 'probe' } }).catch(() => undefined);
      if (r?.status === 307) {
        standbyPort = p;
        leaderPort = ports.find((q) => q !== p)!;
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}, 60_000);

// A framework a failed test left subscribed would hold its outstanding offers (Mesos semantics:
// allocated to it until answered) and starve the next test: tear every one down after each test.
afterEach(async () => {
  for (const s of subs) await teardown(s).catch(() => undefined);
});

afterAll(async () => {
  for (const s of subs) await teardown(s).catch(() => undefined);
  for (const s of subs) s.close();
  for (const c of cms) await c.stop();
  await agent?.stop({ revoke: true });
  await store?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

test('GET /version answers 200 with a Mesos version', async () => {
  const r = await send(leaderPort, 'GET', '/version', undefined);
  expect(r.status).toBe(200);
  expect(JSON.parse(r.text)).toMatchObject({ version: '1.11.0' });
});

test('a standby answers 307 with the Location of the leading master (scheduler-http-api: Master detection)', async () => {
  const body = JSON.stringify({ type: 'SUBSCRIBE', subscribe: { framework_info: { user: 'x', name: 'redirected', roles: [ROLE] } } });
  const r = await send(standbyPort, 'POST', PATH, body, { 'Content-Type': 'application/json', Accept: 'application/json' });
  expect(r.status).toBe(307);
  const loc = String(r.headers.location);
  // Mesos sends //host:port/api/v1/scheduler; a full http:// URL resolves the same way.
  const target = new URL(loc.startsWith('//') ? `http:${loc}` : loc);
  expect(Number(target.port)).toBe(leaderPort);
  expect(target.pathname).toBe(PATH);
  // A call to the standby is redirected too.
  const c = await call(standbyPort, 'whatever', { type: 'REVIVE', framework_id: { value: 'x' } });
  expect(c.status).toBe(307);
});

test('SUBSCRIBE: 200, application/json, chunked, Mesos-Stream-Id; SUBSCRIBED first, then HEARTBEATs (RecordIO)', async () => {
  const s = await Subscription.open(leaderPort, { user: 'tester', name: 'subscribe-check', roles: [ROLE], capabilities: [{ type: 'MULTI_ROLE' }] });
  subs.push(s);
  expect(s.status).toBe(200);
  expect(s.headers['content-type']).toMatch(/^application\/json/);
  expect(s.headers['transfer-encoding']).toBe('chunked');
  expect(s.headers['content-length']).toBeUndefined();
  expect(s.headers['mesos-stream-id']).toEqual(expect.any(String));
  expect(String(s.headers['mesos-stream-id']).length).toBeGreaterThan(0);
  const first = await s.next('SUBSCRIBED', () => true);
  expect(first.type).toBe('SUBSCRIBED');
  expect(first.subscribed.framework_id.value).toEqual(expect.any(String));
  expect(first.subscribed.heartbeat_interval_seconds).toBe(1);
  const t0 = Date.now();
  await s.next('a HEARTBEAT', (e) => e.type === 'HEARTBEAT', 5000);
  await s.next('a second HEARTBEAT', (e) => e.type === 'HEARTBEAT', 5000, s.events.findIndex((e) => e.type === 'HEARTBEAT') + 1);
  expect(Date.now() - t0).toBeLessThan(4000);
  await teardown(s);
});

test('OFFERS: id, framework_id, agent_id, hostname, resources with name/type/scalar|ranges, allocated to the role', async () => {
  const s = await subscribe('offers-check');
  const ev = await s.next('OFFERS', (e) => e.type === 'OFFERS');
  expect(Array.isArray(ev.offers.offers)).toBe(true);
  const offer = ev.offers.offers[0];
  expect(offer.id.value).toEqual(expect.any(String));
  expect(offer.framework_id.value).toBe(s.frameworkId);
  expect(offer.agent_id.value).toBe('mesos-node-1');
  expect(offer.hostname).toEqual(expect.any(String));
  const byName = new Map<string, any>(offer.resources.map((r: any) => [r.name, r]));
  expect(byName.get('cpus')).toMatchObject({ type: 'SCALAR', scalar: { value: expect.any(Number) } });
  expect(byName.get('mem')).toMatchObject({ type: 'SCALAR', scalar: { value: expect.any(Number) } });
  expect(byName.get('cpus').scalar.value).toBeGreaterThan(0);
  const ports = byName.get('ports');
  if (ports) expect(ports).toMatchObject({ type: 'RANGES', ranges: { range: [expect.objectContaining({ begin: expect.any(Number), end: expect.any(Number) })] } });
  // A MULTI_ROLE framework's offers say which role they are allocated to.
  const role = offer.allocation_info?.role ?? byName.get('cpus').allocation_info?.role;
  expect(role).toBe(ROLE);
  for (const r of offer.resources) expect(r.allocation_info?.role ?? offer.allocation_info?.role).toBe(ROLE);
  await teardown(s);
});

test('call errors: no Mesos-Stream-Id → 400, a wrong one → 400, unknown framework → 403, unknown type → 400, malformed JSON → 400, protobuf → 415', async () => {
  const s = await subscribe('errors-check');
  const ok = await call(leaderPort, s.streamId, { ...fw(s), type: 'REVIVE' });
  expect(ok.status).toBe(202);
  const results: Record<string, number> = {};
  results.noStreamId = (await call(leaderPort, undefined, { ...fw(s), type: 'REVIVE' })).status;
  results.wrongStreamId = (await call(leaderPort, 'not-the-stream-id', { ...fw(s), type: 'REVIVE' })).status;
  results.unknownFramework = (await call(leaderPort, s.streamId, { framework_id: { value: 'no-such-framework' }, type: 'REVIVE' })).status;
  results.unknownType = (await call(leaderPort, s.streamId, { ...fw(s), type: 'NO_SUCH_CALL' })).status;
  results.malformed = (await call(leaderPort, s.streamId, '{"type": "REVIVE", ')).status;
  results.protobuf = (await call(leaderPort, s.streamId, Buffer.from([0x10, 0x05]).toString('latin1'), 'application/x-protobuf')).status;
  expect(results).toEqual({ noStreamId: 400, wrongStreamId: 400, unknownFramework: 403, unknownType: 400, malformed: 400, protobuf: 415 });
  await teardown(s);
});

test('ACCEPT with LAUNCH → 202, UPDATEs with uuid up to TASK_RUNNING, ACKNOWLEDGE → 202; the task is a Shoal Task; TASK_FINISHED when it exits', async () => {
  const s = await subscribe('launch-check');
  const { offers: { offers: [offer] } } = await s.next('OFFERS', (e) => e.type === 'OFFERS');
  const r = await launch(s, offer, 'conf-run-1', 'sleep 30');
  expect(r.status).toBe(202);
  const running = await s.next('TASK_RUNNING', isUpdate('conf-run-1', 'TASK_RUNNING'));
  const st = running.update.status;
  expect(st.uuid).toEqual(expect.any(String));
  expect(Buffer.from(st.uuid, 'base64').length).toBeGreaterThan(0);
  expect(st.agent_id.value).toBe('mesos-node-1');
  expect(st.source).toMatch(/^SOURCE_(EXECUTOR|AGENT|MASTER)$/);
  const states = s.events.filter(isUpdate('conf-run-1')).map((e) => e.update.status.state);
  for (const before of states.slice(0, states.indexOf('TASK_RUNNING'))) expect(['TASK_STAGING', 'TASK_STARTING']).toContain(before);
  for (const e of s.events.filter(isUpdate('conf-run-1'))) {
    const a = await call(leaderPort, s.streamId, { ...fw(s), type: 'ACKNOWLEDGE', acknowledge: { agent_id: e.update.status.agent_id, task_id: e.update.status.task_id, uuid: e.update.status.uuid } });
    expect(a.status).toBe(202);
  }
  const tasks = await shoalTasks();
  expect(tasks.filter((t) => JSON.stringify(t).includes('conf-run-1')).map((t) => `${t.metadata.namespace}/${t.spec.nodeName}`)).toEqual(['default/mesos-node-1']);

  // A command that exits 0 ends TASK_FINISHED.
  const next = await s.next('another OFFERS', (e) => e.type === 'OFFERS', 15_000, s.events.indexOf(running) + 1);
  expect((await launch(s, next.offers.offers[0], 'conf-true-1', 'true')).status).toBe(202);
  const fin = await s.next('TASK_FINISHED', isUpdate('conf-true-1', 'TASK_FINISHED'));
  expect(fin.update.status.uuid).toEqual(expect.any(String));
  // A command that exits 1 ends TASK_FAILED.
  const third = await s.next('a third OFFERS', (e) => e.type === 'OFFERS', 15_000, s.events.indexOf(fin) + 1);
  expect((await launch(s, third.offers.offers[0], 'conf-false-1', 'exit 3')).status).toBe(202);
  await s.next('TASK_FAILED', isUpdate('conf-false-1', 'TASK_FAILED'));
  await teardown(s);
});

test('RECONCILE: explicit (a known task → its state, an unknown one → TASK_LOST with REASON_RECONCILIATION), both without uuid; implicit → every live task', async () => {
  const s = await subscribe('reconcile-check');
  const { offers: { offers: [offer] } } = await s.next('OFFERS', (e) => e.type === 'OFFERS');
  expect((await launch(s, offer, 'conf-rec-1', 'sleep 30')).status).toBe(202);
  await s.next('TASK_RUNNING', isUpdate('conf-rec-1', 'TASK_RUNNING'));
  const from = s.events.length;
  const r = await call(leaderPort, s.streamId, {
    ...fw(s), type: 'RECONCILE',
    reconcile: { tasks: [{ task_id: { value: 'conf-rec-1' }, agent_id: { value: 'mesos-node-1' } }, { task_id: { value: 'conf-rec-unknown' } }] },
  });
  expect(r.status).toBe(202);
  const known = (await s.next('the known task reconciled', isUpdate('conf-rec-1'), 10_000, from)).update.status;
  const unknown = (await s.next('the unknown task reconciled', isUpdate('conf-rec-unknown'), 10_000, from)).update.status;
  // task-state-reasons: REASON_RECONCILIATION "A framework requested implicit or explicit
  // reconciliation for this task ... the original reason field is overwritten".
  const pick = (st: any) => ({ state: st.state, reason: st.reason, uuid: st.uuid, source: st.source });
  expect({ known: pick(known), unknown: pick(unknown) }).toEqual({
    known: { state: 'TASK_RUNNING', reason: 'REASON_RECONCILIATION', uuid: undefined, source: 'SOURCE_MASTER' },
    unknown: { state: 'TASK_LOST', reason: 'REASON_RECONCILIATION', uuid: undefined, source: 'SOURCE_MASTER' },
  });

  const from2 = s.events.length;
  expect((await call(leaderPort, s.streamId, { ...fw(s), type: 'RECONCILE', reconcile: { tasks: [] } })).status).toBe(202);
  const implicit = (await s.next('implicit reconciliation', isUpdate('conf-rec-1'), 10_000, from2)).update.status;
  expect(implicit).toMatchObject({ state: 'TASK_RUNNING', reason: 'REASON_RECONCILIATION' });
  expect(implicit.uuid).toBeUndefined();
  // Mesos' call validation (src/master/validation.cpp) requires the `reconcile` message itself:
  // "Expecting 'reconcile' to be present"; an empty one is the implicit form above.
  const noField = await call(leaderPort, s.streamId, { ...fw(s), type: 'RECONCILE' });
  expect(noField.status).toBe(400);
  await teardown(s);
});

test('DECLINE with filters: the agent is not re-offered within refuse_seconds; REVIVE clears the filter', async () => {
  const s = await subscribe('decline-check');
  const first = await s.next('OFFERS', (e) => e.type === 'OFFERS');
  const ids = first.offers.offers.map((o: any) => o.id);
  expect((await call(leaderPort, s.streamId, { ...fw(s), type: 'DECLINE', decline: { offer_ids: ids, filters: { refuse_seconds: 60 } } })).status).toBe(202);
  const from = s.events.length;
  await new Promise((r) => setTimeout(r, 2500));
  expect(s.events.slice(from).filter((e) => e.type === 'OFFERS')).toEqual([]);
  expect((await call(leaderPort, s.streamId, { ...fw(s), type: 'REVIVE' })).status).toBe(202);
  await s.next('OFFERS after REVIVE', (e) => e.type === 'OFFERS', 10_000, from);
  // SUPPRESS stops offers (scheduler.proto: "Inform master to stop sending offers").
  const again = s.events.filter((e) => e.type === 'OFFERS').pop();
  expect((await call(leaderPort, s.streamId, { ...fw(s), type: 'SUPPRESS' })).status).toBe(202);
  expect((await call(leaderPort, s.streamId, { ...fw(s), type: 'DECLINE', decline: { offer_ids: again.offers.offers.map((o: any) => o.id) } })).status).toBe(202);
  const from2 = s.events.length;
  await new Promise((r) => setTimeout(r, 7000)); // past Mesos' default refuse_seconds (5)
  expect(s.events.slice(from2).filter((e) => e.type === 'OFFERS')).toEqual([]);
  await teardown(s);
});

test('KILL → TASK_KILLED (acknowledged); KILL of an unknown task → TASK_LOST', async () => {
  const s = await subscribe('kill-check');
  const { offers: { offers: [offer] } } = await s.next('OFFERS', (e) => e.type === 'OFFERS');
  expect((await launch(s, offer, 'conf-kill-1', 'sleep 60')).status).toBe(202);
  await s.next('TASK_RUNNING', isUpdate('conf-kill-1', 'TASK_RUNNING'));
  expect((await call(leaderPort, s.streamId, { ...fw(s), type: 'KILL', kill: { task_id: { value: 'conf-kill-1' }, agent_id: { value: 'mesos-node-1' } } })).status).toBe(202);
  const killed = (await s.next('TASK_KILLED', isUpdate('conf-kill-1', 'TASK_KILLED'))).update.status;
  expect(killed.uuid).toEqual(expect.any(String));
  expect((await call(leaderPort, s.streamId, { ...fw(s), type: 'ACKNOWLEDGE', acknowledge: { agent_id: killed.agent_id, task_id: killed.task_id, uuid: killed.uuid } })).status).toBe(202);
  expect((await call(leaderPort, s.streamId, { ...fw(s), type: 'KILL', kill: { task_id: { value: 'conf-kill-nope' } } })).status).toBe(202);
  // "If the task is unknown to the master, a TASK_LOST will be generated" (this framework is not PARTITION_AWARE).
  const lost = (await s.next('an update for the unknown task', isUpdate('conf-kill-nope'))).update.status;
  expect({ state: lost.state, source: lost.source }).toEqual({ state: 'TASK_LOST', source: 'SOURCE_MASTER' });
  await teardown(s);
});

// Mesos answers 202 and drops the tasks with updates; Shoal also refuses the call at once with a
// 4xx naming the problem (a deliberate difference, docs/frameworks.md). The updates are as Mesos'.
test('ACCEPT of an offer that is not outstanding → 4xx (Shoal) and the task ends TASK_LOST or TASK_DROPPED (REASON_INVALID_OFFERS)', async () => {
  const s = await subscribe('invalid-offer-check');
  await s.next('OFFERS', (e) => e.type === 'OFFERS');
  const fake = { id: { value: 'no-such-offer' }, agent_id: { value: 'mesos-node-1' }, allocation_info: { role: ROLE } };
  const refused = await launch(s, fake, 'conf-bad-offer', 'true');
  expect(refused.status).toBeGreaterThanOrEqual(400);
  expect(refused.status).toBeLessThan(500);
  const st = (await s.next('an update for the task', isUpdate('conf-bad-offer'))).update.status;
  expect(['TASK_LOST', 'TASK_DROPPED', 'TASK_ERROR']).toContain(st.state);
  expect(st.reason).toBe('REASON_INVALID_OFFERS');
  await teardown(s);
});

test('failover: a re-SUBSCRIBE with framework_id gets the same framework, a new stream id; the old stream id is refused', async () => {
  const s = await subscribe('failover-check', { failover_timeout: 60 });
  const id = s.frameworkId;
  const oldStream = s.streamId;
  const { offers: { offers: [offer] } } = await s.next('OFFERS', (e) => e.type === 'OFFERS');
  expect((await launch(s, offer, 'conf-fo-1', 'sleep 60')).status).toBe(202);
  await s.next('TASK_RUNNING', isUpdate('conf-fo-1', 'TASK_RUNNING'));
  s.close(); // the scheduler "crashes"
  await new Promise((r) => setTimeout(r, 500));
  // While disconnected, calls are refused with 403 ("until the scheduler subscribes again").
  const during = await call(leaderPort, oldStream, { framework_id: { value: id }, type: 'REVIVE' });
  expect([403, 400]).toContain(during.status);
  const s2 = await Subscription.open(leaderPort, { user: 'tester', name: 'failover-check', id: { value: id }, roles: [ROLE], capabilities: [{ type: 'MULTI_ROLE' }], failover_timeout: 60 }, { framework_id: { value: id } });
  subs.push(s2);
  expect(s2.status).toBe(200);
  const ev = await s2.next('SUBSCRIBED', (e) => e.type === 'SUBSCRIBED');
  expect(ev.subscribed.framework_id.value).toBe(id);
  expect(s2.streamId).not.toBe(oldStream);
  expect((await call(leaderPort, oldStream, { framework_id: { value: id }, type: 'REVIVE' })).status).toBe(400);
  expect((await call(leaderPort, s2.streamId, { framework_id: { value: id }, type: 'REVIVE' })).status).toBe(202);
  // Its task survived the disconnection.
  const from = s2.events.length;
  await call(leaderPort, s2.streamId, { framework_id: { value: id }, type: 'RECONCILE', reconcile: { tasks: [{ task_id: { value: 'conf-fo-1' } }] } });
  expect((await s2.next('the task reconciled', isUpdate('conf-fo-1'), 10_000, from)).update.status.state).toBe('TASK_RUNNING');
  await teardown(s2);
});

test('TEARDOWN → 202, the stream ends, the framework\'s tasks are killed', async () => {
  const s = await subscribe('teardown-check');
  const { offers: { offers: [offer] } } = await s.next('OFFERS', (e) => e.type === 'OFFERS');
  expect((await launch(s, offer, 'conf-td-1', 'sleep 60')).status).toBe(202);
  await s.next('TASK_RUNNING', isUpdate('conf-td-1', 'TASK_RUNNING'));
  const r = await call(leaderPort, s.streamId, { ...fw(s), type: 'TEARDOWN' });
  expect(r.status).toBe(202);
  expect(await s.untilEnded(10_000)).toBe(true);
  // Killed: seen in a terminal state, or already gone (a torn-down framework's tasks are deleted
  // once they have ended, which under load can come before this first looks).
  const deadline = Date.now() + 15_000;
  let state: string | undefined;
  while (Date.now() < deadline) {
    const t = (await shoalTasks()).find((x) => JSON.stringify(x).includes('conf-td-1'));
    state = t ? t.status?.state : 'GONE';
    if (state && !['PENDING', 'STAGING', 'STARTING', 'RUNNING', 'KILLING'].includes(state)) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  expect(state).toMatch(/KILLED|FINISHED|FAILED|GONE/);
  // Calls for a torn-down framework are refused.
  const after = await call(leaderPort, s.streamId, { ...fw(s), type: 'REVIVE' });
  expect([400, 403]).toContain(after.status);
});
