import { ManifestError, parseManifests } from '../../pkg/api/manifest';

const app = `# a comment
apiVersion: shoal/v1
kind: App
metadata:
  name: web
spec:
  instances: 3
  ports:
    - name: http
      hostPort: 0
    - {name: b, hostPort: 5}
---
---
kind: Job
`;

function errorOf(text: string): ManifestError {
  try {
    parseManifests(text, 'bad.yaml');
  } catch (err) {
    if (err instanceof ManifestError) return err;
    throw err;
  }
  throw new Error('expected a ManifestError');
}

describe('parseManifests', () => {
  it('skipsEmptyDocumentsAndNumbersTheRest', () => {
    const docs = parseManifests(app, 'app.yaml');
    expect(docs.map((d) => d.index)).toEqual([1, 3]);
    expect(docs[1].object).toEqual({ kind: 'Job' });
    expect(docs[1].line).toBe(14);
  });

  it('mapsFieldPathsToLines', () => {
    const [doc] = parseManifests(app, 'app.yaml');
    expect(doc.lineOf('metadata.name')).toBe(5);
    expect(doc.lineOf('spec.instances')).toBe(7);
    expect(doc.lineOf('spec.ports[0].hostPort')).toBe(10);
    expect(doc.lineOf('spec.ports[1].hostPort')).toBe(11);
  });

  it('fallsBackToTheNearestParentForMissingFields', () => {
    const [doc] = parseManifests(app, 'app.yaml');
    expect(doc.lineOf('spec.resources.cpus')).toBe(6);
    expect(doc.lineOf('nothing')).toBe(2); // the document's first line
  });

  it('parsesJson', () => {
    const [doc] = parseManifests('{"kind": "App",\n "spec": {"instances": 2}}', 'a.json');
    expect(doc.object).toEqual({ kind: 'App', spec: { instances: 2 } });
    expect(doc.lineOf('spec.instances')).toBe(2);
  });

  it('reportsSyntaxErrorsWithFileAndLine', () => {
    const err = errorOf('a: b\n  c: d\n');
    expect(err.message).toBe('bad.yaml:2: column 4: bad indentation of a mapping entry');
    expect(err.line).toBe(2);
  });

  it('refusesAliasesSoAYamlBombCannotExpand', () => {
    const bomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
      ...'bcdefghi'.split('').map((c, i) => `${c}: &${c} [${Array(9).fill('*' + 'abcdefghi'[i]).join(',')}]`)].join('\n');
    expect(errorOf(bomb).message).toMatch(/^bad\.yaml:2: column \d+: YAML aliases \(\*name\) are not allowed in manifests$/);
  });

  it('refusesDeepNestingWithAShortMessage', () => {
    const err = errorOf('['.repeat(5000) + ']'.repeat(5000));
    expect(err.message).toMatch(/^bad\.yaml:1: column \d+: nesting exceeded maxDepth \(64\)$/);
  });

  it('refusesDuplicateKeys', () => {
    expect(errorOf('a: 1\na: 2\n').message).toBe('bad.yaml:2: column 1: duplicated mapping key');
  });

  it('keepsProtoKeysAsPlainDataWithoutPollution', () => {
    const [doc] = parseManifests('__proto__: {polluted: 1}\nconstructor: {prototype: {polluted: 1}}\n', 'p.yaml');
    expect(Object.keys(doc.object as object)).toEqual(['__proto__', 'constructor']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
