# One image for the portal's processes (web, worker, beat) and devcloud: each container runs
# lines of the Procfile, e.g. `honcho start --env /dev/null web worker beat`, and
# `python manage.py healthcheck web|worker|beat` checks it (docker-compose.production.yml).

# The calling page's JavaScript, bundled from the npm packages into static/dist/.
FROM node:20-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY static/js static/js
RUN npm run build

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
COPY --from=assets /app/static/dist static/dist
# A fixed uid: Docker secrets mounted from files must be readable by it.
RUN useradd --uid 1000 --create-home portal && mkdir -p var/prometheus && chown -R portal var
USER portal
EXPOSE 8000
