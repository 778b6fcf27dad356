import {
  CALL_TYPES,
  CallError,
  frameworkRole,
  isPartitionAware,
  LABELS_ANNOTATION,
  launchesFromAccept,
  offerToMesos,
  parseCall,
  resourcesToMesos,
  stateToMesos,
  statusToMesos,
  TASK_STATES,
  taskNameFor,
  uuidFromBytes64,
  uuidToBytes64,
  type AcceptOptions,
} from '../../pkg/master/mesos/convert';
import type { AcceptCall, FrameworkInfo, TaskInfo } from '../../pkg/master/mesos/types';
import type { Offer } from '../../pkg/scheduler/types';

const FW = 'fw-1';
const ACK_UUID = uuidToBytes64('0f8fad5b-d9cb-469f-a165-70867728950e');

function thrown(f: () => unknown): CallError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(CallError);
    return err as CallError;
  }
  throw new Error('did not throw');
}

// ---- parseCall ----

describe('parseCall', () => {
  const fid = { framework_id: { value: FW } };
  const valid: Array<[string, Record<string, unknown>]> = [
    ['SUBSCRIBE', { type: 'SUBSCRIBE', subscribe: { framework_info: { user: 'u', name: 'n' } } }],
    ['SUBSCRIBE (failover)', { type: 'SUBSCRIBE', ...fid, subscribe: { framework_info: { user: 'u', name: 'n', id: { value: FW } }, suppressed_roles: ['r'] } }],
    ['TEARDOWN', { type: 'TEARDOWN', ...fid }],
    ['ACCEPT', { type: 'ACCEPT', ...fid, accept: { offer_ids: [{ value: 'o1' }], operations: [{ type: 'LAUNCH', launch: { task_infos: [] } }], filters: { refuse_seconds: 1 } } }],
    ['DECLINE', { type: 'DECLINE', ...fid, decline: { offer_ids: [{ value: 'o1' }], filters: { refuse_seconds: 10 } } }],
    ['ACCEPT_INVERSE_OFFERS', { type: 'ACCEPT_INVERSE_OFFERS', ...fid, accept_inverse_offers: { inverse_offer_ids: [{ value: 'i' }] } }],
    ['DECLINE_INVERSE_OFFERS', { type: 'DECLINE_INVERSE_OFFERS', ...fid, decline_inverse_offers: { inverse_offer_ids: [{ value: 'i' }] } }],
    ['REVIVE', { type: 'REVIVE', ...fid }],
    ['REVIVE with roles', { type: 'REVIVE', ...fid, revive: { roles: ['r'] } }],
    ['SUPPRESS', { type: 'SUPPRESS', ...fid, suppress: { roles: [] } }],
    ['KILL', { type: 'KILL', ...fid, kill: { task_id: { value: 't' }, agent_id: { value: 'a' }, kill_policy: { grace_period: { nanoseconds: '5000000000' } } } }],
    ['SHUTDOWN', { type: 'SHUTDOWN', ...fid, shutdown: { executor_id: { value: 'e' }, agent_id: { value: 'a' } } }],
    ['ACKNOWLEDGE', { type: 'ACKNOWLEDGE', ...fid, acknowledge: { agent_id: { value: 'a' }, task_id: { value: 't' }, uuid: ACK_UUID } }],
    ['ACKNOWLEDGE_OPERATION_STATUS', { type: 'ACKNOWLEDGE_OPERATION_STATUS', ...fid, acknowledge_operation_status: { uuid: ACK_UUID, operation_id: { value: 'op' } } }],
    ['RECONCILE (explicit)', { type: 'RECONCILE', ...fid, reconcile: { tasks: [{ task_id: { value: 't' }, agent_id: { value: 'a' } }] } }],
    ['RECONCILE (implicit)', { type: 'RECONCILE', ...fid, reconcile: {} }],
    ['RECONCILE_OPERATIONS', { type: 'RECONCILE_OPERATIONS', ...fid, reconcile_operations: { operations: [] } }],
    ['MESSAGE', { type: 'MESSAGE', ...fid, message: { agent_id: { value: 'a' }, executor_id: { value: 'e' }, data: 'aGVsbG8=' } }],
    ['REQUEST', { type: 'REQUEST', ...fid, request: { requests: [] } }],
    ['UPDATE_FRAMEWORK', { type: 'UPDATE_FRAMEWORK', ...fid, update_framework: { framework_info: { user: 'u', name: 'n', id: { value: FW } } } }],
  ];

  it.each(valid)('accepts %s', (_name, body) => {
    expect(parseCall(body)).toBe(body);
  });

  it('covers every call type', () => {
    expect(new Set(valid.map(([, b]) => b.type))).toEqual(new Set(CALL_TYPES));
  });

  it('ignores unknown fields, as Mesos does', () => {
    expect(() => parseCall({ type: 'REVIVE', ...fid, something_new: { x: 1 } })).not.toThrow();
  });

  const refused: Array<[string, unknown, string | RegExp]> = [
    ['not an object', [1], 'Call: expecting a JSON object, got an array'],
    ['null', null, 'Call: expecting a JSON object, got null'],
    ['a string', 'ACCEPT', 'Call: expecting a JSON object, got string'],
    ['no type', { ...fid }, "Expecting 'type' to be present"],
    ['an unknown type', { type: 'LAUNCH', ...fid }, 'Unknown call type "LAUNCH"'],
    ['type UNKNOWN', { type: 'UNKNOWN', ...fid }, 'Unknown call type "UNKNOWN"'],
    ['a numeric type', { type: 3, ...fid }, 'Unknown call type 3'],
    ['no framework_id', { type: 'TEARDOWN' }, "Expecting 'framework_id' to be present"],
    ['framework_id without value', { type: 'TEARDOWN', framework_id: {} }, "Expecting 'Call.framework_id.value' to be present"],
    ['framework_id a string', { type: 'TEARDOWN', framework_id: FW }, 'Call.framework_id: expecting an object, got string'],
    ['an empty framework id', { type: 'TEARDOWN', framework_id: { value: '' } }, 'Call.framework_id.value: must not be empty'],
    ['SUBSCRIBE without subscribe', { type: 'SUBSCRIBE' }, "Expecting 'subscribe' to be present"],
    ['SUBSCRIBE without framework_info', { type: 'SUBSCRIBE', subscribe: {} }, "Expecting 'Call.subscribe.framework_info' to be present"],
    ['SUBSCRIBE without user', { type: 'SUBSCRIBE', subscribe: { framework_info: { name: 'n' } } }, "Expecting 'Call.subscribe.framework_info.user' to be present"],
    ['SUBSCRIBE without name', { type: 'SUBSCRIBE', subscribe: { framework_info: { user: 'u' } } }, "Expecting 'Call.subscribe.framework_info.name' to be present"],
    ['SUBSCRIBE with a numeric name', { type: 'SUBSCRIBE', subscribe: { framework_info: { user: 'u', name: 7 } } }, 'Call.subscribe.framework_info.name: expecting a string, got number'],
    ['SUBSCRIBE with a string failover_timeout', { type: 'SUBSCRIBE', subscribe: { framework_info: { user: 'u', name: 'n', failover_timeout: '60' } } }, 'Call.subscribe.framework_info.failover_timeout: expecting a number, got string'],
    ['SUBSCRIBE with roles not an array', { type: 'SUBSCRIBE', subscribe: { framework_info: { user: 'u', name: 'n', roles: 'a' } } }, 'Call.subscribe.framework_info.roles: expecting an array, got string'],
    ['SUBSCRIBE with ids that differ', { type: 'SUBSCRIBE', framework_id: { value: 'x' }, subscribe: { framework_info: { user: 'u', name: 'n', id: { value: 'y' } } } }, "'framework_id' differs from 'subscribe.framework_info.id'"],
    ['ACCEPT without accept', { type: 'ACCEPT', ...fid }, "Expecting 'accept' to be present"],
    ['ACCEPT without offers', { type: 'ACCEPT', ...fid, accept: { operations: [] } }, "Expecting 'accept.offer_ids' to be non-empty"],
    ['ACCEPT with empty offers', { type: 'ACCEPT', ...fid, accept: { offer_ids: [] } }, "Expecting 'accept.offer_ids' to be non-empty"],
    ['ACCEPT with a bare offer id', { type: 'ACCEPT', ...fid, accept: { offer_ids: ['o1'] } }, 'Call.accept.offer_ids[0]: expecting an object, got string'],
    ['ACCEPT with an operation without type', { type: 'ACCEPT', ...fid, accept: { offer_ids: [{ value: 'o' }], operations: [{}] } }, "Expecting 'Call.accept.operations[0].type' to be present"],
    ['ACCEPT with a task without task_id', { type: 'ACCEPT', ...fid, accept: { offer_ids: [{ value: 'o' }], operations: [{ type: 'LAUNCH', launch: { task_infos: [{ name: 'n', agent_id: { value: 'a' } }] } }] } }, "Expecting 'Call.accept.operations[0].launch.task_infos[0].task_id' to be present"],
    ['ACCEPT with string cpus', { type: 'ACCEPT', ...fid, accept: { offer_ids: [{ value: 'o' }], operations: [{ type: 'LAUNCH', launch: { task_infos: [{ name: 'n', task_id: { value: 't' }, agent_id: { value: 'a' }, resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: '1' } }] }] } }] } }, 'Call.accept.operations[0].launch.task_infos[0].resources[0].scalar.value: expecting a number, got string'],
    ['ACCEPT with a string refuse_seconds', { type: 'ACCEPT', ...fid, accept: { offer_ids: [{ value: 'o' }], filters: { refuse_seconds: '5' } } }, 'Call.accept.filters.refuse_seconds: expecting a number, got string'],
    ['DECLINE without decline', { type: 'DECLINE', ...fid }, "Expecting 'decline' to be present"],
    ['DECLINE with empty offers', { type: 'DECLINE', ...fid, decline: { offer_ids: [] } }, "Expecting 'decline.offer_ids' to be non-empty"],
    ['KILL without kill', { type: 'KILL', ...fid }, "Expecting 'kill' to be present"],
    ['KILL without task_id', { type: 'KILL', ...fid, kill: { agent_id: { value: 'a' } } }, "Expecting 'Call.kill.task_id' to be present"],
    ['KILL with a fractional grace period', { type: 'KILL', ...fid, kill: { task_id: { value: 't' }, kill_policy: { grace_period: { nanoseconds: 1.5 } } } }, 'Call.kill.kill_policy.grace_period.nanoseconds: expecting an integer, got 1.5'],
    ['ACKNOWLEDGE without acknowledge', { type: 'ACKNOWLEDGE', ...fid }, "Expecting 'acknowledge' to be present"],
    ['ACKNOWLEDGE without uuid', { type: 'ACKNOWLEDGE', ...fid, acknowledge: { agent_id: { value: 'a' }, task_id: { value: 't' } } }, "Expecting 'Call.acknowledge.uuid' to be present"],
    ['ACKNOWLEDGE with a short uuid', { type: 'ACKNOWLEDGE', ...fid, acknowledge: { agent_id: { value: 'a' }, task_id: { value: 't' }, uuid: 'aGVsbG8=' } }, /^Call\.acknowledge\.uuid: expecting the 16 bytes of a UUID in base64/],
    ['ACKNOWLEDGE with a text uuid', { type: 'ACKNOWLEDGE', ...fid, acknowledge: { agent_id: { value: 'a' }, task_id: { value: 't' }, uuid: '0f8fad5b-d9cb-469f-a165-70867728950e' } }, /^Call\.acknowledge\.uuid: expecting the 16 bytes of a UUID in base64/],
    ['RECONCILE without reconcile', { type: 'RECONCILE', ...fid }, "Expecting 'reconcile' to be present"],
    ['RECONCILE with a task without task_id', { type: 'RECONCILE', ...fid, reconcile: { tasks: [{ agent_id: { value: 'a' } }] } }, "Expecting 'Call.reconcile.tasks[0].task_id' to be present"],
    ['SHUTDOWN without shutdown', { type: 'SHUTDOWN', ...fid }, "Expecting 'shutdown' to be present"],
    ['MESSAGE without message', { type: 'MESSAGE', ...fid }, "Expecting 'message' to be present"],
    ['MESSAGE with data that is not base64', { type: 'MESSAGE', ...fid, message: { agent_id: { value: 'a' }, executor_id: { value: 'e' }, data: 'not base64!' } }, 'Call.message.data: expecting base64-encoded bytes'],
    ['REQUEST without request', { type: 'REQUEST', ...fid }, "Expecting 'request' to be present"],
    ['ACCEPT_INVERSE_OFFERS without its message', { type: 'ACCEPT_INVERSE_OFFERS', ...fid }, "Expecting 'accept_inverse_offers' to be present"],
    ['DECLINE_INVERSE_OFFERS without its message', { type: 'DECLINE_INVERSE_OFFERS', ...fid }, "Expecting 'decline_inverse_offers' to be present"],
    ['UPDATE_FRAMEWORK with another id', { type: 'UPDATE_FRAMEWORK', ...fid, update_framework: { framework_info: { user: 'u', name: 'n', id: { value: 'x' } } } }, "'framework_id' differs from 'update_framework.framework_info.id'"],
    ['REVIVE with roles of numbers', { type: 'REVIVE', ...fid, revive: { roles: [1] } }, 'Call.revive.roles[0]: expecting a string, got number'],
    ['a __proto__ key', JSON.parse(`{"type":"REVIVE","framework_id":{"value":"${FW}"},"revive":{"__proto__":{"x":1}}}`), "Call.revive: the key '__proto__' is not allowed"],
    ['a constructor key deep inside', { type: 'ACCEPT', ...fid, accept: { offer_ids: [{ value: 'o', constructor: 1 }] } }, "Call.accept.offer_ids[0]: the key 'constructor' is not allowed"],
    ['too deep nesting', { type: 'REVIVE', ...fid, x: JSON.parse('['.repeat(40) + ']'.repeat(40)) }, /nested deeper than 32 levels/],
  ];

  it.each(refused)('refuses %s (400)', (_name, body, message) => {
    const err = thrown(() => parseCall(body));
    expect(err.status).toBe(400);
    if (typeof message === 'string') expect(err.message).toBe(message);
    else expect(err.message).toMatch(message);
  });
});

