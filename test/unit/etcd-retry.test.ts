/**
 * Which failed etcd calls EtcdStore sends again: reads on any UNAVAILABLE, writes only when the
 * request never left the process (etcd may have applied a write that timed out).
 */
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { isSafeToRetry } from '../../pkg/store/etcd';

const refused = new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379.');
const timedOut = new GRPCUnavailableError('14 UNAVAILABLE: etcdserver: request timed out');
const dropped = new GRPCUnavailableError('14 UNAVAILABLE: Connection dropped');

describe('isSafeToRetry', () => {
  it.each(['get', 'getMany', 'list', 'countNewer', 'revision', 'grantLease', 'revokeLease'] as const)('retries %s on any UNAVAILABLE but etcd timing it out', (op) => {
    for (const err of [refused, dropped]) expect(isSafeToRetry(op, err)).toBe(true);
    expect(isSafeToRetry(op, timedOut)).toBe(false); // 7 s each: no quorum must not take 21 s to report
  });

  it.each(['create', 'update', 'delete', 'txn'] as const)('retries %s only when no connection was established', (op) => {
    expect(isSafeToRetry(op, refused)).toBe(true);
    expect(isSafeToRetry(op, timedOut)).toBe(false);
    expect(isSafeToRetry(op, dropped)).toBe(false);
  });

  it('never retries a missed deadline or any other error', () => {
    expect(isSafeToRetry('get', new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded'))).toBe(false);
    expect(isSafeToRetry('txn', new Error('boom'))).toBe(false);
  });
});
