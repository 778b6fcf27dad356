import { matchesSelector, parseSelector, SelectorError } from '../../pkg/api/labels';

const labels = { app: 'web', tier: 'frontend', 'shoal.dev/owner': 'ops' };

describe('label selectors', () => {
  it.each([
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app=api', false],
    ['app!=api', true],
    ['missing!=x', true],
    ['app in (web, api)', true],
    ['app notin (web)', false],
    ['tier', true],
    ['!tier', false],
    ['!missing', true],
    ['app=web,tier=frontend', true],
    ['app=web,tier=backend', false],
    ['shoal.dev/owner=ops', true],
    ['app in (api,db),tier', false],
  ])('%s → %s', (selector, expected) => {
    expect(matchesSelector(parseSelector(selector), labels)).toBe(expected);
  });

  it.each(['app=(', 'app in (a', 'a b c', 'app=web,', 'bad key=1', 'a=b c'])('rejects %s', (s) => {
    expect(() => parseSelector(s)).toThrow(SelectorError);
  });

  it('treatsMissingLabelsAsEmpty', () => {
    expect(matchesSelector(parseSelector('!a'), undefined)).toBe(true);
    expect(matchesSelector(parseSelector('a'), undefined)).toBe(false);
  });

  it('doesNotMatchInheritedProperties', () => {
    expect(matchesSelector(parseSelector('constructor'), {})).toBe(false);
  });
});