// ---- roles ----

describe('frameworkRole', () => {
  const info = (extra: Partial<FrameworkInfo>): FrameworkInfo => ({ user: 'u', name: 'n', ...extra });
  const multi = { capabilities: [{ type: 'MULTI_ROLE' }] };

  it.each<[string, Partial<FrameworkInfo>, string]>([
    ['no role', {}, '*'],
    ['legacy role', { role: 'web' }, 'web'],
    ['legacy *', { role: '*' }, '*'],
    ['MULTI_ROLE with one role', { ...multi, roles: ['eng/web'] }, 'eng/web'],
    ['MULTI_ROLE with no roles', { ...multi }, '*'],
    ['a dotted role', { role: 'a.b_c-d' }, 'a.b_c-d'],
  ])('%s', (_n, extra, role) => {
    expect(frameworkRole(info(extra))).toBe(role);
  });

  it.each<[string, Partial<FrameworkInfo>, string]>([
    ['two roles', { ...multi, roles: ['a', 'b'] }, "Shoal supports one role per framework; 'FrameworkInfo.roles' has 2: a, b"],
    ['duplicate roles', { ...multi, roles: ['a', 'a'] }, "'FrameworkInfo.roles' contains duplicate items: a"],
    ['role with MULTI_ROLE', { ...multi, role: 'a' }, "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"],
    ['roles without MULTI_ROLE', { roles: ['a'] }, "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"],
    ['an empty role', { role: '' }, "'FrameworkInfo.role' is not a valid role: Empty role name is invalid"],
    ['.', { role: '.' }, "'FrameworkInfo.role' is not a valid role: Role '.' cannot contain '.' or '..' as a path component"],
    ['..', { ...multi, roles: ['..'] }, "'FrameworkInfo.roles' contains invalid role: Role '..' cannot contain '.' or '..' as a path component"],
    ['a leading slash', { role: '/a' }, "'FrameworkInfo.role' is not a valid role: Role '/a' cannot start with a slash"],
    ['a trailing slash', { role: 'a/' }, "'FrameworkInfo.role' is not a valid role: Role 'a/' cannot end with a slash"],
    ['two slashes', { role: 'a//b' }, "'FrameworkInfo.role' is not a valid role: Role 'a//b' cannot contain two adjacent slashes"],
    ['a .. component', { role: 'a/../b' }, "'FrameworkInfo.role' is not a valid role: Role 'a/../b' cannot contain '.' or '..' as a path component"],
    ['a leading dash', { role: '-a' }, "'FrameworkInfo.role' is not a valid role: Role '-a' is invalid because '-a' starts with a dash"],
    ['whitespace', { role: 'a b' }, "'FrameworkInfo.role' is not a valid role: Role name 'a b' is invalid because it contains backspace or whitespace"],
    ['a tab', { role: 'a\tb' }, "'FrameworkInfo.role' is not a valid role: Role name 'a\tb' is invalid because it contains backspace or whitespace"],
    ['a * component', { role: 'a/*' }, "'FrameworkInfo.role' is not a valid role: Role 'a/*' cannot contain '*' as a path component"],
    ['a long role', { role: 'r'.repeat(64) }, `'FrameworkInfo.role' is not a valid role: Role '${'r'.repeat(64)}' is longer than the 63 characters Shoal allows`],
  ])('refuses %s (400)', (_n, extra, message) => {
    const err = thrown(() => frameworkRole(info(extra)));
    expect(err.status).toBe(400);
    expect(err.message).toBe(message);
  });

  it('tells partition-aware frameworks', () => {
    expect(isPartitionAware(info({ capabilities: [{ type: 'PARTITION_AWARE' }] }))).toBe(true);
    expect(isPartitionAware(info({}))).toBe(false);
  });
});

