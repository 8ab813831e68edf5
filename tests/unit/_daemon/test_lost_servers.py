from __future__ import annotations

from hubd._daemon.lost_servers import LostServers, NodeSighting

UP, DOWN = True, False


def sight(**nodes: tuple[bool, set[str]]) -> dict[str, NodeSighting]:
    return {name: NodeSighting(ready, frozenset(people)) for name, (ready, people) in nodes.items()}


def test_servers_running_on_a_node_that_went_away_start_when_it_is_back() -> None:
    lost = LostServers(window_s=600)
    assert lost.observe(sight(n1=(UP, {"bob"}), n2=(UP, {"ada", "cy"})), 0) == ([], [])
    # Gone: the hub stops their servers at once (once), bob's stays.
    assert lost.observe(sight(n1=(UP, {"bob"}), n2=(DOWN, {"ada", "cy"})), 5) == (
        ["ada", "cy"],
        [],
    )
    assert lost.lost() == {"n2": frozenset({"ada", "cy"})}
    # Still down a while later, with the Swarm by then listing nobody there: the same people.
    assert lost.observe(sight(n1=(UP, {"bob"}), n2=(DOWN, set())), 10) == ([], [])
    assert lost.observe(sight(n1=(UP, {"bob"}), n2=(UP, set())), 60).start == ["ada", "cy"]


def test_tasks_a_down_node_still_lists_as_running_do_not_count() -> None:
    lost = LostServers(window_s=600)
    lost.observe(sight(n2=(UP, {"ada"})), 0)
    lost.observe(sight(n2=(DOWN, {"ada"})), 1)
    assert lost.observe(sight(n2=(UP, set())), 2).start == ["ada"]
    assert lost.observe(sight(n2=(DOWN, {"ada"})), 3).start == ["ada"]
    assert lost.lost() == {}


def test_asking_again_until_the_hub_accepts_or_the_server_runs() -> None:
    lost = LostServers(window_s=600)
    lost.observe(sight(n2=(UP, {"ada", "cy"})), 0)
    lost.observe(sight(n2=(DOWN, set())), 1)
    assert lost.observe(sight(n2=(UP, set())), 2).start == ["ada", "cy"]
    # The hub refused ada for now (it had not yet noticed her old server gone) and accepted cy.
    lost.started("cy")
    assert lost.observe(sight(n2=(UP, set())), 7).start == ["ada"]
    # ada started her server herself: nothing more to do.
    assert lost.observe(sight(n2=(UP, {"ada"})), 12).start == []


def test_giving_up_after_the_window() -> None:
    lost = LostServers(window_s=60)
    lost.observe(sight(n2=(UP, {"ada"})), 0)
    lost.observe(sight(n2=(DOWN, set())), 1)
    assert lost.observe(sight(n2=(UP, set())), 100).start == ["ada"]
    assert lost.observe(sight(n2=(UP, set())), 161).start == []


def test_people_who_were_not_running_are_not_started() -> None:
    lost = LostServers(window_s=600)
    lost.observe(sight(n2=(UP, set())), 0)
    assert lost.observe(sight(n2=(DOWN, set())), 1) == ([], [])
    assert lost.observe(sight(n2=(UP, set())), 2) == ([], [])


def test_a_node_first_seen_down_or_removed_brings_nobody_back() -> None:
    lost = LostServers(window_s=600)
    # hubd started while n2 was away: it cannot know who ran there.
    assert lost.observe(sight(n2=(DOWN, set())), 0) == ([], [])
    assert lost.observe(sight(n2=(UP, set())), 1) == ([], [])
    lost.observe(sight(n2=(UP, {"ada"})), 2)
    lost.observe(sight(n2=(DOWN, set())), 3)
    lost.observe({}, 4)  # `hubd node remove` took it out of the Swarm
    assert lost.observe(sight(n2=(UP, set())), 5) == ([], [])
