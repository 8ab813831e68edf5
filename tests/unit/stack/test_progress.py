from hubd.stack.progress import _LayerTotals


def test_pull_totals_sum_layers_and_tolerate_unknown_sizes() -> None:
    totals = _LayerTotals()
    totals.update(
        {"id": "a", "status": "Downloading", "progressDetail": {"current": 5, "total": 10}}
    )
    totals.update(
        {"id": "b", "status": "Downloading", "progressDetail": {"current": 1, "total": -1}}
    )
    assert totals.update(
        {"id": "c", "status": "Downloading", "progressDetail": {"current": 0, "total": 30}}
    ) == (5, 40)
    assert totals.update({"id": "a", "status": "Pull complete"}) == (10, 40)


def test_pull_progress_reaches_the_reporter_and_errors_stop_it() -> None:
    from collections.abc import Iterator
    from contextlib import contextmanager
    from typing import Any

    import pytest

    from hubd.errors import ImageError
    from hubd.stack.images import pull_image

    class Reporter:
        def __init__(self) -> None:
            self.events: list[dict[str, Any]] = []

        def step(self, message: str) -> None: ...
        def build_output(self, line: str) -> None: ...

        @contextmanager
        def pulling(self, image: str) -> Iterator[Any]:
            outer = self

            class Progress:
                def update(self, event: dict[str, Any]) -> None:
                    outer.events.append(event)

            yield Progress()

    class Api:
        def __init__(self, events: list[dict[str, Any]]) -> None:
            self.stream = events

        def pull(self, repository: str, tag: str, stream: bool, decode: bool) -> Any:
            assert (repository, tag) == ("example/img", "2")
            return iter(self.stream)

    class Client:
        def __init__(self, events: list[dict[str, Any]]) -> None:
            self.api = Api(events)

    good = [{"id": "a", "status": "Downloading", "progressDetail": {"current": 1, "total": 2}}]
    reporter = Reporter()
    pull_image(Client(good), "example/img:2", reporter)
    assert reporter.events == good
    with pytest.raises(ImageError, match="pulling example/img:2 failed: manifest unknown"):
        pull_image(
            Client([{"error": "manifest unknown"}]),
            "example/img:2",
            Reporter(),
        )
