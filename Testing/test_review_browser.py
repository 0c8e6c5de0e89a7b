"""The review and scoring reports opened in a real headless browser (Debian's chromium + chromedriver,
driven by selenium): every image loads, the tables sort, the console stays clean.

Skipped with a message where selenium, chromium or chromedriver is not installed
(``apt-get install -y chromium chromium-driver`` and ``pip install selenium``).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nodsynth.engines.base import InpaintRequest
from nodsynth.engines.classic import ClassicEngine
from nodsynth.phantom import make_demo_patient
from nodsynth.presets import nodule_histogram
from nodsynth.review.pairs import ReviewPair, review_pairs
from nodsynth.review.score import score_answers
from nodsynth.review.score_report import score_html
from nodsynth.io.volume_files import write_volume

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")


def _binaries() -> tuple[str, str]:
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("no headless browser: install chromium and chromium-driver (apt-get install -y chromium "
                    "chromium-driver) to open report.html in a real browser")
    return browser, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """A compare report (demo CT vs its nodules re-rendered model-free) and a scoring page."""
    folder = tmp_path_factory.mktemp("reports")
    patient = make_demo_patient(0)
    ct = patient.ct
    for number, nodule in enumerate(patient.nodules):
        ct = ClassicEngine().inpaint(InpaintRequest(ct, nodule.mask, nodule.subtype,
                                                    nodule_histogram(patient.ct, nodule.mask), seed=number)).ct
    write_volume(patient.ct, folder / "real.nii.gz")
    write_volume(ct, folder / "twin.nii.gz")
    write_volume(patient.labelmap, folder / "labels.nii.gz")
    review_pairs([ReviewPair("twin", folder / "real.nii.gz", folder / "twin.nii.gz", folder / "labels.nii.gz")],
                 folder / "compare")
    from nodsynth.review.answers import Answer
    from nodsynth.review.key import KeyRow

    key = [KeyRow(f"C{k}", phase, ("real", "synthetic")[k % 2], f"s{k}", "solid", 8.0 + k)
           for phase in ("cropped", "full") for k in range(8)]
    answers = [Answer(reader, r.phase, r.case_id, ("real", "synthetic")[(k + len(reader)) % 3 == 0], 1 + k % 5)
               for reader in ("A", "BB") for k, r in enumerate(key)]
    (folder / "score.html").write_text(score_html(score_answers(key, answers)))
    return folder


def _open(driver, path: Path) -> list[dict]:
    driver.get_log("browser")  # drop what an earlier page logged
    driver.get(path.resolve().as_uri())
    driver.execute_async_script(
        "var done = arguments[arguments.length - 1];"
        "Promise.all(Array.from(document.images).map(function (i) { return i.complete ? null :"
        " new Promise(function (r) { i.onload = i.onerror = r; }); })).then(function () { done(); });")
    return driver.get_log("browser")


def _images(driver) -> list:
    return driver.execute_script("return Array.from(document.images).map(function (i) {"
                                 " return [i.getAttribute('src'), i.complete, i.naturalWidth]; });")


def _column(driver, table_id: str, name: str) -> list[str]:
    return driver.execute_script(
        "var t = document.getElementById(arguments[0]), name = arguments[1];"
        "var c = Array.from(t.tHead.rows[0].cells).findIndex(function (h) { return h.textContent.trim() === name; });"
        "return Array.from(t.tBodies[0].rows).map(function (r) { return r.cells[c].getAttribute('data-sort'); });",
        table_id, name)


def _click_header(driver, table_id: str, name: str) -> str:
    from selenium.webdriver.common.by import By

    header = driver.find_element(By.XPATH, f"//table[@id='{table_id}']/thead/tr/th[normalize-space(.)='{name}']")
    header.click()
    return header.get_attribute("aria-sort")


def test_compare_report_images_load_tables_sort_and_console_is_clean(browser, reports):
    logs = _open(browser, reports / "compare" / "report.html")
    images = _images(browser)
    assert len(images) == 5
    assert all(complete and width > 0 for _, complete, width in images), images
    assert [entry for entry in logs if entry["level"] in ("SEVERE", "WARNING")] == []
    original = _column(browser, "nodules", "jsd")
    assert _click_header(browser, "nodules", "jsd") == "ascending"
    ascending = [float(v) for v in _column(browser, "nodules", "jsd")]
    assert ascending == sorted(float(v) for v in original)
    assert _click_header(browser, "nodules", "jsd") == "descending"
    assert [float(v) for v in _column(browser, "nodules", "jsd")] == sorted(ascending, reverse=True)
    _click_header(browser, "nodules", "dice")  # rows move together: each row keeps its own nodule number
    rows = json.loads((reports / "compare" / "review.json").read_text())["cases"][0]["nodules"]
    dice_of = {str(r["nodule"]): r["dice"] for r in rows}
    shown = list(zip(_column(browser, "nodules", "nodule"), map(float, _column(browser, "nodules", "dice"))))
    assert [d for _, d in shown] == sorted(d for _, d in shown)
    assert all(dice_of[n] == pytest.approx(d, abs=1e-4) for n, d in shown)
    assert browser.get_log("browser") == []


def test_score_report_plot_and_tables_in_the_browser(browser, reports):
    logs = _open(browser, reports / "score.html")
    assert [entry for entry in logs if entry["level"] in ("SEVERE", "WARNING")] == []
    assert browser.execute_script("return document.querySelectorAll('svg rect').length") >= 8
    from selenium.webdriver.common.by import By

    table = browser.find_elements(By.CSS_SELECTOR, "table.sortable")[0]
    header = table.find_element(By.XPATH, "./thead/tr/th[normalize-space(.)='group']")
    header.click()
    groups = [r.find_elements(By.TAG_NAME, "td")[0].text for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert groups == sorted(groups) and header.get_attribute("aria-sort") == "ascending"


WINDOW_PX = 1400


@pytest.mark.parametrize("page", ["compare/report.html", "score.html"])
def test_reports_fit_a_1400_px_window(browser, reports, page):
    """Nothing needs a horizontal scroll at 1400 px (the nodule table had 19 columns of 4-decimal numbers)."""
    browser.set_window_size(WINDOW_PX, 900)
    browser.set_window_size(2 * WINDOW_PX - browser.execute_script("return window.innerWidth"), 900)
    _open(browser, reports / page)
    inner, scroll = browser.execute_script("return [window.innerWidth, document.documentElement.scrollWidth]")
    assert inner == WINDOW_PX and scroll <= WINDOW_PX, f"{page}: {scroll} px wide in a {inner} px window"


def test_the_checks_see_a_missing_image(browser, reports, tmp_path):
    """Negative control: the same page without its images folder fails the image and console checks."""
    shutil.copy(reports / "compare" / "report.html", tmp_path / "report.html")
    logs = _open(browser, tmp_path / "report.html")
    assert all(width == 0 for _, _, width in _images(browser))
    assert any(entry["level"] == "SEVERE" for entry in logs)
