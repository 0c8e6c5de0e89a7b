"""``nodsynth dicom push`` / ``pull`` against a real Orthanc (DICOMweb and DIMSE), and ``dicomweb://``
inputs pulled into the series cache. Orthanc runs in a network namespace of its own (loopback only),
see :mod:`orthanc_sandbox`; the scenario functions below run inside it, the test functions check what
they return. Skipped with a message where Orthanc, its DICOMweb plugin or network namespaces are absent."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from conftest import shared_path
from orthanc_sandbox import run_scenario, sandbox_missing

pytest.importorskip("pynetdicom", reason="pynetdicom not installed (pip install nodsynth[pacs])")
pytest.importorskip("dicomweb_client", reason="dicomweb-client not installed (pip install nodsynth[pacs])")
pytest.importorskip("highdicom", reason="highdicom not installed (pip install nodsynth[pacs])")


def _uids(path: Path) -> tuple[str, str]:
    import pydicom

    header = pydicom.dcmread(path, stop_before_pixels=True)
    return str(header.StudyInstanceUID), str(header.SeriesInstanceUID)


def scenario_roundtrip(orthanc, workdir: Path, slabs: str) -> dict:
    """CT + SEG + SR of LIDC-IDRI-0001 pushed by DICOMweb, a CT of LIDC-IDRI-0002 by C-STORE; all pulled back
    by WADO-RS and by C-GET; every push and pull run twice; a wrong password; a dicomweb:// input."""
    from pacs_scenarios import build_ct_series, build_seg, build_sr, cli, compare_folders, dicomweb_args, dimse_args

    slabs = Path(slabs)
    ct1 = build_ct_series(slabs / "LIDC-IDRI-0001_slab.nrrd", workdir / "ct1", "LIDC-IDRI-0001")
    mask1 = slabs / "LIDC-IDRI-0001_slab_nodule_2of4.nrrd"
    seg1 = build_seg(ct1, mask1, workdir / "seg1" / "seg.dcm", "LIDC-IDRI-0001")
    sr1 = build_sr(ct1, seg1, mask1, workdir / "sr1" / "sr.dcm", "LIDC-IDRI-0001")
    ct2 = build_ct_series(slabs / "LIDC-IDRI-0002_slab.nrrd", workdir / "ct2", "LIDC-IDRI-0002")
    (study1, series1), (_, seg_series), (_, sr_series), (_, series2) = map(_uids, (ct1[0], seg1, sr1, ct2[0]))
    web, dimse = dicomweb_args(orthanc), dimse_args(orthanc)
    result = {"instances": {"ct1": len(ct1), "ct2": len(ct2)}}
    for name, folders, server in (("push_web", [ct1[0].parent, seg1.parent, sr1.parent], web), ("push_dimse", [ct2[0].parent], dimse)):
        result[name] = cli("dicom", "push", *map(str, folders), *server)
        result[name + "_again"] = cli("dicom", "push", *map(str, folders), *server)
    for name, server in (("pull_web", web), ("pull_get", dimse)):
        out = workdir / name
        result[name] = cli("dicom", "pull", "--study", study1, "--out", str(out), *server)
        result[name + "_again"] = cli("dicom", "pull", "--study", study1, "--out", str(out), *server)
        result[name + "_compare"] = {"ct": compare_folders(ct1, out / series1), "seg": compare_folders([seg1], out / seg_series),
                                     "sr": compare_folders([sr1], out / sr_series)}
    removed = sorted((workdir / "pull_web" / series1).glob("*.dcm"))[:3]  # a pull that was cut short
    for path in removed:
        path.unlink()
    result["pull_web_resumed"] = cli("dicom", "pull", "--series", series1, "--out", str(workdir / "pull_web"), *web)
    result["pull_web_resumed_compare"] = compare_folders(ct1, workdir / "pull_web" / series1)
    result["pull_query"] = cli("dicom", "pull", "--query", "PatientID=LIDC-IDRI-0002", "Modality=CT",
                               "--out", str(workdir / "query"), *web)
    result["pull_query_compare"] = compare_folders(ct2, workdir / "query" / series2)
    result["pull_series_get"] = cli("dicom", "pull", "--series", series2, "--out", str(workdir / "get2"), *dimse)
    result["pull_series_get_compare"] = compare_folders(ct2, workdir / "get2" / series2)
    wrong = workdir / "wrong-auth"
    wrong.write_text("nodsynth:not-the-password\n")
    wrong.chmod(0o600)
    result["wrong_password"] = cli("dicom", "pull", "--series", series1, "--out", str(workdir / "nothing"),
                                   "--url", orthanc.dicomweb_url, "--basic-auth-file", str(wrong), "--retries", "0")
    result["nothing_written"] = not (workdir / "nothing").exists()
    result["nodelay_option"] = _nodelay_option(orthanc, series1)
    result.update(_remote_input(orthanc, workdir, ct1, series1))
    result.update(_pacs_loop(orthanc, workdir, series1, study1))
    result.update(_batch_to_second_pacs(orthanc, workdir, ct1, seg1, series1, seg_series))
    return result


