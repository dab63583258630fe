"""Docs websites as a source, against a small site served on loopback: llms.txt, sitemap, site root;
same host only, robots.txt, page limit, HTML to Markdown by headings, URL#anchor citations, and
re-ingest with ETag / Last-Modified and content hashes."""
from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support.servers import free_port

from ingest.sources import is_git_url, is_website_url
from ingest.website import html_to_markdown, mirror_path
from ui.cli import main

DATE = "Tue, 03 Nov 2026 10:00:00 GMT"
NAV = "<nav><a href='/'>Home</a> | <a href='/blog/'>Blog of unrelated chatter</a></nav>"


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><title>{title}</title><script>var tracking = 1;</script></head><body>"
            f"<header>Site header banner</header>{NAV}<main>{body}</main><footer>Copyright footer</footer></body>"
            "</html>")


def site() -> dict[str, tuple[str, str]]:
    return {
        "/robots.txt": ("text/plain", "User-agent: *\nDisallow: /private/\n"),
        "/llms.txt": ("text/plain", "# Widgets\n\n> Docs for widgets.\n\n## Docs\n\n"
                                    "- [Install](/guide/install.html): getting it\n"
                                    "- [Memory](/guide/memory.html)\n"
                                    "- [Raw notes](/guide/raw.md)\n"
                                    "- [Secret](/private/secret.html)\n"
                                    "- [Elsewhere](https://other.example.org/page.html)\n"),
        "/sitemap.xml": ("application/xml", '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/'
                                            'sitemap/0.9"><url><loc>/guide/install.html</loc></url><url><loc>/guide/'
                                            'memory.html</loc></url><url><loc>/guide/api.html</loc></url></urlset>'),
        "/": ("text/html", page("Widgets", "<h1>Widgets</h1><p>Start with <a href='/guide/install.html'>install"
                                           "</a>, <a href='/guide/memory.html#long-term-memory'>memory</a>, "
                                           "<a href='/private/secret.html'>secret</a> and <a href='https://other."
                                           "example.org/x'>elsewhere</a>.</p>")),
        "/guide/install.html": ("text/html", page("Install · Widgets", (
            "<h1 id='install'>Install<a class='headerlink' href='#install'>¶</a></h1>"
            f"<p>{'Widgets come in many shapes and colours, each for its own purpose. ' * 14}</p>"
            "<section id='installing-it'><h2>Installing it<a class='headerlink' href='#installing-it'>¶</a></h2>"
            "<p>Run the sprocket installer with <code>pip install widgets</code> to get the zeppelin toolkit.</p>"
            "<pre><code class='language-python'>import widgets\nwidgets.setup(flux=3)\n</code></pre></section>"))),
        "/guide/memory.html": ("text/html", page("Memory", (
            "<article><h1>Memory</h1>"
            f"<p>{'Agents remember what they were told in earlier turns of a conversation. ' * 14}</p>"
            "<h2 id='long-term-memory'>Long-term memory</h2>"
            "<p>Give an agent long-term memory with a MemoryStore kept on disk.</p></article>"))),
        "/guide/api.html": ("text/html", page("API", "<h1 id='api'>API</h1><p>The gadget builder API.</p>")),
        "/guide/raw.md": ("text/markdown", "# Raw notes\n\n## Tuning {#tuning}\n\nTune the carburettor gently.\n"),
        "/private/secret.html": ("text/html", page("Secret", "<h1>Secret</h1><p>Nobody may read this.</p>")),
    }


class Site:
    """A small docs site on loopback that answers conditional requests, and counts what it was asked."""

    def __init__(self):
        self.pages = site()
        self.requests: Counter = Counter()
        self.not_modified: Counter = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                path = self.path.split("?")[0]
                outer.requests[path] += 1
                if path not in outer.pages:
                    self.send_response(404)
                    self.end_headers()
                    return
                kind, body = outer.pages[path]
                data = body.encode()
                etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
                dated = path.endswith(".md")  # Markdown pages carry Last-Modified only, the others an ETag
                validator = ("Last-Modified", DATE) if dated else ("ETag", etag)
                if self.headers.get("If-Modified-Since" if dated else "If-None-Match") == validator[1]:
                    outer.not_modified[path] += 1
                    self.send_response(304)
                    self.send_header(*validator)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind + "; charset=utf-8")
                self.send_header(*validator)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def web():
    s = Site()
    yield s
    s.close()


