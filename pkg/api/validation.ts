/**
 * Admission of objects: structural safety checks, JSON Schema validation with Marathon
 * defaults filled in (ajv `useDefaults`, from the `default`s in schemas/), and the semantic
 * checks a schema cannot express. The same code runs in the CLI (so `apply` can reject a bad
 * document before writing anything) and in the apiserver (the authority).
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import metaSchema from '../../schemas/meta.json';
import appSchema from '../../schemas/app.json';
import jobSchema from '../../schemas/job.json';
import jobRunSchema from '../../schemas/jobrun.json';
import frameworkSchema from '../../schemas/framework.json';
import taskSchema from '../../schemas/task.json';
import nodeSchema from '../../schemas/node.json';
import eventSchema from '../../schemas/event.json';
import { API_VERSION, KINDS, type KindInfo } from './kinds';
import { objectSizeCause, totalSizeCauses } from './limits';
import { applyConditionalDefaults, semanticCauses } from './semantics';
import type { FieldCause, ShoalObject } from './objects';

export type { FieldCause, ShoalObject } from './objects';

/**
 * `tooLarge`: the object as a whole is over its encoded size limit (the apiserver answers 413;
 * every other refusal is a 400 or 422).
 */
export type AdmitResult =
  | { ok: true; object: ShoalObject; kind: KindInfo }
  | { ok: false; causes: FieldCause[]; kind?: KindInfo; tooLarge?: boolean };

/** Nesting deeper than this is refused before any other processing. */
export const MAX_OBJECT_DEPTH = 32;

/** Keys that could reach an object's prototype chain if input were ever merged into a live object. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const FORMATS: Record<string, { test(v: string): boolean; message: string }> = {
  'dns1123-label': {
    test: (v) => v.length <= 63 && DNS1123_LABEL.test(v),
    message: "must be a DNS-1123 label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
  },
  'label-key': {
    test: (v) => {
      const slash = v.lastIndexOf('/');
      const prefix = slash >= 0 ? v.slice(0, slash) : undefined;
      const name = v.slice(slash + 1);
      const prefixOk = prefix === undefined || (prefix.length <= 253 && DNS1123_SUBDOMAIN.test(prefix));
      return prefixOk && name.length <= 63 && LABEL_NAME.test(name);
    },
    message: "must be a label key: an optional DNS prefix and '/', then at most 63 of [A-Za-z0-9_.-], starting and ending with a letter or digit",
  },
  'label-value': {
    test: (v) => v === '' || (v.length <= 63 && LABEL_NAME.test(v)),
    message: 'must be a label value: empty, or at most 63 of [A-Za-z0-9_.-], starting and ending with a letter or digit',
  },
  'env-name': {
    test: (v) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(v) && v.length <= 256,
    message: 'must be an environment variable name: letters, digits and _, not starting with a digit',
  },
  'safe-key': {
    test: (v) => v.length > 0 && v.length <= 253 && !FORBIDDEN_KEYS.has(v),
    message: 'must be a non-empty key of at most 253 characters other than __proto__, constructor or prototype',
  },
};

function buildValidators(): Map<string, ValidateFunction> {
  const ajv = new Ajv({ allErrors: true, verbose: true, useDefaults: true, strict: true, strictTuples: false });
  for (const [name, f] of Object.entries(FORMATS)) ajv.addFormat(name, f.test);
  ajv.addSchema(metaSchema);
  const byKind = new Map<string, ValidateFunction>();
  for (const schema of [appSchema, jobSchema, jobRunSchema, frameworkSchema, taskSchema, nodeSchema, eventSchema]) {
    byKind.set(schema.title, ajv.compile(schema));
  }
  byKind.set(TASK_STATUS, ajv.compile({ $ref: 'task.json#/definitions/TaskStatus' }));
  return byKind;
}

let validators: Map<string, ValidateFunction> | undefined;

/**
 * Compiles the schemas now rather than at the first admit (about 0.4 s of CPU). Components call
 * it as they start: lazily, a new leader's first bind paid for it in the middle of its first
 * burst of launches, and every agent process at its first assignment.
 */
