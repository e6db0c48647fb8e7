"""The dims benchmark's width-experiment options (issue 15): chunk sizes per dataset."""

from __future__ import annotations

import pytest

from benchmarks.dims import CHUNK_SIZE, parse_chunk_sizes


def test_chunk_overrides_replace_only_the_named_dataset():
    sizes = parse_chunk_sizes(["movielens=4"])
    assert sizes["movielens"] == 4
    assert {n: k for n, k in sizes.items() if n != "movielens"} == {
        n: k for n, k in CHUNK_SIZE.items() if n != "movielens"
    }
    assert parse_chunk_sizes([]) == CHUNK_SIZE


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("netflix=4", "'netflix=4'.*DATASET in"),
        ("movielens=x", "positive integer"),
        ("movielens=0", "positive integer"),
        ("movielens=5", "movielens's full width 32 is not a multiple of 5"),
    ],
)
def test_bad_chunk_overrides_name_the_item(item, message):
    with pytest.raises(ValueError, match=message):
        parse_chunk_sizes([item])
