#!/usr/bin/env bash
# Create (idempotently) the venv holding the peer, nnU-Net v2, for benchmarking.
#
#   bash benchmarks/peer/setup_peer.sh
#
# Result: benchmarks/_peer/venv (git-ignored). Re-running is a no-op once the
# venv imports nnunetv2 and torch==2.13.0 (the CPU build pip takes from the
# machine's local wheel folder; do NOT ask for any other torch version, that
# would download a multi-GB CUDA build).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEER="$ROOT/benchmarks/_peer"
VENV="$PEER/venv"
PY="$VENV/bin/python"
TORCH_VERSION="2.13.0"

mkdir -p "$PEER"

if [ -x "$PY" ] && "$PY" - <<PYEOF 2>/dev/null
import torch, nnunetv2, sys
sys.exit(0 if torch.__version__.split('+')[0] == "$TORCH_VERSION" else 1)
PYEOF
then
    echo "[setup_peer] venv already OK: $VENV"
else
    echo "[setup_peer] creating venv at $VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install --upgrade pip wheel setuptools >/dev/null || true
    # torch first, pinned, so nnunetv2's 'torch>=...' requirement is already met
    "$PY" -m pip install "torch==$TORCH_VERSION"
    "$PY" -m pip install "torch==$TORCH_VERSION" nnunetv2
fi

"$PY" - <<'PYEOF'
import importlib.metadata as md, torch
print("[setup_peer] torch", torch.__version__, "| nnunetv2", md.version("nnunetv2"),
      "| threads", torch.get_num_threads())
try:
    import torchvision  # noqa: F401
    print("[setup_peer] torchvision importable:", torchvision.__version__)
except Exception as e:  # expected: no CPU torchvision build on this machine
    print("[setup_peer] torchvision NOT importable (expected here):", type(e).__name__, str(e)[:200])
PYEOF
