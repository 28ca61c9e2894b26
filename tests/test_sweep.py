"""hotmem sweep (issue #12): the same spec on local processes and on a Dask LocalCluster gives
the same table; each row is what a single `hotmem compare` of the configuration reports;
resume, failures as rows, timeouts, bad input."""
from __future__ import annotations

import json
import os

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

import hotmem
from hotmem.cli import main
from hotmem.sweep.engines import Engine, SerialEngine
from hotmem.sweep.point import run_batch, run_point
from hotmem.sweep.spec import AXES, parse

SMALL = {"grid": {"kernel": ["6.1", "6.11"], "memmap_on_memory": ["0", "1"],
                  "dimms": ["128M,128M", "1G"], "nodes": ["0", "0,1"],
                  "boot_memory": ["1G,1G"]},
         "points": [{"dimms": "64G", "kernel": "6.1"},                  # ENOMEM at the add
                    {"kernel": "6.13"},                                 # not modelled: boot
                    {"kernel": "6.11", "memmap_on_memory": "force", "dimms": "384M"}]}


def _cfg(**kw):
    cfg = dict(AXES)
    cfg.update(kw)
    return parse({"points": [cfg]}).points[0]


@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def local_table():
    return hotmem.sweep(SMALL, workers=2)


def _same(a, b):
    pd.testing.assert_frame_equal(a.drop(columns="time_s"), b.drop(columns="time_s"))


def test_local_and_dask_tables_are_identical(local_table, cluster_client):
    dask_table = hotmem.sweep(SMALL, client=cluster_client)
    assert len(local_table) == 2 * 2 * 2 * 2 + 3
    _same(local_table, dask_table)
    _same(local_table, hotmem.sweep(SMALL, workers=0))          # and in this process


def test_failures_are_rows(local_table):
    by = local_table.set_index("dimms")
    big = local_table[local_table.dimms == "64G"].iloc[0]
    assert (big.status, big.errno, big.failed_step) == ("refused", "ENOMEM", "add")
    unknown = local_table[local_table.kernel == "6.13"].iloc[0]
    assert (unknown.status, unknown.errno, unknown.failed_step) == ("refused", "EINVAL", "boot")
    assert "not modelled" in unknown.error
    assert (local_table.status == "ok").sum() == len(local_table) - 2
    assert by is not None


def _rle_decode(s):
    out = []
    for part in s.split(","):
        v, n = part.split("x")
        out += [int(v)] * int(n)
    return out


def _compare_args(row):
    args = ["compare", "--json", "--no-fragment", "--costs-for", "128M",
            "--kernel", row.kernel, "--dimms", row.dimms, "--nodes", row.nodes,
            "--boot-memory", row.boot_memory]
    if row.memmap_on_memory != "0":
        args += ["--memmap-on-memory", row.memmap_on_memory]
    return args


def test_rows_agree_with_single_compare_runs(local_table, capsys):
    """Every row (ok or refused) against `hotmem compare` of the same configuration: the side
    with memmap_on_memory (altmap) or without (regular) of the compare report."""
    checked = 0
    for row in local_table.itertuples():
        if row.kernel == "6.13":
            continue
        capsys.readouterr()
        rc = main(_compare_args(row))
        out, err = capsys.readouterr()
        if row.status != "ok":
            assert rc == 1 and err.strip() == f"hotmem: {row.errno}: {row.error}"
            checked += 1
            continue
        assert rc == 0
        side = json.loads(out)["regular" if row.memmap_on_memory == "0" else "altmap"]
        r = row._asdict()
        for source, nodes in side["memmap"].items():
            for nid, pages in nodes.items():
                assert r[f"memmap_{source}_node{nid}"] == pages
        for kind, levels in side["page_tables"].items():
            for level, n in levels.items():
                assert r[f"pt_{kind.replace(' ', '_')}_{level}"] == n
        for step in ("add", "online", "remove"):
            assert r[f"{step}_memtotal_kb"] == side[step]["memtotal_kb"]
            assert r[f"{step}_memfree_kb"] == side[step]["nr_free_pages"] * 4
        assert _rle_decode(row.nr_vmemmap_pages) == side["vmemmap_pages_per_block"]
        t = side["totals"]
        for col in ("memmap_pages", "page_table_pages", "taken_from_existing",
                    "off_node_memmap", "memmap_base_pages"):
            assert r[col] == t[col]
        assert row.managed_added == side["managed_added"]
        pad = t["padding_waste"]
        assert (pd.isna(row.force_padding) and pad is None) or row.force_padding == pad
        checked += 1
    assert checked == len(local_table) - 1


