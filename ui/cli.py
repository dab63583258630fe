"""The command line: `devcopilot ingest | search | refs | changes | drift | status | eval | forget | ask | mcp | usage |
serve`.

A thin layer over the core: each command parses its flags and calls indexes/ or copilot/; `serve`
starts ui/server.py, `mcp` ui/mcp_server.py over stdio.

Every error a user can cause prints one sentence on stderr and exits 2; nothing here
prints a traceback for those.
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import stat
import sys
from dataclasses import replace
from pathlib import Path

from copilot.config import ConfigError, load_config, redact_url
from ingest.environment import default_environment
from ingest.files import counted, skipped_counts

USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, ValueError, RuntimeError, OSError)


class _Parser(argparse.ArgumentParser):
    """Usage mistakes print one sentence (not the usage block) and exit 2, like every user error;
    a mistyped command gets the closest one suggested."""

    def error(self, message: str):
        m = re.search(r"argument COMMAND: invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            choices = re.findall(r"'([^']*)'", m.group(2))
            close = difflib.get_close_matches(m.group(1), choices, n=1, cutoff=0.5)
            hint = f"did you mean `{self.prog} {close[0]}`?" if close else f"the commands are {', '.join(choices)}."
            self.exit(2, f"{self.prog}: Unknown command '{m.group(1)}'; {hint} See `{self.prog} --help`.\n")
        self.exit(2, f"{self.prog}: {message[:1].upper()}{message[1:].rstrip('.')}; see `{self.prog} --help`.\n")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of 1 or more")
    return n


def _depth(text: str) -> int:
    """Levels of the call graph to follow: 1 to MAX_DEPTH, as the HTTP API and the MCP server take."""
    from indexes.graph import MAX_DEPTH

    n = _positive(text)
    if n > MAX_DEPTH:
        raise argparse.ArgumentTypeError(f"{n} levels is more than the {MAX_DEPTH} the call graph follows; "
                                         f"give 1 to {MAX_DEPTH}")
    return n


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port: give a whole number from 1 to 65535")
    return int(text)


def _workers(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number (0: one per CPU core)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="devcopilot", description="A developer copilot for a framework's docs and code.")
    p.add_argument("--data-dir", help="where indexes live (env DEVCOPILOT_DATA_DIR; default ./.devcopilot)")
    p.add_argument("--config", help="TOML configuration file (env DEVCOPILOT_CONFIG)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_indexing_commands, _reading_commands, _code_commands, _kb_commands, _chat_commands, _server_commands):
        add(sub)
    return p


def _indexing_commands(sub) -> None:
    """ingest: sources into a knowledge base."""
    s = sub.add_parser("ingest", help="index sources (folder, git URL, pkg:NAME, pypi:NAME==VERSION, "
                                      "npm:NAME@VERSION, docs website URL, llamaindex:MODULE.Reader) into a "
                                      "knowledge base",
                       description="Index sources into a knowledge base. Run by you, the operator, it fetches "
                                   "whatever URL it is given, this machine's and private addresses included; "
                                   "the server's doors (the Knowledge tab and API) fetch only public addresses "
                                   "and what server.fetch_allow names.")
    s.add_argument("sources", nargs="+", metavar="SOURCE")
    s.add_argument("--ref", metavar="TAG|BRANCH|COMMIT", help="index git URLs at this tag, branch or commit (a "
                                                              "branch moves on re-index; a tag or commit does not)")
    s.add_argument("--reader-args", metavar="JSON", help="arguments of a llamaindex:MODULE.Reader source, as a JSON "
                                                          "object")
    s.add_argument("--kb", default="default")
    s.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="index only matching files (repeat; default: what the source was indexed with before)")
    s.add_argument("--exclude", action="append", default=[], metavar="GLOB")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--no-wait", action="store_true", help="refuse at once when another ingest is writing")
    s.add_argument("--watch", action="store_true", help="then re-index the folders whenever their files change")
    s.add_argument("--debounce", type=float, default=1.0, metavar="SECONDS",
                   help="with --watch: re-index once the files have been quiet this long (default 1)")


def _reading_commands(sub) -> None:
    """search: what an assistant would cite."""
    s = sub.add_parser("search", help="what an assistant would cite; with no QUERY, one query per line from stdin")
    s.add_argument("query", nargs="?")
    s.add_argument("--kb", action="append", metavar="KB", help="knowledge base to read (repeat for more; "
                                                                 "default: every indexed KB, as the chat)")
    s.add_argument("--k", type=_positive, help="how many hits (1 or more; default 10, or the assistant's number)")
    s.add_argument("--kind", choices=["doc", "code"])
    s.add_argument("--assistant", help="cite as this assistant does (its KBs, kind and number of sources; "
                                       "--kb, --kind and --k, when given, win)")
    s.add_argument("--json", action="store_true")
    _version_flags(s)


def _code_commands(sub) -> None:
    """refs, changes, drift: the code as code, what changed between its versions, docs checked against it."""
    s = sub.add_parser("refs", help="references to a symbol (calls, imports, subclasses, decorators); --callers: who "
                                    "calls it, to a --depth (what breaks if it changes); --callees: what it calls")
    s.add_argument("symbol", help="a function, class or method: 'Runner.run', 'run', 'agents.run.Runner'")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--callers", action="store_true", help="who calls it (and who calls them, with --depth)")
    which.add_argument("--callees", action="store_true", help="what it calls (and what those call, with --depth)")
    s.add_argument("--depth", type=_depth, default=1, help="levels to follow with --callers or --callees "
                                                              "(default 1, at most 5)")
    s.add_argument("--kb", action="append", metavar="KB", help="knowledge base to read (repeat for more; default: "
                                                                 "every indexed KB)")
    s.add_argument("--json", action="store_true")
    _version_flags(s)

    s = sub.add_parser("changes", help="what changed in a library between two indexed versions: symbols, "
                                       "signatures, deprecations, docstrings, doc pages")
    s.add_argument("library")
    s.add_argument("from_version", metavar="FROM")
    s.add_argument("to_version", metavar="TO")
    s.add_argument("--symbol", metavar="NAME", help="only what concerns this symbol (Runner.run, Runner)")
    s.add_argument("--kb", help="the knowledge base holding both versions (default: the one that has the library)")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("drift", help="doc passages that no longer match the code: names, parameters, defaults, "
                                     "examples")
    s.add_argument("--kb", help="knowledge base to check (default: every indexed KB)")
    form = s.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true")
    form.add_argument("--markdown", action="store_true", help="a Markdown table, e.g. for an issue")
    s.add_argument("--version", help="only the findings at this version of the library, when a knowledge base "
                                     "holds several (default: every version's, each named)")
    s.add_argument("--library", help="the library --version is of, when a knowledge base holds several")


def _kb_commands(sub) -> None:
    """status, eval, forget: the knowledge bases."""
    s = sub.add_parser("status", help="knowledge bases, sources, counts, models, store")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("eval", help="file@5, sym@5, mrr@10 on a QA .jsonl set")
    s.add_argument("qa")
    s.add_argument("--kb", default="default")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("forget", help="remove a source from a KB (or one version of a library), or a whole KB "
                                      "with --kb alone")
    s.add_argument("source", nargs="?")
    s.add_argument("--kb", help="the KB (default: default); alone, without SOURCE, removes the whole KB")
    s.add_argument("--library", help="with --version: forget that version of the library (its sources)")
    s.add_argument("--version", help="with --library: the version to forget")
    s.add_argument("--no-wait", action="store_true", help="refuse at once when another ingest is writing")


def _chat_commands(sub) -> None:
    """ask, mcp, usage: the chat from the terminal and from a coding agent."""
    s = sub.add_parser("ask", help="ask the copilot a question; the answer streams in the terminal")
    s.add_argument("question")
    s.add_argument("--assistant", help="who answers (Tutoring, Coding, ...); default: the Guide decides")
    s.add_argument("--kb", help="knowledge base to read (default: chat.kb, else every indexed KB)")
    _version_flags(s)

    s = sub.add_parser("mcp", help="serve MCP over stdio, for a coding agent (Claude Code, Cursor, VS Code...)")
    s.add_argument("--kb", help="knowledge base `ask` reads (default: chat.kb, else every indexed KB); the other "
                                "tools take a kb argument")
    s.add_argument("--project", metavar="DIR", help="answer for the versions this project pins (its lock or "
                                                    "requirement files, its .venv); default: project.path, else "
                                                    "the folder the MCP client shares as its root")

    s = sub.add_parser("usage", help="tokens, cost and budget per model and assistant; counters; coverage gaps")
    s.add_argument("--json", action="store_true")
    s.add_argument("--reset", action="store_true", help="start the figures over")
    s.add_argument("--gaps", action="store_true", help="the questions most often answered \"I don't know\" or "
                                                       "given a thumbs-down: the docs that are missing")
    s.add_argument("--csv", action="store_true", help="with --gaps: CSV")


def _server_commands(sub) -> None:
    """serve."""
    s = sub.add_parser("serve", help="the web chat and the OpenAI-compatible API on one server")
    s.add_argument("--host", help="interface to bind (default 127.0.0.1, loopback only; server.host)")
    s.add_argument("--port", type=_port, help="port (default 7860; server.port)")
    s.add_argument("--auth", metavar="USER:PASSWORD", action="append",
                   help="a user and password; every door then needs one (or the API token); repeat for more "
                        "users, each with their own conversations and usage (env DEVCOPILOT_AUTH)")
    s.add_argument("--api-token", metavar="TOKEN", help="bearer token for /v1, /mcp and the Knowledge API (env "
                                                         "DEVCOPILOT_API_TOKEN)")
    s.add_argument("--insecure", action="store_true",
                   help="serve beyond loopback with neither --auth nor --api-token: anyone who can reach the port "
                        "can use every door (without it, such a server does not start)")
    s.add_argument("--workers", type=_workers, metavar="N",
                   help="server processes behind the port, 0 = one per CPU core (default: server.workers, "
                        "itself 0 by default)")


# Everything a command writes (the data dir: conversations, usage, keys, indexed text, clones) is its
# user's alone: folders 0700, files 0600. A process-wide umask covers every writer at once (SQLite and
# its WAL files, Chroma, the lexical index, git, mirrors) and the server's worker processes inherit it.
# The ONNX export under the virtual environment is the exception: public weights shared by every user of
# the environment, made readable by all (indexes/onnx_embedder.py) whichever command exports it first.
PRIVATE_UMASK = 0o077


def _version_flags(s) -> None:
    s.add_argument("--version", help="answer from this version of the library (\"all\": every version indexed; "
                                     "default: what the project pins, else the newest)")
    s.add_argument("--library", help="the library --version is of, when a knowledge base holds several")
    s.add_argument("--project", metavar="DIR", help="answer for the versions this project pins (uv.lock, "
                                                    "poetry.lock, requirements*.txt, pyproject.toml, "
                                                    "package-lock.json, pnpm-lock.yaml, or its .venv); default: "
                                                    "project.path")


def version_choice(args, cfg):
    """The versions the flags ask for (--version, --library, --project, else `project.path`); None: the newest."""
    from indexes.project import versions_for
    from indexes.versions import VersionChoice

    project = _project_folder(args.project) if args.project else cfg.project.path
    chosen = VersionChoice.parse(args.version, args.library) if args.version or args.library else None
    return versions_for(chosen, project)


def _project_folder(path: str) -> str:
    from pathlib import Path

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(f"--project '{path}' is not a folder; give the folder holding the project's lock or "
                         "requirement files.")
    return str(folder.resolve())


def say_version_notes(index, kbs: list[str], choice) -> None:
    """On stderr: what the versions asked for could not give (a lock file unread, a version not indexed, a
    version no library of the KBs takes)."""
    for note in index.version_notes(kbs, choice):
        print(f"devcopilot: {note}", file=sys.stderr, flush=True)


def config_from(args):
    """The Config the global flags (--config, --data-dir) ask for; its data dir, when it exists, private."""
    cfg = load_config(args.config, overrides={"data_dir": args.data_dir} if args.data_dir else None)
    make_private(cfg.data_dir)
    return cfg


def make_private(data_dir: Path) -> None:
    """A data dir of ours that other users may open (made by an older version, or by hand) becomes ours
    alone (0700), said once on stderr: what is inside is then out of their reach, whatever its mode."""
    try:
        st = os.stat(data_dir)
    except OSError:  # not made yet: it is made 0700 (PRIVATE_UMASK)
        return
    mode = stat.S_IMODE(st.st_mode)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or not mode & 0o077:
        return
    try:
        os.chmod(data_dir, 0o700)
    except OSError:
        return
    print(f"devcopilot: the data dir {data_dir} was open to other users ({mode:04o}); it is now 0700, its "
          "owner's alone.", file=sys.stderr, flush=True)


def _index(args):
    from indexes.search import Index

    return Index(config_from(args))


def cmd_ingest(args) -> int:
    """Index the sources here, holding the data dir's writer lock; or, when `devcopilot serve` runs on
    this data dir, hand the work to it (the server is then the only process writing the store, so it
    keeps answering and sees the change at once: indexes/writer.py)."""
    from indexes.writer import running_server
    from ingest.sources import normalize_spec

    cfg = config_from(args)
    # Absolute paths: the server's working directory is not ours.
    specs = [normalize_spec(s) for s in at_ref(reader_specs(args.sources, args.reader_args), args.ref)]
    include, exclude = args.include or None, args.exclude or None

    def once(wait: bool) -> list[str]:
        """Index (or have the server index) once; the summary lines to say."""
        server = running_server(cfg.data_dir)
        with _ProgressBar(args.quiet) as bar:
            if server is not None:
                job = run_on_server(server, {"action": "add", "kb": args.kb, "sources": specs, "include": include,
                                             "exclude": exclude, "wait": wait}, bar.update)
                lines = [r["summary"] for r in job["results"]] or [job["message"]]
            else:
                from indexes.build import ingest

                summary = ingest(_index(args), specs, args.kb, include, exclude, bar.update, wait=wait,
                                 on_wait=_say_waiting, notice=lambda text: print(text, file=sys.stderr, flush=True))
                lines = [summary.line()]
        return lines

    if args.watch:
        watch_folders(cfg, specs, args.debounce, lambda: once(not args.no_wait), lambda: once(True))
    else:
        _say(once(not args.no_wait))
    return 0


class _ProgressBar:
    """A progress bar on a terminal (not with --quiet, not when stderr is a file); `update` is an ingest's
    progress callback."""

    def __init__(self, quiet: bool):
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=0, unit="file", file=sys.stderr, dynamic_ncols=True)

    def update(self, stage: str, done: int, total: int) -> None:
        if self.bar is None or stage == "embed":  # the terminal bar counts files
            return
        names = {"scan": "scanning", "index": "indexing", "lexical": "lexical index"}
        self.bar.set_description(names.get(stage, stage))
        if total and self.bar.total != total:
            self.bar.reset(total=total)
        self.bar.n = done
        self.bar.refresh()

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def _say_waiting(holder) -> None:
    who = holder.describe() if holder else "another process"
    print(f"Waiting for another ingest to finish: {who}…", file=sys.stderr, flush=True)


def run_on_server(server, body: dict, progress) -> dict:
    """Hand a job to the running server and follow it to its end; returns the job as JSON.

    Ctrl+C cancels the job on the server; if the server goes away, one sentence says so."""
    from ui.server_client import ServerGone, cancel_job, follow_job, submit_job

    print(f"Handing this to the running server ({server.url}, pid {server.pid}), which does the writing "
          "while it serves.", file=sys.stderr, flush=True)
    job = submit_job(server, body)
    told = False

    def seen(j: dict) -> None:
        nonlocal told
        if j["state"] == "queued" or j["stage"] == "waiting":
            if not told:
                print(f"Waiting: the server finishes its other index jobs first. {j['message']}".rstrip(),
                      file=sys.stderr, flush=True)
                told = True
        elif j["state"] == "running" and j["stage"] in ("scan", "index", "lexical"):
            progress(j["stage"], j["done"], j["total"])

    try:
        job = follow_job(server, job["id"], seen)
    except KeyboardInterrupt:
        try:
            cancel_job(server, job["id"])
        except ServerGone:
            pass
        raise
    if job["state"] != "done":
        raise ValueError(job["message"] or f"The server's job ended {job['state']}.")
    return job


def _say(lines: list[str]) -> None:
    for line in lines:
        print(line, flush=True)


def watch_folders(cfg, specs: list[str], quiet_s: float, first, reindex) -> None:
    """Index once (`first`), then again (`reindex`) whenever files under the folder sources change, once
    they have been quiet for `quiet_s`; each returns the summary lines to print. The watcher starts
    before the first ingest, so an edit made while it runs is not missed."""
    from pathlib import Path

    from watchfiles import DefaultFilter, watch

    from ingest.sources import local_path

    folders = [Path(s) for s in specs if not s.startswith("pkg:") and local_path(s) is not None
               and Path(s).is_dir()]
    if not folders:
        raise ValueError("--watch follows folders, and none of the sources is one; git URLs and packages are "
                         "re-synced by `devcopilot serve` with [sync] every = \"1h\".")
    data_dir = Path(cfg.data_dir).resolve()
    default = DefaultFilter()

    def wanted(change, path: str) -> bool:
        p = Path(path)
        if p.is_relative_to(data_dir) or not default(change, path):
            return False
        base = next((f for f in folders if p.is_relative_to(f)), None)
        return base is not None and not any(part.startswith(".") for part in p.relative_to(base).parts)

    changes = watch(*folders, watch_filter=wanted, step=max(50, int(quiet_s * 1000)), debounce=60_000,
                    raise_interrupt=False, yield_on_timeout=True, rust_timeout=500)
    next(changes, None)  # the watcher is running: whatever changes from here on is seen
    _say(first())
    print(f"Watching {', '.join(str(f) for f in folders)} for changes (Ctrl+C stops).", file=sys.stderr, flush=True)
    busy = False
    try:
        for batch in changes:
            if not batch:  # a quiet half second
                continue
            print(f"{len(batch)} change{'s' if len(batch) != 1 else ''} seen: re-indexing.", file=sys.stderr,
                  flush=True)
            busy, said = True, []
            try:
                said = reindex()
            except USER_ERRORS as e:  # say it and keep watching: the next change may fix it
                print(f"devcopilot: {_one_line(e)}", file=sys.stderr, flush=True)
            busy = False  # before the summary: Ctrl+C once it is shown is no interruption
            _say(said)
    except KeyboardInterrupt:
        # Ctrl+C while waiting usually ends the loop by itself; it can also land in our filter,
        # between two batches: that is a plain stop. During a re-index it is an interruption.
        if busy:
            raise
    print("Stopped watching.", file=sys.stderr)


def at_ref(sources: list[str], ref: str | None) -> list[str]:
    """The sources with --ref joined to the git URLs (`URL#REF`); --ref with no git URL is a mistake."""
    if not ref:
        return sources
    from ingest.sources import is_git_url, with_git_ref

    if not all(is_git_url(s) for s in sources):
        raise ValueError("--ref goes with git URLs only; pypi:NAME==VERSION and npm:NAME@VERSION name their version "
                         "themselves, and a folder is read as it is.")
    return [with_git_ref(s.split("#", 1)[0], ref.strip()) for s in sources]


def reader_specs(sources: list[str], reader_args: str | None) -> list[str]:
    """The sources, with --reader-args joined to the llamaindex: reader they belong to."""
    if reader_args is None:
        return sources
    if not any(s.startswith("llamaindex:") for s in sources):
        raise ValueError("--reader-args goes with a llamaindex:MODULE.Reader source; give one, or drop it.")
    try:
        parsed = json.loads(reader_args)
    except ValueError as e:
        raise ValueError(f"--reader-args is not valid JSON ({e}); give a JSON object like '{{\"input_dir\": "
                         "\"docs\"}'.") from None
    if not isinstance(parsed, dict):
        raise ValueError("--reader-args must be a JSON object, like '{\"input_dir\": \"docs\"}'.")
    from ingest.llamaindex import reader_spec

    return [reader_spec(s, parsed) if s.startswith("llamaindex:") else s for s in sources]


def cmd_search(args) -> int:
    """What an assistant would cite (indexes/retrieve.py), with the verdict it would act on."""
    from copilot.assistants import chat_kbs
    from indexes.retrieve import retrieve

    index = _index(args)
    kbs = args.kb or chat_kbs(index, index.cfg.chat.kb)[0]  # as the chat reads: every indexed KB by default
    if args.kb or index.cfg.chat.kb:
        for kb in kbs:
            index.searchable(kb)  # an unknown KB, or one embedded by another model, is one sentence
    if not kbs:
        raise ValueError("Nothing is indexed yet; run `devcopilot ingest SOURCE` first.")
    versions = version_choice(args, index.cfg)
    say_version_notes(index, kbs, versions)
    cite = None
    if args.assistant:
        from copilot.assistants import load_assistants, retrieve_for
        from copilot.routing import find_assistant

        spec = find_assistant(args.assistant, load_assistants(index.cfg))  # UnknownAssistant: its sentence
        read = kbs if args.kb or not spec.kbs else spec.kbs  # --kb wins; else its own KBs narrow the chat's
        spec = replace(spec, kinds=[args.kind] if args.kind else spec.kinds, top_k=args.k or spec.top_k)

        def cite(q):
            return retrieve_for(index, spec, q, read, versions)

    queries = [args.query] if args.query is not None else [ln.rstrip("\n") for ln in sys.stdin]
    for q in queries:
        found = cite(q) if cite else retrieve(index, q, kbs, kind=args.kind, k=args.k or 10, versions=versions)
        if args.json:
            print(json.dumps({"query": q, "weak": found.weak, "hits": [h.to_json() for h in found.hits]},
                             ensure_ascii=False), flush=True)
            continue
        print(f"# {q}")
        for n, h in enumerate(found.hits, 1):
            c = h.chunk
            version = f"  {c.library} {c.version}" if c.library and c.library in index.side_by_side(h.kb) else ""
            print(f"[{n}] {c.path}:{c.start_line}-{c.end_line}  {c.title}{version}  ({h.score:.4f})")
            print(f"    {c.link}")
        if not found.hits:
            print("(no results)")
        elif found.weak:
            print("(weak: these share little with the question; an assistant would answer \"I don't know\")")
    return 0


def cmd_refs(args) -> int:
    """The code graph's answer (indexes/graph.py): references, callers to a depth, or callees."""
    from copilot.assistants import chat_kbs
    from indexes import graph

    index = _index(args)
    kbs = args.kb or chat_kbs(index, index.cfg.chat.kb)[0]
    for kb in args.kb or []:
        index.searchable(kb)  # an unknown KB is one sentence
    versions = version_choice(args, index.cfg)  # as search: the project's pins, else the newest of each library
    say_version_notes(index, kbs, versions)
    within = {kb: index.scope(kb, versions).sources for kb in kbs if index.catalog.kb(kb) is not None}
    if args.callers:
        answer = graph.callers(index, kbs, args.symbol, args.depth, within=within)
    elif args.callees:
        answer = graph.callees(index, kbs, args.symbol, args.depth, within=within)
    else:
        answer = graph.references(index, kbs, args.symbol, within=within)
    if args.json:
        print(json.dumps(answer.to_json(), indent=2, ensure_ascii=False))
    else:
        print(graph.describe(answer))
    return 0


