/** The agent as a library: one Agent, or an AgentHost of many hollow ones. */
export { Agent, type AgentOptions } from './agent';
export { AgentHost, type AgentHostOptions } from './host';
export { SharedLease, perAgentLeases, type AgentLease, type LeaseProvider } from './leases';
export type { TaskRef } from './status';
export type { Assignment } from './assignments';
export * from './config';
export { startAgent, type AgentHandle, type StartAgentOptions } from './start';
