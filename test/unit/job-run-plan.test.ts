/**
 * Pure tests of planRun (pkg/controllers/jobs/run.ts): tables of (run, tasks, inflight, now) → plan,
 * step-by-step runs with injected times, and a seeded random walk of task outcomes checking the
 * parallelism and retries bounds.
 */
import { newJobRun, type RunTrigger } from '../../pkg/api/jobs';
import type { Job, JobRun, JobRunStatus, JobSpec, Task } from '../../pkg/api/types.generated';
import { admit, formatCauses } from '../../pkg/api/validation';
import { ATTEMPT_ANNOTATION, planRun, type RunPlan } from '../../pkg/controllers/jobs/run';
import { seededRandom } from '../../pkg/scheduler/random';

/** The run's creation (and scheduled time unless told otherwise). */
const T = Date.parse('2026-03-02T10:00:00Z');
const SEC = 1000;
const iso = (ms: number) => new Date(ms).toISOString();

interface RunOpts {
  trigger?: RunTrigger; scheduled?: number; status?: JobRunStatus;
  /** Set on the run's template after admission: a spec admission now refuses but an older run may hold. */
  stored?: Partial<JobSpec>;
}
/** A run of an admitted Job (every schema default filled) with `spec` over the defaults, created at T. */
function runOf(spec: Partial<JobSpec> = {}, o: RunOpts = {}): JobRun {
  const a = admit({ apiVersion: 'shoal/v1', kind: 'Job', metadata: { name: 'rep', namespace: 'default' }, spec: { cmd: 'work', ...spec } });
  if (!a.ok) throw new Error(formatCauses(a.causes));
  const job = a.object as Job;
  job.metadata = { ...job.metadata, uid: 'u-rep', generation: 1, creationTimestamp: iso(T - 60 * SEC) };
  const r = newJobRun(job, { name: 'rep-1', trigger: o.trigger ?? 'Schedule', scheduledTime: o.scheduled ?? T });
  r.metadata.creationTimestamp = iso(T);
  Object.assign(r.spec.template, o.stored);
  if (o.status) r.status = o.status;
  return r;
}

type State = NonNullable<Task['status']['state']>;
interface TaskOpts { started?: number; finished?: number; attempt?: number; created?: number }
/** A task of the run; `started`/`finished` are epoch ms; RUNNING and terminal tasks get a startedAt by default. */
function task(name: string, state: State, o: TaskOpts = {}): Task {
  const terminal = ['FINISHED', 'FAILED', 'KILLED', 'ERROR', 'LOST'].includes(state);
  const started = o.started ?? (state === 'RUNNING' || terminal ? T + SEC : undefined);
  const finished = o.finished ?? (terminal ? T + 10 * SEC : undefined);
  return {
    apiVersion: 'shoal/v1', kind: 'Task',
    metadata: {
      name, namespace: 'default', creationTimestamp: iso(o.created ?? T),
      labels: { 'shoal.dev/job': 'rep', 'shoal.dev/jobrun': 'rep-1' },
      ...(o.attempt !== undefined ? { annotations: { [ATTEMPT_ANNOTATION]: String(o.attempt) } } : {}),
      ownerReferences: [{ apiVersion: 'shoal/v1', kind: 'JobRun', name: 'rep-1', uid: 'u-rep-1', controller: true }],
    },
    spec: { role: '*', cmd: 'work', resources: { cpus: 1, mem: 128, disk: 0 }, ports: [], healthChecks: [], readinessChecks: [], taskKillGracePeriodSeconds: 3 },
    status: {
      state,
      ...(started !== undefined ? { startedAt: iso(started) } : {}),
      ...(finished !== undefined ? { finishedAt: iso(finished) } : {}),
      ...(state === 'FAILED' ? { exitCode: 1, message: 'exit 1' } : {}),
    },
  };
}

