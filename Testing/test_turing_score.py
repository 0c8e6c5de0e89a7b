"""``nodsynth turing score``: HR-LDM Table 2 reproduced from answer sheets, the statistics checked
against independent computations, bad answer sheets refused with nothing written."""
from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from nodsynth.cli.main import main
from nodsynth.review.agreement import cohen_kappa, fleiss_kappa
from nodsynth.review.stats import roc_auc

PHASES = ("cropped", "full")
TABLE_2 = {  # HR-LDM Table 2: (real->real, real->synthetic, synthetic->real, synthetic->synthetic)
    "cropped": (36, 14, 20, 30),
    "full": (28, 22, 22, 28),
}
PAPER_PERCENT = {  # the figures HR-LDM states, in the order (accuracy, real correct, synthetic correct, fooling)
    "cropped": (66.0, 72.0, 60.0, 40.0),
    "full": (56.0, 56.0, 56.0, 44.0),
}
STATS_KEYS = {"n", "confusion", "accuracy", "real_correct_rate", "synthetic_correct_rate", "fooling_rate",
              "accuracy_ci95", "p_value_vs_chance"}
SUBTYPES = ("solid", "part-solid", "ground-glass")
DIAMETERS = (7.5, 15.0, 25.0)


def write_csv(path: Path, columns, rows) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def make_key(folder: Path, n_per_truth: int = 50) -> list[dict]:
    """A key of n real + n synthetic nodules, each shown in both phases under a different id."""
    rows = []
    for phase in PHASES:
        for truth in ("real", "synthetic"):
            for k in range(n_per_truth):
                rows.append({"case_id": f"{phase[0].upper()}{truth[0].upper()}{k:03d}", "phase": phase, "truth": truth,
                             "source": f"{truth}.csv:{k + 2}", "subtype": SUBTYPES[k % 3],
                             "diameter_mm": DIAMETERS[(k // 3) % 3]})
    write_csv(folder / "key.csv", list(rows[0]), [list(r.values()) for r in rows])
    return rows


def table2_answers(key: list[dict], reader: str = "R1") -> list[list]:
    """A reader whose answers give exactly Table 2's counts per phase."""
    answers = []
    for phase, (rr, rs, sr, ss) in TABLE_2.items():
        real = [r for r in key if r["phase"] == phase and r["truth"] == "real"]
        synthetic = [r for r in key if r["phase"] == phase and r["truth"] == "synthetic"]
        assert len(real) == rr + rs and len(synthetic) == sr + ss
        words = [("real", r) for r in real[:rr]] + [("synthetic", r) for r in real[rr:]] + \
                [("real", r) for r in synthetic[:sr]] + [("synthetic", r) for r in synthetic[sr:]]
        answers += [[reader, phase, r["case_id"], word, 3, 12.5] for word, r in words]
    return answers


ANSWER_COLUMNS = ("reader", "phase", "case_id", "answer", "confidence", "seconds")


@pytest.fixture()
def table2(tmp_path):
    key = make_key(tmp_path)
    sheet = write_csv(tmp_path / "r1.csv", ANSWER_COLUMNS, table2_answers(key))
    out = tmp_path / "scores.json"
    status = main(["turing", "score", "--key", str(tmp_path / "key.csv"), "--answers", str(sheet),
                   "--json", str(out), "--html", str(tmp_path / "scores.html")])
    assert status == 0
    return json.loads(out.read_text()), tmp_path


def exact_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided binomial p at 0.5: outcomes no more likely than k (symmetric: both tails)."""
    tail = sum(math.comb(n, i) for i in range(max(k, n - k), n + 1)) / 2 ** n
    return min(1.0, 2 * tail) if k != n - k else 1.0


def wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    denominator = 1 + z ** 2 / n
    centre = p + z ** 2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z ** 2 / (4 * n ** 2))
    return (centre - spread) / denominator, (centre + spread) / denominator


@pytest.mark.parametrize("phase", PHASES)
def test_table_2_counts_give_every_figure_hrldm_states(table2, phase):
    scores, _ = table2
    pooled = scores["phases"][phase]["pooled"]
    reader = scores["phases"][phase]["readers"]["R1"]
    assert reader == pooled
    rr, rs, sr, ss = TABLE_2[phase]
    assert pooled["n"] == 100
    assert pooled["confusion"] == {"real": {"real": rr, "synthetic": rs}, "synthetic": {"real": sr, "synthetic": ss}}
    figures = [round(100 * pooled[k], 1) for k in ("accuracy", "real_correct_rate", "synthetic_correct_rate",
                                                      "fooling_rate")]
    assert figures == list(PAPER_PERCENT[phase])
    correct = rr + ss
    assert pooled["p_value_vs_chance"] == pytest.approx(exact_two_sided_p(correct, 100), rel=1e-9)
    assert pooled["accuracy_ci95"] == pytest.approx(wilson(correct, 100), abs=1e-12)


def test_table_2_significance_as_the_paper_reads_it(table2):
    scores, _ = table2
    cropped = scores["phases"]["cropped"]["pooled"]
    full = scores["phases"]["full"]["pooled"]
    # 66 % correct is above chance (p < 0.05, lower Wilson bound above 50 %); 56 % is not
    assert cropped["p_value_vs_chance"] < 0.005 and cropped["accuracy_ci95"][0] > 0.5
    assert full["p_value_vs_chance"] > 0.2 and full["accuracy_ci95"][0] < 0.5 < full["accuracy_ci95"][1]


def test_score_json_has_exactly_the_issue_structure(table2):
    scores, _ = table2
    assert set(scores["phases"]) == set(PHASES)
    for phase in PHASES:
        assert set(scores["phases"][phase]) == {"readers", "pooled"}
        for stats in [scores["phases"][phase]["pooled"], *scores["phases"][phase]["readers"].values()]:
            assert set(stats) == STATS_KEYS
            assert set(stats["confusion"]) == {"real", "synthetic"}
            assert all(set(row) == {"real", "synthetic"} for row in stats["confusion"].values())
            assert len(stats["accuracy_ci95"]) == 2
    assert scores["agreement"] == {}  # one reader: no agreement to measure


def test_subtype_and_size_bins_partition_the_answers(table2):
    scores, _ = table2
    for phase in PHASES:
        pooled = scores["phases"][phase]["pooled"]
        for section, names in (("by_subtype", set(SUBTYPES)), ("by_size_bin", {"6-10", "10-20", "20-30"})):
            groups = scores[section][phase]
            assert set(groups) == names
            assert sum(g["n"] for g in groups.values()) == pooled["n"]
            for name in ("real", "synthetic"):
                for answer in ("real", "synthetic"):
                    assert sum(g["confusion"][name][answer] for g in groups.values()) == \
                        pooled["confusion"][name][answer]


def test_subtype_stats_count_the_right_cases(tmp_path):
    key = make_key(tmp_path, 6)
    # the reader is right on every solid nodule and wrong on every other one
    rows = [["R1", r["phase"], r["case_id"], r["truth"] if r["subtype"] == "solid" else
             ("real" if r["truth"] == "synthetic" else "synthetic"), "", ""] for r in key]
    sheet = write_csv(tmp_path / "a.csv", ANSWER_COLUMNS, rows)
    assert main(["turing", "score", "--key", str(tmp_path / "key.csv"), "--answers", str(sheet),
                 "--json", str(tmp_path / "s.json")]) == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    by_subtype = scores["by_subtype"]["cropped"]
    assert by_subtype["solid"]["accuracy"] == 1.0 and by_subtype["solid"]["n"] == 4
    assert by_subtype["part-solid"]["accuracy"] == 0.0 and by_subtype["ground-glass"]["accuracy"] == 0.0
    assert scores["roc_auc"]["cropped"]["pooled"] is None  # no confidences given


def test_html_report_has_the_tables_and_a_bar_plot(table2):
    _, folder = table2
    page = (folder / "scores.html").read_text()
    assert page.count("<svg") == 1 and page.count("<rect") >= 8
    for figure in ("66.0", "72.0", "60.0", "40.0", "56.0", "44.0"):
        assert f">{figure}<" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page


def test_the_score_report_states_the_study_date_readers_and_key_sha256(table2):
    scores, folder = table2
    digest = hashlib.sha256((folder / "key.csv").read_bytes()).hexdigest()
    assert scores["study"]["key_sha256"] == digest and scores["study"]["readers"] == 1
    page = (folder / "scores.html").read_text()
    study = page[page.index('id="study"'):page.index("</table>", page.index('id="study"'))]
    for label, value in (("key SHA-256", digest), ("readers", "1"), ("key file", str(folder / "key.csv")),
                         ("scored (UTC)", scores["study"]["scored_utc"])):
        assert f">{label}</td>" in study and f">{value}</td>" in study, label
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", scores["study"]["scored_utc"])


def _two_reader_sheets(tmp_path, key, rng):
    sheets, answers = [], {}
    for reader in ("A", "B", "C"):
        rows = []
        for r in key:
            word = ("real", "synthetic")[int(rng.integers(2))] if rng.random() < 0.5 else r["truth"]
            rows.append([reader, r["phase"], r["case_id"], word, int(rng.integers(1, 6)), f"{rng.uniform(2, 20):.1f}"])
            answers[(reader, r["phase"], r["case_id"])] = (word, rows[-1][4])
        sheets.append(write_csv(tmp_path / f"{reader}.csv", ANSWER_COLUMNS, rows))
    return sheets, answers


def test_kappa_auc_and_mcnemar_match_independent_implementations(tmp_path):
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    key = make_key(tmp_path, 20)
    sheets, answers = _two_reader_sheets(tmp_path, key, np.random.default_rng(3))
    assert main(["turing", "score", "--key", str(tmp_path / "key.csv"), "--answers", str(sheets[0]), str(sheets[1]),
                 "--json", str(tmp_path / "two.json")]) == 0
    two = json.loads((tmp_path / "two.json").read_text())
    for phase in PHASES:
        cases = [r["case_id"] for r in key if r["phase"] == phase]
        a = [answers[("A", phase, c)][0] for c in cases]
        b = [answers[("B", phase, c)][0] for c in cases]
        assert two["agreement"][phase] == {"kappa": pytest.approx(cohen_kappa_score(a, b), abs=1e-12),
                                           "method": "cohen"}
        truth = [r["truth"] == "synthetic" for r in key if r["phase"] == phase]
        signed = [answers[("A", phase, c)][1] * (1 if answers[("A", phase, c)][0] == "synthetic" else -1) for c in cases]
        assert two["roc_auc"][phase]["readers"]["A"] == pytest.approx(roc_auc_score(truth, signed), abs=1e-12)
    # McNemar for reader A: pairs of the same nodule (truth, source) across the phases
    truth_of = {(r["phase"], r["case_id"]): (r["truth"], r["source"]) for r in key}
    correct = {}
    for (reader, phase, case), (word, _) in answers.items():
        if reader == "A":
            correct[(phase, truth_of[(phase, case)])] = word == truth_of[(phase, case)][0]
    nodules = {n for (p, n) in correct if p == "cropped"}
    b = sum(correct[("cropped", n)] and not correct[("full", n)] for n in nodules)
    c = sum(correct[("full", n)] and not correct[("cropped", n)] for n in nodules)
    test = two["mcnemar"]["A"]["cropped vs full"]
    assert (test["n_pairs"], test["only_first_correct"], test["only_second_correct"]) == (len(nodules), b, c)
    assert test["p_value"] == pytest.approx(exact_two_sided_p(b, b + c) if b + c else 1.0, rel=1e-9)

    assert main(["turing", "score", "--key", str(tmp_path / "key.csv"), "--answers", *map(str, sheets),
                 "--json", str(tmp_path / "three.json")]) == 0
    three = json.loads((tmp_path / "three.json").read_text())
    for phase in PHASES:
        cases = [r["case_id"] for r in key if r["phase"] == phase]
        counts = np.array([[sum(answers[(x, phase, c)][0] == w for x in "ABC") for w in ("real", "synthetic")]
                           for c in cases])
        assert three["agreement"][phase]["method"] == "fleiss"
        assert three["agreement"][phase]["kappa"] == pytest.approx(fleiss_kappa(counts), abs=1e-12)


def test_fleiss_kappa_reproduces_the_published_example():
    # Fleiss (1971) as worked in the Wikipedia article "Fleiss' kappa": 10 subjects, 14 raters, 5 categories
    table = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                      [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    assert fleiss_kappa(np.array([[3, 0], [0, 3], [3, 0]])) == pytest.approx(1.0)


def test_agreement_and_auc_edge_cases():
    assert cohen_kappa(["real"] * 4, ["real"] * 4) is None  # chance agreement is 1: kappa undefined
    assert cohen_kappa(["real", "synthetic"], ["synthetic", "real"]) == pytest.approx(-1.0)
    assert roc_auc([1, 2, 3], [True, True, True]) is None
    assert roc_auc([-5, -1, 2, 5], [False, False, True, True]) == 1.0
    assert roc_auc([3, 3], [False, True]) == 0.5


# ------------------------------------------------------------------------------------------- bad input
def _score(tmp_path, *sheets, study=None):
    out = tmp_path / "bad.json"
    source = ["--study", str(study)] if study else ["--key", str(tmp_path / "key.csv")]
    status = main(["turing", "score", *source, "--answers", *map(str, sheets), "--json", str(out),
                   "--html", str(tmp_path / "bad.html")])
    return status, out


@pytest.mark.parametrize("change, message", [
    (lambda rows: rows[0].__setitem__(2, "NOPE01"), "unknown case"),
    (lambda rows: rows[0].__setitem__(1, "zoomed"), "unknown phase"),
    (lambda rows: rows[0].__setitem__(3, "synth"), "answer must be"),
    (lambda rows: rows[0].__setitem__(4, "7"), "confidence must be"),
    (lambda rows: rows.append(list(rows[0])), "more than once"),
])
def test_bad_answer_sheets_are_refused_and_nothing_is_written(tmp_path, capsys, change, message):
    key = make_key(tmp_path, 5)
    rows = [["R1", r["phase"], r["case_id"], "real", 3, 10] for r in key]
    change(rows)
    status, out = _score(tmp_path, write_csv(tmp_path / "a.csv", ANSWER_COLUMNS, rows))
    assert status == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "bad.html").exists()


def test_duplicate_answers_across_two_sheets_are_refused(tmp_path, capsys):
    key = make_key(tmp_path, 3)
    rows = [["R1", r["phase"], r["case_id"], "real", "", ""] for r in key]
    first = write_csv(tmp_path / "a.csv", ANSWER_COLUMNS, rows[:4])
    second = write_csv(tmp_path / "b.csv", ANSWER_COLUMNS, rows[3:])
    status, out = _score(tmp_path, first, second)
    assert status == 2 and "more than once" in capsys.readouterr().err and not out.exists()


def test_a_changed_key_is_detected_through_the_study_hash(tmp_path, capsys):
    key = make_key(tmp_path, 3)
    digest = hashlib.sha256((tmp_path / "key.csv").read_bytes()).hexdigest()
    (tmp_path / "study.json").write_text(json.dumps({"key_sha256": digest, "cases": {}}))
    sheet = write_csv(tmp_path / "a.csv", ANSWER_COLUMNS, [["R1", r["phase"], r["case_id"], "real", "", ""] for r in key])
    status, out = _score(tmp_path, sheet, study=tmp_path)
    assert status == 0 and out.exists()
    out.unlink()
    (tmp_path / "bad.html").unlink()
    text = (tmp_path / "key.csv").read_text().replace(",real,", ",synthetic,", 1)  # flip one truth
    (tmp_path / "key.csv").write_text(text)
    for kwargs in ({"study": tmp_path}, {}):  # --study, and --key with study.json beside it
        status, out = _score(tmp_path, sheet, **kwargs)
        assert status == 2 and "SHA-256" in capsys.readouterr().err and not out.exists()


def test_the_key_beside_the_study_is_found_and_checked_by_study_or_key_alone(tmp_path, capsys):
    """``turing build`` writes STUDY.key.csv beside STUDY: ``--study`` finds it, ``--key`` alone checks it
    against the study beside it, and ``--key`` with ``--study`` pairs a key kept elsewhere."""
    study = tmp_path / "study"
    study.mkdir()
    key = make_key(tmp_path, 3)
    key_file = (tmp_path / "key.csv").rename(tmp_path / "study.key.csv")
    digest = hashlib.sha256(key_file.read_bytes()).hexdigest()
    (study / "study.json").write_text(json.dumps({"key_sha256": digest, "cases": {}}))
    sheet = write_csv(tmp_path / "a.csv", ANSWER_COLUMNS, [["R1", r["phase"], r["case_id"], "real", "", ""] for r in key])
    kept = tmp_path / "vault" / "k.csv"
    kept.parent.mkdir()
    kept.write_bytes(key_file.read_bytes())
    for source in (["--study", str(study)], ["--key", str(key_file)], ["--study", str(study), "--key", str(kept)]):
        out = tmp_path / "s.json"
        assert main(["turing", "score", *source, "--answers", str(sheet), "--json", str(out)]) == 0
        assert json.loads(out.read_text())["phases"]["cropped"]["pooled"]["n"] == 6
        out.unlink()
    key_file.write_text(key_file.read_text().replace(",real,", ",synthetic,", 1))
    kept.write_text(key_file.read_text())
    for source in (["--study", str(study)], ["--key", str(key_file)], ["--study", str(study), "--key", str(kept)]):
        assert main(["turing", "score", *source, "--answers", str(sheet), "--json", str(tmp_path / "s.json")]) == 2
        assert "SHA-256" in capsys.readouterr().err and not (tmp_path / "s.json").exists()


def test_reader_names_differing_only_in_case_are_one_reader_with_a_warning(tmp_path, capsys):
    key = make_key(tmp_path, 20)
    rng = np.random.default_rng(5)
    rows = [["R1" if r["phase"] == "cropped" else "r1", r["phase"], r["case_id"],
             ("real", "synthetic")[int(rng.integers(2))], "", ""] for r in key]
    first = write_csv(tmp_path / "a.csv", ANSWER_COLUMNS, [r for r in rows if r[0] == "R1"])
    second = write_csv(tmp_path / "b.csv", ANSWER_COLUMNS, [r for r in rows if r[0] == "r1"])
    out = tmp_path / "s.json"
    with pytest.warns(UserWarning, match="'R1', 'r1' differ only in case"):
        assert main(["turing", "score", "--key", str(tmp_path / "key.csv"), "--answers", str(first), str(second),
                     "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert [list(scores["phases"][p]["readers"]) for p in PHASES] == [["R1"], ["R1"]]
    assert scores["agreement"] == {}  # one reader: no agreement between two
    assert scores["mcnemar"]["R1"]["cropped vs full"]["n_pairs"] == 40  # the same reader's two phases pair up
    again = write_csv(tmp_path / "c.csv", ANSWER_COLUMNS, [["r1", *r[1:]] for r in rows if r[0] == "R1"][:1])
    with pytest.warns(UserWarning):
        status, out = _score(tmp_path, first, again)
    assert status == 2 and "more than once" in capsys.readouterr().err and not out.exists()
