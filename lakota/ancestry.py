"""The history of a collection as a graph of commits, for logs and change feeds.

```python
from lakota import Repo, Schema
from lakota.ancestry import History
clct = Repo().create_collection(Schema(k="int*", v="float"), "c")
for i in range(3):
    (clct / "s").write({"k": [i], "v": [1.0]})
history = History(clct.changelog.log())
[node.revision.epoch for node, _ in history.line(history.node(clct.changelog.leaf()))]
```

A node is a commit written once: one revision file, or the copies of a merge (the same
payload written under each head it joins). Copies are files with the same child digest
of which none descends from another; the same digest written again later in one line of
history (a state restored by writes) stays a node of its own.

`line(node)` orders the ancestry of a node along its first-parent chain (the newest
parent of a merge is its first parent); the nodes a merge brings in from its other
branches come right before it. Every node of that line comes after its parents, and
the nodes up to any node of the first-parent chain are exactly its ancestry: a change
feed resumed after such a node neither repeats nor misses anything.
"""

from __future__ import annotations

import heapq
from collections import defaultdict

from .changelog import Revision, phi
from .errors import RevisionNotFoundError

__all__ = ["History", "Node"]


class Node:
    """One commit of the history: its revision files and its parent nodes."""

    def __init__(self, files: list[Revision]) -> None:
        self.files = sorted(files, key=lambda rev: rev.path)
        self.revision = min(self.files, key=lambda rev: rev.child)
        self.key = (self.revision.epoch, self.revision.child)
        self.parents: list[Node] = []

    def __lt__(self, other: Node) -> bool:
        return self.key < other.key

    def __repr__(self) -> str:
        return f"<Node {self.revision.child} ({len(self.files)} file(s))>"


class History:
    """The nodes of a changelog's revisions (see the module docstring)."""

    def __init__(self, revisions: list[Revision]) -> None:
        by_child: dict[str, list[Revision]] = defaultdict(list)
        for rev in {rev.path: rev for rev in revisions}.values():
            by_child[rev.child].append(rev)
        self._parents = {child: {rev.parent for rev in revs} for child, revs in by_child.items()}
        groups = self._copies(by_child)
        self._nodes: dict[str, Node] = {}
        for group in groups:
            node = Node([rev for child in group for rev in by_child[child]])
            for child in group:
                self._nodes[child] = node
        for node in set(self._nodes.values()):
            parents = {
                self._nodes[parent]
                for rev in node.files
                for parent in [rev.parent]
                if parent != phi and parent in self._nodes
            }
            parents.discard(node)
            node.parents = sorted(parents, reverse=True)  # the newest first

    def _copies(self, by_child: dict[str, list[Revision]]) -> list[list[str]]:
        """Child strings grouped by node: merge copies together, every other alone."""
        by_digest: dict[str, list[str]] = defaultdict(list)
        for child in sorted(by_child):
            by_digest[child[12:]].append(child)
        groups = []
        for children in by_digest.values():
            while children:
                first, rest = children[0], children[1:]
                group = [first]
                for other in rest:
                    if all(self._unrelated(member, other) for member in group):
                        group.append(other)
                groups.append(group)
                children = [c for c in rest if c not in group]
        return groups

    def _unrelated(self, one: str, other: str) -> bool:
        return one not in self._strict_ancestors(other) and other not in self._strict_ancestors(one)

    def _strict_ancestors(self, child: str) -> set[str]:
        found, stack = set(), list(self._parents.get(child, ()))
        while stack:
            parent = stack.pop()
            if parent in found or parent == phi:
                continue
            found.add(parent)
            stack.extend(self._parents.get(parent, ()))
        return found

    def node(self, revision: Revision) -> Node:
        found = self._nodes.get(revision.child)
        if found is None:
            raise RevisionNotFoundError(
                f"Revision {revision.path} is not in the history (trimmed?): resume from "
                "a later revision, or from the start"
            )
        return found

    def ancestry(self, node: Node) -> set[Node]:
        """`node` and every node it descends from."""
        found, stack = set(), [node]
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(current.parents)
        return found

    def line(self, node: Node) -> list[tuple[Node, Node]]:
        """``(node, arrival)`` for the ancestry of `node`, oldest first (module docstring).

        `arrival` is the node of the first-parent chain that brought `node` in (itself
        for the nodes of the chain).
        """
        chain = []
        current: Node | None = node
        seen: set[Node] = set()
        while current is not None and current not in seen:
            chain.append(current)
            seen.add(current)
            current = current.parents[0] if current.parents else None
        done: set[Node] = set()  # the ancestry of the previous step of the chain
        ordered = []
        for step in reversed(chain):
            side: set[Node] = set()  # what the other parents of `step` bring in
            stack = list(step.parents[1:])
            while stack:
                node = stack.pop()
                if node not in done and node not in side and node is not step:
                    side.add(node)
                    stack.extend(node.parents)
            for node in _topological(side):
                ordered.append((node, step))
                done.add(node)
            ordered.append((step, step))
            done.add(step)
        return ordered


def _topological(nodes: set[Node]) -> list[Node]:
    """`nodes` with parents first, oldest first among the ready ones."""
    waiting = {node: sum(parent in nodes for parent in node.parents) for node in nodes}
    children = defaultdict(list)
    for node in nodes:
        for parent in node.parents:
            if parent in nodes:
                children[parent].append(node)
    ready = [node for node, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    ordered = []
    while ready:
        node = heapq.heappop(ready)
        ordered.append(node)
        for child in children[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    ordered += sorted(nodes - set(ordered))  # a cycle cannot be ordered; keep its nodes
    return ordered
