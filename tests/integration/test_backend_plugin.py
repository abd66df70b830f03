"""A backend from outside edgekit, found through the ``edgekit.backends`` entry point, compiles and validates.

The plugin is a package written to a temporary folder with its own ``*.dist-info/entry_points.txt`` (what
``pip install`` of a package declaring the entry point leaves), put on the subprocess' PYTHONPATH: edgekit
finds it by name from a target profile's ``backend`` key, exactly as it would an installed one.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

PLUGIN = '''
"""An out-of-tree edgekit backend: onnxruntime on a copy of the float ONNX graph, through edgekit's contract."""
import shutil

import numpy as np
import onnxruntime as ort

from edgekit.core.artifacts import CompiledArtifact
from edgekit.backends import BackendBase
from edgekit.core.errors import ConfigError
from edgekit.core.runner import RunnerBase


class CopyRunner(RunnerBase):
    description = "ekplugin: onnxruntime on the copied graph"

    def __init__(self, path, input_name):
        self._session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self._input = input_name

    def run(self, x):
        return np.asarray(self._session.run(None, {self._input: x.astype(np.float32)})[0])


class CopyBackend(BackendBase):
    name = "ekplugin-copy"

    def unavailable_reason(self):
        return None

    def versions(self):
        return {"onnxruntime": ort.__version__, "ekplugin": "0.1"}

    def check_target(self, target):
        if dict(target.backend_options):
            raise ConfigError(f"{target.source}: ekplugin-copy takes no backend_options", hint="remove them")

    def compile(self, graph, graph_path, target, out_dir):
        shutil.copyfile(graph_path, out_dir / "copy.onnx")
        return CompiledArtifact(target=target.name, backend=self.name, path="copy.onnx",
                                input_name=graph.input_name, output_name=graph.output_name,
                                info={"copied_from": graph.path})

    def load(self, artifact, artifact_path, target):
        return CopyRunner(artifact_path, artifact.input_name)


class Incomplete:
    """Registered too, and refused: it offers none of the contract."""
    name = "ekplugin-incomplete"
'''

PROFILE = """
schema_version = 1
name = "{name}"
description = "an out-of-tree backend"
family = "cpu"
backend = "{backend}"
precision = "fp32"

[cpu]
threads = 1
"""


def _plugin(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    (site / "ekplugin").mkdir(parents=True)
    (site / "ekplugin" / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    info = site / "ekplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ekplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[edgekit.backends]\nekplugin-copy = ekplugin:CopyBackend\nekplugin-incomplete = ekplugin:Incomplete\n"
    )
    for name, backend in (("plugin-cpu", "ekplugin-copy"), ("plugin-broken", "ekplugin-incomplete")):
        (tmp_path / f"{name}.toml").write_text(PROFILE.format(name=name, backend=backend))
    return {"PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_an_out_of_tree_backend_compiles_and_validates_through_the_entry_point(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = _plugin(tmp_path)
    out = tmp_path / "b"
    run = cli("compile", "jet_tagger", "--tiny", "-t", str(tmp_path / "plugin-cpu.toml"), "--out", str(out), "--json",
              env=env)  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    target = run.json()["validation"]["targets"][0]
    assert target["target"] == "plugin-cpu" and target["status"] == "ok" and run.json()["passed"]
    assert target["max_abs_diff_vs_float"] < 1e-4  # the float graph, run by the plugin's own runner
    manifest = json.loads((out / "manifest.json").read_text())
    compiled = manifest["artifacts"]["compiled"]["plugin-cpu"]
    assert compiled["backend"] == "ekplugin-copy" and (out / "targets" / "plugin-cpu" / "copy.onnx").is_file()
    again = cli("validate", str(out), env=env)
    assert again.returncode == 0 and "plugin-cpu" in again.stdout, again.stderr
    broken = cli("compile", "jet_tagger", "--tiny", "-t", str(tmp_path / "plugin-broken.toml"), "--out",
                 str(tmp_path / "c"), env=env)  # fmt: skip
    assert broken.returncode == 2, broken.stdout + broken.stderr
    assert "lacks part of edgekit's backend contract" in broken.stderr and "BackendBase" in broken.stderr
