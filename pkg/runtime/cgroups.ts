/**
 * cgroups for process tasks: cpu, memory and pids limits, OOM kills, and killing whatever a task
 * left behind (processes that escaped its process group with setsid still sit in its cgroup).
 *
 * Layout (absolute in the hierarchy, like Docker's and the kubelet's cgroupfs driver, so a
 * restarted agent finds its tasks' cgroups wherever its own process lands):
 *
 * - v2 (a `cgroup.controllers` file at the mount's root): `<root>/<parent>/<task>`, with cpu,
 *   memory and pids enabled in `cgroup.subtree_control` from the root down to `<parent>`.
 * - v1: `<controller mount>/<parent>/<task>` in each of the cpu, memory and pids hierarchies.
 *
 * The pure part (where the hierarchies are, which files get which values) is separate from the
 * few functions that touch /sys/fs/cgroup, so it is unit-tested without a kernel.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

/** The controllers Shoal limits. */
export type Controller = 'cpu' | 'memory' | 'pids';
export const CONTROLLERS: readonly Controller[] = ['cpu', 'memory', 'pids'];

/** Where this host's cgroups are: one v2 hierarchy, or a v1 mount per controller. */
export type CgroupHost =
  | { version: 2; root: string; controllers: Controller[] }
  | { version: 1; roots: Partial<Record<Controller, string>> };

/** What a task is limited to; an absent field is unlimited. */
export interface CgroupLimits {
  /** Cores (0.5: half of one CPU's time per period). */
  cpus?: number;
  memoryBytes?: number;
  pids?: number;
}

/** One file write; `optional` ones are skipped when the kernel lacks the file (swap accounting off). */
export interface CgroupWrite {
  file: string;
  value: string;
  optional?: boolean;
}

/** What makes a task's cgroup: dirs to create (in order), then writes (in order). */
export interface CgroupPlan {
  dirs: string[];
  writes: CgroupWrite[];
}

/** The CFS period Docker uses too: quota = cpus × period. */
export const CPU_PERIOD_US = 100_000;
/** The kernel refuses smaller quotas. */
const MIN_CPU_QUOTA_US = 1_000;
const MIB = 1024 * 1024;

/**
 * The host's cgroups from `/proc/mounts`: the v2 hierarchy when one has cpu, memory or pids in its
 * `cgroup.controllers` (read through `controllersOf`, given the mount point), else the v1 mounts
 * of those controllers (a hybrid host's v2 mount without controllers is not used); undefined
 * when neither has any of them.
 */
export function detectCgroupHost(mounts: string, controllersOf: (dir: string) => string | undefined): CgroupHost | undefined {
  const v1: Partial<Record<Controller, string>> = {};
  for (const line of mounts.split('\n')) {
    const [, dir, type, options] = line.split(' ');
    if (type === 'cgroup2') {
      const have = (controllersOf(unescapeMount(dir)) ?? '').split(/\s+/);
      const controllers = CONTROLLERS.filter((c) => have.includes(c));
      if (controllers.length) return { version: 2, root: unescapeMount(dir), controllers };
    } else if (type === 'cgroup') {
      const opts = (options ?? '').split(',');
      for (const c of CONTROLLERS) if (opts.includes(c) && !v1[c]) v1[c] = unescapeMount(dir);
    }
  }
  return Object.keys(v1).length ? { version: 1, roots: v1 } : undefined;
}

/** cpus and mem (MiB) of a task's resources and the pids limit; zero or absent means unlimited. */
export function limitsFor(resources: { cpus?: number; mem?: number } | undefined, pidsLimit: number | undefined): CgroupLimits {
  const out: CgroupLimits = {};
  if (resources?.cpus && resources.cpus > 0) out.cpus = resources.cpus;
  if (resources?.mem && resources.mem > 0) out.memoryBytes = Math.round(resources.mem * MIB);
  if (pidsLimit && pidsLimit > 0) out.pids = Math.floor(pidsLimit);
  return out;
}

