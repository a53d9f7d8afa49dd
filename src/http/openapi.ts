import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

/** The OpenAPI 3 document, generated from the route schemas, and a docs page at /docs. */
export const openApiPlugin = fp(
  async (app) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Circle Actions API',
          version: '1.0.0',
          description:
            'Micro-task crowdsourcing for online communities. Errors are application/problem+json with a stable `code`. ' +
            'Lists are cursor-paginated ({items, nextCursor}). Creating POSTs accept an Idempotency-Key header.',
        },
        components: {
          securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
        },
        security: [{ bearer: [] }],
      },
      // Shared schemas keep their $id as their component name (e.g. #/components/schemas/Problem).
      refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
    });
    await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });
    app.get('/openapi.json', { schema: { hide: true }, config: { rateLimit: false } }, async () => app.swagger());
  },
  { name: 'openapi' },
);
