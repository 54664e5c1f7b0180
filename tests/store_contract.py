"""What every token store backend must do, whatever it is built on.

Test modules subclass ``StoreContract`` and provide the fixtures ``store`` (memory and SQLite in the
unit tier, Postgres and Redis in the integration tier), ``store_in_thread`` (a context a thread
uses the store in) and ``elapse`` (lets seconds pass: a fake clock's, or, for Redis, whose own
clock runs the expiry, real ones, so the periods here are short).
"""

import threading


class StoreContract:
    def test_absent_keys_read_as_none(self, store):
        assert store.get_many(["nope:1", "nope:2"]) == [None, None]

    def test_set_many_then_get_many_in_order(self, store):
        store.set_many([("a", "1", 60), ("b", "2", None)])
        assert store.get_many(["b", "missing", "a"]) == ["2", None, "1"]

    def test_set_overwrites(self, store):
        store.set_many([("k", "old", 60)])
        store.set_many([("k", "new", 60)])
        assert store.get_many(["k"]) == ["new"]

    def test_entries_expire(self, store, elapse):
        store.set_many([("short", "x", 0.3), ("long", "y", 60)])
        elapse(0.5)
        assert store.get_many(["short", "long"]) == [None, "y"]

    def test_ttl_reports_seconds_left(self, store):
        store.set_many([("t", "x", 120), ("forever", "y", None)])
        assert 115 < store.ttl("t") <= 120
        assert store.ttl("forever") is None
        assert store.ttl("absent") is None

    def test_add_sets_only_when_absent_and_returns_the_existing_value(self, store):
        assert store.add("once", "first", 60) is None
        assert store.add("once", "second", 60) == "first"
        assert store.get_many(["once"]) == ["first"]

    def test_add_replaces_an_expired_entry(self, store, elapse):
        assert store.add("spent", "old", 0.3) is None
        elapse(0.5)
        assert store.add("spent", "new", 60) is None
        assert store.get_many(["spent"]) == ["new"]

    def test_add_is_atomic_under_concurrency(self, store, store_in_thread):
        winners = []
        barrier = threading.Barrier(8)

        def contender(n):
            with store_in_thread():
                barrier.wait()
                if store.add("race", f"thread-{n}", 60) is None:
                    winners.append(n)

        threads = [threading.Thread(target=contender, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1

    def test_incr_counts_and_the_window_starts_at_the_first_count(self, store, elapse):
        assert [store.incr("c", 0.5) for _ in range(3)] == [1, 2, 3]
        assert store.ttl("c") <= 0.5
        elapse(0.7)
        assert store.incr("c", 0.5) == 1

    def test_incr_without_ttl_never_expires(self, store):
        store.incr("version")
        assert store.incr("version") == 2
        assert store.ttl("version") is None

    def test_delete(self, store):
        store.set_many([("d1", "x", 60), ("d2", "y", 60), ("d3", "z", 60)])
        store.delete("d1", "d2", "never-there")
        assert store.get_many(["d1", "d2", "d3"]) == [None, None, "z"]
