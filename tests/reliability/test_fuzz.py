"""Fuzzing, CI size: mutated videos, images, signed files, packs, scan JSONL and JSON
configs must each read fine or raise a one-line LikenessError; never an other
exception, a hang, a memory blow-up or a crash (the harness is tests/reliability/
fuzzing.py; each batch runs in a child process under memory, CPU and time limits).

Fixed seeds and small counts here (`CI_SEED`, `CI_COUNTS`); `make fuzz` runs the long
version. Pure-Python readers are also driven in-process by hypothesis. Bugs the
fuzzer found are pinned in the "regressions" section at the end.
"""

from __future__ import annotations

import json
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from likeness.errors import InputError, MediaError, ModelError
from tests.reliability import fuzzing
from tests.reliability.conftest import make_home, run_likeness

CI_SEED = 7
# Cases per target (each read by every reader of its target: see TARGET_READERS).
CI_COUNTS = {"video": 150, "image": 150, "manifest": 60, "pack": 80, "jsonl": 120, "json": 24}
HYPOTHESIS = settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, list[fuzzing.Seed]]:
    made = fuzzing.make_seeds(tmp_path_factory.mktemp("fuzz-seeds"))
    make_home(Path(made["manifest"][0].extra["home"]))  # face models too, for `scan`
    return made


def one_line(err: BaseException) -> str:
    text = str(err)
    assert text.strip() and "\n" not in text, repr(text)
    return text


# ---------------------------------------------------------------- the harness itself


@pytest.mark.parametrize(
    ("how", "outcome", "kind"),
    [
        ("fine", "ok", ""),
        ("raise", "exception", "KeyError"),
        ("multiline", "likeness-error", "LikenessError"),
        ("segv", "crash", "SIGSEGV"),
        ("alloc", "exception", "MemoryError"),  # RLIMIT_AS turns 8 GiB into MemoryError
        ("hang", "timeout", "no answer in 3 s"),
    ],
)
def test_harness_catches_each_kind_of_failure(how, outcome, kind, tmp_path):
    """A child that crashes or hangs is blamed on its case, and the next case still runs."""
    cases = [
        fuzzing.Case(f"c-{how}", "self", "-", str(tmp_path), ("selftest",), [], {"selftest": how}),
        fuzzing.Case(
            "c-after", "self", "-", str(tmp_path), ("selftest",), [], {"selftest": "fine"}
        ),
    ]
    results = {r.id: r for r in fuzzing.run_batch(cases, timeout=3)}
    assert results["c-after"].outcome == "ok"
    got = results[f"c-{how}"]
    assert (got.outcome, got.type) == (outcome, kind), got
    assert got.failed == (how != "fine")


def test_mutations_are_deterministic_and_change_the_bytes():
    data = b"\x00\x00\x00\x20ftypisom" + bytes(range(256)) * 20 + b"\x00\x01\x00\x00moov" * 4
    first = [fuzzing.mutate(data, random.Random(f"x/{i}")) for i in range(200)]
    again = [fuzzing.mutate(data, random.Random(f"x/{i}")) for i in range(200)]
    assert first == again
    assert sum(out != data for out, _ in first) > 190
    kinds = {note.split()[0] for _, notes in first for note in notes}
    assert {"truncate", "flip", "overwrite", "zero", "copy", "shuffle", "box"} <= kinds


def test_huge_dimensions_reach_the_size_fields(seeds):
    png = next(s for s in seeds["image"] if s.name == "a.png").path
    for i in range(20):
        data, note = fuzzing.huge_dimensions(png.read_bytes(), random.Random(i))
        assert note.startswith("huge-dims png-ihdr"), note
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert note.endswith(f"{width}x{height}")


# ---------------------------------------------------------------- fuzz runs (child processes)


