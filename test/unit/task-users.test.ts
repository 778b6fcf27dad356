/**
 * Who process tasks run as (pkg/runtime/task-users.ts): the agent's flags to a policy, uid
 * picking, and whether a user can reach its work dir.
 */
import { DEFAULT_TASK_UIDS, ancestorsOf, parsePasswdLine, parseUidRange, pickUid, resolveTaskUser, untraversable, type PasswdEntry } from '../../pkg/runtime/task-users';

const PASSWD: PasswdEntry[] = [
  { name: 'root', uid: 0, gid: 0 },
  { name: 'nobody', uid: 65534, gid: 65534 },
  { name: 'web', uid: 1001, gid: 1002 },
];
const lookup = (who: string) => PASSWD.find((e) => e.name === who || String(e.uid) === who);
const root = { uid: 0, gid: 0, name: 'root' };

describe('resolveTaskUser', () => {
  it('givesEachTaskAUidOfItsOwnWhenTheAgentIsRootAndNoUserIsSet', () => {
    expect(resolveTaskUser({ allowRoot: false, agent: root, lookup })).toEqual({ policy: { kind: 'dynamic', range: DEFAULT_TASK_UIDS } });
    expect(resolveTaskUser({ allowRoot: false, agent: root, lookup, taskUids: [5000, 5009] }).policy).toEqual({ kind: 'dynamic', range: [5000, 5009] });
  });

  it('runsEveryTaskAsTheTaskUserAndWarnsThatTheyShareIt', () => {
    const r = resolveTaskUser({ taskUser: 'nobody', allowRoot: false, agent: root, lookup });
    expect(r.policy).toEqual({ kind: 'fixed', identity: { uid: 65534, gid: 65534, name: 'nobody' }, switch: true });
    expect(r.warning).toMatch(/share that user/);
    expect(resolveTaskUser({ taskUser: 'web:7', allowRoot: false, agent: root, lookup }).policy).toMatchObject({ identity: { uid: 1001, gid: 7, name: 'web' } });
    expect(resolveTaskUser({ taskUser: '4242', allowRoot: false, agent: root, lookup }).policy).toMatchObject({ identity: { uid: 4242, gid: 4242, name: '4242' } });
  });

  it('refusesRootWithoutAllowRoot', () => {
    expect(() => resolveTaskUser({ taskUser: 'root', allowRoot: false, agent: root, lookup })).toThrow(/--task-user root is root, which the agent refuses without --allow-root/);
    expect(() => resolveTaskUser({ taskUser: '0:0', allowRoot: false, agent: root, lookup })).toThrow(/--allow-root/);
    const allowed = resolveTaskUser({ taskUser: 'root', allowRoot: true, agent: root, lookup });
    expect(allowed.policy).toEqual({ kind: 'fixed', identity: root, switch: false });
    expect(allowed.warning).toMatch(/run as root/);
  });

  it('refusesAnUnknownUser', () => {
    expect(() => resolveTaskUser({ taskUser: 'ghost', allowRoot: false, agent: root, lookup })).toThrow('--task-user "ghost": no such user on this machine');
    expect(() => resolveTaskUser({ taskUser: 'web:staff', allowRoot: false, agent: root, lookup })).toThrow(/numeric gid/);
  });

  it('runsTasksAsTheAgentItselfWhenItIsNotRootAndSaysSoOnce', () => {
    const agent = { uid: 1000, gid: 1000, name: 'dev' };
    const r = resolveTaskUser({ taskUser: 'nobody', allowRoot: false, agent, lookup });
    expect(r.policy).toEqual({ kind: 'fixed', identity: agent, switch: false });
    expect(r.warning).toMatch(/not root, so it cannot switch users.*--task-user nobody is ignored/);
  });
});

describe('pickUid', () => {
  it('picksAFreeUidOfTheRange', () => {
    expect(pickUid([10, 12], new Set([10, 11]), () => 0)).toBe(12);
    expect(pickUid([10, 12], new Set([11]), () => 0.4)).toBe(12); // start at 11, taken, next
    expect(pickUid([10, 12], new Set([10, 11, 12]))).toBeUndefined();
    expect(pickUid([10, 10], new Set([99]), () => 0.99)).toBe(10);
  });
});

describe('parsing', () => {
  it('parsesPasswdLinesAndUidRanges', () => {
    expect(parsePasswdLine('nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n')).toEqual({ name: 'nobody', uid: 65534, gid: 65534 });
    expect(parsePasswdLine('garbage')).toBeUndefined();
    expect(parseUidRange('100000-165535')).toEqual([100000, 165535]);
    expect(() => parseUidRange('0-10')).toThrow(/not a uid range/);
    expect(() => parseUidRange('20-10')).toThrow(/not a uid range/);
    expect(() => parseUidRange('10')).toThrow(/not a uid range/);
  });
});

describe('untraversable', () => {
  const dirs = (modes: Array<[string, number, number]>) => modes.map(([path, uid, mode]) => ({ path, uid, gid: uid, mode: 0o40000 | mode }));

  it('findsTheFirstDirectoryTheTaskUserCannotPass', () => {
    const tree = dirs([['/', 0, 0o755], ['/tmp', 0, 0o1777], ['/tmp/shoal-x', 0, 0o700], ['/tmp/shoal-x/tasks', 0, 0o711]]);
    expect(untraversable(tree, 65534, 65534)?.path).toBe('/tmp/shoal-x');
    expect(untraversable(tree, 0, 0)).toBeUndefined();
    expect(untraversable(dirs([['/', 0, 0o755], ['/srv', 0, 0o711]]), 65534, 65534)).toBeUndefined();
  });

  it('usesTheOwnerOrGroupBitsWhenTheyApply', () => {
    expect(untraversable(dirs([['/home/web', 1001, 0o700]]), 1001, 1001)).toBeUndefined();
    expect(untraversable([{ path: '/g', uid: 0, gid: 50, mode: 0o750 }], 1001, 50)).toBeUndefined();
    expect(untraversable([{ path: '/g', uid: 0, gid: 50, mode: 0o701 }], 1001, 50)?.path).toBe('/g'); // the group bits apply, not others'
  });

  it('listsAncestors', () => {
    expect(ancestorsOf('/a/b/c')).toEqual(['/', '/a', '/a/b', '/a/b/c']);
    expect(ancestorsOf('/')).toEqual(['/']);
  });
});
