"""``python -m face_nerf batch``: many photos, each one's outputs, a row per photo and a report."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq

from face_nerf.__main__ import main
from tests.conftest import EXAMPLES


def test_a_folder_of_photos_gives_each_ones_outputs_a_row_and_a_report(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(EXAMPLES["grace_hopper"], photos / "grace.jpg")
    (photos / "notes.jpg").write_text("not a photo")
    out = tmp_path / "out"
    assert main(["batch", str(photos), "--out", str(out), "--frames", "8", "--size", "64", "--workers", "0", "--quiet",
                 "--i-have-consent",
                 "--prompt", "blue eyes"]) == 0
    printed = capsys.readouterr().out
    assert "2 inputs: 2 processed now (1 failed)" in printed and "notes.jpg" in printed
    rows = {json.loads(line)["path"].rsplit("/", 1)[1]: json.loads(line)
            for line in (out / "reconstructions.jsonl").read_text().splitlines()}
    assert "not an image" in rows["notes.jpg"]["error"]
    grace = rows["grace.jpg"]
    assert grace["error"] is None and grace["faces_found"] == 1 and "irises" in grace["edit"]
    assert grace["mesh_faces"] > 1000 and grace["timings_s"]["turntable"] > 0
    folder = out / grace["output"]
    assert {p.name for p in folder.iterdir()} >= {"turntable.mp4", "views.png", "mesh.glb", "report.json",
                                                  "field.safetensors", "input_view.png"}
    assert json.loads((folder / "report.json").read_text())["config"]["frames"] == 8
    assert [r["path"] for r in pq.read_table(out / "reconstructions.parquet").to_pylist()] == \
        [json.loads(line)["path"] for line in (out / "reconstructions.jsonl").read_text().splitlines()]
    page = (out / "report.html").read_text()
    assert f"{grace['output']}/views.png" in page and "not an image" in page


def test_a_prompt_that_cannot_be_read_fails_before_any_photo(tmp_path, capsys):
    assert main(["batch", str(EXAMPLES["astronaut"]), "--out", str(tmp_path / "out"), "--prompt", "x" * 400]) == 2
    assert "error:" in capsys.readouterr().err and not (tmp_path / "out").exists()


def _blas_threads_after_setup() -> tuple[int, list[int]]:
    """In a fresh process: numpy loaded first (as unpickling a task does), then ``worker_setup(1, [core])``."""
    import os

    import numpy  # noqa: F401 - loads OpenBLAS, which starts its threads now
    from threadpoolctl import threadpool_info

    from face_nerf.batch_workers import worker_setup

    core = min(os.sched_getaffinity(0))
    worker_setup(1, [core])
    after = max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")
    return after, sorted(os.sched_getaffinity(0))


def test_a_worker_held_to_one_thread_holds_numpys_blas_to_one_thread_too():
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        blas_threads, cores = pool.submit(_blas_threads_after_setup).result()
    # A BLAS thread per core beside the worker's own, on its one core, made the head fit 10x slower.
    assert blas_threads == 1
    assert cores == [min(os.sched_getaffinity(0))]


def test_workers_get_cores_of_their_own_when_the_cores_go_round():
    import os

    from face_nerf.batch_workers import core_groups

    cores = sorted(os.sched_getaffinity(0))
    assert core_groups(1, 1) == [cores[:1]]
    assert core_groups(1, len(cores)) == [cores]
    assert core_groups(len(cores), 1) == [[c] for c in cores]
    assert core_groups(len(cores) + 1, 1) == [None] * (len(cores) + 1)  # more workers than cores: the OS shares
    assert core_groups(2, len(cores)) == [None, None]
