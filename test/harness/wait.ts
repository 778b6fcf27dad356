/** Polling for integration tests: real components converge asynchronously. */

/**
 * Calls `fn` every `everyMs` until it returns something truthy, and returns that. On timeout,
 * throws naming what was awaited, the last value, and `explain()` when given.
 */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 10_000, opts: { everyMs?: number; explain?: () => Promise<string> } = {}): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T | undefined | false;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 50));
  }
  const extra = opts.explain ? `; ${await opts.explain()}` : '';
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)}${extra})`);
}

/** Polls until `check` passes (it throws until then); fails with its last error after `timeoutMs`. */
export async function eventually(check: () => void | Promise<void>, timeoutMs = 10_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  }
}

/**
 * As {@link until} for end-to-end checks through a CLI or HTTP: a check that throws (a command
 * failing while components start) counts as not yet, and its last error is in the timeout message.
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000, explain?: () => Promise<string>): Promise<T> {
  let lastError = '';
  return until(what, () => fn().catch((e: Error) => ((lastError = e.message), undefined)), ms, {
    everyMs: 200,
    explain: async () => `${lastError}\n${explain ? await explain() : ''}`,
  });
}
