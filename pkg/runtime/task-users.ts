/**
 * Who process tasks run as. An agent running as root never runs a task as root unless its
 * operator asked for it (`--task-user root`) and allowed it (`--allow-root`):
 *
 * - default: each task gets a uid of its own from a range no account uses (gid = uid), like
 *   systemd's DynamicUser: tasks cannot read each other's work dirs nor signal or trace each
 *   other (processes of one uid can read each other's /proc entries, so a shared user would not
 *   keep tasks apart).
 * - `--task-user NAME|UID[:GID]`: every task runs as that user (they share it: not isolated
 *   from each other, only from the agent and the rest of the machine).
 * - an agent that is not root cannot switch users: tasks run as the agent's own user.
 *
 * Pure decisions here; process.ts does the I/O.
 */

/** A uid and gid a task runs as; `name` becomes USER and LOGNAME. */
export interface TaskIdentity {
  uid: number;
  gid: number;
  name: string;
}

/** How an agent picks a task's identity. */
export type TaskUserPolicy =
  /** Every task runs as `identity` (switch: the agent must change to it; false: it is the agent's own). */
  | { kind: 'fixed'; identity: TaskIdentity; switch: boolean }
  /** Each task gets a free uid of `range` (inclusive). */
  | { kind: 'dynamic'; range: [number, number] };

/** One line of /etc/passwd (or `getent passwd`). */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

/**
 * uids tasks get by default: the 64 Ki above systemd's container range (524288–1879048191),
 * which no account, container manager or DynamicUser allocates.
 */
export const DEFAULT_TASK_UIDS: [number, number] = [1879048192, 1879048192 + 65535];

/** What resolveTaskUser() needs to know about the agent and its flags. */
export interface TaskUserInput {
  /** `--task-user`: a name, a uid or uid:gid. */
  taskUser?: string;
  /** `--task-uids`: the range dynamic uids come from. @default DEFAULT_TASK_UIDS */
  taskUids?: [number, number];
  /** `--allow-root`: a task user of uid 0 is refused without it. */
  allowRoot: boolean;
  /** The agent's own identity (process.getuid(), getgid(), user name). */
  agent: TaskIdentity;
  /** Looks a user up by name or uid (getent passwd). */
  lookup: (nameOrUid: string) => PasswdEntry | undefined;
}

/** The policy, and the one warning the agent logs at start when tasks are less isolated than by default. */
export interface ResolvedTaskUser {
  policy: TaskUserPolicy;
  warning?: string;
}

/** Parses a passwd line (`name:x:uid:gid:gecos:home:shell`). */
export function parsePasswdLine(line: string): PasswdEntry | undefined {
  const f = line.trim().split(':');
  if (f.length < 4 || !/^\d+$/.test(f[2]) || !/^\d+$/.test(f[3])) return undefined;
  return { name: f[0], uid: Number(f[2]), gid: Number(f[3]) };
}

/** Parses `from-to` (`--task-uids`): whole numbers, 1 ≤ from ≤ to < 2^32-1, never 0 (root). */
export function parseUidRange(text: string): [number, number] {
  const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(text);
  const [from, to] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!(from >= 1 && to >= from && to < 0xffffffff)) throw new Error(`"${text}" is not a uid range from-to (1 <= from <= to < 4294967295)`);
  return [from, to];
}

/**
 * The policy for the agent's flags. Throws (naming the flag) for a user that does not exist or
 * is root without `--allow-root`.
 */
export function resolveTaskUser(o: TaskUserInput): ResolvedTaskUser {
  const asked = o.taskUser?.trim();
  if (o.agent.uid !== 0) {
    const self: TaskUserPolicy = { kind: 'fixed', identity: o.agent, switch: false };
    const why = asked ? ` (--task-user ${asked} is ignored)` : '';
    return { policy: self, warning: `the agent runs as uid ${o.agent.uid}, not root, so it cannot switch users: process tasks run as ${o.agent.name} (uid ${o.agent.uid}) like the agent itself and can read and change its files${why}` };
  }
  if (!asked) return { policy: { kind: 'dynamic', range: o.taskUids ?? DEFAULT_TASK_UIDS } };
  const identity = identityOf(asked, o.lookup);
  if (identity.uid === 0 && !o.allowRoot) {
    throw new Error(`--task-user ${asked} is root, which the agent refuses without --allow-root: process tasks run as non-root users unless the operator allows root`);
  }
  const warning = identity.uid === 0
    ? `process tasks run as root (--task-user ${asked} with --allow-root): they can do anything the agent can`
    : `every process task runs as ${identity.name} (uid ${identity.uid}, --task-user): tasks share that user, so they can read each other's files and signal each other; without --task-user each task gets a uid of its own`;
  return { policy: { kind: 'fixed', identity, switch: identity.uid !== o.agent.uid || identity.gid !== o.agent.gid }, warning };
}

/** `name`, `uid` or `uid:gid` to an identity; a uid without an account gets gid = uid. */
function identityOf(asked: string, lookup: (nameOrUid: string) => PasswdEntry | undefined): TaskIdentity {
  const [who, group] = asked.split(':');
  if (group !== undefined && !/^\d+$/.test(group)) throw new Error(`--task-user "${asked}": the group must be a numeric gid`);
  const entry = lookup(who);
  if (/^\d+$/.test(who)) {
    const uid = Number(who);
    return { uid, gid: group !== undefined ? Number(group) : entry?.gid ?? uid, name: entry?.name ?? who };
  }
  if (!entry) throw new Error(`--task-user "${who}": no such user on this machine`);
  return { uid: entry.uid, gid: group !== undefined ? Number(group) : entry.gid, name: entry.name };
}

/**
 * A uid of `range` that no task uses (`used`), picked at random so a uid is not handed out
 * again right after its task's files were removed; undefined when the range is full.
 */
export function pickUid(range: [number, number], used: ReadonlySet<number>, random: () => number = Math.random): number | undefined {
  const size = range[1] - range[0] + 1;
  if (used.size >= size) {
    let free = false;
    for (let uid = range[0]; uid <= range[1] && !free; uid++) free = !used.has(uid);
    if (!free) return undefined;
  }
  const start = Math.floor(random() * size);
  for (let i = 0; i < size; i++) {
    const uid = range[0] + ((start + i) % size);
    if (!used.has(uid)) return uid;
  }
  return undefined;
}

/** A directory's owner and mode, as stat() tells them. */
export interface DirStat {
  path: string;
  uid: number;
  gid: number;
  mode: number;
}

/**
 * The first directory `uid`/`gid` cannot traverse (search permission: x for owner, group or
 * others, whichever applies; supplementary groups are dropped when a task starts), or undefined.
 */
export function untraversable(dirs: DirStat[], uid: number, gid: number): DirStat | undefined {
  if (uid === 0) return undefined;
  return dirs.find((d) => {
    const bit = d.uid === uid ? 0o100 : d.gid === gid ? 0o010 : 0o001;
    return (d.mode & bit) === 0;
  });
}

/** `/a/b/c` → `['/', '/a', '/a/b', '/a/b/c']`. */
export function ancestorsOf(dir: string): string[] {
  const parts = dir.split('/').filter(Boolean);
  return ['/', ...parts.map((_, i) => '/' + parts.slice(0, i + 1).join('/'))];
}