// ---- task names ----

describe('taskNameFor', () => {
  const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
  it.each([
    ['web-1', /^web-1-[0-9a-f]{16}$/],
    ['My_Task.42', /^my-task-42-[0-9a-f]{16}$/],
    ['日本', /^task-[0-9a-f]{16}$/],
    ['---', /^task-[0-9a-f]{16}$/],
    ['', /^task-[0-9a-f]{16}$/],
    ['x'.repeat(300), /^x{46}-[0-9a-f]{16}$/],
    ['a-'.repeat(40), /^(a-){22}a-[0-9a-f]{16}$/],
    ['/etc/passwd', /^etc-passwd-[0-9a-f]{16}$/],
  ])('%j is a DNS-1123 label', (id, shape) => {
    const name = taskNameFor(FW, id);
    expect(name).toMatch(shape);
    expect(name).toMatch(DNS_LABEL);
    expect(name.length).toBeLessThanOrEqual(63);
  });

  it('is deterministic and unique per (framework, task id)', () => {
    expect(taskNameFor(FW, 'a')).toBe(taskNameFor(FW, 'a'));
    const names = new Set([taskNameFor(FW, 'A'), taskNameFor(FW, 'a'), taskNameFor(FW, 'a!'), taskNameFor(FW, 'a?'), taskNameFor('fw-2', 'a'), taskNameFor(`${FW}\0`, 'a')]);
    expect(names.size).toBe(6);
  });
});

// ---- offers ----

const offer = (over: Partial<Offer> = {}): Offer => ({
  id: 'o1',
  frameworkId: FW,
  agent: 'a1',
  hostname: 'host-1.example',
  attributes: { rack: 'r1', zone: 'eu-1a', gpus: '2', weight: '0.5' },
  runtimes: ['docker', 'process'],
  resources: { cpus: 4, mem: 8192, disk: 10240, ports: [[31000, 31009], [32000, 32000]] },
  expiresAt: 1e15,
  ...over,
});

