import { Type, type TSchema, type TProperties, type TObject } from 'typebox';
import { ERROR_CODES, type ErrorCode } from '../error-codes.js';
import { LOWERCASE } from './validation.js';

// Schema building blocks shared by every route. Every field carries a description so the
// OpenAPI document explains itself.

/**
 * An object that rejects unknown fields. Request bodies pass `examples`: the OpenAPI document shows
 * them, and test/http/openapi.test.ts checks each one against its schema.
 */
export const Obj = <P extends TProperties>(
  properties: P,
  description?: string,
  options: { examples?: readonly Record<string, unknown>[] } = {},
): TObject<P> =>
  Type.Object(properties, { additionalProperties: false, ...(description ? { description } : {}), ...options });

// Ids arrive in any case and are lower-cased as they are validated (src/http/validation.ts).
export const Id = (description: string) => Type.String({ format: 'uuid', [LOWERCASE]: true, description });

// The routes of projects, tasks, claims, contributions and settlements all hang off a project:
// its path parameter lives here so none of those folders imports another's schemas for it.
export const ProjectParams = Obj({ projectId: Id('Project id') });
// Handlers return Date objects; the response serializer writes them as ISO 8601 strings.
export const Timestamp = (description: string) =>
  Type.Unsafe<Date | string>({ type: 'string', format: 'date-time', description });

export const Problem = Type.Object(
  {
    type: Type.String({ description: "The code's page on this service, /problems/{code} (a relative URI reference)" }),
    title: Type.String({ description: 'Short summary of the HTTP status' }),
    status: Type.Integer({ description: 'HTTP status code' }),
    detail: Type.String({ description: 'Human-readable explanation' }),
    // Every code of the registry, so generated clients know them all (new codes change the document).
    code: Type.Unsafe<ErrorCode>({
      type: 'string',
      enum: Object.keys(ERROR_CODES).sort(),
      description: 'Stable snake_case error code for programs; GET /problems/{code} explains it',
    }),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          path: Type.String({ description: 'Where the invalid value is, e.g. body/tasks/0/title' }),
          message: Type.String({ description: 'What is wrong with it' }),
        }),
        { description: 'Each invalid field' },
      ),
    ),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details' },
);

export const PageQuery = {
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 200, default: 50, description: 'Page size (1-200, default 50)' }),
  ),
  cursor: Type.Optional(
    Type.String({ maxLength: 512, description: "Opaque cursor from the previous page's nextCursor" }),
  ),
};

/**
 * Paging of a walk pinned to a database snapshot (feeds, inboxes, boards, the member's ledger): its
 * cursor carries the snapshot's text, which grows with the transactions in flight, so it may be
 * longer than others.
 */
export const SnapshotPageQuery = {
  ...PageQuery,
  cursor: Type.Optional(
    Type.String({ maxLength: 4096, description: "Opaque cursor from the previous page's nextCursor" }),
  ),
};

export const Page = <T extends TSchema>(item: T, description: string) =>
  Type.Object(
    {
      items: Type.Array(item, { description }),
      nextCursor: Type.Union([Type.String(), Type.Null()], {
        description: 'Cursor for the next page; null on the last page',
      }),
    },
    { description },
  );

/** Error responses a route may give, all as problem+json. */
export function problems(...statuses: number[]): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  // Declared under its real media type, so the OpenAPI document and generated clients expect
  // application/problem+json rather than application/json.
  for (const s of statuses) {
    out[s] = {
      description: 'Problem details',
      content: { 'application/problem+json': { schema: Type.Ref('Problem') } },
    };
  }
  return out;
}