def ingest(data: Path, spec: str, capsys, *extra: str) -> str:
    capsys.readouterr()
    assert main(["--data-dir", str(data), "ingest", spec, "--kb", "site", "--quiet", *extra]) == 0
    return capsys.readouterr().out


def search(data: Path, query: str, capsys) -> list[dict]:
    capsys.readouterr()
    assert main(["--data-dir", str(data), "search", query, "--kb", "site", "--json", "--k", "3"]) == 0
    return json.loads(capsys.readouterr().out)["hits"]


def test_llms_txt_pages_are_indexed_by_heading_and_cited_with_anchors(web, tmp_path, capsys):
    data = tmp_path / "data"
    out = ingest(data, web.url + "/llms.txt", capsys)
    assert "3 files (3 new or changed" in out
    assert "1 refused by robots.txt" in out and "1 on another host" in out
    assert web.requests["/private/secret.html"] == 0 and web.requests["/robots.txt"] >= 1

    hit = search(data, "sprocket installer zeppelin toolkit", capsys)[0]
    assert hit["link"] == web.url + "/guide/install.html#installing-it"
    assert hit["path"] == "guide/install.md" and hit["headings"] == ["Install · Widgets", "Install", "Installing it"]
    assert "pip install widgets" in hit["text"] and "```python\nimport widgets" in hit["text"]
    for chrome in ("Blog of unrelated chatter", "Site header banner", "Copyright footer", "tracking", "¶"):
        assert chrome not in hit["text"]
    raw = search(data, "tune the carburettor", capsys)[0]
    assert raw["link"] == web.url + "/guide/raw.md"  # it starts at "# Raw notes", which has no anchor

    # Re-ingest: every page answers 304 to its ETag; nothing is re-chunked.
    out = ingest(data, web.url + "/llms.txt", capsys)
    assert "3 files (0 new or changed, 0 removed), 0 chunks written" in out
    assert web.not_modified["/guide/install.html"] == 1 and web.not_modified["/guide/memory.html"] == 1
    assert web.not_modified["/guide/raw.md"] == 1  # by Last-Modified

    # A changed page is fetched and re-embedded alone; a page the list drops is removed.
    kind, body = web.pages["/guide/memory.html"]
    web.pages["/guide/memory.html"] = (kind, body.replace("kept on disk", "kept in a vault of obsidian"))
    web.pages["/llms.txt"] = (web.pages["/llms.txt"][0], web.pages["/llms.txt"][1].replace(
        "- [Raw notes](/guide/raw.md)\n", ""))
    out = ingest(data, web.url + "/llms.txt", capsys)
    assert "2 files (1 new or changed, 1 removed)" in out
    assert search(data, "vault of obsidian", capsys)[0]["link"] == web.url + "/guide/memory.html#long-term-memory"
    assert search(data, "tune the carburettor", capsys)[0]["path"] != "guide/raw.md"

    # status says what it is; forget removes the mirror too
    assert main(["--data-dir", str(data), "status", "--json"]) == 0
    src = json.loads(capsys.readouterr().out)["knowledge_bases"][0]["sources"][0]
    assert src["kind"] == "website" and src["spec"] == web.url + "/llms.txt"
    mirrors = list((data / "sources").glob("site-*"))
    assert len(mirrors) == 1 and (mirrors[0] / "guide" / "install.md").is_file()
    assert main(["--data-dir", str(data), "forget", web.url + "/llms.txt", "--kb", "site"]) == 0
    assert not mirrors[0].exists()


