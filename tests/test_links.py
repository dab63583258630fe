"""Citation links: line anchors in each forge's style, and server paths turned into viewer URLs."""
from __future__ import annotations

from copilot.links import lines_of, public_links, public_url, with_lines


def test_line_anchors_follow_the_forge():
    gh = "https://github.com/o/r/blob/abc/docs/a.md#L3-L9"
    assert with_lines(gh, 4, 6) == "https://github.com/o/r/blob/abc/docs/a.md#L4-L6"
    gl = "https://gitlab.com/o/r/-/blob/abc/a.py#L3-9"
    assert with_lines(gl, 4, 6) == "https://gitlab.com/o/r/-/blob/abc/a.py#L4-6"
    assert with_lines("/srv/repo/a.py#L3-L9", 5, 5) == "/srv/repo/a.py#L5-L5"
    assert lines_of(gl) == (3, 9) and lines_of("/srv/a.py#L7") == (7, 7) and lines_of("/srv/a.py") is None


def test_server_paths_become_viewer_urls_and_web_links_stay():
    assert public_url("/srv/my repo/a.py#L3-L9") == "/source?path=/srv/my%20repo/a.py&lines=3-9#L3"
    assert public_url("/srv/repo/a.py#L3-L9", "https://copilot.example.com/") == \
        "https://copilot.example.com/source?path=/srv/repo/a.py&lines=3-9#L3"
    web = "https://github.com/o/r/blob/abc/a.py#L1-L2"
    assert public_url(web, "http://x") == web
    text = "See [open](/srv/repo/a.py#L3-L9) and [web](https://github.com/o/r#L1) and [the viewer](/source?path=/a)."
    assert public_links(text, "http://h:1") == ("See [open](http://h:1/source?path=/srv/repo/a.py&lines=3-9#L3) and "
                                                "[web](https://github.com/o/r#L1) and [the viewer](/source?path=/a).")