@pytest.mark.parametrize("target", fuzzing.TARGETS)
def test_mutated_inputs_read_or_fail_with_one_line(target, seeds, tmp_path):
    count = CI_COUNTS[target]
    report = fuzzing.fuzz(target, seeds, seed=CI_SEED, count=count, folder=tmp_path, jobs=2)
    print(report.summary())
    assert not report.failures(), report.summary() + "\n" + report.describe()
    assert len(report.results) == count * len(fuzzing.TARGET_READERS[target])
    counts = report.counts()
    assert counts["likeness-error"] > count // 10, counts  # the mutations do break files
    assert counts["ok"] > 0, counts  # and some still read (bytes that do not matter)


def test_trusted_verdict_never_covers_changed_pixels(tmp_path):
    """The pixel check the manifest target runs on every trusted verdict fires when the
    pixels differ, and is quiet when only bytes outside the pixels changed."""
    other = fuzzing.write_picture(tmp_path / "other.png", (48, 32))
    data = bytearray(other.read_bytes())
    changed = tmp_path / "changed.png"
    img = np.asarray(fuzzing._pixels(other)[0]).copy()
    img[0, 0] ^= 0xFF
    import cv2

    cv2.imwrite(str(changed), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    with pytest.raises(fuzzing.TrustViolation):
        fuzzing._check_same_pixels(other, changed)
    same = tmp_path / "same.png"
    same.write_bytes(bytes(data[:-12]) + fuzzing_png_text_chunk() + bytes(data[-12:]))
    fuzzing._check_same_pixels(other, same)  # a new text chunk: same pixels, no violation


def fuzzing_png_text_chunk() -> bytes:
    import struct
    import zlib

    body = b"tEXt" + b"note\x00hello"
    return struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))


def test_cli_on_mutated_files_answers_in_one_line(seeds, tmp_path):
    """`verify` and `scan` on broken files: an exit code, one line on stderr, never a
    traceback or an internal error."""
    manifest = {s.name: s for s in seeds["manifest"]}
    home = Path(manifest["signed.mp4"].extra["home"])
    trust = manifest["signed.mp4"].extra["trust"]
    files = []
    for k, (name, how) in enumerate(
        [("signed.mp4", fuzzing.truncate), ("signed.jpg", fuzzing.swap_header),
         ("signed.png", fuzzing.huge_dimensions), ("signed.mp4", fuzzing.box_field)]
    ):  # fmt: skip
        data, _ = how(manifest[name].path.read_bytes(), random.Random(k))
        path = tmp_path / f"m{k}{manifest[name].path.suffix}"
        path.write_bytes(data)
        files.append(path)
    codes = []
    for path in files[:3]:
        result = run_likeness(home, "verify", path, "--trust", trust, timeout=120)
        lines = [ln for ln in result.err.splitlines() if ln.strip()]
        assert "Traceback" not in result.text and "internal error" not in result.text, result
        assert result.code in (0, 1, 2), result
        if result.code == 2:
            assert len(lines) == 1 and lines[0].startswith("error: "), result
        codes.append(result.code)
    assert 2 in codes  # at least one of them is unreadable, and says so
    out = tmp_path / "scan.jsonl"
    result = run_likeness(home, "scan", *files, "--json", out, timeout=300)
    assert "Traceback" not in result.text and "internal error" not in result.text, result
    assert result.code in (0, 2, 3), result
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(files)
    for record in records:
        if record["status"] != "ok":
            assert record["error"]["kind"] != "internal", record
            assert "\n" not in record["error"]["message"]


# ---------------------------------------------------------------- hypothesis, in-process

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def scan_record():
    from likeness.pipelines.scan import SCHEMA

    fields = {"path": JSON, "sha256": JSON, "status": st.sampled_from(["ok", "error"]) | JSON}
    return st.fixed_dictionaries({"schema": st.just(SCHEMA)}, optional=fields)


@HYPOTHESIS
@given(lines=st.lists(scan_record() | JSON, max_size=5), tail=st.binary(max_size=8))
def test_scan_jsonl_reader_gives_records_resume_can_use(lines, tail, tmp_path_factory):
    """`read_jsonl` (what `scan --resume` reads): records whose path, sha256 and status
    are strings or null, else InputError in one line."""
    from likeness.pipelines.scan_runner import read_jsonl

    path = tmp_path_factory.mktemp("jsonl") / "scan.jsonl"
    path.write_bytes(b"".join(json.dumps(x).encode() + b"\n" for x in lines) + tail)
    try:
        records = read_jsonl(path)
    except InputError as err:
        one_line(err)
        return
    for record in records:
        for key in ("path", "sha256", "status"):
            assert isinstance(record.get(key), str | None), record


