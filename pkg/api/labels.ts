/**
 * Kubernetes label selectors: `a=b,c!=d,e in (x,y),f notin (z),g,!h`. Every requirement must hold.
 */
export type Requirement =
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!exists' };

/** A parsed selector; an empty list matches everything. */
export type Selector = Requirement[];

/** A selector that cannot be parsed; the message says where. */
export class SelectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SelectorError';
  }
}

const KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** Splits on commas that are not inside parentheses. */
function splitTerms(s: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')') depth--;
    else if (s[i] === ',' && depth === 0) {
      terms.push(s.slice(start, i));
      start = i + 1;
    }
    if (depth < 0) throw new SelectorError(`unbalanced ')' in label selector "${s}"`);
  }
  if (depth !== 0) throw new SelectorError(`unbalanced '(' in label selector "${s}"`);
  terms.push(s.slice(start));
  return terms.map((t) => t.trim());
}

function checkKey(key: string, term: string): string {
  if (!KEY.test(key) || key.length > 317) throw new SelectorError(`invalid label key "${key}" in "${term}"`);
  return key;
}

function checkValue(value: string, term: string): string {
  if (!VALUE.test(value) || value.length > 63) throw new SelectorError(`invalid label value "${value}" in "${term}"`);
  return value;
}

function parseTerm(term: string): Requirement {
  const set = /^(\S+)\s+(in|notin)\s*\((.*)\)$/.exec(term);
  if (set) {
    const values = set[3].split(',').map((v) => checkValue(v.trim(), term));
    return { key: checkKey(set[1], term), op: set[2] as 'in' | 'notin', values };
  }
  const eq = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term);
  if (eq) {
    const value = checkValue(eq[3], term);
    return { key: checkKey(eq[1], term), op: eq[2] === '!=' ? 'notin' : 'in', values: [value] };
  }
  if (term.startsWith('!')) return { key: checkKey(term.slice(1).trim(), term), op: '!exists' };
  return { key: checkKey(term, term), op: 'exists' };
}

/** Parses a selector string; throws SelectorError naming the bad term. */
export function parseSelector(s: string | undefined): Selector {
  if (!s || !s.trim()) return [];
  return splitTerms(s).map((term) => {
    if (!term) throw new SelectorError(`empty requirement in label selector "${s}"`);
    return parseTerm(term);
  });
}

/** True when the labels satisfy every requirement. */
export function matchesSelector(selector: Selector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return selector.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    switch (r.op) {
      case 'exists':
        return has;
      case '!exists':
        return !has;
      case 'in':
        return has && r.values.includes(l[r.key]);
      case 'notin':
        return !has || !r.values.includes(l[r.key]);
    }
  });
}
