# Worker image for clerk-incident-runbook (built by docker-compose.yml's `worker`).
# Debian slim, not Alpine: the Temporal SDK's native core bridge ships glibc builds.
#
# Two stages: `build` compiles src/ to JavaScript and bundles the workflows once (`npm run build`
# → dist/, dist/workflow-bundle.js); the runtime stage has production dependencies and dist/ only,
# so a restarted or autoscaled worker starts polling without tsx or webpack at start
# (bench/worker-start.ts measures the difference; docs/self-hosted.md has the figures).

FROM node:24-bookworm-slim AS build
# Our postinstall (scripts/provision.ts) fetches the Temporal CLI for local dev;
# the worker only dials a server, so the image skips that download.
ENV SKIP_TEMPORAL_PROVISION=1
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/provision.ts ./scripts/
# Dev dependencies too: the TypeScript compiler.
RUN npm ci && npm cache clean --force
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim
ENV SKIP_TEMPORAL_PROVISION=1
# A bounded V8 heap keeps the worker's RSS under 300 MB during a million-user revocation
# (bench/revoke.ts measures it this way).
ENV NODE_OPTIONS=--max-old-space-size=128

WORKDIR /app

# Manifests first: source edits reuse the cached dependency layer. `npm ci`
# runs our postinstall, which with SKIP_TEMPORAL_PROVISION=1 imports nothing else.
COPY package.json package-lock.json ./
COPY scripts/provision.ts ./scripts/
RUN npm ci --omit=dev && npm cache clean --force

COPY --from=build /app/dist ./dist

# Worker Versioning (docs/scale-out.md, "Upgrading the worker"): each image is one build of the
# deployment TEMPORAL_DEPLOYMENT_NAME (default clerk-incident-runbook). CI passes the commit:
#   docker build --build-arg TEMPORAL_BUILD_ID=0.1.0-$(git rev-parse --short=12 HEAD) .
# Without it (the image has no .git) the build id is the package version and the workflow bundle's hash.
ARG TEMPORAL_BUILD_ID=
ENV TEMPORAL_BUILD_ID=${TEMPORAL_BUILD_ID}

# The image's non-root `node` user (uid 1000), by number so that Kubernetes'
# runAsNonRoot can verify it. Files stay root-owned, read-only to the process.
USER 1000:1000

# Compiled JavaScript with the prebuilt workflow bundle next to it (src/worker/bundle.ts).
CMD ["node", "dist/worker/index.js"]
