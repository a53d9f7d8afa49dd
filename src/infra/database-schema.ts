import type { ColumnType, Generated } from 'kysely';

// The tables as the application sees them (see db/migrations for how they are built).
// Generated<T>: the database fills it in; ColumnType<Select, Insert, Update>.

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

export interface UsersTable {
  id: Generated<string>;
  handle: string;
  password_hash: string;
  display_name: string;
  skills: ColumnType<string[], string[] | undefined, string[]>;
  created_at: CreatedAt;
}

export interface RefreshTokensTable {
  id: Generated<string>;
  user_id: string;
  family_id: string;
  token_hash: Buffer;
  expires_at: Timestamp;
  rotated_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
  created_at: CreatedAt;
}

export type JoinPolicy = 'open' | 'invite';
export type Role = 'owner' | 'admin' | 'member';

export interface CirclesTable {
  id: Generated<string>;
  name: string;
  description: ColumnType<string, string | undefined, string>;
  join_policy: JoinPolicy;
  owner_id: string;
  /** IANA time zone the circle's health figures count local days in. */
  timezone: ColumnType<string, string | undefined, string>;
  created_at: CreatedAt;
}

export interface MembershipsTable {
  circle_id: string;
  user_id: string;
  role: Role;
  joined_at: ColumnType<Date, Date | string | undefined, Date | string>;
  left_at: NullableTimestamp;
}

export interface InvitesTable {
  code: string;
  circle_id: string;
  created_by: string;
  expires_at: Timestamp;
  max_uses: number | null;
  uses: ColumnType<number, number | undefined, number>;
  created_at: CreatedAt;
  revoked_at: NullableTimestamp;
}

export interface IdempotencyKeysTable {
  user_id: string;
  key: string;
  request_hash: Buffer;
  response_status: number | null;
  response_type: string | null;
  response_body: string | null;
  /** The request holding the key (see migration 0012); null on keys from before it. */
  holder: string | null;
  /** When the request's change committed; null until then, and for requests that changed nothing. */
  applied_at: Date | null;
  created_at: CreatedAt;
}

export interface EventsTable {
  id: Generated<number>;
  circle_id: string | null;
  type: string;
  subject_id: string | null;
  actor_id: string | null;
  payload: ColumnType<unknown, string | undefined, string>;
  created_at: CreatedAt;
  relayed_at: NullableTimestamp;
  /** The member the event concerns: it appears in their inbox. */
  recipient_id: string | null;
  /** A notice for the recipient alone: kept out of the circle's activity feed. */
  recipient_only: ColumnType<boolean, boolean | undefined, never>;
  /** The writing transaction (xid8 as text), set by the database; null on rows older than it. */
  xact_id: ColumnType<string | null, never, never>;
}

export type ProjectStatus = 'draft' | 'open' | 'closed' | 'settled' | 'cancelled';
export type TaskStatus = 'open' | 'done' | 'cancelled';
export type ClaimStatus = 'active' | 'submitted' | 'accepted' | 'rejected' | 'released' | 'expired' | 'revoked';
export type ReviewDecision = 'accept' | 'reject' | 'revise';
export type ContributionSource = 'task' | 'adjustment' | 'checkin' | 'recognition';

