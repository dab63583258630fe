"""Package registries on this machine, for releases (`pypi:NAME==V`, `npm:NAME@V`) without the internet.

`PackageIndex`: a PEP 503 simple index served over HTTP from a folder, holding sdists (or wheels)
written here by hand (a tar.gz of NAME-VERSION/ with PKG-INFO and the files), each listed with its
sha256. `NpmRegistry`: the two routes `npm pack NAME@V` reads (the package document and its
tarball). `pip_env` / `npm_env` are the environment variables that point pip and npm at them and
at nothing else (no configuration file, a private npm cache).
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
import threading
import zipfile
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from support.servers import free_port


def _tar(files: dict[str, str | bytes], top: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel, content in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(f"{top}/{rel}" if top else rel)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class PackageIndex:
    """`with PackageIndex(folder) as index:` a simple index at `index.url`; `index.add(...)` publishes."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        (self.folder / "simple").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.requests: list[str] = []
        index = self

        class Handler(_Quiet):
            def do_GET(self):
                index.requests.append(self.path)
                super().do_GET()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), partial(Handler, directory=str(self.folder)))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple"

    def add(self, name: str, version: str, files: dict[str, str | bytes], wheel: bool = False,
            sha256: str | None = None) -> Path:
        """Publish NAME VERSION: an sdist (NAME-VERSION/PKG-INFO + files), or a wheel; `sha256` lists a wrong
        hash on the index page (a tampered archive)."""
        project = self.folder / "simple" / canonical(name)
        project.mkdir(parents=True, exist_ok=True)
        stem = f"{name.replace('-', '_')}-{version}"
        if wheel:
            path = project / f"{stem}-py3-none-any.whl"
            with zipfile.ZipFile(path, "w") as z:
                for rel, content in files.items():
                    z.writestr(rel, content)
                z.writestr(f"{stem}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        else:
            path = project / f"{stem}.tar.gz"
            pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            path.write_bytes(_tar({"PKG-INFO": pkg_info, **files}, stem))
        self._page(project, {path.name: sha256} if sha256 else {})
        return path

    def _page(self, project: Path, wrong: dict[str, str]) -> None:
        links = []
        for f in sorted(project.iterdir()):
            if f.name == "index.html":
                continue
            digest = wrong.get(f.name) or hashlib.sha256(f.read_bytes()).hexdigest()
            links.append(f'<a href="{f.name}#sha256={digest}">{f.name}</a><br/>')
        (project / "index.html").write_text("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")

    def __enter__(self) -> PackageIndex:
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def pip_env(index_url: str) -> dict[str, str]:
    """pip reading `index_url` only: no configuration file, no extra index."""
    return {"PIP_CONFIG_FILE": "/dev/null", "PIP_INDEX_URL": index_url, "PIP_EXTRA_INDEX_URL": "",
            "PIP_FIND_LINKS": ""}


class NpmRegistry:
    """`with NpmRegistry() as registry:` packages at `registry.url`; `registry.add(...)` publishes."""

    def __init__(self):
        self.port = free_port()
        self.packages: dict[str, dict[str, tuple[bytes, str]]] = {}  # name -> version -> (tarball, integrity)
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body, kind = registry._answer(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def add(self, name: str, version: str, files: dict[str, str | bytes], integrity: str | None = None) -> bytes:
        """Publish NAME@VERSION (package/package.json + files); `integrity` lists a wrong one (a tampered tarball)."""
        manifest = json.dumps({"name": name, "version": version})
        data = _tar({"package.json": manifest, **files}, "package")
        real = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        self.packages.setdefault(name, {})[version] = (data, integrity or real)
        return data

    def _answer(self, path: str) -> tuple[bytes | None, str]:
        path = path.split("?", 1)[0]
        if "/-/" in path:
            name, _, file = path.strip("/").partition("/-/")
            for version, (data, _) in self.packages.get(name.replace("%2f", "/"), {}).items():
                if file.endswith(f"-{version}.tgz"):
                    return data, "application/octet-stream"
            return None, "text/plain"
        name = path.strip("/").replace("%2f", "/").replace("%2F", "/")
        versions = self.packages.get(name)
        if not versions:
            return None, "application/json"
        short = name.split("/")[-1]
        doc = {"name": name, "dist-tags": {"latest": list(versions)[-1]},
               "versions": {v: {"name": name, "version": v,
                                "dist": {"tarball": f"{self.url}{name}/-/{short}-{v}.tgz", "integrity": integ,
                                         "shasum": hashlib.sha1(data).hexdigest()}}
                            for v, (data, integ) in versions.items()}}
        return json.dumps(doc).encode(), "application/json"

    def __enter__(self) -> NpmRegistry:
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def npm_env(registry_url: str, cache: Path) -> dict[str, str]:
    """npm reading `registry_url`, with a cache of its own (nothing shared with the machine's)."""
    return {"npm_config_registry": registry_url, "npm_config_cache": str(cache), "npm_config_userconfig": "/dev/null",
            "npm_config_update_notifier": "false", "npm_config_audit": "false", "npm_config_fund": "false"}
