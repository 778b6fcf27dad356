/**
 * The pure part of pkg/runtime/cgroups.ts: which hierarchy a host has, and which files get which
 * values for a task's cpu, memory and pids limits (v1 and v2).
 */
import { cpuQuotaUs, detectCgroupHost, limitsFor, parentPlan, parseOomKills, parseProcs, taskPlan, type CgroupHost } from '../../pkg/runtime/cgroups';

const HYBRID_MOUNTS = [
  'tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0',
  'cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0',
  'cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0',
  'cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0',
  'cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0',
  'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
].join('\n');
const V2_MOUNTS = 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\nproc /proc proc rw 0 0';
const v1: CgroupHost = { version: 1, roots: { cpu: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' } };
const v2: CgroupHost = { version: 2, root: '/sys/fs/cgroup', controllers: ['cpu', 'memory', 'pids'] };

describe('detectCgroupHost', () => {
  it('usesV1OnAHybridHostWhoseUnifiedMountHasNoControllers', () => {
    expect(detectCgroupHost(HYBRID_MOUNTS, () => '')).toEqual({ version: 1, roots: { cpu: '/sys/fs/cgroup/cpu', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' } });
  });

  it('usesV2WhenItsRootHasTheControllers', () => {
    const read = (dir: string) => (dir === '/sys/fs/cgroup' ? 'cpuset cpu io memory hugetlb pids rdma misc\n' : undefined);
    expect(detectCgroupHost(V2_MOUNTS, read)).toEqual({ version: 2, root: '/sys/fs/cgroup', controllers: ['cpu', 'memory', 'pids'] });
  });

  it('findsCombinedV1MountsAndNothingWithoutCgroups', () => {
    expect(detectCgroupHost('cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0', () => undefined)).toEqual({ version: 1, roots: { cpu: '/sys/fs/cgroup/cpu,cpuacct' } });
    expect(detectCgroupHost('proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw 0 0', () => '')).toBeUndefined();
  });
});

describe('limitsFor', () => {
  it('turnsCpusMemAndPidsIntoLimitsAndZeroIntoNone', () => {
    expect(limitsFor({ cpus: 0.5, mem: 64 }, 1024)).toEqual({ cpus: 0.5, memoryBytes: 64 * 1024 * 1024, pids: 1024 });
    expect(limitsFor({ cpus: 0, mem: 0 }, 0)).toEqual({});
    expect(limitsFor(undefined, undefined)).toEqual({});
  });

  it('neverAsksForACfsQuotaTheKernelRefuses', () => {
    expect(cpuQuotaUs(2)).toBe(200_000);
    expect(cpuQuotaUs(0.001)).toBe(1_000);
  });
});

describe('taskPlan', () => {
  const limits = { cpus: 0.25, memoryBytes: 33554432, pids: 100 };

  it('writesV1LimitsInEachHierarchyWithMemswAfterTheMemoryLimit', () => {
    const plan = taskPlan(v1, '/shoal', 'default_web-1234abcd', limits);
    expect(plan.dirs).toEqual(['/sys/fs/cgroup/cpu,cpuacct/shoal/default_web-1234abcd', '/sys/fs/cgroup/memory/shoal/default_web-1234abcd', '/sys/fs/cgroup/pids/shoal/default_web-1234abcd']);
    expect(plan.writes.map((w) => [w.file.replace(/^.*\/default_web-1234abcd\//, ''), w.value, Boolean(w.optional)])).toEqual([
      ['cpu.cfs_period_us', '100000', false],
      ['cpu.cfs_quota_us', '25000', false],
      ['memory.limit_in_bytes', '33554432', false],
      ['memory.memsw.limit_in_bytes', '33554432', true], // only where swap accounting is on
      ['pids.max', '100', false],
    ]);
  });

  it('writesV2LimitsInOneCgroupWithNoSwap', () => {
    const plan = taskPlan(v2, 'shoal', 'default_web-1234abcd', limits);
    expect(plan.dirs).toEqual(['/sys/fs/cgroup/shoal/default_web-1234abcd']);
    expect(plan.writes).toEqual([
      { file: '/sys/fs/cgroup/shoal/default_web-1234abcd/cpu.max', value: '25000 100000' },
      { file: '/sys/fs/cgroup/shoal/default_web-1234abcd/memory.max', value: '33554432' },
      { file: '/sys/fs/cgroup/shoal/default_web-1234abcd/memory.swap.max', value: '0', optional: true },
      { file: '/sys/fs/cgroup/shoal/default_web-1234abcd/pids.max', value: '100' },
    ]);
  });

  it('writesNothingForAbsentLimitsOrMissingControllers', () => {
    expect(taskPlan(v2, '/shoal', 't', {}).writes).toEqual([]);
    const memoryOnly: CgroupHost = { version: 2, root: '/sys/fs/cgroup', controllers: ['memory'] };
    expect(taskPlan(memoryOnly, '/shoal', 't', limits).writes.map((w) => w.file)).toEqual(['/sys/fs/cgroup/shoal/t/memory.max', '/sys/fs/cgroup/shoal/t/memory.swap.max']);
  });

  it('keepsTheParentInsideTheHierarchy', () => {
    expect(taskPlan(v2, '/../../etc/shoal', 't', {}).dirs).toEqual(['/sys/fs/cgroup/etc/shoal/t']);
  });
});

describe('parentPlan', () => {
  it('enablesTheControllersFromTheV2RootDownToTheParent', () => {
    expect(parentPlan(v2, '/shoal/tasks')).toEqual({
      dirs: ['/sys/fs/cgroup/shoal', '/sys/fs/cgroup/shoal/tasks'],
      writes: [
        { file: '/sys/fs/cgroup/cgroup.subtree_control', value: '+cpu +memory +pids' },
        { file: '/sys/fs/cgroup/shoal/cgroup.subtree_control', value: '+cpu +memory +pids' },
        { file: '/sys/fs/cgroup/shoal/tasks/cgroup.subtree_control', value: '+cpu +memory +pids' },
      ],
    });
  });

  it('onlyMakesDirsInV1', () => {
    expect(parentPlan(v1, '/shoal')).toEqual({ dirs: ['/sys/fs/cgroup/cpu,cpuacct/shoal', '/sys/fs/cgroup/memory/shoal', '/sys/fs/cgroup/pids/shoal'], writes: [] });
  });
});

describe('parsing', () => {
  it('readsOomKillsFromV2EventsAndV1OomControl', () => {
    expect(parseOomKills('low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n')).toBe(1);
    expect(parseOomKills('oom_kill_disable 0\nunder_oom 0\noom_kill 3\n')).toBe(3);
    expect(parseOomKills('oom_kill_disable 0\nunder_oom 0\n')).toBe(0);
  });

  it('readsPids', () => {
    expect(parseProcs('12\n345\n')).toEqual([12, 345]);
    expect(parseProcs('')).toEqual([]);
  });
});
