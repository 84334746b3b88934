"""Expectations of a playthrough: each checks the last turn or the story state now and
returns None when it holds, or a ``Failure`` that says what was expected and what happened."""

from __future__ import annotations

from xrstory.playthrough.results import Failure, TurnRecord
from xrstory.playthrough.script import Step
from xrstory.runtime.turns import is_nudge
from xrstory.story.state import Story


def check_expectation(step: Step, story: Story, last: TurnRecord | None,
                      turns: list[TurnRecord] | None = None) -> Failure | None:
    failure = _check(step, story, last, turns)
    mark = step.args.get("mark")  # the next expectation is an 'expect nudge': note where we are
    if mark is not None:
        mark.turn = max((t.turn for t in turns or ([last] if last else [])), default=0)
    return failure


def _check(step: Step, story: Story, last: TurnRecord | None, turns: list[TurnRecord] | None) -> Failure | None:
    a = step.args
    what, negate = a["what"], a.get("negate", False)

    def fail(expected: str, actual: str) -> Failure:
        return Failure(step.line, step.text, expected, actual)

    st = story.state
    if what == "reply":
        if last is None or not last.say:
            return None if negate else fail("a reply", "no reply yet")
        if a["character"] and last.character != a["character"]:
            return fail(f"a reply from {a['character']}", f"{last.character} replied: {last.say!r}")
        if a["pattern"] is not None and not a["pattern"].search(last.say):
            return fail(f"reply matching /{a['pattern'].pattern}/", repr(last.say))
        return fail("no reply", repr(last.say)) if negate else None
    if what == "fired":
        fired = last.fired if last else []
        ok = a["id"] in fired
        if ok == negate:
            exp = f"'{a['id']}' {'not ' if negate else ''}fired in the last turn"
            act = f"fired {fired or 'nothing'}" + (f"; refused {last.refused}" if last and last.refused else "")
            if last is not None and last.say:
                act += f"; {last.character} said {last.say!r}"
            return fail(exp, act)
        return None
    if what == "refused":
        refused = last.refused if last else {}
        ok = a["id"] in refused
        return None if ok != negate else fail(f"'{a['id']}' {'not ' if negate else ''}refused", f"refused {refused or 'nothing'}")
    if what == "beat":
        ok = st.beat == a["id"]
        return None if ok != negate else fail(f"beat {'not ' if negate else ''}'{a['id']}'", f"beat '{st.beat}'")
    if what == "flag":
        ok = a["id"] in st.flags
        return None if ok != negate else fail(f"flag '{a['id']}' {'unset' if negate else 'set'}", f"flags {st.flags}")
    if what == "prop":
        now = st.prop_states.get(a["id"])
        ok = now == a["state"]
        return None if ok != negate else fail(f"prop '{a['id']}' {'not ' if negate else ''}{a['state']}", f"{now}")
    if what == "ended":
        ok = st.ended is not None
        return None if ok != negate else fail("story ended" if not negate else "story not ended", f"ended: {st.ended}")
    if what == "interrupted":
        # the interrupted line is the turn before the interruption's own turn
        recent = (turns or ([last] if last else []))[-2:]
        ok = any(t.interrupted and t.character == a["id"] for t in recent)
        got = ", ".join(f"{t.character} interrupted={t.interrupted}" for t in recent) or "no turn"
        return None if ok != negate else fail(f"{a['id']} {'not ' if negate else ''}interrupted", got)
    if what == "nudge":
        since = a["since"].turn
        nudges = [t for t in (turns or ([last] if last else [])) if t.turn > since and is_nudge(t)]
        ok = any(a["character"] in (None, t.character) for t in nudges)
        who = f" from {a['character']}" if a["character"] else ""
        got = "; ".join(f"turn {t.turn}: {t.character} {t.player_text}" for t in nudges) or \
            f"no nudge turn after turn {since}"
        return None if ok != negate else fail(f"{'no ' if negate else 'a '}nudge turn{who} since the previous "
                                              "expectation", got)
    if what == "moderation":
        mod = last is not None and last.moderated
        return fail("no moderation refusal", f"line was moderated: {last.say!r}") if mod else None
    raise ValueError(f"unknown expectation {what}")
