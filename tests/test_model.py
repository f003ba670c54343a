"""Model-based test: random sequences of operations on a repository and on a plain model.

The model is a dict ``label -> {key: (x, y)}``. Writes, overwrites with wider bounds,
range deletes, updates, `multi()` batches, concurrent branches written by two `Repo`
objects from the same leaf then merged, trim, defrag and gc run on both; after every step
each series must read as the model, and ``before=`` reads of earlier revisions as the
model did then. Every write carries values never written before, so that no two
segments share a digest by chance.
"""

from __future__ import annotations

import copy
import shutil
import tempfile

from conftest import check_invariants
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lakota import Repo, Schema
from lakota.pod import MemPOD
from lakota.utils import settings as lakota_settings

SCHEMA = Schema(ts="int*", x="float", y="int")
LABELS = ("a", "b", "c")
# Small pages and append thresholds, and few embedded arrays, so that short
# sequences reach multi-page writes, tail rewrites and data files.
TUNING = {
    "page_len": 4,
    "append_merge_count": 3,
    "append_merge_len": 3,
    "embed_max_size": 40,
    "timeout": 0,
}

Model = dict[str, dict[int, tuple[float, int]]]

labels = st.sampled_from(LABELS)
keys = st.lists(st.integers(0, 30), min_size=1, max_size=9, unique=True).map(sorted)
margins = st.tuples(st.integers(0, 3), st.integers(0, 3))
ranges = st.tuples(st.integers(0, 30), st.integers(0, 6)).map(lambda r: (r[0], r[0] + r[1]))
operations = st.one_of(
    st.tuples(st.just("write"), labels, keys, margins),
    st.tuples(st.just("delete"), labels, ranges),
    st.tuples(st.just("update"), labels, ranges),
)
batches = st.lists(operations, min_size=1, max_size=3)


def apply(operation: tuple, clct, model: Model, tick: int) -> None:
    """Run `operation` on the collection and on the model; `tick` makes values unique."""
    kind, label, *args = operation
    rows, srs = model.setdefault(label, {}), clct / label
    if kind == "write":
        written, (left, right) = args
        start, stop = written[0] - left, written[-1] + right
        values = {k: (tick * 1000 + k + 0.5, tick * 1000 + k) for k in written}
        x, y = zip(*values.values())
        srs.write({"ts": written, "x": list(x), "y": list(y)}, start=start, stop=stop)
        _hide(rows, start, stop)
        rows.update(values)
    elif kind == "delete":
        start, stop = args[0]
        srs.delete(start, stop)
        _hide(rows, start, stop)
    else:  # update column x of the stored rows in the range, and add rows at its ends
        start, stop = args[0]
        stored = sorted(k for k in rows if start <= k <= stop)
        updated = sorted(set(stored) | {start, stop})
        new_x = {k: tick * 1000 + k + 0.25 for k in updated}
        srs.update({"ts": updated, "x": list(new_x.values())})
        for k in updated:
            rows[k] = (new_x[k], rows[k][1] if k in rows else 0)


def _hide(rows: dict, start: int, stop: int) -> None:
    for k in [k for k in rows if start <= k <= stop]:
        del rows[k]


def three_way(base: Model, ours: Model, theirs: Model) -> Model:
    """The merge of two branches: their value wins on every key they changed."""
    merged = {}
    for label in set(base) | set(ours) | set(theirs):
        b, o, t = (m.get(label, {}) for m in (base, ours, theirs))
        merged[label] = {}
        for k in set(b) | set(o) | set(t):
            value = t.get(k) if t.get(k) != b.get(k) else o.get(k)
            if value is not None:
                merged[label][k] = value
    return merged


def rows_of(frame) -> dict:
    return dict(zip(frame["ts"].tolist(), zip(frame["x"].tolist(), frame["y"].tolist())))


