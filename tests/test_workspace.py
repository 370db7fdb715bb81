"""Install once, assess in your own workspace: the wheel carries every resource, ``dsarisk init``
scaffolds a workspace, every command finds it like git, and nothing reads the tool's checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import nbformat
import pytest
import yaml

from dsarisk import paths
from dsarisk.cli import main
from dsarisk.exceptions import InputError
from dsarisk.methodology import load_methodology
from dsarisk.scaffold import init_workspace, prepare_notebooks

REPO = Path(__file__).resolve().parents[1]
DEPS = Path(sysconfig.get_paths()["purelib"])  # the project's environment
MODULES = [{"id": "payments-fraud", "title": "Payments fraud", "short": "PF"},
           {"id": "hate-speech", "title": "Hate speech", "short": "HS"},
           {"id": "minors-safety", "title": "Safety of minors", "short": "MS"}]
# Every process of the installed tool records each file or folder it opens under the checkout
# (its own environment aside: the tool's dependencies come from there, not the tool).
AUDIT = '''import os, sys
_ROOT, _ENV, _LOG = (os.environ.get(k, "") for k in ("DSARISK_AUDIT_ROOT", "DSARISK_AUDIT_ENV", "DSARISK_AUDIT_LOG"))
def _hook(event, args):
    if _ROOT and event in ("open", "os.listdir", "os.scandir") and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(args[0]))
        if (path + os.sep).startswith(_ROOT + os.sep) and not path.startswith(_ENV + os.sep):
            with open(_LOG, "a", encoding="utf-8") as log:
                log.write(f"{os.getpid()} {event} {path}\\n")
sys.addaudithook(_hook)
'''


@dataclass
class Tool:
    """dsarisk installed from its wheel into a virtual environment of its own."""

    bin: Path
    audit_log: Path

    def run(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in (paths.ENV_VAR, "PYTHONPATH", "VIRTUAL_ENV")}
        env.update(JUPYTER_PATH=str(Path(sys.prefix) / "share" / "jupyter"),  # the dependencies' data files
                   DSARISK_AUDIT_ROOT=str(REPO), DSARISK_AUDIT_ENV=str(Path(sys.prefix).resolve()),
                   DSARISK_AUDIT_LOG=str(self.audit_log), PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}")
        return subprocess.run([str(self.bin / "dsarisk"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=600)

    def checkout_reads(self) -> list[str]:
        return self.audit_log.read_text(encoding="utf-8").splitlines() if self.audit_log.exists() else []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a clean copy of the checkout (a build inside it would reuse its
    ``build/`` folder, where files deleted since can linger)."""
    source = tmp_path_factory.mktemp("source") / "dsarisk"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "reports", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)],
                   check=True, capture_output=True)
    return next(out.glob("dsarisk-*.whl"))


@pytest.fixture(scope="module")
def tool(tmp_path_factory, wheel) -> Tool:
    """The wheel installed into a new environment whose dependencies resolve from the project's
    (a ``.pth`` line, and ``JUPYTER_PATH`` for their data files such as nbconvert's templates:
    installing them all again would take minutes), with the audit hook."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "zz_dependencies.pth").write_text(f"{DEPS}\n")
    (site / "sitecustomize.py").write_text(AUDIT)
    return Tool(bin=venv / "bin", audit_log=Path(os.devnull))


@pytest.fixture
def audited(tool, tmp_path) -> Tool:
    """The installed tool, recording this test's reads of the checkout apart."""
    return replace(tool, audit_log=tmp_path / "opened.log")


def _fill(workspace: Path, year: int) -> None:
    """What an analyst does after ``dsarisk init``: every TO UPDATE replaced, ratings judged."""
    assessment_path = workspace / f"data/{year}/assessment.yaml"
    assessment = yaml.safe_load(assessment_path.read_text())
    assessment["period"] = {"start": f"{year - 1}-07-01", "end": f"{year}-06-30"}
    assessment_path.write_text(yaml.safe_dump(assessment, sort_keys=False))
    for (module, levels) in zip(MODULES, [("Likely", "High", "Moderate"), ("Possible", "Very high", "Strong"),
                                          ("Unlikely", "Medium", "Weak")], strict=True):
        path = workspace / f"data/{year}/{module['id']}.yaml"
        data = yaml.safe_load(path.read_text())
        data["definition"] = f"How {module['title'].lower()} harms users of the platform."
        for rating, level in zip(("probability", "severity", "effectiveness"), levels, strict=True):
            data[rating] = {"level": level, "rationale": f"{rating} judged by the risk team"}
        path.write_text(yaml.safe_dump(data, sort_keys=False))


