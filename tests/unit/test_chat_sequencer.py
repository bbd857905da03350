"""The gateway's per-session sequencer: order, duplicates, gaps, buffering during the initial sync (no gRPC).

The hypothesis test runs it against a model of the conversation store under
random arrival orders (late, repeated and lost pushes, fills at random
moments, tiny buffers): whatever happens, each conversation's output is its
messages from the starting point on, in sequence order, each once, with no
gap, and once every message exists and the gaps are filled, all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from casemesh.services.chat.gateway.sequencer import Sequencer


@dataclass(frozen=True)
class Msg:
    conversation_id: str
    sequence: int


def seqs(out: list[Msg], conversation: str = "c") -> list[int]:
    return [m.sequence for m in out if m.conversation_id == conversation]


def live(s: Sequencer) -> Sequencer:
    s.begin({})
    s.finish_sync()
    return s


def test_in_order_messages_pass_and_duplicates_are_dropped():
    s = live(Sequencer())
    assert seqs(s.offer(Msg("c", 1))) == [1]
    assert seqs(s.offer(Msg("c", 2))) == [2]
    assert s.offer(Msg("c", 1)) == [] and s.offer(Msg("c", 2)) == []
    assert s.duplicates == 2 and not s.gaps()


def test_a_message_ahead_is_held_and_its_gap_reported_until_filled():
    s = live(Sequencer())
    assert s.offer(Msg("c", 3)) == [] and s.offer(Msg("c", 5)) == []
    assert s.needs_fill("c") and s.gaps() == ["c"] and s.next_expected("c") == 1 and s.target("c") == 5
    assert s.offer(Msg("c", 3)) == [] and s.duplicates == 1  # already held
    assert seqs(s.apply([Msg("c", 1), Msg("c", 2)])) == [1, 2, 3]  # the fill, then what was held
    assert s.needs_fill("c") and s.next_expected("c") == 4
    assert seqs(s.apply([Msg("c", 4), Msg("c", 5), Msg("c", 6)])) == [4, 5, 6]
    assert not s.needs_fill("c") and s.pending("c") == 0


def test_live_pushes_during_the_sync_wait_for_the_starting_points():
    s = Sequencer()
    assert s.offer(Msg("c", 9)) == [] and s.offer(Msg("d", 1)) == []  # arrive before SyncInbox answered
    assert not s.needs_fill("c")  # no fill while syncing
    s.begin({"c": (5, 8)})  # delivered up to 5, last 8 at sync time
    assert seqs(s.apply([Msg("c", 6), Msg("c", 7)])) == [6, 7]  # the synced page (truncated)
    out = s.finish_sync()
    assert seqs(out, "d") == [1] and seqs(out, "c") == []
    assert s.gaps() == ["c"] and s.next_expected("c") == 8 and s.target("c") == 9
    assert seqs(s.apply([Msg("c", 8), Msg("c", 9)])) == [8, 9]
    assert s.offer(Msg("c", 5)) == []  # before the starting point: already delivered to the user


def test_bounded_buffers_keep_the_targets_so_the_fill_fetches_what_was_dropped():
    s = Sequencer(pending_limit=1, early_limit=1)
    s.offer(Msg("c", 2))
    s.offer(Msg("c", 4))  # beyond early_limit: only its sequence is kept
    s.begin({})
    assert s.finish_sync() == [] and s.target("c") == 4
    s.offer(Msg("c", 3))  # pending_limit 1: 2 kept (nearer the gap), 3 dropped
    assert s.pending("c") == 1
    assert seqs(s.apply([Msg("c", 1)])) == [1, 2]
    assert s.gaps() == ["c"]  # 3 and 4 are still owed: the fill fetches them
    assert seqs(s.apply([Msg("c", 3), Msg("c", 4)])) == [3, 4] and not s.gaps()


def test_abandon_skips_a_conversation_that_cannot_be_read():
    s = live(Sequencer())
    s.offer(Msg("c", 4))
    s.abandon("c")
    assert not s.needs_fill("c") and s.next_expected("c") == 5 and seqs(s.offer(Msg("c", 5))) == [5]


CONVERSATIONS = ("c0", "c1", "c2")


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_arrival_order_yields_each_message_once_in_order_without_gaps(data):
    """A model: per conversation N messages, a cursor (start, last at sync), a store that grows; pushes at random."""
    total = {c: data.draw(st.integers(0, 25), label=f"N[{c}]") for c in CONVERSATIONS}
    start = {c: data.draw(st.integers(0, total[c]), label=f"start[{c}]") for c in CONVERSATIONS}
    stored = {c: data.draw(st.integers(start[c], total[c]), label=f"stored at sync[{c}]") for c in CONVERSATIONS}
    cursored = {c for c in CONVERSATIONS if start[c] > 0 or data.draw(st.booleans(), label=f"cursor[{c}]")}
    for c in CONVERSATIONS:
        if c not in cursored:
            start[c] = 0
    s = Sequencer(pending_limit=data.draw(st.integers(0, 4), label="pending_limit"),
                  early_limit=data.draw(st.integers(0, 4), label="early_limit"))
    out: dict[str, list[int]] = {c: [] for c in CONVERSATIONS}

    def emit(messages: list[Msg]) -> None:
        for m in messages:
            out[m.conversation_id].append(m.sequence)
        for c in CONVERSATIONS:  # at every moment: from the start, in order, once, no gap
            assert out[c] == list(range(start[c] + 1, start[c] + 1 + len(out[c]))), (c, out[c])

    def push_some(count: int) -> None:
        for _ in range(count):
            c = data.draw(st.sampled_from(CONVERSATIONS))
            if stored[c] == 0:
                continue
            if data.draw(st.booleans()) and stored[c] < total[c]:
                stored[c] += 1  # a new message is stored and pushed (perhaps late, perhaps never)
                if data.draw(st.booleans()):
                    emit(s.offer(Msg(c, stored[c])))
            else:  # a repeated or late push of any stored message
                emit(s.offer(Msg(c, data.draw(st.integers(1, stored[c])))))

    def fill(c: str, page: int) -> None:
        after = s.next_expected(c) - 1
        emit(s.apply([Msg(c, q) for q in range(after + 1, min(stored[c], after + page) + 1)]))

    push_some(data.draw(st.integers(0, 10), label="pushes during sync"))
    s.begin({c: (start[c], stored[c]) for c in cursored})
    batch = data.draw(st.integers(1, 10), label="sync batch")
    synced = [Msg(c, q) for c in sorted(cursored) for q in range(start[c] + 1, stored[c] + 1)][:batch]
    emit(s.apply(synced))
    emit(s.finish_sync())
    for _ in range(data.draw(st.integers(0, 30), label="steps")):
        if data.draw(st.booleans()):
            push_some(1)
        else:
            gaps = s.gaps()
            if gaps:
                fill(data.draw(st.sampled_from(gaps)), data.draw(st.integers(1, 5)))
    # Everything gets stored; the newest message of each conversation is pushed; fills run until no gap is left.
    for c in CONVERSATIONS:
        stored[c] = total[c]
        if total[c]:
            emit(s.offer(Msg(c, total[c])))
    for _ in range(200):
        gaps = s.gaps()
        if not gaps:
            break
        fill(gaps[0], 3)
    assert not s.gaps()
    for c in CONVERSATIONS:
        assert out[c] == list(range(start[c] + 1, total[c] + 1))
