from hubd._daemon.backoff import Backoff


def test_first_failure_at_once_then_doubling_to_the_cap() -> None:
    backoff = Backoff(initial_s=1, max_s=10)
    assert [backoff.next_delay() for _ in range(7)] == [0, 1, 2, 4, 8, 10, 10]
    backoff.reset()
    assert backoff.next_delay() == 0
