"""The modules' engine path over real loopback HTTP: "Test connection" and a model-free edit through
``engine_from_settings`` give the same answer remote as local (a real ``nodsynth serve`` subprocess)."""
from __future__ import annotations

import numpy as np
import pytest

from NodMAISICommon.engines import connection_report, engine_from_settings
from NodMAISICommon.settings import EngineSettings
from server_harness import TOKEN, ServerProcess, write_token
from slicer_fixtures import demo_patient
from nodsynth.errors import Cancelled
from nodsynth.progress import CancelToken



@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slicer-remote")
    process = ServerProcess(folder / "jobs", write_token(folder)).start()
    yield process
    process.stop()


def remote_settings(server, token: str = TOKEN) -> EngineSettings:
    return EngineSettings(location="remote", server_url=server.url.replace("http://", ""), token=token)


def test_test_connection_shows_the_health(server):
    report = connection_report(remote_settings(server))
    fields = dict(line.split(": ", 1) for line in report.splitlines())
    assert fields["api_version"] == "1" and "classic" in fields["engines"]


def test_remote_edit_equals_local_and_honours_cancel(server, tmp_path):
    from nodsynth.augment import resize_nodule
    from nodsynth.engines import EditRequest
    patient = demo_patient()
    # a crop around the first nodule keeps the upload small
    k, j, i = np.argwhere(patient.nodules[0].mask.array > 0).mean(axis=0).astype(int)
    crop = (slice(max(k - 12, 0), k + 12), slice(max(j - 24, 0), j + 24), slice(max(i - 24, 0), i + 24))
    start = [s.start for s in crop]
    stop = [s.stop for s in crop]
    ct, labels = patient.ct.crop(start, stop), patient.labelmap.crop(start, stop)
    edited = resize_nodule(labels, "all", 50.0).labelmap
    request = EditRequest(ct=ct, labelmap=labels, edited_labelmap=edited, seed=7)
    local = engine_from_settings("classic", EngineSettings()).edit(request).ct
    seen = []
    remote = engine_from_settings("classic", remote_settings(server)).edit(request, progress=lambda f, m: seen.append(f)).ct
    assert np.array_equal(local.array, remote.array) and np.any(local.array != ct.array)
    assert np.allclose(local.origin, remote.origin) and seen and max(seen) <= 1.0
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(Cancelled):
        engine_from_settings("classic", remote_settings(server)).edit(request, cancel=cancel)
