// The endpoint's statements as the SQL limits replay them: captured text and parameters, with
// placeholder values rotated per iteration the way the HTTP side rotates members, tasks, skills.

export interface Statement {
  text: string;
  values: unknown[];
  /** Set where the service runs the statement prepared under a name; replayed the same way. */
  name?: string;
}

/** A value equal to one of the rotation keys becomes that list's (i % length)th entry. */
export function bindValues(values: unknown[], rotations: Record<string, string[]>, i: number): unknown[] {
  return values.map((v) => {
    if (typeof v === 'string' && v in rotations) {
      const list = rotations[v]!;
      return list[i % list.length];
    }
    return v;
  });
}
