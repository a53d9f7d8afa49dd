import { Type } from 'typebox';
import { Id, Obj } from '../http/schemas.js';
import { Skill } from '../accounts/accounts.schemas.js';
import { MAX_DEPENDENCIES } from '../tasks/task-tree.js';

export const EditTaskBody = Obj(
  {
    title: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'New title, 1-200 characters' })),
    description: Type.Optional(
      Type.String({ maxLength: 10000, description: 'New description, up to 10000 characters' }),
    ),
    skills: Type.Optional(
      Type.Array(Skill, { maxItems: 20, description: 'Skills the task needs (at most 20); leaf tasks only' }),
    ),
    priority: Type.Optional(
      Type.Integer({
        minimum: -1000,
        maximum: 1000,
        description: 'Higher is offered first by claims/next; leaf tasks only',
      }),
    ),
    slots: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: 'How many members may hold it at once; not below the live claims (409); leaf tasks only',
      }),
    ),
    requiredAccepts: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        description:
          'Accepted submissions needed; at or below the accepts counted the task becomes done; leaf tasks only',
      }),
    ),
    weight: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000000,
        description: 'Effort points for accepts from now on; accepted work keeps its points; leaf tasks only',
      }),
    ),
  },
  'Changes to an open task; fields left out stay as they are',
  { examples: [{ title: '翻译第 1-12 段', weight: 4, priority: 10 }] },
);

export const CancelTaskBody = Obj(
  {
    reason: Type.String({
      minLength: 1,
      maxLength: 1000,
      description: 'Why the task is cancelled; shown to the members whose claims it revokes',
    }),
  },
  'Cancellation',
  { examples: [{ reason: '这一段已在上一期译完，不再需要。' }] },
);

export const DependenciesBody = Obj(
  {
    dependsOn: Type.Array(Id('A task of the same project'), {
      maxItems: MAX_DEPENDENCIES,
      description: `Every task this one waits for (at most ${MAX_DEPENDENCIES}); replaces the current list, [] removes them all`,
    }),
  },
  "The task's dependencies",
  { examples: [{ dependsOn: ['5e0b9a44-7c21-4d3f-8e6a-1f2b3c4d5e6f', 'b7c1d2e3-f4a5-4b6c-9d7e-8f9a0b1c2d3e'] }] },
);
