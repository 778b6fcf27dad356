import { chunkTxn, FENCED, MAX_TXN_OPS, txnOpCost } from '../../pkg/store/validate';
import type { TxnOp } from '../../pkg/store/types';
import { nameKey, objectNameKey, splitNameKey } from '../../pkg/api/keys';

describe('chunkTxn: one way to batch writes under etcd limits', () => {
  it('counts ops per item: a Task and its assignment are two', () => {
    // 64 items of 2 ops fill 128; the 65th starts a new txn
    const chunks = chunkTxn(Array.from({ length: 130 }, (_, i) => i), () => ({ ops: 2 }));
    expect(chunks.map((c) => c.length)).toEqual([64, 64, 2]);
  });

  it('counts compares, with the fence reserved in every txn', () => {
    // 1 compare + 2 ops each, plus the fence: 127 items' compares fit beside it, not 128
    const chunks = chunkTxn(Array.from({ length: 200 }, (_, i) => i), () => ({ ops: 0, compares: 1 }), FENCED);
    expect(chunks.map((c) => c.length)).toEqual([127, 73]);
    // with 2 ops each, ops bind first: 64 per txn
    expect(chunkTxn(Array.from({ length: 100 }, (_, i) => i), () => ({ ops: 2, compares: 1 }), FENCED).map((c) => c.length)).toEqual([64, 36]);
  });

  it('counts a shared compare once per txn (e.g. one lease key per agent)', () => {
    // 2 ops + 1 compare per launch, one lease compare per agent, the fence: 63 launches on 63
    // agents need 1 + 63 + 63 = 127 compares; a 64th on a 64th agent would make 129
    const launches = Array.from({ length: 128 }, (_, i) => ({ agent: `n${i}` }));
    const cost = (l: { agent: string }) => ({ ops: 2, compares: 1, sharedCompares: [`/leases/${l.agent}`] });
    expect(chunkTxn(launches, cost, FENCED).map((c) => c.length)).toEqual([63, 63, 2]);
    // all on one agent: the lease is compared once, ops bind at 64
    expect(chunkTxn(launches.map(() => ({ agent: 'n1' })), cost, FENCED).map((c) => c.length)).toEqual([64, 64]);
  });

  it('counts bytes, sending an item too big on its own alone', () => {
    expect(chunkTxn([60, 30, 20, 90, 5], (n) => ({ bytes: n }), { maxBytes: 100 })).toEqual([[60, 30], [20], [90, 5]]);
    expect(chunkTxn([10, 500, 10], (n) => ({ bytes: n }), { maxBytes: 100 })).toEqual([[10], [500], [10]]);
    expect(chunkTxn([], () => 1)).toEqual([]);
  });

  it('keeps the older form: bytes per item, one op each, max count and bytes', () => {
    expect(chunkTxn([1, 1, 1, 1, 1], (n) => n, 2, 100)).toEqual([[1, 1], [1, 1], [1]]);
    expect(chunkTxn([60, 30, 20, 90, 5], (n) => n, 10, 100)).toEqual([[60, 30], [20], [90, 5]]);
    expect(chunkTxn(Array.from({ length: MAX_TXN_OPS + 1 }, () => 1), (n) => n).map((c) => c.length)).toEqual([MAX_TXN_OPS, 1]);
  });

  it('sizes txn ops by their key and value', () => {
    const ops: TxnOp[] = [
      { op: 'put', key: 'abc', value: '12345' },
      { op: 'delete', key: 'abcd' },
      { op: 'deleteRange', key: 'a/', end: 'a0' },
    ];
    expect(ops.map(txnOpCost)).toEqual([{ ops: 1, bytes: 8 }, { ops: 1, bytes: 4 }, { ops: 1, bytes: 4 }]);
  });
});

describe('nameKey: the one namespace/name key', () => {
  it('joins namespace and name, defaulting the namespace', () => {
    expect(nameKey('prod', 'web')).toBe('prod/web');
    expect(nameKey(undefined, 'web')).toBe('default/web');
    expect(nameKey('', 'web')).toBe('default/web');
    expect(objectNameKey({ metadata: { name: 'web-1' } })).toBe('default/web-1');
    expect(objectNameKey({ metadata: { namespace: 'prod', name: 'web-1' } })).toBe('prod/web-1');
  });

  it('splits what it joined', () => {
    expect(splitNameKey(nameKey('prod', 'web'))).toEqual({ namespace: 'prod', name: 'web' });
    expect(splitNameKey('web')).toEqual({ namespace: 'default', name: 'web' });
  });
});