describe('offers', () => {
  it('converts an offer with ports and attributes to Mesos JSON', () => {
    const alloc = { allocation_info: { role: 'web' } };
    expect(JSON.parse(JSON.stringify(offerToMesos(offer(), FW, 'web')))).toEqual({
      id: { value: 'o1' },
      framework_id: { value: FW },
      agent_id: { value: 'a1' },
      hostname: 'host-1.example',
      resources: [
        { name: 'cpus', type: 'SCALAR', scalar: { value: 4 }, role: '*', ...alloc },
        { name: 'mem', type: 'SCALAR', scalar: { value: 8192 }, role: '*', ...alloc },
        { name: 'disk', type: 'SCALAR', scalar: { value: 10240 }, role: '*', ...alloc },
        { name: 'ports', type: 'RANGES', ranges: { range: [{ begin: 31000, end: 31009 }, { begin: 32000, end: 32000 }] }, role: '*', ...alloc },
      ],
      attributes: [
        { name: 'gpus', type: 'SCALAR', scalar: { value: 2 } },
        { name: 'rack', type: 'TEXT', text: { value: 'r1' } },
        { name: 'weight', type: 'SCALAR', scalar: { value: 0.5 } },
        { name: 'zone', type: 'TEXT', text: { value: 'eu-1a' } },
      ],
      allocation_info: { role: 'web' },
    });
  });

  it('leaves out zero scalars, empty ports and empty attributes', () => {
    const o = offerToMesos(offer({ attributes: {}, resources: { cpus: 0.5, mem: 64, disk: 0, ports: [] } }), FW, '*');
    expect(o.resources.map((r) => r.name)).toEqual(['cpus', 'mem']);
    expect(o.attributes).toBeUndefined();
  });

  it('merges adjacent port ranges', () => {
    expect(resourcesToMesos({ cpus: 0, mem: 0, disk: 0, ports: [[2, 3], [1, 1], [5, 6]] }, '*')[0].ranges).toEqual({ range: [{ begin: 1, end: 3 }, { begin: 5, end: 6 }] });
  });
});

// ---- launches ----

const opts = (over: Partial<AcceptOptions> = {}): AcceptOptions => ({ frameworkId: FW, role: 'web', namespace: 'mesos', existingTaskNames: new Set(), ...over });
const offers = (...os: Offer[]): Map<string, Offer> => new Map((os.length ? os : [offer()]).map((o) => [o.id, o]));
const scalar = (name: string, value: number) => ({ name, type: 'SCALAR' as const, scalar: { value } });
const portsRes = (...ranges: Array<[number, number]>) => ({ name: 'ports', type: 'RANGES' as const, ranges: { range: ranges.map(([begin, end]) => ({ begin, end })) } });
const task = (over: Partial<TaskInfo> = {}): TaskInfo => ({
  name: 'web',
  task_id: { value: 'web-1' },
  agent_id: { value: 'a1' },
  resources: [scalar('cpus', 1), scalar('mem', 128)],
  command: { value: 'sleep 100' },
  ...over,
});
const accept = (...tasks: TaskInfo[]): AcceptCall => ({ offer_ids: [{ value: 'o1' }], operations: [{ type: 'LAUNCH', launch: { task_infos: tasks } }] });

