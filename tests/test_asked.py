"""The functions a task's words ask for, and those they ask to test (:mod:`blitz.asked`)."""

from __future__ import annotations

import pytest

from blitz import asked


@pytest.mark.parametrize(
    ("asks", "names"),
    [
        ("Add a function slugify(text) to textutil.py", ["slugify"]),
        ("Add `slugify(text)` to textutil.py; add a test for slugify(text).", ["slugify"]),
        (
            "In app.js create a new helper parseArgs(argv) and write class Cli()",
            ["parseArgs", "Cli"],
        ),
        ("Rename compute_total() to sum_prices(); fix mean() and test it", []),
        ("Add a --quiet flag to the CLI (see main())", []),
        ("Create a branch (not main) and add logging", []),
    ],
)
def test_the_functions_a_task_asks_for_are_read_from_its_words(asks: str, names: list[str]) -> None:
    assert asked.asked_functions(asks) == names


@pytest.mark.parametrize(
    ("asks", "names"),
    [
        ("Test that slugify(text) works as expected", ["slugify"]),
        ("Add slugify(text) to textutil.py; add a test for `slugify(text)`.", ["slugify"]),
        (
            "Write tests of the function parse_args() and testing whether main() exits",
            ["parse_args", "main"],
        ),
        ("In test_textutil.py test that shout(text) shouts", ["shout"]),
        ("Run pytest on test_stats.py (see mean())", []),
        ("Add a function slugify(text) to textutil.py", []),
        ("Fix mean() so that its test passes", []),
    ],
)
def test_the_functions_a_task_asks_to_test_are_read_from_its_words(
    asks: str, names: list[str]
) -> None:
    assert asked.tested_functions(asks) == names


@pytest.mark.parametrize(
    ("asks", "pairs"),
    [
        (
            "Rename the function compute_total to sum_prices everywhere: in shop.py",
            [("compute_total", "sum_prices")],
        ),
        ("Rename `compute_total()` to `sum_prices` in shop.py", [("compute_total", "sum_prices")]),
        ("renaming class Cart as Basket", [("Cart", "Basket")]),
        ("Rename the branch before you push", []),
        ("Add a function slugify(text)", []),
    ],
)
def test_the_names_a_task_asks_to_rename_are_read_from_its_words(
    asks: str, pairs: list[tuple[str, str]]
) -> None:
    assert asked.renamed_functions(asks) == pairs
