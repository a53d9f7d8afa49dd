import t from 'tap';
import { canonicalJson, requestHash } from '../../src/idempotency/request-hash.js';

// The request hash behind an Idempotency-Key, without HTTP: the same request in any key order
// hashes the same; any difference in method, URL or body, however small, does not.

t.test('object keys are sorted at every depth; arrays keep their order', async (t) => {
  t.equal(
    canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } }),
    '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
  );
  t.equal(canonicalJson([2, 1]), '[2,1]');
  t.equal(canonicalJson('text'), '"text"');
  t.equal(canonicalJson(null), 'null');
  t.equal(canonicalJson({ __proto__: { x: 1 }, a: 1 }), '{"a":1}', 'a prototype is not part of the body');
  t.equal(
    canonicalJson(JSON.parse('{"__proto__": {"x": 1}, "a": 1}')),
    '{"__proto__":{"x":1},"a":1}',
    'an own "__proto__" key is kept as data',
  );
});

t.test('the same request in another key order hashes the same; any real difference does not', async (t) => {
  const base = requestHash('POST', '/v1/circles', { name: 'Readers', joinPolicy: 'open', tags: ['a', 'b'] });
  t.same(requestHash('POST', '/v1/circles', { tags: ['a', 'b'], joinPolicy: 'open', name: 'Readers' }), base);
  const different = [
    requestHash('PUT', '/v1/circles', { name: 'Readers', joinPolicy: 'open', tags: ['a', 'b'] }),
    requestHash('POST', '/v1/circles?x=1', { name: 'Readers', joinPolicy: 'open', tags: ['a', 'b'] }),
    requestHash('POST', '/v1/circles', { name: 'Readers', joinPolicy: 'open', tags: ['b', 'a'] }),
    requestHash('POST', '/v1/circles', { name: 'Readers ', joinPolicy: 'open', tags: ['a', 'b'] }),
    requestHash('POST', '/v1/circles', { name: 'Readers', joinPolicy: 'open', tags: ['a', 'b'], extra: null }),
    requestHash('POST', '/v1/circles', { name: 'Readers', joinPolicy: 'open', tags: ['a', 'b'], n: 1 }),
    requestHash('POST', '/v1/circles', { name: 'Readers', joinPolicy: 'open', tags: ['a', 'b'], n: '1' }),
  ];
  for (const [i, hash] of different.entries()) t.notSame(hash, base, `variant ${i}`);
  t.same(requestHash('POST', '/v1/x', undefined), requestHash('POST', '/v1/x', null), 'no body is a null body');
});
