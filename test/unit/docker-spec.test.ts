/** The Docker runtime's pure half: container names, user policy, command, ports, limits, security defaults. */
import Dockerode from 'dockerode';
import type { TaskSpec } from '../../pkg/api/types.generated';
import { DockerRuntime } from '../../pkg/runtime/docker';
import { DockerUnavailableError, ImageNotPresentError, PolicyError, toDockerError } from '../../pkg/runtime/docker-errors';
import { NOBODY, commandOf, containerName, createOptions, effectiveUser, imageOf, isRootUser, limitsOf, portsOf, refFromLabels } from '../../pkg/runtime/docker-spec';
import type { RuntimeTask } from '../../pkg/runtime/types';
import { silentLogger } from '../../pkg/util/log';

function spec(extra: Partial<TaskSpec> = {}): TaskSpec {
  return { role: '*', resources: { cpus: 0.5, mem: 64, disk: 0 }, ports: [], healthChecks: [], readinessChecks: [], taskKillGracePeriodSeconds: 5, ...extra };
}

describe('containerName', () => {
  it('cannot confuse a hyphen in the namespace with one in the name', () => {
    expect(containerName('a-b', 'c')).not.toBe(containerName('a', 'b-c'));
    expect(containerName('default', 'web-1')).toBe('shoal-default_web-1');
  });
});

describe('user policy', () => {
  it.each([['', true], ['root', true], ['0', true], ['00:0', true], ['root:1000', true], ['65534', false], ['1000:0', false], ['nobody', false], ['rooted', false]])('isRootUser(%j) = %s', (user, root) => {
    expect(isRootUser(user)).toBe(root);
  });

  it('takes the task user, refusing root unless allowed', () => {
    expect(effectiveUser('1000:1000', '', false, 'n1')).toBe('1000:1000');
    expect(() => effectiveUser('root', '65534', false, 'n1')).toThrow(PolicyError);
    expect(() => effectiveUser('0', '', false, 'n1')).toThrow(/security policy of node n1 forbids/);
    expect(effectiveUser('root', '', true, 'n1')).toBe('root');
  });

  it("takes the image's user unless it is root, which becomes nobody unless allowed", () => {
    expect(effectiveUser(undefined, '65534:65534', false, 'n1')).toBe('65534:65534');
    expect(effectiveUser(undefined, 'app', false, 'n1')).toBe('app');
    expect(effectiveUser(undefined, '', false, 'n1')).toBe(NOBODY);
    expect(effectiveUser(undefined, undefined, false, 'n1')).toBe(NOBODY);
    expect(effectiveUser(' ', 'root', false, 'n1')).toBe(NOBODY);
    expect(effectiveUser(undefined, '', true, 'n1')).toBe('root');
  });
});