def _modules_file(folder: Path, modules: object = MODULES) -> Path:
    path = folder / "modules.yaml"
    path.write_text(yaml.safe_dump(modules, sort_keys=False))
    return path


# -- the installed tool ------------------------------------------------------------------------
def test_wheel_carries_the_tools_resources_and_no_sample_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"dsarisk/_notebooks/00_summary.ipynb", "dsarisk/_notebooks/90_explore.ipynb",
                "dsarisk/_methodology/year1.yaml", "dsarisk/_methodology/year2.yaml",
                "dsarisk/_sor/categories.yaml", "dsarisk/_sor/schema.yaml",
                "dsarisk/templates/dsarisk/index.html.j2", "dsarisk/templates/workspace/README.md"}
    assert expected <= names
    assert not [n for n in names if "sample" in n or n.endswith(".zip") or "/20" in n], "sample data in the wheel"


def test_every_package_of_the_library_is_declared_for_the_wheel():
    declared = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO / "lib").parts) for p in (REPO / "lib").rglob("__init__.py")}
    assert found <= declared, "add the new package to [tool.setuptools] packages in pyproject.toml"


def test_the_audit_sees_any_read_of_the_checkout(audited, tmp_path):
    assert audited.run("validate", "--methodology", str(REPO / "data/methodology/year2.yaml"), cwd=tmp_path).returncode == 0
    assert [line for line in audited.checkout_reads() if line.endswith("data/methodology/year2.yaml")]


def test_installed_tool_scaffolds_and_lists_what_is_missing_without_the_checkout(audited, tmp_path):
    tool = audited
    status = tool.run("init", "acme", "--platform", "Acme Market", "--year", "2025", "--methodology", "year2",
                      "--modules", str(_modules_file(tmp_path)), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    workspace = tmp_path / "acme"
    assert yaml.safe_load((workspace / "data/2025/assessment.yaml").read_text())["modules"] == MODULES
    assert (workspace / "data/methodology/year2.yaml").read_bytes() == (REPO / "data/methodology/year2.yaml").read_bytes()
    assert "/reports/" in (workspace / ".gitignore").read_text()
    assert "dsarisk run --year 2025" in (workspace / "README.md").read_text()
    missing = tool.run("run", "--no-progress", cwd=workspace / "data" / "2025")  # from a sub-folder
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    assert "value(s) still marked TO UPDATE" in missing.stderr
    assert "payments-fraud.yaml: definition, probability.level" in missing.stderr
    outside = tool.run("run", cwd=tmp_path)
    assert outside.returncode == 2
    assert "dsarisk init" in outside.stderr and "--workspace" in outside.stderr
    assert tool.checkout_reads() == []


def test_installed_tool_writes_the_report_of_a_filled_workspace_without_the_checkout(audited, tmp_path):
    tool = audited
    assert tool.run("init", "acme", "--platform", "Acme Market", "--year", "2025", "--methodology", "year2",
                    "--modules", str(_modules_file(tmp_path)), cwd=tmp_path).returncode == 0
    workspace = tmp_path / "acme"
    _fill(workspace, 2025)
    done = tool.run("run", "--no-progress", "--jobs", "2", cwd=workspace / "data")
    assert done.returncode == 0, done.stderr
    report = (workspace / "reports/2025/report.html").read_text()
    assert all(module["title"] in report for module in MODULES)
    assert tool.checkout_reads() == []


# -- found like git ----------------------------------------------------------------------------
@pytest.fixture
def sample_workspace(tmp_path, monkeypatch) -> Path:
    """A workspace made by ``dsarisk init``, no workspace chosen by the environment."""
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    return init_workspace(tmp_path / "ws", platform="Acme", year=2025, methodology="year2")


def test_found_from_a_sub_folder_and_named_by_option_or_environment(sample_workspace, tmp_path, monkeypatch):
    monkeypatch.chdir(sample_workspace / "data" / "2025")
    assert paths.workspace().root == sample_workspace
    assert paths.data_dir() == sample_workspace / "data"
    assert paths.cache_dir("sor") == sample_workspace / "build" / "cache" / "sor"
    monkeypatch.chdir(tmp_path)
    assert paths.find_workspace() is None and paths.cache_dir("sor") is None
    with pytest.raises(paths.WorkspaceError, match="dsarisk init DIR.*--workspace DIR"):
        paths.reports_dir()
    monkeypatch.setenv(paths.ENV_VAR, str(sample_workspace))
    assert paths.reports_dir() == sample_workspace / "reports"


@pytest.mark.parametrize("where", ["before", "after"])
def test_workspace_option_before_or_after_the_command(sample_workspace, tmp_path, monkeypatch, capsys, where):
    monkeypatch.chdir(tmp_path)
    option = ["--workspace", str(sample_workspace)]
    command = ["compare", "--years", "2024", "2025"]
    assert main([*option, *command] if where == "before" else [*command, *option]) == 2
    error = capsys.readouterr().err
    assert "no data for year 2024 (years with data: 2025)" in error and str(sample_workspace / "data") in error


@pytest.mark.parametrize("marker, field", [
    ("platform: [unclosed\n", "not valid YAML"),
    ("folders: {data: /etc}\n", "folders.data"),
    ("folders: {secrets: x}\n", "field 'folders'"),
    ("- a list\n", "field 'folders'"),
])
def test_a_broken_marker_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys, marker, field):
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    (tmp_path / paths.MARKER).write_text(marker)
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(tmp_path / paths.MARKER) in error and field in error


