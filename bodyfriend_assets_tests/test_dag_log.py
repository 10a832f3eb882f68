"""dag_log: materializations mirrored by the sensor, its cursor, the backfill.

A real Dagster instance on PostgreSQL (the production storage, dagster-postgres) in a fresh
database, real runs of real assets (trivial ones with the platform's keys, and a real lv0 asset on
a stand-in table), the sensor evaluated the way the daemon does, the Data Hub a real PostgreSQL.
Times are controlled with Dagster's ``freeze_time`` (events take their timestamp from it).
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.test_utils import freeze_time

from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.cli import cmd_dag_log_backfill
from bodyfriend_assets.compat.dag_ids import dag_ids_of
from bodyfriend_assets.compat.dag_log import (
    SENSOR_NAME,
    backfill_dag_log,
    build_dag_log_sensor,
    KeyPosition,
    completion_kst,
    format_cursor,
    load_positions,
)
from bodyfriend_assets.lv0 import build_lv0_asset
from bodyfriend_assets.resources import DataHub, LegacyDatabase

MAJOR, MINOR, GOODS = (dg.AssetKey(["lv0", "b_major"]), dg.AssetKey(["lv1", "b_minor"]), dg.AssetKey(["lv0", "r_goods"]))
DAG = {
    MAJOR: "legacy_to_lv0_UNIERP5.B_MAJOR",
    MINOR: "lv0_dag_UNIERP5.B_MINOR",
    GOODS: "legacy_to_lv0_RENTAL.R_GOODS",
}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# -- trivial assets with the platform's keys ------------------------------------------------


@dg.asset(key=MAJOR)
def b_major() -> dg.MaterializeResult:
    return dg.MaterializeResult()


@dg.asset(key=MINOR, deps=[MAJOR], metadata={"dag_id": DAG[MINOR]})
def b_minor() -> dg.MaterializeResult:
    return dg.MaterializeResult()


@dg.asset(key=GOODS)
def r_goods() -> dg.MaterializeResult:
    return dg.MaterializeResult()


@dg.asset(key=GOODS)
def r_goods_failing() -> dg.MaterializeResult:
    raise RuntimeError("the source is down")


@dg.asset(key=MINOR, deps=[MAJOR], metadata={"dag_id": DAG[MINOR]})
def b_minor_failing() -> dg.MaterializeResult:
    raise RuntimeError("the lv1 function failed")


def run(assets, instance, at: datetime, success: bool = True) -> dg.ExecuteInProcessResult:
    with freeze_time(at):
        result = dg.materialize(assets, instance=instance, raise_on_error=False)
    assert result.success is success
    return result


def report(instance, key: dg.AssetKey, at: datetime, **metadata) -> None:
    """A materialization reported from outside a run (as ``dagster asset report`` does)."""
    with freeze_time(at):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, metadata=metadata))


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def instance_url(make_database):
    return make_database("dagster")


@pytest.fixture
def instance(instance_url):
    """A Dagster instance whose storage is dagster-postgres, in its own fresh database."""
    url = instance_url.render_as_string(hide_password=False)
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": url}}}) as inst:
        yield inst


def dag_log(hub) -> list[tuple]:
    with hub.connect() as conn:
        if not sa.inspect(conn).has_table("dag_log", schema="public"):
            return []
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT dag_id, completion_date, completion_datetime FROM public.dag_log ORDER BY 1, 2"))]


def dag_log_versions(hub) -> list[tuple]:
    """Every row with its physical version (xmin): equal lists mean no row was rewritten."""
    with hub.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT dag_id, completion_date, completion_datetime, xmin::text FROM public.dag_log ORDER BY 1, 2"))]


def tick(sensor, instance, cursor):
    """One evaluation, as the daemon runs it: returns (cursor to save, number of new records)."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"datahub": DataHub()})
    result = sensor(context)
    assert isinstance(result, dg.SensorResult) and not result.run_requests
    message = result.skip_reason.skip_message
    return result.cursor, int(message.split()[0]), message


def cursor_keys(hub, cursor) -> dict:
    """The positions a cursor names, as ``{"lv0/b_major": {"settled": S, "seen": [...]}}``."""
    return {
        key.to_user_string(): {"settled": p.settled, "seen": sorted(p.seen)}
        for key, p in load_positions(hub, cursor).items()
        if p != KeyPosition()
    }


