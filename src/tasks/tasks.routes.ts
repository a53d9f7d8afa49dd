import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problems } from '../http/schemas.js';
import { MyTasksQuery, Task, TaskList, TaskParams } from './tasks.schemas.js';
import * as tasks from './tasks.service.js';

export const taskRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['tasks'];

  app.get(
    '/tasks/:taskId',
    {
      schema: {
        operationId: 'getTask',
        tags,
        summary: 'A task with its live claims count',
        params: TaskParams,
        response: { 200: Task, ...problems(400, 401, 404) },
      },
    },
    async (request) => tasks.getTask(app, request.user.sub, request.params.taskId),
  );

  app.get(
    '/me/tasks',
    {
      schema: {
        operationId: 'listMyClaimableTasks',
        tags,
        summary: 'Tasks I could claim now, in all my circles, in claims/next order',
        querystring: MyTasksQuery,
        response: { 200: TaskList, ...problems(400, 401) },
      },
    },
    async (request) => tasks.listMyClaimableTasks(app, request.user.sub, request.query),
  );
};