def cmd_changes(args) -> int:
    """What changed between two indexed versions of a library (indexes/changes.py), grouped by kind."""
    from indexes.changes import listing, what_changed

    report = what_changed(_index(args), args.library, args.from_version, args.to_version, args.symbol or "", args.kb)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(listing(report))
    return 0


def cmd_status(args) -> int:
    from indexes.status import knowledge_status

    index = _index(args)
    cfg = index.cfg
    known = knowledge_status(index)
    kbs = known["knowledge_bases"]
    out = {"data_dir": str(cfg.data_dir), "embedding": index.embedder.name, "store": cfg.store.kind,
           "store_url": cfg.store.url, "knowledge_bases": kbs, "server": known["server"], "writer": known["writer"]}
    extras = status_extras(cfg)
    out.update(extras)
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    lines = {"data dir": out["data_dir"], "embedding": out["embedding"],
             "store": cfg.store.kind + (f" ({cfg.store.url})" if cfg.store.url else "")}
    lines |= {key.replace("_", " "): value for key, value in extras.items()}
    if known["server"]:
        lines["server"] = (f"running at {known['server']['url']} (pid {known['server']['pid']}); ingest and forget "
                           "hand their work to it")
    if known["writer"]:
        lines["writing"] = known["writer"]
    width = max(map(len, lines)) + 2
    for label, value in lines.items():
        print(f"{label + ':':<{width}}{value}")
    if not kbs:
        print("No knowledge base yet: `devcopilot ingest SOURCE` creates one.")
    for kb in kbs:
        state = f"\n  ({kb['state']})" if kb["state"] else ""
        print(f"\nKB '{kb['name']}': {counted(kb['files'], 'file')}, {counted(kb['chunks'], 'chunk')}, "
              f"last indexed {kb['last_indexed'] or 'never'}{state}")
        for library, versions in kb["versions"].items():
            if len(versions) > 1:
                print(f"  versions of {library}: {', '.join(versions)}")
        for s in kb["sources"]:
            skipped = ", ".join(skipped_counts(s["skipped"])) or "none skipped"
            globs = "".join(f" --include {g}" for g in s["include"]) + "".join(f" --exclude {g}" for g in s["exclude"])
            state = f"\n    ({s['state']})" if s["state"] else ""
            print(f"  - {s['spec']}{globs}\n    from {s['origin']}; indexed {s['last_indexed'] or 'never'}: "
                  f"{counted(s['files'], 'file')}, {counted(s['chunks'], 'chunk')}; {skipped}{state}")
    return 0