def test_the_workspace_copy_of_a_methodology_wins_over_the_preset(sample_workspace, monkeypatch):
    copy = sample_workspace / "data/methodology/year2.yaml"
    copy.write_text(copy.read_text().replace("name: Year 2 (2024)", "name: Acme's own year 2"))
    monkeypatch.chdir(sample_workspace)
    assert load_methodology("year2").name == "Acme's own year 2"
    monkeypatch.chdir(sample_workspace.parent)
    assert load_methodology("year2").name == "Year 2 (2024)"


# -- dsarisk init --------------------------------------------------------------------------------
def test_init_refuses_to_overwrite(sample_workspace, tmp_path):
    with pytest.raises(InputError, match="never overwrites"):
        init_workspace(sample_workspace, platform="Other", year=2026, methodology="year1")
    clash = tmp_path / "clash"
    (clash / "data" / "2025").mkdir(parents=True)
    (clash / "README.md").write_text("mine")
    with pytest.raises(InputError, match="would overwrite README.md"):
        init_workspace(clash, platform="Acme", year=2025, methodology="year2")
    assert (clash / "README.md").read_text() == "mine" and not (clash / paths.MARKER).exists()


def test_init_into_an_existing_folder_keeps_what_is_there(tmp_path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    root = init_workspace(tmp_path / "repo", platform="Acme", year=2025, methodology="year2")
    assert (root / ".git").is_dir() and (root / "data/2025/example-risk.yaml").is_file()
    assert oct((root / "data").stat().st_mode & 0o777) != "0o700"


@pytest.mark.parametrize("modules, message", [
    ({"id": "a"}, "expected a YAML list"),
    ([], "expected a YAML list"),
    ([{"id": "../../etc/passwd", "title": "x"}], "is not an id"),
    ([{"id": "Bad Id", "title": "x"}], "is not an id"),
    ([{"id": "a", "title": "A"}, {"id": "a", "title": "B"}], "id(s) declared more than once: a"),
    ([{"id": "a", "title": "A", "short": "X"}, {"id": "b", "title": "B", "short": "X"}], "short(s) declared"),
    ([{"id": "a"}], "expected {id, title, short}"),
    ([{"id": "a", "title": "A", "owner": "me"}], "expected {id, title, short}"),
    ([{"id": "a", "title": "two\nlines"}], "one line of text"),
    ([{"id": "a", "title": 42}], "one line of text"),
    ([{"id": "a", "title": "A"}] * 61, "expected a YAML list"),
])
def test_init_rejects_a_bad_modules_file_in_one_line(tmp_path, capsys, modules, message):
    status = main(["init", str(tmp_path / "ws"), "--platform", "Acme", "--year", "2025", "--methodology", "year2",
                   "--modules", str(_modules_file(tmp_path, modules))])
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1 and message in error
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("option, value, message", [
    ("--year", "25", "not a four-digit year"),
    ("--platform", " ", "one line of text"),
    ("--methodology", "no-such-preset", "no-such-preset"),
])
def test_init_rejects_bad_arguments(tmp_path, capsys, option, value, message):
    argv = {"--platform": "Acme", "--year": "2025", "--methodology": "year2"} | {option: value}
    status = main(["init", str(tmp_path / "ws"), *[w for pair in argv.items() for w in pair]])
    assert status == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "ws").exists()


