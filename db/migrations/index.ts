import type { Migration } from 'kysely/migration';
import * as foundation from './0001_foundation.js';
import * as marketplace from './0002_marketplace.js';
import * as settlements from './0003_settlements.js';
import * as memberClaimsIndex from './0004_member_claims_index.js';
import * as distinctContributors from './0005_distinct_contributors.js';
import * as reviewQueue from './0006_review_queue.js';
import * as challenges from './0007_challenges.js';
import * as circleActivity from './0008_circle_activity.js';
import * as webhooks from './0009_webhooks.js';
import * as circleMemberDays from './0010_circle_member_days.js';
import * as ledgerEntryWriters from './0011_ledger_entry_writers.js';
import * as idempotencyOutcomes from './0012_idempotency_outcomes.js';
import * as challengeCancelledOn from './0013_challenge_cancelled_on.js';
import * as refreshTokenPurge from './0014_refresh_token_purge.js';
import * as webhookRetiredSecrets from './0015_webhook_retired_secrets.js';
import * as blockedAncestors from './0016_blocked_ancestors.js';

// The schema's history, in order. Listed explicitly (rather than read from the folder) so the same
// list works from TypeScript sources in development and from compiled JavaScript in production.
export const migrations: Record<string, Migration> = {
  '0001_foundation': foundation,
  '0002_marketplace': marketplace,
  '0003_settlements': settlements,
  '0004_member_claims_index': memberClaimsIndex,
  '0005_distinct_contributors': distinctContributors,
  '0006_review_queue': reviewQueue,
  '0007_challenges': challenges,
  '0008_circle_activity': circleActivity,
  '0009_webhooks': webhooks,
  '0010_circle_member_days': circleMemberDays,
  '0011_ledger_entry_writers': ledgerEntryWriters,
  '0012_idempotency_outcomes': idempotencyOutcomes,
  '0013_challenge_cancelled_on': challengeCancelledOn,
  '0014_refresh_token_purge': refreshTokenPurge,
  '0015_webhook_retired_secrets': webhookRetiredSecrets,
  '0016_blocked_ancestors': blockedAncestors,
};
