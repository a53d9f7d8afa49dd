import { sql, type Kysely } from 'kysely';

// A webhook endpoint keeps every secret a rotation retired while its grace lasts, not just the
// last one: rotating twice within a day kept only the secret of the first rotation, so the one
// receivers were still using stopped verifying early. `retired_secrets` holds up to five, newest
// first, each `{ "secret": "whsec_…", "expiresAt": timestamptz }`; what signs is the current
// secret and those not yet expired. Live previous secrets move over; the old columns go.
// Frozen in time: imports nothing from src/.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE webhook_endpoints ADD COLUMN retired_secrets jsonb NOT NULL DEFAULT '[]'::jsonb
      CHECK (jsonb_typeof(retired_secrets) = 'array' AND jsonb_array_length(retired_secrets) <= 5);
    UPDATE webhook_endpoints
    SET retired_secrets = jsonb_build_array(jsonb_build_object('secret', previous_secret, 'expiresAt', previous_secret_expires_at))
    WHERE previous_secret IS NOT NULL AND previous_secret_expires_at > now();
    ALTER TABLE webhook_endpoints DROP COLUMN previous_secret, DROP COLUMN previous_secret_expires_at;
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE webhook_endpoints ADD COLUMN previous_secret text, ADD COLUMN previous_secret_expires_at timestamptz,
      ADD CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL));
    UPDATE webhook_endpoints
    SET previous_secret = retired_secrets->0->>'secret',
        previous_secret_expires_at = (retired_secrets->0->>'expiresAt')::timestamptz
    WHERE jsonb_array_length(retired_secrets) > 0;
    ALTER TABLE webhook_endpoints DROP COLUMN retired_secrets;
  `.execute(db);
}
