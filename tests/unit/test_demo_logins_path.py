"""Where `flask demo` writes its logins file: beside the SQLite file, or in the store's state
folder when the store is a PostgreSQL server (a URL names no folder; the file once landed
in a folder called `postgresql:` under the working directory)."""

from __future__ import annotations

from server.demo.logins import FILE_NAME, logins_path
from server.keys import state_dir

URL = "postgresql://postgres@127.0.0.1:5432/test"


def test_the_logins_file_sits_beside_a_sqlite_store(tmp_path):
    database = tmp_path / "data" / "doorstep.db"
    assert logins_path(str(database), str(tmp_path / "state")) == tmp_path / "data" / FILE_NAME


def test_the_logins_file_of_a_postgresql_store_is_in_its_state_folder(tmp_path):
    settings = {"STATE_DIR": str(tmp_path / "state"), "DATABASE": URL}
    path = logins_path(URL, state_dir(settings))
    assert path == (tmp_path / "state" / FILE_NAME).resolve()
    assert "postgresql:" not in str(path)


def test_without_a_state_folder_a_postgresql_demo_writes_to_instance(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = logins_path(URL, state_dir({"STATE_DIR": "", "DATABASE": URL}))
    assert path == tmp_path.resolve() / "instance" / FILE_NAME
