import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { problems } from '../http/schemas.js';
import { Task, TaskParams } from '../tasks/tasks.schemas.js';
import { CancelTaskBody, DependenciesBody, EditTaskBody } from './task-management.schemas.js';
import * as management from './task-management.service.js';

export const taskManagementRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['tasks'];

  app.patch(
    '/tasks/:taskId',
    {
      schema: {
        operationId: 'updateTask',
        tags,
        summary: 'Edit an open task; history is never rewritten (owner, admin)',
        params: TaskParams,
        body: EditTaskBody,
        response: { 200: Task, ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (request) => management.editTask(app, request.user.sub, request.params.taskId, request.body),
  );

  app.post(
    '/tasks/:taskId/cancel',
    {
      schema: {
        operationId: 'cancelTask',
        tags,
        summary: 'Cancel a task and its open subtree, revoking live claims (owner, admin)',
        params: TaskParams,
        body: CancelTaskBody,
        response: { 200: Task, ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (request) => management.cancelTask(app, request.user.sub, request.params.taskId, request.body.reason),
  );

  app.put(
    '/tasks/:taskId/dependencies',
    {
      schema: {
        operationId: 'setTaskDependencies',
        tags,
        summary: "Replace a task's dependencies within its project (owner, admin)",
        params: TaskParams,
        body: DependenciesBody,
        response: { 200: Task, ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (request) =>
      management.replaceDependencies(app, request.user.sub, request.params.taskId, request.body.dependsOn),
  );
};
