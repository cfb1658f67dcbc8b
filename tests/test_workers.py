"""How the suite splits over pytest-xdist's workers (tests/workers.py): the tests of one shared
session fixture run on one worker, so the fixture is made once per run (a test using two joins
their groups); a file's other tests stay on one worker; and the skip check (tests/skipcheck.py)
reads the node ids xdist's ``--dist loadgroup`` gives them, so a skip by design is still one. A
real pytest with two real workers on a small suite of its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from skipcheck import STRICT_VARIABLES

HERE = Path(__file__).parent

CONFTEST = """
import os
import pytest

def made(name):
    with open(os.environ["MADE_LOG"], "a") as log:
        log.write(f"{name} {os.environ['PYTEST_XDIST_WORKER']}\\n")

@pytest.fixture(scope="session")
def speech_server():
    made("speech_server")

@pytest.fixture(scope="session")
def _ray_session():
    made("_ray_session")

@pytest.fixture
def ray_cluster(_ray_session):
    pass

@pytest.fixture(scope="session")
def openclaw_workspace():
    made("openclaw_workspace")
"""

FILE = """
import pytest

def test_speaks_{n}(speech_server):
    pass

def test_on_the_cluster_{n}(ray_cluster):
    pass

@pytest.mark.parametrize("i", range(4))
def test_plain_{n}(i):
    pass

def test_plugin_{n}(openclaw_workspace):
    pass
"""

PLUGINS = ["-p", "xdist.plugin", "-p", "skipcheck", "-p", "workers", "-p", "no:cacheprovider"]
"""Only pytest, xdist and the two plugins of the suite (PYTEST_DISABLE_PLUGIN_AUTOLOAD)."""

INI = """[pytest]
filterwarnings = error
skipped_by_design =
    test_0.py::test_by_design
"""


def test_shared_fixtures_are_made_once_and_a_file_stays_on_one_worker(tmp_path: Path) -> None:
    for n in range(4):
        (tmp_path / f"test_{n}.py").write_text(FILE.format(n=n))
    with (tmp_path / "test_0.py").open("a") as file:
        file.write("\ndef test_by_design(speech_server):\n    pytest.skip('by design')\n")
        file.write("\ndef test_voice_plugin(speech_server, openclaw_workspace):\n    pass\n")
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "pytest.ini").write_text(INI)
    log = tmp_path / "made.log"
    environment = {k: v for k, v in os.environ.items() if k not in STRICT_VARIABLES}
    environment.update(
        PYTHONPATH=str(HERE),
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        MADE_LOG=str(log),
        BLITZ_TEST_STRICT="1",
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *PLUGINS, "-n", "2", "--dist", "loadgroup", "-v"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr  # the skip by design is one
    assert "1 skipped" in done.stdout.splitlines()[-1]
    made = sorted(line.split()[0] for line in log.read_text().splitlines())
    # Once each, though four files use each; the voice plugin's test joins two groups in one.
    assert made == ["_ray_session", "openclaw_workspace", "speech_server"]
    groups: dict[str, set[str]] = defaultdict(set)  # group -> the workers its tests ran on
    for worker, test in re.findall(r"\[(gw\d)\] .*?(?:PASSED|SKIPPED) (\S+)", done.stdout):
        name, group = test.rsplit("@", 1)
        groups[group].add(worker)
        if "plain" in name:  # no shared fixture: its file's group
            assert group == name.split("::")[0]
    files = {f"test_{n}.py" for n in range(4)}
    assert set(groups) == files | {"openclaw+speech-server", "ray-cluster"}
    assert all(len(workers) == 1 for workers in groups.values()), groups