@HYPOTHESIS
@given(data=st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()))
def test_json_object_reader(data, tmp_path_factory):
    from likeness.jsonio import read_json_object

    path = tmp_path_factory.mktemp("json") / "config.json"
    path.write_bytes(data)
    try:
        assert isinstance(read_json_object(path, "config"), dict)
    except InputError as err:
        one_line(err)


def _shipped(rel: str) -> dict:
    return json.loads((Path(fuzzing.__file__).parents[2] / "likeness/weights" / rel).read_text())


@HYPOTHESIS
@given(seed=st.integers(0, 2**32), extra=st.dictionaries(st.sampled_from(["input_size",
       "channels", "name", "drop_rate"]), JSON, max_size=2))  # fmt: skip
def test_detector_config_and_calibration_loaders(seed, extra):
    from likeness.detector.config import DetectorConfig
    from likeness.detector.model import Decision

    rng = random.Random(seed)
    config = {**fuzzing.mutate_json_value(_shipped("detector/config.json"), rng), **extra}
    try:
        DetectorConfig.from_dict(config)
    except InputError as err:
        one_line(err)
    calibration = fuzzing.mutate_json_value(_shipped("detector/calibration.json"), rng)
    try:
        Decision.from_dict(calibration)
    except ModelError as err:
        one_line(err)


@pytest.fixture(scope="module")
def pack_seed(seeds) -> Path:
    return seeds["pack"][0].path


@HYPOTHESIS
@given(seed=st.integers(0, 2**32), steps=st.integers(1, 3))
def test_pack_manifest_reader(seed, steps, pack_seed, tmp_path_factory):
    """Pack.open on structurally mutated manifests (no pixels decoded: in-process)."""
    from likeness.datasets.pack_reader import Pack

    rng = random.Random(seed)
    manifest = json.loads((pack_seed / "manifest.json").read_text())
    for _ in range(steps):
        manifest = fuzzing.mutate_json_value(manifest, rng)
    root = tmp_path_factory.mktemp("pack")
    for rel in ("clips", "photos"):
        (root / rel).symlink_to(pack_seed / rel)
    (root / "manifest.json").write_text(json.dumps(manifest))
    try:
        pack = Pack.open(root)
    except InputError as err:
        one_line(err)
        return
    assert all(item.frames >= 1 for item in pack.items)


@HYPOTHESIS
@given(seed=st.integers(0, 2**32), name=st.sampled_from(["a.png", "a.jpg", "a.webp", "a.bmp"]))
def test_image_header_parser(seed, name, seeds, tmp_path_factory):
    """The header parser (pure Python) on mutated image headers: a size within the
    limits, or MediaError; it never decodes pixels, so it runs in-process."""
    from likeness.media.images import read_image_header
    from likeness.media.limits import DEFAULT_LIMITS

    src = next(s for s in seeds["image"] if s.name == name).path
    data, _ = fuzzing.mutate(src.read_bytes(), random.Random(seed))
    path = tmp_path_factory.mktemp("img") / name
    path.write_bytes(data or b"\0")
    try:
        header = read_image_header(path)
    except MediaError as err:
        one_line(err)
        return
    assert 0 < header.width * header.height <= DEFAULT_LIMITS.max_pixels
    assert 1 <= header.orientation <= 8


# ---------------------------------------------------------------- regressions
# Each test failed before its fix; the input is the smallest that showed the bug.


