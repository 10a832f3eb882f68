"""lv1ex: the addresses of four lv1 tables refined by Kakao's address search into
``lv1.address_master``, as the old ``lv1ex_dag_<DB>.<TABLE>`` DAGs did (README, "Address
refinement").

One Python asset per source table, ``lv1ex/<table>`` (``lv1ex/v_customer``, ...), downstream of
``lv1/<table>`` and carrying its old DAG id (``lv1ex_dag_RENTAL.V_CUSTOMER``) for ``dag_log``. Each
reads its lv1 table's partition window through the Data Hub IO manager, in chunks, and upserts
(``upsert_key``) the addresses never refined before into the one shared table
``lv1.address_master``, so the four never replace each other's rows. An address is its lv1 row's
``addr1`` and ``addr2`` joined by a space (the old ``legacy_addr``), the key ``legacy_address``; a
changed address is a new text and so a new row. A re-run finds every address already there and
sends no request.
Within a run, the client asks the service each text once (``kakao.py``: the fallback's shorter
texts, shared by many addresses, are remembered).

An address the service cannot resolve is stored with status ``not_found`` (and is not sent
again); the service being down, refusing the key or not configured fails the asset
(``kakao.GeocoderError``, ``SettingsError``) and nothing of it is written; the other assets of the run go on. The answers are spooled to a
temporary file and written once all are in, so that a failure half-way writes nothing and no
write transaction stays open while the service is asked. lv2 reads ``lv1.address_master`` after
these assets: in a run where lv2 follows, a failure is logged and the asset yields nothing (its
step succeeds), so lv2 still runs, keeping the ERP's address where none is refined, and the run's
last step fails naming the asset (``materialize_in_order``); a step that failed would make Dagster
abandon lv2 and hc for the night. Run without lv2 after it, the asset's step fails.

The four steps may start together, but they refine one at a time: each holds the Data Hub's
``address_master`` lock (``pools.exclusive_pool``) from its look-up of the addresses already
refined to the commit of its rows. So the service's rate limit holds for the night as a whole,
not per step, and an address two tables share is sent once and counted once.
"""


import pickle
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from bodyfriend_assets.catalog import Catalog
from bodyfriend_assets.compat.dag_ids import DAG_ID_METADATA_KEY
from bodyfriend_assets.lv1ex.kakao import GeocoderError, KakaoLocal, Search
from bodyfriend_assets.lv1ex.standin import shared_standin
from bodyfriend_assets.materialize_in_order import later_platform_step
from bodyfriend_assets.partitions import daily_freshness, daily_partitions
from bodyfriend_assets.pools import exclusive_pool
from bodyfriend_assets.resources import DataHub
from bodyfriend_assets.settings import SettingsError
from bodyfriend_assets.storage.io_manager import DATAHUB_IO, DataFrameChunks, datahub_in

TABLE = "lv1.address_master"
ADDRESS_LOCK = "address_master"  # the Data Hub lock the four assets take in turn (pools.py)
KEY = "legacy_address"
FOUND, FOUND_SHORTENED, NOT_FOUND = "found", "found_shortened", "not_found"


@dataclass(frozen=True)
class AddressSource:
    """An lv1 table and its address columns (pairs of main part and detail)."""

    table: str
    columns: tuple[tuple[str, str], ...]


SOURCES = (
    AddressSource("v_customer", (("addr1", "addr2"),)),
    AddressSource("r_shipping_info", (("addr1", "addr2"),)),
    AddressSource("r_contract_move_receipt", (("old_addr1", "old_addr2"), ("new_addr1", "new_addr2"))),
    AddressSource("v_sales_lounge", (("addr1", "addr2"),)),
)