describe('command', () => {
  it('runs a cmd under /bin/sh -c, in the default image when there is no container', () => {
    expect(commandOf(spec({ cmd: 'echo hi' }))).toEqual({ Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo hi'] });
    expect(imageOf(spec({ cmd: 'echo hi' }))).toBe('shoal/busybox:latest');
    expect(imageOf(spec({ cmd: 'x', container: { image: 'img:1' } }))).toBe('img:1');
    expect(() => imageOf(spec())).toThrow(/neither a container image nor a cmd/);
  });

  it('lets container.command replace the entrypoint and args the cmd', () => {
    expect(commandOf(spec({ container: { image: 'i', command: ['/bin/busybox', 'httpd'] } }))).toEqual({ Entrypoint: ['/bin/busybox', 'httpd'], Cmd: [] });
    expect(commandOf(spec({ container: { image: 'i', command: ['/x'], args: ['-v'] } }))).toEqual({ Entrypoint: ['/x'], Cmd: ['-v'] });
    expect(commandOf(spec({ container: { image: 'i', args: ['-v'] } }))).toEqual({ Cmd: ['-v'] });
    expect(commandOf(spec({ container: { image: 'i' } }))).toEqual({});
  });
});

describe('ports and limits', () => {
  it('binds container ports to host ports; a port without containerPort listens on its host port', () => {
    const ports = portsOf([
      { name: 'http', containerPort: 8080, hostPort: 31001, protocol: 'tcp' },
      { hostPort: 31002, protocol: 'udp' },
    ]);
    expect(ports).toEqual({ ExposedPorts: { '8080/tcp': {}, '31002/udp': {} }, PortBindings: { '8080/tcp': [{ HostPort: '31001' }], '31002/udp': [{ HostPort: '31002' }] } });
  });

  it('turns cpus and MiB into NanoCpus and bytes, swap included in the memory limit', () => {
    expect(limitsOf({ cpus: 0.1, mem: 32, disk: 0 }, 100)).toEqual({ NanoCpus: 100_000_000, Memory: 33_554_432, MemorySwap: 33_554_432, PidsLimit: 100 });
    expect(limitsOf({ cpus: 0, mem: 0, disk: 0 }, 1024)).toEqual({ PidsLimit: 1024 });
  });
});

describe('createOptions', () => {
  const task: RuntimeTask = { namespace: 'ns', name: 'web-1', uid: 'u1', owner: 'web', spec: spec({ container: { image: 'img', env: { A: '1' } }, ports: [{ hostPort: 31000, protocol: 'tcp' }] }) };
  const body = createOptions(task, { node: { hostname: 'h1', nodeName: 'n1' }, image: 'img', user: NOBODY, pidsLimit: 1024, readonlyRootfs: false });

  it('labels the container for list() and adoption', () => {
    expect(body.name).toBe('shoal-ns_web-1');
    expect(body.Labels).toEqual({ 'shoal.task': 'web-1', 'shoal.namespace': 'ns', 'shoal.node': 'n1', 'shoal.uid': 'u1', 'shoal.owner': 'web' });
    expect(refFromLabels(body.Labels)).toEqual({ namespace: 'ns', name: 'web-1', uid: 'u1' });
    expect(refFromLabels({ 'shoal.task': 'x' })).toBeUndefined();
  });

  it("gives the task environment and only that (the image's own env is Docker's to merge)", () => {
    expect(body.Env).toEqual(expect.arrayContaining(['A=1', 'PORT0=31000', 'PORT=31000', 'HOST=h1', 'SHOAL_NODE=n1', 'SHOAL_TASK_ID=web-1', 'SHOAL_APP_ID=web', 'SHOAL_NAMESPACE=ns']));
  });

  it('sets every security default explicitly', () => {
    expect(body.User).toBe(NOBODY);
    expect(body.StopTimeout).toBe(5);
    expect(body.HostConfig).toMatchObject({ Privileged: false, CapDrop: ['ALL'], CapAdd: [], SecurityOpt: ['no-new-privileges'], NetworkMode: 'bridge', PidMode: '', IpcMode: 'private', Binds: [], Mounts: [], Devices: [], Init: true, RestartPolicy: { Name: 'no' } });
  });
});

describe('toDockerError', () => {
  it("keeps the daemon's words and classifies by status", () => {
    const notFound = toDockerError('inspect container x', Object.assign(new Error('(HTTP code 404) no such container'), { statusCode: 404, json: { message: 'No such container: x' } }));
    expect(notFound).toMatchObject({ code: 'NotFound', status: 404, message: 'docker inspect container x: No such container: x' });
    const down = toDockerError('list containers', Object.assign(new Error('connect ENOENT /var/run/docker.sock'), { code: 'ENOENT' }));
    expect(down).toMatchObject({ code: 'DaemonUnavailable' });
    expect(down.message).toMatch(/docker daemon unavailable \(list containers\): connect ENOENT/);
  });
});

describe('DockerRuntime without a daemon', () => {
  const runtime = new DockerRuntime({ docker: new Dockerode({ socketPath: '/nonexistent/docker.sock' }), node: { hostname: 'h1', nodeName: 'n1' }, logger: silentLogger() });

  it('says that no daemon answers, at every call', async () => {
    await expect(runtime.ping()).rejects.toThrow(DockerUnavailableError);
    await expect(runtime.list()).rejects.toThrow(/docker daemon unavailable \(list containers\).*ENOENT/);
    const task: RuntimeTask = { namespace: 'ns', name: 't', uid: 'u', spec: spec({ cmd: 'true' }) };
    await expect(runtime.start(task, () => undefined)).rejects.toThrow(DockerUnavailableError);
  });

  it('names the image and the node when an image is missing', () => {
    expect(new ImageNotPresentError('shoal/x:1', 'n1').message).toMatch(/^image shoal\/x:1 not present on node n1 \(/);
  });
});
