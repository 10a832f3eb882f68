# The Data Hub platform image: one image for every process, the command chooses which
# (bodyfriend_assets/serve.py; README, "Deployment"):
#   docker run IMAGE                 the webserver (the default)
#   docker run IMAGE daemon          schedules, sensors, run queue
#   docker run IMAGE code-server     the definitions over gRPC
#   docker run IMAGE worker          a Celery worker for BODYFRIEND_EXECUTOR=celery
# Configuration comes only from the environment: the connection variables are set by the
# deployment, never baked in.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/bodyfriend/dagster_home \
    BODYFRIEND_ENV=production \
    BODYFRIEND_BIND_HOST=0.0.0.0
WORKDIR /opt/bodyfriend

# Dependencies first, pinned by constraints.txt, so this layer stays cached while the source
# changes. A stub package lets pip install the project's dependencies and console scripts; the
# real source replaces it below (an editable install points at this folder).
COPY constraints.txt setup.py ./
RUN mkdir bodyfriend_assets \
    && touch bodyfriend_assets/__init__.py \
    && pip install --no-cache-dir --constraint constraints.txt --editable '.[celery]' \
    && rm -rf bodyfriend_assets

COPY bodyfriend_assets ./bodyfriend_assets
COPY dagster.yaml ./dagster_home/dagster.yaml
# A numeric, unprivileged user; it owns only DAGSTER_HOME (Dagster's local files), not the code.
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin bodyfriend \
    && chown -R 10001:10001 /opt/bodyfriend/dagster_home
USER 10001:10001

EXPOSE 3000 4000
# The webserver's health: /server_info answers. A container running another process overrides it
# with `bodyfriend-serve check daemon|code-server|worker`.
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=3 \
    CMD ["bodyfriend-serve", "check", "webserver"]
ENTRYPOINT ["bodyfriend-serve"]
CMD ["webserver"]
