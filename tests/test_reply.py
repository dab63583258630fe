"""The one turn consumer (copilot/reply.py), the one citation formatter (copilot/citations.py) and the
one error for an unknown assistant, as every door uses them.

The doors' texts must not change: the formats they wrote before the formatter are kept below as the
reference (`*_before`), and each door's style must write the same bytes for every kind of source.
"""
from __future__ import annotations

import asyncio
import itertools

import pytest
from support.corpus import ingested_data_dir

from copilot.events import END, ERROR, NOTICE, SOURCES, START, TOKEN, Event, Kind, Source
from copilot.links import public_url, with_lines
from copilot.reply import Answer, Note, Reply, Transcript, collect
from copilot.routing import UnknownAssistant, find_assistant


def source(n=1, path="src/app.py", title="App.run", kb="default", link="/srv/src/app.py#L3-L9", origin=""):
    return Source(n, path, 3, 9, title, link, "code", "python", "def run(): ...", kb, origin)


S1, S2 = source(1), source(2, "docs/guide.md", "Guide > Retries", "", "")


def guided_turn() -> list[Event]:
    """Through the Guide: a hand-over, an answer with a notice in the middle, the budget's notice."""
    return [Event(START, "Guide", message_id="m0"), Event(TOKEN, "Guide", "@Coding "),
            Event(TOKEN, "Guide", "takes it."), Event(SOURCES, "Guide"),
            Event(END, "Guide", "@Coding takes it.", [], "m0"),
            Event(START, "Coding", message_id="m1"), Event(TOKEN, "Coding", "It is "),
            Event(NOTICE, "Coding", "The model is busy (429); retrying in 2 s."), Event(TOKEN, "Coding", "`run` [1]."),
            Event(SOURCES, "Coding", sources=[S1, S2]), Event(END, "Coding", "It is `run` [1].", [S1, S2], "m1"),
            Event(NOTICE, "Guide", "You have used 80% of this month's budget.")]


def failed_turn() -> list[Event]:
    return [Event(ERROR, "Guide", "The message is 9 characters long and the limit is 5.")]


# -- the fold -------------------------------------------------------------------------------------------
def test_kinds_are_a_typed_enum_that_still_equals_its_strings():
    assert [k.value for k in Kind] == ["start", "token", "sources", "end", "notice", "error"]
    assert Kind.TOKEN == "token" and TOKEN is Kind.TOKEN and f"{ERROR}" == "error"
    assert Event("token", "Guide", "x").type == TOKEN  # events written with strings fold the same


def test_feed_says_what_each_event_changed():
    reply = Reply()
    changed = [reply.feed(ev) for ev in guided_turn()]
    guide, coding = reply.answers
    assert changed[:5] == [guide] * 5 and changed[5:7] == [coding] * 2
    assert isinstance(changed[7], Note) and changed[7].text.startswith("The model is busy") and not changed[7].first
    assert changed[8:11] == [coding] * 3 and isinstance(changed[11], Note)
    assert reply.speakers == ["Guide", "Coding"] and reply.current is None and not reply.failed


def test_streaming_shows_the_answer_so_far_and_its_end_the_whole_of_it():
    reply = Reply()
    events = guided_turn()
    for ev in events[:7]:
        answer = reply.feed(ev)
    assert answer.text == "It is " and not answer.ended and answer.message_id == "m1"
    for ev in events[7:10]:
        reply.feed(ev)
    assert answer.text == "It is `run` [1]." and answer.sources == [S1, S2] and not answer.ended
    assert reply.feed(events[10]) is answer and answer.ended and answer.text == "It is `run` [1]."


def test_streaming_and_collected_agree():
    streamed = Reply()
    for ev in guided_turn():
        streamed.feed(ev)
    collected = collect(guided_turn())
    assert collected.answers == streamed.answers and collected.notes == streamed.notes
    assert collected.speakers == ["Guide", "Coding"]
    assert [(a.assistant, a.text, a.message_id) for a in collected.answers] == [
        ("Guide", "@Coding takes it.", "m0"), ("Coding", "It is `run` [1].", "m1")]
    assert collected.sources == [("Coding", S1), ("Coding", S2)]  # each source with its speaker
    assert [n.text[:9] for n in collected.notes] == ["The model", "You have "] and not collected.failed


def test_an_error_fails_the_turn_and_a_first_note_stands_alone():
    reply = collect(failed_turn())
    assert reply.failed and reply.answers == [] and reply.notes[0].error and reply.notes[0].first


