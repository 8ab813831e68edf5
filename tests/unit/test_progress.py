from hubd.progress import _LayerTotals


def test_pull_totals_sum_layers_and_tolerate_unknown_sizes() -> None:
    totals = _LayerTotals()
    totals.update({"id": "a", "status": "Downloading", "progressDetail": {"current": 5,
                                                                         "total": 10}})
    totals.update({"id": "b", "status": "Downloading", "progressDetail": {"current": 1,
                                                                         "total": -1}})
    assert totals.update({"id": "c", "status": "Downloading",
                          "progressDetail": {"current": 0, "total": 30}}) == (5, 40)
    assert totals.update({"id": "a", "status": "Pull complete"}) == (10, 40)
