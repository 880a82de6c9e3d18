# smsq: one image for `smsq api` and `smsq worker` (TypeScript run by tsx; no build step).

# ── Stage 1: production dependencies only, installed exactly from the lock file. ──
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ── Stage 2: runtime, as the unprivileged `node` user. ──
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json ./
COPY --chown=node:node bin ./bin
COPY --chown=node:node src ./src
COPY --chown=node:node workers ./workers
USER node
EXPOSE 3000
# /healthz answers while the process is up: the API (`smsq api`), or a worker started with
# `--http-port $PORT` (see docker-compose.yml).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => { process.exitCode = r.ok ? 0 : 1; }, () => { process.exitCode = 1; })"]
# SIGTERM reaches node directly (exec form): the first one drains, a second one aborts.
ENTRYPOINT ["node", "bin/smsq.js"]
CMD ["api"]
