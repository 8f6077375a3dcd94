"""What the docs tell a reader to type still works: every command parses, every module and link exists.

Every ``loadbench ...`` line in a fenced shell block (```bash, ```console, a plain ```) of
README.md, docs/*.md and bench/studies/README.md is parsed by the CLI's own argparse
parser, in this process, without running it. Shell syntax is read as a shell would split
it: a leading ``$ `` prompt, backslash-continued lines, ``&&``, ``||``, ``|`` and ``;``
between commands, ``VAR=value`` before one, redirections, ``#`` comments; ``$(...)`` and
``$VAR`` stand for a path. Every ``python -m loadbench...`` the docs name, in a block or in
a sentence, must be a module that exists and can be run. Every relative markdown link
must reach a file that exists, and its ``#anchor`` a heading of that file.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "studies" / "README.md"]
# Fenced blocks read as shell: a plain fence included, ```text / ```toml / ```python / ```mermaid not.
SHELL_BLOCKS = {"", "bash", "sh", "shell", "console", "zsh"}
PLACEHOLDER = "/tmp/loadbench-docs/placeholder"
SEPARATORS = {"&&", "||", "|", ";", "&"}
REDIRECTIONS = {">", ">>", "<", ">&", "&>", "<<"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
MODULE_MENTION = re.compile(r"\bpython3? -m (loadbench(?:\.[A-Za-z_][A-Za-z0-9_]*)*)")
FENCE = re.compile(r"^\s*(```+|~~~+)\s*([^\s`]*)")
MAIN_GUARD = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.MULTILINE)


@dataclass(frozen=True)
class Command:
    doc: Path
    line: int  # 1-based, the first line of the command in the file
    text: str  # as the doc shows it (continuations joined)
    argv: tuple[str, ...]  # what follows "loadbench"

    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}: {self.text}"


def _rel(doc: Path) -> str:
    return str(doc.relative_to(ROOT))


def fenced_blocks(text: str) -> Iterator[tuple[str, int, list[str]]]:
    """(language, 1-based line of the block's first content line, its lines) of every fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        fence, language = opened.group(1), opened.group(2).lower()
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        yield language, start + 1, lines[start:j]
        i = j + 1


def _substitute(line: str) -> str:
    """``$(...)`` (nested parentheses and quotes inside allowed) and ``$VAR``/``${VAR}`` become a path."""
    out: list[str] = []
    i = 0
    while i < len(line):
        if line.startswith("$(", i):
            depth, j, quote = 1, i + 2, ""
            while j < len(line) and depth:
                char = line[j]
                if quote:
                    if char == quote:
                        quote = ""
                elif char in "'\"":
                    quote = char
                elif char == "(":
                    depth += 1
                elif char == ")":
                    depth -= 1
                j += 1
            out.append(PLACEHOLDER)
            i = j
            continue
        variable = re.match(r"\$(\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)", line[i:])
        if variable:
            out.append(PLACEHOLDER)
            i += variable.end()
            continue
        out.append(line[i])
        i += 1
    return "".join(out)


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(_substitute(line), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def _segments(tokens: list[str]) -> Iterator[list[str]]:
    """The simple commands of a line: split at && || | ; &, redirections and their targets dropped."""
    current: list[str] = []
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
        elif token in SEPARATORS:
            yield current
            current = []
        elif token in REDIRECTIONS:
            skip_next = True  # the redirection's target
        else:
            current.append(token)
    yield current


def _cli_argv(segment: list[str]) -> list[str] | None:
    while segment and ENV_ASSIGNMENT.match(segment[0]):
        segment = segment[1:]
    if segment[:1] == ["loadbench"]:
        return segment[1:]
    if len(segment) >= 3 and segment[0] in ("python", "python3") and segment[1:3] == ["-m", "loadbench"]:
        return segment[3:]
    return None


def _logical_lines(language: str, lines: list[str], first: int) -> Iterator[tuple[int, str]]:
    """(line number, command line) of a block: prompts stripped, continuations joined, output skipped."""
    pending: list[str] = []
    start = first
    for offset, raw in enumerate(lines):
        line = raw.rstrip()
        if not pending:
            start = first + offset
            if line.lstrip().startswith("$ "):
                line = line.lstrip()[2:]
            elif language == "console":
                continue  # a console block's output
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        yield start, " ".join(part.strip() for part in pending)
        pending = []
    if pending:
        yield start, " ".join(part.strip() for part in pending)


def commands_in(doc: Path, text: str | None = None) -> tuple[list[Command], list[str]]:
    """The loadbench commands of a doc's shell blocks, and the lines that could not be read as shell."""
    text = doc.read_text(encoding="utf-8") if text is None else text
    found: list[Command] = []
    unreadable: list[str] = []
    for language, first, lines in fenced_blocks(text):
        if language not in SHELL_BLOCKS:
            continue
        for number, line in _logical_lines(language, lines, first):
            if "loadbench" not in line:
                continue
            try:
                tokens = _tokens(line)
            except ValueError as exc:  # an unclosed quote
                if re.search(r"(^|[\s;&|(])(loadbench|python3? -m loadbench)\s", line):
                    unreadable.append(f"{_rel(doc)}:{number}: {line.strip()}: not shell ({exc})")
                continue
            for segment in _segments(tokens):
                argv = _cli_argv(segment)
                if argv is not None:
                    found.append(Command(doc, number, line.strip(), tuple(argv)))
    return found, unreadable


def _cli_parser() -> argparse.ArgumentParser:
    """The CLI's own parser, built as ``loadbench`` builds it (a private helper, used on purpose)."""
    from loadbench.bench.cli import main as cli

    for name in ("_parser", "build_parser", "make_parser", "parser"):
        build = getattr(cli, name, None)
        if callable(build):
            built = build()
            parser = built[0] if isinstance(built, tuple) else built
            assert isinstance(parser, argparse.ArgumentParser), f"bench/cli/main.py: {name}() gave {built!r}"
            return parser
    raise AssertionError("bench/cli/main.py builds no argparse parser this test can find (looked for _parser())")


def parse_error(parser: argparse.ArgumentParser, argv: tuple[str, ...]) -> str | None:
    """None when argparse accepts ``argv``; else what it printed."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(list(argv))
    except SystemExit as exc:
        if exc.code not in (0, None):
            return said.getvalue().strip().splitlines()[-1] if said.getvalue().strip() else f"exit {exc.code}"
    return None


@pytest.fixture(scope="module")
def cli_parser() -> argparse.ArgumentParser:
    return _cli_parser()


def _ids(docs: list[Path]) -> list[str]:
    return [_rel(doc) for doc in docs]


def test_the_docs_are_there() -> None:
    missing = [_rel(doc) for doc in DOCS if not doc.is_file()]
    assert not missing, f"docs this test reads are missing: {missing}"
    assert len(DOCS) >= 8


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_every_documented_command_parses(doc: Path, cli_parser: argparse.ArgumentParser) -> None:
    commands, unreadable = commands_in(doc)
    failures = list(unreadable)
    for command in commands:
        error = parse_error(cli_parser, command.argv)
        if error is not None:
            failures.append(f"{command.where()}\n    {error}")
    assert not failures, "documented commands that loadbench's parser refuses:\n" + "\n".join(failures)


def test_the_readme_commands_are_found() -> None:
    # The install line CI depends on ends in `loadbench run`; an extractor that found nothing would pass vacuously.
    commands, _ = commands_in(ROOT / "README.md")
    assert any(c.argv == ("run",) for c in commands), [c.where() for c in commands]
    assert {c.argv[0] for c in commands if c.argv} >= {"run", "compare", "report"}


def test_the_extractor_reads_shell_as_a_shell_would(cli_parser: argparse.ArgumentParser) -> None:
    doc = ROOT / "README.md"
    text = "\n".join([
        "```bash",
        "pip install -e . && loadbench run   # a comment, it's ignored",
        "HF_HUB_OFFLINE=1 loadbench run --checkpoint org/name@main \\",
        "    --cache cold",
        'loadbench run --checkpoint "$(python -c \'import p; print(p.f("x"))\')" --output $OUT',
        "loadbench report RUN >> $GITHUB_STEP_SUMMARY; loadbench compare a b | tee out.md",
        "echo loadbench is not a command here",
        "```",
        "```console",
        "$ loadbench run --repeats 10",
        "loadbench: output, not a command",
        "```",
        "```python",
        "loadbench.run()  # loadbench run --no-such-flag",
        "```",
    ])
    commands, unreadable = commands_in(doc, text)
    assert not unreadable
    assert [(c.line, c.argv) for c in commands] == [
        (2, ("run",)),
        (3, ("run", "--checkpoint", "org/name@main", "--cache", "cold")),
        (5, ("run", "--checkpoint", PLACEHOLDER, "--output", PLACEHOLDER)),
        (6, ("report", "RUN")),
        (6, ("compare", "a", "b")),
        (10, ("run", "--repeats", "10")),
    ]
    assert all(parse_error(cli_parser, c.argv) is None for c in commands)
    assert parse_error(cli_parser, ("run", "--no-such-flag")) is not None
    assert parse_error(cli_parser, ("checkpoints", "[--all]")) is not None  # a synopsis is not a command
    assert parse_error(cli_parser, ("run", "--repeats", "many")) is not None


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_every_module_the_docs_run_exists(doc: Path) -> None:
    problems = []
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        for module in MODULE_MENTION.findall(line):
            spec = importlib.util.find_spec(module)
            if spec is None:
                problems.append(f"{_rel(doc)}:{number}: python -m {module}: no such module")
                continue
            if spec.submodule_search_locations is not None:  # a package: run as its __main__
                spec = importlib.util.find_spec(module + ".__main__")
                if spec is None and module != "loadbench.bench.studies":
                    problems.append(f"{_rel(doc)}:{number}: python -m {module}: a package without __main__")
                continue
            source = Path(spec.origin).read_text(encoding="utf-8") if spec.origin else ""
            if not MAIN_GUARD.search(source):
                problems.append(f"{_rel(doc)}:{number}: python -m {module}: the module does nothing when run")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_every_python_snippet_compiles_and_names_what_exists(doc: Path) -> None:
    import loadbench
    import loadbench.results

    problems = []
    for language, first, lines in fenced_blocks(doc.read_text(encoding="utf-8")):
        if language not in ("python", "py"):
            continue
        source = "\n".join(lines)
        try:
            compile(source, f"{_rel(doc)}:{first}", "exec")
        except SyntaxError as exc:
            problems.append(f"{_rel(doc)}:{first + (exc.lineno or 1) - 1}: {exc.msg}")
            continue
        namespaces = {"loadbench": loadbench, "loadbench.results": loadbench.results}
        if re.search(r"^import loadbench\.results as lr$", source, re.MULTILINE):
            namespaces["lr"] = loadbench.results
        for offset, line in enumerate(lines):
            code = line.split("#", 1)[0]
            for name, attribute in re.findall(r"\b(loadbench\.results|loadbench|lr)\.([A-Za-z_]\w*)", code):
                if name in namespaces and not hasattr(namespaces[name], attribute):
                    problems.append(f"{_rel(doc)}:{first + offset}: {name}.{attribute} does not exist")
    assert not problems, "python snippets that would not run:\n" + "\n".join(problems)


# -- links --------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) outside fenced blocks, code spans blanked."""
    fence = ""
    for number, line in enumerate(text.splitlines(), 1):
        opened = FENCE.match(line)
        if opened and (not fence or opened.group(1).startswith(fence)):
            fence = "" if fence else opened.group(1)
            continue
        if not fence:
            yield number, CODE_SPAN.sub("``", line)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    """The anchors of a doc's headings, as GitHub makes them (a repeated heading gets -1, -2...)."""
    seen: dict[str, int] = {}
    found = set()
    fence = ""
    for line in doc.read_text(encoding="utf-8").splitlines():
        opened = FENCE.match(line)
        if opened and (not fence or opened.group(1).startswith(fence)):
            fence = "" if fence else opened.group(1)
            continue
        heading = HEADING.match(line) if not fence else None
        if heading:
            base = slug(heading.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links_in(doc: Path) -> Iterator[tuple[int, str]]:
    text = doc.read_text(encoding="utf-8")
    for number, line in _prose_lines(text):
        for target in LINK.findall(line):
            yield number, target
        for target in REFERENCE.findall(line):
            yield number, target


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_every_relative_link_reaches_a_file(doc: Path) -> None:
    broken = []
    for number, target in links_in(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        destination = (doc.parent / path_part).resolve() if path_part else doc
        if not destination.exists():
            broken.append(f"{_rel(doc)}:{number}: ({target}): {path_part} does not exist")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{_rel(doc)}:{number}: ({target}): no heading #{anchor} in "
                          f"{destination.relative_to(ROOT)}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_slugs_follow_github() -> None:
    assert slug("Page cache: `cache = warm | cold`") == "page-cache-cache--warm--cold"
    assert slug("The host's own noise floor") == "the-hosts-own-noise-floor"
    assert slug("validate_paired") == "validate_paired"
    assert slug("Library versions: what did the upgrade do?") == "library-versions-what-did-the-upgrade-do"