def _pacs_loop(orthanc, workdir: Path, series1: str, study1: str) -> dict:
    """A batch inpaints a nodule into the CT it reads from the PACS (dicomweb://), the result is exported as
    DICOM (CT + SEG + SR in the source's study) and a second batch pushes it back; the whole run twice."""
    import pydicom
    from pacs_scenarios import cli, compare_folders, dicomweb_args

    os.environ["NODSYNTH_PACS_CACHE"] = str(workdir / "loop-cache")
    folder, address = workdir / "loop", f"dicomweb://{orthanc.dicomweb_url.split('://')[1]}?series={series1}"
    folder.mkdir()
    inpaint = folder / "inpaint.jsonl"
    inpaint.write_text(json.dumps({"id": "syn", "op": "inpaint", "inputs": {"ct": address}, "seed": 1,
                                   "params": {"sample": "inner", "diameter_mm": 8, "engine": "classic"},
                                   "outputs": {"ct": "out/syn.nii.gz", "mask": "out/syn_mask.nii.gz"}}) + "\n")
    push = folder / "push.jsonl"
    push.write_text("".join(json.dumps({"id": f"push-{name}", "op": "push", "inputs": {"series": series},
                                        "params": {"url": orthanc.dicomweb_url}, "outputs": {"receipt": f"out/{name}.json"}})
                            + "\n" for name, series in (("ct", "export/ct"), ("seg-sr", "export"))))
    result = {}
    for run in ("loop_first", "loop_again"):
        steps = {"inpaint": cli("batch", "run", str(inpaint), "--executor", "inline")}
        if not (folder / "export").exists():  # the pipeline's own re-run rule: export once
            cache = os.environ["NODSYNTH_PACS_CACHE"] + "/" + series1
            steps["export"] = cli("dicom", "export", "--ct", str(folder / "out" / "syn.nii.gz"), "--mask",
                                  str(folder / "out" / "syn_mask.nii.gz"), "--like", cache, "--same-study", "--seed", "1",
                                  "--out", str(folder / "export"))
        steps["push"] = cli("batch", "run", str(push), "--executor", "inline")
        steps["cache"] = sorted((str(p), p.stat().st_mtime_ns) for p in (workdir / "loop-cache").rglob("*"))
        result[run] = steps
    result["loop_receipts"] = {n: json.loads((folder / "out" / f"{n}.json").read_text()) for n in ("ct", "seg-sr")}
    result["loop_push_cli"] = cli("dicom", "push", str(folder / "export"), str(folder / "export" / "ct"), *dicomweb_args(orthanc))
    pulled = workdir / "loop-pulled"
    result["loop_pull_study"] = cli("dicom", "pull", "--study", study1, "--out", str(pulled), *dicomweb_args(orthanc))
    exported = sorted((folder / "export" / "ct").glob("*.dcm"))
    syn_series = str(pydicom.dcmread(exported[0], stop_before_pixels=True).SeriesInstanceUID)
    result["loop_syn_compare"] = compare_folders(exported, pulled / syn_series)
    result["loop_study_series"] = len([p for p in pulled.iterdir() if p.is_dir()])
    return result


