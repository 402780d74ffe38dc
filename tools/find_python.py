"""Find a working interpreter of one Python version: ``python -m tools.find_python 3.12``.

Prints its path and exits 0, or prints why not to stderr and exits 1. Used by ``make test-all``
(the suite on the Python the Lambdas and workers run in production) and by the Lambda import
proof (tests/infra/test_artifacts.py). A ``python3.12`` on PATH is not enough: a pyenv shim
answers for a version that is installed but not selected, and fails when run; so each candidate
is run and must report the version asked for. Candidates: ``python3.12`` on PATH, then
interpreters installed by pyenv (``$PYENV_ROOT/versions/3.12.*``) and uv
(``~/.local/share/uv/python/cpython-3.12.*``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path


def _candidates(version: str) -> Iterator[Path]:
    on_path = shutil.which(f"python{version}")
    if on_path:
        yield Path(on_path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    yield from sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True)
    uv_root = Path.home() / ".local" / "share" / "uv" / "python"
    yield from sorted(uv_root.glob(f"cpython-{version}.*/bin/python{version}"), reverse=True)


def reports_version(python: Path, version: str) -> bool:
    """Whether ``python`` runs and is ``version`` (a failing shim or another version is not)."""
    try:
        probe = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return probe.returncode == 0 and probe.stdout.strip() == version


def find_python(version: str) -> Path | None:
    """The first candidate interpreter that really is ``version`` ("3.12"), or None."""
    if not re.fullmatch(r"3\.\d+", version):
        raise ValueError(f"version must look like 3.12, not {version!r}")
    return next((p for p in _candidates(version) if reports_version(p, version)), None)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m tools.find_python VERSION (e.g. 3.12)", file=sys.stderr)
        return 2
    try:
        found = find_python(args[0])
    except ValueError as exc:
        print(f"find_python: {exc}", file=sys.stderr)
        return 2
    if found is None:
        print(f"no working python{args[0]} on PATH or under pyenv or uv", file=sys.stderr)
        return 1
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
