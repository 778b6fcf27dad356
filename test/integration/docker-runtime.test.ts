/**
 * The Docker runtime against a real daemon and real containers from shoal/busybox (built by
 * hack/build-images.sh). Skipped, saying why, only where no daemon answers and
 * hack/start-dockerd.sh cannot start one (not root, no cgroups). The checks share a few
 * containers: `docker run` costs ~0.6 s here.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import Dockerode from 'dockerode';
import type { TaskSpec } from '../../pkg/api/types.generated';
import { DockerRuntime, EXEC_TIMEOUT_EXIT_CODE } from '../../pkg/runtime/docker';
import { ImageNotPresentError, PolicyError } from '../../pkg/runtime/docker-errors';
import { LABEL, containerName } from '../../pkg/runtime/docker-spec';
import type { RuntimeTask } from '../../pkg/runtime/types';
import { silentLogger } from '../../pkg/util/log';
import { freePort } from '../../pkg/util/net';
import { until } from '../harness/wait';
import { dockerUnavailableReason } from '../harness/docker';

const ROOT = path.resolve(__dirname, '../..');
const IMAGE = 'shoal/busybox:latest';
/** shoal/busybox with `USER root`: an image that would run as root. */
const ROOT_IMAGE = 'shoal-test/busybox-root:latest';
const NODE = `docker-test-${process.pid}`;
const NS = 'default';

const skipReason = dockerUnavailableReason();
if (skipReason) console.warn(`docker-runtime tests SKIPPED: no Docker daemon (${skipReason})`);
const describeDocker = skipReason ? describe.skip : describe;

function spec(extra: Partial<TaskSpec>): TaskSpec {
  return { role: '*', resources: { cpus: 0.25, mem: 32, disk: 0 }, ports: [], healthChecks: [], readinessChecks: [], taskKillGracePeriodSeconds: 3, ...extra };
}

let seq = 0;
function task(extra: Partial<TaskSpec>, name = `t${++seq}-${process.pid}`): RuntimeTask {
  return { namespace: NS, name, uid: `uid-${name}`, spec: spec(extra), owner: 'app-x' };
}

function runtime(extra: Partial<ConstructorParameters<typeof DockerRuntime>[0]> = {}): DockerRuntime {
  return new DockerRuntime({ node: { hostname: 'host-a', nodeName: NODE }, logger: silentLogger(), ...extra });
}

/** Reads a stream to its end (or to `until` matching), as text. */
async function readAll(stream: NodeJS.ReadableStream, stopWhen?: RegExp): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += chunk.toString();
    if (stopWhen?.test(text)) break;
  }
  return text;
}

