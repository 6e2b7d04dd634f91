"""Fault rule syntax and sources: files, PYRUNC_FAULTS, annotations."""
import pytest

from pyrunc.errors import UsageError
from pyrunc.faultrules import annotation_rules, load_rules, parse_rules


def one(text):
    rules = parse_rules(text, "t")
    assert len(rules) == 1, rules
    return rules[0]


def test_every_field():
    r = one('fail cmd=create,run id=web-* annotation=team=red step=PivotRoot,MountFs '
            'nth=3 code=4 msg="pivot_root: permission denied"')
    assert (r.action, r.cmd, r.id, r.annotation, r.step, r.nth, r.nth_on, r.code, r.msg) == (
        "fail", ("create", "run"), "web-*", ("team", "red"), ("PivotRoot", "MountFs"), 3, False,
        4, "pivot_root: permission denied")
    assert r.source == "t:1"


def test_defaults_select_everything():
    r = one("hang")
    assert (r.cmd, r.id, r.annotation, r.step, r.nth) == ((), None, None, (), 0)


def test_annotation_without_value_and_nth_plus():
    r = one("crash annotation=org.example/flaky nth=2+")
    assert r.annotation == ("org.example/flaky", None)
    assert (r.nth, r.nth_on) == (2, True)


def test_lines_semicolons_and_comments():
    rules = parse_rules("# first a comment\n"
                        "delay cmd=start secs=0.5; badlog cmd=create  # trailing\n"
                        "\n"
                        "badpid cmd=exec content='{pid}\\n'\n", "file:/f")
    assert [(r.action, r.source) for r in rules] == [
        ("delay", "file:/f:2"), ("badlog", "file:/f:2"), ("badpid", "file:/f:4")]
    assert rules[0].secs == 0.5
    assert rules[2].content == "{pid}\n"


def test_semicolon_inside_quotes_is_text():
    r = one('fail msg="a; b"')
    assert r.msg == "a; b"


def test_rule_text_is_kept_for_traces_and_counters():
    assert one("fail   cmd=kill  nth=1").text == "fail cmd=kill nth=1"


@pytest.mark.parametrize("text, words", [
    ("explode cmd=create", "unknown action 'explode'"),
    ("fail cmd", "is not key=value"),
    ("delay cmd=create", "delay needs secs="),
    ("delay secs=-1", "secs must be >= 0"),
    ("delay secs=soon", "secs wants a number"),
    ("fail code=300", "code must be 0..255"),
    ("fail code=x", "code wants a number"),
    ("fail nth=0", "nth counts from 1"),
    ("fail nth=two", "nth wants N or N+"),
    ("fail step=PivotRooot", "no plan step is called 'PivotRooot'"),
    ("fail step=Plan", "no plan step is called 'Plan'"),
    ("badpid step=Exec", "badpid takes no 'step'"),
    ("hang msg=x", "hang takes no 'msg'"),
    ('fail msg="unterminated', "No closing quotation"),
])
def test_bad_rules_name_their_source(text, words):
    with pytest.raises(UsageError) as e:
        parse_rules("\n" + text, "env")
    assert words in str(e.value)
    assert str(e.value).startswith("fault rule env:2:")


def test_annotation_rules_in_key_order_only_with_the_prefix():
    rules = annotation_rules({"org.pyrunc.fault.b": "delay secs=1",
                              "org.pyrunc.fault.a": "fail cmd=start; hang cmd=kill",
                              "org.pyrunc.faults": "crash",
                              "org.opencontainers.image.ref.name": "fail"})
    assert [(r.action, r.source) for r in rules] == [
        ("fail", "annotation:org.pyrunc.fault.a:1"), ("hang", "annotation:org.pyrunc.fault.a:1"),
        ("delay", "annotation:org.pyrunc.fault.b:1")]


def test_sources_flag_file_env_text_env_path_annotations(tmp_path):
    f1 = tmp_path / "flag.rules"
    f1.write_text("fail cmd=create\n")
    f2 = tmp_path / "env.rules"
    f2.write_text("delay secs=1\n")
    rules = load_rules(str(f1), {"PYRUNC_FAULTS": str(f2)},
                       {"org.pyrunc.fault.x": "hang"})
    assert [r.source for r in rules] == [f"file:{f1}:1", f"file:{f2}:1",
                                         "annotation:org.pyrunc.fault.x:1"]
    inline = load_rules(None, {"PYRUNC_FAULTS": "crash cmd=kill; die cmd=start"})
    assert [(r.action, r.source) for r in inline] == [("crash", "env:1"), ("die", "env:1")]
    assert load_rules(None, {}) == []


def test_missing_rules_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file or directory"):
        load_rules(str(tmp_path / "nope"), {})
