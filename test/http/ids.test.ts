import t from 'tap';
import { buildTestApp, call, createCircle, isProblem, registerUser } from '../helper.js';
import { addTasks, countRows, createProject } from '../marketplace-helpers.js';

// Ids in paths and bodies: one spelling reaches the database, whatever case the client sends;
// anything that only looks like a uuid is a 400 before any query runs.

t.test('a uuid wrapped as a URN or in braces is a 400, not a failed cast', async (t) => {
  const { app } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  for (const spelled of [`urn:uuid:${circle.id}`, `{${circle.id}}`, `${circle.id.replaceAll('-', '')}`]) {
    const res = await call(app, 'GET', `/v1/circles/${encodeURIComponent(spelled)}`, { token: owner.token });
    t.ok(isProblem(res, 400, 'invalid_request'), spelled);
    t.equal(res.body.errors?.[0]?.path, 'params/circleId');
  }
  const project = await createProject(app, owner, circle.id);
  const res = await call(app, 'POST', `/v1/projects/${project.id}/tasks`, {
    token: owner.token,
    body: { parentId: `urn:uuid:${project.id}`, tasks: [{ title: 'A' }] },
  });
  t.ok(isProblem(res, 400, 'invalid_request'), 'in a body too');
});

t.test('an id in capitals is the same id', async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const lower = await call(app, 'GET', `/v1/circles/${circle.id}`, { token: owner.token });
  const upper = await call(app, 'GET', `/v1/circles/${circle.id.toUpperCase()}`, { token: owner.token });
  t.equal(upper.status, 200);
  t.same(upper.body, lower.body);

  // The self-dependency check compares the path's id with the body's: both are lower-cased first.
  const project = await createProject(app, owner, circle.id);
  const [task] = await addTasks(app, owner, project.id, [{ title: 'A' }]);
  const before = await countRows(db, 'task_dependencies');
  for (const [path, body] of [
    [task!.id.toUpperCase(), task!.id],
    [task!.id, task!.id.toUpperCase()],
  ]) {
    const res = await call(app, 'PUT', `/v1/tasks/${path}/dependencies`, {
      token: owner.token,
      body: { dependsOn: [body] },
    });
    t.ok(isProblem(res, 400, 'invalid_dependencies'), 'a task cannot depend on itself, in any case');
  }
  t.equal(await countRows(db, 'task_dependencies'), before, 'nothing stored');

  const [other] = await addTasks(app, owner, project.id, [{ title: 'B' }]);
  const set = await call(app, 'PUT', `/v1/tasks/${task!.id.toUpperCase()}/dependencies`, {
    token: owner.token,
    body: { dependsOn: [other!.id.toUpperCase()] },
  });
  t.equal(set.status, 200);
  t.match(set.body, { id: task!.id, dependsOn: [other!.id] }, 'answered in the spelling Postgres returns');
});
