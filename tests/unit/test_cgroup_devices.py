"""Device rules -> the device cgroup's final state, and the v1 writes to get there."""
import json

import pytest

from pyrunc.errors import ConfigError
from pyrunc.plan.devices import (DEFAULT_ALLOWED, device_state, parse_devices_list,
                                 v1_writes)

DENY_ALL = {"allow": False, "access": "rwm"}


def rule(allow, t, major=None, minor=None, access="rwm"):
    d = {"allow": allow, "type": t, "access": access}
    if major is not None:
        d["major"] = major
    if minor is not None:
        d["minor"] = minor
    return d


def test_no_rules_and_deny_all_give_the_defaults():
    assert device_state(None) == (False, DEFAULT_ALLOWED)
    assert device_state([DENY_ALL]) == (False, DEFAULT_ALLOWED)


def test_defaults_are_what_runc_allows():
    assert set(DEFAULT_ALLOWED) == {"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",
                                    "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm",
                                    "c 10:200 rwm", "c 136:* rwm"}


def test_explicit_deny_of_a_default_device_is_honoured():
    allow, rules = device_state([DENY_ALL, rule(False, "c", 1, 3)])
    assert not allow and "c 1:3 rwm" not in rules and "c 1:5 rwm" in rules
    # a partial deny keeps the rest of the access
    _, rules = device_state([DENY_ALL, rule(False, "c", 1, 3, "w")])
    assert "c 1:3 rm" in rules
    # mknod stays through the "c *:* m" wildcard: no error
    _, rules = device_state([DENY_ALL, rule(False, "c", 10, 229)])
    assert "c *:* m" in rules


def test_docker_config():
    with open("/work/shared/fixtures/real-configs/docker-create-config.json") as f:
        rules = json.load(f)["linux"]["resources"]["devices"]
    allow, got = device_state(rules)
    assert not allow
    assert set(got) == set(DEFAULT_ALLOWED) | {"c 5:1 rwm"}


def test_allow_all_then_denies_is_a_blacklist():
    allow, rules = device_state([{"allow": True, "access": "rwm"}, rule(False, "b", 8, None),
                                 rule(False, "c", 1, 3, "w")])
    assert allow and rules == ("b 8:* rwm", "c 1:3 w")
    # allowing it back removes the exception
    allow, rules = device_state([{"allow": True, "access": "rwm"}, rule(False, "c", 1, 3),
                                 rule(True, "c", 1, 3, "r")])
    assert allow and rules == ("c 1:3 wm",)


def test_last_reset_wins():
    assert device_state([rule(True, "c", 4, 1), {"allow": True, "access": "rwm"},
                         DENY_ALL]) == (False, DEFAULT_ALLOWED)


def test_a_with_partial_access_means_every_char_and_block_device():
    allow, rules = device_state([DENY_ALL, {"allow": True, "type": "a", "access": "r"}])
    assert "c *:* rm" in rules and "b *:* rm" in rules


def test_allow_merges_access():
    _, rules = device_state([DENY_ALL, rule(True, "c", 4, 1, "r"), rule(True, "c", 4, 1, "w")])
    assert "c 4:1 rw" in rules


@pytest.mark.parametrize("rules,match", [
    ([DENY_ALL, rule(True, "c", 136, None), rule(False, "c", 136, 2, "w")], "punch a hole"),
    ([{"allow": True, "access": "rwm"}, rule(False, "c", None, None, "r"),
      rule(True, "c", 1, 3, "r")], "punch a hole"),
    ([{"allow": False, "type": "a", "major": 1, "access": "rwm"}], "cannot name a major"),
    ([rule(True, "c", -2, 1)], "invalid device number"),
])
def test_refused(rules, match):
    with pytest.raises(ConfigError, match=match) as e:
        device_state(rules)
    assert e.value.path.startswith("linux.resources.devices[")


def test_parse_devices_list():
    assert parse_devices_list("a *:* rwm\n") == (True, ())
    assert parse_devices_list("c 1:3 rwm\nc 136:* rwm\nb *:* m\n") == \
        (False, ("c 1:3 rwm", "c 136:* rwm", "b *:* m"))


def test_v1_writes_from_a_fresh_cgroup_resets_first():
    target = (False, ("c 1:3 rwm", "c *:* m"))
    assert v1_writes(target, (True, ())) == [("devices.deny", "a"),
                                            ("devices.allow", "c 1:3 rwm"),
                                            ("devices.allow", "c *:* m")]
    assert v1_writes((True, ("c 1:3 w",)), None) == [("devices.allow", "a"),
                                                     ("devices.deny", "c 1:3 w")]


def test_v1_writes_between_whitelists_only_the_difference():
    current = (False, ("c 1:3 rwm", "c 1:5 rwm", "c 4:1 r"))
    target = (False, ("c 1:3 rwm", "c 4:1 rw", "c 1:9 rwm"))
    assert v1_writes(target, current) == [("devices.deny", "c 1:5 rwm"),
                                          ("devices.allow", "c 4:1 w"),
                                          ("devices.allow", "c 1:9 rwm")]
    assert v1_writes(target, target) == []
