"""File types: which files are docs, which are code, and in which language."""
from __future__ import annotations

from pathlib import PurePosixPath

DOC_LANGUAGES = {
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
    ".rst": "rst", ".txt": "text", ".html": "html", ".htm": "html", ".ipynb": "notebook",
}

# Languages with a tree-sitter grammar shipped as a wheel; others use line windows.
CODE_LANGUAGES = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".jsx": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".java": "java", ".rs": "rust",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".cs": "csharp",
    ".rb": "ruby", ".php": "php", ".kt": "kotlin", ".swift": "swift", ".scala": "scala",
    ".sh": "bash", ".bash": "bash", ".lua": "lua", ".r": "r", ".jl": "julia", ".sql": "sql",
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".cfg": "ini", ".ini": "ini",
    ".css": "css", ".scss": "css", ".vue": "vue", ".svelte": "svelte",
}
CODE_FILENAMES = {"Makefile": "make", "Dockerfile": "dockerfile", "CMakeLists.txt": "cmake"}

BINARY_EXTENSIONS = {
    ".png", ".jpg", ".jpeg", ".gif", ".webp", ".ico", ".bmp", ".pdf", ".zip", ".gz", ".tgz",
    ".bz2", ".xz", ".7z", ".tar", ".whl", ".so", ".dll", ".dylib", ".exe", ".bin", ".pyc",
    ".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp3", ".mp4", ".wav", ".mov", ".sqlite", ".db",
    ".npy", ".npz", ".pt", ".onnx", ".safetensors", ".class", ".jar", ".o", ".a",
}


def classify(path: str) -> tuple[str, str] | None:
    """(kind, language) for a file path, or None when the type is not indexed."""
    p = PurePosixPath(path)
    if p.name in CODE_FILENAMES:
        return "code", CODE_FILENAMES[p.name]
    suffix = p.suffix.lower()
    if suffix in DOC_LANGUAGES:
        return "doc", DOC_LANGUAGES[suffix]
    if suffix in CODE_LANGUAGES:
        return "code", CODE_LANGUAGES[suffix]
    return None
