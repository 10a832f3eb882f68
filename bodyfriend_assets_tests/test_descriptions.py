"""What the UI shows as text: descriptions render as written, sizes read as sizes."""

import re

from bodyfriend_assets.definitions import defs
from bodyfriend_assets.markdown import quote_code
from bodyfriend_assets.table_metadata import human_size


def test_code_in_prose_is_quoted_and_prose_is_left_alone():
    assert quote_code("Cleaned by the lv1 rules (bodyfriend_assets/lv1/__init__.py).") == (
        "Cleaned by the lv1 rules (`bodyfriend_assets/lv1/__init__.py`)."
    )
    assert quote_code("B_MAJOR is kept, with a NULL major_nm; see lv2.account.") == (
        "`B_MAJOR` is kept, with a NULL `major_nm`; see `lv2.account`."
    )
    untouched = "e.g. 3.4 MB a day, 고객 정보, already `lv0.r_goods`."
    assert quote_code(untouched) == untouched


def _outside_backticks(text: str) -> str:
    return re.sub(r"`[^`]*`", "", text)


def test_no_description_has_unquoted_code_that_markdown_would_mangle():
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    texts = {node.key.to_user_string(): node.description or "" for node in graph.asset_nodes}
    texts |= {str(key): graph.get_check_spec(key).description or "" for key in graph.asset_check_keys}
    texts |= {job.name: job.description or "" for job in repo.get_all_jobs()}
    texts |= {s.name: s.description or "" for s in repo.schedule_defs}
    texts |= {s.name: s.description or "" for s in repo.sensor_defs}
    # snake_case names (a `__x__` becomes bold), paths and `*` are quoted
    mangled = {
        name: text for name, text in texts.items()
        if re.search(r"\w_\w|__|\*|\w/\w", _outside_backticks(text))
    }
    assert mangled == {}
    assert "bodyfriend_assets/lv1/__init__.py" in texts["lv1/r_order_contract"]


def test_sizes_are_shown_for_people():
    assert human_size(0) == "0 bytes"
    assert human_size(1023) == "1023 bytes"
    assert human_size(3_569_592) == "3.4 MB"
    assert human_size(5 * 1024**3) == "5.0 GB"
