"""The scan record's JSON line, byte for byte (a golden file), and its round trip
through the reader `scan --resume` uses."""

from __future__ import annotations

import json
from pathlib import Path

from likeness.pipelines.scan import error_record
from likeness.pipelines.scan_record import (
    FaceResult,
    FrameResult,
    ModelInfo,
    ProvenanceFindings,
    Sampling,
    ScanRecord,
    TopFrame,
)
from likeness.pipelines.scan_runner import read_jsonl, write_jsonl

GOLDEN = Path(__file__).parent / "golden" / "scan_record.jsonl"


def fixed_record() -> ScanRecord:
    return ScanRecord(
        path="/clips/a.mp4",
        name="a.mp4",
        sha256="ab" * 32,
        kind="video",
        width=640,
        height=360,
        fps=25.0,
        duration_s=2.4,
        sampling=Sampling(10, 300),
        frames_scanned=2,
        frames_with_face=2,
        faces=[FaceResult(0, 2, 0.73512, True, (10.0, 20.5, 110.0, 140.0),
                          [(0, 0.0, 0.61), (10, 0.4, 0.80234)])],
        frames=[FrameResult(0, 0.0, 1, 0.61), FrameResult(10, 0.4, 1, 0.80234)],
        video_score=0.73512,
        threshold=0.402117,
        verdict="manipulated",
        top_frames=[TopFrame(10, 0.4, 0, 0.80234, (10.0, 20.5, 110.0, 140.0))],
        provenance=ProvenanceFindings(
            manifest="no-manifest",
            verified=False,
            reasons=["no C2PA manifest in the file"],
            watermark={"found": False, "payload": None, "p_false": float("nan")},
        ),
        model=ModelInfo("likeness-detector-small", "cd" * 32),
        seconds=1.234,
        likeness="0.1.0",
    )  # fmt: skip


def test_the_json_line_is_the_golden_bytes():
    line = fixed_record().to_json_line()
    assert line.encode() == GOLDEN.read_bytes().splitlines(keepends=True)[0]


def test_an_error_record_is_the_golden_bytes():
    from likeness.errors import MediaError

    record = error_record(Path("/clips/b.mp4"), MediaError("cannot decode b.mp4"), "ef" * 32)
    record.likeness = "0.1.0"
    assert record.to_json_line().encode() == GOLDEN.read_bytes().splitlines(keepends=True)[1]


def test_written_lines_read_back_as_the_same_records(tmp_path):
    records = [fixed_record(), ScanRecord.from_dict(json.loads(GOLDEN.read_text().splitlines()[1]))]
    path = tmp_path / "scan.jsonl"
    write_jsonl(path, records)
    assert path.read_bytes() == GOLDEN.read_bytes()
    back = [ScanRecord.from_dict(line) for line in read_jsonl(path)]
    assert back[1] == records[1]
    first = fixed_record()
    first.provenance.watermark["p_false"] = None  # JSON has no NaN
    assert back[0] == first


def test_keys_beyond_the_schema_are_carried_through():
    line = json.loads(fixed_record().to_json_line())
    line["provenance"]["c2pa_status"] = ["claimSignature.validated"]
    line["dense_head"] = {"kind": "blend-mask"}
    record = ScanRecord.from_dict(line)
    assert record.provenance.extra == {"c2pa_status": ["claimSignature.validated"]}
    assert record.to_dict() == line and list(record.to_dict()) == list(line)
