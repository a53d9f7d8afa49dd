import t from 'tap';
import { addressAllowed, checkWebhookUrl, classifyAddress } from '../../src/webhooks/address-policy.js';

// Which addresses webhooks may reach, as a table: IPv4, IPv6 and IPv6 forms carrying IPv4.

const TABLE: [string, string][] = [
  ['8.8.8.8', 'public'],
  ['1.1.1.1', 'public'],
  ['172.32.0.1', 'public'],
  ['100.128.0.1', 'public'],
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['10.0.0.1', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.1.1', 'private'],
  ['169.254.0.1', 'link_local'],
  ['169.254.169.254', 'metadata'],
  ['168.63.129.16', 'metadata'],
  ['100.100.100.200', 'metadata'],
  ['100.64.0.1', 'cgnat'],
  ['100.127.255.255', 'cgnat'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'reserved'],
  ['192.0.2.1', 'documentation'],
  ['198.18.0.1', 'reserved'],
  ['2606:4700:4700::1111', 'public'],
  ['2001:4860:4860::8888', 'public'],
  ['::', 'unspecified'],
  ['::1', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['[::1]', 'loopback'],
  ['fe80::1', 'link_local'],
  ['fe80::1%eth0', 'link_local'],
  ['febf::1', 'link_local'],
  ['fc00::1', 'unique_local'],
  ['fd12:3456::1', 'unique_local'],
  ['fd00:ec2::254', 'metadata'],
  ['ff02::1', 'multicast'],
  ['2001:db8::1', 'documentation'],
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['::FFFF:10.1.2.3', 'private'],
  ['::ffff:169.254.169.254', 'metadata'],
  ['::ffff:8.8.8.8', 'public'],
  ['::127.0.0.1', 'reserved'],
  ['64:ff9b::a9fe:a9fe', 'metadata'],
  ['64:ff9b::808:808', 'public'],
  ['2002:c0a8:101::1', 'private'],
  ['2001::1', 'reserved'],
  ['localhost', 'invalid'],
  ['', 'invalid'],
];

t.test('address classification', async (t) => {
  for (const [address, cls] of TABLE) t.equal(classifyAddress(address), cls, address);
});

t.test('only public addresses pass unless private targets are allowed', async (t) => {
  for (const [address, cls] of TABLE) {
    t.equal(addressAllowed(address, false), cls === 'public', `${address} with private refused`);
    t.equal(addressAllowed(address, true), cls !== 'invalid', `${address} with private allowed`);
  }
});

t.test('webhook URLs as given: scheme, credentials, literal addresses', async (t) => {
  t.equal(checkWebhookUrl('https://example.com/hook', false), null);
  t.equal(checkWebhookUrl('http://localhost:8080/hook', false), null, 'names are judged at delivery');
  t.equal(checkWebhookUrl('http://127.0.0.1:8080/', true), null, 'allowed when private targets are');
  for (const url of [
    'ftp://example.com/',
    'file:///etc/passwd',
    'not a url',
    'javascript:alert(1)',
    'https://u:p@example.com/',
  ])
    t.equal(checkWebhookUrl(url, false)?.code, 'invalid_webhook_url', url);
  for (const url of [
    'http://127.0.0.1/',
    'http://10.0.0.7/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://169.254.169.254/latest/meta-data',
    'http://2130706433/',
    'http://0x7f.1/',
    'http://[fd00::1]:8443/',
    'http://0.0.0.0:80/',
  ])
    t.equal(checkWebhookUrl(url, false)?.code, 'webhook_url_not_allowed', url);
});