describeDocker('DockerRuntime (real Docker)', () => {
  const docker = new Dockerode();
  const runtimes: DockerRuntime[] = [];
  const rt = (extra: Partial<ConstructorParameters<typeof DockerRuntime>[0]> = {}) => {
    const r = runtime(extra);
    runtimes.push(r);
    return r;
  };

  beforeAll(() => {
    const images = spawnSync(path.join(ROOT, 'hack/build-images.sh'), { encoding: 'utf8' });
    if (images.status !== 0) throw new Error(`hack/build-images.sh failed: ${images.stderr}`);
    // Rebuilt every run (a cached no-op when shoal/busybox is unchanged): it must follow that image.
    const built = spawnSync('docker', ['build', '-q', '-t', ROOT_IMAGE, '-'], { input: `FROM ${IMAGE}\nUSER root\n`, env: { ...process.env, DOCKER_BUILDKIT: '0' }, encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`building ${ROOT_IMAGE} failed: ${built.stderr}`);
  }, 60_000);

  afterAll(async () => {
    runtimes.forEach((r) => r.close());
    const mine = await docker.listContainers({ all: true, filters: { label: [`${LABEL.node}=${NODE}`] } });
    await Promise.all(mine.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  });

  describe('a web task (busybox httpd on a host port)', () => {
    const web = task({ container: { image: IMAGE, command: ['/bin/busybox', 'httpd', '-f', '-v', '-p', '8080', '-h', '/www'] } }, `web-${process.pid}`);
    let first: DockerRuntime;
    let containerId: string;
    let hostPort: number;
    const exits: number[] = [];

    beforeAll(async () => {
      hostPort = await freePort();
      web.spec.ports = [{ name: 'http', containerPort: 8080, hostPort, protocol: 'tcp' }];
      first = rt();
      ({ containerId } = (await first.start(web, (code) => exits.push(code))) as { containerId: string });
    });

    it('is reachable on its host port', async () => {
      const body = await until('httpd answers on the host port', async () => {
        // A connection made while the port mapping is being set up can hang: time each try out.
        const res = await fetch(`http://127.0.0.1:${hostPort}/`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
        return res?.ok ? res.text() : undefined;
      }, 10_000);
      expect(body).toContain('Hello from Shoal');
    });

    it('runs with limits, labels and the security defaults', async () => {
      const info = await docker.getContainer(containerId).inspect();
      expect(info.Name).toBe(`/${containerName(NS, web.name)}`);
      expect(info.Config.Labels).toMatchObject({ [LABEL.task]: web.name, [LABEL.namespace]: NS, [LABEL.node]: NODE, [LABEL.uid]: web.uid });
      const h = info.HostConfig;
      expect(h).toMatchObject({ NanoCpus: 250_000_000, Memory: 32 * 1024 * 1024, PidsLimit: 1024, CapDrop: ['ALL'], Privileged: false, NetworkMode: 'bridge', PidMode: '', IpcMode: 'private', Init: true });
      expect(h.SecurityOpt).toContain('no-new-privileges');
      expect(h.Binds ?? []).toEqual([]);
      expect(info.Mounts).toEqual([]);
      expect(h.PortBindings).toEqual({ '8080/tcp': [{ HostIp: '', HostPort: String(hostPort) }] });
      expect(info.Config.User).toBe('65534:65534');
    });

    it('sees the task environment, as a non-root user (exec)', async () => {
      const env = await first.exec(NS, web.name, 'env', 5);
      expect(env.exitCode).toBe(0);
      expect(env.output).toContain(`PORT0=${hostPort}`);
      expect(env.output).toContain(`PORT_HTTP=${hostPort}`);
      expect(env.output).toContain('HOST=host-a');
      expect(env.output).toContain(`SHOAL_TASK_ID=${web.name}`);
      expect(env.output).toContain('SHOAL_APP_ID=app-x');
      expect((await first.exec(NS, web.name, ['id', '-u'], 5)).output.trim()).toBe('65534');
      const both = await first.exec(NS, web.name, 'echo out; echo err >&2; exit 7', 5);
      expect(both).toMatchObject({ exitCode: 7, timedOut: false });
      expect(both.output.split('\n').sort()).toEqual(['', 'err', 'out']); // two pipes: no order between them
      expect(await first.exec(NS, web.name, 'sleep 5', 0.3)).toMatchObject({ exitCode: EXEC_TIMEOUT_EXIT_CODE, timedOut: true });
    });

    it('serves its logs (httpd -v logs each response to stderr)', async () => {
      const text = await readAll(first.logs(NS, web.name, { tail: 5 }));
      expect(text).toMatch(/response:200\n/);
      expect(text).not.toMatch(/[\x00-\x02]\x00\x00\x00/); // Docker's frame headers are gone
    });

    it('is adopted by a restarted agent: same container, still running, then stopped without an exit report', async () => {
      first.close(); // the old agent is gone (its watches with it)
      const second = rt();
      const listed = await second.list();
      expect(listed).toContainEqual({ namespace: NS, name: web.name, uid: web.uid, containerId });
      const adoptedExits: number[] = [];
      expect(await second.adopt(web, (code) => adoptedExits.push(code))).toBe(true);
      expect((await second.inspect(NS, web.name))?.running).toBe(true);
      await expect(second.start({ ...web, uid: 'another-uid' }, () => undefined)).rejects.toThrow(/already runs here with uid/);
      const t0 = Date.now();
      await second.stop(NS, web.name, 10);
      expect(Date.now() - t0).toBeLessThan(3000); // SIGTERM reached httpd through tini: no wait for the grace
      expect(await second.inspect(NS, web.name)).toBeUndefined();
      expect(await second.list()).not.toContainEqual(expect.objectContaining({ name: web.name }));
      await new Promise((r) => setTimeout(r, 300));
      expect([...exits, ...adoptedExits]).toEqual([]);
    });
  });

  it('reports a task that exits by itself once, with its exit code', async () => {
    const r = rt();
    const t = task({ cmd: 'echo bye; exit 3' }); // a bare cmd runs in the default image
    const exits: number[] = [];
    await r.start(t, (code) => exits.push(code));
    await until('the exit is reported', async () => exits.length > 0, 10_000);
    await new Promise((res) => setTimeout(res, 300));
    expect(exits).toEqual([3]);
    expect(await r.inspect(NS, t.name)).toMatchObject({ running: false, exitCode: 3 });
    expect(await readAll(r.logs(NS, t.name))).toBe('bye\n');
    // A restarted agent adopts the ended container and gets its recorded code at once.
    const later: number[] = [];
    expect(await rt().adopt(t, (code) => later.push(code))).toBe(true);
    await until('the recorded exit is reported', async () => later.length > 0, 5000);
    expect(later).toEqual([3]);
    // The same name again (a new uid) replaces the ended container.
    const again = { ...t, uid: `${t.uid}-2`, spec: spec({ cmd: 'sleep 60' }) };
    await r.start(again, () => undefined);
    expect(await r.inspect(NS, t.name)).toMatchObject({ uid: again.uid, running: true });
    await expect(r.remove(NS, t.name)).rejects.toThrow(/still runs/);
    await r.stop(NS, t.name, 0);
  });

  it('reportsAContainerTheKernelKilledForMemoryAsOOMKilled', async () => {
    const r = rt();
    const t = task({ cmd: 'dd if=/dev/zero of=/dev/null bs=256M count=1', resources: { cpus: 0.25, mem: 16, disk: 0 } });
    const exits: Array<{ code: number; reason?: string; message?: string }> = [];
    await r.start(t, (code, detail) => exits.push({ code, ...detail }));
    await until('the exit is reported', async () => exits.length > 0, 15_000);
    expect(exits).toEqual([{ code: 137, reason: 'OOMKilled', message: expect.stringMatching(/OOM killer ended the container, which reached its memory limit of 16 MiB$/) }]);
    await r.remove(NS, t.name);
  });

  it('kills a task that ignores SIGTERM once the grace period is over', async () => {
    const r = rt();
    const t = task({ cmd: 'trap "" TERM; echo trapped; while true; do sleep 0.2; done' });
    const exits: number[] = [];
    await r.start(t, (code) => exits.push(code));
    // Until the shell has run `trap`, SIGTERM still ends it at once.
    await until('the shell ignores SIGTERM', async () => /trapped/.test(await readAll(r.logs(NS, t.name))), 5000);
    const t0 = Date.now();
    await r.stop(NS, t.name, 2);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(6000);
    expect(await r.inspect(NS, t.name)).toBeUndefined();
    await r.stop(NS, t.name, 2); // stopping what is gone does nothing
    expect(exits).toEqual([]);
  });

  it('follows the logs of a running task, the last N lines first', async () => {
    const r = rt();
    const t = task({ cmd: 'for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; i=5; while true; do i=$((i+1)); echo line$i; sleep 0.2; done' });
    await r.start(t, () => undefined);
    await until('the first lines are logged', async () => /line6/.test(await readAll(r.logs(NS, t.name))), 5000);
    expect(await readAll(r.logs(NS, t.name, { stream: 'stderr' }))).toBe('oops\n');
    const followed = r.logs(NS, t.name, { tail: 1, follow: true });
    const text = await readAll(followed, /line(\d+)\n[\s\S]*line\d+\n/);
    (followed as unknown as { destroy(): void }).destroy();
    expect(text.split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(2);
    await r.stop(NS, t.name, 1);
  });

  it('fails to start a task whose image is not on the node', async () => {
    await expect(rt().ping()).resolves.toBeUndefined();
    const t = task({ container: { image: 'shoal/not-built:1' } });
    const err = await rt().start(t, () => undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageNotPresentError);
    expect((err as Error).message).toContain(`image shoal/not-built:1 not present on node ${NODE}`);
    const errored = await readAll(rt().logs(NS, t.name)).catch((e: Error) => e);
    expect((errored as Error).message).toMatch(/has no container/);
  });

  it('refuses root unless allowed, and never runs a root image as root by default', async () => {
    const asRoot = task({ container: { image: IMAGE, user: 'root' }, cmd: 'sleep 60' });
    await expect(rt().start(asRoot, () => undefined)).rejects.toThrow(PolicyError);
    await expect(rt().start(task({ container: { image: IMAGE, user: '0:0' }, cmd: 'sleep 60' }), () => undefined)).rejects.toThrow(/security policy of node/);

    const r = rt();
    const rootImage = task({ container: { image: ROOT_IMAGE }, cmd: 'sleep 60' });
    const { containerId } = (await r.start(rootImage, () => undefined)) as { containerId: string };
    expect((await docker.getContainer(containerId).inspect()).Config.User).toBe('65534:65534');
    await r.stop(NS, rootImage.name, 0);

    const allowed = rt({ allowRoot: true });
    await allowed.start(asRoot, () => undefined);
    expect((await allowed.exec(NS, asRoot.name, 'id -u', 5)).output.trim()).toBe('0');
    await allowed.stop(NS, asRoot.name, 0);
  });
});