describe('launchesFromAccept', () => {
  it('builds LaunchRequests for a shell task and a docker task', () => {
    const shellTask = task({
      name: 'Web Server',
      task_id: { value: 'web.1' },
      resources: [scalar('cpus', 1.5), scalar('mem', 256), scalar('disk', 100), portsRes([31000, 31001])],
      command: { value: 'python3 -m http.server $PORT', environment: { variables: [{ name: 'PORT', value: '31000' }, { name: 'MODE', type: 'VALUE', value: 'prod' }] } },
      health_check: { type: 'HTTP', http: { port: 31001, path: '/health' }, interval_seconds: 5, timeout_seconds: 2.5, consecutive_failures: 2 },
      kill_policy: { grace_period: { nanoseconds: '2500000000' } },
      labels: { labels: [{ key: 'tier', value: 'front' }, { key: 'owner', value: 'team a' }, { key: 'shoal.dev/framework', value: 'spoof' }, { key: 'flag' }] },
    });
    const dockerTask = task({
      name: 'cache',
      task_id: { value: 'cache-1' },
      resources: [scalar('cpus', 0.5), scalar('mem', 512), portsRes([31005, 31005])],
      command: { shell: false, arguments: ['--maxmemory', '256mb'], user: 'nobody' },
      container: { type: 'DOCKER', docker: { image: 'redis:7', network: 'BRIDGE', port_mappings: [{ host_port: 31005, container_port: 6379, protocol: 'tcp' }] } },
      health_check: { type: 'TCP', tcp: { port: 6379 } },
    });
    const call = accept(shellTask, dockerTask);
    call.filters = { refuse_seconds: 10 };
    expect(launchesFromAccept(call, offers(), opts())).toEqual({
      offerIds: ['o1'],
      launches: [
        {
          offerId: 'o1',
          namespace: 'mesos',
          taskName: taskNameFor(FW, 'web.1'),
          resources: { cpus: 1.5, mem: 256, disk: 100 },
          ports: [31000, 31001],
          task: {
            metadata: {
              labels: { tier: 'front', flag: '' },
              annotations: {
                'mesos.shoal.dev/task-id': 'web.1',
                'mesos.shoal.dev/task-name': 'Web Server',
                [LABELS_ANNOTATION]: JSON.stringify([{ key: 'owner', value: 'team a' }, { key: 'shoal.dev/framework', value: 'spoof' }]),
              },
            },
            spec: {
              role: 'web',
              cmd: 'python3 -m http.server $PORT',
              env: { PORT: '31000', MODE: 'prod' },
              ports: [{ hostPort: 31000, protocol: 'tcp' }, { hostPort: 31001, protocol: 'tcp' }],
              healthChecks: [{ protocol: 'HTTP', portIndex: 1, path: '/health', gracePeriodSeconds: 10, intervalSeconds: 5, timeoutSeconds: 3, maxConsecutiveFailures: 2, delaySeconds: 15 }],
              taskKillGracePeriodSeconds: 3,
            },
          },
        },
        {
          offerId: 'o1',
          namespace: 'mesos',
          taskName: taskNameFor(FW, 'cache-1'),
          resources: { cpus: 0.5, mem: 512, disk: 0 },
          ports: [31005],
          task: {
            metadata: { annotations: { 'mesos.shoal.dev/task-id': 'cache-1', 'mesos.shoal.dev/task-name': 'cache' } },
            spec: {
              role: 'web',
              runtime: 'docker',
              container: { image: 'redis:7', args: ['--maxmemory', '256mb'], user: 'nobody' },
              ports: [{ hostPort: 31005, protocol: 'tcp', containerPort: 6379 }],
              healthChecks: [{ protocol: 'TCP', portIndex: 0, path: '/', gracePeriodSeconds: 10, intervalSeconds: 10, timeoutSeconds: 20, maxConsecutiveFailures: 3, delaySeconds: 15 }],
            },
          },
        },
      ],
    });
  });

  it.each<[string, Partial<TaskInfo>, Record<string, unknown>]>([
    ['shell (default)', { command: { value: 'echo "hi" && sleep 1' } }, { cmd: 'echo "hi" && sleep 1' }],
    ['shell false: argv[0] is the program name', { command: { shell: false, value: '/bin/echo', arguments: ['echo', 'hello world', "it's"] } }, { cmd: `/bin/echo 'hello world' 'it'\\''s'` }],
    ['docker with a shell command', { command: { value: 'redis-server --port $PORT' }, container: { type: 'DOCKER', docker: { image: 'redis' } } }, { runtime: 'docker', container: { image: 'redis', command: ['/bin/sh', '-c', 'redis-server --port $PORT'] } }],
    ['docker with no command', { command: { shell: false }, container: { type: 'DOCKER', docker: { image: 'nginx' } } }, { runtime: 'docker', container: { image: 'nginx' } }],
    ['docker without command at all', { command: undefined, container: { type: 'DOCKER', docker: { image: 'nginx' } } }, { runtime: 'docker', container: { image: 'nginx' } }],
    ['docker, shell false with value', { command: { shell: false, value: 'serve', arguments: ['-v'] }, container: { type: 'DOCKER', docker: { image: 'app' } } }, { runtime: 'docker', container: { image: 'app', args: ['serve', '-v'] } }],
    ['mesos image, shell false', { command: { shell: false, value: '/app/run', arguments: ['run', '--fast'] }, container: { type: 'MESOS', mesos: { image: { type: 'DOCKER', docker: { name: 'app:1' } } } } }, { runtime: 'docker', container: { image: 'app:1', command: ['/app/run'], args: ['--fast'] } }],
    ['mesos image, shell', { command: { value: 'run' }, container: { type: 'MESOS', mesos: { image: { type: 'DOCKER', docker: { name: 'app:1' } } } } }, { runtime: 'docker', container: { image: 'app:1', command: ['/bin/sh', '-c', 'run'] } }],
    ['mesos container without image', { command: { value: 'run' }, container: { type: 'MESOS', mesos: {} } }, { cmd: 'run' }],
  ])('runs %s', (_n, over, expected) => {
    const spec = launchesFromAccept(accept(task(over)), offers(), opts()).launches[0].task.spec;
    expect({ cmd: spec.cmd, runtime: spec.runtime, container: spec.container }).toEqual({ cmd: undefined, runtime: undefined, container: undefined, ...expected });
  });

  it.each<[string, TaskInfo['health_check'], unknown]>([
    ['COMMAND', { type: 'COMMAND', command: { value: 'curl -f localhost' }, delay_seconds: 0, grace_period_seconds: 30 }, { protocol: 'COMMAND', command: { value: 'curl -f localhost' }, path: '/', delaySeconds: 0, gracePeriodSeconds: 30, intervalSeconds: 10, timeoutSeconds: 20, maxConsecutiveFailures: 3 }],
    ['COMMAND without type (pre-1.0 style)', { command: { shell: false, value: 'check', arguments: ['check', 'a b'] } }, { protocol: 'COMMAND', command: { value: "check 'a b'" }, path: '/', delaySeconds: 15, gracePeriodSeconds: 10, intervalSeconds: 10, timeoutSeconds: 20, maxConsecutiveFailures: 3 }],
    ['HTTP without path', { type: 'HTTP', http: { port: 31000 } }, { protocol: 'HTTP', portIndex: 0, path: '/', delaySeconds: 15, gracePeriodSeconds: 10, intervalSeconds: 10, timeoutSeconds: 20, maxConsecutiveFailures: 3 }],
  ])('maps a %s health check', (_n, hc, expected) => {
    const spec = launchesFromAccept(accept(task({ resources: [scalar('cpus', 1), scalar('mem', 128), portsRes([31000, 31000])], health_check: hc })), offers(), opts()).launches[0].task.spec;
    expect(spec.healthChecks).toEqual([expected]);
  });

  it('sums resources over offers of one agent and assigns each task an offer it fits', () => {
    const o1 = offer({ id: 'o1', resources: { cpus: 1, mem: 256, disk: 0, ports: [[31000, 31000]] } });
    const o2 = offer({ id: 'o2', resources: { cpus: 2, mem: 256, disk: 0, ports: [[31001, 31001]] } });
    const call: AcceptCall = {
      offer_ids: [{ value: 'o1' }, { value: 'o2' }],
      operations: [
        { type: 'LAUNCH', launch: { task_infos: [task({ task_id: { value: 'a' }, resources: [scalar('cpus', 2), scalar('mem', 100)] })] } },
        { type: 'LAUNCH', launch: { task_infos: [task({ task_id: { value: 'b' }, resources: [scalar('cpus', 1), scalar('mem', 100), portsRes([31000, 31000])] })] } },
      ],
    };
    const out = launchesFromAccept(call, offers(o1, o2), opts());
    expect(out.offerIds).toEqual(['o1', 'o2']);
    expect(out.launches.map((l) => l.offerId)).toEqual(['o2', 'o1']);
  });

  it('gives no launches for an ACCEPT without operations', () => {
    expect(launchesFromAccept({ offer_ids: [{ value: 'o1' }] }, offers(), opts())).toEqual({ offerIds: ['o1'], launches: [] });
  });

  const P = 'Call.accept.operations[0].launch.task_infos';
  const refusals: Array<[string, () => unknown, number, string]> = [
    ['an unknown offer', () => launchesFromAccept({ offer_ids: [{ value: 'o9' }] }, offers(), opts()), 409, 'Offer o9 is no longer valid'],
    ["another framework's offer", () => launchesFromAccept(accept(task()), offers(offer({ frameworkId: 'fw-2' })), opts()), 409, 'Offer o1 is no longer valid'],
    ['a duplicate offer', () => launchesFromAccept({ offer_ids: [{ value: 'o1' }, { value: 'o1' }] }, offers(), opts()), 400, 'Duplicate offer o1 in offer list'],
    ['offers of two agents', () => launchesFromAccept({ offer_ids: [{ value: 'o1' }, { value: 'o2' }] }, offers(offer(), offer({ id: 'o2', agent: 'a2' })), opts()), 400, 'Aggregated offers must belong to one single agent. Offer o2 uses agent a2 and agent a1'],
    ['no offers', () => launchesFromAccept({ offer_ids: [] }, offers(), opts()), 400, "Expecting 'accept.offer_ids' to be non-empty"],
    ...(['RESERVE', 'UNRESERVE', 'CREATE', 'DESTROY', 'LAUNCH_GROUP', 'GROW_VOLUME', 'SHRINK_VOLUME', 'CREATE_DISK', 'DESTROY_DISK', 'UNKNOWN'] as const).map(
      (type): [string, () => unknown, number, string] => [`operation ${type}`, () => launchesFromAccept({ offer_ids: [{ value: 'o1' }], operations: [{ type }] }, offers(), opts()), 400, `Call.accept.operations[0]: Operation ${type} is not supported by Shoal (only LAUNCH is)`],
    ),
    ['LAUNCH without launch', () => launchesFromAccept({ offer_ids: [{ value: 'o1' }], operations: [{ type: 'LAUNCH' }] }, offers(), opts()), 400, "Expecting 'Call.accept.operations[0].launch.task_infos' to be present"],
    ['a task with an executor', () => launchesFromAccept(accept(task({ executor: { executor_id: { value: 'e' } } })), offers(), opts()), 400, `${P}[0].executor: custom executors are not supported by Shoal; give the task a 'command' (and a 'container')`],
    ['another agent', () => launchesFromAccept(accept(task({ agent_id: { value: 'a2' } })), offers(), opts()), 422, `${P}[0].agent_id: Task uses invalid agent a2 while agent a1 is expected`],
    ['no agent_id', () => launchesFromAccept(accept(task({ agent_id: undefined })), offers(), opts()), 400, `Expecting '${P}[0].agent_id' to be present`],
    ['no task_id', () => launchesFromAccept(accept(task({ task_id: undefined })), offers(), opts()), 400, `Expecting '${P}[0].task_id' to be present`],
    ['an empty task_id', () => launchesFromAccept(accept(task({ task_id: { value: '' } })), offers(), opts()), 400, `${P}[0].task_id: Task has an invalid TaskID: ID must not be empty`],
    ['a task_id with a slash', () => launchesFromAccept(accept(task({ task_id: { value: 'a/b' } })), offers(), opts()), 400, `${P}[0].task_id: Task has an invalid TaskID: 'a/b' contains invalid characters`],
    ['no name', () => launchesFromAccept(accept(task({ name: undefined as unknown as string })), offers(), opts()), 400, `Expecting '${P}[0].name' to be present`],
    ['a duplicate task id in the call', () => launchesFromAccept(accept(task(), task()), offers(), opts()), 400, `${P}[1].task_id: Task has duplicate ID: web-1`],
    ['a task id in use', () => launchesFromAccept(accept(task()), offers(), opts({ existingTaskNames: new Set([taskNameFor(FW, 'web-1')]) })), 409, `${P}[0].task_id: Task has duplicate ID: web-1`],
    ['no resources', () => launchesFromAccept(accept(task({ resources: [] })), offers(), opts()), 400, `${P}[0].resources: Task uses no resources`],
    ['cpus beyond the offer', () => launchesFromAccept(accept(task({ resources: [scalar('cpus', 5), scalar('mem', 1)] })), offers(), opts()), 422, `${P}[0].resources: cpus 5 exceeds the 4 offered on agent a1`],
    ['cpus summed over the call', () => launchesFromAccept(accept(task({ task_id: { value: 'x' }, resources: [scalar('cpus', 3), scalar('mem', 1)] }), task({ resources: [scalar('cpus', 1), scalar('cpus', 0.5), scalar('mem', 1)] })), offers(), opts()), 422, `${P}[1].resources: cpus 4.5 exceeds the 4 offered on agent a1 (3 taken by earlier tasks of this call)`],
    ['mem beyond the offer', () => launchesFromAccept(accept(task({ resources: [scalar('cpus', 1), scalar('mem', 8193)] })), offers(), opts()), 422, `${P}[0].resources: mem 8193 exceeds the 8192 offered on agent a1`],
    ['disk beyond the offer', () => launchesFromAccept(accept(task({ resources: [scalar('cpus', 1), scalar('mem', 1), scalar('disk', 20000)] })), offers(), opts()), 422, `${P}[0].resources: disk 20000 exceeds the 10240 offered on agent a1`],
    ['no mem', () => launchesFromAccept(accept(task({ resources: [scalar('cpus', 1)] })), offers(), opts()), 400, `${P}[0].resources: Shoal needs cpus > 0 and mem > 0 for a task (got cpus 1, mem 0)`],
    ['negative cpus', () => launchesFromAccept(accept(task({ resources: [scalar('cpus', -1), scalar('mem', 1)] })), offers(), opts()), 400, `${P}[0].resources[0].scalar.value: expecting a number >= 0 for cpus`],
    ['gpus', () => launchesFromAccept(accept(task({ resources: [scalar('cpus', 1), scalar('mem', 1), scalar('gpus', 1)] })), offers(), opts()), 422, `${P}[0].resources[2]: gpus is not offered on agent a1 (Shoal offers cpus, mem, disk and ports)`],
    ['cpus as RANGES', () => launchesFromAccept(accept(task({ resources: [{ name: 'cpus', type: 'RANGES', ranges: { range: [] } }, scalar('mem', 1)] })), offers(), opts()), 400, `${P}[0].resources[0].type: cpus must be SCALAR, not RANGES`],
    ['a reserved resource', () => launchesFromAccept(accept(task({ resources: [{ ...scalar('cpus', 1), role: 'web' }, scalar('mem', 1)] })), offers(), opts()), 422, `${P}[0].resources[0]: cpus is reserved for role 'web', but Shoal offers unreserved resources only (role '*')`],
    ['another allocation role', () => launchesFromAccept(accept(task({ resources: [{ ...scalar('cpus', 1), allocation_info: { role: 'db' } }, scalar('mem', 1)] })), offers(), opts()), 422, `${P}[0].resources[0].allocation_info.role: the offers are allocated to role 'web', not 'db'`],
    ['a port outside the offer', () => launchesFromAccept(accept(task({ resources: [scalar('cpus', 1), scalar('mem', 1), portsRes([31009, 31010])] })), offers(), opts()), 422, `${P}[0].resources: port 31010 is not in the offered ports 31000-31009,32000 on agent a1`],
    ['a port used twice in a task', () => launchesFromAccept(accept(task({ resources: [scalar('cpus', 1), scalar('mem', 1), portsRes([31000, 31001], [31001, 31001])] })), offers(), opts()), 422, `${P}[0].resources: port 31001 is used twice in this call`],
    ['a port used by two tasks', () => launchesFromAccept(accept(task({ task_id: { value: 'x' }, resources: [scalar('cpus', 1), scalar('mem', 1), portsRes([31000, 31000])] }), task({ resources: [scalar('cpus', 1), scalar('mem', 1), portsRes([31000, 31000])] })), offers(), opts()), 422, `${P}[1].resources: port 31000 is used twice in this call`],
    ['a reversed port range', () => launchesFromAccept(accept(task({ resources: [scalar('cpus', 1), scalar('mem', 1), portsRes([31005, 31001])] })), offers(), opts()), 400, `${P}[0].resources[2].ranges.range[0]: expecting 1 <= begin <= end <= 65535, got {"begin":31005,"end":31001}`],
    ['neither command nor image', () => launchesFromAccept(accept(task({ command: undefined })), offers(), opts()), 400, `${P}[0]: a task needs a command ('command.value') or a container image`],
    ['a command without value', () => launchesFromAccept(accept(task({ command: { shell: true } })), offers(), opts()), 400, `${P}[0]: a task needs a command ('command.value') or a container image`],
    ['an unknown container type', () => launchesFromAccept(accept(task({ container: { type: 'RKT' as 'DOCKER' } })), offers(), opts()), 400, `${P}[0].container.type: container type RKT is not supported by Shoal (DOCKER or MESOS)`],
    ['an APPC image', () => launchesFromAccept(accept(task({ container: { type: 'MESOS', mesos: { image: { type: 'APPC', appc: { name: 'x' } } } } })), offers(), opts()), 400, `${P}[0].container.mesos.image.type: APPC images are not supported by Shoal (DOCKER only)`],
    ['docker without image', () => launchesFromAccept(accept(task({ container: { type: 'DOCKER' } as never })), offers(), opts()), 400, `Expecting '${P}[0].container.docker.image' to be present`],
    ['privileged docker', () => launchesFromAccept(accept(task({ container: { type: 'DOCKER', docker: { image: 'x', privileged: true } } })), offers(), opts()), 400, `${P}[0].container.docker.privileged: privileged containers are not supported by Shoal`],
    ['docker USER network', () => launchesFromAccept(accept(task({ container: { type: 'DOCKER', docker: { image: 'x', network: 'USER' } } })), offers(), opts()), 400, `${P}[0].container.docker.network: USER is not supported by Shoal (HOST or BRIDGE)`],
    ['volumes', () => launchesFromAccept(accept(task({ container: { type: 'DOCKER', docker: { image: 'x' }, volumes: [{}] } })), offers(), opts()), 400, `${P}[0].container.volumes: volumes are not supported by Shoal`],
    ['a port mapping of a port the task lacks', () => launchesFromAccept(accept(task({ container: { type: 'DOCKER', docker: { image: 'x', port_mappings: [{ host_port: 31000, container_port: 80 }] } } })), offers(), opts()), 422, `${P}[0].container.docker.port_mappings[0].host_port: 31000 is not one of the task's ports (none)`],
    ['uris', () => launchesFromAccept(accept(task({ command: { value: 'x', uris: [{ value: 'http://x/y.tgz' }] } })), offers(), opts()), 400, `${P}[0].command.uris: fetching URIs is not supported by Shoal (put the files in the image)`],
    ['a secret variable', () => launchesFromAccept(accept(task({ command: { value: 'x', environment: { variables: [{ name: 'A', type: 'SECRET', secret: {} }] } } })), offers(), opts()), 400, `${P}[0].command.environment.variables[0]: SECRET variables are not supported by Shoal`],
    ['a bad variable name', () => launchesFromAccept(accept(task({ command: { value: 'x', environment: { variables: [{ name: '1A', value: 'v' }] } } })), offers(), opts()), 400, `${P}[0].command.environment.variables[0].name: '1A' is not an environment variable name (letters, digits and _, not starting with a digit)`],
    ['a negative kill grace period', () => launchesFromAccept(accept(task({ kill_policy: { grace_period: { nanoseconds: -1 } } })), offers(), opts()), 400, `${P}[0].kill_policy: Task's 'kill_policy.grace_period' must be non-negative`],
    ['a health check on a port the task lacks', () => launchesFromAccept(accept(task({ health_check: { type: 'HTTP', http: { port: 8080 } } })), offers(), opts()), 422, `${P}[0].health_check.http.port: port 8080 is not one of the task's ports (none)`],
    ['an https health check', () => launchesFromAccept(accept(task({ health_check: { type: 'HTTP', http: { port: 8080, scheme: 'https' } } })), offers(), opts()), 400, `${P}[0].health_check.http.scheme: https is not supported by Shoal (http only)`],
    ['a health check without timeout', () => launchesFromAccept(accept(task({ health_check: { type: 'COMMAND', command: { value: 'x' }, timeout_seconds: 0 } })), offers(), opts()), 400, `${P}[0].health_check.timeout_seconds: 0 (no timeout) is not supported by Shoal`],
    ['a health check without a type', () => launchesFromAccept(accept(task({ health_check: {} })), offers(), opts()), 400, `${P}[0].health_check.type: expecting COMMAND, HTTP or TCP, got none`],
    ['more variables than a Task may hold', () => launchesFromAccept(accept(task({ command: { value: 'x', environment: { variables: Array.from({ length: 1100 }, (_, i) => ({ name: `V${i}`, value: 'v' })) } } })), offers(), opts()), 422, `${P}[0]: the task Shoal would run is invalid: spec.env: has 1100 entries: at most 1024`],
    ['more labels than a Task may hold', () => launchesFromAccept(accept(task({ labels: { labels: Array.from({ length: 70 }, (_, i) => ({ key: `l${i}`, value: 'v' })) } })), offers(), opts()), 422, `${P}[0]: the task Shoal would run is invalid: metadata.labels: has 71 entries: at most 64`],
  ];

  it.each(refusals)('refuses %s', (_n, f, status, message) => {
    const err = thrown(f);
    expect({ status: err.status, message: err.message }).toEqual({ status, message });
  });

  it('tells which Mesos reason a refusal carries', () => {
    expect(thrown(() => launchesFromAccept({ offer_ids: [{ value: 'o9' }] }, offers(), opts())).mesosReason).toBe('REASON_INVALID_OFFERS');
    expect(thrown(() => launchesFromAccept(accept(task({ resources: [] })), offers(), opts())).mesosReason).toBe('REASON_TASK_INVALID');
  });
});

