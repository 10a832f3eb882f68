"""Shared fixtures: a real PostgreSQL server, fresh databases per test.

The server is ``BODYFRIEND_TEST_PG_URL`` (a ``postgresql+psycopg2`` URL of a role that may create
databases) when set, otherwise the embedded server, started in a temporary BODYFRIEND_HOME so
the tests never touch a developer's own data.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url


@pytest.fixture(scope="session", autouse=True)
def bodyfriend_home(tmp_path_factory):
    """Every test (and every process a test starts) keeps local state in a temporary home."""
    home = tmp_path_factory.mktemp("bodyfriend_home")
    os.environ["BODYFRIEND_HOME"] = str(home)
    os.environ.pop("DAGSTER_HOME", None)
    return home


@pytest.fixture(autouse=True)
def close_pooled_connections():
    """The test session is one long process: a test's databases keep no idle connections after it
    (the server's connection limit is shared by the whole session)."""
    yield
    from bodyfriend_assets.resources import dispose_engines

    dispose_engines()


@pytest.fixture(scope="session")
def pg_server_url(bodyfriend_home) -> URL:
    given = os.environ.get("BODYFRIEND_TEST_PG_URL")
    if given:
        yield make_url(given)
        return
    from bodyfriend_assets import embedded
    from bodyfriend_assets.resources import dispose_engines

    yield embedded.server_url("postgres")
    dispose_engines()
    embedded.stop_server()  # the session's own server, in its temporary home


@pytest.fixture(scope="session")
def make_database(pg_server_url):
    """Factory: a new, empty database on the test server; returns its URL."""
    from bodyfriend_assets import embedded

    def make(prefix: str = "t") -> URL:
        url = pg_server_url.set(database=f"{prefix}_{uuid.uuid4().hex[:10]}")
        embedded.ensure_database(url)
        return url

    return make


@pytest.fixture
def legacy_url(make_database) -> URL:
    return make_database("legacy")


@pytest.fixture
def datahub_url(make_database) -> URL:
    return make_database("hub")


@pytest.fixture
def platform_env(monkeypatch, legacy_url, datahub_url):
    """Point the platform at this test's two databases, the way an operator would."""
    point_platform_at(monkeypatch, legacy_url, datahub_url)
    return legacy_url, datahub_url


@pytest.fixture
def hub(platform_env):
    """An engine on this test's Data Hub (the platform pointed at it, as by ``platform_env``)."""
    engine = sa.create_engine(platform_env[1])
    yield engine
    engine.dispose()


def point_platform_at(monkeypatch, legacy_url: URL, datahub_url: URL) -> None:
    monkeypatch.setenv("BODYFRIEND_LEGACY_URL", legacy_url.render_as_string(hide_password=False))
    monkeypatch.setenv("BODYFRIEND_DATAHUB_URL", datahub_url.render_as_string(hide_password=False))


def rows(url: URL, sql: str, **params) -> list:
    """The rows of one statement of a test's own SQL (committed), or [] if it returns none."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


def scalar(url: URL, sql: str, **params):
    """The first value of the first row of one statement of a test's own SQL."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()
