"""The typed library API (`likeness.scan`, `likeness.verify`, `likeness.animate`) and
the JSON Schemas generated from its dataclasses and shipped in the package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import likeness
from likeness import api
from likeness.errors import InputError
from tests import samples

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the test extra")
GOLDEN = Path(__file__).parent / "golden" / "scan_record.jsonl"


def validator(name: str):
    schema = json.loads(api.schema_path(name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


# ---------------------------------------------------------------- schemas


def test_shipped_schemas_are_the_generated_ones():
    for name, text in api.generate_schemas().items():
        shipped = api.schema_path(name).read_text()
        assert shipped == text, (
            f"likeness/schemas/{name} is stale: regenerate it with "
            '`python -c "import likeness.api as a; a.write_schemas()"`'
        )


def test_the_schema_follows_the_dataclass_fields():
    from likeness.pipelines.scan_record import _FIELD_ORDER, SCHEMA, ScanRecord

    schema = json.loads(api.schema_path().read_text())
    assert set(schema["required"]) == set(_FIELD_ORDER)
    assert schema["properties"]["schema"] == {"const": SCHEMA}
    assert ScanRecord is likeness.ScanResult  # one shape, two names


def test_golden_lines_validate_and_broken_ones_do_not():
    check = validator("scan-record.schema.json")
    lines = [json.loads(line) for line in GOLDEN.read_text().splitlines()]
    for line in lines:
        assert not list(check.iter_errors(line))
    good = lines[0]
    broken = [
        {**good, "verdict": "maybe"},
        {k: v for k, v in good.items() if k != "video_score"},
        {**good, "faces": [{**good["faces"][0], "largest_box": [1, 2, 3]}]},
        {**good, "provenance": {**good["provenance"], "manifest": "fine"}},
        {**good, "frames_scanned": "2"},
    ]
    for line in broken:
        assert list(check.iter_errors(line)), line


def test_a_line_with_keys_beyond_the_schema_still_validates():
    check = validator("scan-record.schema.json")
    line = json.loads(GOLDEN.read_text().splitlines()[0])
    line["from_a_newer_likeness"] = {"x": 1}
    assert not list(check.iter_errors(line))


# ---------------------------------------------------------------- scan


@pytest.fixture(scope="module")
def never(tmp_path_factory) -> Path:
    from tests.test_scan import _weights

    return _weights(tmp_path_factory.mktemp("det") / "never", 1.0)


def test_scan_gives_the_line_scan_json_writes(never, home, tmp_path, astronaut):
    from likeness.cli import main

    photo = tmp_path / "astronaut.png"
    photo.write_bytes(samples.png_bytes(astronaut))
    result = likeness.scan(photo, weights=never, provenance=False)
    assert isinstance(result, likeness.ScanResult)
    assert result.verdict == "likely-real" and result.faces and result.video_score is not None
    code = main(["scan", str(photo), "--weights", str(never), "--no-provenance",
                 "--json", str(tmp_path / "s.jsonl")])  # fmt: skip
    assert code == 0
    line = json.loads((tmp_path / "s.jsonl").read_text())
    mine = result.to_dict()
    for key in ("seconds",):
        line.pop(key), mine.pop(key)
    assert mine == line
    assert not list(validator("scan-record.schema.json").iter_errors(result.to_dict()))


def test_scan_keeps_one_scanner_per_config_and_a_bad_file_is_a_record(never, home, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\0" * 100)
    first = likeness.scan(bad, weights=never, provenance=False)
    assert first.status == "error" and first.error.kind != "internal"
    scanner = api._SCANNERS[api._config(None, {"weights": never, "provenance": False})][0]
    likeness.scan(bad, weights=never, provenance=False)
    assert api._SCANNERS[api._config(None, {"weights": never, "provenance": False})][0] is scanner


def test_scan_refuses_an_unknown_option():
    with pytest.raises(InputError, match="unknown scan option"):
        likeness.scan("x.mp4", evry=3)


def test_report_html_is_the_scan_report(never, home, tmp_path, astronaut):
    photo = tmp_path / "astronaut.png"
    photo.write_bytes(samples.png_bytes(astronaut))
    scan = api.scan_file(photo, weights=never, provenance=False)
    page = api.report_html([scan])
    assert page.startswith("<!DOCTYPE html>") and "astronaut.png" in page
    assert "data:image/jpeg;base64," in page  # the top frame's thumbnail


# ---------------------------------------------------------------- verify


def test_verify_gives_the_verify_json_object_typed(keys, root_pem, tmp_path, capsys):
    from likeness.cli import main
    from likeness.provenance.mark import mark_image
    from likeness.provenance.verify import verify_file
    from tests.test_provenance import WM_SIZE, texture

    signed = mark_image(texture(5, WM_SIZE), tmp_path / "still.png").target
    check = likeness.verify(signed, trust=[root_pem])
    assert isinstance(check, likeness.Verification)
    assert check.manifest == "trusted" and check.verified and check.signer
    assert check.to_dict() == json.loads(json.dumps(verify_file(signed, [root_pem]).to_dict()))
    assert not list(validator("verification.schema.json").iter_errors(check.to_dict()))
    capsys.readouterr()
    code = main(["verify", str(signed), "--json"])
    line = json.loads(capsys.readouterr().out)
    assert code == 0 and line["manifest"] == "valid-untrusted"  # no --trust (watermark verifies)
    assert not list(validator("verification.schema.json").iter_errors(line))
    assert {f["code"] for f in line["findings"]} >= {"signingCredential.untrusted"}


def test_verify_of_a_missing_file_is_bad_input(tmp_path):
    with pytest.raises(InputError):
        likeness.verify(tmp_path / "missing.mp4")


# ---------------------------------------------------------------- animate


def test_animate_refuses_an_unknown_option(tmp_path):
    with pytest.raises(InputError, match="unknown animate option"):
        likeness.animate(tmp_path / "p.png", tmp_path / "o.mp4", motion="nod", regoin="eyes")


def test_importing_likeness_loads_nothing_heavy():
    from tests.test_layers import loaded_by

    code = "likeness"
    assert loaded_by(code, ("torch", "numpy", "cv2", "av", "timm", "c2pa")) == "[]"


def test_the_suite_checks_every_scan_line_it_writes(tmp_path):
    """conftest validates each JSONL run_scan writes: a bad line is caught there."""
    from likeness.pipelines import scan_runner
    from tests import conftest

    scan_runner.write_jsonl(tmp_path / "bad.jsonl", [{"schema": "likeness-scan/1"}])
    caught = list(conftest._SCAN_LINE_PROBLEMS)
    conftest._SCAN_LINE_PROBLEMS.clear()  # this test's own bad line, not a failure
    assert any("required property" in p for p in caught), caught
