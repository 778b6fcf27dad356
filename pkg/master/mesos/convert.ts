/**
 * Conversions between Mesos' v1 scheduler API (types.ts, protobuf's JSON mapping) and Shoal's
 * framework contract (pkg/master/framework.ts): validating a Call's envelope, offers out,
 * ACCEPT's LAUNCH operations in as LaunchRequests, task states and status updates out.
 *
 * Pure: no I/O, no timers, no randomness (hashing only). Every refusal is a {@link CallError}
 * naming the field as a path from `Call` (e.g.
 * `Call.accept.operations[0].launch.task_infos[1].resources: cpus 2 exceeds the 1 offered on agent a1`),
 * with Mesos' own wording where Mesos has one (master/validation.cpp).
 */
import { createHash } from 'node:crypto';
import {
  formatPortRanges,
  normalizeRanges,
  rangesContain,
  round,
  type Resources,
  type Scalars,
} from '../../api/resources';
import type { HealthCheck as ShoalHealthCheck } from '../../api/types.generated';
import { admit, formatCauses } from '../../api/validation';
import { FRAMEWORK_LABEL } from '../../client/informers';
import type { LaunchRequest, LaunchTemplate, Offer } from '../../scheduler/types';
import type { TaskRef, TaskStatusUpdate } from '../framework';
import type {
  AcceptCall,
  Attribute,
  Call,
  CallType,
  CommandInfo,
  ContainerInfo,
  FrameworkInfo,
  HealthCheck,
  MesosOffer,
  MesosTaskStatus,
  Resource,
  TaskInfo,
  TaskState,
  TaskStatusSource,
} from './types';

// ---- errors ----

export type CallErrorStatus = 400 | 403 | 409 | 415 | 422;

/**
 * A refused call. `status` is the HTTP status to answer with: 400 malformed or unsupported,
 * 403 not allowed, 409 conflicts with the current state (an offer no longer valid, a task id in
 * use), 415 unsupported media type, 422 well-formed but impossible against the offers.
 * `mesosReason` is the TaskStatus reason Mesos would give tasks of a refused LAUNCH
 * (REASON_INVALID_OFFERS or REASON_TASK_INVALID), for a layer that reports them as Mesos does.
 */
export class CallError extends Error {
  constructor(
    readonly status: CallErrorStatus,
    message: string,
    readonly mesosReason?: string,
  ) {
    super(message);
    this.name = 'CallError';
  }
}

const bad = (message: string): CallError => new CallError(400, message);

// ---- envelope ----

/** Every Call.Type of scheduler.proto except UNKNOWN. */
export const CALL_TYPES: readonly CallType[] = [
  'SUBSCRIBE',
  'TEARDOWN',
  'ACCEPT',
  'DECLINE',
  'ACCEPT_INVERSE_OFFERS',
  'DECLINE_INVERSE_OFFERS',
  'REVIVE',
  'KILL',
  'SHUTDOWN',
  'ACKNOWLEDGE',
  'ACKNOWLEDGE_OPERATION_STATUS',
  'RECONCILE',
  'RECONCILE_OPERATIONS',
  'MESSAGE',
  'REQUEST',
  'SUPPRESS',
  'UPDATE_FRAMEWORK',
];

/** Nesting deeper than this is refused (as the apiserver refuses it). */
export const MAX_CALL_DEPTH = 32;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** A field's expected shape: what parseCall checks. Unknown fields are ignored, as Mesos ignores them. */
type Spec =
  | 'string'
  | 'number'
  | 'uint'
  | 'int64'
  | 'boolean'
  | 'bytes'
  | 'any'
  | { arr: Spec }
  | { obj: Record<string, Spec>; req?: readonly string[] };

const obj = (fields: Record<string, Spec>, req: readonly string[] = []): Spec => ({ obj: fields, req });
const arr = (item: Spec): Spec => ({ arr: item });

const ID = obj({ value: 'string' }, ['value']);
const LABELS = obj({ labels: arr(obj({ key: 'string', value: 'string' }, ['key'])) });
const FILTERS = obj({ refuse_seconds: 'number' });
const DURATION = obj({ nanoseconds: 'int64' }, ['nanoseconds']);
const KILL_POLICY = obj({ grace_period: DURATION });
const FRAMEWORK_INFO = obj(
  {
    user: 'string',
    name: 'string',
    id: ID,
    failover_timeout: 'number',
    checkpoint: 'boolean',
    role: 'string',
    roles: arr('string'),
    hostname: 'string',
    principal: 'string',
    webui_url: 'string',
    capabilities: arr(obj({ type: 'string' })),
    labels: LABELS,
  },
  ['user', 'name'],
);
const RESOURCE = obj(
  {
    name: 'string',
    type: 'string',
    scalar: obj({ value: 'number' }, ['value']),
    ranges: obj({ range: arr(obj({ begin: 'uint', end: 'uint' }, ['begin', 'end'])) }),
    set: obj({ item: arr('string') }),
    role: 'string',
    allocation_info: obj({ role: 'string' }),
    reservations: arr('any'),
  },
  ['name', 'type'],
);
const COMMAND = obj({
  uris: arr(obj({ value: 'string' }, ['value'])),
  environment: obj({ variables: arr(obj({ name: 'string', type: 'string', value: 'string' }, ['name'])) }),
  shell: 'boolean',
  value: 'string',
  arguments: arr('string'),
  user: 'string',
});
const CONTAINER = obj(
  {
    type: 'string',
    volumes: arr('any'),
    hostname: 'string',
    docker: obj(
      {
        image: 'string',
        network: 'string',
        port_mappings: arr(obj({ host_port: 'uint', container_port: 'uint', protocol: 'string' }, ['host_port', 'container_port'])),
        privileged: 'boolean',
        parameters: arr(obj({ key: 'string', value: 'string' }, ['key', 'value'])),
        force_pull_image: 'boolean',
      },
      ['image'],
    ),
    mesos: obj({
      image: obj({ type: 'string', docker: obj({ name: 'string' }, ['name']), appc: obj({ name: 'string' }, ['name']), cached: 'boolean' }, ['type']),
    }),
    network_infos: arr('any'),
  },
  ['type'],
);
const HEALTH_CHECK = obj({
  type: 'string',
  delay_seconds: 'number',
  interval_seconds: 'number',
  timeout_seconds: 'number',
  consecutive_failures: 'uint',
  grace_period_seconds: 'number',
  command: COMMAND,
  http: obj({ port: 'uint', path: 'string', scheme: 'string', protocol: 'string', statuses: arr('uint') }, ['port']),
  tcp: obj({ port: 'uint', protocol: 'string' }, ['port']),
});
const TASK_INFO = obj(
  {
    name: 'string',
    task_id: ID,
    agent_id: ID,
    resources: arr(RESOURCE),
    executor: 'any',
    command: COMMAND,
    container: CONTAINER,
    health_check: HEALTH_CHECK,
    check: 'any',
    kill_policy: KILL_POLICY,
    data: 'bytes',
    labels: LABELS,
    discovery: 'any',
    max_completion_time: DURATION,
  },
  ['name', 'task_id', 'agent_id'],
);
const OPERATION = obj({ type: 'string', id: ID, launch: obj({ task_infos: arr(TASK_INFO) }, ['task_infos']) }, ['type']);

