/**
 * The Docker runtime: one container per task, through dockerode against the local daemon.
 * Containers are named and labelled after their task (docker-spec.ts), so a restarted agent
 * finds them again (list) and keeps them running. Images must be present on the node (no
 * registry; pull is opt-in). Exits are detected with one `wait` per container (as Mesos' Docker
 * containerizer does): it answers at once for a container that already exited, which makes
 * adoption and a daemon restart race-free, and is retried until the container is gone.
 */
import { PassThrough, Readable } from 'node:stream';
import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { nameKey } from '../api/keys';
import { backoffDelay, errorMessage, sleepUnlessAborted } from '../util/backoff';
import { DockerRuntimeError, ImageNotPresentError, dockerCall, isDockerError, toDockerError } from './docker-errors';
import { DEFAULT_IMAGE, DEFAULT_PIDS_LIMIT, LABEL, containerName, createOptions, effectiveUser, imageOf, refFromLabels } from './docker-spec';
import type { NodeContext } from './env';
import { UNKNOWN_EXIT_CODE, type ExecResult, type ExitDetail, type ExitHandler, type LogOptions, type Runtime, type RuntimeTask, type RuntimeTaskRef, type StartedTask } from './types';
import { MAX_TIMER_MS } from '../util/clock';

/** exec()'s exit code when the command ran out of time (GNU timeout's, as the process runtime). */
export const EXEC_TIMEOUT_EXIT_CODE = 124;
/** An exec's output kept for a health check's message (as the process runtime); the rest is dropped. */
const MAX_EXEC_OUTPUT = 10 * 1024;

export interface DockerRuntimeOptions {
  /** The daemon client. @default new Dockerode() (DOCKER_HOST, else /var/run/docker.sock) */
  docker?: Dockerode;
  node: NodeContext;
  logger: Logger;
  /** Pull an image that is not present (needs a registry). @default false */
  pull?: boolean;
  /** Let containers run as root (an image's default root user, or a task asking for it). @default false */
  allowRoot?: boolean;
  /** @default 1024 */
  pidsLimit?: number;
  /** Image for tasks with a `cmd` and no container. @default shoal/busybox:latest */
  defaultImage?: string;
  /** Mount the container's root filesystem read-only. @default false */
  readonlyRootfs?: boolean;
}

/** A running task as list() finds it, with its container. */
export interface DockerTaskRef extends RuntimeTaskRef {
  containerId: string;
}

/** What inspect() tells about a task's container. */
export interface DockerTaskInfo extends DockerTaskRef {
  running: boolean;
  /** Set once the container ended. */
  exitCode?: number;
  oomKilled: boolean;
  startedAt?: string;
  finishedAt?: string;
}

/** One exit watch: the container it waits for, who to tell, and how to cancel. */
interface Watch {
  containerId: string;
  onExit: ExitHandler;
  abort: AbortController;
}

type ContainerInfo = Dockerode.ContainerInspectInfo;

/** Runs each task as a Docker container. See the file comment. */
export class DockerRuntime implements Runtime {
  readonly name = 'docker';
  readonly docker: Dockerode;
  private readonly node: NodeContext;
  private readonly log: Logger;
  private readonly o: DockerRuntimeOptions;
  /** Exit watches by `namespace/name`; an entry is removed before its onExit runs, so it runs once. */
  private readonly watches = new Map<string, Watch>();

  constructor(options: DockerRuntimeOptions) {
    this.o = options;
    this.docker = options.docker ?? new Dockerode();
    this.node = options.node;
    this.log = options.logger.child({ runtime: 'docker' });
  }

