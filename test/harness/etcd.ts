/** Helpers for tests that use the etcd started by the jest global setup. */
import { randomBytes } from 'node:crypto';

/** The shared test etcd's client URL. Throws when the global setup did not run. */
export function testEtcdEndpoint(): string {
  const endpoint = process.env.SHOAL_TEST_ETCD;
  if (!endpoint) throw new Error('SHOAL_TEST_ETCD is not set: run tests through jest (test/harness/global-setup.ts starts etcd)');
  return endpoint;
}

/**
 * A key prefix no other test uses, like `/t-1a2b3c4d5e6f/`. Tests share one etcd, so each keeps
 * its keys under its own prefix and never sees another test's writes.
 */
export function uniquePrefix(): string {
  return `/t-${randomBytes(6).toString('hex')}/`;
}