def status_extras(cfg) -> dict:
    """Lines other parts add to `status` (e.g. the active chat model)."""
    try:
        from copilot.models import describe_chat_model
    except ImportError:
        return {}
    url = cfg.server.database_url
    return {"chat_model": describe_chat_model(cfg),
            "conversations": f"PostgreSQL at {redact_url(url)}" if url else str(cfg.data_dir / "conversations.sqlite")}


def cmd_eval(args) -> int:
    from indexes.evaluate import load_qa, score
    from indexes.retrieve import retrieve

    qa = load_qa(args.qa)
    index = _index(args)
    index.searchable(args.kb)
    results = [[h.to_json() for h in retrieve(index, q["question"], [args.kb], k=10).hits] for q in qa]
    figures = score(qa, results)
    if args.json:
        print(json.dumps(figures))
    else:
        for k, v in figures.items():
            print(f"{k:24s} {v}")
    return 0


def cmd_drift(args) -> int:
    """The doc passages the last ingest found out of step with the code (indexes/drift.py), cited both ways."""
    from indexes import drift

    index = _index(args)
    kbs = [args.kb] if args.kb else [i.name for i in index.catalog.kbs()]
    if args.kb:
        index.searchable(args.kb)  # an unknown KB is one sentence
    if not kbs:
        raise ValueError("Nothing is indexed yet; run `devcopilot ingest SOURCE` first.")
    found = {kb: drift.findings(index.catalog, kb) for kb in kbs}
    if args.version is not None or args.library:  # narrowed to one version, as search reads it
        from indexes.versions import VersionChoice

        choice = VersionChoice.parse(args.version, args.library)
        say_version_notes(index, kbs, choice)
        found = {kb: drift.at_versions(fs, index.scope(kb, choice).answered) for kb, fs in found.items()}
    unchecked = [kb for kb in kbs if not drift.checked(index.catalog, kb)]
    if args.json:
        print(json.dumps({"findings": [f.to_json() for fs in found.values() for f in fs],
                          "counts": drift.counts([f for fs in found.values() for f in fs]), "unchecked": unchecked},
                         indent=1, ensure_ascii=False))
        return 0
    render = drift.render_markdown if args.markdown else drift.render_text
    print("\n\n".join(render(fs, kb) for kb, fs in found.items()))
    for kb in unchecked:
        print(f"\nKB '{kb}' was indexed before its docs were checked against its code: run `devcopilot ingest "
              f"SOURCE --kb {kb}` again (nothing is re-embedded) to check it.", file=sys.stderr)
    return 0