def test_an_end_without_text_or_sources_keeps_what_streamed():
    reply = collect([Event(START, "Tutoring", message_id="m"), Event(TOKEN, "Tutoring", "Yes."),
                     Event(SOURCES, "Tutoring", sources=[S1]), Event(END, "Tutoring")])
    assert reply.answers == [Answer("Tutoring", "m", ["Yes."], [S1], True, "Yes.")]
    assert reply.feed(Event(TOKEN, "Tutoring", "stray")) is None  # after the end: no answer to add it to


def test_a_source_of_an_answer_that_never_ended_is_not_cited():
    reply = collect([Event(START, "Coding"), Event(SOURCES, "Coding", sources=[S1]),
                     Event(ERROR, "Guide", "Something went wrong")])
    assert reply.answers[0].sources == [S1] and reply.sources == [] and reply.failed


# -- the transcript: the API's and MCP's text ---------------------------------------------------------
def transcript_before(events, labelled: bool, block) -> str:
    """How ui/api.py `_complete` and ui/mcp_server.py `answer` joined a turn before the Transcript."""
    parts, speakers = [], []
    for ev in events:
        if ev.type == "start":
            speakers.append(ev.assistant)
            parts.append(("\n\n" if len(speakers) > 1 else "") + (f"**{ev.assistant}:** " if labelled else ""))
        elif ev.type == "token":
            parts.append(ev.text)
        elif ev.type == "end":
            parts.append(block(ev.sources))
        elif ev.type in ("notice", "error"):
            parts.append(("\n\n" if parts else "") + ev.text)
    return "".join(parts).strip()


def stream_before(events, labelled: bool, block) -> list[str]:
    """What ui/api.py `_stream` sent, chunk by chunk, before the Transcript (links left as they are)."""
    out, speakers, first = [], [], True
    for ev in events:
        if ev.type == "start":
            speakers.append(ev.assistant)
            out.append(("\n\n" if len(speakers) > 1 else "") + (f"**{ev.assistant}:** " if labelled else ""))
        elif ev.type == "token":
            out.append(ev.text)
        elif ev.type == "end" and block(ev.sources):
            out.append(block(ev.sources))
        elif ev.type in ("notice", "error"):
            out.append(("" if first else "\n\n") + ev.text)
        first = False
    return out


def one_speaker_turn() -> list[Event]:
    return [Event(START, "Coding", message_id="m"), Event(TOKEN, "Coding", "Quoted."), Event(SOURCES, "Coding"),
            Event(END, "Coding", "Quoted.", [], "m")]


@pytest.mark.parametrize("events", [guided_turn(), failed_turn(), one_speaker_turn()], ids=["guided", "error", "one"])
@pytest.mark.parametrize("labelled", [True, False])
def test_the_transcript_writes_the_api_and_mcp_text_as_before(events, labelled):
    from ui import api, mcp_server

    base = "https://copilot.example"
    for cites, block in ((api.CITES, lambda ss: api_block_before(ss, base)), (mcp_server.CITES, mcp_block_before)):
        whole = Transcript(cites, labelled, base).take(events)
        assert whole.text == transcript_before(events, labelled, block)
        streamed = Transcript(cites, labelled, base)
        written = [streamed.write(ev) for ev in events]
        assert [w for w in written if w is not None] == stream_before(events, labelled, block)
        assert streamed.text == whole.text and streamed.speakers == whole.speakers == collect(events).speakers
        assert streamed.failed == whole.failed == collect(events).failed


def test_an_unlabelled_answer_begins_with_an_empty_text_and_its_sources_come_at_its_end():
    from ui.mcp_server import CITES

    turn = Transcript(CITES, labelled=False)
    assert turn.write(Event(START, "Coding")) == "" and turn.write(Event(SOURCES, "Coding", sources=[S1])) is None
    assert turn.write(Event(END, "Coding")) == mcp_block_before([S1])  # the sources said, as the end gives none
    assert turn.write(Event(START, "Tutoring")) == "\n\n" and turn.write(Event(END, "Tutoring")) is None


# -- the citation formatter: each door's style, byte for byte -------------------------------------------
def api_block_before(sources, base: str) -> str:
    if not sources:
        return ""
    lines = [f"[{s.n}] {s.path}:{s.start_line}-{s.end_line}" + (f" — {s.title}" if s.title else "")
             + (f" (KB {s.kb})" if s.kb else "") + (f" <{public_url(s.link, base)}>" if s.link else "")
             for s in sources]
    return "\n\nSources:\n" + "\n".join(lines)


