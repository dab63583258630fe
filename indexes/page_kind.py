"""The kind of a docs page, from its path and first heading: news (blog posts, release notes, changelogs)
against the guides and references that answer how things work.

News pages name every feature in the words of its announcement, so they match many questions, and
rank beside or above the guide that explains the feature; but what a page said when a release came
out is rarely the answer, unless the question asks about a release or a version. Search steps them
behind (indexes/search.py) unless the question asks for one (`asks_for_news`).
"""
from __future__ import annotations

import re

from indexes.query_kind import DEPRECATION_WORDS, RELEASE_WORDS, read_intent
from ingest.chunk import Chunk

# A folder of news anywhere in the path: docs/blog/posts/..., news/, docs/history/ (release notes)...
NEWS_FOLDERS = {"blog", "blogs", "posts", "news", "announcements", "history", "releases", "release-notes",
                "release_notes", "changelog", "changelogs", "changes"}
# A file that is news wherever it is ...
NEWS_FILES = {"changelog", "changes", "release-notes", "release_notes", "releasenotes", "whatsnew", "whats-new",
              "whats_new", "news", "announcements"}
# ... and one that is news only at the top of the tree or of its docs folder (docs/ref/.../history.md is the
# reference of a module named history).
TOP_NEWS_FILES = {"history", "release", "releases"}
NEWS_HEADING = re.compile(r"^\s*(change ?log|changes|release notes|release history|what'?s new|news)\b", re.IGNORECASE)
# A question about a release: what changed, what is new, in or since which version, when something changed, the
# changelog or the blog itself. A version number alone is not one ("every Python version from 3.10 to 3.13").
# "Which version parts can be bumped" asks about version numbers, not a release: "version" naming the kind of a
# following noun (parts, scheme, number...) is not "which version" asking for a release.
VERSION_NOUNS = (r"(parts?|schemes?|numbers?|segments?|components?|strings?|files?|sources?|fields?|formats?|"
                 r"specifiers?)\b")
ASKS = re.compile(rf"\b(releases?|released|changelog|release notes|blog|announce\w*|new in|upgrad\w+|"
                  r"migrat\w+ (to|from) (v|version )?\d|migration guide|"
                  rf"move to|(which|what|in which|from which|since which) versions?(?! ?{VERSION_NOUNS})|"
                  r"when (did|was|were)|since when)\b|"
                  r"发布|更新日志|哪个版本", re.IGNORECASE)


def is_news(chunk: Chunk) -> bool:
    """A blog post, a news item, release notes or a changelog (docs only: code is never news)."""
    return chunk.kind == "doc" and news_page(chunk.path, chunk.headings)


def news_page(path: str, headings: list[str]) -> bool:
    """Whether a doc page at `path` whose chunk sits under `headings` is news."""
    parts = path.lower().split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    if any(part in NEWS_FOLDERS for part in parts[:-1]) or stem in NEWS_FILES:
        return True
    if stem in TOP_NEWS_FILES and len(parts) <= 2:
        return True
    return bool(headings) and NEWS_HEADING.match(headings[0]) is not None


# "The difference between" two things is a comparison, unless the things are versions.
VERSION = re.compile(r"\bv?\d+\.\d+")


def asks_for_news(question: str) -> bool:
    """The question asks about a release, a version or what is new: news pages may answer it."""
    if ASKS.search(question) is not None:
        return True
    # "Is X deprecated?" asks what a release did; "how do I mark an option as deprecated?" asks for a recipe.
    if DEPRECATION_WORDS.search(question) is not None and read_intent(question) != "how_to":
        return True
    words = RELEASE_WORDS.search(question)
    return words is not None and (not words.group(0).lower().startswith("diff") or VERSION.search(question) is not None)
