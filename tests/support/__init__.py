"""Helpers shared by the tests and the benches (bench/ puts tests/ on sys.path to import them).

Fixtures stay in tests/conftest.py; everything here is plain code that a test or a bench calls:

- corpus.py         small projects written on the fly, and a generated corpus of many files
- kb_state.py       an indexed KB's chunk ids and manifest, checked consistent
- servers.py        the real ASGI app served by uvicorn in a thread; a free loopback port
- live.py           real `devcopilot serve` processes, a loop of chat requests, `devcopilot` commands
- chat.py           one indexed corpus and Copilots over it, for the chat tests
- browser.py        headless Chromium driving the web app
- llm_server.py     a local OpenAI/DashScope-compatible model server with scripted replies
- conversations.py  conversation stores filled the same way on SQLite and PostgreSQL
- chroma.py         a real `chroma run` server
- git.py            the real `git` with a fixed identity
- security.py       what the security suite attacks with: fake sites, a git forge, raw requests, special files
- graph_project.py  a small project in every language the code graph reads
- packages.py       a made-up distribution declared installed (a .dist-info folder)

Nothing here imports a test module (test_*.py) or conftest.py.
"""
