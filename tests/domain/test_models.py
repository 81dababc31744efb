"""The model table (with the default-model fallback of section 3.1) and the bid table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mockserver.domain import BID_NOT_FOUND, DEFAULT_MODEL, BidTable, CreateFailed, InvalidTable, Model, ModelTable
from tests.domain.conftest import BID, LLAMA, MISTRAL

ALPHA = "0x" + "a" * 64
BETA = "0x" + "b" * 64


def _model(name: str, blockchain_id: str) -> Model:
    return Model(name, blockchain_id, 1, ("LLM",), "LLM")


@pytest.mark.parametrize(
    ("model_id", "resolved"),
    [
        (MISTRAL, MISTRAL),
        (LLAMA, LLAMA),
        ("llama-3.3-70b", LLAMA),
        ("mistral-31-24b", MISTRAL),
        ("gpt-4o", MISTRAL),
        ("", MISTRAL),
        (LLAMA.upper(), MISTRAL),
        ("0x" + "0" * 64, MISTRAL),
    ],
    ids=["default-id", "id", "name", "default-name", "unknown", "empty", "id-case-matters", "unknown-id"],
)
def test_models_resolve_id_then_name_else_default(model_id: str, resolved: str) -> None:
    assert ModelTable.builtin().resolve(model_id) == resolved


def test_models_id_match_beats_name_match() -> None:
    table = ModelTable([_model("a", ALPHA), _model(ALPHA, BETA)], "a")
    assert table.resolve(ALPHA) == ALPHA


def test_models_builtin_table_has_the_gateway_default() -> None:
    table = ModelTable.builtin()
    assert table.default == Model(DEFAULT_MODEL, MISTRAL, 1741219200, ("LLM", "default"), "LLM")
    assert Model("llama-3.3-70b", LLAMA, 1741305600, ("LLM",), "LLM") in table.models()
    assert {m.model_type for m in table.models()} == {"LLM", "EMBEDDINGS"}
    assert repr(table) == "ModelTable(4 models, default='mistral-31-24b')"


def test_models_item_json_uses_the_gateway_field_names() -> None:
    assert ModelTable.builtin().default.to_json() == {
        "id": "mistral-31-24b",
        "blockchainID": MISTRAL,
        "created": 1741219200,
        "tags": ["LLM", "default"],
        "modelType": "LLM",
    }


@pytest.mark.parametrize(
    "bad", ["0x" + "A" * 64, "0x" + "a" * 63, "a" * 66, ""], ids=["upper", "short", "no-0x", "empty"]
)
def test_models_blockchain_id_format_is_checked(bad: str) -> None:
    with pytest.raises(InvalidTable, match="must be '0x' \\+ 64 lowercase hex"):
        _model("m", bad)


@pytest.mark.parametrize(
    ("models", "default", "message"),
    [
        ([_model("a", ALPHA)], "b", "default model 'b' is not in the table (models: 'a')"),
        ([], "a", "default model 'a' is not in the table (models: none)"),
        ([_model("a", ALPHA), _model("a", BETA)], "a", "duplicate model name: 'a'"),
        ([_model("a", ALPHA), _model("b", ALPHA)], "a", f"duplicate model blockchain id: '{ALPHA}'"),
        ([_model("a", ALPHA), _model("a", ALPHA)], "a", "duplicate model name: 'a'"),
    ],
    ids=["unknown-default", "empty", "duplicate-name", "duplicate-id", "duplicate-both"],
)
def test_models_table_is_validated(models: list[Model], default: str, message: str) -> None:
    with pytest.raises(InvalidTable) as caught:
        ModelTable(models, default)
    assert caught.value.detail == message


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "table.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_models_from_file_reads_the_gateway_list(tmp_path: Path) -> None:
    items = [m.to_json() for m in ModelTable.builtin().models()]
    table = ModelTable.from_file(_write(tmp_path, {"default": "llama-3.3-70b", "models": items}))
    assert table.models() == ModelTable.builtin().models()
    assert table.resolve("nope") == LLAMA


def test_models_from_file_fills_optional_fields(tmp_path: Path) -> None:
    table = ModelTable.from_file(_write(tmp_path, {"default": "a", "models": [{"id": "a", "blockchainID": ALPHA}]}))
    assert table.models() == (Model("a", ALPHA, 0, (), "LLM"),)


GOOD_ITEM = {"id": "a", "blockchainID": ALPHA, "created": 1, "tags": ["LLM"], "modelType": "LLM"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "cannot read"),
        ([1], "$ must be a JSON object, got [1]"),
        ({"default": "a"}, "$.models is missing"),
        ({"default": "a", "models": {}}, "$.models must be a list, got {}"),
        ({"models": [GOOD_ITEM]}, "$.default is missing"),
        ({"default": 1, "models": [GOOD_ITEM]}, "$.default must be a string, got 1"),
        ({"default": "a", "models": ["a"]}, "$.models[0] must be a JSON object, got 'a'"),
        ({"default": "a", "models": [{**GOOD_ITEM, "id": None}]}, "$.models[0].id must be a string, got None"),
        ({"default": "a", "models": [{**GOOD_ITEM, "blockchainID": "0x1"}]}, "must be '0x' + 64 lowercase hex"),
        ({"default": "a", "models": [{**GOOD_ITEM, "created": True}]}, "$.models[0].created must be an integer"),
        ({"default": "a", "models": [{**GOOD_ITEM, "created": 1.5}]}, "$.models[0].created must be an integer"),
        ({"default": "a", "models": [{**GOOD_ITEM, "tags": "LLM"}]}, "$.models[0].tags must be a list"),
        ({"default": "a", "models": [{**GOOD_ITEM, "tags": ["x", 2]}]}, "$.models[0].tags[1] must be a string, got 2"),
        ({"default": "b", "models": [GOOD_ITEM]}, "default model 'b' is not in the table"),
        ({"default": "a", "models": [GOOD_ITEM, GOOD_ITEM]}, "duplicate model name: 'a'"),
    ],
    ids=[
        "not-json",
        "not-object",
        "no-models",
        "models-not-list",
        "no-default",
        "default-not-string",
        "item-not-object",
        "id-null",
        "bad-id",
        "created-bool",
        "created-float",
        "tags-string",
        "tag-not-string",
        "unknown-default",
        "duplicates",
    ],
)
def test_models_from_file_rejects_bad_files(tmp_path: Path, data: object, message: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(InvalidTable) as caught:
        ModelTable.from_file(path)
    assert caught.value.detail.startswith(f"model table {path}: ")
    assert message in caught.value.detail


def test_models_from_file_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidTable, match=r"cannot read .*missing\.json"):
        ModelTable.from_file(tmp_path / "missing.json")


def test_bids_are_free_form_unless_strict() -> None:
    table = BidTable()
    table.check("not even hex")
    assert table.failure("anything") is None
    assert repr(table) == "BidTable(0 bids, strict=False)"


def test_bids_strict_table_rejects_unknown_bids_with_the_upstream_text() -> None:
    table = BidTable([BID], strict=True)
    table.check(BID)
    assert table.failure(BID) is None
    assert table.failure("0xdead") == BID_NOT_FOUND
    with pytest.raises(CreateFailed) as caught:
        table.check("0xdead")
    assert caught.value.detail == (
        'Error from proxy router: Failed to create bid session: HTTP 500: {"error":"bid not found"}'
    )


def test_bids_from_file(tmp_path: Path) -> None:
    table = BidTable.from_file(_write(tmp_path, {"strict": True, "bids": [BID, "0x01"]}))
    assert table.strict is True
    assert table.bids() == ("0x01", BID)
    lenient = BidTable.from_file(_write(tmp_path, {"bids": []}))
    assert lenient.strict is False
    assert lenient.bids() == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[", "cannot read"),
        ({"strict": "yes", "bids": []}, "$.strict must be true or false, got 'yes'"),
        ({"strict": True, "bids": "0x01"}, "$.bids must be a list, got '0x01'"),
        ({"bids": [1]}, "$.bids[0] must be a string, got 1"),
    ],
    ids=["not-json", "strict-not-bool", "bids-not-list", "bid-not-string"],
)
def test_bids_from_file_rejects_bad_files(tmp_path: Path, data: object, message: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(InvalidTable) as caught:
        BidTable.from_file(path)
    assert caught.value.detail.startswith(f"bid table {path}: ")
    assert message in caught.value.detail
