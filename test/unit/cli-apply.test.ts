import { lookupKind } from '../../pkg/api/kinds';
import { parseManifests, type ManifestDocument } from '../../pkg/api/manifest';
import type { App } from '../../pkg/api/types.generated';
import { admit, type ShoalObject } from '../../pkg/api/validation';
import { applyManifests, applyOne, MAX_CONFLICT_RETRIES, needsUpdate, planApply, type ApplyDeps } from '../../pkg/cli/commands/apply';
import { ApiError, CliError, ReportedFailure } from '../../pkg/cli/errors';
import { FakeClient } from './cli-fakes';

const apps = lookupKind('apps')!;

const WEB = `apiVersion: shoal/v1
kind: App
metadata:
  name: web
  labels: {app: web}
spec:
  cmd: python3 -m http.server $PORT0
  instances: 2
`;

const BAD = `apiVersion: shoal/v1
kind: App
metadata:
  name: api
spec:
  cmd: x
  instances: -1
  ports:
    - hostPort: 99999
---
apiVersion: shoal/v1
kind: Task
metadata:
  name: t1
spec:
  cmd: x
`;

const NO_KIND = `apiVersion: shoal/v1
metadata:
  name: orphan
`;

function deps(client: FakeClient, namespace = 'default') {
  const out: string[] = [];
  const err: string[] = [];
  const d: ApplyDeps = { out: (l) => out.push(l), err: (l) => err.push(l), client: () => client, defaultNamespace: () => namespace };
  return { d, out, err };
}

async function failureLines(p: Promise<unknown>): Promise<string[]> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof CliError)) throw new Error(`expected a CliError, got ${String(err)}`);
  return err.lines;
}

function defaulted(text: string, source = 'x.yaml'): App {
  const r = admit(parseManifests(text, source)[0].object);
  if (!r.ok) throw new Error('fixture is invalid');
  return r.object as App;
}

describe('apply: local validation', () => {
  it('reportsEveryErrorOfEveryDocumentWithFileAndLineAndWritesNothing', async () => {
    const client = new FakeClient();
    const docs: ManifestDocument[] = [...parseManifests(WEB, 'web.yaml'), ...parseManifests(BAD, 'bad.yaml'), ...parseManifests(NO_KIND, 'nokind.yaml')];
    const { d, out } = deps(client);
    const lines = await failureLines(applyManifests(docs, [], d));
    expect(lines).toEqual([
      'bad.yaml:7: app/api: spec.instances: must be >= 0',
      'bad.yaml:9: app/api: spec.ports[0].hostPort: must be <= 65535',
      'bad.yaml:12: task/t1: kind: Task objects cannot be applied: Shoal creates them (allowed: get, list, watch, delete)',
      'nokind.yaml:1: object/orphan: kind: is required (one of App, Job, JobRun, Framework, Task, Node, Event)',
    ]);
    expect(client.calls).toEqual([]); // not even a GET: nothing reaches the server
    expect(out).toEqual([]);
  });

  it('includesReadAndParseErrorsInTheSameReport', async () => {
    const client = new FakeClient();
    const lines = await failureLines(applyManifests(parseManifests(BAD, 'bad.yaml'), ['missing.yaml: no such file or directory'], deps(client).d));
    expect(lines[0]).toBe('missing.yaml: no such file or directory');
    expect(lines).toHaveLength(4);
    expect(client.calls).toEqual([]);
  });

  it('flagsTheSameObjectTwice', () => {
    const { errors } = planApply([...parseManifests(WEB, 'a.yaml'), ...parseManifests(WEB, 'b.yaml')], () => 'default');
    expect(errors).toEqual(['b.yaml:4: app/web: metadata.name: duplicate of a.yaml:1']);
  });

  it('takesTheNamespaceFromTheDocumentElseTheDefault', () => {
    const withNs = WEB.replace('  name: web\n', '  name: web\n  namespace: prod\n');
    const { planned } = planApply([...parseManifests(withNs, 'a.yaml'), ...parseManifests(WEB, 'b.yaml')], () => 'staging');
    expect(planned.map((p) => p.namespace)).toEqual(['prod', 'staging']);
    expect(planned[1].object.metadata.namespace).toBe('staging');
  });

  it('validatesTheNamespaceItFillsIn', () => {
    const { errors } = planApply(parseManifests(WEB, 'a.yaml'), () => 'Not_Valid');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^a\.yaml:3: app\/web: metadata\.namespace: must be a DNS-1123 label/);
  });

  it('refusesAnEmptyInput', async () => {
    expect(await failureLines(applyManifests([], [], deps(new FakeClient()).d))).toEqual(['no objects passed to apply']);
  });
});

