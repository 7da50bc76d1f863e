# The studio's image: API, UI and worker in one; docker-compose.yml picks the command per service.
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 STUDIO_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY backend/ backend/
COPY worker/ worker/
COPY migrations/ migrations/
RUN pip install -e '.[worker]'
COPY --from=frontend /src/frontend/dist frontend/dist
RUN useradd --create-home --uid 1000 studio && mkdir -p /data && chown studio /data
USER studio
EXPOSE 8000
CMD ["studio", "serve", "--host", "0.0.0.0", "--port", "8000"]