def _batch_to_second_pacs(orthanc, workdir: Path, ct1: list[Path], seg1: Path, series1: str, seg_series: str) -> dict:
    """A batch whose inputs are series on this Orthanc (dicomweb://) and whose destination is a second one
    (the CT by DICOMweb, the SEG by C-STORE); run again with the first Orthanc stopped, then as new jobs."""
    from orthanc_sandbox import CLIENT_AET, SERVER_AET, orthanc as start_orthanc, stop
    from pacs_scenarios import cli, compare_folders, dicomweb_args

    os.environ["NODSYNTH_PACS_CACHE"] = str(workdir / "batch-cache")
    source = f"dicomweb://{orthanc.dicomweb_url.split('://')[1]}?series="
    folder = workdir / "batch-b"
    folder.mkdir()
    result = {}
    with start_orthanc(workdir / "pacs-b", 8043, 4243) as pacs_b:
        def write_manifest(name: str, prefix: str) -> Path:
            rows = [{"id": f"{prefix}ct", "op": "push", "inputs": {"series": source + series1},
                     "params": {"url": pacs_b.dicomweb_url}, "outputs": {"receipt": f"{prefix}ct.json"}},
                    {"id": f"{prefix}seg", "op": "push", "inputs": {"series": source + seg_series},
                     "params": {"dimse": pacs_b.dimse, "aet": CLIENT_AET, "called_aet": SERVER_AET},
                     "outputs": {"receipt": f"{prefix}seg.json"}}]
            path = folder / name
            path.write_text("".join(json.dumps(row) + "\n" for row in rows))
            return path

        def receipts(prefix: str) -> dict:
            return {part: json.loads((folder / f"{prefix}{part}.json").read_text()) for part in ("ct", "seg")}

        manifest = write_manifest("manifest.jsonl", "first-")
        result["batch_first"] = cli("batch", "run", str(manifest), "--executor", "inline")
        result["batch_first_receipts"] = receipts("first-")
        cache = sorted((str(p), p.stat().st_mtime_ns) for p in (workdir / "batch-cache").rglob("*"))
        stop(orthanc)  # the source PACS is gone: the inputs can only come from the cache
        result["batch_again"] = cli("batch", "run", str(manifest), "--executor", "inline")
        result["batch_again_receipts"] = receipts("first-")
        result["batch_new_jobs"] = cli("batch", "run", str(write_manifest("new.jsonl", "new-")), "--executor", "inline")
        result["batch_new_receipts"] = receipts("new-")
        result["batch_cache_untouched"] = cache == sorted((str(p), p.stat().st_mtime_ns)
                                                          for p in (workdir / "batch-cache").rglob("*"))
        out = workdir / "from-b"
        result["batch_pull_b"] = cli("dicom", "pull", "--series", series1, "--out", str(out), *dicomweb_args(pacs_b))
        result["batch_pull_b_compare"] = compare_folders(ct1, out / series1)
    return result


def _nodelay_option(orthanc, series: str) -> dict:
    """TCP_NODELAY of the DIMSE association's socket, by default and with ``nodelay=False``."""
    import socket

    from nodsynth.io.dicom.dimse import DimseStore
    from orthanc_sandbox import CLIENT_AET, SERVER_AET

    found = {}
    for nodelay in (True, False):
        with DimseStore(orthanc.dimse, CLIENT_AET, SERVER_AET, nodelay=nodelay) as store:
            store.find_instances(None, series)
            found[str(nodelay)] = store._assoc.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    return found


