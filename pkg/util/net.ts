/** Small networking helpers. */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral range.
 * Another process may still take it before the caller binds, so callers that can retry should.
 */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port;
}

/**
 * Returns `count` distinct free ports. All listeners are held open until every port is
 * known, so the OS cannot hand out the same port twice in one call.
 *
 * Across processes the OS can: once a listener closes, its port may be the next one offered to
 * another process (the likeliest cause of a CI failure in which two test workers' etcds shared
 * a port). So each port handed out is also claimed in a directory shared by this machine's
 * processes, and a port another process claimed within RESERVATION_MS is skipped.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  try {
    for (let tries = 0; ports.length < count; tries++) {
      const server = await listenOnAnyPort();
      servers.push(server);
      const port = (server.address() as net.AddressInfo).port;
      if (claimPort(port) || tries >= count + MAX_SKIPPED_PORTS) ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** How long a port handed out by freePorts stays claimed from other processes. */
export const RESERVATION_MS = 60_000;
/** Ports claimed elsewhere skipped before giving up on claims (the directory may be unusable). */
const MAX_SKIPPED_PORTS = 20;
const CLAIMS_DIR = path.join(os.tmpdir(), 'shoal-port-claims');

/** Claims `port` for this process unless another claimed it less than RESERVATION_MS ago. */
export function claimPort(port: number, now = Date.now()): boolean {
  const file = path.join(CLAIMS_DIR, String(port));
  try {
    fs.mkdirSync(CLAIMS_DIR, { recursive: true });
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (now - fs.statSync(file).mtimeMs < RESERVATION_MS) return false;
    fs.writeFileSync(file, String(process.pid)); // a stale claim: renew it (its mtime is now)
    return true;
  } catch {
    return true; // no usable claims directory: the OS's word alone, as before
  }
}

/**
 * A listener on a free port below the OS's ephemeral range. Ports in that range are also the
 * local ports of outgoing connections: a port handed out there (say as an agent's task port) can
 * be taken by any client socket on the machine before the test binds it, which is how a test
 * task's httpd failed to bind its port 18 times in a row under a loaded CI run.
 */
async function listenOnAnyPort(): Promise<net.Server> {
  const [low] = ephemeralRange();
  const floor = 10_000;
  if (low - floor >= 1_000) {
    for (let i = 0; i < 50; i++) {
      const port = floor + Math.floor(Math.random() * (low - floor));
      const server = await listenOn(port).catch(() => undefined);
      if (server) return server;
    }
  }
  return listenOn(0);
}

function listenOn(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** The OS's ephemeral (local) port range: Linux's setting, else IANA's 49152-65535. */
export function ephemeralRange(): [number, number] {
  try {
    const [a, b] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (a! > 0 && b! >= a!) return [a!, b!];
  } catch {
    // not Linux
  }
  return [49152, 65535];
}
