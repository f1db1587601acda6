"""Cutting a run's symbols into shards, and merging what the shards left for the scans."""

import pytest

from candleflow.pipeline.shards import Shard, ShardOutcome, merge_outcomes, split_into_shards


def test_shards_are_consecutive_and_cover_every_symbol_once():
    symbols = [f"S{i:02d}" for i in range(23)]
    shards = split_into_shards(symbols + ["S05"], 10, start="2024-03-08")
    assert [s.key for s in shards] == ["shard_0000", "shard_0001", "shard_0002"]
    assert [list(s.symbols) for s in shards] == [symbols[:10], symbols[10:20], symbols[20:]]
    assert {(s.start, s.end) for s in shards} == {("2024-03-08", "")}


def test_one_shard_when_the_size_exceeds_the_universe():
    assert split_into_shards(["BRK.B", "BF-B"], 250) == [Shard("shard_0000", ("BRK.B", "BF-B"))]


@pytest.mark.parametrize(("symbols", "size", "message"), [
    (["AAPL"], 0, "shard size must be at least 1, got 0"),
    ([], 10, "no symbols to shard: the universe is empty"),
])
def test_bad_plans_are_refused(symbols, size, message):
    with pytest.raises(ValueError, match=message):
        split_into_shards(symbols, size)


def test_merge_keeps_shard_order_and_spans_every_ingested_bar():
    first, second, third = split_into_shards(["A", "B", "C", "D", "E"], 2, start="2024-03-08", end="2024-03-08")
    merged = merge_outcomes([
        ShardOutcome(third, ("E",), 300, 900),
        ShardOutcome(first, ("A",), 100, 700),  # B failed
        ShardOutcome(second, (), None, None),    # every symbol of the shard failed
    ])
    assert merged.symbols == ("A", "B", "C", "D", "E")
    assert merged.succeeded == ("A", "E")
    assert (merged.first_bar, merged.last_bar) == (100, 900)
    assert (merged.start, merged.end) == ("2024-03-08", "2024-03-08")


def test_merge_of_nothing_ingested_has_no_span():
    (only,) = split_into_shards(["A"], 1)
    merged = merge_outcomes([ShardOutcome(only, (), None, None)])
    assert (merged.succeeded, merged.first_bar, merged.last_bar) == ((), None, None)
