"""LlamaIndex as the integration layer: the retriever out (equal to `devcopilot search --json`), the node
parser, and readers and Documents in (incremental by document and content hash). Real LlamaIndex classes."""
from __future__ import annotations

import json

import pytest
from llama_index.core import Document
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.response_synthesizers.no_text import NoText
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.core.tools import RetrieverTool
from support.corpus import SMALL_PROJECT, ingested_data_dir, write_tree

from indexes.llamaindex import DevcopilotRetriever, ingest_documents
from ingest.llamaindex import DevcopilotNodeParser
from ingest.sources import SourceError
from ui.cli import main

QUERIES = ["long-term memory for an agent", "how are failed calls retried?", "build_gadget size"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return ingested_data_dir(tmp_path_factory.mktemp("li"))[0]


def cli_search(capsys, data, query: str, *extra: str) -> dict:
    capsys.readouterr()
    assert main(["--data-dir", str(data), "search", query, "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("kind", [None, "doc", "code"])
def test_retriever_returns_what_search_json_returns(data, capsys, kind):
    retriever = DevcopilotRetriever(data, kb="default", k=4, kind=kind)
    for q in QUERIES:
        nodes = retriever.retrieve(q)
        cli = cli_search(capsys, data, q, "--k", "4", *(["--kind", kind] if kind else []))
        assert all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
        got = [{"path": n.node.metadata["path"], "start_line": n.node.metadata["start_line"],
                "end_line": n.node.metadata["end_line"], "kind": n.node.metadata["kind"],
                "language": n.node.metadata["language"], "symbol": n.node.metadata["symbol"],
                "score": round(n.score, 6), "text": n.node.text, "link": n.node.metadata["link"]} for n in nodes]
        want = [{k: h[k] for k in got[0]} for h in cli["hits"]] if got else []
        assert got == want and len(got) == len(cli["hits"]) > 0
        assert all(n.node.metadata["kb"] == "default" and n.node.metadata["weak"] == cli["weak"] for n in nodes)
        if kind:
            assert {n.node.metadata["kind"] for n in nodes} == {kind}


def test_retriever_in_a_query_engine_and_as_an_agent_tool(data):
    retriever = DevcopilotRetriever(data, k=3)
    # no_text: the engine returns the retrieved nodes; LlamaIndex still wants an LLM object, which it never calls
    engine = RetrieverQueryEngine(retriever, response_synthesizer=NoText(llm=MockLLM()))
    response = engine.query("Where does MemoryStore keep conversations?")
    assert response.source_nodes and "MemoryStore" in response.source_nodes[0].node.text
    tool = RetrieverTool.from_defaults(retriever, name="framework_docs", description="Search the framework.")
    out = tool.call("retries with exponential backoff")
    assert "exponential backoff" in out.content and tool.metadata.name == "framework_docs"


def test_retriever_refuses_an_unknown_kb_in_one_sentence(data):
    with pytest.raises(ValueError, match="no knowledge base named 'nope'"):
        DevcopilotRetriever(data, kb="nope")
    with pytest.raises(ValueError, match="Unknown kind"):
        DevcopilotRetriever(data, kind="video")


def test_node_parser_chunks_code_by_symbol_and_docs_by_heading():
    code = Document(text=SMALL_PROJECT["widgets/core.py"].replace("\n        ", "\n").lstrip("\n"),
                    metadata={"file_path": "widgets/core.py"})
    long = "word " * 150  # sections big enough not to be merged with their neighbours
    doc = Document(text=f"# Guide\n\n## Retries\n\nCalls are retried. {long}\n\n## Memory\n\nStores keep it. {long}\n",
                   metadata={"file_name": "guide.md"})
    snippet = Document(text="def lonely():\n    return 1\n", metadata={"language": "python"})
    nodes = DevcopilotNodeParser().get_nodes_from_documents([code, doc, snippet])
    by_doc = {}
    for n in nodes:
        by_doc.setdefault(n.ref_doc_id, []).append(n)
    symbols = [n.metadata["symbol"] for n in by_doc[code.doc_id]]
    assert "MemoryStore.save" in symbols and "build_gadget" in symbols
    assert all(n.metadata["kind"] == "code" and n.metadata["language"] == "python" for n in by_doc[code.doc_id])
    assert [n.metadata["headings"] for n in by_doc[doc.doc_id]] == ["Guide > Retries", "Guide > Memory"]
    assert by_doc[snippet.doc_id][0].metadata["symbol"] == "lonely"
    save = next(n for n in by_doc[code.doc_id] if n.metadata["symbol"] == "MemoryStore.save")
    assert code.text[save.start_char_idx:save.end_char_idx] == save.text  # offsets into the document


def test_documents_from_python_are_incremental(cfg, tmp_path):
    docs = [Document(text=f"# Page {i}\n\nThe sprocket number {i} turns {i} times.\n", id_=f"page-{i}",
                     metadata={"file_name": f"page{i}.md"}) for i in range(3)]
    first = ingest_documents(cfg.data_dir, docs, kb="docs", name="pages", config=cfg)
    assert (first.files, first.changed, first.total_chunks) == (3, 3, 3)
    again = ingest_documents(cfg.data_dir, docs, kb="docs", name="pages", config=cfg)
    assert (again.changed, again.removed, again.embedded) == (0, 0, 0)
    docs[1] = Document(text="# Page 1\n\nThe sprocket number 1 now turns backwards.\n", id_="page-1",
                       metadata={"file_name": "page1.md"})
    third = ingest_documents(cfg.data_dir, docs[:2], kb="docs", name="pages", config=cfg)
    assert (third.changed, third.removed) == (1, 1)
    nodes = DevcopilotRetriever(cfg.data_dir, kb="docs", k=1, config=cfg).retrieve("sprocket turns backwards")
    assert nodes[0].node.metadata["path"] == "page1.md" and "backwards" in nodes[0].node.text


def test_cli_ingests_any_reader_and_reingests_incrementally(tmp_path, capsys, monkeypatch):
    project = write_tree(tmp_path / "project", SMALL_PROJECT)
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    args = ["--data-dir", str(data), "ingest", "llamaindex:llama_index.core.SimpleDirectoryReader", "--reader-args",
            json.dumps({"input_dir": str(project), "recursive": True}), "--kb", "li", "--quiet"]
    assert main(args) == 0
    assert "3 files (3 new or changed" in capsys.readouterr().out
    (project / "docs" / "guide.md").write_text("# Guide\n\n## Retries\n\nNever retried any more.\n")
    assert main(args) == 0
    assert "3 files (1 new or changed, 0 removed)" in capsys.readouterr().out
    hits = cli_search(capsys, data, "build_gadget", "--kb", "li")["hits"]
    assert hits[0]["path"] == "project/widgets/core.py" and hits[0]["symbol"] == "build_gadget"
    assert main(["--data-dir", str(data), "status", "--json"]) == 0
    src = json.loads(capsys.readouterr().out)["knowledge_bases"][0]["sources"][0]
    assert src["kind"] == "llamaindex" and src["spec"].startswith("llamaindex:llama_index.core.SimpleDirectoryReader {")


@pytest.mark.parametrize("spec, reader_args, says", [
    ("llamaindex:no_such_module.Reader", None, "Could not import 'no_such_module'"),
    ("llamaindex:llama_index.core.NoSuchReader", None, "has no reader named 'NoSuchReader'"),
    ("llamaindex:llama_index.core.SimpleDirectoryReader", '{"input_dirr": "x"}', "takes no argument 'input_dirr'"),
    ("llamaindex:llama_index.core.SimpleDirectoryReader", '{"input_dir": "/nowhere/at/all"}', "failed"),
    ("llamaindex:llama_index.core.SimpleDirectoryReader", "[1, 2]", "must be a JSON object"),
    ("llamaindex:llama_index.core.SimpleDirectoryReader", "{oops", "not valid JSON"),
])
def test_bad_readers_are_one_sentence(tmp_path, capfd, spec, reader_args, says):
    args = ["--data-dir", str(tmp_path / "d"), "ingest", spec, "--quiet"]
    assert main(args + (["--reader-args", reader_args] if reader_args else [])) == 2
    err = capfd.readouterr().err.strip()
    assert says in err and "\n" not in err and "Traceback" not in err


def test_documents_source_name_is_checked():
    from ingest.llamaindex import documents_source

    with pytest.raises(SourceError, match="not a usable source name"):
        documents_source([], "a/b")