COLUMNS = dg.TableSchema(columns=[
    dg.TableColumn(KEY, "text", description="the address as the ERP holds it (addr1 addr2)",
                   constraints=dg.TableColumnConstraints(nullable=False, unique=True)),
    dg.TableColumn("status", "text", description="found | found_shortened (words dropped) | not_found",
                   constraints=dg.TableColumnConstraints(nullable=False)),
    dg.TableColumn("accuracy", "integer", description="the answer's total_count"),
    dg.TableColumn("road_address_tf", "boolean", description="the road address was used"),
    dg.TableColumn("address_name", "text"),
    dg.TableColumn("region_1depth_name", "text"),
    dg.TableColumn("region_2depth_name", "text"),
    dg.TableColumn("region_3depth_name", "text"),
    dg.TableColumn("region_3depth_h_name", "text"),
    dg.TableColumn("building_name", "text"),
    dg.TableColumn("building_dong", "text", description="the number before 동 in the ERP's text"),
    dg.TableColumn("building_ho", "text", description="the number before 호 in the ERP's text"),
    dg.TableColumn("zone_no", "text", description="postal code"),
    dg.TableColumn("x", "double precision", description="longitude"),
    dg.TableColumn("y", "double precision", description="latitude"),
    dg.TableColumn("refined_at", "timestamp with time zone", constraints=dg.TableColumnConstraints(nullable=False)),
])
_DONG = re.compile(r"(\d+)\s*동")
_HO = re.compile(r"(\d+)\s*호")


def address_texts(frame: pd.DataFrame, source: AddressSource) -> set[str]:
    """The distinct non-empty addresses of a chunk of ``source``'s rows."""
    found: set[str] = set()
    for main, detail in source.columns:
        for first, second in zip(frame[main], frame[detail]):
            text = " ".join(part.strip() for part in (first, second) if isinstance(part, str) and part.strip())
            if text:
                found.add(" ".join(text.split()))
    return found


def address_row(address: str, search: Search, refined_at: datetime) -> dict:
    """The ``lv1.address_master`` row of ``address`` from its search, as the old DAG filled it."""
    row = {KEY: address, "status": NOT_FOUND, "refined_at": refined_at}
    if search.document is None:
        return row
    road, lot = search.document.get("road_address") or None, search.document.get("address") or None
    used = road or lot or search.document
    value = lambda part, name: (part or {}).get(name) or None  # noqa: E731  "" means none
    building = value(road, "building_name")
    row.update(
        status=FOUND if search.words_dropped == 0 else FOUND_SHORTENED,
        accuracy=search.total_count,
        road_address_tf=road is not None,
        address_name=value(used, "address_name"),
        region_1depth_name=value(used, "region_1depth_name"),
        region_2depth_name=value(used, "region_2depth_name"),
        region_3depth_name=value(used, "region_3depth_name"),
        region_3depth_h_name=value(lot, "region_3depth_h_name"),
        building_name=building,
        building_dong=_number_before(_DONG, address) if building else None,
        building_ho=_number_before(_HO, address) if building else None,
        zone_no=value(road, "zone_no"),
        x=_coordinate(value(used, "x") or search.document.get("x")),
        y=_coordinate(value(used, "y") or search.document.get("y")),
    )
    return row


def _number_before(pattern: re.Pattern, text: str) -> str | None:
    found = pattern.search(text)
    return found.group(1) if found else None


def _coordinate(value) -> float | None:
    return float(value) if value not in (None, "") else None


def already_refined(datahub: DataHub, addresses: set[str]) -> set[str]:
    """Those of ``addresses`` that ``lv1.address_master`` already holds."""
    engine = datahub.engine()
    schema, name = TABLE.split(".")
    if not addresses or not sa.inspect(engine).has_table(name, schema=schema):
        return set()
    table = sa.table(name, sa.column(KEY), schema=schema)
    with engine.connect() as conn:
        return set(conn.execute(sa.select(table.c[KEY]).where(table.c[KEY].in_(sorted(addresses)))).scalars())


