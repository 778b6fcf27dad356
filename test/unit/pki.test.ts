import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureCa, issueCertificate, readPem, subjectAltName } from '../../pkg/util/pki';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-pki-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const text = (cert: string) => execFileSync('openssl', ['x509', '-in', cert, '-noout', '-text'], { encoding: 'utf8' });

describe('pki', () => {
  it('makesACaAndAServerCertificateATlsClientTrusts', async () => {
    const ca = ensureCa(join(dir, 'pki'));
    const server = issueCertificate(ca, join(dir, 'pki'), 'apiserver', { commonName: 'shoal-apiserver', hosts: ['localhost', '127.0.0.1'] });
    expect(statSync(ca.key).mode & 0o777).toBe(0o600);
    expect(statSync(server.key).mode & 0o777).toBe(0o600);
    expect(text(server.cert)).toMatch(/IP Address:127\.0\.0\.1, DNS:localhost/);
    const srv = createServer({ cert: readFileSync(server.cert), key: readFileSync(server.key) }, (s) => s.end('hi'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    const said = await new Promise<string>((resolve, reject) => {
      const c = connect({ host: '127.0.0.1', port, ca: readFileSync(ca.cert) }, () => c.once('data', (d) => resolve(String(d))));
      c.once('error', reject);
    });
    expect(said).toBe('hi');
    // A client that does not trust the CA refuses it.
    const refused = await new Promise<string>((resolve) => {
      const c = connect({ host: '127.0.0.1', port }, () => resolve('connected'));
      c.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    expect(refused).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    srv.close();
  });

  it('keepsAValidCertificateAndRemakesOneForOtherHosts', () => {
    const ca = ensureCa(dir);
    const a = issueCertificate(ca, dir, 'etcd', { commonName: 'etcd', hosts: ['127.0.0.1'] });
    const first = readFileSync(a.cert, 'utf8');
    issueCertificate(ca, dir, 'etcd', { commonName: 'etcd', hosts: ['127.0.0.1'] });
    expect(readFileSync(a.cert, 'utf8')).toBe(first);
    expect(readFileSync(ensureCa(dir).cert, 'utf8')).toBe(readFileSync(ca.cert, 'utf8'));
    issueCertificate(ca, dir, 'etcd', { commonName: 'etcd', hosts: ['127.0.0.1', 'etcd.local'] });
    expect(readFileSync(a.cert, 'utf8')).not.toBe(first);
    expect(text(a.cert)).toMatch(/DNS:etcd\.local/);
  });

  it('makesClientCertificatesWithTheirNameAndRefusesBadNames', () => {
    const ca = ensureCa(dir);
    const c = issueCertificate(ca, dir, 'agent-n1', { commonName: 'n1', organization: 'shoal:agents', usage: 'client' });
    expect(text(c.cert)).toMatch(/Subject: CN ?= ?n1, O ?= ?shoal:agents/);
    expect(text(c.cert)).toMatch(/TLS Web Client Authentication/);
    expect(text(c.cert)).not.toMatch(/TLS Web Server Authentication/);
    expect(() => issueCertificate(ca, dir, '../x', { commonName: 'x' })).toThrow(/certificate name/);
  });

  it('namesTheFlagOfAMissingOrNonPemFile', () => {
    expect(() => readPem(join(dir, 'nope.crt'), '--tls-cert-file')).toThrow(`--tls-cert-file ${join(dir, 'nope.crt')}: no such file`);
    const ca = ensureCa(dir);
    expect(readPem(ca.cert, '--x').toString()).toMatch(/BEGIN CERTIFICATE/);
    expect(() => readPem(join(dir, 'ca.srl'), '--x')).toThrow();
    expect(subjectAltName(['a.b', '10.0.0.1', '::1'])).toBe('DNS:a.b,IP:10.0.0.1,IP:::1');
  });
});
