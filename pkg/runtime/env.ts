/**
 * The environment a task sees, the same in every runtime (Marathon's variables, Shoal's names):
 * the spec's env, then PORT0..n / PORT_<NAME> / PORTS (host ports), HOST, SHOAL_TASK_ID,
 * SHOAL_APP_ID and SHOAL_NAMESPACE. Nothing from the agent's own environment leaks in.
 */
import type { RuntimeTask } from './types';

/** What the agent knows about itself that tasks see. */
export interface NodeContext {
  /** Agent's hostname as advertised (HOST). */
  hostname: string;
  nodeName: string;
}

/** Environment variable name for a port name: `http-api` → `PORT_HTTP_API`. */
export function portVariable(name: string): string {
  return `PORT_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** Builds a task's environment. Later entries win: spec env < container env < Shoal's variables. */
export function taskEnv(task: RuntimeTask, node: NodeContext): Record<string, string> {
  const env: Record<string, string> = Object.create(null);
  const set = (source: Record<string, string> | undefined) => {
    for (const [k, v] of Object.entries(source ?? {})) env[k] = v;
  };
  set(task.spec.env);
  set(task.spec.container?.env);
  const ports = task.spec.ports ?? [];
  ports.forEach((p, i) => {
    env[`PORT${i}`] = String(p.hostPort);
    if (p.name) env[portVariable(p.name)] = String(p.hostPort);
  });
  if (ports.length) {
    env.PORT = String(ports[0].hostPort);
    env.PORTS = ports.map((p) => p.hostPort).join(',');
  }
  env.HOST = node.hostname;
  env.SHOAL_NODE = node.nodeName;
  env.SHOAL_NAMESPACE = task.namespace;
  env.SHOAL_TASK_ID = task.name;
  if (task.owner) env.SHOAL_APP_ID = task.owner;
  return { ...env };
}
