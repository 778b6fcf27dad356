/** AgentHttpServer: bound before its agent exists, never serving without one. */
import * as net from 'node:net';
import { AgentHttpServer, type LogSource } from '../../pkg/agent/http';
import { FakeRuntime } from '../../pkg/runtime/fake';
import { silentLogger } from '../../pkg/util/log';

const log = silentLogger();
const TOKEN = 'agent-token-0123456789abcdef';

function source(known: string[]): LogSource {
  return { runtime: new FakeRuntime(), knowsTask: (ns, name) => known.includes(`${ns}/${name}`) };
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer().once('error', () => resolve(false)).listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

describe('AgentHttpServer', () => {
  it('buildsItsAgentFromTheBoundPortAndServesIt', async () => {
    let seenPort = 0;
    const http = await AgentHttpServer.listen({ port: 0, host: '127.0.0.1', token: TOKEN, logger: log, source: (port) => ((seenPort = port), source(['default/a'])) });
    try {
      expect(seenPort).toBe(http.port);
      const base = `http://127.0.0.1:${http.port}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      // Known here or not: the answer comes from the agent at once, never "starting".
      const unknown = await fetch(`${base}/v1/tasks/default/b/log`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(unknown.status).toBe(404);
      expect(await unknown.text()).toMatch(/not known on this agent/);
    } finally {
      await http.close();
    }
  });

  it('releasesThePortWhenTheAgentCannotBeBuilt', async () => {
    let bound = 0;
    await expect(AgentHttpServer.listen({
      port: 0, host: '127.0.0.1', logger: log,
      source: (port) => {
        bound = port;
        throw new Error('bad node name');
      },
    })).rejects.toThrow('bad node name');
    expect(bound).toBeGreaterThan(0);
    expect(await portIsFree(bound)).toBe(true);
  });

  it('rejectsAPortInUse', async () => {
    const first = await AgentHttpServer.listen({ port: 0, host: '127.0.0.1', logger: log, source: source([]) });
    try {
      await expect(AgentHttpServer.listen({ port: first.port, host: '127.0.0.1', logger: log, source: source([]) })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});
