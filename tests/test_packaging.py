"""The wheel: it carries the model and the stock policies, and works installed on its own."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL_FILES = ("refusal-classifier.int8.onnx", "tokenizer.json", "config.json", "SHA256SUMS")

pytestmark = pytest.mark.integration


def test_pyproject_declares_entry_point_and_bundles() -> None:
    """pyproject maps the guardrail command and force-includes model and policies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"] == {"guardrail": "guardrail.cli:main"}
    assert project["project"]["requires-python"] == ">=3.11"
    include = project["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include == {
        "onnx_models": "guardrail/_bundled/onnx_models",
        "policies": "guardrail/_bundled/policies",
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (ROOT / "onnx_models" / MODEL_FILES[0]).is_file():
        pytest.skip("bundled model onnx_models/refusal-classifier.int8.onnx is not built yet")
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("hatchling is not installed (pip install hatchling); builds run offline")
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation: tests must not reach a package index.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
        timeout=120,
        cwd=out,
    )
    (built,) = out.glob("guardrail-*.whl")
    return built


def test_wheel_contains_model_tokenizer_checksums_and_policies(wheel: Path) -> None:
    """The wheel holds the model, tokenizer, SHA256SUMS and every stock policy."""
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in MODEL_FILES:
        assert f"guardrail/_bundled/onnx_models/{name}" in names
    policies = sorted(p.name for p in (ROOT / "policies").glob("*.yaml"))
    assert "clinical.yaml" in policies
    for name in policies:
        assert f"guardrail/_bundled/policies/{name}" in names
    assert "guardrail/cli/__init__.py" in names
    assert not any(n.startswith(("tests/", "training_runs/", "benchmarks/")) for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "guardrail = guardrail.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_classifies_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """Installed into a fresh venv, `guardrail classify` finds its bundled model."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    # The dependencies come from the environment running the tests (a path file, not
    # --system-site-packages: from inside a venv that would be the base interpreter's, which
    # need not have them); the wheel itself is the only install. Directories named in a path
    # file do not get their own path files run, so the checkout's editable install stays out.
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(target, "_test_dependencies.pth").write_text("\n".join(sorted(here)) + "\n")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        timeout=120,
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(venv / "bin" / "guardrail"), "classify", "I'm sorry, but I can't help with that."],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"verdict": "full_refusal"' in result.stdout.replace('":"', '": "')
    where = subprocess.run(
        [str(python), "-c", "import guardrail._resources as r; print(r.bundled_model_dir())"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=True,
    )
    assert str(venv) in where.stdout
