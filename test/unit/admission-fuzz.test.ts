/**
 * Property-based fuzzing of admission (fast-check): arbitrary values and mutations of valid
 * manifests (manifests/examples and fixtures of every kind) must come back admitted or refused
 * with field causes, never as an exception; an admitted object must be what the apiserver can
 * store (JSON, within its size limit) and admitted again unchanged. Seeded and bounded; a failure
 * prints the seed and the shrunk input. SHOAL_FUZZ_SEED and SHOAL_FUZZ_RUNS override both.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { loadAll } from 'js-yaml';
import { countedObjectBytes, maxObjectBytes } from '../../pkg/api/limits';
import { admit, formatCauses, type AdmitResult } from '../../pkg/api/validation';
import { FUZZ, fuzzValue, mutationsOf, applyMutations, seedObjects } from '../harness/fuzz';

const EXAMPLES = join(__dirname, '../../manifests/examples');
const examples = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => loadAll(readFileSync(join(EXAMPLES, f), 'utf8')) as unknown[])
  .filter((d) => d !== null && d !== undefined);
const seeds = [...examples, ...seedObjects()];

/** A fast canonical form for "unchanged" (jest's toEqual takes seconds on 2,000-item arrays). */
function snapshot(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? `#${x}` : x instanceof Date ? `#date:${x.getTime()}` : x));
}

function fail(message: string): never {
  throw new Error(message);
}

/** What every answer of admission must look like, whatever the input. */
function checkShape(r: AdmitResult): void {
  if (r.ok) {
    if (typeof r.object.kind !== 'string' || r.kind.kind !== r.object.kind) fail(`admitted without a kind: ${r.kind.kind}`);
    return;
  }
  if (!r.causes.length) fail('refused without a cause');
  for (const c of r.causes) {
    if (typeof c.field !== 'string' || typeof c.message !== 'string' || !c.message) fail(`bad cause ${JSON.stringify(c)}`);
  }
  formatCauses(r.causes);
}

/** An admitted object is JSON as it is, within its size limit, and a fixpoint of admission. */
function checkAdmitted(r: AdmitResult): void {
  if (!r.ok) return;
  const encoded = JSON.stringify(r.object);
  if (JSON.stringify(JSON.parse(encoded)) !== encoded) fail('admitted an object JSON cannot carry'); // -0 is 0 both ways
  if (countedObjectBytes(r.object) > maxObjectBytes(r.object.kind)) fail(`admitted over the size limit: ${countedObjectBytes(r.object)} bytes`);
  const again = admit(JSON.parse(encoded));
  if (!again.ok) fail(`admitted, then refused when sent again: ${formatCauses(again.causes)}`);
  if (JSON.stringify(again.object) !== encoded) fail(`admitted again differently: ${encoded.slice(0, 200)}`);
}

function admitChecked(input: unknown): AdmitResult {
  const before = snapshot(input);
  const r = admit(input);
  if (snapshot(input) !== before) fail('admission modified its input');
  checkShape(r);
  checkAdmitted(r);
  return r;
}

describe('admission fuzzing', () => {
  it('admitsEverySeedUnchanged', () => {
    for (const s of seeds) {
      const r = admitChecked(s);
      if (!r.ok) throw new Error(`seed ${JSON.stringify(s).slice(0, 80)} refused: ${formatCauses(r.causes)}`);
    }
  });

  it('answersArbitraryValuesWithAResultNeverAnException', () => {
    fc.assert(fc.property(fuzzValue, (v) => void admitChecked(v)), FUZZ(300));
  });

  it('answersArbitraryObjectsOfAKnownKindWithAResult', () => {
    const kinds = ['App', 'Job', 'JobRun', 'Task', 'Node', 'Event', 'Framework'];
    const shaped = fc.record({
      apiVersion: fc.constantFrom('shoal/v1', 'v1', ''),
      kind: fc.constantFrom(...kinds),
      metadata: fc.oneof(fc.record({ name: fc.constantFrom('a', 'web', 'A', '-x', 'x'.repeat(64)) }), fuzzValue),
      spec: fuzzValue,
      status: fuzzValue,
    }, { requiredKeys: ['apiVersion', 'kind'] });
    fc.assert(fc.property(shaped, (v) => void admitChecked(v)), FUZZ(300));
  });

  it('answersMutatedManifestsWithAResult', () => {
    const mutated = fc.tuple(fc.constantFrom(...seeds), mutationsOf(4)).map(([seed, ms]) => applyMutations(seed, ms));
    fc.assert(fc.property(mutated, (v) => void admitChecked(v)), FUZZ(400));
  });
});
