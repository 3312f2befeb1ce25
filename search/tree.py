"""The search tree: nodes are proof states, edges are tactics. Pure data, no I/O.

Invariants (checked by `SearchTree.check_invariants`, which tests call):
- a node is proved iff some out-edge is `proved` or leads to a proved node;
- a node is failed iff it was expanded and every out-edge is a failure or leads
  to a failed node (an expanded node with no edges is failed);
- once proved, a node stays proved; a proved node is never failed;
- equal goal text is one node (a transposition adds an edge, not a node).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from envs.types import ProofState

if TYPE_CHECKING:
    import networkx as nx


class NodeStatus(str, Enum):
    OPEN = "open"
    PROVED = "proved"
    FAILED = "failed"


class Outcome(str, Enum):
    PROGRESS = "progress"
    PROVED = "proved"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    UNVERIFIED = "verification_failed"  # the assistant said proved; the fresh check did not


@dataclass(slots=True)
class Edge:
    src: int
    tactic: str
    logprob: float
    outcome: Outcome
    dst: int | None = None
    message: str = ""


@dataclass(slots=True)
class Node:
    id: int
    state: ProofState
    score: float
    depth: int
    status: NodeStatus = NodeStatus.OPEN
    expanded: bool = False
    out_edges: list[Edge] = field(default_factory=list)
    in_edges: list[Edge] = field(default_factory=list)
    parent_edge: Edge | None = None  # the edge that first reached this node


class SearchTree:
    def __init__(self, root: ProofState) -> None:
        self.nodes: list[Node] = []
        self._by_goals: dict[ProofState, int] = {}
        self.root = self._new_node(root, 0.0, 0)

    def _new_node(self, state: ProofState, score: float, depth: int) -> Node:
        node = Node(len(self.nodes), state, score, depth)
        self.nodes.append(node)
        self._by_goals[state] = node.id
        return node

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def proved(self) -> bool:
        return self.root.status is NodeStatus.PROVED

    def add_edge(
        self,
        parent: Node,
        tactic: str,
        logprob: float,
        outcome: Outcome,
        *,
        state: ProofState | None = None,
        score: float = 0.0,
        message: str = "",
    ) -> Node | None:
        """Record one tactic's outcome. Returns the child node if it is new."""
        edge = Edge(parent.id, tactic, logprob, outcome, message=message)
        parent.out_edges.append(edge)
        new: Node | None = None
        if outcome is Outcome.PROGRESS:
            assert state is not None
            known = self._by_goals.get(state)
            if known is None:
                new = self._new_node(state, score, parent.depth + 1)
                new.parent_edge = edge
                child = new
            else:
                child = self.nodes[known]
            edge.dst = child.id
            child.in_edges.append(edge)
        return new

    def mark_expanded(self, node: Node) -> None:
        node.expanded = True

    def _derived_status(self, node: Node) -> NodeStatus:
        if node.status is NodeStatus.PROVED:
            return NodeStatus.PROVED
        all_failed = node.expanded
        for edge in node.out_edges:
            if edge.outcome is Outcome.PROVED:
                return NodeStatus.PROVED
            if edge.outcome is Outcome.PROGRESS:
                child = self.nodes[edge.dst]  # type: ignore[index]
                if child.status is NodeStatus.PROVED:
                    return NodeStatus.PROVED
                if child.status is not NodeStatus.FAILED:
                    all_failed = False
        return NodeStatus.FAILED if all_failed else NodeStatus.OPEN

    def propagate(self, node: Node) -> None:
        """Recompute `node`'s status and push any change up through its ancestors."""
        work = [node]
        while work:
            current = work.pop()
            status = self._derived_status(current)
            if status is not current.status:
                current.status = status
                work.extend(self.nodes[e.src] for e in current.in_edges)

    def proof(self) -> list[Edge]:
        """Edges from the root to a `proved` edge, following proved nodes."""
        if not self.proved:
            return []
        path: list[Edge] = []
        node, seen = self.root, set()
        while True:
            seen.add(node.id)
            for edge in node.out_edges:
                if edge.outcome is Outcome.PROVED:
                    return [*path, edge]
            for edge in node.out_edges:
                if edge.outcome is Outcome.PROGRESS and edge.dst not in seen:
                    child = self.nodes[edge.dst]  # type: ignore[index]
                    if child.status is NodeStatus.PROVED:
                        path.append(edge)
                        node = child
                        break
            else:
                raise AssertionError("proved root without a proved path")

    def path_to(self, node: Node) -> list[Edge]:
        """The edges by which `node` was first reached from the root."""
        path: list[Edge] = []
        while node.parent_edge is not None:
            path.append(node.parent_edge)
            node = self.nodes[node.parent_edge.src]
        return path[::-1]

    def edges(self) -> Iterator[Edge]:
        for node in self.nodes:
            yield from node.out_edges

    def check_invariants(self) -> None:
        for node in self.nodes:
            derived = self._derived_status(node)
            if node.status is NodeStatus.PROVED:
                assert any(
                    e.outcome is Outcome.PROVED
                    or (e.outcome is Outcome.PROGRESS and self.nodes[e.dst].status is NodeStatus.PROVED)  # type: ignore[index]
                    for e in node.out_edges
                ), f"node {node.id} is proved without a proved child"
            assert derived is node.status, f"node {node.id} is {node.status.value}, children say {derived.value}"
            assert self._by_goals[node.state] == node.id, f"node {node.id} is a duplicate state"
            for e in node.out_edges:
                assert (e.dst is not None) == (e.outcome is Outcome.PROGRESS), f"edge from {node.id} has a bad target"

    def to_networkx(self) -> nx.DiGraph:
        import networkx as nx

        graph = nx.DiGraph()
        for node in self.nodes:
            graph.add_node(
                node.id,
                goals="\n\n".join(node.state.goals),
                status=node.status.value,
                score=node.score,
                depth=node.depth,
                expanded=node.expanded,
            )
        terminal = len(self.nodes)
        for edge in self.edges():
            dst = edge.dst
            if dst is None:
                dst = terminal
                terminal += 1
                graph.add_node(dst, goals="", status=edge.outcome.value, score=0.0, depth=-1, expanded=False)
            graph.add_edge(
                edge.src,
                dst,
                tactic=edge.tactic,
                logprob=edge.logprob,
                outcome=edge.outcome.value,
                message=edge.message[:500],
            )
        return graph