def storage_ids(instance, key) -> list[int]:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=10_000, ascending=True)
    return [r.storage_id for r in records.records]


# -- tests ----------------------------------------------------------------------------------


def test_the_sensor_is_running_by_default_and_every_30_seconds():
    sensor = build_dag_log_sensor(DAG)
    assert sensor.name == SENSOR_NAME == "dag_log_mirror"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30
    assert sensor.required_resource_keys == {"datahub"}


def test_completion_time_is_korean_local_time():
    # 16:00 UTC is 01:00 the next day in Seoul; 14:59:59 UTC is still the same day there.
    assert completion_kst(utc(2024, 3, 4, 16, 0).timestamp()) == datetime(2024, 3, 5, 1, 0)
    assert completion_kst(utc(2024, 3, 4, 14, 59, 59, 500000).timestamp()) == datetime(2024, 3, 4, 23, 59, 59, 500000)
    assert completion_kst(utc(2024, 12, 31, 15, 0).timestamp()) == datetime(2025, 1, 1, 0, 0)


def test_each_success_is_mirrored_once_on_its_korean_day_and_failures_write_nothing(instance, hub):
    sensor = build_dag_log_sensor(DAG)

    cursor, new, _ = tick(sensor, instance, None)
    assert new == 0 and dag_log(hub) == []  # the table exists from the first tick, empty

    # 2024-03-04 23:59:59.5 KST (14:59:59.5 UTC): lv0 b_major and lv1 b_minor in one run.
    run([b_major, b_minor], instance, utc(2024, 3, 4, 14, 59, 59, 500000))
    # 16:00 UTC on 2024-03-04 is 01:00 on 2024-03-05 in Seoul: a new Korean day, same UTC day.
    run([b_major], instance, utc(2024, 3, 4, 16, 0))
    # Failed runs: r_goods fails alone; b_major succeeds then b_minor fails in one run.
    failed = run([r_goods_failing], instance, utc(2024, 3, 4, 17, 0), success=False)
    assert not failed.get_asset_materialization_events()
    run([b_major, b_minor_failing], instance, utc(2024, 3, 4, 18, 30), success=False)

    cursor, new, message = tick(sensor, instance, cursor)
    assert new == 4, message  # b_major x3, b_minor x1
    assert dag_log(hub) == [
        ("legacy_to_lv0_UNIERP5.B_MAJOR", date(2024, 3, 4), datetime(2024, 3, 4, 23, 59, 59, 500000)),
        ("legacy_to_lv0_UNIERP5.B_MAJOR", date(2024, 3, 5), datetime(2024, 3, 5, 3, 30)),
        ("lv0_dag_UNIERP5.B_MINOR", date(2024, 3, 4), datetime(2024, 3, 4, 23, 59, 59, 500000)),
    ]

    # Later the same Korean day: the row moves forward. A completion reported after it but
    # stamped earlier (02:00 KST) does not move it back.
    run([b_minor], instance, utc(2024, 3, 5, 2, 15))  # 11:15 KST on 03-05
    report(instance, MAJOR, utc(2024, 3, 4, 17, 0))  # 02:00 KST on 03-05, stored last
    run([r_goods], instance, utc(2024, 3, 5, 3, 0))
    cursor, new, _ = tick(sensor, instance, cursor)
    assert new == 3
    assert dag_log(hub) == [
        ("legacy_to_lv0_RENTAL.R_GOODS", date(2024, 3, 5), datetime(2024, 3, 5, 12, 0)),
        ("legacy_to_lv0_UNIERP5.B_MAJOR", date(2024, 3, 4), datetime(2024, 3, 4, 23, 59, 59, 500000)),
        ("legacy_to_lv0_UNIERP5.B_MAJOR", date(2024, 3, 5), datetime(2024, 3, 5, 3, 30)),
        ("lv0_dag_UNIERP5.B_MINOR", date(2024, 3, 4), datetime(2024, 3, 4, 23, 59, 59, 500000)),
        ("lv0_dag_UNIERP5.B_MINOR", date(2024, 3, 5), datetime(2024, 3, 5, 11, 15)),
    ]

    # Nothing new: nothing read, nothing rewritten.
    before = dag_log_versions(hub)
    again, new, _ = tick(sensor, instance, cursor)
    assert new == 0 and again == cursor and dag_log_versions(hub) == before