def test_init_copies_a_methodology_file_and_validates_it_first(tmp_path, year2_copy, write_yaml):
    year2_copy["name"] = "Acme method"
    root = init_workspace(tmp_path / "ws", platform="Acme", year=2025, methodology=write_yaml(year2_copy, "acme.yaml"))
    assert load_methodology(root / "data/methodology/acme.yaml").name == "Acme method"
    assert yaml.safe_load((root / "data/2025/assessment.yaml").read_text())["methodology"] == "acme"
    del year2_copy["severity"]
    with pytest.raises(InputError, match="severity"):
        init_workspace(tmp_path / "ws2", platform="Acme", year=2025, methodology=write_yaml(year2_copy, "bad.yaml"))


# -- JupyterLab's notebooks -----------------------------------------------------------------------
def test_lab_copies_the_tools_notebooks_set_to_the_latest_year_and_keeps_an_analysts(sample_workspace):
    workspace = paths.Workspace.read(sample_workspace)
    copies = prepare_notebooks(workspace)
    assert {c.name for c in copies} == {p.name for p in paths.tool_notebooks().glob("*.ipynb")}
    copy = nbformat.read(workspace.notebooks / "90_explore.ipynb", as_version=4)
    parameters = next(c for c in copy.cells if "parameters" in c.metadata.get("tags", []))
    assert "year = 2025\n" in parameters.source
    assert "jupytext" not in copy.metadata, "a paired copy would write a .py beside it in JupyterLab"
    edited = workspace.notebooks / "00_summary.ipynb"
    edited.write_text(edited.read_text().replace("summary", "my summary"))
    assert prepare_notebooks(workspace) == []
    assert "my summary" in edited.read_text()


def test_the_projects_own_checkout_is_its_samples_workspace():
    sample = paths.Workspace.read(REPO)
    assert sample.data == REPO / "data" and prepare_notebooks(sample) == []


def test_the_database_notebook_reads_the_workspaces_dumps_or_says_how_to_fetch_them(sample_workspace, monkeypatch):
    """A new workspace has no dump (the sample's is the checkout's): one message saying how to
    get some; once a day is in ``data/sor/dumps``, that is what the notebook profiles."""
    from dsarisk.sources.sor_schema import SorError
    from dsarisk.sources.sor_synth import synthesize
    from dsarisk.workbook import open_sor

    monkeypatch.setenv(paths.ENV_VAR, str(sample_workspace))
    monkeypatch.setenv("DSARISK_CACHE_DIR", str(sample_workspace / "build" / "cache"))
    with pytest.raises(SorError, match=r"data/sor: no statements-of-reasons dump here: fetch some with `dsarisk sor "
                                       r"download .*--to data/sor/dumps`, or give sor_path"):
        open_sor(platform="Acme")
    synthesize(sample_workspace / "data" / "sor" / "dumps", rows=300, days=1)
    book = open_sor(platform="Acme")
    assert [f["name"] for f in book.result.provenance["files"]] == [
        p.name for p in sorted((sample_workspace / "data" / "sor" / "dumps").glob("*.zip"))]