def cmd_forget(args) -> int:
    from indexes.build import forget
    from indexes.writer import running_server

    if args.source is None and args.kb is None and not args.library:  # a bare `forget` must not wipe the default KB
        raise ValueError("Say what to forget: a SOURCE (as listed by `devcopilot status`), --library L --version V, "
                         "or --kb NAME to remove a whole knowledge base.")
    cfg = config_from(args)
    kb = args.kb or "default"
    sources = [args.source] if args.source else []
    if args.library or args.version:
        sources += _version_sources(args, kb)
    server = running_server(cfg.data_dir)
    if server is not None:  # the server does the writing while it runs (indexes/writer.py)
        job = run_on_server(server, {"action": "forget", "kb": kb, "sources": sources,
                                     "wait": not args.no_wait}, lambda *_: None)
        print(job["message"])
        return 0
    index = _index(args)
    for spec in sources or [None]:
        print(forget(index, spec, kb, wait=not args.no_wait, on_wait=_say_waiting))
    return 0


def _version_sources(args, kb: str) -> list[str]:
    """The sources holding --version V of --library L in `kb`: what `forget --library L --version V` removes."""
    from indexes.versions import same_version, versions_of

    if args.source or not (args.library and args.version):
        raise ValueError("Forget one version with --library L --version V together (and no SOURCE).")
    index = _index(args)
    index.searchable(kb)
    versions = versions_of(index, kb, args.library)
    if not versions:
        raise ValueError(f"Knowledge base '{kb}' holds no library '{args.library}'; `devcopilot status` lists what "
                         "it holds.")
    found = [v for v in versions if same_version(v.version, args.version)]
    if not found:
        raise ValueError(f"Knowledge base '{kb}' holds {args.library} {', '.join(v.version for v in versions)}, not "
                         f"{args.version}.")
    return list(found[0].specs)


