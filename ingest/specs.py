"""What a source spec names, and opening it: a folder, a git URL (at a ref: `URL#REF`), `pkg:NAME`
(ingest/sources.py), a published release `pypi:NAME==VERSION` or `npm:NAME@VERSION`
(ingest/releases.py), a docs website URL (ingest/website.py) or a LlamaIndex reader,
`llamaindex:MODULE.Class` (ingest/llamaindex.py, imported only when one is used).

An http(s) URL is a git repository when it ends in .git or is on a known git host
(github.com, gitlab.com, bitbucket.org, codeberg.org); any other is a docs website.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ingest.sources import ResolvedSource, SourceError, is_website_url, resolve

if TYPE_CHECKING:
    from ingest.outbound import Outbound


def open_source(spec: str, cfg, fetch: bool = True, outbound: Outbound | None = None) -> ResolvedSource:
    """The source `spec` names, fetched (cloned, crawled, read) when `fetch`. `cfg` is the Config
    (data_dir and the ingest settings). `outbound`: the policy of the server's doors for what a fetch
    may connect to (ingest/outbound.py); None for the operator's own fetches, which go where they are told."""
    spec = spec.strip()
    if spec.startswith("llamaindex:"):
        if outbound is not None:  # a reader runs code that fetches what it likes: the operator's alone
            raise SourceError(f"'{spec}' is a LlamaIndex reader; only the command line indexes those.")
        from ingest.llamaindex import reader_source

        return reader_source(spec)
    if spec.startswith("documents:"):
        raise SourceError(f"'{spec}' holds LlamaIndex Documents given from Python; ingest them again with "
                          "indexes.llamaindex.ingest_documents.")
    if spec.startswith(("pypi:", "npm:")):
        from ingest.releases import open_release

        return open_release(spec, cfg.data_dir, cfg.ingest.git_timeout_s, fetch=fetch)
    if is_website_url(spec):
        from ingest.website import SiteOptions, site_source

        i = cfg.ingest
        options = SiteOptions(i.site_max_pages, i.site_concurrency, i.site_timeout_s, i.site_page_seconds,
                              i.site_seconds)
        return site_source(spec, cfg.data_dir, options, fetch=fetch, outbound=outbound)
    return resolve(spec, cfg.data_dir, cfg.ingest.git_timeout_s, fetch=fetch, outbound=outbound)