def test_hand_computed_row(local_table):
    """One 128 MiB block on x86_64 4K: 32768 pages x 64 B = 2 MiB of memmap = 512 pages per
    block, from the block itself with memmap_on_memory."""
    row = local_table[(local_table.kernel == "6.1") & (local_table.memmap_on_memory == "1")
                      & (local_table.dimms == "128M,128M") & (local_table.nodes == "0")].iloc[0]
    assert row.nr_vmemmap_pages == "512x2"
    assert row.memmap_altmap_node0 == 1024 and row.memmap_pages == 1024
    assert row.online_memtotal_kb == 2 * (128 << 10) - 2 * 2048


@pytest.mark.parametrize("dimms", ["1G,128M", None])
def test_a_point_run_twice_in_one_worker_gives_the_same_row(dimms):
    """The second run reuses this worker's boot-key cache (the probed block size for the
    default DIMMs): the same row as the fresh first run."""
    from hotmem.sweep import point
    point._BLOCK_SIZES.clear()
    cfg = _cfg(kernel="6.11", dimms=dimms, nodes="0,1", boot_memory="1G,1G")
    (_, _, a), (_, _, b) = run_batch([(0, "k", cfg), (1, "k", cfg)], "grid", {}, None)
    assert len(point._BLOCK_SIZES) == (dimms is None)
    a.pop("time_s"), b.pop("time_s")
    assert a == b and a["status"] == "ok"


class _Counting(Engine):
    def __init__(self, fail_after=None):
        self.points, self.fail_after = 0, fail_after

    def map(self, fn, batches, *args):
        for i, b in enumerate(batches):
            if self.fail_after is not None and i >= self.fail_after:
                raise KeyboardInterrupt
            self.points += len(b)
            yield fn(b, *args)


@pytest.mark.parametrize("ext", ["parquet", "csv"])
def test_resume_skips_done_points(tmp_path, ext):
    out = str(tmp_path / f"t.{ext}")
    spec = {"grid": {"kernel": ["6.1", "6.11"], "dimms": ["128M", "256M"]}}
    first = hotmem.sweep(spec, output=out, engine=_Counting())
    assert os.path.exists(out) and not os.path.exists(out + ".partial.jsonl")
    spec["grid"]["dimms"].append("512M")
    eng = _Counting()
    second = hotmem.sweep(spec, output=out, engine=eng)
    assert eng.points == 2
    again = hotmem.sweep(spec, output=out, engine=_Counting(fail_after=0))
    assert len(second) == len(again) == 6
    cols = ["kernel", "dimms", "status", "memmap_pages", "online_memtotal_kb"]
    pd.testing.assert_frame_equal(first[cols], second[second.dimms != "512M"][cols]
                                  .reset_index(drop=True), check_dtype=False)


def test_an_interrupted_sweep_leaves_no_complete_file_and_resumes(tmp_path):
    out = str(tmp_path / "t.parquet")
    spec = {"grid": {"dimms": ["128M", "256M", "384M"]}, "sweep": {"batch": 1}}
    with pytest.raises(KeyboardInterrupt):
        hotmem.sweep(spec, output=out, engine=_Counting(fail_after=2))
    assert not os.path.exists(out)
    assert len(open(out + ".partial.jsonl").readlines()) == 2
    eng = _Counting()
    df = hotmem.sweep(spec, output=out, engine=eng)
    assert eng.points == 1 and list(df.status) == ["ok"] * 3
    _same(df, hotmem.sweep(spec, workers=0))


def test_a_point_past_its_timeout_is_a_row():
    row = run_point(_cfg(dimms="16G", kernel="6.11"), timeout=0.001)
    assert row["status"] == "timeout" and row["errno"] == "ETIME"


