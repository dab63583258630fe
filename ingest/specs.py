"""What a source spec names, and opening it: a folder, a git URL (at a ref: `URL#REF`), `pkg:NAME`
(ingest/sources.py), a published release `pypi:NAME==VERSION` or `npm:NAME@VERSION`
(ingest/releases.py), a docs website URL (ingest/website.py) or a LlamaIndex reader,
`llamaindex:MODULE.Class` (ingest/llamaindex.py, imported only when one is used).

An http(s) URL is a git repository when it ends in .git or is on a known git host
(github.com, gitlab.com, bitbucket.org, codeberg.org); any other is a docs website.
"""
from __future__ import annotations

from ingest.sources import ResolvedSource, SourceError, is_website_url, resolve


def open_source(spec: str, cfg, fetch: bool = True) -> ResolvedSource:
    """The source `spec` names, fetched (cloned, crawled, read) when `fetch`. `cfg` is the Config
    (data_dir and the ingest settings)."""
    spec = spec.strip()
    if spec.startswith("llamaindex:"):
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
        return site_source(spec, cfg.data_dir, SiteOptions(i.site_max_pages, i.site_concurrency, i.site_timeout_s),
                           fetch=fetch)
    return resolve(spec, cfg.data_dir, cfg.ingest.git_timeout_s, fetch=fetch)
