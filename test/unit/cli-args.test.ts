import { parseCount, parseKindArgs, parseOutput } from '../../pkg/cli/args';
import { parseDeleteArgs } from '../../pkg/cli/commands/delete';
import { CliError } from '../../pkg/cli/errors';

const ref = (kindArg: string, name?: string) => {
  const r = parseKindArgs(kindArg, name);
  return { kind: r.kind.kind, name: r.name };
};

describe('kind and name arguments', () => {
  it.each([
    [['app'], { kind: 'App', name: undefined }],
    [['apps'], { kind: 'App', name: undefined }],
    [['App'], { kind: 'App', name: undefined }],
    [['apps', 'web'], { kind: 'App', name: 'web' }],
    [['app/web'], { kind: 'App', name: 'web' }],
    [['no'], { kind: 'Node', name: undefined }],
    [['node/n1'], { kind: 'Node', name: 'n1' }],
    [['ev'], { kind: 'Event', name: undefined }],
    [['tasks', 'web-1'], { kind: 'Task', name: 'web-1' }],
  ])('%j', (args, expected) => {
    expect(ref(args[0], args[1])).toEqual(expected);
  });

  it('rejectsUnknownKindsListingTheKnownOnes', () => {
    expect(() => parseKindArgs('pods')).toThrow(
      new CliError('unknown kind "pods": known kinds are apps (app), jobs (job), jobruns (jobrun, jr), frameworks (framework, fw), tasks (task), nodes (node, no), events (event, ev)'),
    );
    expect(() => parseKindArgs('pod/web')).toThrow(/unknown kind "pod"/);
  });

  it('rejectsBothFormsAtOnceAndAnEmptyName', () => {
    expect(() => parseKindArgs('app/web', 'api')).toThrow(/no need to give a name as a separate argument/);
    expect(() => parseKindArgs('app/')).toThrow(/missing name in "app\/"/);
  });

  it('parsesDeleteArguments', () => {
    const ns = () => 'default';
    expect(parseDeleteArgs(['app', 'a', 'b'], ns).map((t) => `${t.kind.kind}/${t.namespace}/${t.name}`)).toEqual(['App/default/a', 'App/default/b']);
    expect(parseDeleteArgs(['app/a', 'node/n1'], ns).map((t) => `${t.kind.kind}/${t.namespace}/${t.name}`)).toEqual(['App/default/a', 'Node/undefined/n1']);
    expect(() => parseDeleteArgs(['app'], ns)).toThrow('must specify a name: shoal delete app NAME');
    expect(() => parseDeleteArgs(['app/a', 'b'], ns)).toThrow(/cannot mix/);
    expect(() => parseDeleteArgs(['pods', 'x'], ns)).toThrow(/unknown kind "pods"/);
  });
});

describe('flag values', () => {
  it('parsesOutputFormats', () => {
    expect(parseOutput(undefined)).toBe('table');
    expect(parseOutput('wide')).toBe('wide');
    expect(() => parseOutput('xml')).toThrow('unknown output format "xml": allowed formats are wide, json, yaml, name');
  });

  it('parsesCounts', () => {
    expect(parseCount('--instances', '3')).toBe(3);
    expect(() => parseCount('--instances', '-1')).toThrow('--instances must be a non-negative integer, not "-1"');
    expect(() => parseCount('--instances', '1.5')).toThrow(CliError);
  });
});
