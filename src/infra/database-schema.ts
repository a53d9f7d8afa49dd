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
}

export interface IdempotencyKeysTable {
  user_id: string;
  key: string;
  request_hash: Buffer;
  response_status: number | null;
  response_type: string | null;
  response_body: string | null;
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
}

export interface Database {
  users: UsersTable;
  refresh_tokens: RefreshTokensTable;
  circles: CirclesTable;
  memberships: MembershipsTable;
  invites: InvitesTable;
  idempotency_keys: IdempotencyKeysTable;
  events: EventsTable;
}
