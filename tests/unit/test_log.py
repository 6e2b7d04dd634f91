import json
import re

from pyrunc.log import Log


def test_json_log_lines_parse(tmp_path, capsys):
    path = tmp_path / "log.json"
    log = Log()
    log.configure(str(path), "json")
    log.error('exec: "x": executable file not found in $PATH\nsecond line')
    log.warning("w")
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["level"] == "error"
    assert first["msg"] == 'exec: "x": executable file not found in $PATH second line'
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", first["time"])
    err = capsys.readouterr().err
    assert err.startswith("pyrunc: exec:") and "w" not in err.splitlines()[-1][:9]


def test_text_log(tmp_path):
    path = tmp_path / "log"
    log = Log()
    log.configure(str(path), "text")
    log.error("boom")
    assert re.fullmatch(r'time="[^"]+" level=error msg="boom"\n', path.read_text())
