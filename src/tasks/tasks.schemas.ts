import { Type, type TSchema } from 'typebox';
import { Id, Obj, Page, PageQuery, Timestamp } from '../http/schemas.js';
import { Skill } from '../accounts/accounts.schemas.js';
import {
  MAX_DEPENDENCIES,
  MAX_PROJECT_TASKS,
  MAX_TREE_DEPTH,
  MAX_TREE_NODES,
  type TaskNodeInput,
} from './task-tree.js';

const nodeFields = {
  key: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 100,
      description: 'Client label, unique within the request; used only in dependsOn',
    }),
  ),
  title: Type.String({ minLength: 1, maxLength: 200, description: 'Task title, 1-200 characters' }),
  description: Type.Optional(
    Type.String({ maxLength: 10000, description: 'What to do and what counts as done, up to 10000 characters' }),
  ),
  weight: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 1000000,
      description: 'Effort points (1-1000000, default 1); accepted work earns weight x score',
    }),
  ),
  skills: Type.Optional(Type.Array(Skill, { maxItems: 20, description: 'Skills the task needs (at most 20)' })),
  slots: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 1000, description: 'How many members may hold it at once (default 1)' }),
  ),
  requiredAccepts: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 1000,
      description: 'Accepted submissions needed for the task to be done (default 1)',
    }),
  ),
  priority: Type.Optional(
    Type.Integer({ minimum: -1000, maximum: 1000, description: 'Higher is offered first by claims/next (default 0)' }),
  ),
  dependsOn: Type.Optional(
    Type.Array(
      Type.String({
        minLength: 1,
        maxLength: 100,
        description: 'A key from this request or the id of a task of the same project',
      }),
      {
        maxItems: MAX_DEPENDENCIES,
        description: `Tasks that must be done before this one can be claimed (at most ${MAX_DEPENDENCIES})`,
      },
    ),
  ),
};

/**
 * TaskNode nests its children. JSON Schema recursion would need $ref cycles that the docs tooling
 * renders poorly, so the schema is unrolled to the depth limit: deeper trees fail validation.
 */
function taskNode(levelsLeft: number): TSchema {
  if (levelsLeft <= 1) return Obj(nodeFields, 'A task (no further nesting allowed at this depth)');
  const children = Type.Array(taskNode(levelsLeft - 1), {
    maxItems: MAX_TREE_NODES,
    description: 'Sub-tasks; a task with children is done when all of them are',
  });
  return Obj({ ...nodeFields, children: Type.Optional(children) }, 'A task and, optionally, its sub-tasks');
}

export const TaskNode = Type.Unsafe<TaskNodeInput>(taskNode(MAX_TREE_DEPTH));
export const TaskForest = Type.Array(TaskNode, {
  minItems: 1,
  maxItems: MAX_TREE_NODES,
  description: `Task trees: at most ${MAX_TREE_NODES} tasks per request and ${MAX_PROJECT_TASKS} per project, at most ${MAX_TREE_DEPTH} levels deep counted from the project's top-level tasks; cycles and unknown keys are refused and nothing is created`,
});

export const Task = Type.Object(
  {
    id: Id('Task id'),
    projectId: Id('Project id'),
    parentId: Type.Union([Id('Parent task id'), Type.Null()], {
      description: 'Parent task id; null for a top-level task',
    }),
    title: Type.String({ description: 'Task title' }),
    description: Type.String({ description: 'Task description' }),
    weight: Type.Integer({ description: 'Effort points' }),
    skills: Type.Array(Type.String(), { description: 'Skills the task needs' }),
    slots: Type.Integer({ description: 'How many members may hold it at once' }),
    requiredAccepts: Type.Integer({ description: 'Accepted submissions needed for it to be done' }),
    priority: Type.Integer({ description: 'Higher is offered first' }),
    status: Type.Union([Type.Literal('open'), Type.Literal('done'), Type.Literal('cancelled')], {
      description: 'open, done or cancelled',
    }),
    isLeaf: Type.Boolean({ description: 'Only leaves can be claimed' }),
    blocked: Type.Boolean({ description: 'A task it depends on is not done yet' }),
    claimable: Type.Boolean({
      description: 'A member could claim it now (open project, open unblocked leaf with a free slot)',
    }),
    liveClaims: Type.Integer({ description: 'Claims holding a slot (active or submitted)' }),
    acceptedCount: Type.Integer({ description: 'Accepted submissions so far' }),
    dependsOn: Type.Array(Id('Task id'), { description: 'Tasks that must be done first' }),
    createdAt: Timestamp('When the task was created'),
  },
  { description: 'A task' },
);

export const TaskParams = Obj({ taskId: Id('Task id') });

export const CreateTasksBody = Obj(
  {
    parentId: Type.Optional(Id('Existing task to add the trees under; omitted for top level')),
    tasks: TaskForest,
  },
  'Tasks to add',
  {
    examples: [
      {
        tasks: [
          {
            key: 'notes',
            title: '为难句写批注',
            children: [
              { title: '批注第 1-10 段', weight: 2, skills: ['批注'] },
              { title: '批注第 11-20 段', weight: 2, skills: ['批注'], slots: 2 },
            ],
          },
        ],
      },
    ],
  },
);

export const TaskItems = Type.Object(
  { items: Type.Array(Task, { description: 'Created tasks, parents before children' }) },
  { description: 'Created tasks' },
);

export const TaskListQuery = Obj({
  ...PageQuery,
  status: Type.Optional(
    Type.Union([Type.Literal('open'), Type.Literal('done'), Type.Literal('cancelled')], {
      description: 'Only tasks in this status',
    }),
  ),
  skill: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: 'Only tasks needing this skill' })),
  claimable: Type.Optional(
    Type.Boolean({ description: 'true: only tasks a member could claim now, in claims/next order' }),
  ),
  parentId: Type.Optional(Id('Only children of this task')),
});

export const TaskList = Page(Task, 'Tasks');

export const MyTasksQuery = Obj({
  ...PageQuery,
  skill: Type.Optional(Type.String({ minLength: 1, maxLength: 40, description: 'Only tasks needing this skill' })),
});