describe('apply: server dry run', () => {
  it('writesNothingWhenTheServerRejectsAnyDocument', async () => {
    const client = new FakeClient();
    client.beforeWrite = (call) => {
      if (call.key === 'apps/default/api' && call.dryRun) {
        throw new ApiError(422, 'Invalid', 'App "api" is invalid: spec.instances: exceeds quota', [{ field: 'spec.instances', message: 'exceeds quota' }]);
      }
    };
    const docs = [...parseManifests(WEB, 'web.yaml'), ...parseManifests(WEB.replace(/web/g, 'api'), 'api.yaml')];
    const lines = await failureLines(applyManifests(docs, [], deps(client).d));
    expect(lines).toEqual(['api.yaml:8: app/api: spec.instances: exceeds quota']);
    expect(client.writes()).toEqual([]);
    expect(client.calls.filter((c) => c.dryRun).map((c) => c.key)).toEqual(['apps/default/web', 'apps/default/api']);
  });

  it('stopsAtOnceWhenTheServerCannotBeReached', async () => {
    const client = new FakeClient();
    client.get = async () => {
      throw new CliError('cannot reach server http://127.0.0.1:9: connection refused');
    };
    const lines = await failureLines(applyManifests(parseManifests(WEB, 'web.yaml'), [], deps(client).d));
    expect(lines).toEqual(['cannot reach server http://127.0.0.1:9: connection refused']);
  });
});