export function compileValidators(): void {
  validators ??= buildValidators();
}

function validatorFor(kind: string): ValidateFunction {
  const v = (validators ??= buildValidators()).get(kind);
  if (!v) throw new TypeError(`no schema for kind ${kind}`);
  return v;
}

/** The validator of a Task's status alone (what an agent's report may set). */
const TASK_STATUS = 'Task.status';

/**
 * Causes (fields named from `status.`) why `status` is not a Task status, none when it is; it is
 * not modified. Cheaper than admitting the whole Task when only its status is new.
 */
export function taskStatusCauses(status: unknown): FieldCause[] {
  const structural = structuralCause(status);
  if (structural) return [{ ...structural, field: joinField('status', structural.field) }];
  const validate = validatorFor(TASK_STATUS);
  if (validate(structuredClone(status))) return [];
  return causesOf((validate.errors ?? []).map((e) => ({ ...e, instancePath: `/status${e.instancePath}` })));
}

/** Formats an ajv instance path (`/spec/ports/0`) as a field path (`spec.ports[0]`). */
export function fieldPath(pointer: string): string {
  if (!pointer) return '';
  return pointer
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
}

function joinField(base: string, key: string): string {
  return base ? `${base}.${key}` : key;
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number' && Number.isInteger(v)) return 'integer';
  return typeof v;
}

/**
 * A client's value for a message: a string as it is, anything else as JSON, cut to `max`
 * characters. Never throws (String() does, on `{"toString": 1}`).
 */
export function shown(v: unknown, max = 100): string {
  let s: string;
  if (typeof v === 'string') s = v;
  else {
    try {
      s = JSON.stringify(v) ?? describeType(v);
    } catch {
      s = describeType(v);
    }
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Why a value is not one JSON (or YAML's CORE schema) can carry, or undefined. */
function notJson(v: unknown): string | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : `must be a finite number, not ${v}`;
  // undefined: a property built as `cmd: spec.cmd` in code, absent once encoded (as ajv sees it).
  if (v === null || v === undefined || typeof v === 'string' || typeof v === 'boolean') return undefined;
  if (typeof v !== 'object') return `must be a JSON value, not ${typeof v}`;
  if (Array.isArray(v)) return undefined;
  const proto = Object.getPrototypeOf(v);
  if (proto === null || Object.getPrototypeOf(proto) === null) return undefined; // a plain object, of any realm
  return `must be a JSON value, not ${v instanceof Date ? 'a date (quote it to make it a string)' : (proto?.constructor?.name ?? 'an object')}`;
}

function causeOf(e: ErrorObject): FieldCause {
  const at = fieldPath(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return { field: joinField(at, String(p.additionalProperty)), message: 'unknown field' };
    case 'required':
      return { field: joinField(at, String(p.missingProperty)), message: 'is required' };
    case 'type':
      return { field: at, message: `must be ${String(p.type)}, not ${describeType(e.data)}` };
    case 'enum':
      return { field: at, message: `must be one of: ${(p.allowedValues as unknown[]).map(String).join(', ')}` };
    case 'format':
      return { field: at, message: FORMATS[String(p.format)]?.message ?? `must match format ${String(p.format)}` };
    case 'propertyNames':
      return { field: joinField(at, String(p.propertyName)), message: 'invalid key' };
    case 'maxLength':
      return { field: at, message: `is ${typeof e.data === 'string' ? [...e.data].length : '?'} characters long: at most ${String(p.limit)}` };
    case 'maxItems':
      return { field: at, message: `has ${Array.isArray(e.data) ? e.data.length : '?'} items: at most ${String(p.limit)}` };
    case 'maxProperties':
      return { field: at, message: `has ${e.data && typeof e.data === 'object' ? Object.keys(e.data).length : '?'} entries: at most ${String(p.limit)}` };
    default:
      return { field: at, message: e.message ?? 'is invalid' };
  }
}

/** Collapses ajv's error list into one cause per field (propertyNames errors come in pairs). */
function causesOf(errors: ErrorObject[]): FieldCause[] {
  const byField = new Map<string, FieldCause>();
  const formatOfKey = new Map<string, string>();
  for (const e of errors) {
    if (e.keyword === 'format' && (e.propertyName !== undefined)) {
      formatOfKey.set(joinField(fieldPath(e.instancePath), e.propertyName), FORMATS[String(e.params.format)]?.message ?? 'invalid key');
      continue;
    }
    const c = causeOf(e);
    if (!byField.has(c.field)) byField.set(c.field, c);
  }
  for (const [field, message] of formatOfKey) byField.set(field, { field, message: `key ${message}` });
  return [...byField.values()];
}

/**
 * Checks nesting depth, forbidden keys and that every value is JSON (no NaN, Infinity, dates or
 * class instances: what a JSON body cannot carry the apiserver could not store) without
 * recursion (a 5,000-deep body must not blow the stack). Returns the first problem, or undefined.
 */
export function structuralCause(value: unknown, maxDepth = MAX_OBJECT_DEPTH): FieldCause | undefined {
  const stack: Array<{ v: unknown; path: string; depth: number }> = [{ v: value, path: '', depth: 0 }];
  while (stack.length) {
    const { v, path, depth } = stack.pop()!;
    const bad = notJson(v);
    if (bad) return { field: path, message: bad };
    if (v === null || typeof v !== 'object') continue;
    if (depth >= maxDepth) return { field: path, message: `nested more than ${maxDepth} levels deep` };
    if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push({ v: item, path: `${path}[${i}]`, depth: depth + 1 }));
      continue;
    }
    for (const key of Object.keys(v)) {
      const child = joinField(path, key);
      if (FORBIDDEN_KEYS.has(key)) return { field: child, message: `key "${key}" is not allowed` };
      stack.push({ v: (v as Record<string, unknown>)[key], path: child, depth: depth + 1 });
    }
  }
  return undefined;
}

