import type { JsonSchema } from './world.js';

// A valid value for a JSON schema from the OpenAPI document, built deterministically: enough to
// get a body past validation so that the only thing wrong with a request is what a test adds.

const CANDIDATE_TEXT = ['sample', 'abc', 'a', 'Sample_1', 'x1'];

export function sampleOf(schema: JsonSchema, ids: { uuid: string }, depth = 0): unknown {
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum[0];
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) return sampleOf(variants.find((v) => v.type !== 'null') ?? variants[0]!, ids, depth);
  const type = Array.isArray(schema.type) ? schema.type.find((x) => x !== 'null') : schema.type;
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [name, prop] of Object.entries(schema.properties ?? {})) {
        // Every property, optional ones too (nested objects included), but not endlessly deep.
        if (depth > 6 && !schema.required?.includes(name)) continue;
        out[name] = sampleOf(prop, ids, depth + 1);
      }
      return out;
    }
    case 'array': {
      const n = Math.max(1, schema.minItems ?? 0);
      if (depth > 6) return [];
      return Array.from({ length: n }, () => sampleOf(schema.items ?? { type: 'string' }, ids, depth + 1));
    }
    case 'integer':
    case 'number': {
      const lo = schema.minimum ?? Number.MIN_SAFE_INTEGER;
      const hi = schema.maximum ?? Number.MAX_SAFE_INTEGER;
      const forbidden = (schema.not as JsonSchema | undefined)?.const;
      for (const n of [1, lo, hi]) if (n >= lo && n <= hi && n !== forbidden) return n;
      return lo;
    }
    case 'boolean':
      return true;
    case 'string': {
      if (schema.format === 'uuid') return ids.uuid;
      if (schema.format === 'uri') return 'https://example.com/work';
      if (schema.format === 'date-time') return new Date().toISOString();
      if (schema.format === 'date') return '2026-01-01';
      const re = schema.pattern ? new RegExp(schema.pattern, 'u') : undefined;
      for (const base of CANDIDATE_TEXT) {
        const text = base.padEnd(schema.minLength ?? 0, 'x').slice(0, schema.maxLength ?? Infinity);
        if (text.length >= (schema.minLength ?? 0) && (!re || re.test(text))) return text;
      }
      return 'sample';
    }
    default:
      return null;
  }
}

/** The object schemas inside a schema with the path where a sample of it puts them. */
export function objectsIn(
  schema: JsonSchema,
  value: unknown,
  path: string,
  out: { path: string; schema: JsonSchema; value: Record<string, unknown> }[] = [],
) {
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) {
    const chosen = variants.find((v) => v.type !== 'null') ?? variants[0];
    if (chosen) objectsIn(chosen, value, path, out);
    return out;
  }
  if (schema.type === 'object' && value && typeof value === 'object' && !Array.isArray(value)) {
    out.push({ path, schema, value: value as Record<string, unknown> });
    for (const [name, prop] of Object.entries(schema.properties ?? {})) {
      if (name in (value as object)) objectsIn(prop, (value as Record<string, unknown>)[name], `${path}/${name}`, out);
    }
  } else if (schema.type === 'array' && Array.isArray(value) && value.length && schema.items) {
    objectsIn(schema.items, value[0], `${path}/0`, out);
  }
  return out;
}

/** Sets `value` at a path like body/tasks/0/rewardPool inside a copy of `root` (the body). */
export function withField(root: unknown, path: string, field: string, value: unknown): unknown {
  const copy = structuredClone(root) as Record<string, unknown>;
  const segments = path.split('/').slice(1);
  let node: Record<string, unknown> = copy;
  for (const s of segments) node = node[s] as Record<string, unknown>;
  node[field] = value;
  return copy;
}
