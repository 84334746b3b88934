"""The constrained streaming decode loop, nanoGPT style: prefill, then one-token steps with the KV cache.

    KV of the prompt's common start with the key's last turn  ->  prefill the rest  ->  loop: mask logits by the grammar, pick a
    token (greedy, or seeded sampling), feed it; forced tokens (the grammar allows exactly one
    continuation, e.g. '", "emotion": "') go through in one batched forward pass.

A character's prompt only grows from turn to turn (``prompt.py``), so its KV cache (``kv.py``)
holds all of it but the new conversation lines and the per-turn part, which each turn prefills.

Small models repeat themselves: inside ``say`` a mild repetition penalty applies to words
already chosen, and no n-gram may be produced twice - neither within the reply nor copied
from the characters' recent lines (``avoid``), which a 135M model otherwise echoes word
for word from the conversation history (its own, or the other character's).

Close to the token limit the decoder steers ``say`` to close (prefers tokens that end the
string), so a reply still completes and parses; ``DecodeResult.cut_at_limit`` says so.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Iterator, Sequence

import torch

from xrstory.mind.engine import DecodeResult, Sampling  # noqa: F401  (re-exported)
from xrstory.mind.grammar import ReplyGrammar
from xrstory.mind.kv import make_backend
from xrstory.mind.loader import LanguageModel
from xrstory.mind.say_stream import SayStream


class NgramBan:
    """No-repeat n-grams over the reply's ``say`` tokens and some sequences to avoid copying."""

    def __init__(self, n: int, avoid: Sequence[Sequence[int]] = ()):
        self.n = n
        self.said: list[int] = []
        self.next_of: dict[tuple[int, ...], set[int]] = {}  # (n-1)-gram -> tokens that followed it
        for seq in avoid if n > 1 else ():
            for i in range(len(seq) - n + 1):
                self.next_of.setdefault(tuple(seq[i:i + n - 1]), set()).add(seq[i + n - 1])

    def add(self, token: int) -> None:
        self.said.append(token)
        if self.n > 1 and len(self.said) >= self.n:
            self.next_of.setdefault(tuple(self.said[-self.n:-1]), set()).add(token)

    def restrict(self, allowed: torch.Tensor) -> None:
        """Clear (in place) the tokens of ``allowed`` that would complete a banned n-gram,
        unless that would leave the grammar nothing to choose."""
        if self.n <= 1 or len(self.said) < self.n - 1:
            return
        banned = self.next_of.get(tuple(self.said[-(self.n - 1):]))
        if not banned:
            return
        ids = torch.tensor(sorted(banned), dtype=torch.long)
        keep = allowed[ids].clone()
        allowed[ids] = False
        if not allowed.any():
            allowed[ids] = keep


