"""Confinement to a worktree, shared by the embedded agent's tools and the Claude Code hook.

:func:`resolve` is the embedded tools' path check: relative paths only, symbolic links followed
as the kernel would (a loop is an error), nothing outside the worktree or inside ``.git``.
:class:`WorktreeGuard` is Claude Code's ``PreToolUse`` hook (so it holds in every permission
mode): file paths must resolve inside the worktree, and Bash commands that visibly ``cd``,
redirect or write outside it, or commit and rewrite git history, are refused. Both guard against
mistakes; neither is a sandbox.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claude_agent_sdk import HookContext, HookInput, HookJSONOutput


class ToolError(Exception):
    """A tool call the model got wrong; the message tells the model how to get it right."""


MAX_LINKS = 40
"""Symbolic links followed while resolving one path before it counts as a loop (as Linux)."""


def resolve(root: Path, path: str) -> Path:
    """The real path of ``path`` (relative to the worktree ``root``, itself a real path),
    after following every symbolic link; a ToolError when it is absolute, escapes the worktree
    or lies inside ``.git``."""
    if "\x00" in path:
        raise ToolError(f"path {path!r} contains a NUL character; pass a plain relative path")
    relative = path or "."
    if os.path.isabs(relative):
        raise ToolError(
            f"path {path!r} is absolute; use paths relative to the repository root"
            " (e.g. 'src/app.py')"
        )
    normal = os.path.normpath(relative)
    if normal == ".." or normal.startswith("../"):
        raise ToolError(
            f"path {path!r} is outside the worktree; use paths relative to the repository"
            " root, without '..' leading out of it"
        )
    real = follow(root, relative, path)
    try:
        inside = real.relative_to(root)
    except ValueError:
        raise ToolError(
            f"path {path!r} leads outside the worktree through a symbolic link; only files"
            " inside the repository can be used"
        ) from None
    if any(part.casefold() == ".git" for part in inside.parts):
        raise ToolError(
            f"path {path!r} is inside .git, which blitz manages; do not read or change it"
            " (run git commands with run_command to inspect history)"
        )
    return real


def follow(root: Path, relative: str, path: str) -> Path:
    """``relative`` joined to the root with every symbolic link along it followed, as the
    kernel would; the result has no link left in it. Parts that do not exist (yet) are
    joined as they are. Unlike ``os.path.realpath``, a link loop is an error here rather than
    a reason to stop resolving and leave the rest of the path unchecked."""
    current = str(root)
    pending = relative.split("/")[::-1]
    links = 0
    while pending:
        name = pending.pop()
        if name in ("", "."):
            continue
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, name)
        try:
            mode = os.lstat(candidate).st_mode
        except (FileNotFoundError, NotADirectoryError):
            current = candidate  # does not exist: nothing to follow
            continue
        except OSError as exc:
            raise ToolError(f"cannot resolve path {path!r}: {exc.strerror}") from exc
        if not stat.S_ISLNK(mode):
            current = candidate
            continue
        links += 1
        if links > MAX_LINKS:
            raise ToolError(
                f"path {path!r} goes through too many symbolic links (a loop?); use a path"
                " without them"
            )
        try:
            target = os.readlink(candidate)
        except OSError as exc:
            raise ToolError(f"cannot resolve path {path!r}: {exc.strerror}") from exc
        if target.startswith("/"):
            current = "/"
        pending.extend(target.split("/")[::-1])
    return Path(current)


def describe_link(root: Path, link: str) -> str:
    """Where the symbolic link ``link`` (a path under ``root``) leads, as a listing shows it,
    without reading anything outside ``root``."""
    try:
        target = follow(root, Path(link).relative_to(root).as_posix(), link)
        inside = target.relative_to(root)
    except ToolError:
        return " -> (broken link)"
    except ValueError:
        return " -> (outside the worktree; not accessible)"
    if any(part.casefold() == ".git" for part in inside.parts):
        return " -> (inside .git; not accessible)"
    if not target.exists():
        return " -> (broken link)"
    return f" -> {inside.as_posix()}{'/' if target.is_dir() else ''}"


# -- the Claude Code hook ----------------------------------------------------------------------

_GIT_REFUSED = frozenset(
    {"commit", "push", "rebase", "merge", "cherry-pick", "am", "tag", "switch", "reset",
     "worktree", "update-ref", "filter-branch"}
)  # fmt: skip
_WRITES_EVERY_ARGUMENT = frozenset(
    {"rm", "rmdir", "touch", "mkdir", "tee", "chmod", "chown", "chgrp", "truncate", "shred",
     "unlink"}
)  # fmt: skip
_WRITES_LAST_ARGUMENT = frozenset({"cp", "mv", "ln", "install", "rsync"})
_PREFIXES = frozenset({"sudo", "env", "command", "exec", "nohup", "time", "nice", "builtin"})
_PUNCTUATION = "();<>|&\n"
_OPERATOR_CHARS = frozenset(_PUNCTUATION)
_SEPARATORS = frozenset("();|&\n")
_DEVICES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/fd/")


@dataclass(slots=True)
class WorktreeGuard:
    """Refuses tool calls that reach outside the worktree (a ``PreToolUse`` hook)."""

    worktree: Path
    root: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.worktree.resolve()

    async def hook(
        self, data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        if data["hook_event_name"] != "PreToolUse":
            return {}
        try:
            reason = self.refusal(data["tool_name"], data["tool_input"])
        except Exception as exc:  # a refusal is safer than a call nobody checked
            reason = f"blitz could not check this call: {type(exc).__name__}: {exc}"
        if not reason:
            return {}
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": f"Refused by blitz: {reason}",
            }
        }

    def refusal(self, tool: str, arguments: Mapping[str, Any]) -> str:
        """Why the call must not run ("" if it may)."""
        for key in ("file_path", "notebook_path", "path"):
            value = arguments.get(key)
            if isinstance(value, str) and value and not self.inside(value):
                return f"{value} is outside the worktree {self.root}; work only on files under it"
        command = arguments.get("command")
        if tool == "Bash" and isinstance(command, str):
            return self.command_refusal(command)
        return ""

    def inside(self, path: str) -> bool:
        """Whether ``path`` (relative to the worktree, or absolute) resolves inside it."""
        resolved = (self.root / os.path.expanduser(path)).resolve()
        return resolved == self.root or resolved.is_relative_to(self.root)

    def command_refusal(self, command: str) -> str:
        """Why a shell command must not run: it visibly changes directory, redirects or writes
        outside the worktree, or commits or rewrites git history. Only what the words show is
        judged (no variables but ``$HOME``, no ``cd`` earlier in the command)."""
        lexer = shlex.shlex(command, posix=True, punctuation_chars=_PUNCTUATION)
        lexer.whitespace_split = True
        lexer.whitespace = " \t\r"  # a newline separates commands, as ";" does
        try:
            words = list(lexer)
        except ValueError:  # unbalanced quotes: the shell refuses it too
            return ""
        simple: list[str] = []
        target = ""  # after a redirection: "write" (>, >>, &>) or "read" (<, <<, <<<)
        for word in [*words, ";"]:
            if target:
                written, target = target == "write", ""
                device = word.isdigit() or word.startswith(_DEVICES)
                if written and not device and self._out(word):
                    return f"`{command}` writes to {word}, outside the worktree {self.root}"
            elif set(word) <= _OPERATOR_CHARS and ("<" in word or ">" in word):
                target = "write" if ">" in word else "read"
            elif set(word) <= _SEPARATORS:
                if reason := self._simple_refusal(simple):
                    return f"`{command}`: {reason}"
                simple = []
            else:
                simple.append(word)
        return ""

    def _simple_refusal(self, words: list[str]) -> str:
        while words and (words[0] in _PREFIXES or re.fullmatch(r"\w+=.*", words[0])):
            words = words[1:]
        if not words:
            return ""
        name, arguments = os.path.basename(words[0]), [w for w in words[1:] if w != "--"]
        operands = [w for w in arguments if not w.startswith("-")]
        if name in ("cd", "pushd"):
            target = operands[0] if operands else "~"
            return f"cd to {target} leaves the worktree" if self._out(target) else ""
        if name == "git":
            return self._git_refusal(arguments)
        if name in _WRITES_EVERY_ARGUMENT:
            targets = operands
        elif name in _WRITES_LAST_ARGUMENT:
            targets = operands[-1:]
        elif name == "dd":
            targets = [w.removeprefix("of=") for w in operands if w.startswith("of=")]
        else:
            targets = []
        outside = [t for t in targets if self._out(t)]
        return f"{name} would change {outside[0]}, outside the worktree" if outside else ""

    def _git_refusal(self, arguments: list[str]) -> str:
        index = 0
        while index < len(arguments) and arguments[index].startswith("-"):
            if arguments[index] in ("-C", "--git-dir", "--work-tree") and index + 1 < len(
                arguments
            ):
                if self._out(arguments[index + 1]):
                    return f"git {arguments[index]} {arguments[index + 1]} leaves the worktree"
                index += 1
            index += 1
        if index < len(arguments) and arguments[index] in _GIT_REFUSED:
            return f"do not run git {arguments[index]}: blitz commits your changes itself"
        return ""

    def _out(self, word: str) -> bool:
        """Whether a shell word names a path outside the worktree (unknown variables: no)."""
        for home in ("${HOME}", "$HOME"):
            if word == home or word.startswith(home + "/"):
                word = "~" + word[len(home) :]
        if "$" in word or "`" in word:
            return False
        return not self.inside(word)