def test_probe_refuses_a_stream_without_a_decoder(tmp_path):
    """An MP4 whose sample entry names no known codec ('avc1' -> 'zzzz'): PyAV gives the
    stream no codec context, and probe / iter_frames / verify raised AttributeError
    ('NoneType' object has no attribute 'width') instead of MediaError."""
    from likeness.media import iter_frames, probe

    src = fuzzing.write_video(tmp_path / "src.mp4", frames=3)
    path = tmp_path / "unknown-codec.mp4"
    path.write_bytes(src.read_bytes().replace(b"avc1", b"zzzz"))
    for read in (probe, lambda p: list(iter_frames(p))):
        with pytest.raises(MediaError) as err:
            read(path)
        assert "unknown-codec.mp4" in one_line(err.value)


def test_odd_sized_yuv420p_video_decodes(tmp_path):
    """A valid 33x17 VP8 WebM (yuv420p with odd sides): the fast I420 path asked PyAV
    for yuv420p planes, which it refuses for odd sizes (AssertionError 'width has to be
    even for this format'), so iter_frames failed on a good file."""
    from likeness.media import iter_frames

    path = fuzzing.write_video(tmp_path / "odd.webm", codec="libvpx", size=(33, 17), frames=3)
    frames = [f.image for f in iter_frames(path)]
    assert [f.shape for f in frames] == [(17, 33, 3)] * 3


def _pack_with(tmp_path: Path, pack_seed: Path, change) -> Path:
    import shutil

    root = tmp_path / "pack"
    shutil.copytree(pack_seed, root)
    change(root)
    return root


def _read_all(root: Path) -> None:
    from likeness.datasets.pack_reader import Pack

    pack = Pack.open(root)
    for item in pack.items:
        pack.frames(item)
        pack.arrays(item)


def _truncate_npz(root: Path) -> None:
    path = root / "clips/c1.npz"
    path.write_bytes(path.read_bytes()[:100])


def _corrupt_member(root: Path) -> None:
    path = root / "photos/p1.npz"
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.infolist()[0]
    at = info.header_offset  # local header: name and extra lengths at 26 and 28
    start = at + 30 + int.from_bytes(data[at + 26 : at + 28], "little")
    start += int.from_bytes(data[at + 28 : at + 30], "little")
    middle = start + info.compress_size // 2  # inside the first member's deflate stream
    data[middle : middle + 4] = b"\xff" * 4
    path.write_bytes(bytes(data))


def _huge_npy_header(root: Path) -> None:
    fuzzing.npy_header(root / "clips/c1.npz", _FixedChoice((10**9, 478, 3), "<f8"))


class _FixedChoice(random.Random):
    """A Random whose choice() returns given values in turn (first call: the member)."""

    def __init__(self, *values) -> None:
        super().__init__(0)
        self.values = ["landmarks.npy", *values]

    def choice(self, seq):
        return self.values.pop(0)


@pytest.mark.parametrize(
    "change",
    [_truncate_npz, _corrupt_member, _huge_npy_header],
    ids=["truncated-npz", "corrupt-deflate", "huge-npy-shape"],
)
def test_damaged_pack_arrays_are_input_errors(change, pack_seed, tmp_path):
    """A pack's .npz cut short (zipfile.BadZipFile), with a corrupt deflate stream
    (zlib.error or BadZipFile 'Bad CRC-32') or whose .npy header claims 10^9 x 478 x 3
    float64 (MemoryError: numpy allocated before reading): all escaped Pack.arrays."""
    root = _pack_with(tmp_path, pack_seed, change)
    with pytest.raises(InputError) as err:
        _read_all(root)
    assert "pack" in one_line(err.value)


@pytest.mark.parametrize("size", [1, 2**40])
def test_pack_frames_with_a_wrong_crop_size_are_input_errors(size, pack_seed, tmp_path):
    """manifest.json's crop size not matching its clips: Pack.frames raised ValueError
    (broadcast (64,64,3) into (1,1,3), or 'array is too big' for 2^40)."""

    def change(root: Path) -> None:
        manifest = json.loads((root / "manifest.json").read_text())
        manifest["crop"]["size"] = size
        (root / "manifest.json").write_text(json.dumps(manifest))

    root = _pack_with(tmp_path, pack_seed, change)
    with pytest.raises(InputError) as err:
        _read_all(root)
    assert "crop size" in one_line(err.value)


