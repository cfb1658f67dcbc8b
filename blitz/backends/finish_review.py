"""What the embedded agent's finish is checked for before it ends a run: that the task's change
is there at all, that it is more than blank space, and that code the task asked to test has a
test (one that uses it, not a copy of it in the test file, and checks more than the function
giving back its argument). Each check sends the finish back once, saying what is missing: small
models often stop short of the task (Qwen2.5-Coder-1.5B finished having changed nothing, having
re-wrapped a docstring, and having added a function without the test its task asked for), and
told so, they may yet do it, where a failed attempt costs a recovery. A model that insists is
believed: the attempt's own checks and gates judge it.

Pure reading of the worktree against its last commit (``git status``, ``git show``) and of the
test files' Python (:mod:`ast`); running the gates is :mod:`blitz.backends.finish_gates`.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from blitz.asked import asked_functions, renamed_functions, tested_functions
from blitz.backends.source_edits import defined_names
from blitz.errors import GitError
from blitz.git import Git

NOTHING_CHANGED = (
    "You called finish, but no file in the repository has changed, and this task needs a change."
    " Make the change the task asks for (write_file, append_to_file or edit_file), then call"
    " finish. If the task truly needs no change, call finish again and say why."
)
"""What the model is told when it calls ``finish`` with nothing changed."""

ONLY_BLANKS = (
    "You called finish, but your changes to {files} are only blank space (line breaks,"
    " indentation, spaces): nothing the task asks for is there yet. Make the change the task asks"
    " for (write_file, append_to_file or edit_file), then call finish. If blank space was the"
    " whole change, call finish again and say why."
)
"""What the model is told when it calls ``finish`` with only blank space changed (Qwen2.5-Coder
-1.5B rewrote a file the way it was, its docstring's line broken, and finished)."""

UNTESTED = (
    "You called finish, but no test uses {names} yet, and this task's files include {tests}:"
    " add a test that calls {first} there (append_to_file {test}, with the import it needs),"
    " then call finish. If it is tested elsewhere, call finish again and say where."
)
"""What the model is told when it added code its task's test files do not use."""

SHADOWED = (
    "You called finish, but {test} defines its own {name}(): a test there would test that copy,"
    " not the {name}() {whose}. Take that definition out of {test} (edit_file), import"
    " {name} from where the task adds it, and test that one; then call finish."
)
"""What the model is told when a test file defines a name the task's code adds (Qwen2.5-Coder
-1.5B "tested" slugify by writing another slugify into the test file)."""

TRIVIAL = (
    "You called finish, but the test of {name}() only checks {shown}: a {name}() that returns"
    " its argument unchanged would pass it. Add a test of an input that {name}() has to change"
    " (for text: capitals, spaces, punctuation; whatever the task says it changes), with the"
    " result the task asks for (append_to_file {test}), then call finish."
)
"""What the model is told when every check its tests make of new code is the function giving
back its argument (Qwen2.5-Coder-1.5B "tested" a wrong slugify with ``slugify('hi') == 'hi'``)."""

UNDEFINED = (
    "You called finish, but the task asks for {name}() and no file defines it yet ({files}"
    " searched): add it where the task says (append_to_file), then call finish. If the task is"
    " done without it, call finish again and say why."
)
"""What the model is told when the task asks it to add a function no file defines (the 1.5B,
its task "add shout... This task takes the place of add-slugify: ... add a function
slugify(text)", wrote shout alone, and the goal succeeded with no slugify)."""

RENAMED = (
    "You called finish, but the task asks to rename {old} to {new}, and {files} still defines"
    " {old}(): a rename leaves no {old}. Change its definition's name there (edit_file, the"
    " `def` line) rather than adding {new} beside it, change its callers, then call finish."
)
"""What the model is told when a name the task renames is still defined (the 1.5B's draft of
"Rename compute_total to sum_prices" added sum_prices beside it, and the goal succeeded with
both: bench run Y)."""

REVIEWED_FILES = 50
"""The most changed files a finish is reviewed for (each is read against its last commit)."""

_TEST_FILE = re.compile(
    r"(^|/)(tests?|__tests__|spec)/|(^|/)test_[^/]*$|_test\.\w+$|\.(test|spec)\.\w+$"
)
"""A path that holds tests (``test_x.py``, ``x_test.go``, ``x.test.ts``, ``tests/...``)."""


def is_test_file(path: str) -> bool:
    return _TEST_FILE.search(path) is not None


class FinishReview:
    """The checks of one run's finish, each made (and sent back) at most once."""

    def __init__(
        self, root: Path, files: Sequence[str], *, needs_change: bool, asks: str = ""
    ) -> None:
        """``files``: the task's expected files; ``needs_change``: the task must change a file
        (it is not ``allow_empty``); ``asks``: the task's title and instructions (the functions
        they ask for must be defined, those they ask to test must be used by a test:
        :mod:`blitz.asked`)."""
        self.root = root
        self.files = tuple(files)
        self.needs_change = needs_change
        self.asked = asked_functions(asks)
        self.to_test = tested_functions(asks)
        self.renamed = renamed_functions(asks)
        self._sent: Counter[str] = Counter()  # the checks that sent a finish back, how often

    async def problem(self) -> tuple[str, str]:
        """What to send a finish back with, and a line saying so ("", "": nothing, it ends the
        run)."""
        if not self.needs_change:
            return "", ""
        git = Git(self.root)
        try:
            changed = await git.status(self.root, all_untracked=True)
            if not changed:
                return self._once("nothing", NOTHING_CHANGED, "no file changed")
            if len(changed) > REVIEWED_FILES:  # no small model's slip: nothing to read back
                return "", ""
            committed = {path: await _committed(git, self.root, path) for path in changed}
        except GitError:  # not a repository: nothing to check against
            return "", ""
        now = {path: _text(self.root / path) for path in changed}
        if all(_blank_change(committed[p], now[p]) for p in changed):
            text = ONLY_BLANKS.format(files=", ".join(changed[:5]))
            return self._once("nothing", text, "only blank space changed")
        searched = [*dict.fromkeys([*self.files, *changed])]
        texts = [now[p] if p in now else _text(self.root / p) for p in searched]
        for before, after in self.renamed:
            still = [
                p
                for p, text in zip(searched, texts, strict=True)
                if text and _defines(text, before)
            ]
            if still:
                text = RENAMED.format(old=before, new=after, files=", ".join(still[:5]))
                return self._once("renamed", text, f"{before}() still defined", times=2)
        for name in self.asked:
            if any(text and _defines(text, name) for text in texts):
                continue
            if await _defined_elsewhere(git, self.root, name):
                continue
            text = UNDEFINED.format(name=name, files=", ".join(searched[:5]))
            return self._once("undefined", text, f"no {name}() defined", times=2)
        return self._untested(committed, now)

    async def untested(self) -> tuple[list[str], str]:
        """The names the change adds that no test uses, and the task's test file they belong
        in (([], "") when the task names no test file, or each is used), as a finish would find
        them now; asking is no send-back."""
        tests = [path for path in self.files if is_test_file(path)]
        if not tests:
            return [], ""
        git = Git(self.root)
        try:
            changed = await git.status(self.root, all_untracked=True)
            if len(changed) > REVIEWED_FILES:
                return [], ""
            committed = {path: await _committed(git, self.root, path) for path in changed}
        except GitError:
            return [], ""
        now = {path: _text(self.root / path) for path in changed}
        missing, _, _ = _unused(tests, self.root, committed, now, self.to_test)
        return missing, tests[0]

    def _untested(
        self, committed: dict[str, str | None], now: dict[str, str | None]
    ) -> tuple[str, str]:
        tests = [path for path in self.files if is_test_file(path)]
        if not tests:
            return "", ""
        missing, added, test_texts = _unused(tests, self.root, committed, now, self.to_test)
        for path, text in sorted(test_texts.items()):
            copied = [n for n in defined_names(text) if n in added or n in self.to_test]
            if copied:
                name = copied[0]
                whose = "this task adds" if name in added else "this task asks to test"
                said = SHADOWED.format(test=path, name=name, whose=whose)
                return self._once("untested", said, f"{path} defining its own {name}()")
        if not missing:
            return self._trivial(dict.fromkeys([*added, *self.to_test]), test_texts)
        shown = ", ".join(f"{name}()" for name in missing[:3])
        text = UNTESTED.format(
            names=shown, tests=", ".join(tests[:3]), first=missing[0], test=tests[0]
        )
        # Twice: told once, Qwen2.5-Coder-1.5B wrote its test in a loop until it was stopped,
        # twice, then finished without one.
        return self._once("untested", text, f"no test uses {shown}", times=2)

    def _trivial(self, names: Iterable[str], tests: dict[str, str]) -> tuple[str, str]:
        """A send-back for the first name whose every check in ``tests`` is an identity."""
        for name in names:
            checks = [c for text in tests.values() for c in comparisons(text, name)]
            if checks and all(identity for _, identity in checks):
                test = next(path for path, text in sorted(tests.items()) if _uses(text, name))
                text = TRIVIAL.format(name=name, shown=checks[0][0], test=test)
                # Twice: told once, Qwen2.5-Coder-1.5B swapped slugify('hi') == 'hi' for
                # slugify('123') == '123'.
                return self._once("trivial", text, f"only {checks[0][0]} tested", times=2)
        return "", ""

    async def changed(self) -> bool:
        """Whether the worktree differs from its last commit (or cannot be compared)."""
        try:
            return bool(await Git(self.root).status(self.root, all_untracked=True))
        except GitError:
            return True

    def _once(self, check: str, text: str, line: str, times: int = 1) -> tuple[str, str]:
        """``text`` to send back, unless ``check`` sent a finish back ``times`` already."""
        if self._sent[check] >= times:
            return "", ""
        self._sent[check] += 1
        return text, f"re-asked: finish was called with {line}"


def _unused(
    tests: Sequence[str],
    root: Path,
    committed: dict[str, str | None],
    now: dict[str, str | None],
    to_test: Sequence[str] = (),
) -> tuple[list[str], list[str], dict[str, str]]:
    """The names the change adds, and those of ``to_test`` (the task asks to test them), that no
    test uses (once each); every name the change adds; and the text of each test file (the
    task's and those changed)."""
    added = [
        name
        for path, text in now.items()
        if text is not None and not is_test_file(path)
        for name in _new_names(committed[path] or "", text)
    ]
    test_texts = {path: _text(root / path) or "" for path in {*tests, *filter(is_test_file, now)}}
    missing = [
        name for name in [*added, *to_test] if not any(_uses(t, name) for t in test_texts.values())
    ]
    return list(dict.fromkeys(missing)), added, test_texts  # a name may be defined twice


def _new_names(before: str, after: str) -> list[str]:
    """The public top-level names ``after`` defines that ``before`` did not."""
    had = set(defined_names(before))
    return [n for n in defined_names(after) if n not in had and not n.startswith("_")]


def comparisons(source: str, name: str) -> list[tuple[str, bool]]:
    """The equality checks Python ``source`` makes of calls to ``name`` (``f(x) == y``), each
    as written and whether it is an identity: one literal argument, the same literal expected.
    None of them when ``source`` is not Python (nothing can be said of it)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1):
            continue
        if not isinstance(node.ops[0], ast.Eq | ast.Is):
            continue
        for call, other in ((node.left, node.comparators[0]), (node.comparators[0], node.left)):
            if isinstance(call, ast.Call) and _named(call.func, name):
                found.append((ast.unparse(node), _identity(call, other)))
                break
    return found


def _named(func: ast.expr, name: str) -> bool:
    return (isinstance(func, ast.Name) and func.id == name) or (
        isinstance(func, ast.Attribute) and func.attr == name
    )


def _identity(call: ast.Call, other: ast.expr) -> bool:
    if call.keywords or len(call.args) != 1:
        return False
    arg = call.args[0]
    if not (isinstance(arg, ast.Constant) and isinstance(other, ast.Constant)):
        return False
    literal = arg.value
    return type(literal) in (str, bytes, int, float) and literal == other.value


def _defines(text: str, name: str) -> bool:
    """Whether source ``text`` defines ``name``: ``def``, ``class``, ``function``, ``func``,
    ``fn``, or a name bound to a function (``const name = (`` ..., ``name = lambda``)."""
    word = re.escape(name)
    return (
        re.search(rf"\b(?:def|class|function|func|fn)\s+{word}\b", text) is not None
        or re.search(rf"\b{word}\s*=\s*(?:lambda\b|function\b|async\b|\()", text) is not None
    )


async def _defined_elsewhere(git: Git, root: Path, name: str) -> bool:
    """Whether a committed file of the worktree defines ``name`` (the task's files and the
    changed ones are read first)."""
    found = await git.run(
        "grep", "-q", "-E", rf"(def|class|function|func|fn)[[:space:]]+{name}\b", cwd=root,
        check=False,
    )  # fmt: skip
    return found.ok


def _uses(text: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


def _blank_change(before: str | None, after: str | None) -> bool:
    """Whether a file differs from its committed version in blank space alone (a new or
    removed file is a change)."""
    if before is None or after is None:
        return False
    return "".join(before.split()) == "".join(after.split())


async def _committed(git: Git, root: Path, path: str) -> str | None:
    """``path`` as committed (None: not in the last commit, or not text)."""
    shown = await git.run("show", f"HEAD:{PurePosixPath(path)}", cwd=root, check=False)
    return shown.out if shown.ok else None


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
