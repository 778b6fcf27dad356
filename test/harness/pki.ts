/**
 * Certificates for tests that run the binaries as an operator would: one CA, the apiserver's
 * serving certificate and one per agent (CN = its node name), all for 127.0.0.1, made with the
 * same pki code `shoal dev` uses.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from 'js-yaml';
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

/** What a cluster of binaries in `dir` runs with: see {@link operatorFiles}. */
export interface OperatorFiles {
  pki: TestPki;
  /** The CLI's environment: SHOAL_CONFIG naming the config below, HOME the dir. */
  env: NodeJS.ProcessEnv;
  /** shoal-apiserver's flags but the etcd ones: token files, port, HTTPS and the agents' CA. */
  apiserverArgs: string[];
  /** The agents' --log-token-file (the apiserver's --agent-token-file). */
  agentTokenFile: string;
}

/**
 * Writes what an operator gives the binaries, as the e2e tests and the fault suite run them:
 * tokens.yaml (an admin with `adminToken`), the cluster-internal agent token, the CA and the
 * apiserver's certificate, and a CLI config.yaml (https server, its CA, the admin token).
 */
export function operatorFiles(dir: string, apiPort: number, tokens: { admin: string; agent: string }): OperatorFiles {
  writeFileSync(join(dir, 'tokens.yaml'), dump({ users: [{ name: 'admin', token: tokens.admin, roles: [{ namespace: '*', role: 'admin' }] }] }), { mode: 0o600 });
  const agentTokenFile = join(dir, 'agent-token');
  writeFileSync(agentTokenFile, `${tokens.agent}\n`, { mode: 0o600 });
  const pki = new TestPki(dir);
  writeFileSync(join(dir, 'config.yaml'), dump({ ...pki.cliConfig(apiPort), token: tokens.admin }), { mode: 0o600 });
  return {
    pki,
    env: { ...process.env, SHOAL_CONFIG: join(dir, 'config.yaml'), HOME: dir },
    apiserverArgs: ['--token-file', join(dir, 'tokens.yaml'), '--agent-token-file', agentTokenFile, '--port', String(apiPort), ...pki.apiserverFlags()],
    agentTokenFile,
  };
}