def mcp_block_before(sources) -> str:
    if not sources:
        return ""
    return "\n\nSources:\n" + "\n".join(
        f"[{s.n}] {s.path}:{s.start_line}-{s.end_line}" + (f" · {s.title}" if s.title else "")
        + (f" <{s.link}>" if s.link else "") for s in sources)


def cli_line_before(s) -> str:
    return f"  [{s.n}] {s.path}:{s.start_line}-{s.end_line}" + (f"  {s.title}" if s.title else "") \
        + (f"  (KB {s.kb})" if s.kb else "") + (f"\n      {s.link}" if s.link and s.link != s.path else "")


def web_block_before(sources) -> str:
    import html

    from ui.render import _md_escape

    if not sources:
        return ""
    lines = ["", "", "**Sources**", ""]
    for s in sources:
        label = f"{s.path}:{s.start_line}-{s.end_line}"
        title = f" — {_md_escape(s.title)}" if s.title and s.title != s.path else ""
        kb = f' <span class="dc-kb">· KB {html.escape(s.kb)}</span>' if getattr(s, "kb", "") else ""
        href = public_url(with_lines(s.link, s.start_line, s.end_line)) if s.link else ""
        href = href.replace(" ", "%20").replace(")", "%29")
        origin = getattr(s, "origin", "")
        tip = ' "' + _md_escape(origin).replace('"', "'") + '"' if origin else ""
        link = f"[{_md_escape(label)}]({href}{tip})" if href else _md_escape(label)
        lines.append(f"{s.n}. {link}{title}{kb}")
    return "\n".join(lines)


def every_kind_of_source() -> list[Source]:
    """With and without a title, a KB, a link and an origin; paths and titles Markdown would mangle."""
    paths = ["src/app.py", "pkg/__init__.py", "docs/a b).md"]
    titles = ["", "App.run", "*bold* _x_ [y]", None]  # None: the title is the path itself
    kbs = ["", "default", "a&b<c>"]
    links = ["", "/srv/{p}#L3-L9", "https://github.com/o/r/blob/main/{p}#L3-L9", "https://gitlab.com/o/r/-/blob/x/{p}",
             "{p}"]
    origins = ["", 'git 1a2b3c (tag "v1"); indexed 2024-01-02']
    return [source(n, p, p if t is None else t, kb, link.format(p=p), origin)
            for n, (p, t, kb, link, origin) in enumerate(itertools.product(paths, titles, kbs, links, origins), 1)]


def test_each_doors_style_writes_its_citations_as_before():
    from copilot.citations import cite_block
    from ui import api, mcp_server, render

    sources = every_kind_of_source()
    base = "https://copilot.example:8443/"
    for s in sources:
        assert cite_block([s], api.CITES, base) == api_block_before([s], base), s
        assert cite_block([s], mcp_server.CITES) == mcp_block_before([s]), s
        assert render.sources_block([s]) == web_block_before([s]), s
    assert cite_block(sources, api.CITES, base) == api_block_before(sources, base)
    assert render.sources_block(sources) == web_block_before(sources)
    assert cite_block([], api.CITES) == render.sources_block([]) == ""


def test_each_doors_citation_line_reads_as_it_always_has():
    from copilot.citations import cite_line
    from ui import api, mcp_server, render

    full, bare = source(origin="git 1a2b"), source(title="", kb="", link="")
    assert cite_line(full, api.CITES, "https://h") == ("[1] src/app.py:3-9 — App.run (KB default) "
                                                       "<https://h/source?path=/srv/src/app.py&lines=3-9#L3>")
    assert cite_line(full, mcp_server.CITES) == "[1] src/app.py:3-9 · App.run </srv/src/app.py#L3-L9>"
    assert render.sources_block([full]) == ('\n\n**Sources**\n\n1. [src/app.py:3-9](/source?path=/srv/src/app.py'
                                            '&lines=3-9#L3 "git 1a2b") — App.run <span class="dc-kb">· KB default'
                                            '</span>')
    assert cite_line(bare, api.CITES, "https://h") == cite_line(bare, mcp_server.CITES) == "[1] src/app.py:3-9"
    assert render.sources_block([bare]) == "\n\n**Sources**\n\n1. src/app.py:3-9"


