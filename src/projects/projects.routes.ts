import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ProjectParams, problems } from '../http/schemas.js';
import { CircleParams } from '../circles/circles.schemas.js';
import { CreateProjectBody, PatchProjectBody, Project, ProjectList, ProjectListQuery } from './projects.schemas.js';
import * as projects from './projects.service.js';

export const projectRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['projects'];

  app.post(
    '/circles/:circleId/projects',
    {
      config: { idempotent: true },
      schema: {
        operationId: 'createProject',
        tags,
        summary: 'Create a project, optionally with its task tree (owner, admin)',
        params: CircleParams,
        body: CreateProjectBody,
        response: { 201: Project, ...problems(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await projects.createProject(app, request.user.sub, request.params.circleId, request.body)),
  );

  app.get(
    '/circles/:circleId/projects',
    {
      schema: {
        operationId: 'listCircleProjects',
        tags,
        summary: 'Projects of a circle',
        params: CircleParams,
        querystring: ProjectListQuery,
        response: { 200: ProjectList, ...problems(400, 401, 404) },
      },
    },
    async (request) =>
      projects.listProjects(
        app,
        request.user.sub,
        request.params.circleId,
        request.query.limit ?? 50,
        request.query.cursor,
      ),
  );

  app.get(
    '/projects/:projectId',
    {
      schema: {
        operationId: 'getProject',
        tags,
        summary: 'A project with its progress',
        params: ProjectParams,
        response: { 200: Project, ...problems(400, 401, 404) },
      },
    },
    async (request) => projects.getProject(app, request.user.sub, request.params.projectId),
  );

  app.patch(
    '/projects/:projectId',
    {
      schema: {
        operationId: 'updateProject',
        tags,
        summary: 'Edit a project or change its status (owner, admin)',
        params: ProjectParams,
        body: PatchProjectBody,
        response: { 200: Project, ...problems(400, 401, 403, 404, 409) },
      },
    },
    async (request) => projects.updateProject(app, request.user.sub, request.params.projectId, request.body),
  );
};
