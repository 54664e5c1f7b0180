"""The development reloader (services/web/serving/reload.py): a file saved while a worker was
importing the app is a change, which gunicorn's own reloader missed."""

from __future__ import annotations

import os
import runpy
import time

from harness.paths import REPO_ROOT
from serving.reload import SinceStartReloader


def test_a_file_saved_after_the_worker_started_but_before_the_first_look_is_a_change(tmp_path):
    source = tmp_path / "routes.py"
    source.write_text("original")
    os.utime(source, (time.time() - 60, time.time() - 60))
    reloader = SinceStartReloader(extra_files=[str(source)])
    # The worker imports the app meanwhile; the file is saved again before the reloader first looks.
    source.write_text("saved again")
    os.utime(source, (reloader.started + 0.5, reloader.started + 0.5))
    assert str(source) in reloader.changed_files({})


def test_files_unchanged_since_the_start_are_not_changes_and_a_later_edit_is(tmp_path):
    source = tmp_path / "routes.py"
    source.write_text("original")
    os.utime(source, (time.time() - 60, time.time() - 60))
    reloader = SinceStartReloader(extra_files=[str(source)])
    mtimes: dict[str, float] = {}
    assert reloader.changed_files(mtimes) == []
    assert reloader.changed_files(mtimes) == []
    os.utime(source, (time.time() + 0.5, time.time() + 0.5))
    assert reloader.changed_files(mtimes) == [str(source)]
    assert reloader.changed_files(mtimes) == []  # seen once


def test_a_file_dated_in_the_future_is_not_a_change_on_first_sight(tmp_path):
    """A host clock ahead of the container's would otherwise restart every new worker, forever."""
    source = tmp_path / "routes.py"
    source.write_text("original")
    ahead = time.time() + 3600
    os.utime(source, (ahead, ahead))
    assert SinceStartReloader(extra_files=[str(source)]).changed_files({}) == []


def test_gunicorn_uses_it_when_reloading(monkeypatch):
    monkeypatch.delenv("GUNICORN_WORKERS", raising=False)  # the config file sets it; undone after
    settings = runpy.run_path(str(REPO_ROOT / "services/web/gunicorn.conf.py"))
    assert settings["reload_engine"] == "since-start"
    assert settings["reloader_engines"]["since-start"] is SinceStartReloader