/**
 * Validates an object of any kind and returns a defaulted deep copy. The input is never modified.
 * Causes name each offending field; `kind` is set once apiVersion and kind are recognised.
 */
export function admit(input: unknown): AdmitResult {
  const structural = structuralCause(input);
  if (structural) return { ok: false, causes: [structural] };
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, causes: [{ field: '', message: `must be an object, not ${describeType(input)}` }] };
  }
  const { apiVersion, kind: kindName } = input as Record<string, unknown>;
  const causes: FieldCause[] = [];
  if (apiVersion === undefined) causes.push({ field: 'apiVersion', message: `is required (use "${API_VERSION}")` });
  else if (apiVersion !== API_VERSION) causes.push({ field: 'apiVersion', message: `unsupported "${shown(apiVersion)}" (use "${API_VERSION}")` });
  const kind = KINDS.find((k) => k.kind === kindName);
  if (kindName === undefined) causes.push({ field: 'kind', message: `is required (one of ${KINDS.map((k) => k.kind).join(', ')})` });
  else if (!kind) causes.push({ field: 'kind', message: `unknown kind "${shown(kindName)}" (one of ${KINDS.map((k) => k.kind).join(', ')})` });
  if (causes.length || !kind) return { ok: false, causes };

  const object = structuredClone(input) as ShoalObject;
  const validate = validatorFor(kind.kind);
  if (!validate(object)) return { ok: false, causes: causesOf(validate.errors ?? []), kind };
  applyConditionalDefaults(object);
  const totals = totalSizeCauses(object);
  if (totals.length) return { ok: false, causes: totals, kind };
  const size = objectSizeCause(object);
  if (size) return { ok: false, causes: [size], kind, tooLarge: true };
  const semantic = semanticCauses(object, kind);
  if (semantic.length) return { ok: false, causes: semantic, kind };
  return { ok: true, object, kind };
}

/** One-line summary of causes: `spec.instances: must be >= 0; metadata.name: is required`. */
export function formatCauses(causes: FieldCause[]): string {
  return causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join('; ');
}
