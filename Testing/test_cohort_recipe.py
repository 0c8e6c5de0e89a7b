"""The NodMAISI recipe: Algorithm 1 (``augment --method paper``) stops after N = 50 erosion steps, as the paper
states, and ``cohort recipe nodmaisi`` plans every source label map's nodules shrunk that way, then a twin each."""
from __future__ import annotations

import json

import numpy as np
from scipy import ndimage

from nodsynth.augment import resize_nodule
from nodsynth.labels import NODULE
from nodsynth.volume import Volume

RADIUS = 66


def test_the_paper_method_stops_after_50_erosion_steps():
    size = 2 * RADIUS + 5
    axis = np.arange(size) - size // 2
    ball = (axis[:, None, None] ** 2 + axis[None, :, None] ** 2 + axis[None, None, :] ** 2) <= RADIUS ** 2
    labels = np.where(ball, NODULE, 28).astype(np.uint8)
    result = resize_nodule(Volume(labels, np.ones(3), np.zeros(3)), "all", 1.0, method="paper")
    six = ndimage.generate_binary_structure(3, 1)
    after_50 = int(ndimage.binary_erosion(ball, six, iterations=50).sum())
    assert int(ball.sum()) * 0.01 < after_50  # reaching 1 % would take more than 50 steps
    assert result.nodules[0].voxels_after == after_50


def test_the_recipe_plans_a_paper_shrink_of_every_map_then_a_twin_of_each(tmp_path, monkeypatch):
    from cohort_cases import write_sources
    from nodsynth.batch import run_manifest
    from nodsynth.cli.main import main
    from nodsynth.volume import read_volume

    sources = write_sources(tmp_path, seeds=(0, 1))
    maps = sorted((sources / "maps").iterdir())
    qc = tmp_path / "stats.json"
    qc.write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert main(["cohort", "recipe", "--labelmaps", *[str(m.relative_to(tmp_path)) for m in maps], "--percent", "50",
                 "--qc-stats", "stats.json", "--max-tries", "3", "--out", "recipe"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "recipe" / "manifest.jsonl").read_text().splitlines()]
    augments, twins = rows[:2], rows[2:]
    assert [r["op"] for r in rows] == ["augment", "augment", "twin", "twin"]
    assert all(r["params"] == {"percent": 50, "method": "paper"} for r in augments)
    assert all(t["params"] == {"engine": "nodmaisi", "max_tries": 3} and t["inputs"]["qc_stats"] == "../stats.json"
               and t["inputs"]["labelmap"] == a["outputs"]["labelmap"] for a, t in zip(augments, twins))
    subset = tmp_path / "recipe" / "augments.jsonl"
    subset.write_text("".join(json.dumps(r) + "\n" for r in augments))
    assert run_manifest(subset, executor="inline").ok
    for source, row in zip(maps, augments):
        before = int((read_volume(source).array == NODULE).sum())
        after = int((read_volume(tmp_path / "recipe" / row["outputs"]["labelmap"]).array == NODULE).sum())
        assert 0 < after < before