def cmd_ask(args) -> int:
    from copilot.chat import Copilot
    from copilot.routing import find_assistant
    from indexes.versions import VersionChoice

    if not args.question.strip():
        raise ValueError("The question is empty; ask one, e.g. `devcopilot ask \"how do I add memory to an "
                         "agent?\"`.")
    cfg = config_from(args)
    if args.kb:
        cfg.chat.kb = args.kb
    if args.project:  # the turn reads the project's pins itself (Copilot.versions), and says what it could not
        cfg.project.path = _project_folder(args.project)
    versions = VersionChoice.parse(args.version, args.library) if args.version or args.library else None
    copilot = Copilot(cfg)
    if args.kb:
        copilot.index.searchable(args.kb)  # an unknown KB is one sentence and exit 2, as for search
    if args.assistant:
        find_assistant(args.assistant, copilot.assistants)  # UnknownAssistant: its sentence
    events = copilot.chat(args.question, copilot.new_session(origin="cli"), args.assistant, versions=versions)
    return _print_answers(events, sys.stdout.isatty())


def _print_answers(events, terminal: bool) -> int:
    """Stream a turn's answers. In a terminal each answer is Markdown rendered by rich (drawn live as it
    streams, then printed whole); piped, the text is printed as it comes, for scripts."""
    from copilot.citations import CiteStyle, cite_line
    from copilot.events import END, START, TOKEN
    from copilot.reply import Note, Reply

    # "  [1] src/app.py:3-9  App.run  (KB default)" and the link below it, unless it is just the path.
    cites = CiteStyle(number="  [{}] ", title="  {}", kb="  (KB {})", link="\n      {}",
                      url=lambda s, base: s.link if s.link != s.path else "")
    console = None
    if terminal:
        from rich.console import Console
        from rich.live import Live
        from rich.markdown import Markdown

        console = Console(highlight=False)
    reply = Reply()
    live = None
    for ev in events:
        said = reply.feed(ev)
        if isinstance(said, Note):
            if live is not None:
                live.stop()
                live = None
            print(f"{said.assistant}: {said.text}", file=sys.stderr)
        elif said is None:
            continue
        elif ev.type == START:
            if console is None:
                print(f"\n{said.assistant}:", flush=True)
            else:
                console.print(f"\n[bold]{said.assistant}[/bold]")
                live = Live(Markdown(""), console=console, refresh_per_second=8, transient=True,
                            vertical_overflow="ellipsis")
                live.start()
        elif ev.type == TOKEN:
            if live is not None:
                live.update(Markdown(said.text))
            else:
                print(ev.text, end="", flush=True)
        elif ev.type == END:
            if live is not None:
                live.stop()
                live = None
                console.print(Markdown(said.text))
            else:
                print()
            for s in said.sources:
                line = cite_line(s, cites)
                if console is not None:
                    console.print(line, markup=False, style="dim")
                else:
                    print(line)
    if live is not None:
        live.stop()
    return 2 if reply.failed else 0


