/**
 * The subset of Mesos' v1 scheduler API that Shoal serves, in protobuf's JSON mapping of
 * include/mesos/v1/mesos.proto and include/mesos/v1/scheduler/scheduler.proto (Mesos 1.x):
 * field names in snake_case as in the .proto files, enums as their names, ids wrapped as
 * `{"value": "..."}`, `bytes` as base64 strings, `timestamp` a double in seconds. Names here
 * must match the protos exactly: clients written from Mesos' documentation send and expect
 * them. Optional fields are optional; fields Mesos has but Shoal neither reads nor writes are
 * left out (a client may still send them: unknown fields are ignored, as Mesos ignores them).
 */

// ---- ids ----

export interface FrameworkID { value: string }
export interface OfferID { value: string }
export interface AgentID { value: string }
export interface TaskID { value: string }
export interface ExecutorID { value: string }

// ---- common ----

export interface Label { key: string; value?: string }
export interface Labels { labels?: Label[] }

export interface Parameter { key: string; value: string }

/** mesos.v1.DurationInfo; int64 (protobuf's JSON mapping allows it as a decimal string). */
export interface DurationInfo { nanoseconds: number | string }

export interface Filters {
  /** Default 5; above 31536000 means 365 days; negative means the default. */
  refuse_seconds?: number;
}

export interface Address { hostname?: string; ip?: string; port: number }

export interface MasterInfo {
  id: string;
  /** IPv4 address in network order packed into a uint32 (as Mesos sends it). */
  ip: number;
  port: number;
  pid?: string;
  hostname?: string;
  version?: string;
  address?: Address;
}

// ---- framework ----

export type FrameworkCapabilityType =
  | 'UNKNOWN'
  | 'REVOCABLE_RESOURCES'
  | 'TASK_KILLING_STATE'
  | 'GPU_RESOURCES'
  | 'SHARED_RESOURCES'
  | 'PARTITION_AWARE'
  | 'MULTI_ROLE'
  | 'RESERVATION_REFINEMENT'
  | 'REGION_AWARE';

export interface FrameworkInfo {
  user: string;
  name: string;
  id?: FrameworkID;
  failover_timeout?: number;
  checkpoint?: boolean;
  /** Deprecated: with the MULTI_ROLE capability use `roles`. Default `*`. */
  role?: string;
  roles?: string[];
  hostname?: string;
  principal?: string;
  webui_url?: string;
  capabilities?: Array<{ type?: FrameworkCapabilityType | string }>;
  labels?: Labels;
}

// ---- resources ----

export type ValueType = 'SCALAR' | 'RANGES' | 'SET' | 'TEXT';

export interface Scalar { value: number }
export interface Range { begin: number; end: number }
export interface Ranges { range?: Range[] }
export interface ValueSet { item?: string[] }
export interface Text { value: string }

export interface ReservationInfo {
  type?: 'UNKNOWN' | 'STATIC' | 'DYNAMIC';
  role?: string;
  principal?: string;
  labels?: Labels;
}

export interface Resource {
  name: string;
  type: Exclude<ValueType, 'TEXT'>;
  scalar?: Scalar;
  ranges?: Ranges;
  set?: ValueSet;
  /** Legacy (pre-RESERVATION_REFINEMENT) field: `*` for unreserved resources. */
  role?: string;
  allocation_info?: { role?: string };
  reservations?: ReservationInfo[];
  /** Legacy reservation (with `role`); Shoal offers no reserved resources. */
  reservation?: ReservationInfo;
  disk?: unknown;
  revocable?: unknown;
  shared?: unknown;
  provider_id?: { value: string };
}

export interface Attribute {
  name: string;
  type: ValueType;
  scalar?: Scalar;
  ranges?: Ranges;
  set?: ValueSet;
  text?: Text;
}

export interface URL {
  scheme: string;
  address: Address;
  path?: string;
  query?: Parameter[];
  fragment?: string;
}

export interface Offer {
  id: OfferID;
  framework_id: FrameworkID;
  agent_id: AgentID;
  hostname: string;
  url?: URL;
  resources: Resource[];
  attributes?: Attribute[];
  executor_ids?: ExecutorID[];
  /** Since Mesos 1.2 (MULTI_ROLE): the role the offer is allocated to. */
  allocation_info?: { role?: string };
}