function plan(run: JobRun, tasks: Task[], now: number, o: { inflight?: number; replaced?: boolean } = {}): RunPlan {
  return planRun({ run, tasks, inflight: o.inflight ?? 0, now, ...(o.replaced ? { replaced: true } : {}) });
}

/** Writes the plan's status back into the run, as the controller does. */
function written(run: JobRun, p: RunPlan): JobRun {
  return { ...run, status: p.status };
}

const kills = (p: RunPlan) => p.kill.map((k) => `${k.task}:${k.reason}`);

describe('planRun: completions and parallelism', () => {
  it('launchesUpToParallelismThenOneMorePerSuccessUntilCompletions', () => {
    const run = runOf({ completions: 3, parallelism: 2 });
    const steps: Array<{ tasks: Task[]; inflight?: number; launch: number; phase: string; finished?: string }> = [
      { tasks: [], launch: 2, phase: 'Pending' },
      { tasks: [], inflight: 2, launch: 0, phase: 'Pending' },
      { tasks: [task('a', 'STAGING'), task('b', 'STAGING')], launch: 0, phase: 'Pending' },
      { tasks: [task('a', 'RUNNING'), task('b', 'RUNNING')], launch: 0, phase: 'Running' },
      { tasks: [task('a', 'FINISHED'), task('b', 'RUNNING')], launch: 1, phase: 'Running' },
      { tasks: [task('a', 'FINISHED'), task('b', 'RUNNING'), task('c', 'RUNNING')], launch: 0, phase: 'Running' },
      // Only one more is needed: the finished b is not replaced.
      { tasks: [task('a', 'FINISHED'), task('b', 'FINISHED'), task('c', 'RUNNING')], launch: 0, phase: 'Running' },
      { tasks: [task('a', 'FINISHED'), task('b', 'FINISHED'), task('c', 'FINISHED')], launch: 0, phase: 'Succeeded', finished: 'Completed' },
    ];
    for (const s of steps) {
      const p = plan(run, s.tasks, T + 20 * SEC, { inflight: s.inflight });
      expect({ launch: p.launch, phase: p.status.phase, finished: p.finished?.reason }).toEqual({ launch: s.launch, phase: s.phase, finished: s.finished });
      expect(p.gang).toBe(false);
      expect(p.kill).toEqual([]);
    }
  });

  it('reportsCountsAndCompletionWhenSucceeded', () => {
    const run = runOf({ completions: 2, parallelism: 2 });
    const p = plan(run, [task('a', 'FINISHED'), task('b', 'FINISHED', { started: T + 2 * SEC })], T + 20 * SEC);
    expect(p.finished).toEqual({ phase: 'Succeeded', reason: 'Completed', message: expect.any(String) });
    expect(p.status).toMatchObject({ phase: 'Succeeded', succeeded: 2, failed: 0, active: 0, attempts: 2, startTime: iso(T + SEC), completionTime: iso(T + 20 * SEC), reason: 'Completed' });
  });

  it.each([
    { name: 'parallelismAboveCompletionsIsCappedByCompletions', spec: { completions: 2 }, stored: { parallelism: 5 }, tasks: [] as Task[], inflight: 0, launch: 2 },
    { name: 'inflightLaunchesCountAsActive', spec: { completions: 4, parallelism: 3 }, tasks: [task('a', 'RUNNING')], inflight: 1, launch: 1 },
    { name: 'terminalTasksDoNotHoldParallelism', spec: { completions: 4, parallelism: 2, retries: 5 }, tasks: [task('a', 'FINISHED'), task('b', 'FINISHED')], inflight: 0, launch: 2 },
    { name: 'aKillingTaskStillHoldsItsSlot', spec: { completions: 2, parallelism: 2 }, tasks: [task('a', 'KILLING')], inflight: 0, launch: 1 },
  ])('$name', ({ spec, stored, tasks, inflight, launch }) => {
    expect(plan(runOf(spec, { stored }), tasks, T + 20 * SEC, { inflight }).launch).toBe(launch);
  });

  it('numbersLaunchesAfterTheTasksSoFar', () => {
    const p = plan(runOf({ completions: 3, parallelism: 3 }), [task('a', 'RUNNING')], T + 20 * SEC, { inflight: 1 });
    expect(p).toMatchObject({ launch: 1, attempt: 3 });
  });
});

