"""numba's compiled kernels, when the package is imported from a shipped zip
(:mod:`moviegraph.numba_cache`): a second application, whose zip lies in another folder,
loads them from the cache instead of compiling them again; changed code does not."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from moviegraph.package import build_zip

# Calls a small kernel of the zip's package; prints numba's compile stats as JSON.
PROBE = """
import json
import moviegraph.walks.rng as rng
assert ".zip" in rng.__file__, rng.__file__
rng.stream_uniforms(1, 2, 3, 4)
stats = rng.stream_uniforms.stats
print(json.dumps({"path": stats.cache_path, "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""


def _probe(zip_path: Path, cache: Path) -> dict:
    # Only the zip on the path, as on an executor: not the checkout's lib/.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(zip_path), NUMBA_CACHE_DIR=str(cache))
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          env=env, cwd=zip_path.parent, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_zip_in_another_folder_reuses_the_compiled_kernels(tmp_path):
    built = build_zip(tmp_path / "dist" / "moviegraph.zip")
    cache = tmp_path / "numba-cache"
    first, second = tmp_path / "app-1", tmp_path / "app-2"
    for app in (first, second):
        app.mkdir()
        shutil.copy2(built, app / built.name)

    compiled = _probe(first / built.name, cache)
    assert compiled["misses"] == 1 and compiled["hits"] == 0
    assert Path(compiled["path"]).parent == cache
    loaded = _probe(second / built.name, cache)
    assert loaded == {**compiled, "hits": 1, "misses": 0}

    # Another version of the package (one module changed) compiles into its own folder.
    changed = tmp_path / "app-3" / built.name
    changed.parent.mkdir()
    with zipfile.ZipFile(built) as src, zipfile.ZipFile(changed, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "moviegraph/walks/batches.py":
                data += b"\n# changed\n"
            dst.writestr(item, data)
    other = _probe(changed, cache)
    assert other["misses"] == 1 and other["path"] != compiled["path"]


def test_every_module_with_cached_kernels_installs_the_locator_first():
    """A module whose ``@njit(cache=True)`` kernels are defined before
    ``numba_cache.install()`` ran would cache by the zip's path again."""
    from moviegraph.config import PROJECT_ROOT

    kernel = re.compile(r"^@njit\([^)]*cache=True", re.MULTILINE)
    modules = [p for p in (PROJECT_ROOT / "lib" / "moviegraph").rglob("*.py")
               if kernel.search(p.read_text())]
    assert len(modules) >= 6
    for path in modules:
        text = path.read_text()
        assert "numba_cache.install()" in text, path
        assert text.index("numba_cache.install()") < kernel.search(text).start(), path
