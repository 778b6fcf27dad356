/** The store's public surface: the Store interface, its typed errors and both implementations. */
export * from './types';
export * from './errors';
export { EtcdStore } from './etcd';
export type { EtcdStoreOptions, EtcdStoreClientOptions, StoreMetrics, StoreOperation } from './etcd';
export { MemoryStore } from './memory';
export { MAX_TXN_OPS } from './validate';
