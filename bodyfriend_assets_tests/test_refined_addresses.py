"""lv2 carries the addresses lv1ex refined: the nightly job, lv0 -> lv1 -> lv1ex -> lv2 -> hc, on the
project's executor and a real instance, with the local Kakao stand-in (development) answering.

An address the stand-in finds reaches lv2's account, shipping, relocation and lounge rows refined
(Kakao's address, the building's 동/호, the road address's postal code); one it cannot resolve,
or any address when the service is down or lv1.address_master does not exist yet, stays as lv1
holds it, and the service being down fails only its lv1ex assets.
"""

import dagster as dg

from bodyfriend_assets.lv1ex import lv1ex_assets
from bodyfriend_assets.definitions import catalog
from bodyfriend_assets_tests.conftest import rows, scalar
from bodyfriend_assets_tests.test_failure_isolation import _lv0_steps, daily_job, run, seeded  # noqa: F401 (a fixture)

APARTMENT = ("서울특별시 서초구 반포동", "래미안 105동 1203호")  # found once "105동 1203호" is dropped
LOT = ("서울특별시 강남구 역삼동", "123-45")  # found as it is, with a road address
UNKNOWN = ("해외 주소", "미상")  # nothing found, down to one word
NOON = "2024-01-03 12:00:00"  # in the run's partition (2024-01-03, KST), for the incremental tables
LV1EX_STEPS = {assets.op.name for assets in lv1ex_assets(catalog)}


def put_addresses(legacy_url) -> dict[str, str]:
    """Give chosen ERP rows of the four tables known addresses; the keys chosen, by role."""
    first = lambda table, key: [r[0] for r in rows(legacy_url, f"SELECT {key} FROM rental.{table} ORDER BY {key} LIMIT 2")]  # noqa: E731
    customer, stranger = first("v_customer", "cust_no")
    shipping, lost_shipping = first("r_shipping_info", "shipping_no")
    move, _ = first("r_contract_move_receipt", "receipt_no")
    lounge, _ = first("v_sales_lounge", "lounge_cd")
    for table, key, value, (addr1, addr2) in [("v_customer", "cust_no", customer, APARTMENT),
                                              ("v_customer", "cust_no", stranger, UNKNOWN),
                                              ("r_shipping_info", "shipping_no", shipping, LOT),
                                              ("r_shipping_info", "shipping_no", lost_shipping, UNKNOWN)]:
        rows(legacy_url, f"UPDATE rental.{table} SET addr1 = :a1, addr2 = :a2, zip_cd = '99999', updt_dt = :noon "
                         f"WHERE {key} = :k", a1=addr1, a2=addr2, noon=NOON, k=value)
    rows(legacy_url, "UPDATE rental.r_contract_move_receipt SET old_addr1 = :o1, old_addr2 = :o2, old_zip_cd = '99999', "
                     "new_addr1 = :n1, new_addr2 = :n2, new_zip_cd = '99999' WHERE receipt_no = :k",
         o1=LOT[0], o2=LOT[1], n1=UNKNOWN[0], n2=UNKNOWN[1], k=move)
    rows(legacy_url, "UPDATE rental.v_sales_lounge SET addr1 = :a1, addr2 = :a2, zip_cd = '99999' WHERE lounge_cd = :k",
         a1=APARTMENT[0], a2=APARTMENT[1], k=lounge)
    return {"customer": customer, "stranger": stranger, "shipping": shipping, "lost_shipping": lost_shipping,
            "move": move, "lounge": lounge}


def lv2_addresses(hub, keys: dict[str, str]) -> dict[str, tuple]:
    """(street, postal code) of each chosen row in lv2, by role."""
    one = lambda sql, key: tuple(rows(hub, sql, k=key)[0])  # noqa: E731
    account = "SELECT billing_street, billing_postal_code FROM lv2.account WHERE external_id = :k"
    shipping = "SELECT street, postal_code FROM lv2.shipping_info WHERE external_id = :k"
    return {
        "customer": one(account, keys["customer"]),
        "stranger": one(account, keys["stranger"]),
        "shipping": one(shipping, keys["shipping"]),
        "lost_shipping": one(shipping, keys["lost_shipping"]),
        "move_old": one("SELECT old_street, old_postal_code FROM lv2.contract_move_receipt WHERE external_id = :k", keys["move"]),
        "move_new": one("SELECT new_street, new_postal_code FROM lv2.contract_move_receipt WHERE external_id = :k", keys["move"]),
        "lounge": one("SELECT street, postal_code FROM lv2.bbs_map WHERE external_id = :k", keys["lounge"]),
    }


