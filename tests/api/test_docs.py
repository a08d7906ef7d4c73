"""The interactive docs work without internet access: every asset comes from the app."""

import threading
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

DOCS = "/api/v1/docs"


class _AssetRefs(HTMLParser):
    """Collects the URLs a page makes the browser load (scripts, stylesheets, images)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe") and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])


def _asset_urls(page: str) -> list[str]:
    parser = _AssetRefs()
    parser.feed(page)
    return parser.urls


def test_docs_page_loads_only_same_origin_assets_and_they_answer(client):
    response = client.get(DOCS)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "://" not in page, "the docs page names another origin"
    urls = _asset_urls(page)
    assert len(urls) == 3, urls  # Swagger UI's bundle, standalone preset and stylesheet
    for url in urls:
        resolved = urljoin(f"http://localhost{DOCS}", url)
        assert urlsplit(resolved).netloc == "localhost", url
        asset = client.get(urlsplit(resolved).path)
        assert asset.status_code == 200, (url, asset.status_code)
        assert len(asset.data) > 1000, url
        expected_type = "text/css" if url.endswith(".css") else "javascript"
        assert expected_type in asset.headers["Content-Type"], (url, asset.headers)
    assert '"/api/v1/openapi.json"' in page
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_docs_with_a_trailing_slash_lead_to_the_page(client):
    response = client.get(f"{DOCS}/")
    assert response.status_code == 308
    assert urlsplit(response.headers["Location"]).path == DOCS
    assert client.get(f"{DOCS}/", follow_redirects=True).status_code == 200


def test_only_the_pages_assets_are_published(client):
    assert client.get(f"{DOCS}/assets/swagger-ui.css").status_code == 200
    for name in ("LICENSE", "index.html", "..%2F__init__.py", "nothing.js"):
        response = client.get(f"{DOCS}/assets/{name}")
        assert response.status_code == 404, name
        assert response.json["error"]["code"] == "not_found"


def test_redoc_from_a_cdn_is_gone(client):
    assert client.get("/api/v1/redoc").status_code == 404


def test_the_openapi_document_is_written_when_first_read_with_every_blueprint_in_order(app):
    """api.DoorstepApi describes the views when the document is first read: an app that
    never serves it never pays, and the one it serves names every operation, tagged in the
    order the blueprints were registered (flask-smorest's own order)."""
    api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    waiting = [name for _, name, _ in api._undocumented]
    assert "sync" in waiting and "auth" in waiting
    assert api.__dict__["_spec"].to_dict()["paths"] == {}

    document = app.test_client().get("/api/v1/openapi.json").json
    assert api._undocumented == []
    assert [tag["name"] for tag in document["tags"]] == waiting
    assert "post" in document["paths"]["/api/v1/sync/push"]
    # Read again: the same document, nothing described twice.
    assert app.test_client().get("/api/v1/openapi.json").json == document


def test_two_first_readers_at_once_get_one_whole_document(app):
    api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    waiting = [name for _, name, _ in api._undocumented]
    documents: list[dict] = []

    def read() -> None:
        documents.append(api.spec.to_dict())

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout=60)
    assert len(documents) == 4
    for document in documents:
        assert [tag["name"] for tag in document["tags"]] == waiting
        assert "/api/v1/sync/push" in document["paths"]


def test_a_blueprint_that_cannot_be_described_fails_every_read(app, monkeypatch):
    """Never half a document: the failure is raised again on the next read."""
    api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    blp = next(blp for blp, name, _ in api._undocumented if name == "sync")

    def broken(*_args, **_kwargs):
        raise RuntimeError("cannot describe")

    monkeypatch.setattr(blp, "register_views_in_doc", broken)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            api.spec  # noqa: B018 - reading it writes it
