import t from 'tap';
import fc from 'fast-check';
import { attachmentDisposition, csvCell, csvLine } from '../../src/http/csv.js';
import { parseCsv } from './parse-csv.js';

// The CSV rules on their own, without HTTP: RFC 4180 quoting, the formula guard, the filename
// header. The exports' tests parse what the routes send with the same parser.

t.test('cells: quoting per RFC 4180, numbers and dates as they are, empty for null', async (t) => {
  t.equal(csvCell('plain'), 'plain');
  t.equal(csvCell('a,b'), '"a,b"');
  t.equal(csvCell('say "hi"'), '"say ""hi"""');
  t.equal(csvCell('two\nlines'), '"two\nlines"');
  t.equal(csvCell('cr\rhere'), '"cr\rhere"');
  t.equal(csvCell('中文，逗号'), '中文，逗号', 'a full-width comma is not a separator');
  t.equal(csvCell(-40), '-40', 'a negative number is data, not a formula');
  t.equal(csvCell(12345678901234567890n), '12345678901234567890');
  t.equal(csvCell(true), 'true');
  t.equal(csvCell(null), '');
  t.equal(csvCell(undefined), '');
  t.equal(csvCell(new Date('2026-01-02T03:04:05.678Z')), '2026-01-02T03:04:05.678Z');
  t.equal(csvLine(['a', 1, null, 'b,c']), 'a,1,,"b,c"\r\n');
  t.equal(csvLine(['a', 'b'], '\n'), 'a,b\n');
});

t.test('cells: text a spreadsheet would run as a formula is shown as text', async (t) => {
  for (const start of ['=', '+', '-', '@', '\t', '\r']) {
    const cell = csvCell(`${start}HYPERLINK("http://x","y")`);
    t.ok(cell.startsWith(`"'${start}`) || cell.startsWith(`'${start}`), `${JSON.stringify(start)} is guarded: ${cell}`);
  }
  t.equal(csvCell('=1+1'), "'=1+1");
  t.equal(csvCell('-2+3'), "'-2+3");
  t.equal(csvCell('a=1'), 'a=1', 'only a leading sign is a formula');
});

t.test('any row of text cells parses back to itself (guarded cells with their apostrophe)', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 6 }), (cells) => {
      const parsed = parseCsv(csvLine(cells));
      const expected = cells.map((c) => (/^[=+\-@\t\r]/.test(c) ? `'${c}` : c));
      t.same(parsed, [expected]);
      return true;
    }),
    { numRuns: 300 },
  );
});

t.test('content-disposition: an ASCII filename, and the title in UTF-8 as filename*', async (t) => {
  t.equal(attachmentDisposition('ledger.csv'), 'attachment; filename="ledger.csv"');
  const header = attachmentDisposition('contributions-1.csv', '第一章 翻译 contributions.csv');
  t.match(header, /^attachment; filename="contributions-1\.csv"; filename\*=UTF-8''/);
  const encoded = header.split("filename*=UTF-8''")[1]!;
  t.match(encoded, /^[A-Za-z0-9%._~!-]+$/, 'only attr-chars and percent escapes');
  t.equal(decodeURIComponent(encoded), '第一章 翻译 contributions.csv');
  // Characters a file system or the header would trip on become underscores.
  const odd = attachmentDisposition('x.csv', 'a/b\\c"d\r\ne:f.csv');
  t.equal(decodeURIComponent(odd.split("filename*=UTF-8''")[1]!), 'a_b_c_d_e_f.csv');
  t.equal(attachmentDisposition('naïve "x".csv'), 'attachment; filename="na_ve _x_.csv"');
  // A long title is cut by code points, never inside a surrogate pair.
  const long = attachmentDisposition('x.csv', '😀'.repeat(200));
  t.equal(Array.from(decodeURIComponent(long.split("filename*=UTF-8''")[1]!)).length, 150);
});
