"""Repo-wide pytest setup: markers, and root-only tests skipped for others."""
import os
from pathlib import Path

import pytest

CONTAINER_DIR = Path(__file__).resolve().parent / "container"

MARKERS = {
    "container": "runs real containers (tests/container; needs root)",
    "differential": "runs the same bundle under runc and pyrunc and compares",
}


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


def pytest_collection_modifyitems(config, items):
    is_root = os.geteuid() == 0
    skip = pytest.mark.skip(reason="needs root: run as root (sudo .venv/bin/python -m pytest)")
    for item in items:
        if CONTAINER_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.container)
            item.add_marker(pytest.mark.root)
        if not is_root and item.get_closest_marker("root"):
            item.add_marker(skip)
