import { lookupKind } from '../../pkg/api/kinds';
import type { Event, Node, Task } from '../../pkg/api/types.generated';
import { DescribeWriter, describeObject, eventIsAbout } from '../../pkg/cli/describe';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

describe('describe layout', () => {
  it('alignsConsecutiveFieldsAndContinuesMultiLineValues', () => {
    const text = new DescribeWriter()
      .field('Name', 'web')
      .field('Labels', ['app=web', 'tier=front'])
      .field('Annotations', undefined)
      .section('Spec')
      .field('Instances', 3, 2)
      .field('Role', '*', 2)
      .render();
    expect(text).toBe([
      'Name:         web',
      'Labels:       app=web',
      '              tier=front',
      'Annotations:  <none>',
      'Spec:',
      '  Instances:  3',
      '  Role:       *',
    ].join('\n'));
  });
});

describe('describe task', () => {
  const task = {
    apiVersion: 'shoal/v1', kind: 'Task',
    metadata: {
      name: 'web-7f3a', namespace: 'default', creationTimestamp: ago(120), generation: 1,
      ownerReferences: [{ apiVersion: 'shoal/v1', kind: 'App', name: 'web', uid: 'u1', controller: true, version: 2 }],
    },
    spec: { nodeName: 'n1', role: '*', runtime: 'process', cmd: 'sleep 1000', resources: { cpus: 1, mem: 128, disk: 0 }, ports: [], healthChecks: [], readinessChecks: [], taskKillGracePeriodSeconds: 3 },
    status: { state: 'FAILED', exitCode: 137, pid: 4242, message: 'killed: out of memory', startedAt: ago(100), finishedAt: ago(5) },
  } as unknown as Task;

  it('showsNodeStateExitCodeAndTimestamps', () => {
    const text = describeObject(lookupKind('tasks')!, task, [], NOW);
    expect(text).toMatch(/^Controlled By: +App\/web \(version 2\)$/m);
    expect(text).toMatch(/^Node: +n1$/m);
    expect(text).toMatch(/^State: +FAILED$/m);
    expect(text).toMatch(/^Healthy: +<none> \(no health checks\)$/m);
    expect(text).toMatch(/^PID: +4242$/m);
    expect(text).not.toMatch(/^Container ID:/m);
    expect(text).toMatch(/^Exit Code: +137$/m);
    expect(text).toMatch(/^Message: +killed: out of memory$/m);
    expect(text).toMatch(/^Finished: +\S+ \(5s ago\)$/m);
    expect(text).toMatch(/^Conditions: +<none>$/m);
    expect(text).toMatch(/^Events: +<none>$/m);
  });

  it('saysWhyEventsAreMissing', () => {
    expect(describeObject(lookupKind('tasks')!, task, '<unable to list events: forbidden>', NOW)).toMatch(/^Events: +<unable to list events: forbidden>$/m);
  });

  it('matchesEventsByKindNameAndUid', () => {
    const ev = (ref: Partial<Event['involvedObject']>) => ({ involvedObject: { kind: 'Task', name: 'web-7f3a', ...ref } }) as Event;
    expect(eventIsAbout(ev({}), task)).toBe(true);
    expect(eventIsAbout(ev({ kind: 'App' }), task)).toBe(false);
    expect(eventIsAbout(ev({ namespace: 'prod' }), task)).toBe(false);
    expect(eventIsAbout(ev({ uid: 'old-uid' }), { ...task, metadata: { ...task.metadata, uid: 'new-uid' } })).toBe(false);
  });
});

describe('describe node', () => {
  const node = (heartbeat: string | undefined, ready: 'True' | 'False') => ({
    apiVersion: 'shoal/v1', kind: 'Node',
    metadata: { name: 'dev-agent-1', creationTimestamp: ago(3600), generation: 1 },
    spec: { unschedulable: false },
    status: {
      capacity: { cpus: 2, mem: 1024, disk: 0, ports: [[31000, 31999]] }, hostname: 'dev-agent-1', runtimes: ['process'], agentVersion: '0.1.0',
      ...(heartbeat ? { lastHeartbeatTime: heartbeat } : {}),
      conditions: [{ type: 'Ready', status: ready, reason: ready === 'True' ? 'AgentRegistered' : 'LeaseExpired', lastTransitionTime: ago(3600) }],
    },
  }) as unknown as Node;
  const describeNode = (n: Node) => describeObject(lookupKind('nodes')!, n, [], NOW);

  it('showsWhenTheAgentWasLastHeardFrom', () => {
    // The agent refreshes the time every 30 s while its lease lives: 12 s ago is current.
    expect(describeNode(node(ago(12), 'True'))).toMatch(/^Last Heartbeat: +2024-05-01T11:59:48\.000Z \(12s ago\)$/m);
  });

  it('saysWhyAReadyNodesHeartbeatDoesNotMove', () => {
    expect(describeNode(node(ago(600), 'True'))).toMatch(/^Last Heartbeat: +\S+ \(10m ago; not refreshed every 30s by this agent: Ready, from its lease, tells it is alive\)$/m);
  });

  it('showsTheLastTimeOfALostNodeAsItIs', () => {
    expect(describeNode(node(ago(600), 'False'))).toMatch(/^Last Heartbeat: +\S+ \(10m ago\)$/m);
    expect(describeNode(node(ago(600), 'False'))).toMatch(/^Status: +NotReady$/m);
  });

  it('showsNoneWithoutAHeartbeat', () => {
    expect(describeNode(node(undefined, 'True'))).toMatch(/^Last Heartbeat: +<none>$/m);
  });
});
