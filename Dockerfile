# One image for the worker and the API (docker-compose.yml picks the command). TypeScript runs
# through tsx, a runtime dependency, so there is no build step.
FROM node:20-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so this layer is rebuilt only when the lockfile changes.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# Only the directories the processes load, named one by one: with no .dockerignore, `COPY . .`
# would bring in the host's node_modules and .data/ (local databases and development keys).
COPY tsconfig.json ./
COPY activities ./activities
COPY api ./api
COPY db ./db
COPY eligibility ./eligibility
COPY lib ./lib
COPY policy ./policy
COPY workers ./workers
COPY workflows ./workflows

# The files stay root-owned, so the process cannot rewrite its own code.
USER node

EXPOSE 3000
CMD ["npx", "tsx", "api/main.ts"]
