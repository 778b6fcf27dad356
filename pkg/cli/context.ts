/**
 * What every command's action starts from: global flags, configuration (read lazily, so purely
 * local work such as validating manifests needs no server), the namespace and the client.
 */
import type { Command } from 'commander';
import { DEFAULT_NAMESPACE, type KindInfo } from '../api/kinds';
import { HttpClient, type ResourceClient } from './client';
import { requireServer, resolveConfig, type ResolvedConfig } from './config';
import { eprintln, println, type CliIO } from './io';

/** Flags defined on the root command and available to every subcommand. */
export interface GlobalFlags {
  server?: string;
  token?: string;
  config?: string;
  namespace?: string;
  certificateAuthority?: string;
  insecureSkipTlsVerify?: boolean;
}

/** Per-invocation state shared by commands. */
export class CommandContext {
  private resolved?: ResolvedConfig;
  private http?: ResourceClient;

  constructor(readonly io: CliIO, readonly flags: GlobalFlags) {}

  /** Server, token and namespace from flags, env and the config file (read once). */
  config(): ResolvedConfig {
    this.resolved ??= resolveConfig(this.flags, this.io.env, this.io.homeDir);
    return this.resolved;
  }

  /** `-n`, else the config file's namespace, else `default`. */
  namespace(): string {
    return this.flags.namespace || this.config().namespace || DEFAULT_NAMESPACE;
  }

  /** The namespace to use for a kind: undefined for cluster-scoped kinds and for `-A`. */
  namespaceFor(kind: KindInfo, allNamespaces = false): string | undefined {
    return kind.namespaced && !allNamespaces ? this.namespace() : undefined;
  }

  /** The API client; throws the "no server configured" error when there is no server. */
  client(): ResourceClient {
    if (!this.http) {
      const server = requireServer(this.config());
      if (server.tls?.insecureSkipVerify) this.err('warning: insecure-skip-tls-verify: the server\'s certificate is not checked, so anyone on the network path can read your token');
      else if (server.server.startsWith('http://') && !isLoopback(server.server)) this.err(`warning: ${server.server} is plain HTTP: your token crosses the network in clear`);
      this.http = new HttpClient({ ...server, fetch: this.io.fetch, onInterrupt: this.io.onInterrupt });
    }
    return this.http;
  }

  /** A line on stdout. */
  out(line = ''): void {
    println(this.io, line);
  }

  /** A line on stderr. */
  err(line: string): void {
    eprintln(this.io, line);
  }
}

/** Builds the context for an action from its command (global flags via optsWithGlobals). */
export function contextOf(io: CliIO, command: Command): CommandContext {
  const o = command.optsWithGlobals<GlobalFlags>();
  return new CommandContext(io, {
    server: o.server, token: o.token, config: o.config, namespace: o.namespace,
    certificateAuthority: o.certificateAuthority, insecureSkipTlsVerify: o.insecureSkipTlsVerify,
  });
}

/** Whether a server URL names this machine (plain HTTP there exposes nothing on the network). */
function isLoopback(server: string): boolean {
  const host = new URL(server).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}