describe('planRun: phase and start time', () => {
  it.each([
    { name: 'pendingWhileNoTaskHasStarted', tasks: [task('a', 'STAGING'), task('b', 'STARTING')], phase: 'Pending', startTime: undefined },
    { name: 'runningOnceATaskHasStartedAt', tasks: [task('a', 'STAGING'), task('b', 'RUNNING', { started: T + 5 * SEC })], phase: 'Running', startTime: iso(T + 5 * SEC) },
    { name: 'startTimeIsTheEarliestStartedAt', tasks: [task('a', 'RUNNING', { started: T + 9 * SEC }), task('b', 'RUNNING', { started: T + 4 * SEC }), task('c', 'RUNNING', { started: T + 6 * SEC })], phase: 'Running', startTime: iso(T + 4 * SEC) },
    { name: 'startTimeCountsEndedTasks', tasks: [task('a', 'FINISHED', { started: T + 2 * SEC }), task('b', 'RUNNING', { started: T + 7 * SEC })], phase: 'Running', startTime: iso(T + 2 * SEC) },
  ])('$name', ({ tasks, phase, startTime }) => {
    const p = plan(runOf({ completions: 3, parallelism: 3 }), tasks, T + 20 * SEC);
    expect(p.status.phase).toBe(phase);
    expect(p.status.startTime).toBe(startTime);
  });

  it('keepsTheRecordedStartTime', () => {
    const run = runOf({ completions: 2, parallelism: 2 }, { status: { phase: 'Running', startTime: iso(T + 3 * SEC) } });
    const p = plan(run, [task('b', 'RUNNING', { started: T + 8 * SEC })], T + 20 * SEC);
    expect(p.status.startTime).toBe(iso(T + 3 * SEC));
  });
});

