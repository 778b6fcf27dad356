import { portVariable, taskEnv } from '../../pkg/runtime/env';
import type { RuntimeTask } from '../../pkg/runtime/types';

const task = (spec: Partial<RuntimeTask['spec']>, extra: object = {}): RuntimeTask => ({
  namespace: 'prod', name: 'web-3f9a', uid: 'u1',
  spec: { role: '*', resources: { cpus: 1, mem: 128, disk: 0 }, ports: [], healthChecks: [], readinessChecks: [], taskKillGracePeriodSeconds: 3, ...spec },
  ...extra,
});
const node = { hostname: 'host-1', nodeName: 'n1' };

describe('taskEnv', () => {
  it('setsMarathonPortVariablesFromHostPorts', () => {
    const env = taskEnv(task({ ports: [{ name: 'http', hostPort: 31000, protocol: 'tcp' }, { name: 'admin-api', hostPort: 31001, protocol: 'tcp' }] }), node);
    expect(env).toMatchObject({ PORT0: '31000', PORT1: '31001', PORT: '31000', PORTS: '31000,31001', PORT_HTTP: '31000', PORT_ADMIN_API: '31001' });
  });

  it('setsIdentityVariablesAndLetsThemWinOverTheSpec', () => {
    const env = taskEnv(task({ env: { HOST: 'spoofed', A: '1' }, container: { image: 'x', env: { A: '2' } } }, { owner: 'web' }), node);
    expect(env).toEqual({ A: '2', HOST: 'host-1', SHOAL_NODE: 'n1', SHOAL_NAMESPACE: 'prod', SHOAL_TASK_ID: 'web-3f9a', SHOAL_APP_ID: 'web' });
  });

  it('passesNothingFromTheAgentsEnvironment', () => {
    process.env.SHOAL_SECRET_FOR_TEST = 'x';
    expect(taskEnv(task({}), node).SHOAL_SECRET_FOR_TEST).toBeUndefined();
    delete process.env.SHOAL_SECRET_FOR_TEST;
  });

  it('namesPortVariables', () => {
    expect(portVariable('http-api.v2')).toBe('PORT_HTTP_API_V2');
  });
});
