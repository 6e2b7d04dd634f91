"""create clones the init itself (plan/cloneinit.py); without clone3 it forks
the classic way.  The second case is real on old kernels and in containers
whose seccomp profile answers clone3 with ENOSYS (docker's default does):
here a small static wrapper loads such a filter before it execs pyrunc."""
import json
import os
import subprocess

import pytest

NOCLONE3_C = r"""
#include <errno.h>
#include <stddef.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
/* run argv[1..] with clone3 failing ENOSYS (root: no need for no_new_privs) */
int main(int argc, char **argv) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 435 /* clone3 */, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
    if (argc < 2 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return 126;
    execv(argv[1], argv + 1);
    return 127;
}
"""

FALLBACK = "cloning the init failed"
REPORT = 'echo "pid $$"; cat /proc/self/cgroup; readlink /proc/self/ns/net'


@pytest.fixture(scope="module")
def noclone3(tmp_path_factory):
    if os.uname().machine != "x86_64":
        pytest.skip("the wrapper's filter is written for x86_64")
    d = tmp_path_factory.mktemp("noclone3")
    (d / "noclone3.c").write_text(NOCLONE3_C)
    r = subprocess.run(["gcc", "-O2", "-o", str(d / "noclone3"), str(d / "noclone3.c")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot build the wrapper: {r.stderr.strip()}")
    return str(d / "noclone3")


def _runtime(make_runtime, tmp_path, pyrunc, wrapper=None):
    """A Runtime whose binary is a script: pyrunc --debug with a JSON log (not
    in the state root: Runtime(log=True) puts it there), under the wrapper if given."""
    name = "pyrunc-noclone3" if wrapper else "pyrunc-debug"
    script = tmp_path / name
    log = tmp_path / f"{name}.log"
    script.write_text(f"#!/bin/sh\nexec {wrapper or ''} {pyrunc} --debug --log {log} "
                      f"--log-format json \"$@\"\n")
    script.chmod(0o755)
    return make_runtime(script, name=name), log


def _config(base):
    c = json.loads(json.dumps(base))
    # no cgroup namespace: /proc/self/cgroup shows the host's paths
    c["linux"]["namespaces"] = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    return c


def _check_container(rt_log, cid, bundle):
    rt, log = rt_log
    r = rt.run(cid, bundle)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "pid 1"
    cgroups = {line.split(":")[1]: line.split(":")[2] for line in lines[1:-1]}
    # in every hierarchy, the unified one (born there or moved) and each v1 one
    for key in ("", "memory", "pids", "devices"):
        if key in cgroups:
            assert cgroups[key].endswith("/" + cid), (key, cgroups)
    assert lines[-1] != os.readlink("/proc/self/ns/net")
    with open(log) as f:
        return [json.loads(line)["msg"] for line in f]


def test_the_wrapper_makes_clone3_fail(noclone3):
    probe = "import os, ctypes; r = ctypes.CDLL(None).syscall(435, 0, 0); " \
            "print(r, ctypes.get_errno())"
    r = subprocess.run([noclone3, "/usr/bin/python3", "-c",
                        probe.replace("CDLL(None)", "CDLL(None, use_errno=True)")],
                       capture_output=True, text=True)
    assert r.stdout.split() == ["-1", "38"], r   # ENOSYS


def test_create_clones_the_init_itself(pyrunc, make_runtime, tmp_path, bundle_factory,
                                       base_config, container_id):
    rt = _runtime(make_runtime, tmp_path, pyrunc)
    bundle = bundle_factory(config=_config(base_config), args=["sh", "-c", REPORT])
    msgs = _check_container(rt, container_id(), bundle)
    assert not any(FALLBACK in m for m in msgs)


def test_without_clone3_create_forks_the_classic_way(noclone3, pyrunc, make_runtime, tmp_path,
                                                      bundle_factory, base_config, container_id):
    rt = _runtime(make_runtime, tmp_path, pyrunc, noclone3)
    bundle = bundle_factory(config=_config(base_config), args=["sh", "-c", REPORT])
    msgs = _check_container(rt, container_id(), bundle)
    assert any(FALLBACK in m and "not implemented" in m.lower() for m in msgs), msgs
