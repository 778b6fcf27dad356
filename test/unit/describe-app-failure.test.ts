/** `shoal describe app` shows the App's last task failure (status.lastFailure), e.g. an image missing on its node. */
import { lookupKind } from '../../pkg/api/kinds';
import type { App } from '../../pkg/api/types.generated';
import { admit, formatCauses } from '../../pkg/api/validation';
import { describeObject } from '../../pkg/cli/describe';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

function app(status: App['status']): App {
  const r = admit({ apiVersion: 'shoal/v1', kind: 'App', metadata: { name: 'nope', namespace: 'default', uid: 'u1', generation: 1, creationTimestamp: ago(60) }, spec: { container: { image: 'shoal/nope:latest' } }, status });
  if (!r.ok) throw new Error(formatCauses(r.causes));
  return r.object as App;
}

describe('describe app: last failure', () => {
  it('namesTheTaskItsStateReasonAgeAndMessage', () => {
    const text = describeObject(lookupKind('apps')!, app({
      pendingReason: 'backing off after 4 failed task(s): next launch in 7s',
      lastFailure: { task: 'nope-a1b2c3d4', node: 'n1', state: 'ERROR', reason: 'ImageNotPresent', message: 'image shoal/nope:latest not present on node n1 (no registry pull)', at: ago(3) },
    }), [], NOW);
    expect(text).toMatch(/^ {2}Last Failure: +nope-a1b2c3d4 on n1: ERROR \(ImageNotPresent\), 3s ago$/m);
    expect(text).toMatch(/^ {16,}image shoal\/nope:latest not present on node n1 \(no registry pull\)$/m);
    expect(text).toMatch(/^ {2}Pending: +backing off after 4 failed task\(s\)/m);
  });

  it('showsAnExitCodeWhenThereIsNoReason', () => {
    const text = describeObject(lookupKind('apps')!, app({ lastFailure: { task: 'web-1', state: 'FAILED', exitCode: 3, message: 'exited with code 3', at: ago(65) } }), [], NOW);
    expect(text).toMatch(/Last Failure: +web-1: FAILED \(exit code 3\), 65s ago/);
  });

  it('saysNothingWithoutAFailure', () => {
    expect(describeObject(lookupKind('apps')!, app({}), [], NOW)).not.toMatch(/Last Failure/);
  });
});
