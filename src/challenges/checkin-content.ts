import { createHash } from 'node:crypto';

// What makes two check-ins "the same content": compared after Unicode NFKC (full-width and
// compatibility forms fold to their plain letters), case folding, and whitespace collapsed, so
// re-posting yesterday's passage with different spacing or capitals is still a repeat.

/**
 * The comparable form of a check-in's text. Case folding goes down, up and down again, which
 * folds what a plain toLowerCase misses: ß, ẞ and SS all become ss (ẞ lowers to ß, which only
 * upper case turns into SS). NFKC again afterwards, since case mapping can leave decomposed
 * sequences behind.
 */
export function normalizeContent(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .toUpperCase()
    .toLowerCase()
    .normalize('NFKC')
    .replace(/\s+/gu, ' ')
    .trim();
}

/** Length as a reader counts it: user-perceived characters (a CJK character, an emoji: one each). */
const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
export function contentLength(normalized: string): number {
  let n = 0;
  for (const _ of segmenter.segment(normalized)) n++;
  return n;
}

/** The key the database compares for duplicates: a digest of the normalized text. */
export function contentKey(normalized: string): string {
  return createHash('sha256').update(normalized, 'utf8').digest('hex');
}
