/**
 * An agent with the real Docker runtime on a real etcd: an assignment becomes a running
 * container whose host port answers; exit 1 is FAILED with code 1; a failing HTTP check turns
 * the task unhealthy after maxConsecutiveFailures; the container has the security defaults; a
 * killed agent's successor keeps every container id; a kill is KILLED within the grace period;
 * the task's output is readable. Skipped, saying why, only where no Docker daemon can start.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import Dockerode from 'dockerode';
import { Agent } from '../../pkg/agent/agent';
import { DockerRuntime } from '../../pkg/runtime/docker';
import { EtcdStore } from '../../pkg/store/etcd';
import { startTaskStatusRelay, type RunningRelay } from '../harness/relay';
import { assignmentKey } from '../../pkg/store/objects';
import { silentLogger } from '../../pkg/util/log';
import { freePorts } from '../../pkg/util/net';
import { dockerUnavailableReason } from '../harness/docker';
import { testEtcdEndpoint, uniquePrefix } from '../harness/etcd';
import { until } from '../harness/wait';
import { bindTask, readTask } from '../harness/tasks';

const skipReason = dockerUnavailableReason();
if (skipReason) console.warn(`agent-docker tests SKIPPED: no Docker daemon (${skipReason})`);
const describeDocker = skipReason ? describe.skip : describe;

const log = silentLogger();
const NODE = `agent-docker-${process.pid}`;
/** Container names are per namespace and task, so each run names its tasks apart. */
const RUN = process.pid.toString(36);
const IMAGE = 'shoal/busybox:latest';

describeDocker('agent with the Docker runtime (real etcd, real Docker)', () => {
  let store: EtcdStore;
  let prefix: string;
  const agents: Agent[] = [];
  /** Folds the agent's reports into Tasks, as the controller-manager does. */
  let relay: RunningRelay;
  beforeAll(async () => {
    const images = spawnSync(path.join(__dirname, '../../hack/build-images.sh'), { encoding: 'utf8' });
    if (images.status !== 0) throw new Error(`hack/build-images.sh failed: ${images.stderr}`);
    store = new EtcdStore({ endpoints: [testEtcdEndpoint()] });
    prefix = uniquePrefix().slice(0, -1);
    relay = await startTaskStatusRelay(store, prefix);
  });
  afterAll(async () => {
    for (const a of agents) await a.stop({ revoke: true }).catch(() => undefined);
    const docker = new Dockerode();
    for (const c of await docker.listContainers({ all: true, filters: { label: [`shoal.node=${NODE}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true });
    }
    await relay.stop();
    await store.close();
  });

  const statusOf = async (name: string) => (await readTask(store, prefix, name))?.status;

  function agent(): Agent {
    const runtime = new DockerRuntime({ node: { hostname: '127.0.0.1', nodeName: NODE }, logger: log });
    const a = new Agent({ store, prefix, nodeName: NODE, runtime, runtimes: ['docker'], hostname: '127.0.0.1', capacity: { cpus: 2, mem: 1024, disk: 0, ports: [[31000, 32000]] }, leaseTtlSeconds: 5, logger: log });
    agents.push(a);
    return a;
  }

  async function bind(name: string, spec: Record<string, unknown>): Promise<void> {
    await bindTask(store, prefix, NODE, name, { resources: { cpus: 0.25, mem: 64 }, taskKillGracePeriodSeconds: 2, ...spec }, { uid: `uid-${name}-${process.pid}`, owner: 'web' });
  }


  it('runsAssignedContainersThroughTheirLifecycleAndAcrossAnAgentRestart', async () => {
    const [webPort, deafPort] = await freePorts(2);
    const httpd = { image: IMAGE, command: ['/bin/busybox', 'httpd', '-f', '-v', '-p', '8080', '-h', '/www'] };
    const check = { protocol: 'HTTP', portName: 'http', path: '/', gracePeriodSeconds: 0, delaySeconds: 0, intervalSeconds: 1, timeoutSeconds: 1, maxConsecutiveFailures: 2 };
    const first = agent();
    await first.start();
    await bind(`web-${RUN}`, { container: httpd, ports: [{ name: 'http', containerPort: 8080, hostPort: webPort }], healthChecks: [check] });
    await bind(`exits-${RUN}`, { container: { image: IMAGE }, cmd: 'echo bye; exit 1' });
    await bind(`deaf-${RUN}`, { container: { image: IMAGE }, cmd: 'sleep 300', ports: [{ name: 'http', containerPort: 8080, hostPort: deafPort }], healthChecks: [check] });

    await until('web RUNNING and healthy', async () => (await statusOf(`web-${RUN}`))?.healthy === true, 20_000);
    const web = (await statusOf(`web-${RUN}`))!;
    expect(web).toMatchObject({ state: 'RUNNING', containerId: expect.any(String) });
    expect((await fetch(`http://127.0.0.1:${webPort}/`)).status).toBe(200);
    await until('exits FAILED', async () => (await statusOf(`exits-${RUN}`))?.state === 'FAILED', 15_000);
    expect(await statusOf(`exits-${RUN}`)).toMatchObject({ exitCode: 1 });
    await until('deaf unhealthy', async () => (await statusOf(`deaf-${RUN}`))?.healthy === false, 15_000);
    expect((await statusOf(`deaf-${RUN}`))!.healthMessage).toMatch(/failed 2 times in a row/);

    const inspected = await new Dockerode().getContainer(web.containerId!).inspect();
    expect(inspected.HostConfig.CapDrop).toEqual(['ALL']);
    expect(inspected.HostConfig.SecurityOpt).toContain('no-new-privileges');
    expect(inspected.HostConfig).toMatchObject({ Memory: 64 * 2 ** 20, NanoCpus: 0.25e9, Privileged: false });
    expect(inspected.HostConfig.PidsLimit).toBeGreaterThan(0);
    expect(inspected.Config.User).not.toMatch(/^(root|0)(:|$)/);
    expect(inspected.Config.User).not.toBe('');

    // The agent is killed; its containers are not. Its successor adopts them.
    const ids: Record<string, string | undefined> = { [`web-${RUN}`]: web.containerId, [`deaf-${RUN}`]: (await statusOf(`deaf-${RUN}`))!.containerId };
    first.crash();
    const second = agent();
    await second.start();
    await until('both adopted', async () => second.runningTasks().includes(`default/web-${RUN}`) && second.runningTasks().includes(`default/deaf-${RUN}`));
    for (const name of [`web-${RUN}`, `deaf-${RUN}`]) {
      expect(await statusOf(name)).toMatchObject({ state: 'RUNNING', containerId: ids[name] });
      expect((await new Dockerode().getContainer(ids[name]!).inspect()).State.Running).toBe(true);
    }
    expect((await fetch(`http://127.0.0.1:${webPort}/`)).status).toBe(200);

    // The task's output (httpd -v logs each response).
    const stream = await second.runtime.logs!('default', `web-${RUN}`, { tail: 20 });
    let text = '';
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      text += chunk.toString();
      if (text.includes('response:200')) break;
    }
    expect(text).toMatch(/response:200/);

    // A kill: KILLED within the grace period (2 s) plus Docker's own stop time.
    const killedAt = Date.now();
    await store.delete(assignmentKey(prefix, NODE, 'default', `web-${RUN}`));
    await until('web KILLED', async () => (await statusOf(`web-${RUN}`))?.state === 'KILLED', 10_000);
    expect(Date.now() - killedAt).toBeLessThan(2_000 + 3_000);
  }, 90_000);
});