// ---- tasks ----

export interface EnvironmentVariable {
  name: string;
  type?: 'UNKNOWN' | 'VALUE' | 'SECRET';
  value?: string;
  secret?: unknown;
}

export interface CommandURI {
  value: string;
  executable?: boolean;
  extract?: boolean;
  cache?: boolean;
  output_file?: string;
}

export interface CommandInfo {
  uris?: CommandURI[];
  environment?: { variables?: EnvironmentVariable[] };
  /** Default true: `value` runs as `/bin/sh -c value`; false: `value` is the executable and `arguments` its argv (argv[0] included). */
  shell?: boolean;
  value?: string;
  arguments?: string[];
  user?: string;
}

export interface PortMapping { host_port: number; container_port: number; protocol?: string }

export interface DockerInfo {
  image: string;
  network?: 'HOST' | 'BRIDGE' | 'NONE' | 'USER';
  port_mappings?: PortMapping[];
  privileged?: boolean;
  parameters?: Parameter[];
  force_pull_image?: boolean;
}

export interface Image {
  type: 'APPC' | 'DOCKER';
  appc?: { name: string };
  docker?: { name: string };
  cached?: boolean;
}

export interface ContainerInfo {
  type: 'DOCKER' | 'MESOS';
  volumes?: unknown[];
  hostname?: string;
  docker?: DockerInfo;
  mesos?: { image?: Image };
  network_infos?: unknown[];
}

export interface HealthCheck {
  type?: 'UNKNOWN' | 'COMMAND' | 'HTTP' | 'TCP';
  /** Default 15. */
  delay_seconds?: number;
  /** Default 10. */
  interval_seconds?: number;
  /** Default 20; 0 means no timeout. */
  timeout_seconds?: number;
  /** Default 3. */
  consecutive_failures?: number;
  /** Default 10. */
  grace_period_seconds?: number;
  command?: CommandInfo;
  http?: { port: number; path?: string; scheme?: string; protocol?: string; statuses?: number[] };
  tcp?: { port: number; protocol?: string };
}

export interface KillPolicy { grace_period?: DurationInfo }

export interface TaskInfo {
  name: string;
  task_id: TaskID;
  agent_id: AgentID;
  resources?: Resource[];
  executor?: unknown;
  command?: CommandInfo;
  container?: ContainerInfo;
  health_check?: HealthCheck;
  check?: unknown;
  kill_policy?: KillPolicy;
  data?: string;
  labels?: Labels;
  discovery?: unknown;
  max_completion_time?: DurationInfo;
}

export type OperationType =
  | 'UNKNOWN'
  | 'LAUNCH'
  | 'LAUNCH_GROUP'
  | 'RESERVE'
  | 'UNRESERVE'
  | 'CREATE'
  | 'DESTROY'
  | 'GROW_VOLUME'
  | 'SHRINK_VOLUME'
  | 'CREATE_DISK'
  | 'DESTROY_DISK';

export interface OfferOperation {
  type: OperationType | string;
  id?: { value: string };
  launch?: { task_infos: TaskInfo[] };
  launch_group?: unknown;
  reserve?: unknown;
  unreserve?: unknown;
  create?: unknown;
  destroy?: unknown;
}

export type TaskState =
  | 'TASK_STAGING'
  | 'TASK_STARTING'
  | 'TASK_RUNNING'
  | 'TASK_KILLING'
  | 'TASK_FINISHED'
  | 'TASK_FAILED'
  | 'TASK_KILLED'
  | 'TASK_ERROR'
  | 'TASK_LOST'
  | 'TASK_DROPPED'
  | 'TASK_UNREACHABLE'
  | 'TASK_GONE'
  | 'TASK_GONE_BY_OPERATOR'
  | 'TASK_UNKNOWN';

export type TaskStatusSource = 'SOURCE_MASTER' | 'SOURCE_AGENT' | 'SOURCE_EXECUTOR';

