"""Where `flask demo` writes its logins file: beside the SQLite file, or in the instance
folder when the store is a PostgreSQL server (a URL names no folder; the file once landed
in a folder called `postgresql:` under the working directory)."""

from __future__ import annotations

from server.demo.logins import FILE_NAME, logins_path


def test_the_logins_file_sits_beside_a_sqlite_store(tmp_path):
    database = tmp_path / "data" / "doorstep.db"
    assert logins_path(str(database), str(tmp_path / "instance")) == (tmp_path / "data" / FILE_NAME)


def test_the_logins_file_of_a_postgresql_store_is_in_the_instance_folder(tmp_path):
    url = "postgresql://postgres@127.0.0.1:5432/test"
    path = logins_path(url, str(tmp_path / "instance"))
    assert path == (tmp_path / "instance" / FILE_NAME).resolve()
    assert "postgresql:" not in str(path)
