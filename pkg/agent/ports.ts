/**
 * Host ports of an agent's range that something else on the host holds (issue 16: a port held
 * by a process the agent did not start was handed to every launch, each failing with `bind:
 * address already in use`). The agent probes a task's host ports before starting it (a bind
 * test), and keeps the ports it found held out of the capacity it advertises until they are
 * free again, so frameworks stop being offered them.
 *
 * Cost: a range holds thousands of ports, so nothing probes them all at once. Every tick
 * (default 5 s) re-probes the ports known to be held (few), and sweeps the next small batch
 * (default 32) of the range's other ports that none of the agent's own tasks hold or are
 * assigned: a range of 1000 ports is swept in about two and a half minutes, at a few
 * sub-millisecond binds per tick. The sweep binds TCP only; a task's own probe also binds UDP
 * for a udp port.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import type { Logger } from 'pino';
import { normalizeRanges, removePorts, type PortRange } from '../api/resources';
import { errorMessage } from '../util/backoff';
import type { Clock, TimerHandle } from '../util/clock';

export type PortProtocol = 'tcp' | 'udp';

/** Whether `port` can be bound on the host now (true: free). Never rejects. */
export type PortProbe = (port: number, protocol: PortProtocol) => Promise<boolean>;


/**
 * A bind test: listen on `port` (TCP: `net.createServer().listen`, UDP: a `dgram` bind) on
 * `host` and let go at once. Without a host, all interfaces: a port held on any address is held.
 * Errors other than EADDRINUSE (EACCES for a low port: dockerd binds as root) count as free:
 * the task's own bind says the rest.
 */
export function bindProbe(host?: string): PortProbe {
  return (port, protocol) => (protocol === 'udp' ? probeUdp(port, host) : probeTcp(port, host));
}

function probeTcp(port: number, host?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'EADDRINUSE'));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function probeUdp(port: number, host?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket({ type: host?.includes(':') ? 'udp6' : 'udp4' });
    socket.unref();
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.close();
      resolve(err.code !== 'EADDRINUSE');
    });
    socket.bind({ port, address: host, exclusive: true }, () => socket.close(() => resolve(true)));
  });
}

/** Whether a runtime's start error is a host port bind failure (docker: `address already in use`, `port is already allocated`). */
export function isPortInUseError(err: unknown): boolean {
  return /address already in use|port is already allocated|EADDRINUSE/i.test(errorMessage(err));
}

export interface PortWatchOptions {
  /** The agent's configured port ranges. */
  ranges: readonly PortRange[];
  probe: PortProbe;
  clock: Clock;
  logger: Logger;
  /** Ports the agent's own tasks hold or are about to (never probed by the sweep, never held by "another process"). */
  own(): ReadonlySet<number>;
  /** After each tick: the advertised ranges may have changed. */
  onTick(): void;
  /** @default 5000 */
  intervalMs?: number;
  /** Other ports of the range probed per tick. @default 32 */
  sweepBatch?: number;
}

/** The ports of an agent's range held by processes it did not start. */
export class PortWatch {
  /** Held ports, with the protocols found held. */
  private readonly held = new Map<number, Set<PortProtocol>>();
  private readonly ranges: PortRange[];
  private readonly total: number;
  /** Index (into the range) of the next port the sweep probes. */
  private cursor = 0;
  private timer?: TimerHandle;
  private ticking?: Promise<void>;

  constructor(private readonly o: PortWatchOptions) {
    this.ranges = normalizeRanges(o.ranges);
    this.total = this.ranges.reduce((n, [b, e]) => n + e - b + 1, 0);
  }

  /** Starts the periodic re-probe and sweep. */
  start(): void {
    this.timer ??= this.o.clock.setInterval(() => void this.tick(), this.o.intervalMs ?? 5000).unref();
  }

  stop(): void {
    this.o.clock.clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The configured ranges without the held ports: what the Node advertises. */
  advertised(): PortRange[] {
    return this.held.size === 0 ? this.ranges.map(([b, e]) => [b, e]) : removePorts(this.ranges, this.held.keys());
  }

  /** The held ports, sorted. */
  heldPorts(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  /**
   * Probes `port` for `protocols`: the ones found held are recorded (another process holds
   * them) and returned; none: the port is free.
   */
  async check(port: number, protocols: readonly PortProtocol[]): Promise<PortProtocol[]> {
    const busy: PortProtocol[] = [];
    for (const p of protocols) if (!(await this.o.probe(port, p))) busy.push(p);
    if (busy.length > 0) this.mark(port, busy);
    return busy;
  }

  /** Whether `port` is free for every one of `protocols` (nothing recorded). */
  async probe(port: number, protocols: readonly PortProtocol[]): Promise<boolean> {
    for (const p of protocols) if (!(await this.o.probe(port, p))) return false;
    return true;
  }

  /** Records `port` as held by another process (a probe or a runtime's bind failure said so). */
  mark(port: number, protocols: readonly PortProtocol[]): void {
    if (!this.inRange(port)) return;
    const known = this.held.get(port);
    if (!known) this.o.logger.warn({ port, protocols }, 'host port in use by another process: no longer advertised');
    const set = known ?? new Set<PortProtocol>();
    protocols.forEach((p) => set.add(p));
    this.held.set(port, set);
  }

  /** One round: re-probe the held ports, sweep the next batch; one round at a time. Never rejects. */
  tick(): Promise<void> {
    this.ticking ??= this.round()
      .catch((err: unknown) => this.o.logger.warn({ err: errorMessage(err) }, 'host port probe failed'))
      .finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async round(): Promise<void> {
    const own = this.o.own();
    for (const [port, protocols] of [...this.held]) {
      let free = !own.has(port); // our own task holds it now: not another process's
      for (const p of protocols) if (free && !(await this.o.probe(port, p))) free = false;
      if (free || own.has(port)) {
        this.held.delete(port);
        this.o.logger.info({ port }, 'host port free again: advertised');
      }
    }
    const batch = Math.min(this.o.sweepBatch ?? 32, this.total);
    for (let i = 0; i < batch; i++) {
      const port = this.portAt(this.cursor);
      this.cursor = (this.cursor + 1) % this.total;
      if (own.has(port) || this.held.has(port)) continue;
      // Asked again: a task may have been assigned the port while we probed the previous one.
      if (!(await this.o.probe(port, 'tcp')) && !this.o.own().has(port)) this.mark(port, ['tcp']);
    }
    this.o.onTick();
  }

  private inRange(port: number): boolean {
    return this.ranges.some(([b, e]) => port >= b && port <= e);
  }

  private portAt(index: number): number {
    let left = index;
    for (const [b, e] of this.ranges) {
      if (left <= e - b) return b + left;
      left -= e - b + 1;
    }
    return this.ranges[0][0];
  }
}