  /**
   * Creates and starts the task's container; resolves with its id once it runs. A container of
   * the same task (same uid) already running is kept (an idempotent retry); an ended one of
   * that name is removed first; one of another uid still running is refused (stop it first).
   * Rejects with ImageNotPresentError, PolicyError (root refused) or a DockerRuntimeError
   * carrying the daemon's reason.
   */
  async start(task: RuntimeTask, onExit: ExitHandler): Promise<StartedTask> {
    const image = imageOf(task.spec, this.o.defaultImage ?? DEFAULT_IMAGE);
    const imageInfo = await this.ensureImage(image);
    const user = effectiveUser(task.spec.container?.user, imageInfo.Config?.User, this.o.allowRoot ?? false, this.node.nodeName);
    const name = containerName(task.namespace, task.name);
    const existing = await this.find(name);
    if (existing?.State.Running && existing.Config.Labels?.[LABEL.uid] === task.uid && this.isOurs(existing)) {
      this.watch(key(task.namespace, task.name), existing.Id, onExit);
      return { containerId: existing.Id };
    }
    if (existing) await this.removeLeftover(existing);
    const body = createOptions(task, { node: this.node, image, user, pidsLimit: this.o.pidsLimit ?? DEFAULT_PIDS_LIMIT, readonlyRootfs: this.o.readonlyRootfs ?? false });
    const container = await dockerCall(`create container ${name}`, () => this.docker.createContainer(body));
    await this.startCreated(container, name);
    this.watch(key(task.namespace, task.name), container.id, onExit);
    this.log.info({ task: key(task.namespace, task.name), containerId: container.id, image, user }, 'container started');
    return { containerId: container.id };
  }

  /**
   * Stops the task's container (SIGTERM, SIGKILL after `graceSeconds`, by the daemon) and
   * removes it. Its exit is not reported. Unknown tasks, and other nodes' containers, are left alone.
   */
  async stop(namespace: string, name: string, graceSeconds: number): Promise<void> {
    this.unwatch(key(namespace, name));
    const info = await this.find(containerName(namespace, name));
    if (!info || !this.isOurs(info)) return;
    if (info.State.Running) {
      const t = Math.max(0, Math.ceil(graceSeconds));
      await tolerate([304, 404], dockerCall(`stop container ${info.Name}`, () => this.docker.getContainer(info.Id).stop({ t })));
    }
    await this.removeContainer(info.Id, info.Name);
  }

  /** Running containers labelled for this node, with their ids (a restarted agent adopts them). */
  async list(): Promise<DockerTaskRef[]> {
    const filters = { label: [`${LABEL.node}=${this.node.nodeName}`], status: ['running'] };
    const containers = await dockerCall('list containers', () => this.docker.listContainers({ filters }));
    return containers.flatMap((c) => {
      const ref = refFromLabels(c.Labels);
      return ref ? [{ ...ref, containerId: c.Id }] : [];
    });
  }

  /**
   * Takes over exit detection of a task whose container an earlier agent started: true when
   * this node has a container of that task (same uid), running or not; `onExit` is then called
   * once when it ends, at once with its recorded code if it already has. False: start it anew.
   */
  async adopt(ref: RuntimeTaskRef, onExit: ExitHandler): Promise<boolean> {
    const info = await this.find(containerName(ref.namespace, ref.name));
    if (!info || !this.isOurs(info) || info.Config.Labels?.[LABEL.uid] !== ref.uid) return false;
    this.watch(key(ref.namespace, ref.name), info.Id, onExit);
    this.log.info({ task: key(ref.namespace, ref.name), containerId: info.Id, running: info.State.Running }, 'container adopted');
    return true;
  }

  /** Removes the container of a task that has ended (garbage collection). Rejects while it runs. */
  async remove(namespace: string, name: string): Promise<void> {
    const info = await this.find(containerName(namespace, name));
    if (!info || !this.isOurs(info)) return;
    if (info.State.Running) throw new DockerRuntimeError('Conflict', `task ${namespace}/${name} still runs (container ${info.Id.slice(0, 12)}); stop it before removing it`);
    await this.removeContainer(info.Id, info.Name);
  }

  /** The task's container as the daemon sees it; undefined if it has none on this node. */
  async inspect(namespace: string, name: string): Promise<DockerTaskInfo | undefined> {
    const info = await this.find(containerName(namespace, name));
    const ref = info && this.isOurs(info) ? refFromLabels(info.Config.Labels) : undefined;
    if (!info || !ref) return undefined;
    const s = info.State;
    const out: DockerTaskInfo = { ...ref, containerId: info.Id, running: s.Running, oomKilled: s.OOMKilled, startedAt: s.StartedAt };
    if (!s.Running && s.FinishedAt && !s.FinishedAt.startsWith('0001')) Object.assign(out, { exitCode: s.ExitCode, finishedAt: s.FinishedAt });
    return out;
  }

