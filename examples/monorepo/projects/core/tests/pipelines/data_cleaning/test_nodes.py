from unittest import mock

import core.pipelines.data_cleaning.nodes as nodes_module
from core.pipelines.data_cleaning.nodes import clean, drop_columns, missing_share


def test_drop_columns_removes_keys():
    assert drop_columns([{"a": 1, "b": 2}], ["b"]) == [{"a": 1}]


def test_clean_drops_then_renames():
    params = {"drop_columns": ["internal_id"], "rename": {"cust_id": "customer_id"}}
    records = [{"cust_id": 7, "internal_id": "x", "age": 41}]
    assert clean(records, params) == [{"customer_id": 7, "age": 41}]


def test_missing_share_counts_none():
    assert missing_share([{"a": None}, {"a": 1}], "a") == 0.5


def test_clean_uses_rename_columns():
    with mock.patch("core.pipelines.data_cleaning.nodes.rename_columns", return_value=[]) as renamed:
        assert nodes_module.clean([{"a": 1}], {}) == []
    renamed.assert_called_once()
