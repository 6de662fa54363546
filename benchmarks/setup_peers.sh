#!/usr/bin/env bash
# Create the benchmark-only venv holding peer implementations (PecanPy).
# PecanPy 2.0.9 pins numpy<2 (via nptyping), so it can never live in the project's .venv;
# benchmarks/walk_kernel.py runs it in this interpreter through a subprocess.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BENCH_VENV:-$ROOT/.venv-bench}"
PYTHON="${PYTHON:-python3}"

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import pecanpy, psutil" 2>/dev/null; then
    echo "peer venv ready: $VENV"
    exit 0
fi

"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "pecanpy==2.0.9" "psutil>=5.9"
"$VENV/bin/python" -c "import pecanpy, numpy, numba; print('pecanpy ok; numpy', numpy.__version__, 'numba', numba.__version__)"
echo "peer venv ready: $VENV"
