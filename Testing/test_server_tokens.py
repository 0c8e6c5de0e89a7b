"""Jobs belong to the token that submitted them: the full matrix token x job x verb over real HTTP,
and the token file format (several named tokens, an admin mark; a single-token file stays valid)."""
from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest

from conftest import shared_path
from nodsynth.io import wire
from nodsynth.engines.base import EditRequest
from nodsynth.errors import InputError
from nodsynth.server.jobs import JobStore
from nodsynth.io.volume_files import read_volume
from server_harness import ServerProcess, auth_headers

TOKENS = {"alice": "alice-token-0b7f3e91c2d84a65", "bob": "bob-token-5e2a9c4417f86d3b0",
          "ops": "ops-token-c81d2f6a9e3b4705"}
TOKEN_FILE = f"""# clients of this server
alice  {TOKENS['alice']}
bob    {TOKENS['bob']}

ops    {TOKENS['ops']}   admin
"""
VERBS = ("list", "status", "result", "delete")
OWN = ("listed", 200, 200, 200)
HIDDEN = ("hidden", 404, 404, 404)
EXPECTED = {  # caller -> job owner -> what each verb gives
    "alice": {"alice": OWN, "bob": HIDDEN, "ops": HIDDEN},
    "bob": {"alice": HIDDEN, "bob": OWN, "ops": HIDDEN},
    "ops": {"alice": ("listed", 200, 404, 200), "bob": ("listed", 200, 404, 200), "ops": OWN},
}
"""An admin lists, inspects and deletes every job but never downloads another client's result."""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve_tokens")
    token_file = folder / "tokens.txt"
    token_file.write_text(TOKEN_FILE, encoding="utf-8")
    token_file.chmod(0o600)
    proc = ServerProcess(folder / "jobs", token_file).start()
    yield proc
    proc.stop()


def _edit_body() -> bytes:
    name = "LIDC-IDRI-0001_R_1.nii.gz"
    ct = read_volume(shared_path("lidc_vois", "image", name))
    mask = read_volume(shared_path("lidc_vois", "nodule_mask", name))
    labelmap = mask.with_array(np.where(mask.array > 0, 23, 28).astype(np.uint8))
    return wire.join(wire.encode_request("edit", "classic", EditRequest(ct=ct, labelmap=labelmap,
                                                                        edited_labelmap=labelmap)))


def _done_job(server, owner: str, body: bytes) -> str:
    response = httpx.post(server.url + "/v1/jobs", content=body, headers=auth_headers(TOKENS[owner]), timeout=60)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = httpx.get(f"{server.url}/v1/jobs/{job_id}", headers=auth_headers(TOKENS[owner]), timeout=10).json()
        if status["state"] == "done":
            return job_id
        time.sleep(0.05)
    raise AssertionError(f"job of {owner} not done: {status}")


def _try_every_verb(server, caller: str, job_id: str) -> tuple:
    headers, url = auth_headers(TOKENS[caller]), f"{server.url}/v1/jobs/{job_id}"
    listed = job_id in {j["id"] for j in httpx.get(server.url + "/v1/jobs", headers=headers, timeout=10).json()}
    status = httpx.get(url, headers=headers, timeout=10).status_code
    result = httpx.get(url + "/result", headers=headers, timeout=30).status_code
    delete = httpx.delete(url, headers=headers, timeout=10).status_code
    return ("listed" if listed else "hidden", status, result, delete)


def test_jobs_are_seen_only_by_their_token_and_listed_all_by_the_admin(server):
    body = _edit_body()
    got = {}
    for caller in TOKENS:
        for owner in TOKENS:
            job_id = _done_job(server, owner, body)  # a fresh job per cell: delete ends it
            got[caller, owner] = _try_every_verb(server, caller, job_id)
            owner_view = httpx.get(f"{server.url}/v1/jobs/{job_id}", headers=auth_headers(TOKENS[owner]), timeout=10)
            if got[caller, owner][3] == 404:  # refused: the job is untouched, its owner cleans up
                assert owner_view.status_code == 200 and owner_view.json()["state"] == "done"
                httpx.delete(f"{server.url}/v1/jobs/{job_id}", headers=auth_headers(TOKENS[owner]), timeout=10)
            else:
                assert owner_view.status_code == 404  # deleted
    print("\ncaller -> job of   " + "  ".join(f"{v:>7}" for v in VERBS))
    for (caller, owner), cells in got.items():
        print(f"{caller:>6} -> {owner:<6}    " + "  ".join(f"{str(c):>7}" for c in cells))
    assert got == {(c, o): EXPECTED[c][o] for c in TOKENS for o in TOKENS}


def test_a_refused_job_looks_like_a_missing_one(server):
    job_id = _done_job(server, "alice", _edit_body())
    missing = "0" * 32
    for suffix in ("", "/result"):
        other = httpx.get(f"{server.url}/v1/jobs/{job_id}{suffix}", headers=auth_headers(TOKENS["bob"]), timeout=10)
        absent = httpx.get(f"{server.url}/v1/jobs/{missing}{suffix}", headers=auth_headers(TOKENS["bob"]), timeout=10)
        assert (other.status_code, other.json()) == (absent.status_code, absent.json())
    listed = httpx.get(server.url + "/v1/jobs", headers=auth_headers(TOKENS["ops"]), timeout=10).json()
    assert {"id": job_id, "owner": "alice"}.items() <= next(j for j in listed if j["id"] == job_id).items()
    httpx.delete(f"{server.url}/v1/jobs/{job_id}", headers=auth_headers(TOKENS["alice"]), timeout=10)


def test_token_file_formats(tmp_path):
    from nodsynth.server.auth import ClientToken, read_token_table

    path = tmp_path / "tokens.txt"
    path.write_text("  single-token-3f9a0c1b2d4e5f67  \n")
    path.chmod(0o600)
    assert read_token_table(path) == [ClientToken("default", "single-token-3f9a0c1b2d4e5f67")]
    path.write_text(TOKEN_FILE)
    assert read_token_table(path) == [ClientToken("alice", TOKENS["alice"]), ClientToken("bob", TOKENS["bob"]),
                                      ClientToken("ops", TOKENS["ops"], admin=True)]
    assert TOKENS["ops"] not in repr(read_token_table(path))  # tokens never end up in logs
    for text, reason in ((f"alice {TOKENS['alice']}\nbob {TOKENS['alice']}\n", "line 2: .*already used"),
                         (f"alice {TOKENS['alice']}\nalice {TOKENS['bob']}\n", "line 2: .*already used"),
                         (f"alice {TOKENS['alice']} root\n", "line 1: expected NAME TOKEN"),
                         (f"alice {TOKENS['alice']}\n{TOKENS['bob']}\n", "line 2: expected NAME TOKEN"),
                         (f"al/ice {TOKENS['alice']}\n", "line 1: the name 'al/ice'")):
        path.write_text(text)
        with pytest.raises(InputError, match=reason):
            read_token_table(path)


def test_jobs_of_an_older_server_belong_to_the_single_token(tmp_path):
    job = JobStore(tmp_path).submit([b"request"], "edit", "classic", owner="alice")
    record_path = tmp_path / job.id / "job.json"
    record = json.loads(record_path.read_text())
    assert record["owner"] == "alice"
    del record["owner"]  # as written before jobs had owners
    record_path.write_text(json.dumps(record))
    assert JobStore(tmp_path).get(job.id).owner == "default"