  /**
   * The task's output (stdout and stderr interleaved as written, or one of them), Docker's
   * multiplexed framing removed: the last `tail` lines, then with `follow` what comes until the
   * container ends or the consumer destroys the stream. A task without a container here errors
   * the stream with a NotFound DockerRuntimeError.
   */
  logs(namespace: string, name: string, options: LogOptions = {}): NodeJS.ReadableStream {
    const out = new PassThrough();
    this.openLogs(namespace, name, options).then(
      (source) => this.demuxInto(source, out),
      (err: unknown) => out.destroy(toDockerError(`logs of task ${namespace}/${name}`, err)),
    );
    return out;
  }

  /**
   * Runs `command` in the task's container (a string runs under /bin/sh -c) as the container's
   * user, for COMMAND health checks: its code and first 10 KiB of output. After `timeoutSeconds`
   * it resolves with timedOut and EXEC_TIMEOUT_EXIT_CODE; the command itself may run on (Docker
   * has no way to kill an exec). Rejects when the task has no running container here.
   */
  async exec(namespace: string, name: string, command: string | string[], timeoutSeconds: number): Promise<ExecResult> {
    const info = await this.require(namespace, name);
    if (!info.State.Running) throw new DockerRuntimeError('Conflict', `task ${namespace}/${name} is not running`);
    const Cmd = typeof command === 'string' ? ['/bin/sh', '-c', command] : command;
    const what = `exec in container ${info.Name}`;
    const exec = await dockerCall(what, () => this.docker.getContainer(info.Id).exec({ Cmd, AttachStdout: true, AttachStderr: true }));
    const stream = await dockerCall(what, () => exec.start({ hijack: true, stdin: false }));
    const { output, timedOut } = await this.collect(stream, timeoutSeconds);
    if (timedOut) return { exitCode: EXEC_TIMEOUT_EXIT_CODE, output, timedOut };
    return { exitCode: await this.execExitCode(exec, what), output, timedOut };
  }

  /** Resolves when a daemon answers; rejects with DockerUnavailableError otherwise (advertise `docker` only then). */
  async ping(): Promise<void> {
    await dockerCall('ping', () => this.docker.ping());
  }

  /** Cancels every exit watch, reporting nothing (the agent is stopping); containers keep running. */
  close(): void {
    for (const k of [...this.watches.keys()]) this.unwatch(k);
  }

  // ---- images and containers ---------------------------------------------------------------

  /** The image's metadata; pulls it first only if pulling is on. */
  private async ensureImage(image: string): Promise<Dockerode.ImageInspectInfo> {
    const inspect = () => dockerCall(`inspect image ${image}`, () => this.docker.getImage(image).inspect());
    try {
      return await inspect();
    } catch (err) {
      if (!isDockerError(err, 'NotFound')) throw err;
    }
    if (!this.o.pull) throw new ImageNotPresentError(image, this.node.nodeName);
    await this.pull(image);
    try {
      return await inspect();
    } catch (err) {
      if (isDockerError(err, 'NotFound')) throw new ImageNotPresentError(image, this.node.nodeName, 'still missing after a pull');
      throw err;
    }
  }

