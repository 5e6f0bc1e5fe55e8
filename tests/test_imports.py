"""The plan is light: building the DAG (`import dars.config`, the modules common.smk imports,
`snakemake -n`) loads neither pandas, OpenCV nor torch; only a stage that renders, reads images
or trains does. And dars/ has no import circle."""
import ast
import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from helpers import REPO, tiny_config

HEAVY = ("pandas", "cv2", "torch")


def loaded_after_import(modules):
    """The heavy modules in sys.modules of a fresh interpreter after importing `modules`."""
    code = f"import sys\nfor m in {list(modules)!r}: __import__(m)\nprint([m for m in {HEAVY!r} if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(proc.stdout.replace("'", '"'))


def plan_modules():
    """The dars modules the Snakefile and its rule files import at the top."""
    text = "\n".join(p.read_text() for p in [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))])
    return sorted(set(re.findall(r"^import (dars[\w.]*)", text, flags=re.M)))


def test_config_and_the_planning_modules_load_no_pandas_opencv_or_torch():
    assert loaded_after_import(["dars.config", "dars.paths", "dars.inputs", "dars.manifest", "dars.console"]) == []


def test_the_plan_modules_are_found():
    """The parse below sees common.smk's imports (else the next test would check nothing)."""
    assert {"dars.config", "dars.paths", "dars.inputs", "dars.manifest"} <= set(plan_modules())


def test_the_modules_common_smk_imports_load_no_pandas_opencv_or_torch():
    assert loaded_after_import(plan_modules()) == []


# snakemake itself loads pandas (its Slurm executor plugin does), so sys.modules cannot tell who
# needed it: the dry run records instead which module's code imported each heavy package.
DRY_RUN = """
import builtins, json, sys
heavy, importers, real_import = {heavy!r}, {{}}, builtins.__import__
def spy(name, globals=None, locals=None, fromlist=(), level=0):
    top, who = name.partition(".")[0], (globals or {{}}).get("__name__", "?")
    if level == 0 and top in heavy and (who.startswith("dars") or who == "snakemake.workflow"):
        importers.setdefault(top, set()).add(who)  # dars' code or the Snakefile's (run in workflow's globals)
    return real_import(name, globals, locals, fromlist, level)
builtins.__import__ = spy
from snakemake.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    print(json.dumps({{"rc": e.code, "importers": {{k: sorted(v) for k, v in importers.items()}}}}))
"""


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """Who imports pandas, OpenCV or torch while `snakemake -n` plans the tiny config's default target."""
    workdir = tmp_path_factory.mktemp("dry")
    (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", DRY_RUN.format(heavy=HEAVY), "-s", str(REPO / "Snakefile"),
                           "--directory", str(workdir), "-n", "--quiet"], capture_output=True, text=True,
                          env=env, timeout=600)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0, proc.stderr[-3000:]
    return result["importers"]


def test_a_dry_run_imports_no_pandas_opencv_or_torch(dry_run):
    """{package: [the dars module, or the Snakefile (snakemake.workflow), that imported it]}."""
    assert dry_run == {}


def import_graph():
    """dars module -> the dars modules it imports anywhere (at the top or inside a function)."""
    graph = {}
    for path in (REPO / "dars").rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if parts[-1] == "__init__" else name.rpartition(".")[0]
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name.startswith("dars"))
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                if target.startswith("dars"):
                    edges.add(target)
                    edges.update(f"{target}.{a.name}" for a in node.names)  # `from . import config`
    return {m: {t for t in ts if t in graph and t != m} for m, ts in graph.items()}


def reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_config_paths_inputs_and_manifest_sit_on_no_import_circle():
    """config -> pseudo -> manifest -> config was one: config imports no stage module, and the
    label digests and the dataset listing live apart from the directory-output checks."""
    graph = import_graph()
    assert "dars.pseudo" in graph and "dars.config" in graph["dars.inputs"]  # the parse sees imports
    for module in ("dars.config", "dars.paths", "dars.inputs", "dars.manifest", "dars.data.digests"):
        assert module not in reachable(graph, module), f"{module} imports itself through others"
    assert "dars.pseudo" not in reachable(graph, "dars.config")
