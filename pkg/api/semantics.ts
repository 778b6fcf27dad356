/**
 * What JSON Schema cannot say: cross-field rules and defaults that depend on other fields.
 * Runs after schema validation, so types and ranges are already right.
 */
import type { KindInfo } from './kinds';
import type { AppSpec, Constraint, HealthCheck, JobSpec, Port, ReadinessCheck } from './types.generated';
import type { FieldCause, ShoalObject } from './objects';
import { scheduleProblem, timezoneProblem } from './schedule';

/** Fills defaults that depend on other fields (Marathon: portIndex 0 when no portName). Mutates `obj`. */
export function applyConditionalDefaults(obj: ShoalObject): void {
  if (obj.kind !== 'App' && obj.kind !== 'Task') return;
  const probes: Array<HealthCheck | ReadinessCheck> = [...(obj.spec.healthChecks ?? []), ...(obj.spec.readinessChecks ?? [])];
  for (const p of probes) {
    const usesPort = !('protocol' in p) || p.protocol !== 'COMMAND';
    if (usesPort && p.portIndex === undefined && p.portName === undefined) p.portIndex = 0;
  }
}

/** Returns every cross-field problem of an object whose schema validation passed. */
export function semanticCauses(obj: ShoalObject, kind: KindInfo): FieldCause[] {
  const causes: FieldCause[] = [];
  if (!kind.namespaced && obj.metadata.namespace !== undefined) {
    causes.push({ field: 'metadata.namespace', message: `must not be set: ${kind.kind} is cluster-scoped` });
  }
  if (obj.kind === 'App') causes.push(...workloadCauses(obj.spec), ...appCauses(obj.spec));
  if (obj.kind === 'Job') causes.push(...workloadCauses(obj.spec), ...jobCauses(obj.spec, obj.metadata.name));
  return causes;
}

function workloadCauses(spec: AppSpec | JobSpec): FieldCause[] {
  const causes: FieldCause[] = [];
  if (spec.cmd === undefined && spec.container === undefined) {
    causes.push({ field: 'spec', message: 'one of cmd or container is required' });
  }
  (spec.constraints ?? []).forEach((c, i) => {
    const message = constraintProblem(c);
    if (message) causes.push({ field: `spec.constraints[${i}]`, message });
  });
  return causes;
}

/** Marathon's rules for each constraint operator's value. */
export function constraintProblem([, op, value]: Constraint): string | undefined {
  switch (op) {
    case 'UNIQUE':
      return value === undefined ? undefined : 'UNIQUE takes no value';
    case 'CLUSTER':
      return undefined;
    case 'GROUP_BY':
      return value === undefined || /^[1-9]\d*$/.test(value) ? undefined : 'GROUP_BY value must be a positive integer (the number of groups)';
    case 'MAX_PER':
      return value !== undefined && /^[1-9]\d*$/.test(value) ? undefined : 'MAX_PER needs a positive integer value';
    case 'IS':
      return value === undefined ? 'IS needs a value' : undefined;
    case 'LIKE':
    case 'UNLIKE':
      if (value === undefined) return `${op} needs a regular expression value`;
      try {
        new RegExp(`^(?:${value})$`);
        return undefined;
      } catch {
        return `${op} value is not a valid regular expression`;
      }
  }
}

function appCauses(spec: AppSpec): FieldCause[] {
  const causes: FieldCause[] = [];
  const ports: Port[] = spec.ports ?? [];
  const names = new Set<string>();
  const hostPorts = new Set<number>();
  ports.forEach((p, i) => {
    if (p.name !== undefined) {
      if (names.has(p.name)) causes.push({ field: `spec.ports[${i}].name`, message: `duplicate port name "${p.name}"` });
      names.add(p.name);
    }
    if (p.hostPort) {
      if (hostPorts.has(p.hostPort)) causes.push({ field: `spec.ports[${i}].hostPort`, message: `duplicate hostPort ${p.hostPort}` });
      hostPorts.add(p.hostPort);
    }
    if (p.containerPort !== undefined && !spec.container) {
      causes.push({ field: `spec.ports[${i}].containerPort`, message: 'only applies to containers (spec.container is not set)' });
    }
  });
  const probeCauses = (list: Array<HealthCheck | ReadinessCheck>, field: string) =>
    list.forEach((p, i) => {
      const at = `spec.${field}[${i}]`;
      if ('protocol' in p && p.protocol === 'COMMAND') {
        if (!(p as HealthCheck).command) causes.push({ field: `${at}.command`, message: 'is required for protocol COMMAND' });
        return;
      }
      if (p.portName !== undefined && !names.has(p.portName)) {
        causes.push({ field: `${at}.portName`, message: `no port named "${p.portName}" in spec.ports` });
      } else if (p.portName === undefined && (p.portIndex ?? 0) >= ports.length) {
        causes.push({ field: `${at}.portIndex`, message: `is ${p.portIndex ?? 0} but spec.ports has ${ports.length} port(s)` });
      }
    });
  const u = spec.unreachableStrategy;
  if (u && u.expungeAfterSeconds < u.inactiveAfterSeconds) {
    causes.push({ field: 'spec.unreachableStrategy.expungeAfterSeconds', message: `must be at least inactiveAfterSeconds (${u.inactiveAfterSeconds}), as in Marathon` });
  }
  probeCauses(spec.healthChecks ?? [], 'healthChecks');
  probeCauses(spec.readinessChecks ?? [], 'readinessChecks');
  return causes;
}

function jobCauses(spec: JobSpec, name: string): FieldCause[] {
  const causes: FieldCause[] = [];
  const timezone = spec.timezone ?? 'UTC';
  // The zone is checked even without a schedule: it is part of the spec and a later schedule is read in it.
  const tzProblem = timezoneProblem(timezone);
  if (tzProblem) causes.push({ field: 'spec.timezone', message: tzProblem });
  if (spec.schedule !== undefined) {
    const problem = scheduleProblem(spec.schedule, tzProblem ? 'UTC' : timezone);
    if (problem) causes.push({ field: 'spec.schedule', message: problem });
  }
  const completions = spec.completions ?? 1;
  const parallelism = spec.parallelism ?? 1;
  if (parallelism > completions) {
    causes.push({ field: 'spec.parallelism', message: `is ${parallelism}: more tasks at once than must complete; at most completions (${completions})` });
  }
  if (spec.gang && completions !== parallelism) {
    causes.push({ field: 'spec.gang', message: `a gang's tasks all run together: completions must equal parallelism (${completions} ≠ ${parallelism})` });
  }
  // parents with schedule is allowed: the Job runs on its schedule and after its parents.
  (spec.parents ?? []).forEach((p, i) => {
    if (p === name) causes.push({ field: `spec.parents[${i}]`, message: `a Job cannot be its own parent ("${p}")` });
  });
  return causes;
}
