/**
 * Certificates for tests that run the binaries as an operator would: one CA, the apiserver's
 * serving certificate and one per agent (CN = its node name), all for 127.0.0.1, made with the
 * same pki code `shoal dev` uses.
 */
import { join } from 'node:path';
import { ensureCa, issueCertificate, type CaFiles } from '../../pkg/util/pki';

export class TestPki {
  readonly ca: CaFiles;

  constructor(private readonly dir: string) {
    this.ca = ensureCa(join(dir, 'pki'), 'shoal-test-ca');
  }

  /** shoal-apiserver flags: HTTPS, and agents' logs read over verified HTTPS. */
  apiserverFlags(): string[] {
    const c = issueCertificate(this.ca, join(this.dir, 'pki'), 'apiserver', { commonName: 'shoal-apiserver', hosts: ['127.0.0.1', 'localhost'] });
    return ['--tls-cert-file', c.cert, '--tls-private-key-file', c.key, '--agent-ca-file', this.ca.cert];
  }

  /** shoal-agent flags: its endpoint over HTTPS with a certificate naming `node`. */
  agentFlags(node: string): string[] {
    const c = issueCertificate(this.ca, join(this.dir, 'pki'), `agent-${node}`, { commonName: node, hosts: ['127.0.0.1'] });
    return ['--tls-cert-file', c.cert, '--tls-private-key-file', c.key];
  }

  /** The CLI config entries: the https URL and the CA that verifies it. */
  cliConfig(apiPort: number): { server: string; 'certificate-authority': string } {
    return { server: `https://127.0.0.1:${apiPort}`, 'certificate-authority': this.ca.cert };
  }
}
