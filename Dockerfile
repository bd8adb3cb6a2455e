# syntax=docker/dockerfile:1
# One image for every app service (web, worker, beat, migrate); docker-compose.yml picks
# the command. Build: `docker build -t pncp-mirror .`

# --- Stage 1: install the pinned runtime dependencies into a self-contained virtualenv -------
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --upgrade pip \
    && pip install --no-cache-dir -r /tmp/requirements.txt

# --- Stage 2: the runtime image --------------------------------------------------------------
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH="/opt/venv/bin:$PATH" \
    DJANGO_SETTINGS_MODULE=config.settings \
    WEB_CONCURRENCY=3

# Unprivileged runtime user; it owns nothing in the image.
RUN groupadd --system app \
    && useradd --system --gid app --home-dir /app --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Code stays root-owned: the app user can read it but not modify it.
COPY . /app

# Static files are collected at build time. Settings must import, so a throwaway key and
# DEBUG=1 are given to this one command only; they are not baked into the image environment.
RUN SECRET_KEY=build-only-not-secret DEBUG=1 python manage.py collectstatic --noinput

USER app

EXPOSE 8000

# Shell form (via sh -c) so ${WEB_CONCURRENCY} expands at run time; exec hands PID 1 to gunicorn.
CMD ["sh", "-c", "exec gunicorn config.wsgi:application --bind 0.0.0.0:8000 --workers ${WEB_CONCURRENCY:-3} --access-logfile -"]
