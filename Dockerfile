# The Data Hub platform image: Dagster webserver, daemon and run workers share it.
FROM python:3.11-slim

# pymssql and psycopg2-binary ship wheels; nothing to compile.
WORKDIR /opt/bodyfriend
ENV PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/bodyfriend/dagster_home

# Dependencies first, so this layer stays cached while the source changes.
COPY setup.py ./
RUN mkdir bodyfriend_assets && touch bodyfriend_assets/__init__.py \
    && pip install --no-cache-dir -e . \
    && rm -rf bodyfriend_assets

COPY bodyfriend_assets ./bodyfriend_assets
COPY workspace.yaml dagster.yaml ./
RUN mkdir -p "$DAGSTER_HOME" && cp dagster.yaml "$DAGSTER_HOME/" \
    && useradd --create-home bodyfriend && chown -R bodyfriend /opt/bodyfriend
USER bodyfriend

# Production sets BODYFRIEND_LEGACY_URL, BODYFRIEND_DATAHUB_URL and DAGSTER_PG_URL.
EXPOSE 3000
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-w", "workspace.yaml"]
