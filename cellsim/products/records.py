"""The typed record of a run's answer (:class:`Answer`, ``match.json: answer``) and the bond-event rule every table,
figure, claim and the answer itself use (:func:`bond_event`).

Kept apart from :mod:`cellsim.products.answer`, which derives the answer from a match, so that the match's result
(:mod:`cellsim.products.result`) can hold an :class:`Answer` without importing the rules that make one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# ions that hop between sites at room temperature: their bond counts to the anions change without a reaction
MOBILE_IONS = frozenset({"Li", "Na", "K", "Ag", "Cu"})

# match.json's answer keys, in the order answer_of writes them
ANSWER_KEYS = ("kind", "sentence", "evidence", "assumptions", "run_ps", "formed", "possible")
_LISTS = frozenset({"evidence", "assumptions", "formed", "possible"})


def _text(d: Mapping[str, Any], key: str) -> str | None:
    v = d.get(key)
    if v is not None and not isinstance(v, str):
        raise TypeError(f"answer {key}: {v!r} is not text")
    return v


def _number(d: Mapping[str, Any], key: str) -> float | None:
    v = d.get(key)
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
        raise TypeError(f"answer {key}: {v!r} is not a number")
    return None if v is None else float(v)


def _texts(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    v = d.get(key) or ()
    if isinstance(v, str | bytes) or not isinstance(v, list | tuple):
        raise TypeError(f"answer {key}: {v!r} is not a list")
    return tuple(str(x) for x in v)


@dataclass(frozen=True, eq=False)
class Answer:
    """The one answer of a run (``match.json: answer``), made by :func:`answer_of` and read by attribute.

    ``kind`` is ``products``, ``reaction``, ``none`` or ``too short`` (:func:`answer_of`); ``sentence`` the
    ``answer:`` line; ``evidence`` and ``assumptions`` its supporting lines; ``run_ps`` the run's length;
    ``formed`` / ``possible`` the candidates named. A record without an answer (a format-1 match.json) is
    :meth:`absent`: falsy, every attribute at its default. :meth:`to_dict` gives back exactly the keys read
    (``recorded``), so a match.json read and saved again is unchanged; keys of another writer are kept in
    ``extra``. ``answer["kind"]`` still reads (the dict it was, for scripts written against it); cellsim
    outside products/ reads the attributes.
    """

    kind: str | None = None
    sentence: str | None = None
    evidence: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()
    run_ps: float | None = None
    formed: tuple[str, ...] = ()
    possible: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    # the keys of the record as read, in order (None: made here, every key of ANSWER_KEYS, then extra's)
    recorded: tuple[str, ...] | None = field(default=None, repr=False)

    @classmethod
    def absent(cls) -> Answer:
        """No answer recorded (``match.json: answer`` empty)."""
        return cls(recorded=())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Answer:
        """The record of a ``match.json: answer`` dict; TypeError on a value of the wrong kind."""
        if not isinstance(d, Mapping):
            raise TypeError(f"answer: {d!r} is not a mapping")
        return cls(
            kind=_text(d, "kind"),
            sentence=_text(d, "sentence"),
            evidence=_texts(d, "evidence"),
            assumptions=_texts(d, "assumptions"),
            run_ps=_number(d, "run_ps"),
            formed=_texts(d, "formed"),
            possible=_texts(d, "possible"),
            extra={k: copy.deepcopy(v) for k, v in d.items() if k not in ANSWER_KEYS},
            recorded=tuple(d),
        )

    @classmethod
    def coerce(cls, x: Answer | Mapping[str, Any] | None) -> Answer:
        """``x`` as an :class:`Answer`: itself, the record of a dict, or :meth:`absent` for None."""
        if isinstance(x, Answer):
            return x
        return cls.absent() if x is None else cls.from_dict(x)

    def to_dict(self) -> dict[str, Any]:
        """The ``match.json: answer`` dict: the keys read, in their order (or all, for an answer made here)."""
        keys = self.recorded if self.recorded is not None else (*ANSWER_KEYS, *self.extra)
        out: dict[str, Any] = {}
        for k in keys:
            if k in ANSWER_KEYS:
                v = getattr(self, k)
                out[k] = list(v) if k in _LISTS else v
            else:
                out[k] = copy.deepcopy(self.extra[k])
        return out

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __bool__(self) -> bool:
        return self.recorded is None or bool(self.recorded)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Answer):
            return self.to_dict() == other.to_dict()
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if not self:
            return "Answer(none recorded)"
        s = self.sentence or ""
        s = s if len(s) <= 200 else s[:197] + "..."
        return (
            f"Answer({self.kind}: {s!r}; {len(self.evidence)} evidence, {len(self.assumptions)} assumptions, "
            f"{len(self.formed)} formed, {len(self.possible)} possible)"
        )


def _bond_text(pair: str, d: dict[str, Any]) -> str:
    b = d["bonds"]
    return f"{pair} {b['baseline_mean']:.1f} -> {b['late_mean']:.1f}"


def _framework(pair: str, d: dict[str, Any]) -> bool:
    """A pair bonded in a reactant that is neither a mobile ion's nor the metal's own: its fall is a break."""
    a, c = pair.split("-")
    return d.get("kind") == "reactant pair" and not ({a, c} & MOBILE_IONS) and a != c


def bond_event(pair: str, d: dict[str, Any]) -> str | None:
    """The answer's rule for one pair of the match (``MatchResult.pairs[pair]``): ``"formed"`` (a new RDF shell,
    or a count risen beyond the first frames' noise for a pair not bonded in a reactant), ``"broken"`` (a
    framework pair of a reactant, neither mobile ion nor metal-metal, fallen beyond that noise) or None. The
    answer, the evidence and the paper-claims table all use it."""
    b = d.get("bonds") or {}
    if d.get("has_new") or (b.get("rose") and d.get("kind") != "reactant pair"):
        return "formed"
    if b.get("fell") and _framework(pair, d):
        return "broken"
    return None
