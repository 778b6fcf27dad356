/**
 * From a Shoal task to Docker's container-create body: names, labels, command, resources,
 * ports, environment and the security defaults of DESIGN.md ("Security defaults for what
 * runs"). Pure functions, so the policy is unit-tested without a daemon.
 */
import type { ContainerCreateOptions } from 'dockerode';
import type { TaskPort, TaskSpec } from '../api/types.generated';
import { PolicyError } from './docker-errors';
import { taskEnv, type NodeContext } from './env';
import type { RuntimeTask, RuntimeTaskRef } from './types';

/** Labels on every Shoal container: list() finds a node's containers (and only those) by them. */
export const LABEL = {
  task: 'shoal.task',
  namespace: 'shoal.namespace',
  node: 'shoal.node',
  uid: 'shoal.uid',
  owner: 'shoal.owner',
} as const;

/** Who a container runs as when its image would run as root and the task names no user. */
export const NOBODY = '65534:65534';
/** Processes per container when the runtime is not told otherwise: stops fork bombs, fits real services. */
export const DEFAULT_PIDS_LIMIT = 1024;
/** Image for a task with a `cmd` and no container (Mesos' command task on a Docker-only agent). */
export const DEFAULT_IMAGE = 'shoal/busybox:latest';

const MIB = 1024 * 1024;

/**
 * The container's name. `_` cannot occur in a DNS-1123 namespace or task name, so the name is
 * unambiguous (`shoal-a-b-c` could be namespace a-b/task c or namespace a/task b-c).
 */
export function containerName(namespace: string, name: string): string {
  return `shoal-${namespace}_${name}`;
}

/** The task a container runs, from its labels; undefined for a container Shoal did not label fully. */
export function refFromLabels(labels: Record<string, string> | undefined): RuntimeTaskRef | undefined {
  const namespace = labels?.[LABEL.namespace];
  const name = labels?.[LABEL.task];
  const uid = labels?.[LABEL.uid];
  return namespace && name && uid ? { namespace, name, uid } : undefined;
}

/** Whether a Docker user string (`name`, `uid`, `uid:gid`, `name:group`) means root; `''` is the image default. */
export function isRootUser(user: string): boolean {
  const who = user.split(':')[0].trim();
  return who === '' || who === 'root' || (/^\d+$/.test(who) && Number(who) === 0);
}

/**
 * Who the container runs as. The task's user if it names one (root only when `allowRoot`);
 * else the image's user unless that is root, which becomes nobody (65534) unless `allowRoot`.
 * Always explicit, so `docker inspect` shows who runs. A user name that maps to uid 0 inside
 * the image is not caught here: Docker resolves names from the image's /etc/passwd.
 */
export function effectiveUser(specUser: string | undefined, imageUser: string | undefined, allowRoot: boolean, node: string): string {
  const asked = specUser?.trim();
  if (asked) {
    if (isRootUser(asked) && !allowRoot) {
      throw new PolicyError(`task asks to run as "${asked}" (root), which the security policy of node ${node} forbids: containers run as non-root unless the agent allows root (--allow-root)`);
    }
    return asked;
  }
  const image = imageUser?.trim() ?? '';
  if (!isRootUser(image)) return image;
  return allowRoot ? image || 'root' : NOBODY;
}

/** The image a task runs: its container's, or the default image for a bare `cmd`. */
export function imageOf(spec: TaskSpec, defaultImage = DEFAULT_IMAGE): string {
  if (spec.container?.image) return spec.container.image;
  if (spec.cmd) return defaultImage;
  throw new PolicyError('task has neither a container image nor a cmd: nothing to run');
}

/**
 * Entrypoint and Cmd. `container.command` replaces the image's entrypoint and `args` its cmd;
 * a task `cmd` runs as `/bin/sh -c cmd` in the image (Marathon's shell semantics). Setting
 * Entrypoint also drops the image's Cmd (Docker's rule), so `command` alone runs as written.
 */
export function commandOf(spec: TaskSpec): Pick<ContainerCreateOptions, 'Entrypoint' | 'Cmd'> {
  const c = spec.container;
  if (c?.command?.length) return { Entrypoint: c.command, Cmd: c.args ?? [] };
  if (spec.cmd) return { Entrypoint: ['/bin/sh', '-c'], Cmd: [spec.cmd] };
  return c?.args ? { Cmd: c.args } : {};
}