export interface TaskStatus {
  task_id: TaskID;
  state: TaskState;
  message?: string;
  source?: TaskStatusSource;
  /** A `TaskStatus.Reason` name, e.g. REASON_RECONCILIATION. */
  reason?: string;
  /** base64 */
  data?: string;
  agent_id?: AgentID;
  executor_id?: ExecutorID;
  /** Seconds since the epoch (double). */
  timestamp?: number;
  /** base64 of the 16 bytes of an RFC 4122 UUID; present only on updates that must be acknowledged. */
  uuid?: string;
  healthy?: boolean;
  labels?: Labels;
}

// ---- calls ----

export type CallType =
  | 'SUBSCRIBE'
  | 'TEARDOWN'
  | 'ACCEPT'
  | 'DECLINE'
  | 'ACCEPT_INVERSE_OFFERS'
  | 'DECLINE_INVERSE_OFFERS'
  | 'REVIVE'
  | 'KILL'
  | 'SHUTDOWN'
  | 'ACKNOWLEDGE'
  | 'ACKNOWLEDGE_OPERATION_STATUS'
  | 'RECONCILE'
  | 'RECONCILE_OPERATIONS'
  | 'MESSAGE'
  | 'REQUEST'
  | 'SUPPRESS'
  | 'UPDATE_FRAMEWORK';

export interface AcceptCall {
  offer_ids: OfferID[];
  operations?: OfferOperation[];
  filters?: Filters;
}

export interface DeclineCall {
  offer_ids: OfferID[];
  filters?: Filters;
}

export interface Call {
  framework_id?: FrameworkID;
  type: CallType;
  subscribe?: { framework_info: FrameworkInfo; suppressed_roles?: string[] };
  accept?: AcceptCall;
  decline?: DeclineCall;
  accept_inverse_offers?: { inverse_offer_ids: OfferID[]; filters?: Filters };
  decline_inverse_offers?: { inverse_offer_ids: OfferID[]; filters?: Filters };
  revive?: { roles?: string[] };
  suppress?: { roles?: string[] };
  kill?: { task_id: TaskID; agent_id?: AgentID; kill_policy?: KillPolicy };
  shutdown?: { executor_id: ExecutorID; agent_id: AgentID };
  /** `uuid` is base64 of 16 bytes. */
  acknowledge?: { agent_id: AgentID; task_id: TaskID; uuid: string };
  acknowledge_operation_status?: { agent_id?: AgentID; uuid: string; operation_id: { value: string } };
  reconcile?: { tasks?: Array<{ task_id: TaskID; agent_id?: AgentID }> };
  reconcile_operations?: { operations?: unknown[] };
  message?: { agent_id: AgentID; executor_id: ExecutorID; data: string };
  request?: { requests?: unknown[] };
  update_framework?: { framework_info: FrameworkInfo; suppressed_roles?: string[] };
}

// ---- events ----

export type EventType =
  | 'SUBSCRIBED'
  | 'OFFERS'
  | 'INVERSE_OFFERS'
  | 'RESCIND'
  | 'RESCIND_INVERSE_OFFER'
  | 'UPDATE'
  | 'UPDATE_OPERATION_STATUS'
  | 'MESSAGE'
  | 'FAILURE'
  | 'ERROR'
  | 'HEARTBEAT';

export interface Event {
  type: EventType;
  subscribed?: { framework_id: FrameworkID; heartbeat_interval_seconds?: number; master_info?: MasterInfo };
  offers?: { offers: Offer[] };
  inverse_offers?: { inverse_offers: unknown[] };
  rescind?: { offer_id: OfferID };
  rescind_inverse_offer?: { inverse_offer_id: OfferID };
  update?: { status: TaskStatus };
  update_operation_status?: { status: unknown };
  message?: { agent_id: AgentID; executor_id: ExecutorID; data: string };
  failure?: { agent_id?: AgentID; executor_id?: ExecutorID; status?: number };
  error?: { message: string };
}

/** Aliases that do not clash with Shoal's own Offer and TaskStatus. */
export type MesosOffer = Offer;
export type MesosTaskStatus = TaskStatus;
export type MesosResource = Resource;