describe('planRun: retries and backoff', () => {
  // seconds 10, factor 2: after the 1st failure 10 s, after the 2nd 20 s.
  const backoff = { seconds: 10, factor: 2, maxLaunchDelaySeconds: 300 };
  const F1 = T + 30 * SEC;

  it('relaunchesAfterTheBackoffAndFailsWhenRetriesAreExhausted', () => {
    const run = runOf({ retries: 2, backoff });
    let launched = 0;
    const start = plan(run, [], T);
    launched += start.launch;
    expect(start.launch).toBe(1);

    const t1 = task('t1', 'FAILED', { finished: F1 });
    const waiting = plan(run, [t1], F1 + 5 * SEC);
    expect(waiting).toMatchObject({ launch: 0, wakeAt: F1 + 10 * SEC });
    expect(waiting.waiting).toMatch(/backing off after 1 failure/);
    expect(waiting.status).toMatchObject({ failed: 1, phase: 'Running', lastFailure: { task: 't1', state: 'FAILED', exitCode: 1 } });
    expect(plan(run, [t1], F1 + 10 * SEC - 1).launch).toBe(0);
    const second = plan(run, [t1], F1 + 10 * SEC);
    expect(second).toMatchObject({ launch: 1, attempt: 2 });
    launched += second.launch;

    const F2 = F1 + 40 * SEC;
    const t2 = task('t2', 'FAILED', { finished: F2 });
    expect(plan(run, [t1, t2], F2 + 19 * SEC)).toMatchObject({ launch: 0, wakeAt: F2 + 20 * SEC });
    const third = plan(run, [t1, t2], F2 + 20 * SEC);
    expect(third).toMatchObject({ launch: 1, attempt: 3 });
    launched += third.launch;

    const t3 = task('t3', 'FAILED', { finished: F2 + 60 * SEC });
    const end = plan(run, [t1, t2, t3], F2 + 61 * SEC);
    expect(end.finished).toMatchObject({ phase: 'Failed', reason: 'RetriesExhausted' });
    expect(end.finished?.message).toMatch(/3 task\(s\) failed, more than retries \(2\)/);
    expect(end.status).toMatchObject({ phase: 'Failed', reason: 'RetriesExhausted', failed: 3, completionTime: iso(F2 + 61 * SEC) });
    expect(end.launch).toBe(0);
    expect(end.kill).toEqual([]);
    expect(launched).toBe(3);
  });

  it.each([
    { name: 'firstFailureWaitsSeconds', failures: 1, wait: 10 },
    { name: 'secondFailureWaitsSecondsTimesFactor', failures: 2, wait: 20 },
    { name: 'thirdFailureWaitsSecondsTimesFactorSquared', failures: 3, wait: 40 },
    { name: 'theDelayIsCapped', failures: 3, wait: 25, cap: 25 },
  ])('$name', ({ failures, wait, cap }) => {
    const run = runOf({ retries: 5, backoff: { ...backoff, ...(cap ? { maxLaunchDelaySeconds: cap } : {}) } });
    // Failures finished 1 s apart; the delay counts from the last one.
    const tasks = Array.from({ length: failures }, (_, i) => task(`t${i}`, 'FAILED', { finished: F1 + i * SEC }));
    const last = F1 + (failures - 1) * SEC;
    expect(plan(run, tasks, last + wait * SEC - 1)).toMatchObject({ launch: 0, wakeAt: last + wait * SEC });
    expect(plan(run, tasks, last + wait * SEC).launch).toBe(1);
  });

  it('aFailureLongAgoDoesNotDelayTheRelaunch', () => {
    const run = runOf({ retries: 2, backoff });
    const p = plan(run, [task('t1', 'FAILED', { finished: F1 })], F1 + 3600 * SEC);
    expect(p.launch).toBe(1);
    expect(p.wakeAt).toBeUndefined();
  });

  it.each(['ERROR', 'LOST', 'KILLED'] as const)('a%sTaskUsesARetry', (state) => {
    const run = runOf({ retries: 0 });
    expect(plan(run, [task('t1', state)], T + 60 * SEC).finished).toMatchObject({ phase: 'Failed', reason: 'RetriesExhausted' });
  });

  it('exhaustedRetriesKillTheOtherLiveTasksAsRunFinished', () => {
    const run = runOf({ completions: 2, parallelism: 2, retries: 0 });
    const p = plan(run, [task('a', 'FAILED'), task('b', 'RUNNING')], T + 60 * SEC);
    expect(p.finished?.reason).toBe('RetriesExhausted');
    expect(kills(p)).toEqual(['b:RunFinished']);
  });
});