def test_a_sitemap_within_the_page_limit(web, tmp_path, capsys):
    config = tmp_path / "devcopilot.toml"
    config.write_text("[ingest]\nsite_max_pages = 2\nsite_concurrency = 2\n")
    out = ingest(tmp_path / "data", web.url + "/sitemap.xml", capsys)
    assert "3 files" in out
    capsys.readouterr()
    assert main(["--config", str(config), "--data-dir", str(tmp_path / "d2"), "ingest", web.url + "/sitemap.xml",
                 "--kb", "site", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "2 files (2 new or changed" in out and "1 over the page limit (2)" in out


def test_a_site_root_is_read_through_its_sitemap_or_its_links(web, tmp_path, capsys):
    assert "3 files" in ingest(tmp_path / "a", web.url, capsys)  # the sitemap
    del web.pages["/sitemap.xml"]
    out = ingest(tmp_path / "b", web.url + "/", capsys)  # no sitemap: the links, same host, robots.txt obeyed
    assert "3 files (3 new or changed" in out and "1 refused by robots.txt" in out
    assert web.requests["/private/secret.html"] == 0
    hit = search(tmp_path / "b", "long-term memory agent MemoryStore", capsys)[0]
    assert hit["link"] == web.url + "/guide/memory.html#long-term-memory"


def test_an_unreachable_site_is_one_sentence_and_leaves_nothing(tmp_path, capfd):
    url = f"http://127.0.0.1:{free_port()}/llms.txt"
    assert main(["--data-dir", str(tmp_path / "data"), "ingest", url, "--quiet"]) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith(f"devcopilot: Could not read '{url}'") and "\n" not in err
    assert not (tmp_path / "data" / "sources").exists()


def test_a_missing_page_is_one_sentence(web, tmp_path, capfd):
    assert main(["--data-dir", str(tmp_path / "data"), "ingest", web.url + "/nope/llms.txt", "--quiet"]) == 2
    assert "answered HTTP 404" in capfd.readouterr().err


@pytest.mark.parametrize("url, git", [
    ("https://github.com/acme/widgets", True),
    ("https://gitlab.com/acme/group/widgets", True),
    ("https://git.example.org/acme/widgets.git", True),
    ("https://example.com/repo.git;touch${IFS}pwned", True),  # still refused by the git rules
    ("git@github.com:acme/widgets.git", True),
    ("https://docs.example.com/", False),
    ("https://docs.example.com/llms.txt", False),
    ("https://acme.github.io/widgets/sitemap.xml", False),
    ("http://127.0.0.1:8000/docs/", False),
])
def test_git_urls_and_websites_are_told_apart(url, git):
    assert is_git_url(url) is git
    assert is_website_url(url) is (not git and url.startswith("http"))


def test_html_to_markdown_and_mirror_paths():
    title, md = html_to_markdown(page("T", "<h2 id='a-b'>A <code>b</code></h2><ul><li>one</li></ul>"
                                          "<pre class='highlight-bash'><code>ls -l</code></pre>"))
    assert title == "T" and "## A `b` {#a-b}" in md and "- one" in md and "```bash\nls -l\n```" in md
    assert mirror_path("https://x.org/docs/") == "docs/index.md"
    assert mirror_path("https://x.org/docs/intro.html") == "docs/intro.md"
    sphinx = ("<div role='main'><section id='quickstart'><h1>Quickstart<a class='headerlink' href='#quickstart'>"
              "¶</a></h1><p>Use <a href='api.html#click.command'>command</a>.</p><div class='highlight-python "
              "notranslate'><div class='highlight'><pre><span></span>import click\n</pre></div></div></section></div>")
    _, md = html_to_markdown(f"<html><body><nav>Contents</nav>{sphinx}</body></html>", "https://x.org/docs/qs.html")
    assert md.strip().startswith("# Quickstart {#quickstart}") and "Contents" not in md and "¶" not in md
    assert "[command](https://x.org/docs/api.html#click.command)" in md and "```python\nimport click" in md
    odd = mirror_path("https://x.org/a/../b?x=1")
    assert odd.startswith("a/b-") and odd.endswith(".md")  # no '..' in the mirror; the query kept apart


def test_the_web_ui_may_add_websites_but_not_readers(tmp_path):
    from ui.knowledge import SourceRefused, check_source

    roots = [tmp_path.resolve()]
    assert check_source("https://docs.example.com/llms.txt", roots) == "https://docs.example.com/llms.txt"
    for spec in ("llamaindex:os.system", "documents:anything"):
        with pytest.raises(SourceRefused, match="only be added from the command line"):
            check_source(spec, roots)