/** The sub-message of each call type and its shape; `required`: Mesos refuses the call without it. */
const SUB_MESSAGES: Partial<Record<CallType, { field: string; spec: Spec; required: boolean }>> = {
  SUBSCRIBE: { field: 'subscribe', spec: obj({ framework_info: FRAMEWORK_INFO, suppressed_roles: arr('string') }, ['framework_info']), required: true },
  ACCEPT: { field: 'accept', spec: obj({ offer_ids: arr(ID), operations: arr(OPERATION), filters: FILTERS }), required: true },
  DECLINE: { field: 'decline', spec: obj({ offer_ids: arr(ID), filters: FILTERS }), required: true },
  ACCEPT_INVERSE_OFFERS: { field: 'accept_inverse_offers', spec: obj({ inverse_offer_ids: arr(ID), filters: FILTERS }), required: true },
  DECLINE_INVERSE_OFFERS: { field: 'decline_inverse_offers', spec: obj({ inverse_offer_ids: arr(ID), filters: FILTERS }), required: true },
  REVIVE: { field: 'revive', spec: obj({ roles: arr('string') }), required: false },
  SUPPRESS: { field: 'suppress', spec: obj({ roles: arr('string') }), required: false },
  KILL: { field: 'kill', spec: obj({ task_id: ID, agent_id: ID, kill_policy: KILL_POLICY }, ['task_id']), required: true },
  SHUTDOWN: { field: 'shutdown', spec: obj({ executor_id: ID, agent_id: ID }, ['executor_id', 'agent_id']), required: true },
  ACKNOWLEDGE: { field: 'acknowledge', spec: obj({ agent_id: ID, task_id: ID, uuid: 'bytes' }, ['agent_id', 'task_id', 'uuid']), required: true },
  ACKNOWLEDGE_OPERATION_STATUS: {
    field: 'acknowledge_operation_status',
    spec: obj({ agent_id: ID, resource_provider_id: ID, uuid: 'bytes', operation_id: ID }, ['uuid', 'operation_id']),
    required: true,
  },
  RECONCILE: { field: 'reconcile', spec: obj({ tasks: arr(obj({ task_id: ID, agent_id: ID }, ['task_id'])) }), required: true },
  RECONCILE_OPERATIONS: { field: 'reconcile_operations', spec: obj({ operations: arr('any') }), required: true },
  MESSAGE: { field: 'message', spec: obj({ agent_id: ID, executor_id: ID, data: 'bytes' }, ['agent_id', 'executor_id', 'data']), required: true },
  REQUEST: { field: 'request', spec: obj({ requests: arr('any') }), required: true },
  UPDATE_FRAMEWORK: { field: 'update_framework', spec: obj({ framework_info: FRAMEWORK_INFO, suppressed_roles: arr('string') }, ['framework_info']), required: true },
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : typeof v;
}

