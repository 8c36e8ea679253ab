"""Untrusted files (issue 9): the package never unpickles. An audit of autounet/ by syntax tree: no pickle-like module
is used to load or dump, every ``np.load``/``np.save`` passes ``allow_pickle=False``, every ``torch.load`` passes
``weights_only=True``, and ``np.savez`` (which pickles object arrays silently) is only called by the guarded helper
``autounet.jsonio.save_npz``."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from autounet.jsonio import save_npz

PACKAGE = Path(__file__).resolve().parents[1] / "autounet"
#: Modules that serialise arbitrary Python objects (loading runs code).
PICKLE_LIKE = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal", "jsonpickle"}
#: The only use of ``pickle`` allowed: naming the exception torch raises when ``weights_only=True`` refuses a file.
ALLOWED_PICKLE_ATTRIBUTES = {"UnpicklingError"}
#: Where ``np.savez``/``np.savez_compressed`` may be called (the helper that refuses object arrays first).
SAVEZ_ALLOWED = {("jsonio.py", "save_npz")}


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else "<not a constant>"
    return None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def audit(path: Path, root: Path = PACKAGE) -> list[str]:
    """Pickle uses in one source file, as ``file:line: what`` strings."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    name = path.relative_to(root).as_posix()
    found = []
    functions = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for child in ast.walk(node):
                functions.setdefault(id(child), node.name)
    for node in ast.walk(tree):
        where = f"{name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLE_LIKE - {"pickle"}]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLE_LIKE:
            found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "pickle":
            if node.attr not in ALLOWED_PICKLE_ATTRIBUTES:
                found.append(f"{where}: pickle.{node.attr}")
        elif isinstance(node, ast.Call):
            called = _dotted(node.func)
            if called in ("np.load", "numpy.load", "np.save", "numpy.save") and _keyword(node, "allow_pickle") is not False:
                found.append(f"{where}: {called} without allow_pickle=False")
            elif called in ("torch.load",) and _keyword(node, "weights_only") is not True:
                found.append(f"{where}: torch.load without weights_only=True")
            elif called.split(".")[-1] in ("savez", "savez_compressed") and called.startswith(("np.", "numpy.")):
                if (path.name, functions.get(id(node))) not in SAVEZ_ALLOWED:
                    found.append(f"{where}: {called} outside autounet.jsonio.save_npz (object arrays would be pickled)")
            elif called.endswith(("read_pickle", "to_pickle")):
                found.append(f"{where}: {called}")
    return found


def test_the_package_never_pickles():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50  # the audit really looked at the package
    found = [problem for path in files for problem in audit(path)]
    assert not found, "pickle use in autounet/:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source, problem",
    [
        ("import pickle\npickle.loads(b'')", "pickle.loads"),
        ("import joblib", "import joblib"),
        ("import numpy as np\nnp.load('x.npy')", "np.load without allow_pickle=False"),
        ("import numpy as np\nnp.load('x.npy', allow_pickle=True)", "np.load without allow_pickle=False"),
        ("import torch\ntorch.load('x.pt')", "torch.load without weights_only=True"),
        ("import torch\ntorch.load('x.pt', weights_only=False)", "torch.load without weights_only=True"),
        ("import numpy as np\ndef f(a):\n    np.savez('x.npz', a=a)", "np.savez outside"),
        ("import numpy as np\nnp.save('x.npy', 1)", "np.save without allow_pickle=False"),
    ],
)
def test_the_audit_catches_each_kind(tmp_path, source, problem):
    path = tmp_path / "module.py"
    path.write_text(source)
    found = audit(path, root=tmp_path)
    assert any(problem in f for f in found), found


def test_save_npz_refuses_object_arrays(tmp_path):
    save_npz(tmp_path / "ok.npz", a=np.arange(3), b=np.zeros((2, 2), np.float32))
    with np.load(tmp_path / "ok.npz", allow_pickle=False) as data:
        assert data["a"].tolist() == [0, 1, 2]
    with pytest.raises(TypeError, match="'b' is an object array"):
        save_npz(tmp_path / "bad.npz", a=np.arange(3), b=np.array([{"x": 1}], dtype=object))
    assert not (tmp_path / "bad.npz").exists()
