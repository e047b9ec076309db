"""README code blocks that quote a project file (first line `# path/of/the/file`) are that file, verbatim (a file
whose own first line is that path line, as under examples/snippets/, is quoted whole)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quoted_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```\w*\n(.*?)^```", text, re.M | re.S)
    out = []
    for block in blocks:
        first, _, rest = block.partition("\n")
        match = re.fullmatch(r"# (\S+\.(?:yaml|yml|py|toml|json))", first.strip())
        if match and (ROOT / match.group(1)).is_file():
            # A file that starts with its own path line (examples/snippets/) is quoted whole.
            whole = (ROOT / match.group(1)).read_text(encoding="utf-8").startswith(first + "\n")
            out.append((match.group(1), block if whole else rest))
    return out


def test_readme_quotes_files_verbatim():
    blocks = quoted_blocks()
    assert blocks, "the README quotes at least examples/configs/merge_tsv.yaml"
    for path, body in blocks:
        assert body == (ROOT / path).read_text(encoding="utf-8"), (
            f"README's copy of {path} differs from the file"
        )
