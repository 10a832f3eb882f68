"""lv1ex: new addresses of the lv1 tables refined by (a stand-in of) Kakao's address search into
``lv1.address_master``, through the Data Hub IO manager.

Real PostgreSQL (the suite's server), the real stand-in HTTP server on loopback, real Dagster runs."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pytest

from bodyfriend_assets.definitions import catalog
from bodyfriend_assets.lv1ex import SOURCES, build_lv1ex_asset
from bodyfriend_assets.lv1ex.standin import KakaoStandIn
from bodyfriend_assets.partitions import daily_partitions
from bodyfriend_assets.resources import DataHub
from bodyfriend_assets.storage.io_manager import DATAHUB_IO, DataHubIOManager
from bodyfriend_assets_tests.conftest import rows, scalar

KEY = "kakao-secret-key-4b1d"
DAY = "2024-01-01"
ASSETS = {source.table: build_lv1ex_asset(source, catalog) for source in SOURCES}
MASTER = ("SELECT legacy_address, status, accuracy, road_address_tf, address_name, region_1depth_name, "
          "region_3depth_name, building_name, building_dong, building_ho, zone_no, x, y, _partition "
          "FROM lv1.address_master ORDER BY legacy_address")


@pytest.fixture
def kakao(monkeypatch, platform_env):
    server = KakaoStandIn(key=KEY, hang_seconds=1.0)
    for var, value in {"BODYFRIEND_KAKAO_URL": server.url, "BODYFRIEND_KAKAO_KEY": KEY,
                       "BODYFRIEND_KAKAO_REQUESTS_PER_SECOND": "1000", "BODYFRIEND_KAKAO_BACKOFF_SECONDS": "0.01",
                       "BODYFRIEND_KAKAO_TIMEOUT_SECONDS": "0.3", "BODYFRIEND_KAKAO_RETRIES": "3"}.items():
        monkeypatch.setenv(var, value)
    yield server
    server.stop()


def lv1_table(datahub_url, table: str, addresses: list[tuple[str | None, str | None]]) -> None:
    """``lv1.<table>`` holding ``addresses`` (addr1, addr2) in partition DAY, as lv1 files rows."""
    rows(datahub_url, "CREATE SCHEMA IF NOT EXISTS lv1")
    rows(datahub_url, f"CREATE TABLE lv1.{table} (id int, addr1 text, addr2 text, _partition text)")
    for n, (addr1, addr2) in enumerate(addresses):
        rows(datahub_url, f"INSERT INTO lv1.{table} VALUES (:n, :a1, :a2, :day)", n=n, a1=addr1, a2=addr2, day=DAY)


def refine(*tables: str, instance=None, extra=()) -> dg.ExecuteInProcessResult:
    upstream = [dg.AssetSpec(["lv1", t], partitions_def=daily_partitions, metadata={"mode": "incremental"})
                for t in tables]
    datahub = DataHub()
    return dg.materialize(
        [*upstream, *(ASSETS[t] for t in tables), *extra], partition_key=DAY, instance=instance,
        resources={"datahub": datahub, DATAHUB_IO: DataHubIOManager(datahub=datahub)},
        selection=[ASSETS[t].key for t in tables] + [a.key for a in extra], raise_on_error=False,
    )


def test_new_addresses_are_stored_found_by_fallback_or_not_found_and_a_rerun_sends_no_request(kakao, datahub_url):
    lv1_table(datahub_url, "v_customer", [
        ("서울특별시 강남구 역삼동", "123-45"),            # found as it is, with a road address
        ("서울특별시 서초구 반포동", "래미안 105동 1203호"),  # found once "105동 1203호" is dropped
        ("해외 주소", "미상"),                              # nothing found, down to one word
        ("서울특별시 강남구 역삼동 ", " 123-45"),           # the first again, typed with spaces
        (None, None),
    ])

    result = refine("v_customer")

    assert result.success
    found = {r.legacy_address: r for r in rows(datahub_url, MASTER)}
    assert set(found) == {"서울특별시 강남구 역삼동 123-45", "서울특별시 서초구 반포동 래미안 105동 1203호", "해외 주소 미상"}
    exact = found["서울특별시 강남구 역삼동 123-45"]
    assert (exact.status, exact.road_address_tf, exact.region_1depth_name, exact.region_3depth_name) == (
        "found", True, "서울특별시", "역삼동")
    assert exact.zone_no and len(exact.zone_no) == 5 and 126 < exact.x < 128 and 37 < exact.y < 38
    assert exact.accuracy >= 1 and exact._partition == DAY
    apartment = found["서울특별시 서초구 반포동 래미안 105동 1203호"]
    assert (apartment.status, apartment.building_name, apartment.building_dong, apartment.building_ho) == (
        "found_shortened", "래미안", "105", "1203")
    missing = found["해외 주소 미상"]
    assert (missing.status, missing.address_name, missing.accuracy, missing.x) == ("not_found", None, None, None)
    # 1 for the first, 3 for the apartment (6, 5, then 4 words), 3 for the one never found
    assert kakao.requests == 7

    again = refine("v_customer")

    assert again.success
    assert kakao.requests == 7  # every address is there already: no request at all
    assert [tuple(r) for r in rows(datahub_url, MASTER)] == [tuple(found[a]) for a in sorted(found)]


def test_each_source_adds_its_new_addresses_without_replacing_the_others(kakao, datahub_url):
    lv1_table(datahub_url, "v_customer", [("서울특별시 강남구 역삼동", "123-45")])
    lv1_table(datahub_url, "r_contract_move_receipt", [])
    rows(datahub_url, "ALTER TABLE lv1.r_contract_move_receipt RENAME addr1 TO old_addr1")
    rows(datahub_url, "ALTER TABLE lv1.r_contract_move_receipt RENAME addr2 TO old_addr2")
    rows(datahub_url, "ALTER TABLE lv1.r_contract_move_receipt ADD new_addr1 text, ADD new_addr2 text")
    rows(datahub_url, "INSERT INTO lv1.r_contract_move_receipt VALUES (1, '서울특별시 강남구 역삼동', '123-45', "
                      ":day, '부산광역시 해운대구 우동', '77-1')", day=DAY)
    assert refine("v_customer").success
    kakao.reset_counts()

    assert refine("r_contract_move_receipt").success

    assert kakao.queries == ["부산광역시 해운대구 우동 77-1"]  # the old address was refined already
    assert [r.legacy_address for r in rows(datahub_url, MASTER)] == [
        "부산광역시 해운대구 우동 77-1", "서울특별시 강남구 역삼동 123-45"]


def test_two_sources_refined_at_once_send_a_shared_address_once_and_write_it_once(kakao, datahub_url):
    """Two lv1ex assets started at the same moment, their tables holding the same addresses: they
    refine in turn (the Data Hub's address_master lock), so each address is sent once, and the
    rows the two report written add up to the table's rows."""
    shared = [("서울특별시 강남구 역삼동", f"{n}-1") for n in range(1, 301)]
    lv1_table(datahub_url, "v_customer", shared)
    lv1_table(datahub_url, "r_shipping_info", shared)
    start = threading.Barrier(2)

    def refine_at_once(table: str) -> dg.ExecuteInProcessResult:
        start.wait()
        return refine(table)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(refine_at_once, ["v_customer", "r_shipping_info"]))

    assert all(result.success for result in results)
    assert sorted(kakao.queries) == sorted({" ".join(address) for address in shared})
    written = [event.materialization.metadata["rows_written"].value
               for result in results for event in result.get_asset_materialization_events()]
    assert sorted(written) == [0, 300]
    assert scalar(datahub_url, "SELECT count(*) FROM lv1.address_master") == 300


