"""create imports only what its config needs: the one executor module of each
step type (executor/base.py's table), plan.extras and plan.seccomp only for a
config that has something for them, and only the schema parts a document
reaches (spec/fastvalidate.py's lazy mode)."""
import json
import os
import subprocess
import sys

import pytest

from pyrunc.errors import ConfigError
from pyrunc.executor import base
from pyrunc.plan import build, steps
from pyrunc.plan.build import build_plan
from pyrunc.plan.extras import add_extras
from pyrunc.plan.process import plan_process
from pyrunc.spec import fastvalidate as fv
from pyrunc.spec import validate as v
from pyrunc.spec.config import Config
from pyrunc.spec.default import default_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPECS = os.path.join(REPO, "specs")
STEP_TYPES = sorted((c for c in vars(steps).values()
                     if isinstance(c, type) and issubclass(c, steps.Step) and c is not steps.Step),
                    key=lambda c: c.__name__)
OPTIONAL = {"pyrunc.executor.seccomp", "pyrunc.executor.console", "pyrunc.executor.extras",
            "pyrunc.executor.netdev", "pyrunc.plan.seccomp", "pyrunc.plan.extras"}


# -- the step -> module table ----------------------------------------------------

@pytest.mark.parametrize("step_type", STEP_TYPES, ids=lambda c: c.__name__)
def test_every_step_type_maps_to_the_module_registering_its_handler(step_type):
    module = base._MODULE_OF.get(step_type.__name__)
    assert module is not None, f"add {step_type.__name__} to executor/base.py's _MODULE_OF"
    __import__("pyrunc.executor." + module)
    handler = base._HANDLERS.get(step_type)
    assert handler is not None, f"pyrunc.executor.{module} registers no {step_type.__name__}"
    assert handler.__module__ == "pyrunc.executor." + module


def test_the_table_names_no_step_that_is_gone():
    assert set(base._MODULE_OF) == {c.__name__ for c in STEP_TYPES}


def test_an_unknown_step_still_says_so():
    class Nowhere(steps.Step):
        pass
    with pytest.raises(NotImplementedError, match="no handler for Nowhere"):
        base.handler_for(Nowhere())


# -- what a create imports, in a fresh interpreter -----------------------------------

PROBE = """
import json, sys
sys.path.insert(0, {repo!r})
doc = json.load(open(sys.argv[1]))
before = set(sys.modules)
from pyrunc.spec.loader import load_bundle
from pyrunc.plan.build import build_plan
from pyrunc.executor.init import preload
config = load_bundle(sys.argv[2])
plan = build_plan(config, cid="c1")
preload(plan)
print(json.dumps({{"modules": sorted(set(sys.modules) - before),
                  "steps": sorted({{type(s).__name__ for s in plan.steps}})}}))
"""


def _create_imports(tmp_path, doc):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    (tmp_path / "config.json").write_text(json.dumps(doc))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE.format(repo=REPO),
                          str(tmp_path / "config.json"), str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    got = json.loads(out)
    return set(got["modules"]), set(got["steps"])


def _spec():
    doc = default_spec()
    doc["root"]["path"] = "rootfs"
    doc["process"]["terminal"] = False   # `runc spec`'s default: a console
    return doc


def test_a_plain_config_imports_no_optional_module(tmp_path):
    modules, step_names = _create_imports(tmp_path, _spec())
    assert "pyrunc.executor.process" in modules and "pyrunc.executor.waiter" in modules
    assert modules & OPTIONAL == set()
    # and exactly the handler modules its steps need
    loaded = {m.rsplit(".", 1)[1] for m in modules if m.startswith("pyrunc.executor.")}
    needed = {base._MODULE_OF[n] for n in step_names}
    assert needed <= loaded
    assert loaded - needed <= {"base", "init", "paths", "mounts", "cgroupfs", "jail",
                               "identity"}   # what those import themselves


def test_a_config_asking_for_them_imports_them(tmp_path):
    doc = _spec()
    doc["process"]["terminal"] = True
    doc["linux"]["personality"] = {"domain": "LINUX"}
    doc["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["kexec_load"],
                                             "action": "SCMP_ACT_ERRNO"}]}
    modules, step_names = _create_imports(tmp_path, doc)
    assert {"SetupConsole", "SetPersonality", "CompileSeccomp", "LoadSeccomp"} <= step_names
    assert OPTIONAL - {"pyrunc.executor.netdev"} <= modules


# -- build.py's test for plan.extras ----------------------------------------------------