// ---- states and status updates ----

describe('stateToMesos', () => {
  it.each([
    ['STAGING', undefined, 'TASK_STAGING'],
    ['STARTING', undefined, 'TASK_STARTING'],
    ['RUNNING', undefined, 'TASK_RUNNING'],
    ['KILLING', undefined, 'TASK_KILLING'],
    ['FINISHED', undefined, 'TASK_FINISHED'],
    ['FAILED', 'StartFailed', 'TASK_FAILED'],
    ['KILLED', 'TaskKilled', 'TASK_KILLED'],
    ['ERROR', 'ImageNotPresent', 'TASK_ERROR'],
    ['LOST', undefined, 'TASK_LOST'],
    ['LOST', 'TaskGone', 'TASK_GONE'],
    ['LOST', 'AgentLost', 'TASK_GONE'],
    ['LOST', 'ReconciliationUnknownTask', 'TASK_UNKNOWN'],
    ['LOST', 'toString', 'TASK_LOST'],
    ['UNREACHABLE', undefined, 'TASK_UNREACHABLE'],
    ['DROPPED', 'OfferUnknown', 'TASK_DROPPED'],
    ['WHATEVER', undefined, 'TASK_LOST'],
  ])('%s (%s) is %s', (state, reason, mesos) => {
    expect(stateToMesos(state, reason)).toBe(mesos);
  });

  it.each([
    ['LOST', 'TaskGone'],
    ['LOST', 'AgentLost'],
    ['LOST', 'ReconciliationUnknownTask'],
    ['UNREACHABLE', undefined],
    ['DROPPED', undefined],
  ])('%s (%s) is TASK_LOST for frameworks that are not partition-aware', (state, reason) => {
    expect(stateToMesos(state, reason, false)).toBe('TASK_LOST');
  });

  it('exports a table of every Shoal state', () => {
    expect(Object.keys(TASK_STATES)).toEqual(['STAGING', 'STARTING', 'RUNNING', 'KILLING', 'FINISHED', 'FAILED', 'KILLED', 'ERROR', 'LOST', 'UNREACHABLE', 'DROPPED']);
  });
});

