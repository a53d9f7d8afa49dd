import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { ERROR_CODES, type ErrorCode, type ErrorCodeEntry, isErrorCode } from '../error-codes.js';
import { notFound } from '../errors.js';
import { STATUS_OF, problemTypeUri } from './errors.js';
import { problems } from './schemas.js';

// Every problem's `type` is the address of one of these pages: what the code means and what to do,
// generated from the registry of codes, so a code cannot exist without its page.

export const statusOfCode = (entry: ErrorCodeEntry): number =>
  entry.kind === 'http' ? entry.status : STATUS_OF[entry.kind];

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// Backticks in the registry's texts mark code, as in Markdown.
const inline = (text: string) => escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>');

const page = (title: string, body: string) =>
  `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
  '<meta name="viewport" content="width=device-width, initial-scale=1"></head>' +
  `<body style="font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; line-height: 1.5">${body}</body></html>\n`;

function codePage(code: ErrorCode): string {
  const entry: ErrorCodeEntry = ERROR_CODES[code];
  return page(
    `${code} — Circle Actions`,
    `<p><a href="/problems">All error codes</a></p><h1><code>${code}</code></h1>` +
      `<p>HTTP status: <strong>${statusOfCode(entry)}</strong>, body <code>application/problem+json</code> with <code>"code": "${code}"</code>.</p>` +
      `<h2>What it means</h2><p>${inline(entry.summary)}</p>` +
      `<h2>What to do</h2><p>${inline(entry.remedy)}</p>`,
  );
}

function indexPage(): string {
  const rows = (Object.keys(ERROR_CODES) as ErrorCode[])
    .sort()
    .map((code) => {
      const entry: ErrorCodeEntry = ERROR_CODES[code];
      return `<tr><td><a href="${problemTypeUri(code)}"><code>${code}</code></a></td><td>${statusOfCode(entry)}</td><td>${inline(entry.summary)}</td></tr>`;
    })
    .join('\n');
  return page(
    'Error codes — Circle Actions',
    '<h1>Error codes</h1><p>Every error answer is <code>application/problem+json</code> with a stable <code>code</code>; ' +
      "its <code>type</code> links to the code's page below.</p>" +
      `<table><thead><tr><th>code</th><th>status</th><th>meaning</th></tr></thead><tbody>\n${rows}\n</tbody></table>`,
  );
}

const Html = (description: string) => ({
  description,
  content: { 'text/html': { schema: Type.String({ description: 'An HTML page' }) } },
});

export const problemPages: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['problems'];

  app.get(
    '/problems',
    {
      schema: {
        tags,
        operationId: 'listProblemTypes',
        security: [],
        summary: 'Every error code the service answers with, as an HTML page',
        response: { 200: Html('The list of error codes') },
      },
    },
    async (_request, reply) => reply.type('text/html; charset=utf-8').send(indexPage()),
  );

  app.get(
    '/problems/:code',
    {
      schema: {
        tags,
        operationId: 'getProblemType',
        security: [],
        summary: "One error code's page: what it means and what to do (the `type` of every problem links here)",
        params: Type.Object(
          { code: Type.String({ maxLength: 64, description: 'The error code, e.g. task_full' }) },
          { additionalProperties: false },
        ),
        response: { 200: Html("The code's page"), ...problems(404) },
      },
    },
    async (request, reply) => {
      const { code } = request.params;
      if (!isErrorCode(code)) throw notFound('problem_type');
      return reply.type('text/html; charset=utf-8').send(codePage(code));
    },
  );
};
