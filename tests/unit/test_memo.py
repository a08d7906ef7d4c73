"""The bounded memo every request-path cache keeps its entries in (server/memo.py)."""

from server import memo


def test_a_full_memo_drops_its_oldest_entries_first():
    kept: dict[str, int] = {}
    for number in range(10):
        assert memo.keep(kept, f"k{number}", number, 4) == number
    assert list(kept.items()) == [("k6", 6), ("k7", 7), ("k8", 8), ("k9", 9)]


def test_a_memo_over_its_size_shrinks_to_make_room():
    kept = {n: n for n in range(8)}  # filled before the size was lowered
    memo.keep(kept, "new", 1, 3)
    assert list(kept) == [6, 7, "new"]


def test_a_key_kept_again_takes_the_new_value():
    kept = {"a": 1, "b": 2}
    memo.keep(kept, "b", 3, 5)
    assert kept == {"a": 1, "b": 3}
