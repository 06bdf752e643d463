"""A wheel built from the checkout runs `saematch` from any folder (what `pip install git+URL`
or a cluster image does): conf/ ships with it, and it installs no top-level `experiments`.

The wheel goes into a fresh venv with --no-deps; the dependencies come from this environment
through a path entry (they are not what is tested; `make wheel-check` installs them for real).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def sh(*args, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command; on failure the assertion shows its output."""
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{' '.join(map(str, args))}\n{out.stdout}\n{out.stderr}"
    return out


def dependency_dirs() -> list[str]:
    """This interpreter's library folders (site-packages and what its .pth files add), without
    the checkout: the new venv finds the dependencies there, and saematch only in the wheel."""
    dirs = [sysconfig.get_paths()["purelib"], *sys.path]
    keep = [d for d in dict.fromkeys(dirs) if d and Path(d).is_dir()]
    venv_root = Path(sys.prefix).resolve()  # may sit inside the checkout (.venv): keep it

    def source(d: str) -> bool:
        r = Path(d).resolve()
        return r.is_relative_to(REPO) and not r.is_relative_to(venv_root)

    return [d for d in keep if not source(d)]


@pytest.mark.skipif(not (REPO / "setup.py").is_file(), reason="needs the source checkout")
def test_a_wheel_runs_saematch_from_an_unrelated_folder(tmp_path):
    dist, env_dir, elsewhere = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    # an in-tree build reuses build/lib, whose copies can be stale after a branch switch or a
    # rename (seen: a module moved, the old copy shipped); build/ is ignored output
    shutil.rmtree(REPO / "build", ignore_errors=True)
    sh(*build, "-w", dist, REPO, cwd=tmp_path)
    (wheel,) = dist.glob("saematch-*.whl")
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    site = Path(
        sh(
            py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
        ).stdout.strip()
    )
    (site / "zz_dependencies.pth").write_text("\n".join(dependency_dirs()) + "\n")
    sh(
        sys.executable,
        "-m",
        "pip",
        "--python",
        py,
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        wheel,
        cwd=tmp_path,
    )

    assert {"saematch", "saematch_experiments", "saematch_conf"} <= {p.name for p in site.iterdir()}
    assert not (site / "experiments").exists() and not (site / "conf").exists()
    assert (site / "saematch_conf" / "experiment" / "ground_truth.yaml").is_file()
    assert (site / "saematch_conf" / "matching" / "solver" / "auto.yaml").is_file()

    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["SAEMATCH_CACHE"] = str(tmp_path / "cache")
    where = sh(
        py, "-c", "import saematch_conf; print(saematch_conf.__file__)", cwd=elsewhere, env=env
    )
    assert Path(where.stdout.strip()).is_relative_to(site)  # the wheel's copy, not the checkout
    # the default composes, and an experiment and a solver named on the command line resolve
    # inside the wheel too (conf/experiment/, conf/matching/solver/)
    args = ["dry_run=true", "experiment=mse_curves", "matching/solver=scipy", "logger=none"]
    out = sh(env_dir / "bin" / "saematch", *args, cwd=elsewhere, env=env)
    assert "name: mse_curves" in out.stdout and "ScipySolver" in out.stdout
