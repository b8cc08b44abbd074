"""Every file the README, the docs and the code's comments name exists in
the repository: a newcomer who follows a reference lands on a file, never on
a document that lives somewhere else or a module that was moved."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Folders of the repository a reference may start with.
TOP = ("src", "docs", "ops", "tests", "events", "proof", "local-salesforce", "local-stack", ".ci")
PATH = re.compile(
    r"(?<![\w./-])((?:%s)/[\w./-]*\w|[\w-]+\.md)(?![\w/-])" % "|".join(re.escape(t) for t in TOP)
)
URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+")


def tracked():
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [ROOT / line for line in out.splitlines()]


def texts():
    """(file, text) for the documents, and the comments of the code."""
    for path in tracked():
        if not path.is_file():
            continue
        if path.suffix == ".md":
            yield path, path.read_text(encoding="utf-8")
        elif path.suffix in (".rs", ".py", ".toml", ".yaml", ".sh") or path.parent.name in ("ops", ".ci") or path.name == "Makefile":
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            comments = [
                m.group(1)
                for m in re.finditer(r"(?://[/!]?|#)(.*)$", text, re.MULTILINE)
            ]
            yield path, "\n".join(comments)


def references():
    for path, text in texts():
        for line in URL.sub(" ", text).splitlines():
            for m in PATH.finditer(line):
                ref = m.group(1).rstrip(".")
                if any(c in ref for c in "*{}<>…"):
                    continue
                yield path, ref


def exists(source, ref):
    candidates = [ROOT / ref, source.parent / ref]
    return any(c.exists() for c in candidates)


def test_every_named_path_exists():
    missing = sorted(
        {f"{src.relative_to(ROOT)}: {ref}" for src, ref in references() if not exists(src, ref)}
    )
    assert not missing, "references to files that are not in the repository:\n" + "\n".join(missing)


def test_the_check_sees_references():
    # The README names its sources: if the pattern stopped matching, the
    # test above would pass over nothing.
    named = {ref for src, ref in references() if src.name == "README.md"}
    assert {"docs/operations.md", "docs/event.md", "docs/configuration.md"} <= named
    assert not exists(ROOT / "README.md", "docs/no-such-page.md")