def refined_frames(context: dg.AssetExecutionContext, source: AddressSource, datahub: DataHub,
                   chunks: DataFrameChunks) -> Iterator[pd.DataFrame]:
    """For each chunk of the source's rows, the address_master rows of its new addresses."""
    geocoder = KakaoLocal.from_environment(development_service=shared_standin)
    seen: set[str] = set()  # this run's, not yet committed
    counts = {FOUND: 0, FOUND_SHORTENED: 0, NOT_FOUND: 0}
    partition = context.partition_key_range.end if context.has_partition_key_range else None
    try:
        for chunk in chunks:
            addresses = address_texts(chunk, source) - seen
            seen |= addresses
            # sorted: addresses sharing their first words follow each other, so the fallback's
            # shorter texts are still remembered when the next address asks them
            new = sorted(addresses - already_refined(datahub, addresses))
            refined_at = datetime.now(timezone.utc)
            rows = [address_row(address, geocoder.refine(address), refined_at) for address in new]
            for row in rows:
                counts[row["status"]] += 1
            if rows:
                frame = pd.DataFrame(rows, columns=[c.name for c in COLUMNS.columns], dtype=object)
                if partition is not None:
                    frame["_partition"] = partition
                yield frame
    finally:
        geocoder.close()
        chunks.close()  # ends the read of the source at once, also when the service failed
    context.log.info(
        f"{TABLE} from lv1.{source.table}: {sum(counts.values())} new address(es), "
        + ", ".join(f"{n} {status}" for status, n in counts.items())
        + f"; {geocoder.searches} search(es), {geocoder.requests_sent} request(s) sent (the rest answered"
        " from the texts already searched)"
    )


class Spool:
    """DataFrames kept in a temporary file until all are in, then read back one at a time."""

    def __init__(self):
        self._file = tempfile.TemporaryFile()

    def add(self, frame: pd.DataFrame) -> None:
        pickle.dump(frame, self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def frames(self) -> Iterator[pd.DataFrame]:
        self._file.seek(0)
        try:
            while True:
                try:
                    yield pickle.load(self._file)  # noqa: S301  (our own file, written above)
                except EOFError:
                    return
        finally:
            self.close()

    def close(self) -> None:
        self._file.close()


def build_lv1ex_asset(source: AddressSource, catalog: Catalog) -> dg.AssetsDefinition:
    dag_id = "lv1ex_dag_" + catalog.by_name(source.table).qualified_name

    @dg.asset(
        key=["lv1ex", source.table],
        io_manager_key=DATAHUB_IO,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),  # a range is one run, as for every layer
        freshness_policy=daily_freshness,
        ins={"rows": datahub_in(["lv1", source.table])},
        group_name="lv1ex",
        kinds={"python", "postgres"},
        output_required=False,  # yields nothing when the service failed and lv2 follows (see above)
        description=f"The addresses of `lv1.{source.table}` refined by Kakao's address search into "
                    f"`{TABLE}` (new addresses only; the old `{dag_id}`).",
        metadata={"table": TABLE, "upsert_key": KEY, DAG_ID_METADATA_KEY: dag_id, "dagster/column_schema": COLUMNS},
    )
    def refine(context: dg.AssetExecutionContext, datahub: DataHub, rows: DataFrameChunks):
        # One lv1ex asset at a time, from its look-up of the addresses already refined to the
        # commit of its rows (the IO manager writes them before this generator resumes): the
        # four share the service's rate limit and the table, and an address two of them hold is
        # sent and written once.
        with exclusive_pool(datahub.engine(), ADDRESS_LOCK):
            spool = Spool()
            try:
                for frame in refined_frames(context, source, datahub, rows):
                    spool.add(frame)
            except (GeocoderError, SettingsError) as err:  # the service, not an address: unusable
                spool.close()
                if not later_platform_step(context):
                    raise
                context.log.error(f"{context.asset_key.to_user_string()} failed: {err}; nothing of it was written")
                return
            # a generator is yielded wrapped: bare, Dagster would take it for a stream of events
            yield dg.Output(spool.frames())

    return refine


def lv1ex_assets(catalog: Catalog) -> list[dg.AssetsDefinition]:
    return [build_lv1ex_asset(source, catalog) for source in SOURCES]
