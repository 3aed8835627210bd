# openedx-event-sink: `sink run` by default; any other subcommand by argument
# (`docker run IMAGE migrate`, `docker compose run --rm sink report course-summary`).
#
# Layout: the checkout's files live in /app and the package is installed from there in editable
# mode, so the code, alembic.ini and migrations/ exist once, as in a checkout: `sink migrate`
# finds them next to the `sink` package (sink/schema_check.py; a wheel would carry the migrations
# inside the package instead, see pyproject.toml). Everything copied comes
# from the repository; the build needs nothing else but the base image and PyPI.
#
#   docker build -t openedx-event-sink .
#   docker build --build-arg EXTRAS=duckdb -t openedx-event-sink:duckdb .   # DuckDB warehouse too

FROM python:3.12.12-slim-bookworm

# Extras of pyproject.toml to install as well (comma-separated); none by default: the image runs
# against PostgreSQL or SQLite, and the dev tools stay out.
ARG EXTRAS=""

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SINK_LOG_FORMAT=json \
    SINK_METRICS_PORT=9108

RUN groupadd --system --gid 10001 sink \
    && useradd --system --uid 10001 --gid sink --home-dir /var/lib/sink --create-home \
        --shell /usr/sbin/nologin sink

WORKDIR /app

# Dependencies first: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
COPY docker/requirements.py docker/requirements.py
RUN python docker/requirements.py pyproject.toml --extras "$EXTRAS" > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The source, then the package itself (no dependency resolution: they are all there already).
COPY README.md alembic.ini ./
COPY migrations ./migrations
COPY sink ./sink
RUN pip install --no-deps --no-build-isolation --editable . \
    && python -m compileall -q /app/sink /app/migrations \
    && sink --version

# The working directory is the sink user's own: a default `sqlite:///sink.db` warehouse, or any
# file a command writes, lands there (a volume can be mounted on it).
WORKDIR /var/lib/sink
# Numeric, so that runtimes enforcing a non-root user (Kubernetes runAsNonRoot) can verify it.
USER 10001:10001

EXPOSE 9108

# /healthz answers 200 while the daemon's loop is alive. Only `sink run` serves it, on
# SINK_METRICS_PORT (0 disables it, and with it this check); one-shot commands should disable the
# check (compose: `healthcheck: {disable: true}`). Standard library only: slim images have no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SINK_METRICS_PORT', '9108') + '/healthz', timeout=4)"]

ENTRYPOINT ["sink"]
CMD ["run"]