/** The CFS quota for `cpus` cores. */
export function cpuQuotaUs(cpus: number): number {
  return Math.max(MIN_CPU_QUOTA_US, Math.round(cpus * CPU_PERIOD_US));
}

/**
 * What makes `<parent>` usable for tasks: its dirs and, in v2, the controllers enabled in
 * `cgroup.subtree_control` of the root and of every cgroup down to `<parent>` (a child only gets
 * controllers its parent enabled).
 */
export function parentPlan(host: CgroupHost, parent: string): CgroupPlan {
  const segments = segmentsOf(parent);
  if (host.version === 1) return { dirs: Object.values(host.roots).map((root) => path.join(root!, ...segments)), writes: [] };
  const enable = host.controllers.map((c) => `+${c}`).join(' ');
  const dirs: string[] = [];
  const writes: CgroupWrite[] = [{ file: path.join(host.root, 'cgroup.subtree_control'), value: enable }];
  for (let i = 1; i <= segments.length; i++) {
    const dir = path.join(host.root, ...segments.slice(0, i));
    dirs.push(dir);
    writes.push({ file: path.join(dir, 'cgroup.subtree_control'), value: enable });
  }
  return { dirs, writes };
}

/**
 * The task's cgroup dirs and limit files. v1 memory: the memory+swap limit equals the memory
 * limit (as Docker sets MemorySwap), and is written after it (the kernel wants memsw ≥ memory).
 */
export function taskPlan(host: CgroupHost, parent: string, name: string, limits: CgroupLimits): CgroupPlan {
  const rel = [...segmentsOf(parent), name];
  if (host.version === 2) {
    const dir = path.join(host.root, ...rel);
    const writes: CgroupWrite[] = [];
    const has = (c: Controller) => host.controllers.includes(c);
    if (has('cpu') && limits.cpus !== undefined) writes.push({ file: path.join(dir, 'cpu.max'), value: `${cpuQuotaUs(limits.cpus)} ${CPU_PERIOD_US}` });
    if (has('memory') && limits.memoryBytes !== undefined) {
      writes.push({ file: path.join(dir, 'memory.max'), value: String(limits.memoryBytes) });
      writes.push({ file: path.join(dir, 'memory.swap.max'), value: '0', optional: true });
    }
    if (has('pids') && limits.pids !== undefined) writes.push({ file: path.join(dir, 'pids.max'), value: String(limits.pids) });
    return { dirs: [dir], writes };
  }
  const dirs: string[] = [];
  const writes: CgroupWrite[] = [];
  for (const c of CONTROLLERS) {
    const root = host.roots[c];
    if (!root) continue;
    const dir = path.join(root, ...rel);
    dirs.push(dir);
    if (c === 'cpu' && limits.cpus !== undefined) {
      writes.push({ file: path.join(dir, 'cpu.cfs_period_us'), value: String(CPU_PERIOD_US) });
      writes.push({ file: path.join(dir, 'cpu.cfs_quota_us'), value: String(cpuQuotaUs(limits.cpus)) });
    }
    if (c === 'memory' && limits.memoryBytes !== undefined) {
      writes.push({ file: path.join(dir, 'memory.limit_in_bytes'), value: String(limits.memoryBytes) });
      writes.push({ file: path.join(dir, 'memory.memsw.limit_in_bytes'), value: String(limits.memoryBytes), optional: true });
    }
    if (c === 'pids' && limits.pids !== undefined) writes.push({ file: path.join(dir, 'pids.max'), value: String(limits.pids) });
  }
  return { dirs, writes };
}