def test_the_cursor_is_a_short_name_and_each_tick_says_what_it_mirrored(instance, hub):
    sensor = build_dag_log_sensor(DAG)
    run([b_major, b_minor], instance, utc(2024, 5, 1, 3, 0))
    report(instance, GOODS, utc(2024, 5, 1, 4, 0))
    report(instance, GOODS, utc(2024, 5, 1, 5, 0))
    cursor, new, message = tick(sensor, instance, None)
    assert new == 4
    # the sensor page shows one short line; the positions are in the Data Hub
    assert cursor.startswith("dag_log_mirror_state:") and len(cursor) < 60
    assert cursor_keys(hub, cursor).keys() == {"lv0/b_major", "lv1/b_minor", "lv0/r_goods"}
    assert message == (
        "4 new materializations, 3 DAG completions mirrored into public.dag_log (3 rows inserted or "
        "updated): legacy_to_lv0_RENTAL.R_GOODS, legacy_to_lv0_UNIERP5.B_MAJOR, lv0_dag_UNIERP5.B_MINOR"
    )
    # A cursor of the earlier form (the positions themselves, as JSON) is read, and replaced.
    inline = format_cursor(load_positions(hub, cursor))
    assert inline.startswith("{")
    again, new, message = tick(sensor, instance, inline)
    assert (again, new) == (cursor, 0) and message.startswith("0 new materializations")


def test_a_real_lv0_materialization_is_its_old_dags_completion(instance, hub, platform_env):
    legacy_url, _ = platform_env
    legacy = sa.create_engine(legacy_url)
    with legacy.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA unierp5"))
        conn.execute(sa.text("CREATE TABLE unierp5.b_major (major_cd varchar(5) PRIMARY KEY, major_nm varchar(50))"))
        conn.execute(sa.text("INSERT INTO unierp5.b_major VALUES ('B9001', '품목구분'), ('B9002', '단위')"))
    legacy.dispose()
    catalog = load_catalog()
    asset = build_lv0_asset(catalog.by_name("b_major"))
    dag_ids = dag_ids_of([asset], catalog)
    assert dag_ids == {MAJOR: "legacy_to_lv0_UNIERP5.B_MAJOR"}

    with freeze_time(utc(2024, 3, 5, 15, 30)):  # 00:30 KST on 03-06
        result = dg.materialize(
            [asset], instance=instance, partition_key="2024-03-05",
            resources={"legacy": LegacyDatabase(), "datahub": DataHub()},
        )
    assert result.success
    _, new, _ = tick(build_dag_log_sensor(dag_ids), instance, None)
    assert new == 1
    assert dag_log(hub) == [("legacy_to_lv0_UNIERP5.B_MAJOR", date(2024, 3, 6), datetime(2024, 3, 6, 0, 30))]


def history(instance) -> list[tuple[dg.AssetKey, datetime]]:
    """45 materializations over six Korean days, from runs and reported, on three assets."""
    made = []
    for day in range(5):
        at = utc(2024, 4, 1 + day, 22, 7)  # 07:07 KST the next day
        run([b_major, b_minor], instance, at)
        made += [(MAJOR, at), (MINOR, at)]
        for hour in (1, 9, 15):  # 10:07, 18:07 KST; 00:07 KST the next day
            at = utc(2024, 4, 1 + day, hour, 7)
            report(instance, MAJOR, at)
            report(instance, MINOR, at)
            made += [(MAJOR, at), (MINOR, at)]
        at = utc(2024, 4, 1 + day, 12, 0)
        report(instance, GOODS, at)
        made.append((GOODS, at))
    assert len(made) == 45
    return made


def expected_table(made) -> list[tuple]:
    """dag_log computed independently: latest UTC+9 time per DAG and Korean date."""
    latest = {}
    for key, at in made:
        local = at.astimezone(timezone.utc).replace(tzinfo=None) + timedelta(hours=9)
        row = (DAG[key], local.date())
        latest[row] = max(latest.get(row, local), local)
    return sorted((dag_id, day, moment) for (dag_id, day), moment in latest.items())


