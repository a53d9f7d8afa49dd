import { createHash } from 'node:crypto';

// What makes two check-ins "the same content": compared after invisible characters are dropped,
// Unicode NFKC (full-width and compatibility forms fold to their plain letters), case folding, and
// whitespace collapsed, so re-posting yesterday's passage with different spacing or capitals is
// still a repeat.

/**
 * Characters that show nothing: format controls (zero-width space and joiners, the byte-order mark,
 * soft hyphens, direction marks) and every default-ignorable code point (variation selectors, the
 * combining grapheme joiner, the Hangul fillers, Khmer's inherent vowels, ...). Left in, "\u200b"
 * three times would pass a minimum length of 3, and one slipped into yesterday's passage would make
 * it new. They are dropped before measuring and comparing; the stored text keeps them. (An emoji
 * sequence joined by U+200D then counts as its parts, a leniency only for check-ins made of emoji.)
 * Both classes, as a few format controls (U+0600 to U+0605) are not default-ignorable.
 */
const INVISIBLE = /\p{Cf}|\p{Default_Ignorable_Code_Point}/gu;

/**
 * The comparable form of a check-in's text. Case folding goes down, up and down again, which
 * folds what a plain toLowerCase misses: ß, ẞ and SS all become ss (ẞ lowers to ß, which only
 * upper case turns into SS). NFKC again afterwards, since case mapping can leave decomposed
 * sequences behind.
 */
export function normalizeContent(text: string): string {
  return text
    .replace(INVISIBLE, '')
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