describe('statusToMesos', () => {
  const uuid = '0f8fad5b-d9cb-469f-a165-70867728950e';

  it('converts an agent update with a uuid', () => {
    expect(statusToMesos({ taskId: 'web.1', state: 'RUNNING', agent: 'a1', healthy: true, source: 'agent' }, { uuid, timestamp: 1700000000123 })).toEqual({
      task_id: { value: 'web.1' },
      state: 'TASK_RUNNING',
      source: 'SOURCE_EXECUTOR',
      agent_id: { value: 'a1' },
      timestamp: 1700000000.123,
      uuid: 'D4+tW9nLRp+hZXCGdyiVDg==',
      healthy: true,
    });
    expect(uuidFromBytes64('D4+tW9nLRp+hZXCGdyiVDg==')).toBe(uuid);
  });

  it('passes a uuid already in base64 through', () => {
    expect(statusToMesos({ taskId: 't', state: 'RUNNING', source: 'agent' }, { uuid: 'D4+tW9nLRp+hZXCGdyiVDg==', timestamp: 0 }).uuid).toBe('D4+tW9nLRp+hZXCGdyiVDg==');
  });

  it('answers reconciliation without a uuid', () => {
    expect(
      statusToMesos({ taskId: 'x', state: 'LOST', reason: 'ReconciliationUnknownTask', message: 'the master knows no such task of this framework', source: 'reconcile' }, { timestamp: 1000, partitionAware: false }),
    ).toEqual({ task_id: { value: 'x' }, state: 'TASK_LOST', message: 'the master knows no such task of this framework', source: 'SOURCE_MASTER', reason: 'REASON_RECONCILIATION', timestamp: 1 });
  });

  it.each<[string, string | undefined, 'agent' | 'master' | 'reconcile', string, string | undefined, string]>([
    ['STAGING', undefined, 'agent', 'SOURCE_MASTER', undefined, 'TASK_STAGING'],
    ['STARTING', undefined, 'agent', 'SOURCE_EXECUTOR', undefined, 'TASK_STARTING'],
    ['FINISHED', undefined, 'agent', 'SOURCE_EXECUTOR', undefined, 'TASK_FINISHED'],
    ['FAILED', undefined, 'agent', 'SOURCE_EXECUTOR', undefined, 'TASK_FAILED'],
    ['FAILED', 'StartFailed', 'agent', 'SOURCE_AGENT', 'REASON_CONTAINER_LAUNCH_FAILED', 'TASK_FAILED'],
    ['ERROR', 'ImageNotPresent', 'agent', 'SOURCE_AGENT', 'REASON_CONTAINER_LAUNCH_FAILED', 'TASK_ERROR'],
    ['ERROR', 'Policy', 'agent', 'SOURCE_AGENT', 'REASON_TASK_UNAUTHORIZED', 'TASK_ERROR'],
    ['KILLING', undefined, 'agent', 'SOURCE_EXECUTOR', undefined, 'TASK_KILLING'],
    ['KILLED', 'TaskKilled', 'agent', 'SOURCE_AGENT', undefined, 'TASK_KILLED'],
    ['LOST', 'AgentLost', 'agent', 'SOURCE_MASTER', 'REASON_AGENT_REMOVED', 'TASK_GONE'],
    ['LOST', 'TaskGone', 'agent', 'SOURCE_AGENT', 'REASON_AGENT_RESTARTED', 'TASK_GONE'],
    ['LOST', 'ReconciliationUnknownTask', 'reconcile', 'SOURCE_MASTER', 'REASON_RECONCILIATION', 'TASK_UNKNOWN'],
    ['RUNNING', undefined, 'reconcile', 'SOURCE_MASTER', undefined, 'TASK_RUNNING'],
    ['RUNNING', undefined, 'master', 'SOURCE_MASTER', undefined, 'TASK_RUNNING'],
    ['UNREACHABLE', undefined, 'master', 'SOURCE_MASTER', undefined, 'TASK_UNREACHABLE'],
    ['DROPPED', 'OfferUnknown', 'agent', 'SOURCE_MASTER', 'REASON_INVALID_OFFERS', 'TASK_DROPPED'],
    ['DROPPED', 'FairShare', 'master', 'SOURCE_MASTER', undefined, 'TASK_DROPPED'],
  ])('%s (%s) from %s: %s, %s, %s', (state, reason, source, mesosSource, mesosReason, mesosState) => {
    const s = statusToMesos({ taskId: 't', state, reason, source }, { timestamp: 0 });
    expect({ source: s.source, reason: s.reason, state: s.state }).toEqual({ source: mesosSource, reason: mesosReason, state: mesosState });
    expect('reason' in s).toBe(mesosReason !== undefined);
  });

  it('refuses a uuid that is neither text nor 16 bytes of base64', () => {
    expect(() => statusToMesos({ taskId: 't', state: 'RUNNING', source: 'agent' }, { uuid: 'nope', timestamp: 0 })).toThrow(/not a UUID/);
  });
});
