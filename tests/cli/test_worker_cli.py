"""``blitz worker`` refuses, before any Ray node starts, what it cannot advertise: a label that
is not a name, a backend that cannot run on this machine (saying why), no cluster to join."""

from __future__ import annotations

from pathlib import Path

from blitz_process import blitz


def test_a_bad_label_or_an_unusable_backend_is_refused_before_ray_starts(tmp_path: Path) -> None:
    home = tmp_path / "home"
    bad = blitz(home, "worker", "--address", "127.0.0.1:1", "--label", "no spaces")
    assert bad.returncode == 2
    assert "label 'no spaces' is not a valid name" in bad.stderr
    # No model is configured: the embedded agent cannot run here, and the worker says why.
    unusable = blitz(home, "worker", "--address", "127.0.0.1:1", "--backend", "embedded")
    assert unusable.returncode == 2
    assert "the embedded backend cannot run here: needs a model" in unusable.stderr
    unknown = blitz(home, "worker", "--address", "127.0.0.1:1", "--backend", "nope")
    assert unknown.returncode == 2 and "no backend 'nope'" in unknown.stderr
    nowhere = blitz(home, "worker", RAY_ADDRESS="")
    assert nowhere.returncode == 2 and "--address HEAD:PORT" in nowhere.stderr
    assert not (home / "worker").exists()  # nothing was made for a node that never started
