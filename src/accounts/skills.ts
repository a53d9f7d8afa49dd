// Skill tags: members list them on their profile, tasks ask for them, claims/next matches the two.
// One normalization for all three, so a tag written "Design " anywhere matches "design" everywhere.

/** Skills are tags compared case-insensitively; stored lower-cased, once each, in the given order. */
export function normalizeSkills(skills: string[]): string[] {
  return [...new Set(skills.map((s) => s.trim().toLowerCase()))];
}