def _remote_input(orthanc, workdir: Path, ct1: list[Path], series1: str) -> dict:
    """A batch manifest naming the CT on the server as input: pulled into the cache once, then read from it
    even with the server's address unreachable; a batch spec and a Slicer batch script's case table naming it get
    the same folder."""
    from nodsynth.batch.manifest import read_manifest
    from NodMAISICommon.batch import read_case_table
    from nodsynth.batch.plan import spec_cases
    from pacs_scenarios import compare_folders

    os.environ["NODSYNTH_PACS_CACHE"] = str(workdir / "cache")
    os.environ["NODSYNTH_PACS_BASIC_AUTH_FILE"] = orthanc.basic_auth_file
    address = f"dicomweb://{orthanc.dicomweb_url.split('://')[1]}?series={series1}"
    manifest = workdir / "batch" / "manifest.jsonl"
    manifest.parent.mkdir()
    row = {"id": "j1", "op": "segment", "inputs": {"ct": address}, "outputs": {"mask": "out/mask.nii.gz"}}
    manifest.write_text(json.dumps(row) + "\n")
    first = read_manifest(manifest).jobs[0].inputs["ct"]
    stamps = sorted((p.name, p.stat().st_mtime_ns) for p in first.iterdir())
    unreachable = manifest.with_name("offline.jsonl")  # port 9 (discard): nothing listens there
    unreachable.write_text(json.dumps({**row, "inputs": {"ct": address.replace(":8042/", ":9/")}}) + "\n")
    second = read_manifest(unreachable).jobs[0].inputs["ct"]
    spec_case = spec_cases({"ct": address}, manifest.parent)[0].case_files["ct"]
    table = manifest.with_name("cases.csv")  # a case table of the Slicer batch scripts (hrldminpaint_batch.py)
    table.write_text(f"case_id,ct\nc1,{address}\n")
    slicer_case = read_case_table(str(table), ("case_id", "ct"), ("ct",))[0][1]["ct"]
    return {"cache_folder": str(first), "cache_compare": compare_folders(ct1, first), "cache_second": str(second),
            "cache_spec": str(spec_case), "cache_slicer_table": str(slicer_case),
            "cache_untouched": stamps == sorted((p.name, p.stat().st_mtime_ns) for p in second.iterdir())}


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory) -> dict:
    reason = sandbox_missing()
    if reason:
        pytest.skip(reason)
    slabs = shared_path("lidc_slabs")
    return run_scenario(Path(__file__), "scenario_roundtrip", tmp_path_factory.mktemp("pacs"), str(slabs))


def _ok(run: dict) -> dict:
    assert run["status"] == 0, run["stderr"]
    return run


def test_push_sends_each_instance_once(roundtrip):
    ct1, ct2 = roundtrip["instances"]["ct1"], roundtrip["instances"]["ct2"]
    assert _ok(roundtrip["push_web"])["stdout"].startswith(f"{ct1 + 2} instance(s) stored, 0 already")
    assert _ok(roundtrip["push_web_again"])["stdout"].startswith(f"0 instance(s) stored, {ct1 + 2} already")
    assert _ok(roundtrip["push_dimse"])["stdout"].startswith(f"{ct2} instance(s) stored, 0 already")
    assert _ok(roundtrip["push_dimse_again"])["stdout"].startswith(f"0 instance(s) stored, {ct2} already")
    assert roundtrip["push_web"]["stderr"].count("push: pushed ") == ct1 + 2  # progress per instance


@pytest.mark.parametrize("way", ["pull_web", "pull_get"])
def test_pulled_study_equals_pushed_element_for_element(roundtrip, way):
    ct1 = roundtrip["instances"]["ct1"]
    assert _ok(roundtrip[way])["stdout"].startswith(f"{ct1 + 2} instance(s) pulled, 0 already")
    assert _ok(roundtrip[way + "_again"])["stdout"].startswith(f"0 instance(s) pulled, {ct1 + 2} already")
    for part, count in (("ct", ct1), ("seg", 1), ("sr", 1)):
        compared = roundtrip[way + "_compare"][part]
        assert compared["missing"] == [] and compared["differences"] == []
        assert compared["compared"] == count


def test_a_pull_cut_short_fetches_only_what_is_missing(roundtrip):
    ct1 = roundtrip["instances"]["ct1"]
    assert _ok(roundtrip["pull_web_resumed"])["stdout"].startswith(f"3 instance(s) pulled, {ct1 - 3} already")
    compared = roundtrip["pull_web_resumed_compare"]
    assert compared["missing"] == [] and compared["differences"] == [] and compared["compared"] == ct1


