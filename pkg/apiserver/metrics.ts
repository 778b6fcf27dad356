/**
 * API server metrics on a registry of its own (never prom-client's global one), so several
 * servers and tests in one process do not collide.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class ApiMetrics {
  readonly registry: Registry;
  readonly requestDuration: Histogram<'verb' | 'resource' | 'code'>;
  readonly requests: Counter<'verb' | 'resource' | 'code'>;
  readonly inflight: Gauge;
  readonly rejected: Counter;
  readonly limited: Counter<'limit'>;
  readonly watches: Gauge;
  readonly etcdDuration: Histogram<'operation'>;

  constructor(registry = new Registry()) {
    this.registry = registry;
    this.requestDuration = new Histogram({
      name: 'shoal_apiserver_request_duration_seconds',
      help: 'API request latency by verb, resource and response code (watches: time to the first byte).',
      labelNames: ['verb', 'resource', 'code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
    this.requests = new Counter({
      name: 'shoal_apiserver_requests_total',
      help: 'API requests by verb, resource and response code.',
      labelNames: ['verb', 'resource', 'code'],
      registers: [registry],
    });
    this.inflight = new Gauge({ name: 'shoal_apiserver_inflight_requests', help: 'Non-watch requests being served.', registers: [registry] });
    this.rejected = new Counter({ name: 'shoal_apiserver_rejected_requests_total', help: 'Requests answered 429 for want of an in-flight slot (--max-inflight, or the user\'s fair share of it).', registers: [registry] });
    this.limited = new Counter({
      name: 'shoal_apiserver_limited_requests_total',
      help: 'Requests refused by a fairness limit: max-inflight, inflight-fair-share, request-bodies-per-user, max-watches, max-watches-per-user (429), request-body-timeout (408).',
      labelNames: ['limit'],
      registers: [registry],
    });
    this.watches = new Gauge({ name: 'shoal_apiserver_watches', help: 'Open watch streams.', registers: [registry] });
    this.etcdDuration = new Histogram({
      name: 'shoal_etcd_request_duration_seconds',
      help: 'etcd request latency by operation, as seen by this component.',
      labelNames: ['operation'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    });
  }

  /** A hook for the store's `metrics` option. */
  storeObserver(): { observe(operation: string, seconds: number): void } {
    return { observe: (operation, seconds) => this.etcdDuration.observe({ operation }, seconds) };
  }
}
