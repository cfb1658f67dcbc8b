"""Placement among a cluster's worker nodes (pure: nodes as Ray reports them, the executor's own
load): attempts spread over the nodes by free slots, history only breaks ties, Ray's lagging view
of free slots does not pile attempts onto one node, and nothing goes where it cannot run."""

from __future__ import annotations

from blitz.executors.ray import placement
from blitz.executors.ray.resources import Node, node_of, node_resources


def node(
    name: str,
    slots: int = 4,
    *,
    free: int = 0,
    alive: bool = True,
    backends: tuple[str, ...] = ("scripted",),
    labels: tuple[str, ...] = (),
) -> Node:
    total = node_resources(slots, backends, labels)
    made = node_of(name, f"10.0.0.{len(name)}", alive, total, {"blitz_slot": float(free)})
    assert made is not None
    return made


def place(nodes: list[Node], load: dict[str, int], holder: str = "", **kw: object) -> str | None:
    chosen = placement.choose(
        nodes,
        str(kw.get("backend", "scripted")),
        list(kw.get("labels", ())),  # type: ignore[call-overload]
        load=load,
        holds=lambda n: n == holder,
    )
    if chosen is None:
        return None
    load[chosen.node_id] = load.get(chosen.node_id, 0) + 1
    return chosen.node_id


def test_a_wave_of_attempts_spreads_evenly_even_when_one_node_holds_the_history() -> None:
    nodes = [node("one"), node("two")]
    load: dict[str, int] = {}
    placed = [place(nodes, load, holder="one") for _ in range(8)]
    assert placed[0] == "one"  # equal free slots: the node holding the history first
    assert sorted(placed) == ["one"] * 4 + ["two"] * 4  # type: ignore[type-var]
    assert place(nodes, load, holder="one") is None  # every slot taken: the attempt waits
    load["two"] -= 1  # an attempt on two ended
    assert place(nodes, load, holder="one") == "two"


def test_the_executors_own_count_wins_over_rays_lagging_view() -> None:
    # Ray still reports every slot of "two" busy (its attempts just ended) and "one" all free
    # (the attempts just sent there have not started): the executor's count decides.
    nodes = [node("one", free=4), node("two", free=0)]
    load = {"one": 3, "two": 0}
    assert place(nodes, load) == "two"
    assert place(nodes, load) == "two"


def test_four_nodes_of_four_slots_take_sixteen_attempts_four_each() -> None:
    nodes = [node(name) for name in ("a", "b", "c", "d")]
    load: dict[str, int] = {}
    for _ in range(16):
        assert place(nodes, load, holder="a") is not None
    assert load == {"a": 4, "b": 4, "c": 4, "d": 4}


def test_nothing_goes_to_a_dead_node_or_one_without_the_backend_or_a_label() -> None:
    nodes = [
        node("dead", alive=False),
        node("codex-only", backends=("codex",)),
        node("plain"),
        node("gpu", slots=1, labels=("gpu",)),
    ]
    load: dict[str, int] = {}
    assert place(nodes, load, labels=["gpu"]) == "gpu"
    assert place(nodes, load, labels=["gpu"]) is None  # its one slot is taken
    assert {place(nodes, load) for _ in range(4)} == {"plain"}
    assert place(nodes, load) is None
    assert place(nodes, load, backend="codex") == "codex-only"