def test_a_sensor_that_missed_everything_catches_up_once_in_bounded_ticks(instance, hub):
    made = history(instance)
    sensor = build_dag_log_sensor(DAG, max_records_per_tick=10)
    cursor, total, ticks = None, 0, 0
    while True:
        cursor, new, message = tick(sensor, instance, cursor)
        ticks += 1
        total += new
        assert new <= 10  # the budget
        if "more to read" not in message:
            break
    assert total == len(made)  # every record read as new exactly once: nothing twice, nothing lost
    assert ticks in (5, 6)  # 45 records, 10 a tick
    assert dag_log(hub) == expected_table(made)
    # All of it settled long ago: the cursor is one storage id per key, nothing pending.
    keys = cursor_keys(hub, cursor)
    assert {k: v["settled"] for k, v in keys.items()} == {
        key.to_user_string(): storage_ids(instance, key)[-1] for key in DAG
    }
    assert all(v["seen"] == [] for v in keys.values())
    _, new, _ = tick(sensor, instance, cursor)
    assert new == 0


def test_the_same_tick_twice_with_the_same_cursor_leaves_the_table_identical(instance, hub):
    sensor = build_dag_log_sensor(DAG)
    run([b_major, b_minor], instance, utc(2024, 5, 1, 3, 0))
    first_cursor, _, _ = tick(sensor, instance, None)
    run([b_major, b_minor], instance, utc(2024, 5, 1, 4, 0))
    run([b_major], instance, utc(2024, 5, 1, 20, 0))
    report(instance, GOODS, utc(2024, 5, 2, 1, 0))

    # The tick runs, writes, and its cursor is never saved (daemon killed): it runs again.
    cursor_a, new_a, _ = tick(sensor, instance, first_cursor)
    table = dag_log_versions(hub)
    cursor_b, new_b, _ = tick(sensor, instance, first_cursor)
    assert (cursor_b, new_b) == (cursor_a, new_a) == (cursor_b, 4)
    assert dag_log_versions(hub) == table  # same rows, none rewritten (same xmin)
    assert len(table) == len({(r[0], r[1]) for r in table}) == 4
    # Yet the cursor that was lost is not needed: a tick from scratch changes nothing either.
    tick(sensor, instance, None)
    assert dag_log_versions(hub) == table


def test_a_lower_storage_id_committed_late_is_still_mirrored(instance, instance_url, hub):
    """Two writers: id N is taken first but committed after N+1 was read by a tick.

    A trigger on Dagster's event_logs table holds the commit of one marked event on a lock the
    test owns: that event's storage id is taken, the next event commits past it.
    """
    engine = sa.create_engine(instance_url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            """
            CREATE FUNCTION hold_marked_events() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.event LIKE '%hold-this-commit%' THEN PERFORM pg_advisory_xact_lock(424242); END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER hold_marked_events BEFORE INSERT ON event_logs
                FOR EACH ROW EXECUTE FUNCTION hold_marked_events();
            """
        ))
    holder = engine.connect()
    holder.execute(sa.text("SELECT pg_advisory_lock(424242)"))
    holder.commit()
    # Events stamped now (the settle window is about recent records), the held one 40 s later.
    fast_at = datetime.now(timezone.utc).replace(microsecond=0)
    slow_at = fast_at + timedelta(seconds=40)
    clock = [fast_at.timestamp() + 5]
    sensor = build_dag_log_sensor(DAG, clock=lambda: clock[0])
    errors = []

    def slow_writer():
        try:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=MAJOR, metadata={"note": "hold-this-commit"}))
        except Exception as err:  # pragma: no cover - asserted below
            errors.append(err)

    writer = threading.Thread(target=slow_writer)
    try:
        with freeze_time(slow_at):
            writer.start()
            deadline = time.monotonic() + 30
            while True:  # its id is taken, its commit waits for the lock
                with engine.connect() as probe:
                    waiting = probe.execute(sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).scalar()
                if waiting or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert waiting == 1
        report(instance, MAJOR, fast_at)  # committed at once, with a higher id
        [fast_id] = storage_ids(instance, MAJOR)

        cursor, new, _ = tick(sensor, instance, None)
        assert new == 1
        assert dag_log(hub) == expected_table([(MAJOR, fast_at)])
    finally:
        holder.execute(sa.text("SELECT pg_advisory_unlock(424242)"))
        holder.close()
        writer.join(30)
    assert not errors and not writer.is_alive()

    slow_id, last_id = storage_ids(instance, MAJOR)
    assert slow_id < fast_id == last_id  # committed out of order ...
    naive = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=MAJOR, after_storage_id=fast_id), limit=10, ascending=True)
    assert naive.records == []  # ... so a "last storage id" cursor would never read it

    clock[0] += 30
    cursor, new, _ = tick(sensor, instance, cursor)
    assert new == 1  # the late one, and only it
    assert dag_log(hub) == expected_table([(MAJOR, fast_at), (MAJOR, slow_at)])
    assert cursor_keys(hub, cursor)["lv0/b_major"] == {"settled": 0, "seen": [slow_id, fast_id]}

    # Once both are older than the settle window, the cursor settles past them.
    clock[0] += 400
    cursor, new, _ = tick(sensor, instance, cursor)
    assert new == 0
    assert cursor_keys(hub, cursor)["lv0/b_major"] == {"settled": fast_id, "seen": []}
    assert dag_log(hub) == expected_table([(MAJOR, fast_at), (MAJOR, slow_at)])
    engine.dispose()


