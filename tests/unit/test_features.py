import json
import subprocess
import sys

from pyrunc.commands.features import describe


def test_features_is_truthful_json():
    out = subprocess.run([sys.executable, "-m", "pyrunc", "features"], capture_output=True,
                         text=True, check=True).stdout
    d = json.loads(out)
    assert d["ociVersionMax"] == "1.2.0"
    assert d["hooks"][0] == "prestart" and len(d["hooks"]) == 6
    assert {"rbind", "rro", "tmpcopyup", "rslave"} <= set(d["mountOptions"])
    linux = d["linux"]
    assert {"pid", "network", "mount", "user", "cgroup"} <= set(linux["namespaces"])
    assert linux["capabilities"][0] == "CAP_CHOWN"
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert len(linux["capabilities"]) == int(f.read()) + 1
    # nothing claimed that is not implemented
    assert linux["apparmor"] == {"enabled": False} and linux["selinux"] == {"enabled": False}
    assert linux["cgroup"]["systemd"] is False


def test_mount_options_in_features_all_parse():
    from pyrunc.plan.mountopts import parse_mount_options
    for opt in describe()["mountOptions"]:
        parse_mount_options([opt])


def test_seccomp_section():
    sc = describe()["linux"]["seccomp"]
    assert sc["enabled"] is True
    assert "SCMP_ACT_NOTIFY" in sc["actions"] and "SCMP_CMP_MASKED_EQ" in sc["operators"]
    assert set(sc["supportedFlags"]) <= set(sc["knownFlags"])