/** `oom_kill N` of v2's `memory.events` or v1's `memory.oom_control` (0 when absent). */
export function parseOomKills(text: string): number {
  const m = /^oom_kill (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** The pids listed in a `cgroup.procs`. */
export function parseProcs(text: string): number[] {
  return text.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
}

/** A cgroup name from a task's namespace and work dir name (both plain path segments). */
export function taskCgroupName(namespace: string, dirName: string): string {
  return `${namespace}_${dirName}`;
}

// ---- the host ---------------------------------------------------------------------------------

/** The host's cgroups, or why there are none (for the agent's one warning). */
export function probeHost(): { host?: CgroupHost; problem?: string } {
  let mounts: string;
  try {
    mounts = readFileSync('/proc/mounts', 'utf8');
  } catch (err) {
    return { problem: `cannot read /proc/mounts: ${(err as Error).message}` };
  }
  const host = detectCgroupHost(mounts, (dir) => {
    try {
      return readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8');
    } catch {
      return undefined;
    }
  });
  return host ? { host } : { problem: 'no cgroup hierarchy with the cpu, memory or pids controller is mounted' };
}

/** Creates `<parent>` (and enables controllers in v2); throws with the file that failed. */
export function prepareParent(host: CgroupHost, parent: string): void {
  apply(parentPlan(host, parent));
}

/** Creates the task's cgroup with its limits and returns its dirs; throws (after cleaning up) if that fails. */
export function createTaskCgroup(host: CgroupHost, parent: string, name: string, limits: CgroupLimits): string[] {
  const plan = taskPlan(host, parent, name, limits);
  try {
    apply(plan);
  } catch (err) {
    removeCgroup(plan.dirs);
    throw err;
  }
  return plan.dirs;
}

/** Moves `pid` into every one of the task's cgroup dirs. */
export function joinCgroup(dirs: string[], pid: number): void {
  for (const dir of dirs) writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
}

/** How many times the kernel OOM-killed a process of the cgroup (0 if it cannot tell). */
export function oomKills(dirs: string[] | undefined): number {
  let kills = 0;
  for (const dir of dirs ?? []) {
    for (const file of ['memory.events', 'memory.oom_control']) {
      try {
        kills += parseOomKills(readFileSync(path.join(dir, file), 'utf8'));
      } catch {
        // not the memory cgroup, or already removed
      }
    }
  }
  return kills;
}

/** SIGKILLs every process in the cgroup (v2's cgroup.kill when the kernel has it); true if one was there. */
export function killCgroup(dirs: string[] | undefined): boolean {
  let found = false;
  for (const dir of dirs ?? []) {
    const kill = path.join(dir, 'cgroup.kill');
    if (existsSync(kill)) {
      try {
        found = procsOf(dir).length > 0 || found;
        writeFileSync(kill, '1');
        continue;
      } catch {
        // fall back to one kill per pid
      }
    }
    for (const pid of procsOf(dir)) {
      found = true;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
  return found;
}

/** Whether any process is left in the cgroup. */
export function cgroupPopulated(dirs: string[] | undefined): boolean {
  return (dirs ?? []).some((dir) => procsOf(dir).length > 0);
}

/** Removes the cgroup's dirs; false while a process is still in one (EBUSY). Missing dirs are fine. */
export function removeCgroup(dirs: string[] | undefined): boolean {
  let removed = true;
  for (const dir of dirs ?? []) {
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') removed = false;
    }
  }
  return removed;
}

function procsOf(dir: string): number[] {
  try {
    return parseProcs(readFileSync(path.join(dir, 'cgroup.procs'), 'utf8'));
  } catch {
    return [];
  }
}

function apply(plan: CgroupPlan): void {
  for (const dir of plan.dirs) mkdirSync(dir, { recursive: true });
  for (const w of plan.writes) {
    if (w.optional && !existsSync(w.file)) continue;
    try {
      writeFileSync(w.file, w.value);
    } catch (err) {
      throw new Error(`cannot write "${w.value}" to ${w.file}: ${(err as Error).message}`);
    }
  }
}

function segmentsOf(parent: string): string[] {
  return parent.split('/').filter((s) => s !== '' && s !== '.' && s !== '..');
}

/** /proc/mounts escapes spaces and such as octal (`\040`). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
