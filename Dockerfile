# Worker image for clerk-incident-runbook (built by docker-compose.yml's `worker`).
# Debian slim, not Alpine: the Temporal SDK's native core bridge ships glibc builds.
FROM node:20.20-bookworm-slim

# Our postinstall (scripts/provision.ts) fetches the Temporal CLI for local dev;
# the worker only dials a server, so the image skips that download.
ENV SKIP_TEMPORAL_PROVISION=1
# A bounded V8 heap keeps the worker's RSS under 300 MB during a million-user revocation
# (bench/revoke.ts measures it this way); bundling the workflows at start fits in it too.
ENV NODE_OPTIONS=--max-old-space-size=128

WORKDIR /app

# Manifests first: source edits reuse the cached dependency layer. `npm ci`
# runs our postinstall, which with SKIP_TEMPORAL_PROVISION=1 imports nothing else.
COPY package.json package-lock.json ./
COPY scripts/provision.ts ./scripts/
RUN npm ci --omit=dev && npm cache clean --force

COPY tsconfig.json ./
COPY src ./src
COPY examples ./examples

# The image's non-root `node` user (uid 1000), by number so that Kubernetes'
# runAsNonRoot can verify it. Files stay root-owned, read-only to the process.
USER 1000:1000

# tsx is a runtime dependency; calling it directly avoids npx's lookup.
CMD ["node_modules/.bin/tsx", "src/worker/index.ts"]
