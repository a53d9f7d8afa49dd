import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';

// CSV answers (RFC 4180), built one page at a time so an export of any size holds only a page or
// two in memory: the body is a Readable over an async source of row batches, and Node's
// backpressure stops the source while the client is not reading.

/** What a cell may hold: text, an integer or a flag; null and undefined are empty cells. */
export type CsvValue = string | number | bigint | boolean | Date | null | undefined;

/** Makes Excel and LibreOffice open the file as UTF-8 (Chinese text would be mojibake otherwise). */
export const UTF8_BOM = '\uFEFF';

// A text cell starting with one of these is run as a formula by spreadsheets (CSV injection:
// `=HYPERLINK(...)`, `@SUM(...)`, DDE). A leading apostrophe makes them show it as text.
const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/**
 * One cell. Numbers and flags are written as they are (a negative number is data, not a formula);
 * dates as ISO 8601; text is guarded against formulas, then quoted when it holds a quote, comma or
 * line break, quotes doubled.
 */
export function csvCell(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return value.toISOString();
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One record with its line break (RFC 4180's CRLF unless a format keeps another). */
export function csvLine(cells: readonly CsvValue[], eol = '\r\n'): string {
  return cells.map(csvCell).join(',') + eol;
}

/**
 * A whole CSV document as a stream: the byte-order mark and the header travel with the first
 * batch, then one chunk per batch. highWaterMark 1: at most one batch is read ahead of what the
 * response has taken. An error from the source destroys the stream (Fastify then logs it and
 * ends the response: before the first byte as a problem, after it by cutting the connection).
 */
export function csvStream(header: readonly string[], batches: AsyncIterable<readonly CsvValue[][]>): Readable {
  async function* chunks() {
    let head = UTF8_BOM + csvLine(header);
    for await (const rows of batches) {
      if (rows.length === 0) continue;
      yield head + rows.map((row) => csvLine(row)).join('');
      head = '';
    }
    if (head) yield head;
  }
  return Readable.from(chunks(), { highWaterMark: 1 });
}

const UNSAFE_IN_FILENAME = /[\p{Cc}/\\:*?"<>|]+/gu;

/**
 * `attachment` with an ASCII `filename` every client understands and, when a display name is
 * given, `filename*` (RFC 6266 / RFC 5987) carrying it in UTF-8 for clients that read it.
 */
export function attachmentDisposition(asciiName: string, displayName?: string): string {
  const ascii = asciiName.replace(/[^\x20-\x7e]|["\\]/g, '_');
  let header = `attachment; filename="${ascii}"`;
  if (displayName !== undefined) {
    // Cut by code points, never inside a surrogate pair (encodeURIComponent throws on a lone one).
    const clean =
      Array.from(
        displayName
          .replace(UNSAFE_IN_FILENAME, '_')
          .replace(/[\uD800-\uDFFF]/gu, '_')
          .trim(),
      )
        .slice(0, 150)
        .join('') || ascii;
    const encoded = encodeURIComponent(clean).replace(
      /['()*]/g,
      (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
    );
    header += `; filename*=UTF-8''${encoded}`;
  }
  return header;
}

/** Sends a CSV stream as a download. */
export function sendCsv(
  reply: FastifyReply,
  file: { asciiName: string; displayName?: string },
  body: Readable | string,
): FastifyReply {
  return reply
    .type('text/csv; charset=utf-8')
    .header('content-disposition', attachmentDisposition(file.asciiName, file.displayName))
    .send(body);
}