def test_throttling_and_a_timeout_are_retried_until_the_service_answers(kakao, datahub_url):
    lv1_table(datahub_url, "v_customer", [("서울특별시 강남구 역삼동", "123-45")])
    kakao.fail_next(2, "429")
    kakao.fail_next(1, "timeout")

    result = refine("v_customer")

    assert result.success
    assert kakao.requests == 4
    assert [r.status for r in rows(datahub_url, MASTER)] == ["found"]


def test_a_failing_service_fails_only_its_asset_naming_the_service_and_never_the_key(kakao, datahub_url):
    lv1_table(datahub_url, "v_customer", [("서울특별시 강남구 역삼동", "123-45"), ("부산광역시 해운대구 우동", "1-1")])
    kakao.fail_next(1, "500")  # one 500 on the first address: retried, found
    assert refine("v_customer").success
    rows(datahub_url, "INSERT INTO lv1.v_customer VALUES (9, '대구광역시 수성구 범어동', '5-5', :day)", day=DAY)
    kakao.fail_next(100, "500")

    @dg.asset(key=["other", "table"])
    def other_table() -> int:
        return 1

    instance = dg.DagsterInstance.ephemeral()
    result = refine("v_customer", instance=instance, extra=[other_table])

    assert not result.success
    assert result.output_for_node("other__table") == 1  # the rest of the run went on
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.error.to_string()
    assert "Kakao Local address search" in message and "is unavailable: 4 attempts failed" in message
    assert "HTTP 500" in message and KEY not in message and "범어동" not in message
    assert kakao.requests == 1 + 1 + 1 + 4  # two addresses (one retried), then 4 attempts at the third
    assert scalar(datahub_url, "SELECT count(*) FROM lv1.address_master") == 2  # nothing of it written
    logged = [json.dumps(entry.to_dict() if hasattr(entry, "to_dict") else str(entry), default=str)
              for entry in instance.all_logs(result.run_id)]
    assert logged and not [line for line in logged if KEY in line]


