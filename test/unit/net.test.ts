/** freePorts: distinct ports, never one another process was handed a moment ago. */
import { claimPort, ephemeralRange, freePorts, RESERVATION_MS } from '../../pkg/util/net';

describe('freePorts', () => {
  it('returns distinct ports, none of them handed out again by a later call', async () => {
    const first = await freePorts(5);
    const second = await freePorts(5);
    expect(new Set(first).size).toBe(5);
    expect(new Set([...first, ...second]).size).toBe(10);
  });

  it('claims a port for RESERVATION_MS: a fresh claim is refused, a stale one taken over', () => {
    const port = 100_000 + Math.floor(Math.random() * 1_000_000); // a name only: no real port is touched
    const now = Date.now();
    expect(claimPort(port, now)).toBe(true);
    expect(claimPort(port, now)).toBe(false);
    expect(claimPort(port, now + RESERVATION_MS + 1000)).toBe(true);
    expect(claimPort(port)).toBe(false); // the takeover renewed the claim
  });

  it('hands out ports below the ephemeral range, which outgoing connections never take', async () => {
    const [low] = ephemeralRange();
    const ports = await freePorts(20);
    for (const p of ports) expect(p).toBeLessThan(low);
  });
});