  /** `docker pull`; a failure reported inside the progress stream (e.g. access denied) rejects too. */
  private async pull(image: string): Promise<void> {
    this.log.info({ image }, 'pulling image');
    const stream = await dockerCall(`pull image ${image}`, () => this.docker.pull(image));
    await dockerCall(`pull image ${image}`, () =>
      new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string }>) => {
          const failed = events?.find((e) => e.error);
          if (err || failed) reject(err ?? new Error(failed!.error));
          else resolve();
        });
      }),
    );
  }

  /** Starts a created container; one that cannot start (bad command, port taken) is removed again. */
  private async startCreated(container: Dockerode.Container, name: string): Promise<void> {
    try {
      await dockerCall(`start container ${name}`, () => container.start());
    } catch (err) {
      await this.removeContainer(container.id, name).catch((e) => this.log.warn({ container: name, err: errorMessage(e) }, 'removing a container that failed to start failed'));
      throw err;
    }
  }

  /** A container of the task's name from an earlier run that has ended: removed so the name is free. */
  private async removeLeftover(info: ContainerInfo): Promise<void> {
    if (!this.isOurs(info)) {
      throw new DockerRuntimeError('Conflict', `container ${info.Name} exists but belongs to node ${info.Config.Labels?.[LABEL.node] ?? '(none)'}, not ${this.node.nodeName}`);
    }
    if (info.State.Running) {
      throw new DockerRuntimeError('Conflict', `task already runs here with uid ${info.Config.Labels?.[LABEL.uid]} (container ${info.Id.slice(0, 12)}); stop it first`);
    }
    this.log.info({ container: info.Name, uid: info.Config.Labels?.[LABEL.uid] }, 'removing the ended container of an earlier run');
    await this.removeContainer(info.Id, info.Name);
  }

  private async removeContainer(id: string, name: string): Promise<void> {
    // 409: a removal is already in progress (a concurrent stop); the container goes either way.
    await tolerate([404, 409], dockerCall(`remove container ${name}`, () => this.docker.getContainer(id).remove({ force: true })));
  }

  /** Container by name; undefined if there is none. */
  private async find(name: string): Promise<ContainerInfo | undefined> {
    try {
      return await dockerCall(`inspect container ${name}`, () => this.docker.getContainer(name).inspect());
    } catch (err) {
      if (isDockerError(err, 'NotFound')) return undefined;
      throw err;
    }
  }

  /** The task's container on this node, or a NotFound error naming the task. */
  private async require(namespace: string, name: string): Promise<ContainerInfo> {
    const info = await this.find(containerName(namespace, name));
    if (!info || !this.isOurs(info)) throw new DockerRuntimeError('NotFound', `task ${namespace}/${name} has no container on node ${this.node.nodeName}`);
    return info;
  }

  /** Whether a container is labelled for this node (several agents may share one daemon). */
  private isOurs(info: ContainerInfo): boolean {
    return info.Config.Labels?.[LABEL.node] === this.node.nodeName;
  }

  // ---- exit detection ----------------------------------------------------------------------

  /** Starts waiting for a container's exit, replacing any earlier watch of the task. */
  private watch(k: string, containerId: string, onExit: ExitHandler): void {
    this.unwatch(k);
    const w: Watch = { containerId, onExit, abort: new AbortController() };
    this.watches.set(k, w);
    void this.waitLoop(k, w);
  }

  private unwatch(k: string): void {
    const w = this.watches.get(k);
    if (!w) return;
    this.watches.delete(k);
    w.abort.abort();
  }

  /** `wait` until the container ends; retried with backoff while the daemon is away. */
  private async waitLoop(k: string, w: Watch): Promise<void> {
    for (let attempt = 0; this.watches.get(k) === w; attempt++) {
      try {
        const wait = () => this.docker.getContainer(w.containerId).wait({ condition: 'not-running', abortSignal: w.abort.signal });
        const res = (await dockerCall(`wait for container ${w.containerId}`, wait)) as { StatusCode?: number };
        return this.exited(k, w, typeof res?.StatusCode === 'number' ? res.StatusCode : UNKNOWN_EXIT_CODE, await this.oomDetail(w.containerId));
      } catch (err) {
        if (this.watches.get(k) !== w) return; // stopped or closed: the abort is expected
        // Removed behind the agent's back (docker rm -f): it ended, with no code left to read.
        if (isDockerError(err, 'NotFound')) return this.exited(k, w, UNKNOWN_EXIT_CODE);
        this.log.warn({ task: k, err: errorMessage(err), attempt }, 'waiting for container exit failed; retrying');
        await sleepUnlessAborted(backoffDelay(attempt, 500, 5000), w.abort.signal);
      }
    }
  }

  /** Docker's word that the kernel's OOM killer ended the container (State.OOMKilled); nothing when it cannot tell. */
  private async oomDetail(containerId: string): Promise<ExitDetail | undefined> {
    try {
      const info = await this.docker.getContainer(containerId).inspect();
      if (!info.State?.OOMKilled) return undefined;
      const mib = info.HostConfig?.Memory ? ` of ${Math.round(info.HostConfig.Memory / (1024 * 1024))} MiB` : '';
      return { reason: 'OOMKilled', message: `out of memory: the kernel's OOM killer ended the container, which reached its memory limit${mib}` };
    } catch {
      return undefined;
    }
  }

  private exited(k: string, w: Watch, code: number, detail?: ExitDetail): void {
    if (this.watches.get(k) !== w) return;
    this.watches.delete(k);
    this.log.info({ task: k, containerId: w.containerId, exitCode: code, ...(detail && { reason: detail.reason }) }, 'container exited');
    try {
      w.onExit(code, detail);
    } catch (err) {
      this.log.error({ task: k, err: errorMessage(err) }, 'onExit threw');
    }
  }

  // ---- streams -----------------------------------------------------------------------------

  /** The daemon's log stream of a task (a Buffer when not following, a live stream when following). */
  private async openLogs(namespace: string, name: string, o: LogOptions): Promise<NodeJS.ReadableStream> {
    const info = await this.require(namespace, name);
    const c = this.docker.getContainer(info.Id);
    const which = o.stream ?? 'both';
    // The daemon takes "all" for no tail; dockerode's type says number.
    const tail = (o.tail !== undefined && o.tail >= 0 ? o.tail : 'all') as number;
    const base = { stdout: which !== 'stderr', stderr: which !== 'stdout', timestamps: false, tail };
    const what = `logs of container ${info.Name}`;
    if (o.follow) return dockerCall(what, () => c.logs({ ...base, follow: true }));
    const buf = await dockerCall(what, () => c.logs({ ...base, follow: false }));
    return Readable.from([buf]);
  }

  /** Docker's 8-byte-framed stdout/stderr → `out` as plain bytes; destroying `out` closes the source. */
  private demuxInto(source: NodeJS.ReadableStream, out: PassThrough): void {
    const close = () => {
      (source as Partial<Readable>).destroy?.();
    };
    if (out.destroyed) return close(); // the consumer left before the daemon answered
    this.docker.modem.demuxStream(source, out, out);
    source.on('end', () => out.end());
    source.on('error', (err: Error) => out.destroy(toDockerError('read logs', err)));
    out.on('close', close);
  }

  /** Reads an exec's output until it ends or times out, keeping at most MAX_EXEC_OUTPUT bytes. */
  private collect(stream: NodeJS.ReadableStream, timeoutSeconds: number): Promise<{ output: string; timedOut: boolean }> {
    const chunks: Buffer[] = [];
    let size = 0;
    const sink = new PassThrough();
    sink.on('data', (b: Buffer) => {
      if (size < MAX_EXEC_OUTPUT) chunks.push(b.subarray(0, MAX_EXEC_OUTPUT - size));
      size += b.length;
    });
    this.docker.modem.demuxStream(stream, sink, sink);
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (timedOut: boolean, err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) return reject(toDockerError('read exec output', err));
        // demuxStream writes synchronously, but the sink hands data on in a later tick.
        setImmediate(() => resolve({ output: Buffer.concat(chunks).toString('utf8'), timedOut }));
      };
      const timer = setTimeout(() => {
        (stream as Partial<Readable>).destroy?.();
        finish(true);
      }, Math.min(Math.max(0, timeoutSeconds) * 1000, MAX_TIMER_MS)); // longer: Node would fire at once
      stream.on('end', () => finish(false));
      stream.on('close', () => finish(false));
      stream.on('error', (err: Error) => finish(false, err));
    });
  }

  /** The exec's exit code; inspect can lag the end of its stream by a moment. */
  private async execExitCode(exec: Dockerode.Exec, what: string): Promise<number> {
    for (let i = 0; ; i++) {
      const info = await dockerCall(what, () => exec.inspect());
      if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) return info.ExitCode;
      if (i >= 20) throw new DockerRuntimeError('DockerError', `${what}: the command's stream ended but it still runs`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function key(namespace: string, name: string): string {
  return nameKey(namespace, name);
}

/** Awaits a docker call, swallowing the daemon statuses listed (304 already stopped, 404 gone…). */
async function tolerate(statuses: number[], call: Promise<unknown>): Promise<void> {
  try {
    await call;
  } catch (err) {
    if (!(err instanceof DockerRuntimeError && err.status !== undefined && statuses.includes(err.status))) throw err;
  }
}