def test_in_production_the_service_settings_are_required_and_the_error_names_the_variable(monkeypatch):
    from bodyfriend_assets.lv1ex.kakao import KakaoLocal
    from bodyfriend_assets.settings import SettingsError

    monkeypatch.setenv("BODYFRIEND_ENV", "production")
    monkeypatch.setenv("BODYFRIEND_KAKAO_URL", "https://dapi.kakao.com")
    monkeypatch.delenv("BODYFRIEND_KAKAO_KEY", raising=False)
    with pytest.raises(SettingsError, match="BODYFRIEND_KAKAO_KEY is not set"):
        KakaoLocal.from_environment()
    monkeypatch.setenv("BODYFRIEND_KAKAO_KEY", KEY)
    client = KakaoLocal.from_environment()
    assert client.base_url == "https://dapi.kakao.com" and KEY not in repr(client)


def test_a_refused_key_fails_at_once_without_retrying_and_without_the_key(kakao, datahub_url, monkeypatch):
    lv1_table(datahub_url, "v_customer", [("서울특별시 강남구 역삼동", "123-45")])
    monkeypatch.setenv("BODYFRIEND_KAKAO_KEY", "wrong-key-77")

    result = refine("v_customer")

    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.error.to_string()
    assert "refused the request: HTTP 401 (errorType 'AccessDeniedError')" in message
    assert "wrong-key-77" not in message and kakao.requests == 1


SHARING_PREFIXES = [
    ("서울특별시 서초구 반포동", "래미안 105동 1203호"),  # 6, 5, then 4 words: found shortened
    ("서울특별시 서초구 반포동", "래미안 105동 1204호"),  # shares "... 래미안 105동" and "... 래미안"
    ("서울특별시 서초구 반포동", "래미안 106동 101호"),   # shares "... 래미안"
    ("서울특별시 강남구 역삼동", "123-45"),
    ("해외 주소", "미상"),                               # not found, down to one word
    ("해외 주소", "기타"),                               # shares "해외 주소" and "해외"
]


def test_remembered_answers_store_the_same_rows_and_send_each_text_once(kakao, datahub_url, monkeypatch):
    lv1_table(datahub_url, "v_customer", SHARING_PREFIXES)
    monkeypatch.setenv("BODYFRIEND_KAKAO_MEMO_ENTRIES", "0")  # every text asked, as before the memo
    assert refine("v_customer").success
    unremembered = [tuple(r) for r in rows(datahub_url, MASTER)]
    asked, requests_without = list(kakao.queries), kakao.requests
    rows(datahub_url, "DROP TABLE lv1.address_master")
    kakao.reset_counts()
    monkeypatch.delenv("BODYFRIEND_KAKAO_MEMO_ENTRIES")

    instance = dg.DagsterInstance.ephemeral()
    result = refine("v_customer", instance=instance)

    assert result.success
    assert [tuple(r) for r in rows(datahub_url, MASTER)] == unremembered
    assert {r[1] for r in unremembered} == {"found", "found_shortened", "not_found"}
    assert requests_without == len(asked) == 3 + 3 + 3 + 1 + 3 + 3  # the shared texts asked again and again
    assert sorted(kakao.queries) == sorted(set(asked))  # each text once
    assert kakao.requests == len(set(asked)) == 3 + 1 + 2 + 1 + 3 + 1
    (logged,) = [entry.user_message for entry in instance.all_logs(result.run_id) if "request(s) sent" in entry.user_message]
    assert "16 search(es), 11 request(s) sent" in logged


def test_a_failed_search_is_not_remembered_and_is_asked_again(kakao):
    from bodyfriend_assets.lv1ex.kakao import GeocoderUnavailable, KakaoLocal

    client = KakaoLocal.from_environment()
    kakao.fail_next(4, "500")  # the first attempt and its 3 retries
    with pytest.raises(GeocoderUnavailable, match="4 attempts failed"):
        client.search("서울특별시 강남구 역삼동")

    answer = client.search("서울특별시 강남구 역삼동")

    assert answer["documents"] and kakao.requests == 5
    assert client.search("서울특별시 강남구 역삼동") == answer and kakao.requests == 5  # now remembered


def test_the_client_keeps_one_connection_open_and_opens_another_after_a_timeout_or_a_close_by_the_server(kakao):
    from bodyfriend_assets.lv1ex.kakao import KakaoLocal

    client = KakaoLocal.from_environment()
    for text in ("서울특별시 강남구 역삼동", "부산광역시 해운대구 우동", "대구광역시 수성구 범어동"):
        assert client.search(text)["documents"]
    assert (kakao.requests, kakao.connections) == (3, 1)
    kakao.fail_next(1, "500")
    assert client.search("서울특별시 서초구 반포동")["documents"]  # retried on the same connection
    assert (kakao.requests, kakao.connections) == (5, 1)

    kakao.fail_next(1, "timeout")
    assert client.search("서울특별시 서초구 방배동")["documents"]  # the timed-out connection is not reused
    assert (kakao.requests, kakao.connections) == (7, 2)
    kakao.close_connections()  # the server drops the idle connection
    assert client.search("서울특별시 강남구 대치동")["documents"]

    assert (kakao.requests, kakao.connections, client.requests_sent) == (8, 3, 8)
