# syntax=docker/dockerfile:1
#
# Parley's one image. It runs every part, as plain JavaScript built once in
# the build stage (dist/, scripts/build.ts): `node dist/services/main.js` is the
# server (SERVICES=auth, chat or scaler picks what it hosts; all three by
# default, embedded), `node dist/services/db/migrate-cli.js` applies the
# migrations alone, `node dist/services/controller/main.js` is the bundled
# controller. No TypeScript and no sources are in it. k8s/ and compose.yaml
# use it as `parley:latest`.
#
# NOT BUILT OR RUN HERE: no Docker engine runs on the development machines or in
# CI, so this file has never been built, and the image has never been started.
# What was checked offline: the k8s manifests that use it (npm test,
# test/k8s-manifests.test.ts), and the stages' files by hand in plain folders:
# the build stage's copies (sources without tests, scripts/build.ts) build,
# and dist/ alone with node_modules starts the server (embedded, serving the
# pre-built app), applies the migrations, and starts the controller and the
# terminal client. Build it with `docker build -t parley .`.

# Production dependencies only, from the lockfile. Own stage so the npm cache
# stays out of the image and this layer is reused until package*.json change.
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# The production build (scripts/build.ts, `npm run build`): plain JavaScript in
# dist/, with the Lua scripts, the migrations and the pre-built browser app.
# Its own install with the dev tools, so that it works wherever esbuild and tsx
# are listed; only dist/ leaves this stage.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY gen ./gen
COPY services ./services
COPY scripts/build.ts ./scripts/build.ts
RUN npm run build

FROM node:20-slim AS runtime
ENV NODE_ENV=production \
    GRPC_PORT=50051 \
    WEB_PORT=8080 \
    PARLEY_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY --from=build /app/dist ./dist
# The embedded mode (no DATABASE_URL) keeps PGlite's files here; mount a volume to keep them.
RUN mkdir -p /data && chown node:node /data
# The base image's unprivileged user (uid 1000); k8s/ runs it with runAsUser 1000.
USER node
# gRPC, and the web server (the app and gRPC-web; WEB_PORT=off turns it off).
EXPOSE 50051 8080 9464
# node itself, not `npm start`: npm does not pass SIGTERM on, and the drain starts with it.
# The other processes are in dist/ too: node dist/services/db/migrate-cli.js (the
# migrations alone), dist/services/controller/main.js, dist/services/client/terminal.js.
CMD ["node", "--enable-source-maps", "dist/services/main.js"]
