/** Writing bound Tasks for agent tests, exactly as the binder does (Task + assignment, one txn). */
import { admit } from '../../pkg/api/validation';
import type { Task } from '../../pkg/api/types.generated';
import { assignmentKey, decodeKeyValue, encodeObject } from '../../pkg/store/objects';
import type { Store } from '../../pkg/store/types';

export interface BindOptions {
  uid?: string;
  /** Name of the owning App (SHOAL_APP_ID). */
  owner?: string;
}

/** Writes a STAGING Task bound to `node` and its assignment; `spec` is admitted (defaults filled). */
export async function bindTask(store: Store, prefix: string, node: string, name: string, spec: Record<string, unknown>, o: BindOptions = {}): Promise<Task> {
  const admitted = admit({
    apiVersion: 'shoal/v1', kind: 'Task',
    metadata: {
      name, namespace: 'default', uid: o.uid ?? `uid-${name}`, generation: 1,
      ...(o.owner ? { ownerReferences: [{ apiVersion: 'shoal/v1', kind: 'App', name: o.owner, uid: `uid-${o.owner}` }] } : {}),
    },
    spec: { nodeName: node, resources: { cpus: 0.1, mem: 32 }, taskKillGracePeriodSeconds: 1, ...spec },
    status: { state: 'STAGING' },
  });
  if (!admitted.ok) throw new Error(JSON.stringify(admitted.causes));
  const task = admitted.object as Task;
  await store.txn([], [
    { op: 'put', key: `${prefix}/registry/tasks/default/${name}`, value: encodeObject(task) },
    { op: 'put', key: assignmentKey(prefix, node, 'default', name), value: JSON.stringify({ metadata: task.metadata, spec: task.spec }) },
  ]);
  return task;
}

/** The Task `name` in namespace default as stored, or undefined. */
export async function readTask(store: Store, prefix: string, name: string): Promise<Task | undefined> {
  const kv = await store.get(`${prefix}/registry/tasks/default/${name}`);
  return kv && decodeKeyValue<Task>(kv);
}
