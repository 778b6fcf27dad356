/**
 * Fairness limits of the API server: who gets an in-flight slot and who may open one more watch.
 * Pure decisions on counts (no I/O, no clock), tested with tables; the server keeps the counts
 * in a {@link UserCounts} per limit and asks before it serves.
 *
 * The model is a much reduced Kubernetes API Priority and Fairness (APF): a flow is one
 * authenticated user, there is one priority level, and there is no queueing (a request that
 * cannot be admitted gets 429 at once; our clients retry with back-off, as APF expects of its
 * clients too). Long-running requests (watches, followed logs) hold no in-flight slot, as in
 * APF; watches are capped by count instead, per user and per server.
 */

/** Limits on non-long-running requests being served at once. */
export interface InflightLimits {
  /** Slots of the whole server (`--max-inflight`). */
  capacity: number;
  /**
   * The last `headroom` slots go only to users below their fair share, so a user arriving at a
   * busy server finds a slot at once instead of racing the user who keeps it busy.
   */
  headroom: number;
}

/** Limits on open watch streams. */
export interface WatchLimits {
  /** Open watches of the whole server (`--max-watches`). */
  maxWatches: number;
  /** Open watches of one user (`--max-watches-per-user`). */
  maxWatchesPerUser: number;
}

/** Which limit refused a request (also a metric label). */
export type LimitName = 'max-inflight' | 'inflight-fair-share' | 'max-watches' | 'max-watches-per-user' | 'request-bodies-per-user';

/** The answer to "may this user have one more?". */
export type Decision =
  | { admit: true }
  | { admit: false; limit: LimitName; message: string };

/** What one user holds and what everyone holds. */
export interface Usage {
  /** Held by the user asking. */
  mine: number;
  /** Held by everyone, the asking user included. */
  total: number;
  /** Users holding at least one, the asking user included if it holds any. */
  users: number;
}

/** The headroom for a capacity: a tenth of it, at least one slot (none when there is one slot). */
export function defaultHeadroom(capacity: number): number {
  return capacity <= 1 ? 0 : Math.max(1, Math.floor(capacity / 10));
}

/**
 * The fair share of a user: the slots outside the headroom divided among the users holding slots
 * (counting the asking user), at least one.
 */
export function fairShare(l: InflightLimits, usersCounted: number): number {
  return Math.max(1, Math.floor((l.capacity - l.headroom) / Math.max(1, usersCounted)));
}

/**
 * May `user` take one more in-flight slot? Three rules, in order:
 * 1. every slot taken: no (429 whoever asks);
 * 2. more free slots than the headroom: yes (anyone may borrow unused capacity);
 * 3. inside the headroom: only a user holding less than its fair share.
 * A single user alone therefore gets up to capacity − headroom; a second user is served at once
 * from the headroom and the first is refused until it is back under its share.
 */
export function decideInflight(user: string, u: Usage, l: InflightLimits): Decision {
  if (u.total >= l.capacity) {
    return { admit: false, limit: 'max-inflight', message: `too many requests in flight (${u.total}, --max-inflight=${l.capacity}); retry after 1 second` };
  }
  if (l.capacity - u.total > l.headroom) return { admit: true };
  const share = fairShare(l, u.users + (u.mine === 0 ? 1 : 0));
  if (u.mine < share) return { admit: true };
  return {
    admit: false,
    limit: 'inflight-fair-share',
    message: `user "${user}" has ${u.mine} requests in flight, its fair share of ${share} while the server is busy (${u.total} of --max-inflight=${l.capacity} in flight for ${u.users} user(s)); retry after 1 second`,
  };
}

/** May `user` open one more watch? The user's own cap first (its message names the user's limit). */
export function decideWatch(user: string, u: Usage, l: WatchLimits): Decision {
  if (u.mine >= l.maxWatchesPerUser) {
    return { admit: false, limit: 'max-watches-per-user', message: `user "${user}" has ${u.mine} open watches, the limit per user (--max-watches-per-user=${l.maxWatchesPerUser}); close some or retry later` };
  }
  if (u.total >= l.maxWatches) {
    return { admit: false, limit: 'max-watches', message: `too many open watches on this apiserver (${u.total}, --max-watches=${l.maxWatches}); retry later` };
  }
  return { admit: true };
}

/**
 * May `user` start receiving one more request body? At most `maxPerUser` at once (bodies are
 * buffered up to the body limit each until parsed, so this bounds what one user's stalled uploads hold).
 */
export function decideBodyRead(user: string, u: Usage, maxPerUser: number): Decision {
  if (u.mine < maxPerUser) return { admit: true };
  return { admit: false, limit: 'request-bodies-per-user', message: `user "${user}" has ${u.mine} request bodies arriving at once (as many as --max-inflight); retry after 1 second` };
}

/**
 * Counts per user and in total, with exactly one take/release pair. A user's entry disappears at
 * zero, so the map holds only users who hold something (its size is `users` of {@link Usage}).
 */
export class UserCounts {
  private readonly byUser = new Map<string, number>();
  private sum = 0;

  /** What `user` holds and what everyone holds. */
  usage(user: string): Usage {
    return { mine: this.byUser.get(user) ?? 0, total: this.sum, users: this.byUser.size };
  }

  get total(): number {
    return this.sum;
  }

  /** Takes one for `user`; returns the release, which does something only the first time it is called. */
  take(user: string): () => void {
    this.byUser.set(user, (this.byUser.get(user) ?? 0) + 1);
    this.sum++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.byUser.get(user) ?? 1) - 1;
      if (n > 0) this.byUser.set(user, n);
      else this.byUser.delete(user);
      this.sum--;
    };
  }
}
