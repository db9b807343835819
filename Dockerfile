# syntax=docker/dockerfile:1
#
# Parley's one image. It runs every part: SERVICES=auth, chat or scaler picks
# what a server hosts (all three by default, embedded), `npm run migrate`
# applies the migrations alone, and services/controller/main.ts is the bundled
# controller. k8s/ and compose.yaml use it as `parley:latest`.
#
# NOT BUILT OR RUN HERE: no Docker engine runs on the development machines or in
# CI, so this file has never been built, and the image has never been started.
# What was checked offline: the k8s manifests that use it (npm test,
# test/k8s-manifests.test.ts). Build it with `docker build -t parley .`.

# Dependencies only (tsx included: it runs the TypeScript at start-up), from the
# lockfile, without dev tools. Own stage so the npm cache stays out of the image
# and this layer is reused until package*.json change.
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-slim AS runtime
ENV NODE_ENV=production \
    GRPC_PORT=50051 \
    WEB_PORT=8080 \
    PARLEY_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY proto ./proto
COPY gen ./gen
COPY services ./services
# The embedded mode (no DATABASE_URL) keeps PGlite's files here; mount a volume to keep them.
RUN mkdir -p /data && chown node:node /data
# The base image's unprivileged user (uid 1000); k8s/ runs it with runAsUser 1000.
USER node
# gRPC, and the web server (the app and gRPC-web; WEB_PORT=off turns it off).
EXPOSE 50051 8080
# node itself, not `npm start`: npm does not pass SIGTERM on, and the drain starts with it.
CMD ["node", "--import", "tsx", "services/main.ts"]
