// Architecture rules, checked by `npm run lint` (dependency-cruiser). The folders of src/ are the
// layers: infra (connections, SQL helpers) at the bottom, domain folders (one per business area)
// above it, http (cross-cutting HTTP machinery) beside them, and the entry points on top.
const DOMAIN = '^src/(?!http/|infra/|jobs/)[^/]+/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Modules must not import each other in a circle, directly or through others.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'http-imports-no-domain',
      severity: 'error',
      comment: 'src/http is cross-cutting HTTP machinery: it knows no business area.',
      from: { path: '^src/http/' },
      to: { path: DOMAIN },
    },
    {
      name: 'domain-independent-of-http',
      severity: 'error',
      comment:
        'Business rules, services, repositories and jobs do not depend on HTTP; only a folder\'s routes, schemas and plugin files translate HTTP.',
      from: { path: DOMAIN, pathNot: '\\.(routes|schemas|plugin)\\.ts$' },
      to: { path: '^src/http/' },
    },
    {
      name: 'infra-imports-no-domain-or-jobs',
      severity: 'error',
      comment: 'src/infra holds connections and SQL helpers; it must not reach up into business areas or jobs.',
      from: { path: '^src/infra/' },
      to: { path: '^src/', pathNot: '^src/(infra/|config\\.ts$|errors\\.ts$)' },
    },
    {
      name: 'migrations-are-frozen',
      severity: 'error',
      comment: 'Migrations are frozen in time: they import nothing from the application.',
      from: { path: '^db/migrations/' },
      to: { path: '^src/' },
    },
    {
      name: 'client-imports-no-service',
      severity: 'error',
      comment: 'src/client is the typed client of the API: it stands alone, speaking to the service over HTTP only.',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: '^src/client/' },
    },
    {
      name: 'service-imports-no-client',
      severity: 'error',
      comment: 'The service never calls itself through its client.',
      from: { path: '^src/', pathNot: '^src/client/' },
      to: { path: '^src/client/' },
    },
    {
      name: 'no-test-code-in-src',
      severity: 'error',
      comment: 'The service never imports test or script code.',
      from: { path: '^src/' },
      to: { path: '^(test|scripts)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