describe('apply: created, configured, unchanged', () => {
  it('createsWhatIsMissingThenSaysUnchanged', async () => {
    const client = new FakeClient();
    const first = deps(client);
    await applyManifests(parseManifests(WEB, 'web.yaml'), [], first.d);
    expect(first.out).toEqual(['app/web created']);
    const stored = client.objects.get('apps/default/web') as App;
    expect(stored.spec.resources).toEqual({ cpus: 1, mem: 128, disk: 0 }); // sent defaulted
    const second = deps(client);
    await applyManifests(parseManifests(WEB, 'web.yaml'), [], second.d);
    expect(second.out).toEqual(['app/web unchanged']);
    expect(client.writes().map((c) => c.verb)).toEqual(['create']);
  });

  it('configuresWhenSpecOrLabelsChangeKeepingServerMetadata', async () => {
    const client = new FakeClient();
    const stored = defaulted(WEB);
    stored.metadata.namespace = 'default';
    stored.metadata.creationTimestamp = '2024-01-01T00:00:00Z';
    client.seed(apps, stored);
    const uid = client.objects.get('apps/default/web')!.metadata.uid;
    const { d, out } = deps(client);
    await applyManifests(parseManifests(WEB.replace('instances: 2', 'instances: 5'), 'web.yaml'), [], d);
    expect(out).toEqual(['app/web configured']);
    const put = client.writes()[0];
    expect(put.verb).toBe('replace');
    const body = put.body as App;
    expect(body.spec.instances).toBe(5);
    expect(body.metadata.creationTimestamp).toBe('2024-01-01T00:00:00Z');
    expect(body.metadata.uid).toBe(uid);
    expect(body.metadata.resourceVersion).toBe('101');
    expect(body).not.toHaveProperty('status');
  });

  it('ignoresStatusAndServerManagedMetadataWhenComparing', () => {
    const local = defaulted(WEB);
    const server = structuredClone(local) as ShoalObject & App;
    server.metadata = { ...server.metadata, uid: 'u1', resourceVersion: '7', generation: 3, creationTimestamp: '2024-01-01T00:00:00Z' };
    server.status = { tasksRunning: 2, conditions: [] };
    expect(needsUpdate(local, server)).toBe(false);
    server.metadata.annotations = { note: 'x' };
    expect(needsUpdate(local, server)).toBe(true);
  });

  it('retriesAConflictByRereading', async () => {
    const client = new FakeClient();
    const stored = defaulted(WEB);
    stored.metadata.namespace = 'default';
    client.seed(apps, stored);
    let conflicts = 2;
    client.beforeWrite = (call) => {
      if (call.verb === 'replace' && !call.dryRun && conflicts-- > 0) client.seed(apps, client.objects.get('apps/default/web')!); // someone else wrote
    };
    const { planned } = planApply(parseManifests(WEB.replace('instances: 2', 'instances: 3'), 'web.yaml'), () => 'default');
    expect(await applyOne(client, planned[0])).toBe('configured');
    expect(client.writes().filter((c) => c.verb === 'replace')).toHaveLength(3);
  });

  it('retriesAConflictInTheDryRunTooInsteadOfReportingIt', async () => {
    // A controller writing status between apply's read and its dry run is not the manifest's fault.
    const client = new FakeClient();
    const stored = defaulted(WEB);
    stored.metadata.namespace = 'default';
    client.seed(apps, stored);
    let conflicts = 1;
    client.beforeWrite = (call) => {
      if (call.verb === 'replace' && call.dryRun && conflicts-- > 0) client.seed(apps, client.objects.get('apps/default/web')!);
    };
    const { d, out } = deps(client);
    await applyManifests(parseManifests(WEB.replace('instances: 2', 'instances: 3'), 'web.yaml'), [], d);
    expect(out).toEqual(['app/web configured']);
    expect(client.calls.filter((c) => c.verb === 'replace').map((c) => Boolean(c.dryRun))).toEqual([true, true, false]);
  });

  it('givesUpAfterMaxConflictRetriesPausingBetweenThem', async () => {
    const client = new FakeClient();
    const stored = defaulted(WEB);
    stored.metadata.namespace = 'default';
    client.seed(apps, stored);
    client.beforeWrite = (call) => {
      if (call.verb === 'replace') client.seed(apps, client.objects.get('apps/default/web')!);
    };
    const { planned } = planApply(parseManifests(WEB.replace('instances: 2', 'instances: 3'), 'web.yaml'), () => 'default');
    const pauses: number[] = [];
    await expect(applyOne(client, planned[0], async (ms) => void pauses.push(ms))).rejects.toMatchObject({ code: 409 });
    expect(client.writes()).toHaveLength(MAX_CONFLICT_RETRIES + 1);
    expect(pauses).toHaveLength(MAX_CONFLICT_RETRIES);
    expect(Math.max(...pauses)).toBeLessThanOrEqual(1500);
  });

  it('reportsAFailedWriteAndCarriesOnThenFails', async () => {
    const client = new FakeClient();
    client.beforeWrite = (call) => {
      if (call.key === 'apps/default/web' && !call.dryRun) throw new ApiError(403, 'Forbidden', 'user "ci" cannot create apps in default');
    };
    const docs = [...parseManifests(WEB, 'web.yaml'), ...parseManifests(WEB.replace(/web/g, 'api'), 'api.yaml')];
    const { d, out, err } = deps(client);
    await expect(applyManifests(docs, [], d)).rejects.toBeInstanceOf(ReportedFailure);
    expect(err).toEqual(['error: web.yaml:1: app/web: user "ci" cannot create apps in default']);
    expect(out).toEqual(['app/api created']);
  });
});