def test_search_bisects_the_largest_dimm():
    """6.1 without memmap_on_memory, 1 GiB boot: the memmap of the DIMM (1/64 of it) comes from
    boot memory; 16 GiB needs 256 MiB and goes, 64 GiB (1 GiB of memmap) cannot."""
    df = hotmem.sweep({"sweep": {"mode": "search"},
                       "grid": {"memmap_on_memory": ["0"], "kernel": ["6.1"]},
                       "search": {"min": "1G", "max": "64G", "step": "1G"}}, workers=0)
    row = df.iloc[0]
    assert 16 << 30 <= row.largest_ok < 64 << 30
    assert row.smallest_refused == row.largest_ok + (1 << 30)
    assert row.errno == "ENOMEM"


def test_search_on_debian_6_12_and_the_config_axis():
    """The Kata question on 6.12 (Debian 13's build, which onlines at add: the plan boots it
    with memhp_default_state=offline and onlines each DIMM movable itself), without memmap on
    memory: as on 6.1 the DIMM's memmap (1/64 of it) comes from the 1 GiB of boot memory, so
    16 GiB goes and 64 GiB cannot. defconfig (offline at add) gives the same row."""
    df = hotmem.sweep({"sweep": {"mode": "search"},
                       "grid": {"memmap_on_memory": ["0"], "kernel": ["6.12"],
                                "config": ["debian", "defconfig"]},
                       "search": {"min": "1G", "max": "64G", "step": "1G"}}, workers=0)
    assert list(df.config) == ["debian", "defconfig"]
    for row in df.itertuples():
        assert 16 << 30 <= row.largest_ok < 64 << 30
        assert row.smallest_refused == row.largest_ok + (1 << 30) and row.errno == "ENOMEM"
    assert df.iloc[0].largest_ok == df.iloc[1].largest_ok


def test_kata_spec_has_6_12_and_a_bad_config_is_a_row():
    from pathlib import Path
    spec = parse(Path(__file__).parents[1] / "scenarios" / "sweeps" / "kata.toml")
    assert {p["kernel"] for p in spec.points} == {"6.1", "6.8", "6.11", "6.12"}
    row = run_point(_cfg(kernel="6.11", config="debian"))          # Debian's 6.11: not read
    assert (row["status"], row["errno"], row["failed_step"]) == ("refused", "EINVAL", "boot")


@pytest.mark.parametrize("text,errname,needle", [
    ("[grid]\nkernal = ['6.1']\n", "EINVAL", "unknown key 'kernal'"),
    ("[grid]\nkernel = []\n", "EINVAL", "empty"),
    ("[grid]\nboot_memory = [" + ",".join(f"'{i + 1}G'" for i in range(4000)) + "]\n"
     "dimms = [" + ",".join(f"'{128 * (i + 1)}M'" for i in range(2600)) + "]\n",
     "E2BIG", "--yes"),
    ("[grid\n", "EINVAL", "sweep spec"),
])
def test_bad_input_is_one_line(tmp_path, capsys, text, errname, needle):
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    assert main(["sweep", str(spec), "-o", str(tmp_path / "o.parquet")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"hotmem: {errname}: ") and needle in err
    assert "Traceback" not in err and os.listdir(tmp_path) == ["bad.toml"]


def test_a_scheduler_that_does_not_answer(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text("[grid]\nkernel = ['6.1']\n")
    assert main(["sweep", str(spec), "-o", str(tmp_path / "o.parquet"), "--scheduler",
                 "tcp://127.0.0.1:9", "--connect-timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hotmem: ECONNREFUSED: scheduler")
    assert os.listdir(tmp_path) == ["s.toml"]


def test_cli_writes_the_table(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text("[grid]\nkernel = ['6.1', '6.6']\n")
    out = tmp_path / "o.csv"
    plot = ["--plot", str(tmp_path / "o.png")] if _has_matplotlib() else []
    assert main(["sweep", str(spec), "-o", str(out), "-j", "1"] + plot) == 0
    assert capsys.readouterr().out == "hotmem sweep: 2 points: 2 ok\n"
    assert list(pd.read_csv(out).kernel.astype(str)) == ["6.1", "6.6"]
    assert not plot or (tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG"


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False