describe('planRun: deadlines and replacement', () => {
  it.each([
    { name: 'activeDeadlineExceededFailsAndKillsLiveTasks', spec: { activeDeadlineSeconds: 60 }, now: T + 60 * SEC,
      tasks: [task('a', 'RUNNING'), task('b', 'STAGING'), task('c', 'FAILED')], phase: 'Failed', reason: 'DeadlineExceeded', kills: ['a:DeadlineExceeded', 'b:DeadlineExceeded'] },
    { name: 'startingDeadlineWithNoTaskStartedIsMissedAndKillsPending', spec: { startingDeadlineSeconds: 30 }, now: T + 30 * SEC,
      tasks: [task('a', 'STAGING')], phase: 'Missed', reason: 'StartingDeadlineExceeded', kills: ['a:Missed'] },
    { name: 'startingDeadlineCountsFromTheScheduledTime', spec: { startingDeadlineSeconds: 30 }, now: T + 10 * SEC, scheduled: T - 20 * SEC,
      tasks: [], phase: 'Missed', reason: 'StartingDeadlineExceeded', kills: [] },
  ])('$name', ({ spec, now, tasks, phase, reason, kills: k, scheduled }) => {
    const p = plan(runOf({ completions: 3, parallelism: 3, ...spec }, { scheduled }), tasks, now);
    expect(p.finished).toMatchObject({ phase, reason });
    expect(p.status).toMatchObject({ phase, reason, completionTime: iso(now) });
    expect(p.launch).toBe(0);
    expect(kills(p)).toEqual(k);
  });

  it.each([
    { name: 'beforeTheActiveDeadlineTheRunContinuesAndWakesAtIt', spec: { activeDeadlineSeconds: 60 }, tasks: [task('a', 'RUNNING')], now: T + 59 * SEC, wakeAt: T + 60 * SEC },
    { name: 'beforeTheStartingDeadlineTheRunWaitsAndWakesAtIt', spec: { startingDeadlineSeconds: 30 }, tasks: [task('a', 'STAGING')], now: T + 29 * SEC, wakeAt: T + 30 * SEC },
    { name: 'aStartedRunIsNeverMissed', spec: { startingDeadlineSeconds: 30 }, tasks: [task('a', 'RUNNING', { started: T + 40 * SEC })], now: T + 50 * SEC, wakeAt: undefined },
    { name: 'aManualRunIsNeverMissed', spec: { startingDeadlineSeconds: 30 }, tasks: [task('a', 'STAGING')], now: T + 3600 * SEC, wakeAt: undefined, trigger: 'Manual' as const },
  ])('$name', ({ spec, tasks, now, wakeAt, trigger }) => {
    const p = plan(runOf(spec, { trigger }), tasks, now);
    expect(p.finished).toBeUndefined();
    expect(p.kill).toEqual([]);
    expect(p.wakeAt).toBe(wakeAt);
  });

  it('replacedFailsAsReplacedAndKillsLiveTasks', () => {
    const p = plan(runOf({ completions: 2, parallelism: 2 }), [task('a', 'RUNNING'), task('b', 'FINISHED')], T + 20 * SEC, { replaced: true });
    expect(p.finished).toMatchObject({ phase: 'Failed', reason: 'Replaced' });
    expect(p.status).toMatchObject({ phase: 'Failed', reason: 'Replaced' });
    expect(kills(p)).toEqual(['a:Replaced']);
    expect(p.launch).toBe(0);
  });
});

describe('planRun: a finished run', () => {
  it.each(['Succeeded', 'Failed', 'Missed'] as const)('a%sRunKillsALiveTaskLeftAndKeepsItsPhase', (phase) => {
    const status: JobRunStatus = { phase, reason: 'X', message: 'm', completionTime: iso(T + 30 * SEC) };
    const p = plan(runOf({}, { status }), [task('a', 'FINISHED'), task('left', 'RUNNING')], T + 40 * SEC);
    expect(kills(p)).toEqual(['left:RunFinished']);
    expect(p.launch).toBe(0);
    expect(p.finished).toBeUndefined();
    expect(p.status).toMatchObject({ phase, reason: 'X', message: 'm', completionTime: iso(T + 30 * SEC) });
  });

  it('aFinishedRunIsNotReplacedOrDeadlined', () => {
    const status: JobRunStatus = { phase: 'Succeeded', reason: 'Completed', completionTime: iso(T + 30 * SEC) };
    const p = plan(runOf({ activeDeadlineSeconds: 1 }, { status }), [], T + 3600 * SEC, { replaced: true });
    expect(p).toMatchObject({ launch: 0, kill: [] });
    expect(p.status.phase).toBe('Succeeded');
  });
});

