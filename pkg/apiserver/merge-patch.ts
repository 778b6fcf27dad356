/**
 * JSON merge patch (RFC 7386). Builds new objects; never assigns user input onto live ones,
 * and the caller has already refused __proto__/constructor/prototype keys.
 */
const UNSAFE = new Set(['__proto__', 'constructor', 'prototype']);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Returns `target` with `patch` applied: null deletes a key, objects merge, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const base: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? target as Record<string, unknown> : {};
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(base)) out[k] = base[k];
  for (const [k, v] of Object.entries(patch as Record<string, Json>)) {
    if (UNSAFE.has(k)) continue;
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