class Recorder:
    """Stands in for config.process / config.linux and notes what is read."""

    def __init__(self, real, seen, prefix):
        self._real, self._seen, self._prefix = real, seen, prefix

    def __getattr__(self, name):
        self._seen.add(self._prefix + name)
        return getattr(self._real, name)


class NoHost:
    def __getattr__(self, name):
        raise AssertionError(f"add_extras asked the host {name} for a config without extras")


def test_add_extras_reads_only_the_members_build_checks():
    config = Config.from_dict(_spec(), "/tmp/b")
    seen = set()
    proxy = Recorder(config, set(), "")
    proxy.process = Recorder(config.process, seen, "process.")
    proxy.linux = Recorder(config.linux, seen, "linux.")
    container, _ = plan_process(config, preserve_fds=0, userns=False)
    assert add_extras(proxy, container, host=NoHost()) == list(container)
    declared = ({"process." + n for n in build.EXTRAS_PROCESS}
                | {"linux." + n for n in build.EXTRAS_LINUX})
    assert seen and seen <= declared, f"add_extras now reads {sorted(seen - declared)}"
    assert not build._has_extras(config)


@pytest.mark.parametrize("where, key, value", [
    ("process", "apparmorProfile", "docker-default"),
    ("process", "selinuxLabel", "system_u:system_r:svirt_lxc_net_t:s0"),
    ("process", "ioPriority", {"class": "IOPRIO_CLASS_BE", "priority": 4}),
    ("process", "scheduler", {"policy": "SCHED_BATCH"}),
    ("linux", "mountLabel", "system_u:object_r:svirt_sandbox_file_t:s0"),
    ("linux", "intelRdt", {}),
    ("linux", "memoryPolicy", {"mode": "MPOL_DEFAULT"}),
    ("linux", "personality", {"domain": "LINUX"}),
])
def test_each_member_still_reaches_add_extras(where, key, value):
    doc = _spec()
    doc[where][key] = value
    config = Config.from_dict(doc, "/tmp/b")
    assert build._has_extras(config)
    container, _ = plan_process(config, preserve_fds=0, userns=False)
    try:
        wanted = [s for s in add_extras(config, container) if s not in container]
    except ConfigError as e:
        with pytest.raises(ConfigError) as got:
            build_plan(config, cid="c")
        assert str(got.value) == str(e)
        return
    assert wanted and all(s in build_plan(config, cid="c").steps for s in wanted)


# -- lazy schema compiling ----------------------------------------------------------------

def test_validation_compiles_only_what_the_document_reaches():
    eager, lazy = fv.SchemaSet.load(SPECS), fv.SchemaSet.load(SPECS, lazy=True)
    doc = _spec()
    assert lazy.errors(doc, "config") == eager.errors(doc, "config") == []
    assert len(lazy._memo) < len(eager._memo) / 2, (len(lazy._memo), len(eager._memo))
    bad = dict(doc, hostname=5, mounts=[{"destination": 1}])
    assert lazy.errors(bad, "config") == eager.errors(bad, "config") != []


def test_validate_uses_the_lazy_set(monkeypatch):
    monkeypatch.setattr(v, "_fast", None)
    v.fast_errors(_spec(), "config")
    assert v._fast.lazy


def _edited_specs(tmp_path, name, change):
    import shutil
    shutil.copytree(SPECS, tmp_path / "specs")
    path = tmp_path / "specs" / name
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema))
    return str(tmp_path / "specs")


def test_a_lazy_set_refuses_a_bad_keyword_when_a_document_reaches_it(tmp_path):
    def change(schema):
        schema["properties"]["hostname"]["maxLength"] = 64
    directory = _edited_specs(tmp_path, "config.schema.json", change)
    with pytest.raises(fv.UnsupportedSchema):
        fv.SchemaSet.load(directory)
    lazy = fv.SchemaSet.load(directory, lazy=True)
    assert lazy.errors({"ociVersion": "1"}, "config") == []
    with pytest.raises(fv.UnsupportedSchema, match="maxLength"):
        lazy.errors({"ociVersion": "1", "hostname": "h"}, "config")
    # and ever after, even for a document that would not reach it: a failed
    # compile may have left half-built check lists behind
    with pytest.raises(fv.UnsupportedSchema, match="maxLength"):
        lazy.is_valid({"ociVersion": "1"}, "config")


def test_the_real_specs_compile_eagerly():
    # what keeps the lazy runtime from ever meeting an UnsupportedSchema
    assert fv.SchemaSet.load(SPECS).is_valid(_spec(), "config")