class ConstrainedDecoder:
    """Decodes replies for one model; owns the per-key prefix caches. Not thread-safe: one worker."""

    def __init__(self, lm: LanguageModel, grammar: ReplyGrammar | None = None, close_reserve: int = 10,
                 own_forward: bool = True):
        self.lm = lm
        self.model = lm.model
        # own_forward: our Llama forward with a static KV cache when the architecture allows
        self.backend = make_backend(lm.model, lm.device, prefer_runner=own_forward)
        vocab = self.model.get_output_embeddings().weight.shape[0]
        self.grammar = grammar or ReplyGrammar(lm.tokenizer, vocab)
        self.eos = set(lm.eos_token_ids)
        self.close_reserve = close_reserve  # decode steps kept back to finish emotion and triggers
        # tokens whose text starts with '"': how say is closed when the token limit nears
        self._quote_start = torch.zeros(vocab, dtype=torch.bool)
        self._wordy: set[int] = set()  # tokens holding a letter or digit (repetition penalty applies)
        for tok_id in range(min(vocab, len(lm.tokenizer))):
            piece = self.grammar.decode_bytes([tok_id])
            if piece.startswith(b'"'):
                self._quote_start[tok_id] = True
            if any(chr(b).isalnum() for b in piece if b < 128) or any(b >= 128 for b in piece):
                self._wordy.add(tok_id)

    # -- the pieces ------------------------------------------------------------------------
    def forget(self, key: str | None = None) -> None:
        """Drop the KV cache of ``key`` (all keys when None), e.g. after a persona edit."""
        self.backend.forget(key)

    def _pick(self, logits: torch.Tensor, sampling: Sampling, gen: torch.Generator) -> int:
        if sampling.temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / sampling.temperature, dim=-1)
        if sampling.top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_p, 0) - sorted_p < sampling.top_p  # always keeps the top token
            probs = torch.zeros_like(probs).scatter_(0, order[keep], sorted_p[keep])
        return int(torch.multinomial(probs, 1, generator=gen))

    # -- the loop --------------------------------------------------------------------------
    def stream(self, key: str, prefix_ids: Sequence[int], suffix_ids: Sequence[int], allowed_triggers: Sequence[str],
               max_new_tokens: int = 160, sampling: Sampling = Sampling(),
               should_stop: Callable[[], bool] | None = None,
               avoid: Sequence[Sequence[int]] = (), matcher=None) -> Iterator[tuple[str, DecodeResult]]:
        """Yield (text delta, running result) per step; the last result has ``complete`` set.

        ``should_stop`` is polled between steps (barge-in): when it returns True the loop ends
        early with ``complete`` False. ``avoid``: token sequences (the characters' recent lines)
        whose n-grams ``say`` must not repeat. ``matcher``: another grammar than the reply's
        (``ReplyGrammar.compile``; the server's arbitrary schemas).
        """
        t0 = time.perf_counter()
        res = DecodeResult(prompt_tokens=len(prefix_ids) + len(suffix_ids))
        matcher = matcher or self.grammar.matcher(allowed_triggers)
        gen = torch.Generator().manual_seed(sampling.seed)
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        say = SayStream()  # tracks whether the output is inside the say string
        # the grammar forces the reply's opening ('{"triggers": ['): prefill it with the suffix
        opening = list(matcher.compute_ff_tokens())
        self.grammar.consume(matcher, opening)
        with torch.inference_mode():
            prompt = list(prefix_ids) + list(suffix_ids)
            res.cached_prompt_tokens = self.backend.start(key, prompt)  # the common start with the last turn
            logits = self.backend.feed(prompt[res.cached_prompt_tokens:] + opening)  # (V,)
            res.prefill_ms = (time.perf_counter() - t0) * 1000
            if opening:
                res.tokens = res.forced_tokens = len(opening)
                res.text = utf8.decode(self.grammar.decode_bytes(opening))
                say.feed(res.text)
                yield res.text, res
            sampled = 0
            say_sentences = 0
            generated: dict[int, int] = {}  # word tokens chosen in this reply's say -> times (penalties)
            ngrams = NgramBan(sampling.no_repeat_ngram, avoid)
            say_start: int | None = None  # tokens before say opened (the trigger list): not say's budget
            while res.tokens < (say_start or 0) + max_new_tokens + 2 * self.close_reserve:
                if say_start is None and say.in_say:
                    say_start = res.tokens
                if should_stop is not None and should_stop():
                    res.finish_reason = "interrupted"
                    break
                if say.in_say and generated:
                    seen = torch.tensor(list(generated), dtype=torch.long)
                    picked = logits[seen]
                    if sampling.repetition_penalty != 1.0:
                        picked = torch.where(picked > 0, picked / sampling.repetition_penalty,
                                             picked * sampling.repetition_penalty)
                    if sampling.frequency_penalty:
                        picked = picked - sampling.frequency_penalty * torch.tensor(list(generated.values()),
                                                                                  dtype=picked.dtype)
                    logits[seen] = picked
                t_step = time.perf_counter()
                allowed = self.grammar.allowed_tokens(matcher)  # (V,) bool
                if say.in_say:
                    ngrams.restrict(allowed)
                near_limit = say_start is not None and res.tokens - say_start >= max_new_tokens - self.close_reserve
                enough = say_sentences + say.at_sentence_end >= sampling.max_sentences
                if say.in_say and (near_limit or enough):
                    # inside say, a token starting with '"' closes the string (elsewhere it opens one)
                    closing = allowed & self._quote_start
                    if closing.any():
                        allowed = closing
                        res.cut_at_limit = res.cut_at_limit or near_limit
                logits.masked_fill_(~allowed, float("-inf"))
                t_masked = time.perf_counter()
                token = self._pick(logits, sampling, gen)
                res.mask_ms += (t_masked - t_step) * 1000
                if token in self.eos and matcher.is_accepting():
                    res.complete = True
                    break
                t_consume = time.perf_counter()
                self.grammar.consume(matcher, [token])
                fed = [token] + list(matcher.compute_ff_tokens())  # forced continuation, if any
                if len(fed) > 1:
                    self.grammar.consume(matcher, fed[1:])
                    res.forced_tokens += len(fed) - 1
                res.mask_ms += (time.perf_counter() - t_consume) * 1000
                if say.in_say:
                    ngrams.add(token)
                    if token in self._wordy:
                        generated[token] = generated.get(token, 0) + 1  # words only: punctuation stays free
                res.tokens += len(fed)
                sampled += 1
                delta = utf8.decode(self.grammar.decode_bytes(fed))
                res.text += delta
                say_sentences += len(say.feed(delta))
                if sampled == 1:
                    res.first_token_ms = (time.perf_counter() - t0) * 1000  # first token the model chose
                done = matcher.is_accepting() or matcher.is_stopped()
                if not done:
                    t_fwd = time.perf_counter()
                    logits = self.backend.feed(fed)
                    res.forward_ms += (time.perf_counter() - t_fwd) * 1000
                res.steps.append((time.perf_counter() - t_step) * 1000)
                res.total_ms = (time.perf_counter() - t0) * 1000
                yield delta, res
                if done:
                    res.complete = matcher.is_accepting()
                    break
        res.total_ms = (time.perf_counter() - t0) * 1000
        res.finish_reason = res.finish_reason or ("stop" if res.complete else "length")
        yield "", res
