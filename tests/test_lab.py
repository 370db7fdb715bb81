"""JupyterLab, for real: every notebook runs top to bottom unattended with its default
parameters, and in a browser the what-if sliders redraw the heatmaps."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from dsarisk import paths

REPO = Path(__file__).resolve().parents[1]
WIDGET = "application/vnd.jupyter.widget-view+json"
pytestmark = pytest.mark.notebook


def _distinct_notebooks() -> list[str]:
    """The tool's notebooks, one of each set that differ only by their parameters cell."""
    first: dict[tuple[str, ...], str] = {}
    for path in sorted(paths.tool_notebooks().glob("*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        first.setdefault(tuple(c.source for c in cells if "parameters" not in c.metadata.get("tags", [])), path.name)
    return list(first.values())


@pytest.mark.parametrize("name", _distinct_notebooks())
def test_every_notebook_runs_unattended_as_it_is(name):
    """As ``jupyter nbconvert --execute`` runs it: no parameter given, no widget to wait on."""
    notebook = nbformat.read(paths.tool_notebooks() / name, as_version=4)
    NotebookClient(notebook, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if WIDGET in o.get("data", {})], "a widget in an unattended run"
    assert [o for o in outputs if "image/png" in o.get("data", {})], "no figure"
    if name == "90_explore.ipynb":
        assert "Run this notebook in JupyterLab for what-if sliders" in str(notebook.cells[-1].outputs)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """``dsarisk lab`` on a workspace holding a copy of the sample, on 127.0.0.1 with a token;
    yields the exploration notebook's URL."""
    workspace = tmp_path / "ws"
    for name in ("2023", "2024", "methodology", "sor"):
        shutil.copytree(REPO / "data" / name, workspace / "data" / name)
    shutil.copy(REPO / paths.MARKER, workspace / paths.MARKER)
    port, token = _free_port(), "dsarisk-test-token"
    env = {k: v for k, v in os.environ.items() if k != paths.ENV_VAR}
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"), JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"))
    server = subprocess.Popen(
        [sys.executable, "-m", "dsarisk.cli", "--workspace", str(workspace), "lab", "--", "--no-browser",
         "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"),
        start_new_session=True)
    try:
        deadline = time.monotonic() + 120  # a loaded 2-core machine takes a while
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/lab/tree/notebooks/90_explore.ipynb?token={token}"
    finally:  # the server and its kernels: nothing may outlive the test
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


@pytest.fixture
def browser():
    """Debian's chromium, headless, through chromium-driver."""
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("chromium or chromium-driver missing: .ci/run installs them "
                    "(apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    session = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    try:
        yield session
    finally:
        session.quit()


def test_whatif_sliders_redraw_the_heatmaps_in_jupyterlab(lab, browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 120)
    browser.get(lab)
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")))
    time.sleep(2)  # a loaded machine may ask which kernel to start: the notebook's own
    for accept in browser.find_elements(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept"):
        accept.click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']")))
    browser.find_element(By.XPATH, "//li[contains(@class, 'lm-MenuBar-item')][.//div[text()='Run']]").click()
    wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "li[data-command='runmenu:run-all']"))).click()

    def heatmap_sources(b) -> list[str]:
        """Read in one script: the output widget replaces its images while it redraws, so an
        element found by one WebDriver call can be stale by the next."""
        return b.execute_script("return Array.from(document.querySelectorAll('.widget-output img'), i => i.src)")

    try:
        wait.until(lambda b: len(heatmap_sources(b)) >= 2)
    except TimeoutException:
        browser.save_screenshot(str(tmp_path / "lab.png"))
        errors = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output[data-mime-type*='error'], "
                                                                         ".jp-OutputArea-output[data-mime-type*='stderr']")]
        pytest.fail(f"no what-if heatmaps (screenshot {tmp_path / 'lab.png'}); errors shown: {errors}")
    before = heatmap_sources(browser)[:2]
    handles = (By.CSS_SELECTOR, ".widget-slider .noUi-handle")
    assert len(browser.find_elements(*handles)) == 3, "rate, severity and effectiveness sliders"
    for index, offset in ((0, 600), (1, -600)):  # rate to the top band, severity to the lowest
        def drag(b, index=index, offset=offset) -> bool:
            handle = b.find_elements(*handles)[index]  # found afresh: a redraw may have replaced it
            b.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
            ActionChains(b).click_and_hold(handle).move_by_offset(offset, 0).release().perform()
            return True
        WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(drag)
    WebDriverWait(browser, 30).until(lambda b: heatmap_sources(b)[:2] != before)
