// The one spelling of a uuid this service accepts: 8-4-4-4-12 hex digits, nothing around them.
// (ajv-formats' own "uuid" also takes a "urn:uuid:" prefix, which Postgres refuses to cast.)
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (value: unknown): value is string => typeof value === 'string' && UUID.test(value);
