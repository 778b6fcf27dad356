import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireServer, resolveConfig } from '../../pkg/cli/config';
import { CliError } from '../../pkg/cli/errors';

let home: string;
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-cli-config-'));
  home = join(dir, 'home');
  mkdirSync(join(home, '.shoal'), { recursive: true });
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function homeConfig(text: string): void {
  writeFileSync(join(home, '.shoal', 'config.yaml'), text);
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof CliError) return err.message;
    throw err;
  }
  throw new Error('expected a CliError');
}

describe('config precedence', () => {
  it('readsTheHomeConfigWhenNothingElseIsGiven', () => {
    homeConfig('server: http://127.0.0.1:6443/\ntoken: "abc"\nnamespace: team\n');
    expect(resolveConfig({}, {}, home)).toEqual({
      server: 'http://127.0.0.1:6443', token: 'abc', namespace: 'team', configFile: join(home, '.shoal', 'config.yaml'),
    });
  });

  it('prefersEnvOverTheFileAndFlagsOverEnv', () => {
    homeConfig('server: http://file:1\ntoken: file-token\n');
    const env = { SHOAL_SERVER: 'http://env:2', SHOAL_TOKEN: 'env-token' };
    expect(resolveConfig({}, env, home)).toMatchObject({ server: 'http://env:2', token: 'env-token' });
    expect(resolveConfig({ server: 'https://flag:3', token: 'flag-token' }, env, home)).toMatchObject({ server: 'https://flag:3', token: 'flag-token' });
    // each setting on its own: a flag for the server leaves the token to env
    expect(resolveConfig({ server: 'http://flag:3' }, env, home)).toMatchObject({ server: 'http://flag:3', token: 'env-token' });
    expect(resolveConfig({}, { SHOAL_SERVER: 'http://env:2' }, home)).toMatchObject({ server: 'http://env:2', token: 'file-token' });
  });

  it('usesTheConfigFlagOverSHOAL_CONFIGOverTheHomeFile', () => {
    homeConfig('server: http://home:1\n');
    const envFile = file('env.yaml', 'server: http://envfile:2\n');
    const flagFile = file('flag.yaml', 'server: http://flagfile:3\n');
    expect(resolveConfig({}, { SHOAL_CONFIG: envFile }, home).server).toBe('http://envfile:2');
    expect(resolveConfig({ config: flagFile }, { SHOAL_CONFIG: envFile }, home).server).toBe('http://flagfile:3');
  });

  it('treatsEmptyEnvironmentVariablesAsUnset', () => {
    homeConfig('server: http://home:1\n');
    expect(resolveConfig({}, { SHOAL_SERVER: '', SHOAL_CONFIG: '' }, home).server).toBe('http://home:1');
  });

  it('worksWithoutAnyConfigFileButRequiresAServer', () => {
    const config = resolveConfig({}, {}, join(dir, 'nohome'));
    expect(config).toEqual({ server: undefined, token: undefined, namespace: undefined, configFile: undefined });
    expect(errorOf(() => requireServer(config))).toBe('no server configured: run `shoal dev` or pass --server / set SHOAL_SERVER');
    expect(requireServer(resolveConfig({}, { SHOAL_SERVER: 'http://x:1' }, join(dir, 'nohome')))).toEqual({ server: 'http://x:1', token: undefined });
  });
});

describe('bad config files', () => {
  it('namesAMissingFileTheUserAskedFor', () => {
    const path = join(dir, 'nope.yaml');
    expect(errorOf(() => resolveConfig({ config: path }, {}, home))).toBe(`config file ${path}: no such file`);
  });

  it('namesTheFileAndLineOfBrokenYaml', () => {
    const path = file('broken.yaml', 'server: http://x:1\ntoken: [unclosed\n');
    expect(errorOf(() => resolveConfig({ config: path }, {}, home))).toMatch(new RegExp(`^invalid config file ${path}:\\d+: `));
  });

  it('rejectsWrongTypesAndNonMappings', () => {
    const numeric = file('num.yaml', 'server: http://x:1\ntoken: 12345678901234567890\n');
    expect(errorOf(() => resolveConfig({ config: numeric }, {}, home))).toBe(`invalid config file ${numeric}: token must be a string`);
    const list = file('list.yaml', '- a\n- b\n');
    expect(errorOf(() => resolveConfig({ config: list }, {}, home))).toBe(`invalid config file ${list}: expected a mapping with server and token`);
  });

  it('rejectsAServerThatIsNotAnHttpUrlSayingWhereItCameFrom', () => {
    homeConfig('server: 127.0.0.1:6443\n');
    expect(errorOf(() => resolveConfig({}, {}, home))).toBe(
      `invalid server URL "127.0.0.1:6443" in ${join(home, '.shoal', 'config.yaml')}: must start with http:// or https://`,
    );
    expect(errorOf(() => resolveConfig({ server: 'ftp://x' }, {}, home))).toBe('invalid server URL "ftp://x": must start with http:// or https://');
  });

  it('ignoresUnknownKeysSoNewerFilesStillWork', () => {
    homeConfig('server: http://x:1\nuser: admin\n');
    expect(resolveConfig({}, {}, home).server).toBe('http://x:1');
  });
});

describe('TLS trust', () => {
  const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

  it('readsTheCaNamedInTheFileRelativeToTheFile', () => {
    writeFileSync(join(home, '.shoal', 'ca.crt'), PEM);
    homeConfig('server: https://x:1\ntoken: t\ncertificate-authority: ca.crt\n');
    const config = resolveConfig({}, {}, home);
    expect(config.certificateAuthority).toBe(join(home, '.shoal', 'ca.crt'));
    expect(requireServer(config).tls).toEqual({ ca: Buffer.from(PEM) });
  });

  it('letsFlagsOverrideTheFilesCaOrSkipVerification', () => {
    const flagCa = file('other.crt', PEM);
    homeConfig('server: https://x:1\ncertificate-authority: /nope/ca.crt\ninsecure-skip-tls-verify: true\n');
    expect(requireServer(resolveConfig({ certificateAuthority: flagCa }, {}, home)).tls).toEqual({ ca: Buffer.from(PEM) });
    expect(requireServer(resolveConfig({ insecureSkipTlsVerify: true }, {}, home)).tls).toEqual({ insecureSkipVerify: true });
    expect(requireServer(resolveConfig({}, {}, home)).tls).toEqual({ insecureSkipVerify: true });
  });

  it('namesAMissingOrBrokenCaFileAndWrongTypes', () => {
    homeConfig('server: https://x:1\ncertificate-authority: /nope/ca.crt\n');
    expect(errorOf(() => requireServer(resolveConfig({}, {}, home)))).toBe('certificate-authority /nope/ca.crt: no such file');
    const notPem = file('junk.crt', 'hello');
    expect(errorOf(() => requireServer(resolveConfig({ certificateAuthority: notPem }, {}, home)))).toBe(`certificate-authority ${notPem}: not a PEM certificate`);
    homeConfig('server: https://x:1\ninsecure-skip-tls-verify: "yes"\n');
    expect(errorOf(() => resolveConfig({}, {}, home))).toBe(`invalid config file ${join(home, '.shoal', 'config.yaml')}: insecure-skip-tls-verify must be true or false`);
    homeConfig('server: https://x:1\ncertificate-authority: 3\n');
    expect(errorOf(() => resolveConfig({}, {}, home))).toMatch(/certificate-authority must be a file path$/);
  });

  it('trustsTheSystemCasWhenNothingIsSaid', () => {
    homeConfig('server: https://x:1\n');
    expect(requireServer(resolveConfig({}, {}, home)).tls).toBeUndefined();
  });
});