/** Docker's port key: a port without containerPort listens inside on its host port (PORT0 says which). */
function portKey(p: TaskPort): string {
  return `${p.containerPort ?? p.hostPort}/${p.protocol ?? 'tcp'}`;
}

/** Host ports → ExposedPorts and PortBindings (all host addresses, as Marathon's BRIDGE mode). */
export function portsOf(ports: TaskPort[] | undefined): Pick<ContainerCreateOptions, 'ExposedPorts'> & { PortBindings: Record<string, Array<{ HostPort: string }>> } {
  const exposed: Record<string, Record<string, never>> = {};
  const bindings: Record<string, Array<{ HostPort: string }>> = {};
  for (const p of ports ?? []) {
    const key = portKey(p);
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostPort: String(p.hostPort) });
  }
  return { ExposedPorts: exposed, PortBindings: bindings };
}

/** cpus → NanoCpus, mem (MiB) → Memory with swap equal to it (the limit is the real limit). Zero means unlimited. */
export function limitsOf(resources: TaskSpec['resources'] | undefined, pidsLimit: number): { NanoCpus?: number; Memory?: number; MemorySwap?: number; PidsLimit: number } {
  const out: { NanoCpus?: number; Memory?: number; MemorySwap?: number; PidsLimit: number } = { PidsLimit: pidsLimit };
  if (resources?.cpus && resources.cpus > 0) out.NanoCpus = Math.round(resources.cpus * 1e9);
  if (resources?.mem && resources.mem > 0) out.Memory = out.MemorySwap = Math.round(resources.mem * MIB);
  return out;
}

/** What createOptions() needs besides the task. */
export interface CreateContext {
  node: NodeContext;
  image: string;
  /** From effectiveUser(). */
  user: string;
  pidsLimit: number;
  readonlyRootfs: boolean;
}

/** The container-create body for a task, with every security default set explicitly. */
export function createOptions(task: RuntimeTask, ctx: CreateContext): ContainerCreateOptions {
  const { spec } = task;
  const ports = portsOf(spec.ports);
  const labels: Record<string, string> = { [LABEL.task]: task.name, [LABEL.namespace]: task.namespace, [LABEL.node]: ctx.node.nodeName, [LABEL.uid]: task.uid };
  if (task.owner) labels[LABEL.owner] = task.owner;
  return {
    name: containerName(task.namespace, task.name),
    Image: ctx.image,
    ...commandOf(spec),
    Env: Object.entries(taskEnv(task, ctx.node)).map(([k, v]) => `${k}=${v}`),
    User: ctx.user,
    Labels: labels,
    ExposedPorts: ports.ExposedPorts,
    // Docker's own stops (an operator's `docker stop`, a daemon shutdown) honour the task's grace too.
    StopTimeout: spec.taskKillGracePeriodSeconds,
    Tty: false,
    OpenStdin: false,
    HostConfig: {
      ...limitsOf(spec.resources, ctx.pidsLimit),
      PortBindings: ports.PortBindings,
      ...securityDefaults(ctx.readonlyRootfs),
    },
  };
}

/**
 * DESIGN.md's container defaults, spelled out so no daemon default can weaken them: no
 * capabilities, no privilege gain (setuid), own network/PID/IPC namespaces, nothing from the
 * host mounted (not even the Docker socket). Init: tini as PID 1 forwards SIGTERM to the task
 * (a shell as PID 1 would ignore it, so every stop would wait out the grace) and reaps zombies.
 */
function securityDefaults(readonlyRootfs: boolean): NonNullable<ContainerCreateOptions['HostConfig']> {
  return {
    Privileged: false,
    CapDrop: ['ALL'],
    CapAdd: [],
    SecurityOpt: ['no-new-privileges'],
    NetworkMode: 'bridge',
    PidMode: '',
    IpcMode: 'private',
    Binds: [],
    Mounts: [],
    VolumesFrom: [],
    Devices: [],
    ReadonlyRootfs: readonlyRootfs,
    Init: true,
    // The agent decides about restarts (a task that ends is replaced by the scheduler).
    RestartPolicy: { Name: 'no' },
    AutoRemove: false,
    // Bounded logs that `docker logs` (and so `shoal logs`) can read, whatever the daemon's default driver.
    LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
  };
}
