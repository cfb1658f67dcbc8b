"""Records to rows and back, derived once per record type from its dataclass fields and its table.

A record's row is the tuple of its table's columns, in column order (less an autoincrement id,
which the database assigns). Each column holds one field of the record, or one field of a nested
record stored flat: a goal's ``usage`` is the columns ``input_tokens`` to ``cost_usd``. A field's
type says how it is stored:

========================================  =====================================================
``str``, ``int``, ``float``               as it is
``bool``                                  as it is; read back with ``bool`` (SQLite gives 0, 1)
a ``StrEnum``                             its value
``tuple[str, ...]``                       a JSON array
a record; ``tuple[record, ...]``          a JSON object of its fields; an array of them
                                          (a record with no column of its name: flat); a
                                          field missing from the object reads as its default
``Mapping``                               a JSON object (event data)
========================================  =====================================================

This is the store's one redaction step (:mod:`blitz.redact`): every string a record holds, in a
field, a tuple, a nested record or JSON data, is redacted on its way into a row, whatever the
record type and field, so a field added later is covered without a word here. To stay cheap, the
generated ``to_row`` first asks :func:`~blitz.redact.suspect` about all the record's text at once
and redacts field by field only when it might hold a secret (rarely).

Each record type's conversion is generated, when this module is imported, as straight-line code
like the hand-written pairs it replaced: ``(r.goal_id, r.id, strs_json(r.depends_on), ...)`` one
way and ``Task(id=c1, goal_id=c0, depends_on=strs(c4), ...)`` the other. Loading the rows of a
goal of 100,000 tasks is most of the time of resuming it, so no row pays for reflection.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import operator
import time
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Generic, Literal, TypeVar

from blitz.domain import (
    Attempt,
    Baseline,
    BreakerRecord,
    Command,
    Goal,
    Project,
    Recovery,
    Task,
)
from blitz.events import Event
from blitz.gatecache import CachedGate
from blitz.redact import redact, redact_data, redact_key, suspect
from blitz.store import layout

# -- JSON ------------------------------------------------------------------------------------------

# One encoder, reused. ASCII output escapes lone surrogates (undecodable bytes in tool output),
# which the database drivers would refuse to encode.
_encoder = json.JSONEncoder(separators=(",", ":"))
dumps: Callable[[Any], str] = _encoder.encode
if c_make_encoder is not None:
    # JSONEncoder.encode builds a C encoder on every call, which costs more than encoding the
    # small values stored here; build it once. Without markers it skips the circular-reference
    # check: a cycle still fails in its writer, with RecursionError instead of ValueError.
    _iterencode = c_make_encoder(
        None, _encoder.default, encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def dumps(value: Any) -> str:
        return "".join(_iterencode(value, 0))


_SCALARS = frozenset({int, float, bool, type(None)})


def data_json(data: Mapping[str, Any]) -> str:
    """``data`` as redacted JSON; flat data (an event's, usually) takes a short cut."""
    if not data:
        return "{}"
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if type(value) is str:
            value = redact(value) if value else value
        elif type(value) not in _SCALARS:
            return dumps(redact_data(dict(data)))
        clean[redact_key(key)] = value
    return dumps(clean)


def data(text: str) -> dict[str, Any]:
    """Decode what :func:`data_json` wrote."""
    loaded: dict[str, Any] = {} if text == "{}" else json.loads(text)
    return loaded


def strs_json(values: tuple[str, ...]) -> str:
    return dumps(values) if values else "[]"


def strs(text: str) -> tuple[str, ...]:
    """Decode a JSON array of strings written by :func:`strs_json`.

    Without a backslash the text has no escapes, so every ``"`` delimits a string and the array
    splits on ``","`` exactly (the encoder writes no spaces). This is five times faster than
    ``json.loads``, which matters when a goal of 100,000 tasks is loaded.
    """
    if text == "[]":
        return ()
    if "\\" not in text:
        return tuple(text[2:-2].split('","'))
    return tuple(json.loads(text))


# -- converters by type ----------------------------------------------------------------------------

Texts = Literal["one", "each", "optional"] | Callable[[Any], tuple[str, ...]] | None


@dataclass(frozen=True, slots=True)
class Converter:
    """How a field's value is stored (``store``; ``redacted``: stored with its text redacted,
    None: as by ``store``) and read back (``load``): a function of it, a dict that maps it
    (looked up without a call: this is a decoder's inner loop), or None: as it is.

    ``texts`` says where the value's strings are, for the cheap check of a whole record:
    ``"one"`` it is one, ``"each"`` a tuple of them, ``"optional"`` one or None, a function
    gives them, None: it has none."""

    store: Callable[[Any], Any] | None = None
    load: Callable[[Any], Any] | dict[Any, Any] | None = None
    redacted: Callable[[Any], Any] | None = None
    texts: Texts = None


_AS_IS = Converter()


def _redacted_strs(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(map(redact, values))


def _redacted_strs_json(values: tuple[str, ...]) -> str:
    return strs_json(_redacted_strs(values)) if values else "[]"


def _column_converter(tp: Any) -> Converter:
    """How a value of type ``tp`` is stored in a column of its own."""
    if tp is str:
        return Converter(redacted=redact, texts="one")
    if tp in (int, float):
        return _AS_IS
    if tp is bool:
        return Converter(load=bool)
    if isinstance(tp, type) and issubclass(tp, Enum) and issubclass(tp, str):
        # The member's own value string, shared by every row: str() of a member is a new copy,
        # and a flush of 100,000 new tasks would hold 100,000 of them.
        value = operator.attrgetter("_value_")
        return Converter(store=value, load={member.value: member for member in tp})
    if _is_strs(tp):
        return Converter(store=strs_json, load=strs, redacted=_redacted_strs_json, texts="each")
    if _is_records(tp):
        plain, redacted, from_json, texts = _json_object(typing.get_args(tp)[0])

        def store_all(values: tuple[Any, ...]) -> str:
            return dumps([plain(v) for v in values]) if values else "[]"

        def redact_all(values: tuple[Any, ...]) -> str:
            return dumps([redacted(v) for v in values]) if values else "[]"

        def load_all(text: str) -> tuple[Any, ...]:
            return () if text == "[]" else tuple(map(from_json, json.loads(text)))

        def texts_of_all(values: tuple[Any, ...]) -> tuple[str, ...]:
            return tuple(t for v in values for t in texts(v))

        return Converter(store_all, load_all, redact_all, texts_of_all)
    if dataclasses.is_dataclass(tp):
        plain, redacted, from_json, texts = _json_object(tp)
        return Converter(
            store=lambda value: dumps(plain(value)),
            load=lambda text: from_json(json.loads(text)),
            redacted=lambda value: dumps(redacted(value)),
            texts=texts,
        )
    if typing.get_origin(tp) is Mapping:
        return Converter(store=data_json, load=data)  # which redacts its strings
    raise TypeError(f"the store has no column type for {tp!r}")


def _json_converter(tp: Any) -> Converter:
    """How a value of type ``tp`` is stored inside a JSON object."""
    if tp is str:
        return Converter(redacted=redact, texts="one")
    if tp in (int, float, bool, int | None, float | None):
        return _AS_IS
    if tp == str | None:
        return Converter(redacted=_redact_optional, texts="optional")
    if _is_strs(tp):
        # The encoder writes a tuple as an array.
        return Converter(load=tuple, redacted=_redacted_strs, texts="each")
    raise TypeError(f"the store has no JSON type for {tp!r}")


def _redact_optional(text: str | None) -> str | None:
    return None if text is None else redact(text)


def _is_strs(tp: Any) -> bool:
    return typing.get_origin(tp) is tuple and typing.get_args(tp) == (str, ...)


def _is_records(tp: Any) -> bool:
    args = typing.get_args(tp)
    return (
        typing.get_origin(tp) is tuple
        and len(args) == 2
        and args[1] is Ellipsis
        and dataclasses.is_dataclass(args[0])
    )


# -- code generation -------------------------------------------------------------------------------


class _Source:
    """Python source being generated, with the objects it names."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {}

    def name(self, obj: Any, hint: str) -> str:
        """A name for ``obj`` in the generated code."""
        name = f"{hint}_{len(self.names)}"
        self.names[name] = obj
        return name

    def call(
        self, function: Callable[[Any], Any] | dict[Any, Any] | None, expr: str, hint: str
    ) -> str:
        """The expression of ``function`` applied to ``expr``."""
        if function is None:
            return expr
        if isinstance(function, dict):
            return f"{self.name(function, hint)}[{expr}]"
        return f"{self.name(function, hint)}({expr})"

    def compile(self, source: str, function: str, of: type) -> Callable[[Any], Any]:
        """Define ``function`` by ``source``; tracebacks and profiles name it after ``of``."""
        namespace = dict(self.names)
        # The source is made of field names only.
        exec(compile(source, f"<{function} of {of.__qualname__}>", "exec"), namespace)
        compiled: Callable[[Any], Any] = namespace[function]
        return compiled


def _redacting(converter: Converter) -> Callable[[Any], Any] | None:
    """How ``converter`` stores a value with its text redacted."""
    return converter.redacted or converter.store


def _texts(source: _Source, texts: Texts, expr: str) -> list[str]:
    """The strings of ``expr``, as items of a tuple display."""
    if texts is None:
        return []
    if texts == "one":
        return [expr]
    if texts == "each":
        return [f"*{expr}"]
    if texts == "optional":
        return [f"({expr} or '')"]
    return [f"*{source.name(texts, 'texts')}({expr})"]


def _tuple(items: list[str]) -> str:
    return f"({', '.join(items)},)" if items else "()"


def _json_object(
    cls: Any,
) -> tuple[Callable[[Any], Any], Callable[[Any], Any], Callable[[Any], Any], Callable[[Any], Any]]:
    """Functions turning a ``cls`` record into a JSON-able dict of its fields (as it is, and
    with its text redacted), back, and giving the strings it holds."""
    hints = typing.get_type_hints(cls)
    source = _Source()
    plain, redacted, texts, arguments = [], [], [], []
    for f in dataclasses.fields(cls):
        converter = _json_converter(hints[f.name])
        attribute = f"o.{f.name}"
        plain.append(f"{f.name!r}: {source.call(converter.store, attribute, 'store')}")
        redacted.append(f"{f.name!r}: {source.call(_redacting(converter), attribute, 'redact')}")
        texts += _texts(source, converter.texts, attribute)
        value = source.call(converter.load, f"d[{f.name!r}]", "load")
        if f.default is not dataclasses.MISSING:
            # A field added later is missing from the JSON written before: its default.
            value = f"({value} if {f.name!r} in d else {source.name(f.default, 'default')})"
        arguments.append(f"{f.name}={value}")
    cls_name = source.name(cls, cls.__name__)
    to_json = source.compile(f"def to_json(o):\n    return {{{', '.join(plain)}}}", "to_json", cls)
    redacted_json = source.compile(
        f"def redacted_json(o):\n    return {{{', '.join(redacted)}}}", "redacted_json", cls
    )
    texts_of = source.compile(f"def texts(o):\n    return {_tuple(texts)}", "texts", cls)
    from_json = source.compile(
        f"def from_json(d):\n    return {cls_name}({', '.join(arguments)})", "from_json", cls
    )
    return to_json, redacted_json, from_json, texts_of


R = TypeVar("R")


@dataclass(frozen=True, slots=True, eq=False)
class RowCodec(Generic[R]):
    """How records of one type are stored in ``table``: ``to_row`` gives the values of
    ``columns``; ``from_row`` takes a row of every column of the table, in table order; ``key``
    gives the record's primary key, which identifies it among those staged of its type."""

    record: type[R]
    table: layout.Table
    columns: tuple[str, ...]
    to_row: Callable[[R], tuple[Any, ...]]
    from_row: Callable[[Sequence[Any]], R]
    key: Callable[[R], Any]


def row_codec(
    cls: type[R], table: layout.Table, *, overrides: Mapping[str, Converter] | None = None
) -> RowCodec[R]:
    """Derive the row codec of record type ``cls`` stored in ``table``.

    Every field must have a column (or, for a nested record stored flat, a column per field of
    it) and every column a field: anything else is a mistake, raised when this module loads.
    ``overrides`` replaces the converters of some (top-level) fields.
    """
    columns = _columns(cls, table, overrides or {})
    cell = {name: f"c{i}" for i, name in enumerate(table.names)}
    source = _Source()
    arguments: dict[str, str] = {}  # field -> the expression of its value
    nested: dict[str, tuple[type, list[str]]] = {}  # flat field -> its type, its arguments
    for name, (path, owner, converter) in columns.items():
        value = source.call(converter.load, cell[name], "load")
        if len(path) == 1:
            arguments[path[0]] = value
        else:
            nested.setdefault(path[0], (owner, []))[1].append(f"{path[1]}={value}")
    for name, (owner, inner) in nested.items():
        arguments[name] = f"{source.name(owner, owner.__name__)}({', '.join(inner)})"
    ordered = [f"{f.name}={arguments[f.name]}" for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    stored = tuple(name for name in table.names if name != table.autoincrement)
    plain, redacted, texts = [], [], []
    for name in stored:
        path, _, converter = columns[name]
        attribute = "r." + ".".join(path)
        plain.append(source.call(converter.store, attribute, "store"))
        redacted.append(source.call(_redacting(converter), attribute, "redact"))
        texts += _texts(source, converter.texts, attribute)
    # All the record's text is checked at once; most records hold no secret, and one check of
    # their joined text costs much less than redacting each string.
    check = f"if {source.name(suspect, 'suspect')}('\\n'.join({_tuple(texts)})):\n"
    to_row = source.compile(
        f"def to_row(r):\n    {check}        return {_tuple(redacted)}\n    return {_tuple(plain)}",
        "to_row",
        cls,
    )
    from_row = source.compile(
        f"def from_row(row):\n    {', '.join(cell.values())}, = row\n"
        f"    return {source.name(cls, cls.__name__)}({', '.join(ordered)})",
        "from_row",
        cls,
    )
    key = operator.attrgetter(*(".".join(columns[name][0]) for name in table.primary_key))
    return RowCodec(cls, table, stored, to_row, from_row, key)


def _columns(
    cls: type, table: layout.Table, overrides: Mapping[str, Converter]
) -> dict[str, tuple[tuple[str, ...], type, Converter]]:
    """Each column of ``table``, in table order, with the path of the field of ``cls`` it holds,
    the record type that declares the field (``cls`` or a nested record) and its converter."""
    names = set(table.names)
    found: dict[str, tuple[tuple[str, ...], type, Converter]] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if f.name in names:
            converter = overrides.get(f.name) or _column_converter(tp)
            found[f.name] = ((f.name,), cls, converter)
            continue
        if not (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
            raise TypeError(f"{cls.__name__}.{f.name} has no column in table {table.name}")
        inner_hints = typing.get_type_hints(tp)
        for g in dataclasses.fields(tp):
            if g.name not in names or g.name in found:
                raise TypeError(f"{cls.__name__}.{f.name}.{g.name} has no column of its own")
            converter = _column_converter(inner_hints[g.name])
            found[g.name] = ((f.name, g.name), tp, converter)
    if unused := sorted(names - found.keys()):
        raise TypeError(f"table {table.name} has columns {unused} that {cls.__name__} lacks")
    return {name: found[name] for name in table.names}


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while decoding many records that all survive.

    Each new object counts towards the next collection, and the collections that building
    100,000 tasks sets off find nothing to free yet take about a third of the time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# -- the records -----------------------------------------------------------------------------------


def _now_if_unset(ts: float) -> float:
    return ts or time.time()


PROJECTS = row_codec(Project, layout.PROJECTS)
GOALS = row_codec(Goal, layout.GOALS)
TASKS = row_codec(Task, layout.TASKS)
ATTEMPTS = row_codec(Attempt, layout.ATTEMPTS)
RECOVERIES = row_codec(Recovery, layout.RECOVERIES)
BREAKERS = row_codec(BreakerRecord, layout.BREAKERS)
BASELINES = row_codec(Baseline, layout.BASELINES)

RECORDS: Mapping[type, RowCodec[Any]] = {
    codec.record: codec
    for codec in (PROJECTS, GOALS, TASKS, ATTEMPTS, RECOVERIES, BREAKERS, BASELINES)
}
"""The codec of every record type :meth:`~blitz.store.base.Store.write` takes."""

EVENTS = row_codec(Event, layout.EVENT_LOG, overrides={"ts": Converter(store=_now_if_unset)})
"""Events: the database numbers them; one written without a time is stamped with the present."""

COMMANDS = row_codec(Command, layout.COMMANDS)

GATE_RESULTS = row_codec(
    CachedGate, layout.GATE_RESULTS, overrides={"created_at": Converter(store=_now_if_unset)}
)
"""Kept gate results (:mod:`blitz.gatecache`), written straight away rather than staged."""