def cmd_mcp(args) -> int:
    """MCP over stdin/stdout: stdout carries the protocol, so everything else goes to stderr."""
    import logging
    import threading

    from copilot.chat import Copilot
    from ui.mcp_server import run_stdio

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    cfg = config_from(args)
    if args.kb:
        cfg.chat.kb = args.kb
    if args.project:
        cfg.project.path = _project_folder(args.project)
    copilot = Copilot(cfg)
    # Load the embedding model while the client starts up, so the first search does not wait for it.
    warm_up = threading.Thread(target=copilot.index.embed_query, args=("warm up",), daemon=True)
    warm_up.start()
    try:
        run_stdio(copilot)
    finally:
        # A client may close stdin at once (a probe, a cancelled start): the interpreter must not shut
        # down while the thread is still loading the model's native runtime, which aborts the process.
        warm_up.join()
    return 0


def cmd_usage(args) -> int:
    from copilot.monitor import Monitor, usage_store

    if args.csv and not args.gaps:  # the figures have no CSV form: do not print text where CSV was asked for
        raise ValueError("--csv goes with --gaps (the coverage gaps as CSV); for the figures use --json.")
    if args.reset and args.gaps:
        raise ValueError("--reset starts the usage figures over and --gaps lists the coverage gaps; give one.")
    cfg = config_from(args)
    if args.gaps:
        return print_gaps(cfg, args)
    store = usage_store(cfg)
    store.load()  # a shared database out of reach is said here, in one sentence, not shown as no usage
    monitor = Monitor(cfg, store)
    if args.reset:
        monitor.reset()
        print("Usage figures reset.")
        return 0
    f = monitor.figures()
    if args.json:
        print(json.dumps(f, indent=2))
        return 0
    t = f["totals"]
    print(f"since {f['since']}: {t['calls']} model calls, {t['input_tokens']} input + {t['output_tokens']} output "
          f"tokens, ${f['cost_usd']:.4f}")
    b = f["budget"]
    print(f"budget: ${b['limit_usd']:.2f} ({b['state']})" if b["limit_usd"] else "budget: none ([budget] limit_usd)")
    if b["message"]:
        print(b["message"])
    for table in ("models", "assistants"):
        for name, row in f[table].items():
            est = f", {row['estimated_calls']} counted locally" if row["estimated_calls"] else ""
            print(f"  {table[:-1]} {name}: {row['calls']} calls, {row['input_tokens']} in / {row['output_tokens']} "
                  f"out tokens, ${row['cost_usd']:.4f}{est}")
    if f["unpriced_models"]:
        print("no price for: " + ", ".join(f["unpriced_models"]) + " (add them under [prices])")
    for name, n in sorted(f["counters"].items()):
        print(f"  {name}: {n}")
    return 0


