import t from 'tap';
import { lockCircle } from '../../src/circles/circles.repository.js';
import { heldTransaction } from '../held-transaction.js';
import { buildTestApp, call, createCircle, registerUser } from '../helper.js';
import { answeredOrBlocked, backendPid } from '../lock-waits.js';
import { addTasks, claimTask, createProject, joinMembers } from '../marketplace-helpers.js';

// A settings edit locks the circle's row while it works. Every row inserted in the circle checks
// its circle_id foreign key with a KEY SHARE lock on that row, so the edit's lock must leave KEY
// SHARE free, or claims and joins queue behind it. The test holds the edit's lock itself and
// watches Postgres's lock queue, so the interleaving is certain.

t.test("a circle's settings edit holds up no claim or join, and two edits take turns", async (t) => {
  const { app, db } = await buildTestApp(t);
  const owner = await registerUser(app, 'owner');
  const circle = await createCircle(app, owner);
  const [alice] = await joinMembers(app, circle.id, 1);
  const project = await createProject(app, owner, circle.id);
  const [task] = await addTasks(app, owner, project.id, [{ title: 'Open' }]);
  const newcomer = await registerUser(app, 'newcomer');

  const edit = await heldTransaction(db, async (trx) => {
    t.ok(await lockCircle(trx, circle.id), 'the edit holds the circle');
    return backendPid(trx);
  });

  const claim = await answeredOrBlocked(db, edit.value, claimTask(app, alice!, task!.id), 60_000);
  t.ok(
    'answered' in claim,
    `a claim is answered while the circle is held (${'blocked' in claim ? `blocked: ${claim.blocked}` : 'answered'})`,
  );
  if ('answered' in claim) t.equal(claim.answered.status, 201);

  const join = await answeredOrBlocked(
    db,
    edit.value,
    call(app, 'POST', `/v1/circles/${circle.id}/members`, { token: newcomer.token, body: {} }),
    60_000,
  );
  t.ok(
    'answered' in join,
    `a join is answered while the circle is held (${'blocked' in join ? `blocked: ${join.blocked}` : 'answered'})`,
  );
  if ('answered' in join) t.equal(join.answered.status, 201);

  const rename = call(app, 'PATCH', `/v1/circles/${circle.id}`, { token: owner.token, body: { name: 'Renamed' } });
  const second = await answeredOrBlocked(db, edit.value, rename, 60_000);
  t.ok('blocked' in second, 'a second edit waits for the first');
  await edit.commit();
  t.equal((await rename).status, 200, 'and goes on once it is done');
});