def test_recent_records_stay_pending_until_they_settle(instance, hub):
    now = [time.time()]
    sensor = build_dag_log_sensor(DAG, settle_seconds=300, clock=lambda: now[0])
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=GOODS))
    cursor, new, _ = tick(sensor, instance, None)
    [record_id] = storage_ids(instance, GOODS)
    assert new == 1
    assert cursor_keys(hub, cursor)["lv0/r_goods"] == {"settled": 0, "seen": [record_id]}
    cursor, new, _ = tick(sensor, instance, cursor)  # read again, not written again
    assert new == 0
    now[0] += 301
    cursor, new, _ = tick(sensor, instance, cursor)
    assert new == 0
    assert cursor_keys(hub, cursor)["lv0/r_goods"] == {"settled": record_id, "seen": []}
    assert len(dag_log(hub)) == 1


def test_the_backfill_rebuilds_the_same_table_from_history(instance, hub):
    made = history(instance)
    sensor = build_dag_log_sensor(DAG, max_records_per_tick=1000)
    tick(sensor, instance, None)
    mirrored = dag_log(hub)
    assert mirrored == expected_table(made)

    with hub.begin() as conn:
        conn.execute(sa.text("DROP TABLE public.dag_log"))
    summary = backfill_dag_log(instance, hub, DAG)
    assert dag_log(hub) == mirrored
    assert (summary.materializations, summary.rows, summary.written) == (45, len(mirrored), len(mirrored))

    # Run again: nothing changes, nothing is rewritten.
    before = dag_log_versions(hub)
    assert backfill_dag_log(instance, hub, DAG).written == 0
    assert dag_log_versions(hub) == before

    # A row moved back by hand, another deleted: the backfill puts both right, keeps other rows.
    with hub.begin() as conn:
        conn.execute(sa.text("UPDATE public.dag_log SET completion_datetime = completion_datetime - interval '1 hour' "
                             "WHERE dag_id = 'lv0_dag_UNIERP5.B_MINOR' AND completion_date = '2024-04-02'"))
        conn.execute(sa.text("DELETE FROM public.dag_log WHERE dag_id = 'legacy_to_lv0_RENTAL.R_GOODS' "
                             "AND completion_date = '2024-04-03'"))
        conn.execute(sa.text("INSERT INTO public.dag_log VALUES ('legacy_to_lv0_RENTAL.R_CRM_INFO', '2023-12-01', '2023-12-01 00:10')"))
    assert backfill_dag_log(instance, hub, DAG).written == 2
    assert dag_log(hub) == sorted([*mirrored, ("legacy_to_lv0_RENTAL.R_CRM_INFO", date(2023, 12, 1), datetime(2023, 12, 1, 0, 10))])


def test_the_backfill_command_reads_the_platform_instance_and_definitions(tmp_path, monkeypatch, hub):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    with dg.DagsterInstance.get() as instance:
        report(instance, dg.AssetKey(["lv0", "r_order_contract"]), utc(2024, 7, 1, 16, 0))
        report(instance, dg.AssetKey(["legacy", "rental", "r_order_contract"]), utc(2024, 7, 1, 16, 0))
    assert cmd_dag_log_backfill(argparse.Namespace()) == 0
    assert dag_log(hub) == [("legacy_to_lv0_RENTAL.R_ORDER_CONTRACT", date(2024, 7, 2), datetime(2024, 7, 2, 1, 0))]
