"""The MLflow UI as a model reviewer meets it, in a real browser: ``segments ui`` on a store
with a groups and an upgrade run, Debian's Chromium driven by Playwright.

The reviewer opens the URL ``segments ui`` prints and lands on the experiment's runs in the
"Model training" workflow, and stays there clicking on (a run, the experiment, the home
page); a run's artifacts start with the model card; the group names read in Chinese; the
registry lists both models; MLflow's assistant panel (which needs a language model) is
closed. Screenshots of each page are left in the test's tmp_path.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.banks import logged_runs, tracked_folder
from tests.mlflow_server import free_port
from tests.test_ui import _lines, _wait_for

pytestmark = pytest.mark.slow

#: Chromium's flags on this closed network (see the env notes): no background connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        why = "no chromium on PATH: `make browser` installs Debian's chromium and CJK fonts"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A store with a groups run and an upgrade run (both registered), and ``segments ui``
    serving it: (printed pages by label, the training results, the UI's base URL)."""
    chromium = _chromium()
    with tracked_folder(tmp_path_factory, "ui_browser") as (root, _):
        runs = logged_runs("review", 2_000, seed=5)
        yield from _serve(root, runs, chromium)


def _serve(root: Path, runs: dict, chromium: str):
    """``segments ui`` on the store in ``root``, until the module's tests are done."""
    panel, groups, upgrade = runs["panel"], runs["groups"], runs["upgrade"]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "segments", "ui", "--port", str(port)],
        cwd=root,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    try:
        printed = _wait_for(lines, "registry: ", timeout=120)
        pages = {}
        for line in printed:
            if m := re.search(r"(?:ready|experiment \w+|registry): (http\S+)", line):
                label = "registry" if "registry" in line else "runs"
                pages.setdefault(label, m.group(1))
        yield {
            "pages": pages,
            "groups": groups,
            "upgrade": upgrade,
            "ids": set(panel["customer_id"].astype(str)),
            "base": f"http://127.0.0.1:{port}",
            "chromium": chromium,
            "shots": root,
        }
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def page(served):
    """A new browser (an empty profile: nothing remembered) and a page in it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=served["chromium"], args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1600, "height": 1000})
            tab.set_default_timeout(30_000)
            yield tab
        finally:
            browser.close()


def _stored_workflow(page) -> str | None:
    return page.evaluate("window.localStorage.getItem('mlflow.workflowType_v1')")


def _in_model_training(page) -> None:
    """The sidebar shows the "Model training" items (Runs, Models, Model registry), none
    of GenAI's (Evaluation runs, Prompts)."""
    sidebar = page.locator("aside nav").first
    sidebar.get_by_text("Model registry", exact=True).wait_for()
    assert sidebar.get_by_text("Evaluation runs", exact=True).count() == 0
    assert sidebar.get_by_text("Prompts", exact=True).count() == 0


def test_the_printed_url_lands_on_the_runs_and_the_ui_stays_in_model_training(served, page):
    shots = served["shots"]
    assert served["pages"]["runs"].startswith(f"{served['base']}/segments/#/experiments/")
    page.goto(served["pages"]["runs"])
    upgrade_run = page.get_by_role("link", name=re.compile(r"^upgrade reach"))
    upgrade_run.first.wait_for()
    page.get_by_role("link", name=re.compile(r"^groups \d{4}-\d{2} k=")).first.wait_for()
    assert _stored_workflow(page) == '"machine_learning"'
    _in_model_training(page)
    assert not page.get_by_placeholder("Ask a question").is_visible()  # the panel is closed
    page.screenshot(path=shots / "1_runs.png")

    # A click on a run drops the URL's workflowType: the stored choice keeps the workflow.
    upgrade_run.first.click()
    page.get_by_role("tab", name="Artifacts").wait_for()
    assert "workflowType" not in page.url
    _in_model_training(page)
    page.screenshot(path=shots / "2_run.png")

    # The experiment by its plain URL (a breadcrumb, a bookmark) opens on its runs, not on
    # GenAI's overview of traces; so does the home page's workflow.
    eid = re.search(r"#/experiments/(\d+)/", served["pages"]["runs"]).group(1)
    page.goto(f"{served['base']}/#/experiments/{eid}")
    page.wait_for_url(re.compile(rf"#/experiments/{eid}/runs\b"))
    assert "workflowType=genai" not in page.url
    page.goto(f"{served['base']}/")
    _in_model_training(page)
    page.screenshot(path=shots / "3_home.png")