def test_detector_config_with_a_wrongly_typed_size_is_input_error():
    """detector config.json with "input_size": "160" (or a list): from_dict compared it
    with ints and raised TypeError."""
    from likeness.detector.config import DetectorConfig

    for bad in ("160", [160], None):
        with pytest.raises(InputError) as err:
            DetectorConfig.from_dict({**_shipped("detector/config.json"), "input_size": bad})
        assert "input_size" in one_line(err.value)


def test_calibration_with_a_non_object_pooling_is_model_error():
    """calibration.json with "pooling": 0.5: PoolingConfig.from_dict called .get on a
    float and raised AttributeError instead of ModelError."""
    from likeness.detector.model import Decision

    with pytest.raises(ModelError) as err:
        Decision.from_dict({**_shipped("detector/calibration.json"), "pooling": 0.5})
    one_line(err.value)


@pytest.mark.parametrize("record", [{"sha256": ["x"], "status": "ok"}, {"path": ["a"]}])
def test_scan_resume_refuses_records_with_odd_fields(record, tmp_path):
    """`likeness scan --resume` with a JSONL line whose sha256 or path is a list: the
    runner hashed them and died with 'internal error: TypeError: unhashable type'."""
    from likeness.pipelines.scan import SCHEMA
    from likeness.pipelines.scan_runner import read_jsonl

    path = tmp_path / "scan.jsonl"
    path.write_text(json.dumps({"schema": SCHEMA, "path": "a.mp4", **record}) + "\n")
    with pytest.raises(InputError) as err:
        read_jsonl(path)
    assert "line 1" in one_line(err.value)


def test_pack_photo_with_a_huge_png_header_is_input_error(pack_seed, tmp_path):
    """A pack photo whose PNG IHDR claims 65535x20000: cv2.imread raised cv2.error
    ('pixels <= CV_IO_MAX_IMAGE_PIXELS') out of Pack.frames (found by `make fuzz`,
    seed 1, case pack-1-268)."""
    from tests import samples

    root = _pack_with(
        tmp_path, pack_seed, lambda r: samples.huge_png_header(r / "photos/p1.png", 65535, 20000)
    )
    with pytest.raises(InputError) as err:
        _read_all(root)
    assert "p1.png" in one_line(err.value)


def test_pack_arrays_with_an_unbalanced_npy_header_are_input_error(pack_seed, tmp_path):
    """An .npz member whose .npy header text has an unclosed bracket (4 flipped bits in
    `make fuzz`, seed 1, case pack-1-656): numpy's header parser tokenizes it and raised
    tokenize.TokenError, which is neither OSError nor ValueError."""

    def change(root: Path) -> None:
        path = root / "clips/c1.npz"
        with zipfile.ZipFile(path) as zf:
            members = {n: zf.read(n) for n in zf.namelist()}
        text = "{'descr': '<f2', 'fortran_order': False, 'shape': ((6, 55, 3), }"
        text += " " * (-(len(text) + 11) % 64) + "\n"
        body = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()
        members["landmarks.npy"] = body + b"\0" * 64
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)

    root = _pack_with(tmp_path, pack_seed, change)
    with pytest.raises(InputError) as err:
        _read_all(root)
    assert "c1.npz" in one_line(err.value)


def test_pack_arrays_in_an_unsupported_zip_variant_are_input_error(pack_seed, tmp_path):
    """An .npz whose central directory flags a member as "compressed patched data" (a
    2-byte overwrite in `make fuzz`, seed 1, case pack-1-1504): zipfile raised
    NotImplementedError out of Pack.arrays."""

    def change(root: Path) -> None:
        path = root / "photos/p1.npz"
        data = bytearray(path.read_bytes())
        at = data.index(b"PK\x01\x02")  # first central directory entry; flags at +8
        data[at + 8] |= 0x20
        path.write_bytes(bytes(data))

    root = _pack_with(tmp_path, pack_seed, change)
    with pytest.raises(InputError) as err:
        _read_all(root)
    assert "p1.npz" in one_line(err.value)
