"""Calibration data sources: npz, npy, directories of npy, QNN input lists; checks; batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantspec.errors import QuantspecError
from quantspec.runtime.data import batches, count_batches, open_data
from quantspec.runtime.execute import InputSpec

F = 1  # onnx TensorProto.FLOAT
I64 = 7  # onnx TensorProto.INT64


def one(shape: list[int | None] | None = None, name: str = "x", elem: int = F) -> InputSpec:
    return InputSpec(name, elem, [1, 3, 4] if shape is None else shape)


def rng_data(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def codes(exc: pytest.ExceptionInfo[QuantspecError]) -> str:
    return exc.value.code


# -- npz -------------------------------------------------------------------------------------


def test_npz_with_a_sample_axis_and_with_the_batch_axis(tmp_path: Path) -> None:
    a = rng_data(5, 1, 3, 4)
    np.savez(tmp_path / "a.npz", x=a)
    src = open_data(tmp_path / "a.npz", [one()])
    assert len(src) == 5 and src.describe()["format"] == "npz"
    got = list(src)
    assert all(s["x"].shape == (1, 3, 4) for s in got)
    np.testing.assert_array_equal(got[3]["x"], a[3])
    # samples along the batch axis of a [1, 3, 4] input
    np.savez(tmp_path / "b.npz", x=a[:, 0])
    got_b = list(open_data(tmp_path / "b.npz", [one()]))
    np.testing.assert_array_equal(got_b[3]["x"], a[3])


def test_npz_multi_input_and_count_mismatch(tmp_path: Path) -> None:
    specs = [one(name="a"), one([2], name="b")]
    np.savez(tmp_path / "ok.npz", a=rng_data(3, 1, 3, 4), b=rng_data(3, 2))
    samples = list(open_data(tmp_path / "ok.npz", specs))
    assert [sorted(s) for s in samples] == [["a", "b"]] * 3
    np.savez(tmp_path / "bad.npz", a=rng_data(3, 1, 3, 4), b=rng_data(2, 2))
    with pytest.raises(QuantspecError) as e:
        open_data(tmp_path / "bad.npz", specs)
    assert codes(e) == "E433" and "'a': 3" in str(e.value)


@pytest.mark.parametrize(("arrays", "code", "needle"), [
    ({"y": rng_data(2, 1, 3, 4)}, "E432", "'x'"),
    ({"x": rng_data(2, 1, 3, 4), "xx": rng_data(2)}, "E432", "'xx'"),
    ({"x": rng_data(2, 1, 3, 5)}, "E433", "[2, 1, 3, 5]"),
    ({"x": rng_data(0, 1, 3, 4)}, "E436", "no samples"),
])
def test_npz_errors(tmp_path: Path, arrays: dict[str, np.ndarray], code: str,
                    needle: str) -> None:
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(QuantspecError) as e:
        open_data(tmp_path / "d.npz", [one()])
    assert codes(e) == code and needle in str(e.value)
    assert e.value.diagnostic.span is not None and "d.npz" in e.value.diagnostic.span.file


def test_pickled_npz_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "p.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(QuantspecError) as e:
        open_data(tmp_path / "p.npz", [one([1])])
    assert codes(e) == "E431"


def test_non_finite_values_name_the_sample(tmp_path: Path) -> None:
    a = rng_data(4, 1, 3, 4)
    a[2, 0, 1, 3] = np.nan
    np.savez(tmp_path / "n.npz", x=a)
    src = open_data(tmp_path / "n.npz", [one()])
    first = next(iter(src))
    assert first["x"].shape == (1, 3, 4)
    with pytest.raises(QuantspecError) as e:
        list(src)
    assert codes(e) == "E435"
    assert "sample 2 of input 'x'" in str(e.value) and "[0, 1, 3]" in str(e.value)


def test_dtype_casts_only_when_safe(tmp_path: Path) -> None:
    np.savez(tmp_path / "f64.npz", x=rng_data(2, 1, 3, 4).astype(np.float64) / 3)
    s = next(iter(open_data(tmp_path / "f64.npz", [one()])))
    assert s["x"].dtype == np.float32
    np.savez(tmp_path / "big.npz", x=np.full([2, 1, 3, 4], 1e300))
    with pytest.raises(QuantspecError) as e:
        list(open_data(tmp_path / "big.npz", [one()]))
    assert codes(e) == "E434" and "range" in str(e.value)
    np.savez(tmp_path / "int.npz", x=np.ones([2, 1, 3, 4], np.int32))
    with pytest.raises(QuantspecError) as e:
        list(open_data(tmp_path / "int.npz", [one()]))
    assert codes(e) == "E434"
    ids = InputSpec("ids", I64, [1, 4])
    np.savez(tmp_path / "ids.npz", ids=np.arange(8, dtype=np.int32).reshape(2, 1, 4))
    got = list(open_data(tmp_path / "ids.npz", [ids]))
    assert got[1]["ids"].dtype == np.int64 and got[1]["ids"].tolist() == [[4, 5, 6, 7]]


# -- npy -------------------------------------------------------------------------------------


def test_single_npy_file(tmp_path: Path) -> None:
    a = rng_data(3, 1, 3, 4)
    np.save(tmp_path / "x.npy", a)
    got = list(open_data(tmp_path / "x.npy", [one()]))
    np.testing.assert_array_equal(got[2]["x"], a[2])
    with pytest.raises(QuantspecError) as e:
        open_data(tmp_path / "x.npy", [one(name="a"), one(name="b")])
    assert codes(e) == "E432"


def test_npy_directory_per_input(tmp_path: Path) -> None:
    a, b = rng_data(3, 1, 3, 4), rng_data(3, 2, seed=1)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    src = open_data(tmp_path, [one(name="a"), one([2], name="b")])
    assert src.describe()["layout"] == "per-input" and len(src) == 3
    got = list(src)
    np.testing.assert_array_equal(got[1]["b"], b[1])


def test_npy_directory_per_sample_dirs_and_files(tmp_path: Path) -> None:
    root = tmp_path / "dirs"
    for i in range(3):
        (root / f"s{i}").mkdir(parents=True)
        np.save(root / f"s{i}" / "x.npy", np.full([3, 4], i, np.float32))  # batch axis omitted
    got = list(open_data(root, [one()]))
    assert [float(s["x"][0, 0, 0]) for s in got] == [0.0, 1.0, 2.0]
    assert got[0]["x"].shape == (1, 3, 4)
    files = tmp_path / "files"
    files.mkdir()
    for i in (2, 0, 1):
        np.save(files / f"img_{i}.npy", np.full([1, 3, 4], i, np.float32))
    src = open_data(files, [one()])
    assert src.describe()["layout"] == "per-sample-file"
    assert [float(s["x"].max()) for s in src] == [0.0, 1.0, 2.0]
    (root / "s1" / "x.npy").unlink()
    with pytest.raises(QuantspecError) as e:
        open_data(root, [one()])
    assert codes(e) == "E432"


def test_empty_or_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(QuantspecError) as e:
        open_data(tmp_path, [one()])
    assert codes(e) == "E436"
    with pytest.raises(QuantspecError) as e:
        open_data(tmp_path / "nope", [one()])
    assert codes(e) == "E430"


# -- QNN input_list --------------------------------------------------------------------------


def write_raw(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr.astype(np.float32).tofile(path)


def test_input_list_single_input(tmp_path: Path) -> None:
    a = rng_data(2, 1, 3, 4)
    write_raw(tmp_path / "raw" / "s0.raw", a[0])
    write_raw(tmp_path / "raw" / "s1.raw", a[1])
    lst = tmp_path / "input_list.txt"
    lst.write_text("#prob_out\n%prob\nraw/s0.raw\n\nraw/s1.raw\n")
    src = open_data(lst, [one()])
    assert len(src) == 2 and src.output_names == ["prob_out", "prob"]
    got = list(src)
    np.testing.assert_array_equal(got[1]["x"], a[1])


def test_input_list_multi_input_and_symbolic_dim(tmp_path: Path) -> None:
    specs = [one(name="left"), one([None, 2], name="right")]
    lines = []
    for i in range(3):
        write_raw(tmp_path / f"l{i}.raw", rng_data(1, 3, 4, seed=i))
        write_raw(tmp_path / f"r{i}.raw", rng_data(3, 2, seed=10 + i))
        lines.append(f"right:=r{i}.raw left:=l{i}.raw")
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(lines) + "\n")
    got = list(open_data(lst, specs))
    assert got[2]["right"].shape == (3, 2)
    np.testing.assert_array_equal(got[2]["left"], rng_data(1, 3, 4, seed=2))
    # positional paths in graph-input order
    lst.write_text("l0.raw r0.raw\n")
    (only,) = list(open_data(lst, specs))
    np.testing.assert_array_equal(only["right"], rng_data(3, 2, seed=10))


@pytest.mark.parametrize(("text", "code", "where", "needle"), [
    ("left:=l0.raw rigt:=r0.raw\n", "E438", ":1:14", "'rigt'"),
    ("left:=l0.raw right:=missing.raw\n", "E438", ":1:14", "missing.raw"),
    ("l0.raw\n", "E438", ":1:1", "1 file(s)"),
    ("left:=l0.raw r0.raw\n", "E438", ":1:14", "mixes"),
    ("left:=l0.raw\n", "E438", ":1:1", "'right'"),
    ("# only outputs\n", "E436", "", "no samples"),
])
def test_input_list_errors_point_at_the_line(tmp_path: Path, text: str, code: str, where: str,
                                            needle: str) -> None:
    write_raw(tmp_path / "l0.raw", rng_data(1, 3, 4))
    write_raw(tmp_path / "r0.raw", rng_data(2))
    lst = tmp_path / "list.txt"
    lst.write_text(text)
    with pytest.raises(QuantspecError) as e:
        open_data(lst, [one(name="left"), one([2], name="right")])
    assert codes(e) == code and needle in str(e.value)
    assert where in str(e.value.diagnostic.span)


def test_input_list_raw_size_mismatch(tmp_path: Path) -> None:
    write_raw(tmp_path / "s.raw", rng_data(5))
    (tmp_path / "l.txt").write_text("s.raw\n")
    with pytest.raises(QuantspecError) as e:
        list(open_data(tmp_path / "l.txt", [one()]))
    assert codes(e) == "E433" and "5 float32 values" in str(e.value)


# -- batching --------------------------------------------------------------------------------


def test_batches_join_samples_on_a_dynamic_axis(tmp_path: Path) -> None:
    a = rng_data(5, 1, 3)
    np.savez(tmp_path / "d.npz", x=a)
    src = open_data(tmp_path / "d.npz", [one([None, 3])])
    got = list(batches(src, 2))
    assert [b["x"].shape[0] for b in got] == [2, 2, 1] == [2, 2, 1][:count_batches(src, 2)]
    np.testing.assert_array_equal(np.concatenate([b["x"] for b in got]), a[:, 0])
    fixed = open_data(tmp_path / "d.npz", [one([1, 3])])
    assert len(list(batches(fixed, 1))) == 5
    with pytest.raises(QuantspecError) as e:
        list(batches(fixed, 2))
    assert codes(e) == "E437" and "'x'" in str(e.value)
    with pytest.raises(QuantspecError) as e:
        list(batches(src, 0))
    assert codes(e) == "E437"