@pytest.mark.parametrize("way", ["pull_query", "pull_series_get"])
def test_series_stored_by_c_store_pulled_by_query_and_c_get(roundtrip, way):
    _ok(roundtrip[way])
    compared = roundtrip[way + "_compare"]
    assert compared["missing"] == [] and compared["differences"] == []
    assert compared["compared"] == roundtrip["instances"]["ct2"]


def test_dimse_sockets_have_nagle_off_unless_asked(roundtrip):
    assert roundtrip["nodelay_option"]["True"] != 0
    assert roundtrip["nodelay_option"]["False"] == 0


def test_wrong_password_is_one_line_and_writes_nothing(roundtrip):
    run = roundtrip["wrong_password"]
    assert run["status"] == 2
    assert "HTTP 401" in run["stderr"] and run["stderr"].count("\n") == 1
    assert roundtrip["nothing_written"]


def test_dicomweb_input_is_pulled_once_into_verified_cache(roundtrip):
    compared = roundtrip["cache_compare"]
    assert compared["missing"] == [] and compared["differences"] == [] and compared["compared"] == roundtrip["instances"]["ct1"]
    assert roundtrip["cache_second"] == roundtrip["cache_folder"] == roundtrip["cache_spec"] == roundtrip["cache_slicer_table"]
    assert roundtrip["cache_untouched"]


def test_batch_from_one_pacs_to_another_moves_nothing_twice(roundtrip):
    ct1 = roundtrip["instances"]["ct1"]
    _ok(roundtrip["batch_first"])
    first = roundtrip["batch_first_receipts"]
    assert (first["ct"]["stored"], first["ct"]["present"], first["seg"]["stored"]) == (ct1, 0, 1)
    assert re.search(r"^total\s+2\s+0\s+2\s", _ok(roundtrip["batch_again"])["stdout"], re.M)  # 2 jobs: 0 done, 2 skipped
    assert roundtrip["batch_again_receipts"] == first  # jobs skipped: receipts not rewritten
    new = roundtrip["batch_new_receipts"]
    assert (new["ct"]["stored"], new["ct"]["present"], new["seg"]["stored"], new["seg"]["present"]) == (0, ct1, 0, 1)
    assert roundtrip["batch_cache_untouched"]
    compared = roundtrip["batch_pull_b_compare"]
    assert compared["missing"] == [] and compared["differences"] == [] and compared["compared"] == ct1


def test_pacs_loop_inputs_from_the_pacs_outputs_back_to_it_rerun_moves_nothing(roundtrip):
    first, again = roundtrip["loop_first"], roundtrip["loop_again"]
    for step in ("inpaint", "export", "push"):
        _ok(first[step])
    assert re.search(r"^total\s+1\s+1\s+0\s", first["inpaint"]["stdout"], re.M)
    assert re.search(r"^total\s+2\s+2\s+0\s", first["push"]["stdout"], re.M)
    assert re.search(r"^total\s+1\s+0\s+1\s", _ok(again["inpaint"])["stdout"], re.M)  # skipped: its record
    assert re.search(r"^total\s+2\s+0\s+2\s", _ok(again["push"])["stdout"], re.M)
    assert again["cache"] == first["cache"]  # the CT was pulled once
    receipts = roundtrip["loop_receipts"]
    slices = len(receipts["ct"]["sop_instance_uids"])
    assert (receipts["ct"]["stored"], receipts["seg-sr"]["stored"]) == (slices, 2)
    assert _ok(roundtrip["loop_push_cli"])["stdout"].startswith(f"0 instance(s) stored, {slices + 2} already")
    _ok(roundtrip["loop_pull_study"])
    compared = roundtrip["loop_syn_compare"]
    assert compared["missing"] == [] and compared["differences"] == [] and compared["compared"] == slices
    assert roundtrip["loop_study_series"] == 6  # CT, SEG, SR and their synthetic twins, in one study
