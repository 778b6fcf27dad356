/**
 * The DEP0123 filter: a component connecting to etcd over TLS at an IP address printed Node's
 * "Setting the TLS ServerName to an IP address" deprecation on every start (grpc-js sets the
 * servername to the endpoint's host). Run in a child of the built code (`make test` builds dist/
 * first), as the binaries run, so the process's own warning printing is what is checked.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const warnings = join(__dirname, '../../dist/pkg/util/warnings.js');

function stderrOf(filter: boolean): string {
  const script = `
    ${filter ? `require(${JSON.stringify(warnings)}).ignoreIpServernameWarning();` : ''}
    const s = require('node:tls').connect({ host: '127.0.0.1', port: 9, servername: '127.0.0.1' });
    s.on('error', () => undefined);
    process.emitWarning('another warning still prints', { code: 'SHOAL_TEST' });
    setTimeout(() => s.destroy(), 50);
  `;
  return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 }).stderr;
}

it('dropsOnlyTheIpServernameDeprecation', () => {
  expect(stderrOf(false)).toContain('DEP0123'); // what the components printed
  const filtered = stderrOf(true);
  expect(filtered).not.toContain('DEP0123');
  expect(filtered).toContain('another warning still prints');
});