def test_the_terminal_prints_each_citation_as_before(capsys):
    from ui.cli import _print_answers

    sources = every_kind_of_source()
    events = [Event(START, "Coding"), Event(TOKEN, "Coding", "Quoted."), Event(END, "Coding", "Quoted.", sources)]
    assert _print_answers(iter(events), terminal=False) == 0
    out = capsys.readouterr().out
    assert out == "\nCoding:\nQuoted.\n" + "".join(cli_line_before(s) + "\n" for s in sources)
    assert "  [1] src/app.py:3-9\n" in out  # no title, KB or link: the place alone
    assert _print_answers(iter(failed_turn()), terminal=False) == 2
    assert capsys.readouterr().err == "Guide: The message is 9 characters long and the limit is 5.\n"


# -- one error for an unknown assistant -----------------------------------------------------------------
def test_the_one_lookup_finds_an_assistant_or_raises_the_one_error():
    from copilot.assistants import default_assistants

    team = default_assistants()
    assert find_assistant(" @cod", team).name == "Coding" and find_assistant("docs", team).name == "Tutoring"
    assert find_assistant("coding", team, exact=True).name == "Coding"
    for name, exact in (("cod", True), ("Coding", True), ("Wizard", False), ("", False)):
        with pytest.raises(UnknownAssistant) as e:
            find_assistant(name, team, exact=exact)
        assert e.value.name == name and e.value.names == ["Guide", "Tutoring", "Coding"]
    err = UnknownAssistant("Wizard", ["Guide", "Tutoring", "Coding"])
    assert isinstance(err, ValueError)
    assert str(err) == "There is no assistant 'Wizard'; use one of: Guide, Tutoring, Coding."
    assert err.sentence(["guide", "coding"], " (GET /v1/models lists them)") == \
        "There is no assistant 'Wizard'; use one of: guide, coding (GET /v1/models lists them)."


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return ingested_data_dir(tmp_path_factory.mktemp("reply"))[0]


def test_every_door_says_the_one_errors_sentence(data, capsys, monkeypatch):
    """With the error's sentence marked, each door's refusal carries the mark: each says it from the error,
    adding its own hint, and none words it again."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from mcp import Client

    from copilot.chat import Copilot
    from copilot.config import load_config
    from ui.api import api_router
    from ui.cli import main
    from ui.edge import Gate, install
    from ui.mcp_server import build_server

    sentence = UnknownAssistant.sentence
    monkeypatch.setattr(UnknownAssistant, "sentence", lambda self, *a, **k: "<<" + sentence(self, *a, **k) + ">>")
    names = "Guide, Tutoring, Coding"
    for argv in (["ask", "hi", "--assistant", "Wizard"], ["search", "memory", "--assistant", "Wizard"]):
        assert main(["--data-dir", str(data), *argv]) == 2
        assert capsys.readouterr().err == f"devcopilot: <<There is no assistant 'Wizard'; use one of: {names}.>>\n"

    copilot = Copilot(load_config(env={}, overrides={"data_dir": str(data)}))

    async def ask_mcp() -> str:
        async with Client(build_server(copilot)) as client:
            result = await client.call_tool("ask", {"question": "hi", "assistant": "Wizard"})
            assert result.is_error
            return result.content[0].text

    assert asyncio.run(ask_mcp()) == ("Error executing tool ask: "  # the SDK's words before the tool's
                                      f"<<There is no assistant 'Wizard'; use one of: {names}, or omit it.>>")

    app = FastAPI()
    app.include_router(api_router(copilot))
    install(app, Gate(), max_bytes=1_000_000)  # the one edge renders the API's errors
    web = TestClient(app, base_url="http://127.0.0.1")  # a name the edge answers to (TestClient's own is not)
    r = web.post("/v1/chat/completions", json={"model": "Wizard", "messages": [
        {"role": "user", "content": "hi"}]})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == ("<<There is no assistant 'wizard'; use one of: guide, tutoring, coding "
                                            "(GET /v1/models lists them).>>")

    # The chat says it its own way, naming whom the same lookup did not find.
    reply = collect(copilot.chat("hi", copilot.new_session(), assistant="Wizard"))
    assert reply.speakers == ["Guide"] and reply.answers[0].text.startswith("Nobody here is called @Wizard. In this")
    reply = collect(copilot.chat("where is MemoryStore defined?", copilot.new_session(), assistant="@cod"))
    assert reply.speakers == ["Coding"]
    copilot.close()