def test_lv2_account_shipping_relocation_and_lounge_carry_the_refined_address_and_keep_the_erp_one_where_none_was_found(seeded):
    legacy_url, hub = seeded
    keys = put_addresses(legacy_url)

    result = run(daily_job)

    assert result.success
    assert result.steps(dg.DagsterEventType.STEP_SUCCESS) == _lv0_steps() | {"lv1_models", *LV1EX_STEPS, "lv2_models", "hc_objects"}
    master = {r.legacy_address: r for r in rows(hub, "SELECT * FROM lv1.address_master")}
    apartment, lot, unknown = (master[" ".join(address)] for address in (APARTMENT, LOT, UNKNOWN))
    assert (apartment.status, apartment.building_name, lot.status, unknown.status) == (
        "found_shortened", "래미안", "found", "not_found")
    refined_apartment = (f"{apartment.address_name} 래미안 105동 1203호", apartment.zone_no)
    refined_lot = (lot.address_name, lot.zone_no)
    assert apartment.address_name.startswith("서울특별시 서초구 반포동 ") and "길 " in apartment.address_name
    assert len(apartment.zone_no) == 5 and apartment.zone_no != "99999"
    erp_unknown = ("해외 주소 미상", "99999")

    assert lv2_addresses(hub, keys) == {
        "customer": refined_apartment,
        "stranger": erp_unknown,
        "shipping": refined_lot,
        "lost_shipping": erp_unknown,
        "move_old": refined_lot,
        "move_new": erp_unknown,
        "lounge": refined_apartment,
    }
    # and on to Salesforce (Heroku Connect's table)
    assert tuple(rows(hub, "SELECT billingstreet, billingpostalcode FROM salesforce.account WHERE bf_external_id__c = :k",
                      k=keys["customer"])[0]) == refined_apartment


def test_with_the_service_down_lv2_and_hc_still_load_the_erp_addresses_and_the_run_names_the_lv1ex_assets(seeded, monkeypatch):
    legacy_url, hub = seeded
    keys = put_addresses(legacy_url)
    # nothing listens on port 9 (discard) of the loopback: every request is refused
    monkeypatch.setenv("BODYFRIEND_KAKAO_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("BODYFRIEND_KAKAO_KEY", "test-key")
    monkeypatch.setenv("BODYFRIEND_KAKAO_RETRIES", "1")
    monkeypatch.setenv("BODYFRIEND_KAKAO_BACKOFF_SECONDS", "0.01")

    result = run(daily_job)

    # a fresh Data Hub, and lv1ex wrote nothing: lv1.address_master does not exist, which lv2 reads as "none refined"
    assert scalar(hub, "SELECT to_regclass('lv1.address_master')") is None
    assert not result.of_type(dg.DagsterEventType.STEP_SKIPPED)
    assert result.steps(dg.DagsterEventType.STEP_SUCCESS) == _lv0_steps() | {"lv1_models", *LV1EX_STEPS, "lv2_models"}
    materialized = result.materialized()
    assert not {m for m in materialized if m.startswith("lv1ex/")}
    assert {"lv2/account", "lv2/shipping_info", "lv2/contract_move_receipt", "lv2/bbs_map", "hc/account"} <= materialized
    erp = lambda address: (" ".join(address), "99999")  # noqa: E731
    assert lv2_addresses(hub, keys) == {
        "customer": erp(APARTMENT), "stranger": erp(UNKNOWN), "shipping": erp(LOT), "lost_shipping": erp(UNKNOWN),
        "move_old": erp(LOT), "move_new": erp(UNKNOWN), "lounge": erp(APARTMENT),
    }
    # the run ends failed, at its last step, naming the four lv1ex assets and nothing else
    assert not result.success
    (failure,) = result.of_type(dg.DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "hc_objects"
    message = str(failure.event_specific_data.error)
    assert "4 asset(s) failed, 0 failed a blocking check, 0 skipped" in message
    assert all(f"failed: lv1ex/{table}" in message for table in
               ("v_customer", "r_shipping_info", "r_contract_move_receipt", "v_sales_lounge"))
    assert any("lv1ex/v_customer failed: Kakao Local address search" in m for m in result.errors())
    assert not [m for m in result.errors() if "test-key" in m]