export interface ProjectsTable {
  id: Generated<string>;
  circle_id: string;
  title: string;
  description: ColumnType<string, string | undefined, string>;
  status: ProjectStatus;
  reward_amount: ColumnType<number, number | undefined, number>;
  reward_unit: ColumnType<string, string | undefined, string>;
  lease_seconds: number;
  review_window_seconds: number;
  created_by: string;
  created_at: CreatedAt;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface TasksTable {
  id: string;
  circle_id: string;
  project_id: string;
  parent_id: string | null;
  title: string;
  description: ColumnType<string, string | undefined, string>;
  weight: number;
  skills: ColumnType<string[], string[] | undefined, string[]>;
  slots: number;
  required_accepts: number;
  priority: ColumnType<number, number | undefined, number>;
  depth: ColumnType<number, number | undefined, number>;
  is_leaf: ColumnType<boolean, boolean | undefined, boolean>;
  status: ColumnType<TaskStatus, TaskStatus | undefined, TaskStatus>;
  live_claims: ColumnType<number, number | undefined, number>;
  accepted_count: ColumnType<number, number | undefined, number>;
  blocking_deps: ColumnType<number, number | undefined, number>;
  /** Ancestors whose own dependencies are not all done: a task claims nothing until this is 0 too. */
  blocked_ancestors: ColumnType<number, number | undefined, number>;
  created_at: CreatedAt;
  seq: Generated<number>;
}

export interface TaskDependenciesTable {
  task_id: string;
  depends_on_id: string;
}

export interface ClaimsTable {
  id: Generated<string>;
  circle_id: string;
  project_id: string;
  task_id: string;
  user_id: string;
  status: ColumnType<ClaimStatus, ClaimStatus | undefined, ClaimStatus>;
  member_slot: number | null;
  /** NULL except on accepted repeats from before distinct redundancy (see migration 0005). */
  repeat_key: ColumnType<string | null, never, never>;
  lease_started_at: ColumnType<Date, Date | string | undefined, Date | string>;
  expires_at: Timestamp;
  revoke_reason: string | null;
  created_at: CreatedAt;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
  /** The writing transaction (xid8 as text), set by the database; null on rows older than it. */
  xact_id: ColumnType<string | null, never, never>;
}

export interface SubmissionsTable {
  id: Generated<string>;
  circle_id: string;
  claim_id: string;
  user_id: string;
  revision: number;
  content: string;
  links: ColumnType<string[], string[] | undefined, string[]>;
  review_due_at: Timestamp;
  created_at: CreatedAt;
  /** The writing transaction (xid8 as text), set by the database; null on rows older than it. */
  xact_id: ColumnType<string | null, never, never>;
}

export interface ReviewsTable {
  id: Generated<string>;
  circle_id: string;
  submission_id: string;
  claim_id: string;
  reviewer_id: string | null;
  decision: ReviewDecision;
  score: number | null;
  feedback: ColumnType<string, string | undefined, string>;
  automatic: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: CreatedAt;
}

export interface ContributionsTable {
  id: Generated<number>;
  circle_id: string;
  project_id: string | null;
  user_id: string;
  source: ContributionSource;
  task_id: string | null;
  claim_id: string | null;
  points: number;
  reason: string | null;
  created_by: string | null;
  created_at: CreatedAt;
  fingerprint: Generated<string>;
  /** The check-in a `checkin` row pays for (exactly those rows have one). */
  checkin_id: ColumnType<string | null, string | null | undefined, never>;
  /** The writing transaction (xid8 as text), set by the database; null on rows older than it. */
  xact_id: ColumnType<string | null, never, never>;
}

export type SettlementStatus = 'pending' | 'running' | 'completed' | 'failed';
export type LedgerAccountKind = 'project_pool' | 'member_balance' | 'owner_funding';

export interface SettlementsTable {
  id: Generated<string>;
  circle_id: string;
  project_id: string;
  status: ColumnType<SettlementStatus, SettlementStatus | undefined, SettlementStatus>;
  pool_amount: number;
  unit: string;
  cutoff_id: number;
  min_points: string | null;
  cap_basis_points: number | null;
  /** numeric: may exceed 2^53, so it stays a decimal string. */
  total_points: string | null;
  distributed: number | null;
  undistributed: number | null;
  payee_count: number | null;
  result_hash: string | null;
  failure_reason: string | null;
  attempts: ColumnType<number, number | undefined, number>;
  requested_by: string;
  created_at: CreatedAt;
  completed_at: NullableTimestamp;
}

export interface PayoutsTable {
  settlement_id: string;
  user_id: string;
  circle_id: string;
  rank: number;
  points: number;
  amount: number;
  share_numerator: string;
  share_denominator: string;
  rounded_up: boolean;
  capped: boolean;
}

export interface LedgerAccountsTable {
  id: Generated<string>;
  circle_id: string;
  kind: LedgerAccountKind;
  owner_id: string;
  unit: string;
  balance: ColumnType<number, number | undefined, number>;
  created_at: CreatedAt;
}

export interface LedgerTransactionsTable {
  id: Generated<string>;
  circle_id: string;
  kind: 'pool_funding' | 'settlement_payout';
  settlement_id: string | null;
  description: string;
  created_at: CreatedAt;
}

export interface LedgerEntriesTable {
  id: Generated<number>;
  transaction_id: string;
  account_id: string;
  amount: number;
  created_at: CreatedAt;
  /** The writing transaction (xid8 as text), set by the database; null on rows older than it. */
  xact_id: ColumnType<string | null, never, never>;
}

export type ChallengeStatus = 'active' | 'cancelled' | 'closed';

/** Local calendar days ('YYYY-MM-DD'): the pg type parser keeps `date` columns as strings. */
type LocalDateColumn = string;

export interface ChallengesTable {
  id: Generated<string>;
  circle_id: string;
  title: string;
  description: ColumnType<string, string | undefined, string>;
  starts_on: LocalDateColumn;
  ends_on: LocalDateColumn;
  timezone: string;
  day_starts_at: number;
  points_per_checkin: number;
  min_content_length: number;
  make_up_allowance: number;
  make_up_window_days: number;
  freezes_per_member: number;
  status: ColumnType<ChallengeStatus, ChallengeStatus | undefined, ChallengeStatus>;
  ends_at: Timestamp;
  cancel_reason: string | null;
  /** The challenge day it was cancelled on: its streaks are evaluated up to that day. */
  cancelled_on: ColumnType<string | null, string | null | undefined, string | null>;
  missed_days_noticed_through: ColumnType<string | null, string | null | undefined, string | null>;
  created_by: string;
  created_at: CreatedAt;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
  closed_at: NullableTimestamp;
}

export interface CheckinsTable {
  id: Generated<string>;
  challenge_id: string;
  circle_id: string;
  user_id: string;
  local_date: LocalDateColumn;
  content: string;
  links: ColumnType<string[], string[] | undefined, string[]>;
  content_key: string;
  make_up: ColumnType<boolean, boolean | undefined, boolean>;
  points: number;
  created_at: CreatedAt;
}

export interface ChallengeParticipantsTable {
  challenge_id: string;
  user_id: string;
  circle_id: string;
  checkins: ColumnType<number, number | undefined, number>;
  make_ups_used: ColumnType<number, number | undefined, number>;
  last_date: ColumnType<string | null, string | null | undefined, string | null>;
  run: ColumnType<number, number | undefined, number>;
  best_streak: ColumnType<number, number | undefined, number>;
  freezes_used: ColumnType<number, number | undefined, number>;
  missed_noticed_on: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: CreatedAt;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export type WebhookDisabledReason = 'failing' | 'manual';

export interface WebhookEndpointsTable {
  circle_id: string;
  id: Generated<string>;
  url: string;
  events: string[];
  description: ColumnType<string, string | undefined, string>;
  enabled: ColumnType<boolean, boolean | undefined, boolean>;
  disabled_at: NullableTimestamp;
  disabled_reason: ColumnType<
    WebhookDisabledReason | null,
    WebhookDisabledReason | null | undefined,
    WebhookDisabledReason | null
  >;
  /** The signing secret (whsec_...): never logged, never in an event, shown once. */
  secret: string;
  /** Secrets rotations retired, newest first, each signing until it expires (at most five). */
  retired_secrets: ColumnType<RetiredSecret[], never, never>;
  failure_streak: ColumnType<number, number | undefined, number>;
  created_by: string;
  created_at: CreatedAt;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** A signing secret a rotation retired, as `retired_secrets` stores it. */
export interface RetiredSecret {
  secret: string;
  /** When it stops signing (an ISO 8601 timestamp, as Postgres renders it in JSON). */
  expiresAt: string;
}

export type WebhookMessageStatus = 'pending' | 'succeeded' | 'failed';

export interface WebhookMessagesTable {
  circle_id: string;
  id: Generated<string>;
  endpoint_id: string;
  event_id: number;
  event_type: string;
  body: string;
  status: ColumnType<WebhookMessageStatus, WebhookMessageStatus | undefined, WebhookMessageStatus>;
  attempts: ColumnType<number, number | undefined, number>;
  final_attempt: number;
  redelivery: ColumnType<boolean, boolean | undefined, boolean>;
  next_attempt_at: NullableTimestamp;
  created_at: CreatedAt;
  completed_at: NullableTimestamp;
}

export type WebhookAttemptOutcome = 'succeeded' | 'http_error' | 'timeout' | 'refused' | 'network_error';

export interface WebhookAttemptsTable {
  circle_id: string;
  id: Generated<string>;
  seq: Generated<number>;
  endpoint_id: string;
  message_id: string;
  attempt: number;
  trigger: 'automatic' | 'redelivery';
  outcome: WebhookAttemptOutcome;
  response_status: number | null;
  duration_ms: number;
  error: string | null;
  started_at: Timestamp;
  finished_at: CreatedAt;
}

/** A circle member's activity on one local day, folded from the source rows (migration 0010). */
export interface CircleMemberDaysTable {
  circle_id: string;
  user_id: string;
  local_date: ColumnType<string, string, never>;
  points: ColumnType<string, number | string, number | string>;
  activities: number;
}

/** How far a circle's rollups are folded, and in which zone (migration 0010). */
export interface CircleRollupWatermarksTable {
  circle_id: string;
  /** pg_snapshot text: every source row whose transaction is visible in it is in the rollups. */
  folded_through: string | null;
  timezone: string | null;
  folded_at: NullableTimestamp;
}

export interface Database {
  users: UsersTable;
  refresh_tokens: RefreshTokensTable;
  circles: CirclesTable;
  memberships: MembershipsTable;
  invites: InvitesTable;
  idempotency_keys: IdempotencyKeysTable;
  events: EventsTable;
  projects: ProjectsTable;
  tasks: TasksTable;
  task_dependencies: TaskDependenciesTable;
  claims: ClaimsTable;
  submissions: SubmissionsTable;
  reviews: ReviewsTable;
  contributions: ContributionsTable;
  settlements: SettlementsTable;
  payouts: PayoutsTable;
  ledger_accounts: LedgerAccountsTable;
  ledger_transactions: LedgerTransactionsTable;
  ledger_entries: LedgerEntriesTable;
  challenges: ChallengesTable;
  checkins: CheckinsTable;
  challenge_participants: ChallengeParticipantsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_messages: WebhookMessagesTable;
  webhook_attempts: WebhookAttemptsTable;
  circle_member_days: CircleMemberDaysTable;
  circle_rollup_watermarks: CircleRollupWatermarksTable;
}