describe('planRun: gang', () => {
  const gang = (o: Partial<JobSpec> = {}) => runOf({ completions: 4, parallelism: 4, gang: true, retries: 1, backoff: { seconds: 10, factor: 2, maxLaunchDelaySeconds: 300 }, ...o });
  const members = (attempt: number, states: State[], o: TaskOpts = {}) => states.map((s, i) => task(`g${attempt}-${i}`, s, { attempt, ...o }));

  it('firstPlanLaunchesTheWholeGangAsAttempt1', () => {
    const p = plan(gang(), [], T);
    expect(p).toMatchObject({ launch: 4, gang: true, attempt: 1, kill: [] });
    expect(plan(gang(), [], T, { inflight: 4 })).toMatchObject({ launch: 0, gang: true });
  });

  it('succeedsWhenEveryMemberFinished', () => {
    const p = plan(gang(), members(1, ['FINISHED', 'FINISHED', 'FINISHED', 'FINISHED']), T + 60 * SEC);
    expect(p.finished).toMatchObject({ phase: 'Succeeded', reason: 'Completed' });
    expect(p.status.phase).toBe('Succeeded');
  });

  it.each([
    { name: 'waitsWhileTheGangRuns', states: ['RUNNING', 'RUNNING', 'FINISHED', 'RUNNING'] as State[], launch: 0, kills: [] as string[] },
    { name: 'aFailedMemberKillsTheOthersWithoutLaunching', states: ['FAILED', 'RUNNING', 'RUNNING', 'RUNNING'] as State[], launch: 0, kills: ['g1-1:GangMemberFailed', 'g1-2:GangMemberFailed', 'g1-3:GangMemberFailed'] },
    { name: 'aLostMemberBreaksTheAttemptToo', states: ['RUNNING', 'LOST', 'FINISHED', 'STAGING'] as State[], launch: 0, kills: ['g1-0:GangMemberFailed', 'g1-3:GangMemberFailed'] },
  ])('$name', ({ states, launch, kills: k }) => {
    const p = plan(gang(), members(1, states), T + 60 * SEC);
    expect(p.finished).toBeUndefined();
    expect(p.launch).toBe(launch);
    expect(kills(p)).toEqual(k);
  });

  it('relaunchesTheWholeGangAsTheNextAttemptAfterTheBackoff', () => {
    const ended = members(1, ['FAILED', 'KILLED', 'KILLED', 'KILLED'], { finished: T + 60 * SEC });
    const early = plan(gang(), ended, T + 65 * SEC);
    expect(early).toMatchObject({ launch: 0, gang: true, wakeAt: T + 70 * SEC, kill: [] });
    expect(early.finished).toBeUndefined();
    const p = plan(gang(), ended, T + 70 * SEC);
    expect(p).toMatchObject({ launch: 4, gang: true, attempt: 2, kill: [] });
  });

  it('failsWhenAttemptsExceedRetries', () => {
    const tasks = [
      ...members(1, ['FAILED', 'KILLED', 'KILLED', 'KILLED'], { finished: T + 60 * SEC }),
      ...members(2, ['KILLED', 'FAILED', 'KILLED', 'KILLED'], { finished: T + 120 * SEC }),
    ];
    const p = plan(gang({ retries: 1 }), tasks, T + 3600 * SEC);
    expect(p.finished).toMatchObject({ phase: 'Failed', reason: 'RetriesExhausted' });
    expect(p.launch).toBe(0);
    expect(p.kill).toEqual([]);
  });

  it('aSecondAttemptSucceedsAfterAFailedFirst', () => {
    const tasks = [...members(1, ['FAILED', 'KILLED', 'KILLED', 'KILLED']), ...members(2, ['FINISHED', 'FINISHED', 'FINISHED', 'FINISHED'])];
    expect(plan(gang(), tasks, T + 3600 * SEC).finished).toMatchObject({ phase: 'Succeeded' });
  });

  it('aPartialGangIsBrokenAndItsMembersAreKilled', () => {
    // The master bound 3 of 4: nothing more is in flight.
    const p = plan(gang(), members(1, ['RUNNING', 'RUNNING', 'STAGING']), T + 60 * SEC);
    expect(p.launch).toBe(0);
    expect(kills(p)).toEqual(['g1-0:GangMemberFailed', 'g1-1:GangMemberFailed', 'g1-2:GangMemberFailed']);
    // While the 4th is still in flight it is not broken.
    const inflight = plan(gang(), members(1, ['RUNNING', 'RUNNING', 'STAGING']), T + 60 * SEC, { inflight: 1 });
    expect(inflight).toMatchObject({ launch: 0, kill: [] });
  });

  it('neverHasMoreThanOneAttemptLive', () => {
    // A broken attempt with a member still dying: no launch until it is gone.
    const p = plan(gang(), members(1, ['FAILED', 'KILLING', 'KILLED', 'KILLED'], { finished: T }), T + 3600 * SEC);
    expect(p.launch).toBe(0);
  });
});

