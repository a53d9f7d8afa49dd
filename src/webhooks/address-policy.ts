import { isIP, isIPv4 } from 'node:net';

// Which addresses a webhook may reach. Unless private targets are allowed (tests, closed
// networks), anything that is not a public unicast address is refused: loopback, private ranges,
// link-local (and the cloud metadata addresses in it), unique-local, CGNAT, multicast,
// unspecified, documentation and reserved ranges, in IPv4 and IPv6, including IPv6 forms that
// carry an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4), judged by that address.

export type AddressClass =
  | 'public'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'metadata'
  | 'cgnat'
  | 'unique_local'
  | 'multicast'
  | 'documentation'
  | 'reserved'
  | 'invalid';

type Range = [prefix: number[], bits: number, cls: AddressClass];

// Checked in order; the first match wins (so the metadata addresses win over link-local).
const V4: Range[] = [
  [[169, 254, 169, 254], 32, 'metadata'],
  [[168, 63, 129, 16], 32, 'metadata'],
  [[100, 100, 100, 200], 32, 'metadata'],
  [[0], 8, 'unspecified'],
  [[10], 8, 'private'],
  [[100, 64], 10, 'cgnat'],
  [[127], 8, 'loopback'],
  [[169, 254], 16, 'link_local'],
  [[172, 16], 12, 'private'],
  [[192, 0, 0], 24, 'reserved'],
  [[192, 0, 2], 24, 'documentation'],
  [[192, 88, 99], 24, 'reserved'],
  [[192, 168], 16, 'private'],
  [[198, 18], 15, 'reserved'],
  [[198, 51, 100], 24, 'documentation'],
  [[203, 0, 113], 24, 'documentation'],
  [[224], 4, 'multicast'],
  [[240], 4, 'reserved'],
];

const V6: Range[] = [
  [[0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54], 128, 'metadata'],
  [Array(16).fill(0), 128, 'unspecified'],
  [[...Array(15).fill(0), 1], 128, 'loopback'],
  [[0x01, 0x00, 0, 0, 0, 0, 0, 0], 64, 'reserved'], // discard-only
  [[0x00, 0x64, 0xff, 0x9b, 0x00, 0x01], 48, 'private'], // local-use NAT64
  [[0x20, 0x01, 0x0d, 0xb8], 32, 'documentation'],
  [[0x20, 0x01, 0x00, 0x00], 32, 'reserved'], // Teredo: tunnels to addresses we cannot judge
  [[0x20, 0x01, 0x00], 23, 'reserved'], // IETF protocol assignments
  [[0xfc], 7, 'unique_local'],
  [[0xfe, 0x80], 10, 'link_local'],
  [[0xfe, 0xc0], 10, 'private'], // site-local, deprecated
  [[0xff], 8, 'multicast'],
];

function matches(bytes: number[], prefix: number[], bits: number): boolean {
  for (let i = 0; i < bits; i += 8) {
    const take = Math.min(8, bits - i);
    const mask = (0xff << (8 - take)) & 0xff;
    if (((bytes[i / 8] ?? 0) & mask) !== ((prefix[i / 8] ?? 0) & mask)) return false;
  }
  return true;
}

const classify = (bytes: number[], ranges: Range[]): AddressClass =>
  ranges.find(([prefix, bits]) => matches(bytes, prefix, bits))?.[2] ?? 'public';

function v4Bytes(text: string): number[] {
  return text.split('.').map(Number);
}

/** The 16 bytes of an IPv6 address as net.isIP accepts it (zone ids stripped by the caller). */
function v6Bytes(text: string): number[] {
  let t = text;
  if (t.includes('.')) {
    // A dotted IPv4 tail stands for the last two groups.
    const i = t.lastIndexOf(':');
    const [a = 0, b = 0, c = 0, d = 0] = v4Bytes(t.slice(i + 1));
    t = `${t.slice(0, i + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [left = '', right] = t.split('::');
  const parse = (s: string) => (s ? s.split(':').map((g) => Number.parseInt(g, 16)) : []);
  const l = parse(left);
  const r = right === undefined ? [] : parse(right);
  const groups = [...l, ...Array(8 - l.length - r.length).fill(0), ...r];
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

/** Classifies an IP address given as text (IPv4, or IPv6 with or without brackets or zone). */
export function classifyAddress(address: string): AddressClass {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (isIPv4(bare)) return classify(v4Bytes(bare), V4);
  if (isIP(bare) !== 6) return 'invalid';
  const bytes = v6Bytes(bare.toLowerCase());
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  // ::ffff:a.b.c.d (IPv4-mapped): the IPv4 address decides.
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return classify(bytes.slice(12), V4);
  // ::a.b.c.d (IPv4-compatible, deprecated) is refused outright; :: and ::1 are in the table.
  if (zeros(0, 12) && !zeros(12, 15)) return 'reserved';
  // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they carry.
  if (matches(bytes, [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0], 96)) return classify(bytes.slice(12), V4);
  if (matches(bytes, [0x20, 0x02], 16)) return classify(bytes.slice(2, 6), V4);
  return classify(bytes, V6);
}

/** Whether a webhook may connect to `address`, under the service's setting. */
export function addressAllowed(address: string, allowPrivate: boolean): boolean {
  const cls = classifyAddress(address);
  if (cls === 'public') return true;
  return allowPrivate && cls !== 'invalid';
}

export type UrlProblem = { code: 'invalid_webhook_url' | 'webhook_url_not_allowed'; detail: string };

/**
 * Checks a webhook URL as given, before any DNS: http or https, a host, no credentials, and (unless
 * private targets are allowed) not a literal address that is refused. A hostname is judged at
 * delivery, on every address it resolves to.
 */
export function checkWebhookUrl(text: string, allowPrivate: boolean): UrlProblem | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { code: 'invalid_webhook_url', detail: 'The URL is not a valid absolute URL.' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { code: 'invalid_webhook_url', detail: 'Webhook URLs must use http or https.' };
  if (!url.hostname) return { code: 'invalid_webhook_url', detail: 'The URL has no host.' };
  if (url.username || url.password)
    return { code: 'invalid_webhook_url', detail: 'Credentials in the URL are not allowed; use the signature.' };
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) && !addressAllowed(host, allowPrivate))
    return {
      code: 'webhook_url_not_allowed',
      detail: `Webhooks may not target ${classifyAddress(host).replace('_', '-')} addresses.`,
    };
  return null;
}
