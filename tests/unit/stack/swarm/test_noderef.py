import pytest

from hubd.errors import NodeError
from hubd.stack.swarm.noderef import resolve_node
from tests.swarm_fakes import FakeNode, FakeSwarmClient

NODES = [
    FakeNode("abc111aaaa", "node1"),
    FakeNode("abc222bbbb", "node2"),
    FakeNode("ffff000000", "abc"),
]


@pytest.mark.parametrize(
    "ref, expected",
    [
        ("node2", "abc222bbbb"),
        ("abc222bbbb", "abc222bbbb"),
        ("abc1", "abc111aaaa"),
        ("abc", "ffff000000"),
        ("ff", "ffff000000"),
    ],
)
def test_hostname_id_or_unique_prefix(ref: str, expected: str) -> None:
    assert resolve_node(FakeSwarmClient(NODES, "abc111aaaa"), ref).id == expected


def test_unknown_and_ambiguous_list_the_nodes() -> None:
    client = FakeSwarmClient(NODES[:2], "abc111aaaa")
    with pytest.raises(
        NodeError, match=r"no node 'node9'; the nodes are: node1 \(abc111aaaa\), node2"
    ):
        resolve_node(client, "node9")
    with pytest.raises(NodeError, match="'abc' names 2 nodes"):
        resolve_node(client, "abc")
    with pytest.raises(NodeError, match="no node ''"):
        resolve_node(client, "")