class RepositoryMachine(RuleBasedStateMachine):
    """Operations on a repository in memory (a subclass uses a local folder)."""

    def __init__(self) -> None:
        super().__init__()
        self.saved = {name: getattr(lakota_settings, name) for name in TUNING}
        for name, value in TUNING.items():
            setattr(lakota_settings, name, value)
        self.open = self.opener()
        self.repo = self.open()
        self.clct = self.repo.create_collection(SCHEMA, "clct")
        self.model: Model = {}
        self.snapshots: list[tuple[str, Model]] = []  # (newest epoch then, model then)
        self.history_changed = False
        self.ticks = 0

    def opener(self):
        store = MemPOD().store
        return lambda: Repo(pod=MemPOD(store=store))

    def tick(self) -> int:
        self.ticks += 1
        return self.ticks

    def record(self) -> None:
        """Remember the model as of the newest revision (if there is a new one)."""
        self.clct.refresh()
        log = self.clct.changelog.log()
        if not log:
            return
        epoch = max(rev.epoch for rev in log)
        if not self.snapshots or self.snapshots[-1][0] != epoch:
            self.snapshots.append((epoch, copy.deepcopy(self.model)))

    # Rules

    @rule(operation=operations)
    def single(self, operation):
        apply(operation, self.clct, self.model, self.tick())
        self.record()

    @rule(batch=batches)
    def multi(self, batch):
        with self.clct.multi():
            for operation in batch:
                apply(operation, self.clct, self.model, self.tick())
        self.record()

    @rule(ours=batches, theirs=batches)
    def concurrent_branches(self, ours, theirs):
        """Two Repo objects write from the same leaf, then a third one merges."""
        base = self.model
        branches = []
        for batch in (ours, theirs):
            clct, state = self.open() / "clct", copy.deepcopy(base)
            clct.changelog.log()  # both branches start from the leaf of now
            branches.append((clct, state, batch))
        written = {}
        for number, (clct, state, batch) in enumerate(branches):
            with clct.multi() as pending:
                for operation in batch:
                    apply(operation, clct, state, self.tick())
            written.update({rev.child: number for rev in pending.revs})
        self.clct.refresh()
        heads = self.clct.changelog.heads()
        first = written.get(heads[0].child, 0) if heads else 0
        self.clct.merge()
        states = [state for _, state, _ in branches]
        self.model = three_way(base, states[first], states[1 - first])
        self.history_changed = True
        self.record()

    @rule(max_chunk=st.integers(1, 3))
    def defrag(self, max_chunk):
        self.clct.defrag(max_chunk=max_chunk)
        self.history_changed = True
        self.record()

    @precondition(lambda self: self.snapshots)
    @rule(data=st.data())
    def trim(self, data):
        cut = data.draw(st.sampled_from([epoch for epoch, _ in self.snapshots] + ["fffffffffff"]))
        self.clct.trim(before=cut)
        self.snapshots = [(epoch, model) for epoch, model in self.snapshots if epoch >= cut]
        self.history_changed = True
        self.record()
        if not self.snapshots:  # the newest revision always survives
            self.snapshots.append(("fffffffffe", copy.deepcopy(self.model)))

    @rule()
    def gc(self):
        self.repo.gc()
        self.history_changed = True

    # Checks

    @invariant()
    def series_match_the_model(self):
        self.clct.refresh()
        commit = self.clct.commit()
        if commit is not None:
            check_invariants(commit, self.repo.pod)
        reader = self.open() / "clct"  # another process's view, nothing cached
        for label in LABELS:
            expected = self.model.get(label, {})
            assert rows_of((self.clct / label).frame()) == expected, label
            assert rows_of((reader / label).frame()) == expected, label

    @invariant()
    def history_matches_the_snapshots(self):
        checked = self.snapshots if self.history_changed else self.snapshots[-1:]
        for epoch, model in checked:
            before = format(int(epoch, 16) + 1, "011x")
            for label in LABELS:
                frame = (self.clct / label).frame(before=before)
                assert rows_of(frame) == model.get(label, {}), (label, epoch)
        self.history_changed = False

    def teardown(self):
        try:
            report = self.open().check()
            assert report.ok, str(report)
        finally:
            for name, value in self.saved.items():
                setattr(lakota_settings, name, value)


class FolderMachine(RepositoryMachine):
    """The same operations on a local folder."""

    def opener(self):
        self.folder = tempfile.mkdtemp(prefix="lakota-model-")
        return lambda: Repo(self.folder)

    def teardown(self):
        try:
            super().teardown()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


BOUNDS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
RepositoryMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=20, **BOUNDS)
FolderMachine.TestCase.settings = settings(max_examples=8, stateful_step_count=15, **BOUNDS)
TestRepositoryModel = RepositoryMachine.TestCase
TestFolderModel = FolderMachine.TestCase
