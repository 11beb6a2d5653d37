"""The set-up says what to install when a prerequisite is missing, instead of failing obscurely."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.settings import ROOT


def test_missing_python_3_10_is_named_with_what_to_install(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Only the application's Python and the basic tools: no python3.10, no pyenv, no uv.
    app_python = Path(os.path.realpath(sys.executable))
    base_python = Path(
        subprocess.check_output([app_python, "-c", "import sys; print(sys._base_executable)"], text=True).strip()
    )
    (bin_dir / "python3.11").symlink_to(os.path.realpath(base_python))
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup.sh")],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "NEET_CACHE_DIR": str(_cache())},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0
    assert "Python 3.10 is needed for Rasa 3.6" in result.stderr
    assert "pyenv install 3.10.13" in result.stderr


def _cache() -> Path:
    """The cache the current environment came from, so the application environment is not rebuilt."""
    return Path(os.path.realpath(ROOT / ".venv")).parent