/** Refuses prototype keys anywhere and nesting deeper than {@link MAX_CALL_DEPTH}. */
function checkStructure(v: unknown, path: string, depth: number): void {
  if (depth > MAX_CALL_DEPTH) throw bad(`${path}: nested deeper than ${MAX_CALL_DEPTH} levels`);
  if (Array.isArray(v)) v.forEach((x, i) => checkStructure(x, `${path}[${i}]`, depth + 1));
  else if (isObject(v)) {
    for (const k of Object.keys(v)) {
      if (FORBIDDEN_KEYS.has(k)) throw bad(`${path}: the key '${k}' is not allowed`);
      checkStructure(v[k], `${path}.${k}`, depth + 1);
    }
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

function checkSpec(v: unknown, spec: Spec, path: string): void {
  if (typeof spec === 'string') {
    switch (spec) {
      case 'any':
        return;
      case 'string':
        if (typeof v !== 'string') throw bad(`${path}: expecting a string, got ${kindOf(v)}`);
        return;
      case 'bytes':
        if (typeof v !== 'string' || !(BASE64.test(v) || BASE64URL.test(v))) throw bad(`${path}: expecting base64-encoded bytes`);
        return;
      case 'boolean':
        if (typeof v !== 'boolean') throw bad(`${path}: expecting a boolean, got ${kindOf(v)}`);
        return;
      case 'number':
        if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${path}: expecting a number, got ${kindOf(v)}`);
        return;
      case 'uint':
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw bad(`${path}: expecting an unsigned 32-bit integer, got ${JSON.stringify(v)}`);
        return;
      case 'int64':
        // protobuf's JSON mapping writes int64 as a decimal string; numbers are accepted too.
        if (!((typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d{1,19}$/.test(v)))) throw bad(`${path}: expecting an integer, got ${JSON.stringify(v)}`);
        return;
    }
  }
  if ('arr' in spec) {
    if (!Array.isArray(v)) throw bad(`${path}: expecting an array, got ${kindOf(v)}`);
    v.forEach((x, i) => checkSpec(x, spec.arr, `${path}[${i}]`));
    return;
  }
  if (!isObject(v)) throw bad(`${path}: expecting an object, got ${kindOf(v)}`);
  for (const f of spec.req ?? []) if (v[f] === undefined || v[f] === null) throw bad(`Expecting '${path}.${f}' to be present`);
  for (const [f, s] of Object.entries(spec.obj)) if (v[f] !== undefined && v[f] !== null) checkSpec(v[f], s, `${path}.${f}`);
}

function idValue(v: unknown): string | undefined {
  return isObject(v) && typeof v.value === 'string' ? v.value : undefined;
}

/**
 * Validates a Call's envelope (Mesos' scheduler::call::validate, plus the JSON types): an
 * object; `type` a known call type; the sub-message Mesos requires for the type; `framework_id`
 * on every call but SUBSCRIBE; SUBSCRIBE with `subscribe.framework_info.user` and `.name`; the
 * types of the fields Shoal reads; no `__proto__`/`constructor`/`prototype` keys. Shape only:
 * offers, roles and tasks are checked later. Throws a {@link CallError} (400).
 */
export function parseCall(body: unknown): Call {
  if (!isObject(body)) throw bad(`Call: expecting a JSON object, got ${kindOf(body)}`);
  checkStructure(body, 'Call', 0);
  const type = body.type;
  if (type === undefined || type === null) throw bad("Expecting 'type' to be present");
  if (typeof type !== 'string' || !(CALL_TYPES as readonly string[]).includes(type)) throw bad(`Unknown call type ${JSON.stringify(type)}`);
  const t = type as CallType;
  if (body.framework_id !== undefined && body.framework_id !== null) checkSpec(body.framework_id, ID, 'Call.framework_id');
  const sub = SUB_MESSAGES[t];
  if (sub) {
    const v = body[sub.field];
    if (v === undefined || v === null) {
      if (sub.required) throw bad(`Expecting '${sub.field}' to be present`);
    } else checkSpec(v, sub.spec, `Call.${sub.field}`);
  }
  if (t === 'SUBSCRIBE') {
    const info = (body.subscribe as { framework_info: Record<string, unknown> }).framework_info;
    const fid = idValue(body.framework_id);
    const infoId = idValue(info.id);
    if (fid !== undefined && fid !== infoId) throw bad("'framework_id' differs from 'subscribe.framework_info.id'");
    return body as unknown as Call;
  }
  const fid = idValue(body.framework_id);
  if (fid === undefined) throw bad("Expecting 'framework_id' to be present");
  if (fid === '') throw bad("Call.framework_id.value: must not be empty");
  if (t === 'ACCEPT') {
    const ids = (body.accept as { offer_ids?: unknown[] }).offer_ids;
    if (!ids || ids.length === 0) throw bad("Expecting 'accept.offer_ids' to be non-empty");
  }
  if (t === 'DECLINE') {
    const ids = (body.decline as { offer_ids?: unknown[] }).offer_ids;
    if (!ids || ids.length === 0) throw bad("Expecting 'decline.offer_ids' to be non-empty");
  }
  if (t === 'ACKNOWLEDGE') {
    const uuid = (body.acknowledge as { uuid: string }).uuid;
    if (uuidFromBytes64(uuid) === undefined) throw bad(`Call.acknowledge.uuid: expecting the 16 bytes of a UUID in base64, got ${JSON.stringify(uuid)}`);
  }
  if (t === 'UPDATE_FRAMEWORK') {
    const infoId = idValue((body.update_framework as { framework_info: Record<string, unknown> }).framework_info.id);
    if (infoId !== fid) throw bad("'framework_id' differs from 'update_framework.framework_info.id'");
  }
  return body as unknown as Call;
}

// ---- uuids ----

/** base64 of the 16 bytes of a UUID given as text (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`), as TaskStatus.uuid carries it. */
export function uuidToBytes64(uuid: string): string {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError(`not a UUID: ${uuid}`);
  return Buffer.from(hex, 'hex').toString('base64');
}

/** The text form of a base64 UUID (standard or URL alphabet), or undefined unless it is exactly 16 bytes. */
export function uuidFromBytes64(b64: string): string | undefined {
  if (!(BASE64.test(b64) || BASE64URL.test(b64))) return undefined;
  const bytes = Buffer.from(b64, BASE64.test(b64) ? 'base64' : 'base64url');
  if (bytes.length !== 16) return undefined;
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---- roles ----

/** Longest role Shoal stores (schemas/framework.json). */
export const MAX_ROLE_LENGTH = 63;

/**
 * Why a role name is invalid (Mesos' roles::validate, with hierarchical roles), or undefined.
 * `*` is valid; otherwise not empty, no whitespace or control characters, `/` only between
 * path components, and no component `.`, `..`, `*` or starting with `-`.
 */
export function roleError(role: string): string | undefined {
  if (role === '*') return undefined;
  if (role === '') return 'Empty role name is invalid';
  if (role.length > MAX_ROLE_LENGTH) return `Role '${role}' is longer than the ${MAX_ROLE_LENGTH} characters Shoal allows`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f]/.test(role)) return `Role name '${role}' is invalid because it contains backspace or whitespace`;
  if (role.startsWith('/')) return `Role '${role}' cannot start with a slash`;
  if (role.endsWith('/')) return `Role '${role}' cannot end with a slash`;
  if (role.includes('//')) return `Role '${role}' cannot contain two adjacent slashes`;
  for (const part of role.split('/')) {
    if (part === '.' || part === '..') return `Role '${role}' cannot contain '.' or '..' as a path component`;
    if (part === '*') return `Role '${role}' cannot contain '*' as a path component`;
    if (part.startsWith('-')) return `Role '${role}' is invalid because '${part}' starts with a dash`;
  }
  return undefined;
}

function hasCapability(info: FrameworkInfo, type: string): boolean {
  return (info.capabilities ?? []).some((c) => c?.type === type);
}

/**
 * The one role of a framework: `roles[0]` (MULTI_ROLE frameworks) or the legacy `role`,
 * default `*`. Refuses (400) what Mesos refuses (`role` with MULTI_ROLE, `roles` without it,
 * duplicates, invalid names) and more than one role, which Shoal does not support.
 */
export function frameworkRole(info: FrameworkInfo): string {
  const multi = hasCapability(info, 'MULTI_ROLE');
  const roles = info.roles ?? [];
  if (multi && info.role !== undefined) throw bad("'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable");
  if (!multi && roles.length > 0) throw bad("'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable");
  if (multi) {
    const dup = roles.filter((r, i) => roles.indexOf(r) !== i);
    if (dup.length) throw bad(`'FrameworkInfo.roles' contains duplicate items: ${[...new Set(dup)].join(', ')}`);
    if (roles.length > 1) throw bad(`Shoal supports one role per framework; 'FrameworkInfo.roles' has ${roles.length}: ${roles.join(', ')}`);
    const role = roles[0] ?? '*';
    const err = roleError(role);
    if (err) throw bad(`'FrameworkInfo.roles' contains invalid role: ${err}`);
    return role;
  }
  const role = info.role ?? '*';
  const err = roleError(role);
  if (err) throw bad(`'FrameworkInfo.role' is not a valid role: ${err}`);
  return role;
}

// ---- names ----

/**
 * The Shoal task name of a Mesos task: a DNS-1123 label (at most 63 of [a-z0-9-]) that is a
 * function of (framework id, task id) only: a readable prefix from the task id, then 16 hex
 * digits of a SHA-256 of both (Mesos task ids may hold any characters, and two ids may
 * lowercase to the same prefix).
 */
export function taskNameFor(frameworkId: string, taskId: string): string {
  const hash = createHash('sha256').update(frameworkId).update('\0').update(taskId).digest('hex').slice(0, 16);
  const prefix = taskId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 63 - 1 - hash.length)
    .replace(/-+$/, '');
  return `${prefix || 'task'}-${hash}`;
}

// ---- offers ----

function scalarResource(name: string, value: number, role: string): Resource {
  return { name, type: 'SCALAR', scalar: { value }, role: '*', allocation_info: { role } };
}

/**
 * Shoal resources as Mesos ones: cpus, mem (MiB) and disk (MiB) as SCALAR, ports as RANGES,
 * leaving out what is zero or empty. Each is unreserved (`role: "*"`, the legacy field Mesos 1.x
 * still fills for frameworks without RESERVATION_REFINEMENT) and allocated to `role`
 * (`allocation_info`, as Mesos 1.x sets it on offered resources).
 */
export function resourcesToMesos(r: Resources, role: string): Resource[] {
  const out: Resource[] = [];
  if (r.cpus > 0) out.push(scalarResource('cpus', r.cpus, role));
  if (r.mem > 0) out.push(scalarResource('mem', r.mem, role));
  if (r.disk > 0) out.push(scalarResource('disk', r.disk, role));
  const ports = normalizeRanges(r.ports);
  if (ports.length) out.push({ name: 'ports', type: 'RANGES', ranges: { range: ports.map(([begin, end]) => ({ begin, end })) }, role: '*', allocation_info: { role } });
  return out;
}

const NUMBER = /^-?\d+(\.\d+)?$/;

/** Agent attributes as Mesos ones: numbers as SCALAR, anything else as TEXT; sorted by name. */
export function attributesToMesos(attributes: Record<string, string>): Attribute[] {
  return Object.keys(attributes)
    .sort()
    .map((name): Attribute => {
      const v = attributes[name];
      return NUMBER.test(v) && Number.isFinite(Number(v)) ? { name, type: 'SCALAR', scalar: { value: Number(v) } } : { name, type: 'TEXT', text: { value: v } };
    });
}

/** A Shoal offer as Mesos' Offer: the agent's name is its AgentID. */
export function offerToMesos(offer: Offer, frameworkId: string, role: string): MesosOffer {
  const attributes = attributesToMesos(offer.attributes);
  return {
    id: { value: offer.id },
    framework_id: { value: frameworkId },
    agent_id: { value: offer.agent },
    hostname: offer.hostname,
    resources: resourcesToMesos(offer.resources, role),
    ...(attributes.length ? { attributes } : {}),
    allocation_info: { role },
  };
}

// ---- launches ----

/** Annotations a launched Mesos task carries. */
export const TASK_ID_ANNOTATION = 'mesos.shoal.dev/task-id';
export const TASK_NAME_ANNOTATION = 'mesos.shoal.dev/task-name';
/** TaskInfo.labels that could not be Shoal labels, as a JSON array of {key, value}. */
export const LABELS_ANNOTATION = 'mesos.shoal.dev/labels';

/** Mesos' HealthCheck defaults (mesos.proto), used where a field is absent. */
export const MESOS_HEALTH_CHECK_DEFAULTS = { delay_seconds: 15, interval_seconds: 10, timeout_seconds: 20, consecutive_failures: 3, grace_period_seconds: 10 } as const;

/** Most ports one task may take (a RANGES resource is expanded port by port). */
export const MAX_PORTS_PER_TASK = 1024;

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function isLabelKey(k: string): boolean {
  const slash = k.lastIndexOf('/');
  const prefix = slash >= 0 ? k.slice(0, slash) : undefined;
  const name = k.slice(slash + 1);
  return (prefix === undefined || (prefix.length <= 253 && DNS1123_SUBDOMAIN.test(prefix))) && name.length <= 63 && LABEL_NAME.test(name);
}

function isLabelValue(v: string): boolean {
  return v === '' || (v.length <= 63 && LABEL_NAME.test(v));
}

/** Keys under shoal.dev are Shoal's own (framework, app, ...): a framework must not set them. */
function isReservedKey(k: string): boolean {
  const slash = k.lastIndexOf('/');
  if (slash < 0) return false;
  const prefix = k.slice(0, slash);
  return prefix === 'shoal.dev' || prefix.endsWith('.shoal.dev');
}

/** Quotes a word for POSIX sh. */
export function shQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Why a Mesos ID is invalid (common::validation::validateID), or undefined. */
function idError(id: string): string | undefined {
  if (id === '') return 'ID must not be empty';
  if (id.length > 255) return 'ID must not be greater than 255 characters';
  if (id === '.' || id === '..') return `'${id}' is disallowed`;
  // eslint-disable-next-line no-control-regex
  if (/[/\\\x00-\x1f\x7f]/.test(id)) return `'${id}' contains invalid characters`;
  return undefined;
}

export interface AcceptOptions {
  frameworkId: string;
  role: string;
  /** Namespace the framework's tasks are created in. */
  namespace: string;
  /** Names (taskNameFor) of this framework's tasks that exist: a task id in use is refused. */
  existingTaskNames: ReadonlySet<string>;
}

interface Room {
  offer: Offer;
  free: Scalars;
}

interface CallCtx {
  o: AcceptOptions;
  agent: string;
  offered: Resources;
  used: Scalars;
  usedPorts: Set<number>;
  rooms: Room[];
  seenIds: Set<string>;
}

const SCALAR_NAMES = ['cpus', 'mem', 'disk'] as const;

/**
 * The launches of an ACCEPT: validates the offers and every LAUNCH operation against them and
 * builds one LaunchRequest per TaskInfo. Refuses with a {@link CallError}: an offer id not in
 * `offers` or not this framework's (409, "Offer X is no longer valid"), a duplicate offer id,
 * offers of several agents, an operation other than LAUNCH (400), a task with an executor, a
 * bad or reused task id, another agent's id, resources beyond what the offers hold summed over
 * the call's tasks, ports outside the offers' ranges or used twice, a task with neither a
 * command nor an image, an unsupported container or health check. ACCEPT without operations
 * gives no launches (the offers are used up, as Mesos declines them).
 */
export function launchesFromAccept(
  call: AcceptCall,
  offers: ReadonlyMap<string, Offer>,
  o: AcceptOptions,
): { offerIds: string[]; launches: LaunchRequest[] } {
  const ids = (call.offer_ids ?? []).map((id) => id?.value);
  if (ids.length === 0) throw bad("Expecting 'accept.offer_ids' to be non-empty");
  const seen = new Set<string>();
  const used: Offer[] = [];
  for (const [i, id] of ids.entries()) {
    if (typeof id !== 'string') throw bad(`Expecting 'Call.accept.offer_ids[${i}].value' to be present`);
    if (seen.has(id)) throw bad(`Duplicate offer ${id} in offer list`);
    seen.add(id);
    const offer = offers.get(id);
    if (!offer || offer.frameworkId !== o.frameworkId) throw new CallError(409, `Offer ${id} is no longer valid`, 'REASON_INVALID_OFFERS');
    if (used.length && offer.agent !== used[0].agent) {
      throw new CallError(400, `Aggregated offers must belong to one single agent. Offer ${id} uses agent ${offer.agent} and agent ${used[0].agent}`, 'REASON_INVALID_OFFERS');
    }
    used.push(offer);
  }
  const offered: Resources = { cpus: 0, mem: 0, disk: 0, ports: [] };
  for (const of of used) {
    offered.cpus = round(offered.cpus + of.resources.cpus);
    offered.mem = round(offered.mem + of.resources.mem);
    offered.disk = round(offered.disk + of.resources.disk);
    offered.ports = normalizeRanges([...offered.ports, ...of.resources.ports]);
  }
  const ctx: CallCtx = {
    o,
    agent: used[0].agent,
    offered,
    used: { cpus: 0, mem: 0, disk: 0 },
    usedPorts: new Set(),
    rooms: used.map((offer) => ({ offer, free: { cpus: offer.resources.cpus, mem: offer.resources.mem, disk: offer.resources.disk } })),
    seenIds: new Set(),
  };
  const launches: LaunchRequest[] = [];
  for (const [i, op] of (call.operations ?? []).entries()) {
    const path = `Call.accept.operations[${i}]`;
    if (!isObject(op)) throw bad(`${path}: expecting an object, got ${kindOf(op)}`);
    if (op.type !== 'LAUNCH') throw new CallError(400, `${path}: Operation ${String(op.type ?? 'UNKNOWN')} is not supported by Shoal (only LAUNCH is)`, 'REASON_TASK_INVALID');
    const infos = op.launch?.task_infos;
    if (!Array.isArray(infos)) throw bad(`Expecting '${path}.launch.task_infos' to be present`);
    for (const [j, t] of infos.entries()) launches.push(taskToLaunch(t, `${path}.launch.task_infos[${j}]`, ctx));
  }
  return { offerIds: ids as string[], launches };
}

function taskInvalid(status: CallErrorStatus, message: string): CallError {
  return new CallError(status, message, 'REASON_TASK_INVALID');
}

function taskToLaunch(t: TaskInfo, path: string, ctx: CallCtx): LaunchRequest {
  const { o, agent } = ctx;
  if (!isObject(t)) throw taskInvalid(400, `${path}: expecting an object, got ${kindOf(t)}`);
  const taskId = idValue(t.task_id);
  if (taskId === undefined) throw taskInvalid(400, `Expecting '${path}.task_id' to be present`);
  const idErr = idError(taskId);
  if (idErr) throw taskInvalid(400, `${path}.task_id: Task has an invalid TaskID: ${idErr}`);
  const taskName = taskNameFor(o.frameworkId, taskId);
  if (ctx.seenIds.has(taskId)) throw taskInvalid(400, `${path}.task_id: Task has duplicate ID: ${taskId}`);
  ctx.seenIds.add(taskId);
  if (o.existingTaskNames.has(taskName)) throw taskInvalid(409, `${path}.task_id: Task has duplicate ID: ${taskId}`);
  if (t.executor !== undefined && t.executor !== null) throw taskInvalid(400, `${path}.executor: custom executors are not supported by Shoal; give the task a 'command' (and a 'container')`);
  const agentId = idValue(t.agent_id);
  if (agentId === undefined) throw taskInvalid(400, `Expecting '${path}.agent_id' to be present`);
  if (agentId !== agent) throw taskInvalid(422, `${path}.agent_id: Task uses invalid agent ${agentId} while agent ${agent} is expected`);
  if (typeof t.name !== 'string') throw taskInvalid(400, `Expecting '${path}.name' to be present`);
  if (t.name.length > 65536) throw taskInvalid(400, `${path}.name: longer than 65536 characters`);

  const graceSeconds = killGraceSeconds(t, path);
  const { need, ports } = taskResources(t, path, ctx);
  const offerId = assignOffer(need, ports, path, ctx);

  const env = environmentOf(t.command, `${path}.command`);
  const mappings = new Map<number, { containerPort: number; protocol?: string }>();
  const spec: LaunchTemplate['spec'] = { role: o.role };
  buildRun(t, path, ports, mappings, spec);
  if (Object.keys(env).length) spec.env = env;
  spec.ports = ports.map((hostPort) => {
    const m = mappings.get(hostPort);
    return { hostPort, protocol: m?.protocol === 'udp' ? 'udp' : 'tcp', ...(m ? { containerPort: m.containerPort } : {}) };
  });
  if (t.health_check) spec.healthChecks = [healthCheckOf(t.health_check, `${path}.health_check`, ports, mappings)];
  if (graceSeconds !== undefined) spec.taskKillGracePeriodSeconds = graceSeconds;

  const labels: Record<string, string> = {};
  const others: Array<{ key: string; value: string }> = [];
  for (const l of t.labels?.labels ?? []) {
    const value = l.value ?? '';
    if (isLabelKey(l.key) && isLabelValue(value) && !isReservedKey(l.key)) labels[l.key] = value;
    else others.push({ key: l.key, value });
  }
  const annotations: Record<string, string> = { [TASK_ID_ANNOTATION]: taskId, [TASK_NAME_ANNOTATION]: t.name };
  if (others.length) {
    const json = JSON.stringify(others);
    if (json.length > 65536) throw taskInvalid(400, `${path}.labels: the labels Shoal cannot store as labels take more than 64 KiB`);
    annotations[LABELS_ANNOTATION] = json;
  }
  const task = { metadata: { ...(Object.keys(labels).length ? { labels } : {}), annotations }, spec };
  // The Task the binder will make of it must pass admission (sizes and counts included): refuse
  // it here, naming the field, rather than let the launch fail later as BindFailed.
  const probe = admit({
    apiVersion: 'shoal/v1', kind: 'Task',
    metadata: { ...task.metadata, labels: { ...labels, [FRAMEWORK_LABEL]: o.frameworkId }, name: taskName, namespace: o.namespace },
    spec: { ...spec, nodeName: agent, resources: need },
  });
  if (!probe.ok) throw taskInvalid(422, `${path}: the task Shoal would run is invalid: ${formatCauses(probe.causes)}`);
  return { offerId, namespace: o.namespace, taskName, resources: need, ports, task };
}

function killGraceSeconds(t: TaskInfo, path: string): number | undefined {
  const ns = t.kill_policy?.grace_period?.nanoseconds;
  if (ns === undefined) return undefined;
  const n = Number(ns);
  if (!Number.isFinite(n)) throw taskInvalid(400, `${path}.kill_policy.grace_period.nanoseconds: expecting an integer`);
  if (n < 0) throw taskInvalid(400, `${path}.kill_policy: Task's 'kill_policy.grace_period' must be non-negative`);
  return Math.ceil(n / 1e9);
}

function taskResources(t: TaskInfo, path: string, ctx: CallCtx): { need: Scalars; ports: number[] } {
  const { o, agent, offered } = ctx;
  const rp = `${path}.resources`;
  const list = t.resources ?? [];
  if (!Array.isArray(list) || list.length === 0) throw taskInvalid(400, `${rp}: Task uses no resources`);
  const need: Scalars = { cpus: 0, mem: 0, disk: 0 };
  const ports: number[] = [];
  for (const [k, r] of list.entries()) {
    const p = `${rp}[${k}]`;
    if (!isObject(r) || typeof r.name !== 'string') throw taskInvalid(400, `Expecting '${p}.name' to be present`);
    if ((r.reservations && r.reservations.length > 0) || r.reservation || (r.role !== undefined && r.role !== '*')) {
      throw taskInvalid(422, `${p}: ${r.name} is reserved${r.role && r.role !== '*' ? ` for role '${r.role}'` : ''}, but Shoal offers unreserved resources only (role '*')`);
    }
    const alloc = r.allocation_info?.role;
    if (alloc !== undefined && alloc !== o.role) throw taskInvalid(422, `${p}.allocation_info.role: the offers are allocated to role '${o.role}', not '${alloc}'`);
    if (r.disk !== undefined || r.revocable !== undefined || r.shared !== undefined || r.provider_id !== undefined) {
      throw taskInvalid(400, `${p}: disk info, revocable, shared and resource-provider resources are not supported by Shoal`);
    }
    if ((SCALAR_NAMES as readonly string[]).includes(r.name)) {
      const name = r.name as (typeof SCALAR_NAMES)[number];
      if (r.type !== 'SCALAR') throw taskInvalid(400, `${p}.type: ${name} must be SCALAR, not ${String(r.type)}`);
      const v = r.scalar?.value;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw taskInvalid(400, `${p}.scalar.value: expecting a number >= 0 for ${name}`);
      need[name] = round(need[name] + v);
    } else if (r.name === 'ports') {
      if (r.type !== 'RANGES') throw taskInvalid(400, `${p}.type: ports must be RANGES, not ${String(r.type)}`);
      for (const [m, range] of (r.ranges?.range ?? []).entries()) {
        const { begin, end } = range ?? ({} as { begin?: number; end?: number });
        if (!Number.isInteger(begin) || !Number.isInteger(end) || begin! < 1 || end! > 65535 || begin! > end!) {
          throw taskInvalid(400, `${p}.ranges.range[${m}]: expecting 1 <= begin <= end <= 65535, got ${JSON.stringify(range)}`);
        }
        if (ports.length + (end! - begin! + 1) > MAX_PORTS_PER_TASK) throw taskInvalid(422, `${p}: a task may take at most ${MAX_PORTS_PER_TASK} ports`);
        for (let port = begin!; port <= end!; port++) ports.push(port);
      }
    } else {
      throw taskInvalid(422, `${p}: ${r.name} is not offered on agent ${agent} (Shoal offers cpus, mem, disk and ports)`);
    }
  }
  for (const name of SCALAR_NAMES) {
    const total = round(ctx.used[name] + need[name]);
    if (total > offered[name]) {
      const earlier = ctx.used[name] > 0 ? ` (${ctx.used[name]} taken by earlier tasks of this call)` : '';
      throw taskInvalid(422, `${rp}: ${name} ${total} exceeds the ${offered[name]} offered on agent ${agent}${earlier}`);
    }
  }
  if (need.cpus <= 0 || need.mem <= 0) throw taskInvalid(400, `${rp}: Shoal needs cpus > 0 and mem > 0 for a task (got cpus ${need.cpus}, mem ${need.mem})`);
  const mine = new Set<number>();
  for (const port of ports) {
    if (!rangesContain(offered.ports, port)) {
      throw taskInvalid(422, `${rp}: port ${port} is not in the offered ports ${formatPortRanges(offered.ports) || '(none)'} on agent ${agent}`);
    }
    if (mine.has(port) || ctx.usedPorts.has(port)) throw taskInvalid(422, `${rp}: port ${port} is used twice in this call`);
    mine.add(port);
  }
  for (const name of SCALAR_NAMES) ctx.used[name] = round(ctx.used[name] + need[name]);
  for (const port of ports) ctx.usedPorts.add(port);
  return { need, ports };
}

/** The first offer of the call whose remainder holds the whole task (Shoal binds a task to one offer). */
function assignOffer(need: Scalars, ports: number[], path: string, ctx: CallCtx): string {
  for (const room of ctx.rooms) {
    const f = room.free;
    const fits = SCALAR_NAMES.every((n) => round(f[n] - need[n]) >= 0) && ports.every((p) => rangesContain(room.offer.resources.ports, p));
    if (!fits) continue;
    for (const n of SCALAR_NAMES) f[n] = round(f[n] - need[n]);
    return room.offer.id;
  }
  throw taskInvalid(422, `${path}.resources: the task fits the offers together but no single one of them (Shoal does not split a task across offers)`);
}

function environmentOf(cmd: CommandInfo | undefined, path: string): Record<string, string> {
  const env: Record<string, string> = {};
  if (!cmd) return env;
  if (cmd.uris && cmd.uris.length > 0) throw taskInvalid(400, `${path}.uris: fetching URIs is not supported by Shoal (put the files in the image)`);
  for (const [i, v] of (cmd.environment?.variables ?? []).entries()) {
    const p = `${path}.environment.variables[${i}]`;
    if (v.type === 'SECRET' || v.secret !== undefined) throw taskInvalid(400, `${p}: SECRET variables are not supported by Shoal`);
    if (!ENV_NAME.test(v.name) || v.name.length > 256) throw taskInvalid(400, `${p}.name: '${v.name}' is not an environment variable name (letters, digits and _, not starting with a digit)`);
    if (typeof v.value !== 'string') throw taskInvalid(400, `Expecting '${p}.value' to be present`);
    if (v.value.length > 65536) throw taskInvalid(400, `${p}.value: longer than 65536 characters`);
    env[v.name] = v.value;
  }
  return env;
}

/** Sets spec.cmd, or spec.runtime/container, from the TaskInfo's command and container. */
function buildRun(t: TaskInfo, path: string, ports: number[], mappings: Map<number, { containerPort: number; protocol?: string }>, spec: LaunchTemplate['spec']): void {
  const cmd = t.command;
  const shell = cmd?.shell !== false;
  const value = cmd?.value;
  const args = cmd?.arguments ?? [];
  const image = containerImage(t.container, `${path}.container`, ports, mappings);
  if (image) {
    const container: NonNullable<LaunchTemplate['spec']['container']> = { image };
    if (shell) {
      if (value) container.command = ['/bin/sh', '-c', value];
    } else if (t.container!.type === 'DOCKER') {
      // Mesos' docker containerizer: the image's entrypoint runs with `value` and `arguments` as its arguments.
      const all = [...(value ? [value] : []), ...args];
      if (all.length) container.args = all;
    } else if (value) {
      // Mesos containerizer: `value` is the executable, `arguments` its argv (argv[0] first).
      container.command = [value];
      if (args.length > 1) container.args = args.slice(1);
    } else if (args.length) container.args = args;
    if (cmd?.user) container.user = cmd.user;
    spec.runtime = 'docker';
    spec.container = container;
    return;
  }
  if (!value) throw taskInvalid(400, `${path}: a task needs a command ('command.value') or a container image`);
  // shell: `/bin/sh -c value`; otherwise `value` is the executable and `arguments` its argv, argv[0] first (execvp).
  spec.cmd = shell ? value : [value, ...args.slice(1)].map(shQuote).join(' ');
}

function containerImage(c: ContainerInfo | undefined, path: string, ports: number[], mappings: Map<number, { containerPort: number; protocol?: string }>): string | undefined {
  if (!c) return undefined;
  if (c.volumes && c.volumes.length > 0) throw taskInvalid(400, `${path}.volumes: volumes are not supported by Shoal`);
  if (c.network_infos && c.network_infos.length > 0) throw taskInvalid(400, `${path}.network_infos: container networks are not supported by Shoal`);
  let image: string | undefined;
  if (c.type === 'DOCKER') {
    const d = c.docker;
    if (!d || typeof d.image !== 'string' || d.image === '') throw taskInvalid(400, `Expecting '${path}.docker.image' to be present`);
    if (d.network !== undefined && d.network !== 'HOST' && d.network !== 'BRIDGE') throw taskInvalid(400, `${path}.docker.network: ${String(d.network)} is not supported by Shoal (HOST or BRIDGE)`);
    if (d.privileged) throw taskInvalid(400, `${path}.docker.privileged: privileged containers are not supported by Shoal`);
    if (d.parameters && d.parameters.length > 0) throw taskInvalid(400, `${path}.docker.parameters: docker parameters are not supported by Shoal`);
    for (const [i, m] of (d.port_mappings ?? []).entries()) {
      if (!ports.includes(m.host_port)) throw taskInvalid(422, `${path}.docker.port_mappings[${i}].host_port: ${m.host_port} is not one of the task's ports (${ports.join(', ') || 'none'})`);
      if (!Number.isInteger(m.container_port) || m.container_port < 1 || m.container_port > 65535) throw taskInvalid(400, `${path}.docker.port_mappings[${i}].container_port: expecting 1-65535`);
      mappings.set(m.host_port, { containerPort: m.container_port, protocol: m.protocol?.toLowerCase() });
    }
    image = d.image;
  } else if (c.type === 'MESOS') {
    const img = c.mesos?.image;
    if (img) {
      if (img.type !== 'DOCKER') throw taskInvalid(400, `${path}.mesos.image.type: ${String(img.type)} images are not supported by Shoal (DOCKER only)`);
      if (!img.docker || typeof img.docker.name !== 'string' || img.docker.name === '') throw taskInvalid(400, `Expecting '${path}.mesos.image.docker.name' to be present`);
      image = img.docker.name;
    }
  } else {
    throw taskInvalid(400, `${path}.type: container type ${String(c.type)} is not supported by Shoal (DOCKER or MESOS)`);
  }
  if (image !== undefined && (/\s/.test(image) || image.length > 512)) throw taskInvalid(400, `${path}: image '${image}' is not a valid image reference`);
  return image;
}

function healthCheckOf(hc: HealthCheck, path: string, ports: number[], mappings: Map<number, { containerPort: number; protocol?: string }>): ShoalHealthCheck {
  const type = hc.type && hc.type !== 'UNKNOWN' ? hc.type : hc.command ? 'COMMAND' : hc.http ? 'HTTP' : hc.tcp ? 'TCP' : undefined;
  const d = MESOS_HEALTH_CHECK_DEFAULTS;
  const seconds = (field: keyof typeof d, min: number): number => {
    const v = (hc[field] as number | undefined) ?? d[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw taskInvalid(400, `${path}.${field}: expecting a number >= 0`);
    return Math.max(min, Math.ceil(v));
  };
  const portIndex = (port: number, field: string): number => {
    let i = ports.indexOf(port);
    if (i < 0) for (const [host, m] of mappings) if (m.containerPort === port) i = ports.indexOf(host);
    if (i < 0) throw taskInvalid(422, `${path}.${field}: port ${port} is not one of the task's ports (${ports.join(', ') || 'none'})`);
    return i;
  };
  if ((hc.timeout_seconds ?? d.timeout_seconds) === 0) throw taskInvalid(400, `${path}.timeout_seconds: 0 (no timeout) is not supported by Shoal`);
  const out: Omit<ShoalHealthCheck, 'protocol' | 'path'> = {
    gracePeriodSeconds: seconds('grace_period_seconds', 0),
    intervalSeconds: seconds('interval_seconds', 1),
    timeoutSeconds: seconds('timeout_seconds', 1),
    maxConsecutiveFailures: seconds('consecutive_failures', 0),
    delaySeconds: seconds('delay_seconds', 0),
  };
  switch (type) {
    case 'HTTP': {
      const h = hc.http;
      if (!h) throw taskInvalid(400, `Expecting '${path}.http' to be present`);
      if (h.scheme !== undefined && h.scheme !== 'http') throw taskInvalid(400, `${path}.http.scheme: ${h.scheme} is not supported by Shoal (http only)`);
      return { ...out, protocol: 'HTTP', portIndex: portIndex(h.port, 'http.port'), path: h.path || '/' };
    }
    case 'TCP': {
      if (!hc.tcp) throw taskInvalid(400, `Expecting '${path}.tcp' to be present`);
      return { ...out, protocol: 'TCP', portIndex: portIndex(hc.tcp.port, 'tcp.port'), path: '/' };
    }
    case 'COMMAND': {
      const c = hc.command;
      if (!c?.value) throw taskInvalid(400, `Expecting '${path}.command.value' to be present`);
      const value = c.shell === false ? [c.value, ...(c.arguments ?? []).slice(1)].map(shQuote).join(' ') : c.value;
      return { ...out, protocol: 'COMMAND', command: { value }, path: '/' };
    }
    default:
      throw taskInvalid(400, `${path}.type: expecting COMMAND, HTTP or TCP, got ${String(hc.type ?? 'none')}`);
  }
}

// ---- task states and status updates ----

/** Shoal task state → Mesos TaskState, before the refinements of {@link stateToMesos}. */
export const TASK_STATES: Readonly<Record<string, TaskState>> = {
  STAGING: 'TASK_STAGING',
  STARTING: 'TASK_STARTING',
  RUNNING: 'TASK_RUNNING',
  KILLING: 'TASK_KILLING',
  FINISHED: 'TASK_FINISHED',
  FAILED: 'TASK_FAILED',
  KILLED: 'TASK_KILLED',
  ERROR: 'TASK_ERROR',
  LOST: 'TASK_LOST',
  UNREACHABLE: 'TASK_UNREACHABLE',
  /** Not a Task state: what a layer reports for a launch the master refused (LaunchResult not ok). */
  DROPPED: 'TASK_DROPPED',
};

/**
 * LOST with these Shoal reasons is a more precise Mesos state for PARTITION_AWARE frameworks
 * (frameworks without the capability get TASK_LOST, as Mesos sends them):
 * - TaskGone (the agent restarted and its task was gone): TASK_GONE;
 * - AgentLost (the node lifecycle controller marked the task lost with its agent and removed
 *   its assignment, so it never runs again): TASK_GONE, terminal as Shoal's LOST is (not
 *   TASK_UNREACHABLE, which Mesos frameworks wait on);
 * - ReconciliationUnknownTask (explicit reconciliation of a task the master does not know):
 *   TASK_UNKNOWN, as Mesos 1.x answers partition-aware frameworks.
 */
export const LOST_STATES: Readonly<Record<string, TaskState>> = {
  TaskGone: 'TASK_GONE',
  AgentLost: 'TASK_GONE',
  ReconciliationUnknownTask: 'TASK_UNKNOWN',
};

/** States only PARTITION_AWARE frameworks get; others get TASK_LOST instead (as from Mesos). */
const PARTITION_AWARE_STATES: ReadonlySet<TaskState> = new Set(['TASK_UNREACHABLE', 'TASK_DROPPED', 'TASK_GONE', 'TASK_GONE_BY_OPERATOR', 'TASK_UNKNOWN']);

/**
 * The Mesos TaskState of a Shoal task state (see {@link TASK_STATES}, {@link LOST_STATES}).
 * `partitionAware` (default true): whether the framework has the PARTITION_AWARE capability;
 * without it UNREACHABLE, DROPPED, GONE and UNKNOWN are TASK_LOST. An unknown state is TASK_LOST.
 */
export function stateToMesos(state: string, reason?: string, partitionAware = true): TaskState {
  let s: TaskState = TASK_STATES[state] ?? 'TASK_LOST';
  if (state === 'LOST' && reason !== undefined && Object.prototype.hasOwnProperty.call(LOST_STATES, reason)) s = LOST_STATES[reason];
  return !partitionAware && PARTITION_AWARE_STATES.has(s) ? 'TASK_LOST' : s;
}

/**
 * Shoal reason → Mesos TaskStatus.Reason, where one fits; other reasons are left out (the
 * message still says why). Launch refusals (LaunchFailureReason) are included for DROPPED.
 */
export const REASONS: Readonly<Record<string, string>> = {
  ReconciliationUnknownTask: 'REASON_RECONCILIATION',
  AgentLost: 'REASON_AGENT_REMOVED',
  TaskGone: 'REASON_AGENT_RESTARTED',
  StartFailed: 'REASON_CONTAINER_LAUNCH_FAILED',
  ImageNotPresent: 'REASON_CONTAINER_LAUNCH_FAILED',
  Policy: 'REASON_TASK_UNAUTHORIZED',
  OfferUnknown: 'REASON_INVALID_OFFERS',
  InsufficientResources: 'REASON_INVALID_OFFERS',
  InvalidOffers: 'REASON_INVALID_OFFERS',
  TaskInvalid: 'REASON_TASK_INVALID',
  Reconciliation: 'REASON_RECONCILIATION',
};

/** Reasons the master produces (not the agent running the task): their updates are SOURCE_MASTER. */
const MASTER_REASONS: ReadonlySet<string> = new Set(['AgentLost', 'ReconciliationUnknownTask', 'OfferUnknown', 'InsufficientResources', 'FairShare', 'NotLeader', 'BindFailed', 'InvalidOffers', 'TaskInvalid']);
/** Reasons of the agent itself rather than of the task's process: SOURCE_AGENT. */
const AGENT_REASONS: ReadonlySet<string> = new Set(['TaskGone', 'StartFailed', 'ImageNotPresent', 'Policy', 'TaskKilled']);

/** TaskStatus.uuid from a UUID in text form or already as base64 of its 16 bytes. */
function statusUuid(uuid: string): string {
  if (/^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/.test(uuid)) return uuidToBytes64(uuid);
  if (uuidFromBytes64(uuid) !== undefined) return uuid;
  throw new TypeError(`not a UUID, in text or as base64 of 16 bytes: ${uuid}`);
}

/** Whether the framework has the PARTITION_AWARE capability (pass it to {@link statusToMesos}). */
export function isPartitionAware(info: FrameworkInfo): boolean {
  return hasCapability(info, 'PARTITION_AWARE');
}

/** A master's status update as a Mesos task id sees it: the framework's id instead of the Task's name. */
export type StatusInput = Omit<TaskStatusUpdate, keyof TaskRef> & { taskId: string };

/**
 * A Shoal status update as Mesos' TaskStatus. Source: SOURCE_MASTER for master and reconcile
 * updates and for master-made states (STAGING, AgentLost, refused launches); SOURCE_AGENT for
 * the agent's own failures (TaskGone, StartFailed, ImageNotPresent, Policy, kills it carried
 * out); SOURCE_EXECUTOR for what the task did (RUNNING, FINISHED, FAILED...). `timestamp` (epoch
 * ms) becomes seconds; `uuid` (a UUID's text form, or base64 of its 16 bytes) is set only when
 * given: updates without one (as reconciliation answers) must not be acknowledged.
 * `partitionAware` (default true) as for {@link stateToMesos}: pass false for frameworks without
 * the PARTITION_AWARE capability ({@link isPartitionAware}), which Mesos sends TASK_LOST.
 */
export function statusToMesos(u: StatusInput, o: { uuid?: string; timestamp: number; partitionAware?: boolean }): MesosTaskStatus {
  const source: TaskStatusSource =
    u.source !== 'agent' || u.state === 'STAGING' || u.state === 'DROPPED' || (u.reason !== undefined && MASTER_REASONS.has(u.reason))
      ? 'SOURCE_MASTER'
      : u.reason !== undefined && AGENT_REASONS.has(u.reason)
        ? 'SOURCE_AGENT'
        : 'SOURCE_EXECUTOR';
  const reason = u.reason !== undefined && Object.prototype.hasOwnProperty.call(REASONS, u.reason) ? REASONS[u.reason] : undefined;
  return {
    task_id: { value: u.taskId },
    state: stateToMesos(u.state, u.reason, o.partitionAware ?? true),
    ...(u.message !== undefined ? { message: u.message } : {}),
    source,
    ...(reason ? { reason } : {}),
    ...(u.agent ? { agent_id: { value: u.agent } } : {}),
    timestamp: o.timestamp / 1000,
    ...(o.uuid !== undefined ? { uuid: statusUuid(o.uuid) } : {}),
    ...(u.healthy !== undefined ? { healthy: u.healthy } : {}),
  };
}
