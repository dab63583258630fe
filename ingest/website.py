"""Docs websites as a source: `devcopilot ingest https://docs.example.com/llms.txt` (or a sitemap, or a site root).

The pages are fetched into a mirror folder of Markdown files (data dir `sources/site-HOST-HASH/`),
which the ordinary ingest then indexes like any folder: chunks by headings, re-embedded only
when a page's Markdown changed. Each file starts with front matter naming its page URL, and each
heading keeps the page's anchor (`## Install {#install}`), so a chunk cites `URL#anchor`.

The rules: pages on the entry URL's host only; robots.txt is obeyed (its Crawl-delay too); at
most `ingest.site_max_pages` pages, `ingest.site_concurrency` requests at a time. Every response
(robots.txt, llms.txt, sitemaps and pages) is read within bounds: at most MAX_PAGE_BYTES (reading
stops there), within `ingest.site_page_seconds` however slowly it comes, and the whole site within
`ingest.site_seconds`; a page over a bound is skipped and counted, what was fetched in time is
indexed. For the server's doors, connections go only where the outbound policy allows
(ingest/outbound.py, ingest/http_client.py), every redirect hop included. A re-ingest
sends each page's ETag / Last-Modified back (304: the mirror is kept as it is); pages no longer
listed are removed. An llms.txt lists pages as Markdown links; a sitemap as <loc> entries (a
sitemap index is followed); a site root is read through its sitemap (robots.txt's Sitemap: lines
or /sitemap.xml), else crawled through its links, under the root's path.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import urllib.robotparser
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit
from xml.etree import ElementTree

import httpx

from ingest.http_client import TimeLimit, client, time_limit
from ingest.outbound import Outbound, OutboundRefused
from ingest.sources import ResolvedSource, SourceError, normalize_spec

USER_AGENT = "devcopilot-docs-indexer/0.1"
STATE = ".devcopilot-site.json"  # ETags, Last-Modified and hashes of the pages; hidden: never indexed
MARKDOWN_TYPES = ("text/markdown", "text/x-markdown", "text/plain")
MAX_PAGE_BYTES = 5_000_000
MAX_CRAWL_DELAY = 10.0
TOO_LARGE = f"larger than {MAX_PAGE_BYTES:,} bytes"
REFUSED = "at addresses the server may not fetch (server.fetch_allow)"


@dataclass
class SiteOptions:
    max_pages: int = 500
    concurrency: int = 4
    timeout_s: float = 20.0  # each connect or read
    page_seconds: float = 60.0  # each response, whole
    site_seconds: float = 1800.0  # the whole site

    @property
    def too_slow(self) -> str:
        return f"took longer than {self.page_seconds:g} s (ingest.site_page_seconds)"

    @property
    def too_late(self) -> str:
        return f"not fetched within {self.site_seconds:g} s (ingest.site_seconds)"


class PageSkipped(Exception):
    """A response not read whole within its bounds; the message is the reason it is counted under."""


@dataclass
class Page:
    """A response read whole: what the crawl reads of it."""
    url: str  # after redirects
    status_code: int
    headers: httpx.Headers
    content: bytes
    encoding: str | None  # the charset its Content-Type names

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")


@dataclass
class SiteSource(ResolvedSource):
    """A mirrored website: chunks link to their page URL and the anchor of the heading above them."""
    _pages: dict[str, tuple[str, list[tuple[int, str]]]] = field(default_factory=dict, repr=False)

    def link(self, path: str, start: int, end: int) -> str:
        url, anchors = self._page(path)
        if not url:
            return super().link(path, start, end)
        anchor = next((a for line, a in reversed(anchors) if line <= start), "")
        return f"{url}#{anchor}" if anchor else url

    def _page(self, path: str) -> tuple[str, list[tuple[int, str]]]:
        if path not in self._pages:
            try:
                lines = (self.root / path).read_text(encoding="utf-8").split("\n")
            except OSError:
                lines = []
            url = next((ln.split(":", 1)[1].strip() for ln in lines[:6] if ln.startswith("source_url:")), "")
            anchors = [(n, m.group(1)) for n, ln in enumerate(lines, 1)
                       if (m := re.match(r"^#{1,6} .*\{#([^}\s]+)\}\s*$", ln))]
            self._pages[path] = (url, anchors)
        return self._pages[path]


def site_dir(data_dir: Path, url: str) -> Path:
    host = re.sub(r"[^A-Za-z0-9]+", "-", urlsplit(url).netloc).strip("-")[:40] or "site"
    return data_dir / "sources" / f"site-{host}-{hashlib.sha256(url.encode()).hexdigest()[:10]}"


def site_source(url: str, data_dir: Path, options: SiteOptions | None = None, fetch: bool = True,
                outbound: Outbound | None = None) -> SiteSource:
    """Mirror the site the URL names (when `fetch`) and return it as a source. `outbound`: the policy of
    the server's doors (None: the operator's fetch, unchecked)."""
    url = normalize_spec(url)
    dest = site_dir(data_dir, url)
    if fetch:
        skipped, version = Crawl(url, dest, options or SiteOptions(), outbound).run()
    elif not dest.is_dir():
        raise SourceError(f"'{url}' has not been fetched yet; run `devcopilot ingest {url}`.")
    else:
        skipped, version = Counter(), _load_state(dest).get("fetched", "")
    return SiteSource(url, "website", dest, dest, version=version, skipped=dict(skipped))


def _load_state(dest: Path) -> dict:
    try:
        return json.loads((dest / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class Crawl:
    def __init__(self, url: str, dest: Path, options: SiteOptions, outbound: Outbound | None = None):
        self.url, self.dest, self.options, self.outbound = url, dest, options, outbound
        parts = urlsplit(url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.netloc = parts.netloc
        self.skipped: Counter = Counter()
        self.robots = urllib.robotparser.RobotFileParser()
        self.delay = 0.0
        self._lock = threading.Lock()
        self._last = 0.0
        self.prefetched: dict[str, Page] = {}  # pages a crawl already read
        self.until = time.monotonic() + options.site_seconds  # set again when the run starts
        self.client = client(outbound, options.timeout_s, {"User-Agent": USER_AGENT})

    # -- fetching ------------------------------------------------------------------------------
    def get(self, url: str, headers: dict | None = None) -> Page:
        """The response to `url`, read whole within its bounds, else PageSkipped saying which one: at most
        MAX_PAGE_BYTES (reading stops there, so an endless page costs no more), within the page's time
        and the site's (a deadline for the whole response, however slowly it drips). Raises httpx's
        errors, and OutboundRefused for an address the policy does not allow (a redirect's too)."""
        if self.delay:  # robots.txt's Crawl-delay: one request at a time, that far apart
            with self._lock:
                wait = min(self._last + self.delay, self.until) - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self._last = time.monotonic()
        now = time.monotonic()
        if now >= self.until:
            raise PageSkipped(self.options.too_late)
        until = min(now + self.options.page_seconds, self.until)
        late = self.options.too_late if until == self.until else self.options.too_slow
        try:
            with time_limit(until), self.client.stream("GET", url, headers=headers or {}) as r:
                data = bytearray()
                for piece in r.iter_bytes():
                    data += piece
                    if len(data) > MAX_PAGE_BYTES:
                        raise PageSkipped(TOO_LARGE)
                    if time.monotonic() >= until:  # also through a proxy, whose connections are httpx's own
                        raise PageSkipped(late)
                return Page(str(r.url), r.status_code, r.headers, bytes(data), r.charset_encoding)
        except TimeLimit:
            raise PageSkipped(late) from None

    def _skip(self, reason: str) -> None:
        with self._lock:
            self.skipped[reason] += 1

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.netloc != self.netloc:
            self.skipped["on another host"] += 1
            return False
        if not self.robots.can_fetch(USER_AGENT, url):
            self.skipped["refused by robots.txt"] += 1
            return False
        return True

    def run(self) -> tuple[Counter, str]:
        self.until = time.monotonic() + self.options.site_seconds
        try:
            if self.outbound is not None:  # up front, to name the URL (each connection is checked again)
                self.outbound.check_url(self.url)
            self.read_robots()
            pages = self.list_pages()
            if not pages:
                raise SourceError(f"'{self.url}' lists no pages this copilot may read (same host, allowed by "
                                  "robots.txt); give an llms.txt, a sitemap or the docs' root page.")
            if len(pages) > self.options.max_pages:
                self.skipped[f"over the page limit ({self.options.max_pages})"] += len(pages) - self.options.max_pages
                pages = pages[:self.options.max_pages]
            return self.fetch_pages(pages), time.strftime("%Y-%m-%d", time.gmtime())
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            raise SourceError(f"Could not read '{self.url}' ({type(e).__name__}: {str(e)[:160] or 'no detail'}); "
                              "check the URL and that the site is reachable.") from None
        except PageSkipped as e:  # robots.txt, the llms.txt or sitemap named, or the root page
            was = "was " if str(e) == TOO_LARGE else ""
            raise SourceError(f"Could not read '{self.url}': a response {was}{e}; check the URL"
                              + (", or raise that setting." if "ingest." in str(e) else ".")) from None
        finally:
            self.client.close()

    def read_robots(self) -> None:
        r = self.get(self.origin + "/robots.txt")
        if r.status_code == 200:
            self.robots.parse(r.text.splitlines())
            self.delay = min(float(self.robots.crawl_delay(USER_AGENT) or 0), MAX_CRAWL_DELAY)
        else:  # no robots.txt (404) allows everything; a server error is taken the same way
            self.robots.parse([])

    # -- what to fetch -------------------------------------------------------------------------
    def list_pages(self) -> list[str]:
        path = urlsplit(self.url).path
        if not self.allowed(self.url):
            raise SourceError(f"robots.txt of {self.origin} does not allow reading '{self.url}'.")
        if path.endswith("llms-full.txt"):
            return [self.url]  # the whole docs in one Markdown file
        r = self.get(self.url)
        _check(r, self.url)
        kind = r.headers.get("content-type", "")
        if path.endswith(".txt"):
            return self._same_host(llms_links(r.text, str(r.url)))
        if path.endswith(".xml") or "xml" in kind and "html" not in kind:
            return self._same_host(self.sitemap(r.text, str(r.url)))
        for sitemap in self.robots.site_maps() or [self.origin + "/sitemap.xml"]:
            try:
                s = self.get(sitemap)
            except (httpx.HTTPError, httpx.InvalidURL, PageSkipped, OutboundRefused):
                continue
            if s.status_code == 200 and ("<urlset" in s.text[:2000] or "<sitemapindex" in s.text[:2000]):
                prefix = self.url.rstrip("/") + "/"
                found = [u for u in self._same_host(self.sitemap(s.text, str(s.url)))
                         if u.rstrip("/") == self.url.rstrip("/") or u.startswith(prefix)]
                if found:
                    return found
        return self.crawl(r)

    def _same_host(self, urls: list[str]) -> list[str]:
        out = []
        for u in dict.fromkeys(urldefrag(u)[0] for u in urls):
            if self.allowed(u):
                out.append(u)
        return out

    def sitemap(self, xml: str, base: str, depth: int = 0) -> list[str]:
        try:
            root = ElementTree.fromstring(xml.encode("utf-8"))
        except ElementTree.ParseError:
            raise SourceError(f"The sitemap '{base}' is not valid XML.") from None
        locs = [e.text.strip() for e in root.iter() if e.tag.endswith("loc") and e.text]
        if not root.tag.endswith("sitemapindex"):
            return [urljoin(base, u) for u in locs]
        out: list[str] = []
        for child in locs[:50]:
            child = urljoin(base, child)
            if depth < 2 and urlsplit(child).netloc == self.netloc and self.allowed(child):
                try:
                    r = self.get(child)
                except PageSkipped as e:
                    self._skip(str(e))
                    continue
                except OutboundRefused:
                    self._skip(REFUSED)
                    continue
                if r.status_code == 200:
                    out += self.sitemap(r.text, str(r.url), depth + 1)
        return out

    def crawl(self, first: Page) -> list[str]:
        """Pages reachable by links from the root page, under its path, breadth first. The pages read
        on the way are kept, so each is fetched once."""
        from bs4 import BeautifulSoup

        path = urlsplit(self.url).path
        prefix = self.origin + (path if path.endswith("/") else path.rsplit("/", 1)[0] + "/")
        start = urldefrag(str(first.url))[0]
        seen, refused = {start}, set()
        queue = [(start, first)]
        pages: list[str] = []
        while queue and len(pages) <= self.options.max_pages:
            url, r = queue.pop(0)
            if r is None:
                try:
                    r = self.get(url)
                except (httpx.HTTPError, httpx.InvalidURL):
                    self.skipped["could not be fetched"] += 1
                    continue
                except PageSkipped as e:
                    self.skipped[str(e)] += 1
                    continue
                except OutboundRefused:
                    self.skipped[REFUSED] += 1
                    continue
            if r.status_code != 200 or "html" not in r.headers.get("content-type", ""):
                self.skipped[f"HTTP {r.status_code}" if r.status_code != 200 else "not HTML or Markdown"] += 1
                continue
            pages.append(url)
            self.prefetched[url] = r
            for a in BeautifulSoup(r.text, "html.parser").find_all("a", href=True):
                u = urldefrag(urljoin(str(r.url), a["href"]))[0]
                if u in seen or u in refused or not u.startswith(prefix) or urlsplit(u).netloc != self.netloc \
                        or re.search(r"\.(png|jpe?g|gif|svg|pdf|zip|css|js|ico|woff2?)$", u, re.I):
                    continue
                if self.robots.can_fetch(USER_AGENT, u):
                    seen.add(u)
                    queue.append((u, None))
                else:
                    refused.add(u)
                    self.skipped["refused by robots.txt"] += 1
        return pages

    # -- fetching the pages into the mirror ---------------------------------------------------------
    def fetch_pages(self, pages: list[str]) -> Counter:
        state = _load_state(self.dest).get("pages", {})
        self.dest.mkdir(parents=True, exist_ok=True)
        workers = 1 if self.delay else max(1, self.options.concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="site-fetch") as pool:
            results = list(pool.map(lambda u: self.fetch_page(u, state.get(u)), pages))
        new_state = {}
        keep = set()
        for url, entry in zip(pages, results):
            if entry is not None:
                new_state[url] = entry
                keep.add(entry["path"])
        for f in self.dest.rglob("*.md"):  # pages no longer listed leave the mirror
            if f.relative_to(self.dest).as_posix() not in keep:
                f.unlink()
        tmp = self.dest / (STATE + ".tmp")
        tmp.write_text(json.dumps({"url": self.url, "fetched": time.strftime("%Y-%m-%d", time.gmtime()),
                                   "pages": new_state}, indent=1), encoding="utf-8")
        os.replace(tmp, self.dest / STATE)
        return self.skipped

    def fetch_page(self, url: str, old: dict | None) -> dict | None:
        """Fetch one page into the mirror; the state entry to keep, or None when it could not be read."""
        path = mirror_path(url)
        headers = {}
        if old and (self.dest / old["path"]).is_file():
            if old.get("etag"):
                headers["If-None-Match"] = old["etag"]
            if old.get("last_modified"):
                headers["If-Modified-Since"] = old["last_modified"]
        try:
            r = self.prefetched.pop(url, None) or self.get(url, headers)
        except (httpx.HTTPError, httpx.InvalidURL):
            self._skip("could not be fetched")
            return None
        except PageSkipped as e:
            self._skip(str(e))
            return None
        except OutboundRefused:
            self._skip(REFUSED)
            return None
        if r.status_code == 304 and old:
            return old
        if r.status_code != 200:
            self._skip(f"HTTP {r.status_code}")
            return None
        kind = r.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind.startswith(MARKDOWN_TYPES) or urlsplit(url).path.endswith((".md", ".txt")):
            title, body = "", r.text
        elif "html" in kind:
            title, body = html_to_markdown(r.text, str(r.url))
        else:
            with self._lock:
                self.skipped["not HTML or Markdown"] += 1
            return None
        text = front_matter(title, url) + body.strip() + "\n"
        digest = hashlib.sha256(text.encode()).hexdigest()
        target = self.dest / path
        if not (old and old.get("hash") == digest and target.is_file()):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return {"path": path, "etag": r.headers.get("etag", ""), "last_modified": r.headers.get("last-modified", ""),
                "hash": digest}


def _check(r: Page, url: str) -> None:
    if r.status_code != 200:
        raise SourceError(f"'{url}' answered HTTP {r.status_code}; check the URL.")


def llms_links(text: str, base: str) -> list[str]:
    """The pages an llms.txt lists: its Markdown links, resolved against its URL."""
    return [urljoin(base, m.group(1)) for m in re.finditer(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)]


def mirror_path(url: str) -> str:
    """Where a page's Markdown lives in the mirror: its URL path, as a .md file."""
    parts = urlsplit(url)
    path = parts.path
    if not path or path.endswith("/"):
        path += "index"
    path = re.sub(r"\.(html?|md|markdown|txt|php|aspx?)$", "", path, flags=re.IGNORECASE)
    segments = [re.sub(r"[^\w.-]+", "-", s).strip("-.") or "_" for s in path.split("/") if s not in ("", ".", "..")]
    if parts.query:
        segments[-1] += "-" + hashlib.sha256(parts.query.encode()).hexdigest()[:8]
    return "/".join(segments or ["index"]) + ".md"


def front_matter(title: str, url: str) -> str:
    title = title.replace('"', "'").strip()
    return "---\n" + (f'title: "{title}"\n' if title else "") + f"source_url: {url}\n---\n\n"


def html_to_markdown(html: str, url: str = "") -> tuple[str, str]:
    """(title, Markdown of the page's main content); headings keep their anchors as `{#id}`, links are
    made absolute against the page's `url` (so a cited passage's links work where it is quoted)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    main = soup.find("main") or soup.find("article") or soup.find(attrs={"role": "main"}) or soup.body or soup
    for tag in main.find_all(["script", "style", "nav", "header", "footer", "aside", "noscript", "svg", "form",
                              "button", "template"]):
        tag.decompose()
    for a in main.select("a.headerlink, a.anchor-link, a.hash-link, a.header-anchor"):  # the ¶ marks of doc themes
        a.decompose()
    if url:
        for a in main.find_all("a", href=True):
            a["href"] = urljoin(url, a["href"])
    return title, _converter().convert_soup(main)


def heading_anchor(el) -> str:
    """The id a link to this heading uses: its own, an anchor inside it, or its section's."""
    if el.get("id"):
        return el["id"]
    inner = el.find("a", attrs={"id": True}) or el.find("a", attrs={"name": True})
    if inner is not None:
        return inner.get("id") or inner.get("name")
    parent = el.parent
    if parent is not None and parent.name in ("section", "div") and parent.get("id") \
            and parent.find(re.compile(r"^h[1-6]$")) is el:
        return parent["id"]
    return ""


_CONVERTER = None


def _converter():
    global _CONVERTER
    if _CONVERTER is None:
        from markdownify import ATX, MarkdownConverter

        class Converter(MarkdownConverter):
            def convert_hN(self, n, el, text, parent_tags):  # noqa: N802 (markdownify's name)
                out = super().convert_hN(n, el, text, parent_tags)
                anchor = heading_anchor(el)
                if anchor and "_inline" not in parent_tags and re.fullmatch(r"[^\s{}]+", anchor):
                    out = out.rstrip("\n") + f" {{#{anchor}}}\n\n"
                return out

        def language(el) -> str:  # `language-x` on <pre>/<code> (MkDocs, Docusaurus), `highlight-x` around (Sphinx)
            around = [e for e in (el.parent, el.parent.parent if el.parent else None) if e is not None]
            classes = " ".join(el.get("class", []) + (el.code.get("class", []) if el.code else [])
                               + [c for e in around for c in e.get("class", [])])
            m = re.search(r"(?:language|lang|highlight)-([\w+-]+)", classes)
            return m.group(1) if m else ""

        _CONVERTER = Converter(heading_style=ATX, code_language_callback=language, bullets="-", escape_misc=False)
    return _CONVERTER
