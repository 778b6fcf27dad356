/**
 * Process warnings Shoal cannot act on, kept off users' terminals.
 *
 * Node warns (DEP0123, "Setting the TLS ServerName to an IP address is not permitted by RFC
 * 6066") on a TLS connection whose servername is an IP address, and grpc-js (under etcd3) sets it
 * to the endpoint's host, with or without `grpc.ssl_target_name_override`: every component that
 * reached etcd at `https://127.0.0.1:…` printed it, `shoal dev` and `make demo` included. The
 * certificate is still verified against the IP address (etcd's certificates name it); only the
 * SNI extension is left out, which etcd does not use.
 */

let installed = false;

/** Drops DEP0123 and hands every other warning to Node's own listeners (printing as before). Idempotent. */
export function ignoreIpServernameWarning(): void {
  if (installed) return;
  installed = true;
  const others = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if ((warning as Error & { code?: string }).code === 'DEP0123') return;
    for (const listener of others) listener(warning);
  });
}
