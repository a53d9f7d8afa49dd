import t from 'tap';
import { call, isProblem } from '../helper.js';
import { objectsIn, sampleOf, withField } from './schema-sample.js';
import { buildWorld, defaultParams, fillPath, routeTable, snapshot } from './world.js';

// Bodies are whitelisted by their schemas (DESIGN.md section 7): a field the schema does not name
// is a 400 naming that field, at any depth of the body, and the request changes nothing. Checked
// for every body schema in the OpenAPI document, with the fields an attacker would try.

const EXTRA_FIELDS: Record<string, unknown> = {
  id: '00000000-0000-4000-8000-000000000001',
  status: 'settled',
  ownerId: '00000000-0000-4000-8000-000000000002',
  owner_id: '00000000-0000-4000-8000-000000000002',
  points: 1_000_000,
  amount: 1_000_000,
  balance: 1_000_000,
  role: 'owner',
  userId: '00000000-0000-4000-8000-000000000003',
  user_id: '00000000-0000-4000-8000-000000000003',
  circleId: '00000000-0000-4000-8000-000000000004',
  projectId: '00000000-0000-4000-8000-000000000005',
  createdBy: '00000000-0000-4000-8000-000000000006',
  createdAt: '2000-01-01T00:00:00Z',
  liveClaims: 0,
  isAdmin: true,
  passwordHash: 'scrypt$x',
};

t.test(
  'every body schema refuses unknown fields at every level with 400 naming the field; nothing changes',
  async (t) => {
    const world = await buildWorld(t);
    const { app, db, users } = world;
    const routes = (await routeTable(app)).filter((r) => r.body);
    t.ok(routes.length >= 15, `${routes.length} routes take a body`);
    const params = defaultParams(world);

    let requests = 0;
    for (const route of routes) {
      const url = fillPath(route.path, params);
      const base = sampleOf(route.body!, { uuid: users.member.id });
      const objects = objectsIn(route.body!, base, 'body');
      t.ok(objects.length >= 1, `${route.key}: its body is an object`);
      for (const object of objects) {
        t.equal(object.schema.additionalProperties, false, `${route.key} ${object.path} is closed to unknown fields`);
        for (const [field, value] of Object.entries(EXTRA_FIELDS)) {
          if (object.schema.properties && field in object.schema.properties) continue; // a real field here
          const body = withField(base, object.path, field, value);
          const before = await snapshot(db);
          const res = await call(app, route.method, url, { token: users.owner.token, body });
          requests++;
          const label = `${route.key} with ${object.path}/${field}`;
          t.ok(isProblem(res, 400, 'invalid_request'), `${label}: ${res.status} ${JSON.stringify(res.body)}`);
          t.same(
            res.body.errors,
            [{ path: `${object.path}/${field}`, message: 'is not an allowed field' }],
            `${label}: only that field is named`,
          );
          t.equal(await snapshot(db), before, `${label}: the database is unchanged`);
        }
      }
    }
    t.comment(`SUMMARY hostile/mass-assignment bodyRoutes=${routes.length} requests=${requests}`);
  },
);

t.test('every query schema refuses unknown parameters', async (t) => {
  const world = await buildWorld(t);
  const routes = (await routeTable(world.app)).filter(
    (r) => r.path.startsWith('/v1/') && Object.keys(r.query).length && r.method === 'GET',
  );
  t.ok(routes.length >= 8, `${routes.length} routes take a query`);
  for (const route of routes) {
    const url = `${fillPath(route.path, defaultParams(world))}?userId=${world.users.owner.id}&role=owner`;
    const res = await call(world.app, route.method, url, { token: world.users.member.token });
    t.ok(isProblem(res, 400, 'invalid_request'), `${route.key}: ${res.status}`);
    // A route that filters by member names userId in its query: then only role is unknown.
    const unknown = ['role', 'userId'].filter((name) => !(name in route.query));
    t.same(
      res.body.errors.map((e: { path: string }) => e.path).sort(),
      unknown.map((name) => `querystring/${name}`),
      route.key,
    );
  }
});

t.test('prototype pollution in a JSON body is refused', async (t) => {
  const world = await buildWorld(t);
  const { app, db, users } = world;
  const before = await snapshot(db);
  for (const payload of [
    '{"name":"x","joinPolicy":"open","__proto__":{"role":"owner"}}',
    '{"name":"x","joinPolicy":"open","constructor":{"prototype":{"role":"owner"}}}',
  ]) {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/circles',
      headers: { authorization: `Bearer ${users.owner.token}`, 'content-type': 'application/json' },
      payload,
    });
    t.equal(res.statusCode, 400, payload);
    t.match(res.headers['content-type'], /^application\/problem\+json/);
  }
  t.equal(({} as Record<string, unknown>).role, undefined, 'Object.prototype is untouched');
  t.equal(await snapshot(db), before);
});