def test_a_run_opens_on_its_model_card_and_chinese_names_read(served, page):
    page.goto(served["pages"]["runs"])
    page.get_by_role("link", name=re.compile(r"^upgrade reach")).first.click()
    page.get_by_role("tab", name="Artifacts").click()
    main = page.locator("main")
    card_dir = main.get_by_text("0_model_card", exact=True).first
    card_dir.wait_for()
    listing = main.inner_text()
    assert listing.index("0_model_card") < listing.index("evaluation")  # first in the list
    card_dir.click()
    cards = main.get_by_text("model_card.html", exact=True)
    cards.nth(1).wait_for()  # the folder's card listed above the top-level copy
    cards.first.click()
    frame = _artifact_frame(page, "Model card: ")
    assert "Model card: review-upgrade" in frame.inner_text("body")
    page.screenshot(path=served["shots"] / "4_card.png")

    page.goto(served["pages"]["runs"])
    page.get_by_role("link", name=re.compile(r"^groups ")).first.click()
    page.get_by_role("tab", name="Artifacts").click()
    page.locator("main").get_by_text("names.html", exact=True).first.click()
    text = _artifact_frame(page, "name_zh").inner_text("body")
    names = served["groups"].names
    assert names["name_zh"].str.contains(r"[\u4e00-\u9fff]").all()
    for zh in names["name_zh"]:
        assert zh in text  # decoded as UTF-8 by the browser, drawn with CJK fonts
    page.screenshot(path=served["shots"] / "5_names.png")


def test_the_registry_lists_both_models(served, page):
    page.goto(served["pages"]["registry"])
    for model in ("review-groups", "review-upgrade"):
        page.get_by_role("link", name=model).first.wait_for()
    _in_model_training(page)
    page.screenshot(path=served["shots"] / "6_registry.png")


def test_no_customer_id_in_any_file_the_server_holds(served, tmp_path):
    """Every artifact of every run and every logged model (pickles and input examples
    included), listed through the server segments ui runs: no panel id in any of them."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=served["base"])
    experiments = [e.experiment_id for e in client.search_experiments()]
    roots = [
        Path(client.download_artifacts(r.info.run_id, "", str(tmp_path / r.info.run_id)))
        for r in client.search_runs(experiments)
    ]
    for model in client.search_logged_models(experiment_ids=experiments):
        roots.append(
            Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=model.artifact_location,
                    dst_path=str(tmp_path / model.model_id),
                    tracking_uri=served["base"],
                )
            )
        )
    files = [f for root in roots for f in root.rglob("*") if f.is_file()]
    assert len(roots) >= 4 and any(f.name == "model.pkl" for f in files)
    assert any(f.name == "input_example.json" for f in files)
    # As bytes anywhere, not as words: a pickled text column is one run of characters.
    blob = b"\n".join(f.read_bytes() for f in files)
    leaked = {i for i in served["ids"] if i.encode() in blob}
    assert not leaked, sorted(leaked)[:5]


def _artifact_frame(page, text: str):
    """The frame in which the UI shows an HTML artifact, once it holds ``text``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for frame in page.frames[1:]:
            with contextlib.suppress(PlaywrightError):  # a frame replaced meanwhile
                if text in frame.inner_text("body", timeout=1_000):
                    return frame
        page.wait_for_timeout(300)  # not time.sleep: Playwright's events arrive meanwhile
    page.screenshot(path=Path(os.environ.get("TMPDIR", "/tmp")) / "no_artifact_frame.png")
    pytest.fail(f"no artifact frame shows {text!r}; frames: {[f.url for f in page.frames]}")
