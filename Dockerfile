# tradewatch: one image for every process (ingest, analysis, alerts and reports workers, beat,
# flower, and the one-shot `tradewatch db upgrade`). docker-compose.yml chooses the command.
# No secrets are baked in: every TRADEWATCH_* URL and receiver key comes from the environment
# at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRADEWATCH_STATE_DIR=/var/lib/tradewatch

# An unprivileged user owns the state directory (beat schedule, AuditClient spool); a named
# volume mounted there starts with this ownership.
RUN groupadd --system --gid 10001 tradewatch \
    && useradd --system --uid 10001 --gid tradewatch --home-dir /var/lib/tradewatch --no-create-home --shell /usr/sbin/nologin tradewatch \
    && install -d -o tradewatch -g tradewatch -m 0750 /var/lib/tradewatch

# psycopg[binary] and hiredis ship wheels, so no compiler or libpq is needed. The sources are
# removed after a regular (not editable) install: the package, its Alembic migrations included,
# runs from site-packages.
WORKDIR /tmp/tradewatch-src
COPY pyproject.toml README.md ./
COPY tradewatch ./tradewatch
RUN pip install ".[ops]" \
    && cd / && rm -rf /tmp/tradewatch-src

USER tradewatch:tradewatch
WORKDIR /var/lib/tradewatch

# Flower's port; workers and beat listen on nothing.
EXPOSE 5555

CMD ["celery", "-A", "tradewatch.tasks.app", "worker", "-Q", "audit", "--concurrency", "2", "-n", "ingest@%h"]