def print_gaps(cfg, args) -> int:
    from copilot.conversations import gaps_csv, open_conversations

    nothing_yet = not cfg.server.database_url and not (cfg.data_dir / "conversations.sqlite").exists()
    gaps = [] if nothing_yet else open_conversations(cfg).gaps()  # no file: none is made to say so
    if args.csv:
        sys.stdout.write(gaps_csv(gaps))
    elif args.json:
        print(json.dumps(gaps, indent=2, ensure_ascii=False))
    elif not gaps:
        print("No coverage gaps yet: no question was answered \"I don't know\" or given a thumbs-down.")
    else:
        print(f"{'asked':>5} {'idk':>4} {'down':>4}  {'last asked':16}  question")
        for g in gaps:
            print(f"{g['asked']:>5} {g['dont_know']:>4} {g['thumbs_down']:>4}  {g['last_asked']:16}  "
                  f"{' '.join(g['question'].split())[:100]}")
    return 0


def cmd_serve(args) -> int:
    cfg = config_from(args)  # a bad setting stops here, before the server's libraries load
    from ui.server import serve

    workers = server_processes(args.workers, cfg.server.workers)
    serve(cfg, host=args.host or cfg.server.host, port=args.port or cfg.server.port,
          auth=args.auth or cfg.server.auth, api_token=args.api_token or cfg.server.api_token, workers=workers,
          insecure=args.insecure)
    return 0


def server_processes(flag: int | None, setting: int) -> int:
    """--workers, else server.workers; 0 in either means one per CPU core."""
    n = flag if flag is not None else setting
    return n or os.cpu_count() or 1


COMMANDS = {"ingest": cmd_ingest, "search": cmd_search, "refs": cmd_refs, "changes": cmd_changes,
            "drift": cmd_drift, "status": cmd_status, "eval": cmd_eval, "forget": cmd_forget, "ask": cmd_ask,
            "mcp": cmd_mcp, "usage": cmd_usage, "serve": cmd_serve}





def main(argv: list[str] | None = None) -> int:
    """Run one command."""
    default_environment(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    run = COMMANDS[args.command]
    umask = os.umask(PRIVATE_UMASK)
    try:
        code = run(args)
        sys.stdout.flush()  # here, so a closed pipe is handled below rather than at exit
        return code
    except KeyboardInterrupt:
        print("Interrupted; what was indexed so far is kept, and the next run completes it.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error; keep the exit flush quiet too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except USER_ERRORS as e:
        print(f"devcopilot: {_one_line(e)}", file=sys.stderr)
        return 2
    finally:
        os.umask(umask)  # a caller in the same process (a test) keeps its own


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg
