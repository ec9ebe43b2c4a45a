#!/usr/bin/env bash
# The Next.js example (examples/nextjs-bypass) on the real framework, from its own lockfile and the
# npm registry only: install, typecheck, lint, `next build`, then tests/nextjs-example.test.ts serves
# it with `next start` against the Clerk sandbox and probes it over HTTP.
#   scripts/nextjs-example.sh          all of it (what .ci/run calls)
#   scripts/nextjs-example.sh build    install, typecheck, lint and build only
set -euo pipefail
cd "$(dirname "$0")/.."
export NEXT_TELEMETRY_DISABLED=1 CLERK_TELEMETRY_DISABLED=1
app=examples/nextjs-bypass
(
  cd "$app"
  npm ci --no-audit --no-fund
  npm run typecheck
  npm run lint -- --max-warnings 0
  # nice: the build is CPU heavy and CI machines are shared.
  nice -n 10 npx next build
)
[ "${1:-all}" = build ] && exit 0
npx vitest run tests/nextjs-example.test.ts
