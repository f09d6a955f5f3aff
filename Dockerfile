# syntax=docker/dockerfile:1
# Billing Access: a builder stage installs the lock (requirements.txt, every package by hash) and
# the portal's wheel into /venv; the runtime stage is python:3.12-slim with xmlsec1 (SAML), that
# venv, the collected static files, a non-root user and gunicorn (gunicorn.conf.py).
#   docker build -t billing-access .
#   docker compose up --build
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /venv
COPY requirements.txt ./
RUN /venv/bin/pip install --no-deps --require-hashes -r requirements.txt
COPY . .
RUN /venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /venv/bin/pip install --no-deps /wheels/*.whl

FROM ${PYTHON_IMAGE} AS runtime
# xmlsec1 checks SAML signatures (pysaml2 runs it); psycopg brings its own libpq (psycopg[binary]).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends xmlsec1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 portal \
    && useradd --system --uid 10001 --gid portal --home-dir /app --no-create-home portal
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=billing_access.settings \
    VAR_DIR=/app/var \
    GUNICORN_BIND=0.0.0.0:8000 \
    SAML_XMLSEC_BINARY=/usr/bin/xmlsec1
COPY --from=builder /venv /venv
WORKDIR /app
COPY gunicorn.conf.py ./
# Static files collected at build (WhiteNoise serves them, hashed and compressed); the keys here
# exist only for this command, which reads no database and writes no secret.
RUN SECRET_KEY=collectstatic-only-not-a-secret \
    FIELD_ENCRYPTION_KEY=Y29sbGVjdHN0YXRpYy1vbmx5LW5vdC1hLXNlY3JldC0= \
    django-admin collectstatic --no-input -v0 \
    && install -d -o portal -g portal /app/var/saml
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["gunicorn", "billing_access.wsgi"]
