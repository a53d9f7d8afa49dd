import t from 'tap';
import { claimRevokedEvents } from '../../src/claims/claims.service.js';

// Every revocation (by a manager, by a task's cancellation, by the member's departure) writes its
// claim.revoked events through this one builder, so they all have the same shape: the claim as
// subject, its member as recipient (their inbox), the task and the reason in the payload.

const claim = (n: number) => ({
  id: `claim-${n}`,
  circle_id: `circle-${n}`,
  user_id: `member-${n}`,
  task_id: `task-${n}`,
});

t.test('one event per revoked claim, in order, naming its member as recipient', async (t) => {
  t.same(claimRevokedEvents([claim(1), claim(2)], { actorId: 'owner', reason: 'Reassigned' }), [
    {
      circleId: 'circle-1',
      type: 'claim.revoked',
      subjectId: 'claim-1',
      actorId: 'owner',
      recipientId: 'member-1',
      payload: { taskId: 'task-1', reason: 'Reassigned' },
    },
    {
      circleId: 'circle-2',
      type: 'claim.revoked',
      subjectId: 'claim-2',
      actorId: 'owner',
      recipientId: 'member-2',
      payload: { taskId: 'task-2', reason: 'Reassigned' },
    },
  ]);
});

t.test('a revocation by the service itself has no actor', async (t) => {
  const [event] = claimRevokedEvents([claim(1)], { actorId: null, reason: 'Gone' });
  t.equal(event!.actorId, null);
  t.equal(event!.recipientId, 'member-1', 'still in the member’s inbox');
  t.same(event!.payload, { taskId: 'task-1', reason: 'Gone' });
});

t.test('the payload carries the task and the reason only, whatever else the claim row holds', async (t) => {
  const row = { ...claim(3), status: 'revoked', revoke_reason: 'Gone', expires_at: new Date() };
  const [event] = claimRevokedEvents([row], { actorId: 'admin', reason: 'Gone' });
  t.same(Object.keys(event!).sort(), ['actorId', 'circleId', 'payload', 'recipientId', 'subjectId', 'type']);
  t.same(event!.payload, { taskId: 'task-3', reason: 'Gone' });
});

t.test('no claims, no events', async (t) => {
  t.same(claimRevokedEvents([], { actorId: 'owner', reason: 'x' }), []);
});
