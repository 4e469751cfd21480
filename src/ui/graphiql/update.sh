#!/usr/bin/env bash
# Refreshes the GraphiQL assets the binary embeds from the packages pinned in package-lock.json:
# `npm ci` here, then the minified bundles, gzip'd (-n: no timestamp, so the files are reproducible).
# Run after changing a version in package.json (and `npm install --package-lock-only`).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
mkdir -p assets
for pair in graphiql/graphiql.min.js graphiql/graphiql.min.css \
            react/umd/react.production.min.js react-dom/umd/react-dom.production.min.js; do
  gzip -9 -n -c "node_modules/$pair" > "assets/$(basename "$pair").gz"
done
rm -rf node_modules