describe('planRun: random task outcomes (non-gang)', () => {
  /**
   * Walks a run through random events: launches become tasks (STAGING), tasks start, finish or fail,
   * time moves. After every plan: live + inflight + launch ≤ parallelism, and the launches so far never
   * exceed completions + retries.
   */
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('neverExceedsParallelismOrRetriesWithSeed%i', (seed) => {
    const rnd = seededRandom(seed);
    const pick = (n: number) => Math.floor(rnd() * n);
    for (let walk = 0; walk < 25; walk++) {
      const completions = 1 + pick(6);
      const parallelism = 1 + pick(Math.min(4, completions));
      const retries = pick(4);
      let run = runOf({ completions, parallelism, retries, backoff: { seconds: pick(3), factor: 1.5, maxLaunchDelaySeconds: 5 } });
      const tasks: Task[] = [];
      let inflight = 0;
      let launched = 0;
      let now = T;
      let ended = false;
      for (let step = 0; step < 400 && !ended; step++) {
        const p = plan(run, tasks, now, { inflight });
        const live = tasks.filter((t) => !['FINISHED', 'FAILED', 'KILLED', 'ERROR', 'LOST'].includes(t.status.state ?? '')).length;
        expect(live + inflight + p.launch).toBeLessThanOrEqual(Math.min(parallelism, completions));
        inflight += p.launch;
        launched += p.launch;
        expect(launched).toBeLessThanOrEqual(completions + retries);
        for (const k of p.kill) {
          const t = tasks.find((x) => x.metadata.name === k.task)!;
          t.status = { ...t.status, state: 'KILLED', finishedAt: iso(now) };
        }
        run = written(run, p);
        if (p.finished) {
          ended = true;
          if (p.finished.phase === 'Succeeded') expect(tasks.filter((t) => t.status.state === 'FINISHED').length).toBe(completions);
          else expect(tasks.filter((t) => t.status.state !== 'FINISHED' && t.status.state !== 'KILLED').length).toBe(retries + 1);
          break;
        }
        // One random event.
        now += pick(3) * SEC;
        const liveTasks = tasks.filter((t) => ['STAGING', 'RUNNING'].includes(t.status.state ?? ''));
        const e = pick(4);
        if (e === 0 && inflight > 0) {
          inflight--;
          tasks.push(task(`t${tasks.length}`, 'STAGING', { created: now }));
        } else if (e === 1 && liveTasks.length) {
          const t = liveTasks[pick(liveTasks.length)];
          if (t.status.state === 'STAGING') t.status = { ...t.status, state: 'RUNNING', startedAt: iso(now) };
        } else if (e === 2 && liveTasks.length) {
          const t = liveTasks[pick(liveTasks.length)];
          const state: State = rnd() < 0.5 ? 'FINISHED' : (['FAILED', 'LOST', 'ERROR'] as const)[pick(3)];
          t.status = { ...t.status, state, finishedAt: iso(now), ...(t.status.startedAt ? {} : { startedAt: iso(now) }) };
        } else {
          now += 5 * SEC; // let a backoff pass
        }
      }
      expect(ended).toBe(true);
    }
  });
});
