import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ProjectParams, problems } from '../http/schemas.js';
import { CreateTasksBody, TaskItems, TaskList, TaskListQuery } from '../tasks/tasks.schemas.js';
import * as projectTasks from './project-tasks.service.js';

export const projectTaskRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['tasks'];

  app.post(
    '/projects/:projectId/tasks',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'addTasks',
        tags,
        summary: 'Add task trees in one transaction (owner, admin)',
        params: ProjectParams,
        body: CreateTasksBody,
        response: { 201: TaskItems, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(await projectTasks.createTasks(app, request.user.sub, request.params.projectId, request.body)),
  );

  app.get(
    '/projects/:projectId/tasks',
    {
      schema: {
        operationId: 'listProjectTasks',
        tags,
        summary: 'Tasks of a project',
        params: ProjectParams,
        querystring: TaskListQuery,
        response: { 200: TaskList, ...problems(400, 401, 404) },
      },
    },
    async (request) => projectTasks.listTasks(app, request.user.sub, request.params.projectId, request.query),
  );
};
