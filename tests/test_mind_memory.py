"""Character memory with the real all-MiniLM-L6-v2 embedder (from its package, offline):
retrieval finds the relevant past exchange among distractors, summaries appear when the
history grows and quote only what was said, and everything survives a save and a load."""

import numpy as np
import pytest

from xrstory.mind.memory import CharacterMemory, MemoryConfig, MemoryStore, load_embedder
from xrstory.story import Story, load_scene, load_state, save_state

DISTRACTORS = [
    ("It's freezing in here. Can you light the stove?", "Aye, friend. Driftwood's dry. There."),
    ("Would you pour some tea?", "Hot and black, friend. Drink."),
    ("How long have you kept this light?", "Thirty years this winter."),
    ("Is the storm getting worse?", "Aye. The sea's angry tonight."),
    ("Can Tobias carry heavy things?", "Once he's warm, he can."),
    ("What is that bell for?", "Fog. Ring it when you can't see your hand."),
    ("Do you get lonely out here?", "The gulls talk enough."),
]
RELEVANT = ("I should tell you, my sister Clara is the cook aboard the Marigold.",
            "Then we'll bring Clara home too, friend.")


@pytest.fixture(scope="module")
def embedder():
    return load_embedder()  # once for the module (~7 s cold)


def test_retrieval_finds_the_relevant_exchange_among_distractors(embedder):
    memory = CharacterMemory("maren", embedder)
    for player, reply in DISTRACTORS[:3]:
        memory.add(player, reply)
    memory.add(*RELEVANT)
    for player, reply in DISTRACTORS[3:]:
        memory.add(player, reply)
    hits = memory.retrieve("Who did I say was on the ship with the crew?", k=3)
    assert hits and hits[0].kind == "exchange" and "Clara" in hits[0].text
    assert hits[0].score > hits[-1].score or len(hits) == 1
    # a different question finds a different memory
    assert "tea" in memory.retrieve("Can I have another hot drink?", k=1)[0].text
    # nothing relevant: nothing recalled (below min_score)
    assert memory.retrieve("quantum chromodynamics lecture notes", k=3) == []
    assert memory.recall("my sister", k=1)[0].startswith('The player said "I should tell you')
    # the newest exchanges can be left out (they are already in the prompt's conversation)
    assert all("bell" not in r.text and "lonely" not in r.text
               for r in memory.retrieve("the fog bell", k=5, skip_recent=2))


def test_summaries_appear_when_history_grows_and_quote_only_what_was_said(embedder):
    config = MemoryConfig(summarise_after=6, summary_chunk=4, summary_quotes=2, max_exchanges=8)
    memory = CharacterMemory("maren", embedder, config)
    exchanges = DISTRACTORS + [RELEVANT] + [(f"Tell me about the rocks, part {i}.", f"Sharp, friend. Part {i}.")
                                            for i in range(4)]
    for player, reply in exchanges[:6]:
        memory.add(player, reply)
    assert memory.summaries == []  # not yet past summarise_after
    memory.add(*exchanges[6])
    assert len(memory.summaries) == 1
    summary = memory.summaries[0]
    assert (summary.first_turn, summary.last_turn, summary.exchanges) == (0, 3, 4)
    assert summary.text.startswith("Earlier (turns 0-3, 4 exchanges)")
    quoted = [p for p, _ in exchanges[:4] if f'"{p}"' in summary.text]
    assert len(quoted) == 2  # summary_quotes lines, verbatim, from the folded exchanges only
    for player, reply in exchanges[7:]:
        memory.add(player, reply)
    assert len(memory.summaries) == 2 and len(memory.exchanges) <= config.max_exchanges
    # trimmed exchanges were all summarised first; turn numbers keep counting
    assert memory.exchanges[-1].turn == len(exchanges) - 1
    assert all(e.summarised for e in memory.exchanges[: len(memory.exchanges) - 6])
    # a dropped exchange that its summary quotes is still found, through the summary
    kept = {e.player for e in memory.exchanges}
    gone_but_quoted = [p for p, _ in exchanges[:4] if p not in kept and f'"{p}"' in summary.text]
    assert gone_but_quoted
    hit = memory.retrieve(gone_but_quoted[0], k=1)[0]
    assert hit.kind == "summary" and hit.text == summary.text


def test_memory_survives_story_state_json_round_trip_and_a_save_file(embedder, tmp_path):
    scene = load_scene("scenes/lighthouse")
    story = Story(scene)
    store = MemoryStore(embedder, MemoryConfig(summarise_after=4, summary_chunk=2, max_exchanges=6))
    for player, reply in DISTRACTORS[:5]:
        store.character("maren").add(player, reply, t=12.5)
    store.character("tobias").add(*RELEVANT)
    store.save_into(story.state)
    before_m = store.character("maren").retrieve("a warm drink", k=3)

    state = type(story.state).from_json(story.state.to_json())  # pure JSON round trip
    loaded = MemoryStore.load_from(state, embedder, store.config)
    assert loaded.to_state() == store.to_state()
    after_m = loaded.character("maren").retrieve("a warm drink", k=3)
    assert [r.text for r in after_m] == [r.text for r in before_m]
    assert np.allclose([r.score for r in after_m], [r.score for r in before_m], atol=1e-4)
    assert len(loaded.character("maren").summaries) == 1

    save_state(story.state, tmp_path / "save.json")  # the atomic save the runtime uses
    from_file = MemoryStore.load_from(load_state(tmp_path / "save.json"), embedder, store.config)
    assert "Clara" in from_file.character("tobias").recall("my sister", k=1)[0]
    from_file.character("maren").add("One more thing.", "Aye?")  # keeps working after load
    assert from_file.character("maren").exchanges[-1].turn == 5


def test_bad_saved_memory_names_character_and_item(embedder):
    with pytest.raises(ValueError, match=r"memories\['maren'\]\[1.exchange.reply\]"):
        MemoryStore.from_state({"maren": [
            {"kind": "exchange", "turn": 0, "player": "a", "reply": "b"},
            {"kind": "exchange", "turn": 1, "player": "a"}]}, embedder)
    with pytest.raises(ValueError, match="needs both"):
        CharacterMemory("maren", embedder).add("hello", "  ")


def test_recall_with_nothing_to_find_embeds_nothing(embedder):
    """Recall runs between the heard line and the prompt: when every exchange is still in the
    prompt's conversation (``skip_recent``) and there is no summary, it must not embed the query.
    The counter wraps the real embedder (it only counts calls)."""
    calls = []

    class Counting:
        def encode(self, texts, **kw):
            calls.append(list(texts))
            return embedder.encode(texts, **kw)

    memory = CharacterMemory("maren", Counting())
    memory.add(*DISTRACTORS[0])
    memory.add(*DISTRACTORS[1])
    calls.clear()
    assert memory.recall("Can I have another hot drink?", k=3, skip_recent=2) == []
    assert calls == []
    # one exchange beyond the recent ones (the older, about the stove): now it embeds and finds it
    assert "stove" in memory.recall("Can I have another hot drink?", k=1, skip_recent=1)[0]
    assert calls == [["Can I have another hot drink?"]]
