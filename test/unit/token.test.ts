import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTokenFile } from '../../pkg/util/token';

it('readsATrimmedTokenAndRefusesAnEmptyFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-token-'));
  try {
    writeFileSync(join(dir, 't'), '  secret-0123456789\n');
    expect(readTokenFile(join(dir, 't'), '--log-token-file')).toBe('secret-0123456789');
    writeFileSync(join(dir, 'empty'), '\n');
    expect(() => readTokenFile(join(dir, 'empty'), '--agent-token-file')).toThrow(`--agent-token-file ${join(dir, 'empty')} is empty`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
