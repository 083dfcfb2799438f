"""What kind of answer a question asks for, from its wording alone: pure functions, no model.

Three intents change the shape of an answer (`qa.shaping`):

- **about a caption**: "Which table shows ...?", "What is Table 3-4 called?", "What does Figure 2 depict?"
  ask for a table or figure itself, so its caption answers them; any other question asks about content, and
  a caption never answers it;
- **several things**: "What are the three authentication factors?", "Which groups should ...?", "List the
  ..." ask for a list, so one item of a list is only part of the answer;
- **a definition**: "What is a nonce?", "What does profiling mean?", "Define threat", "How does the guide
  define a threat?" ask for the definition of a term, and the answer is the definition, not a word in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TABLE_OR_FIGURE = r"(?:table|figure|fig\.|chart|diagram|exhibit)"
_LABEL = r"(?:[a-z]?\d+(?:[\-.]\d+)*)"
_CAPTION_QUESTIONS = [
    re.compile(
        rf"\b(?:which|what)\s+{_TABLE_OR_FIGURE}s?\b"
    ),  # "Which table shows ...", "In what figure ..."
    re.compile(rf"\b(?:title|caption|name|heading)\s+of\s+{_TABLE_OR_FIGURE}\b"),
    re.compile(rf"\b{_TABLE_OR_FIGURE}\s+{_LABEL}\s+(?:is\s+|was\s+)?(?:called|titled|named|entitled)\b"),
    re.compile(
        rf"\bwhat\s+(?:does|do|did)\s+{_TABLE_OR_FIGURE}\s+{_LABEL}\s+"
        r"(?:show|depict|illustrate|present|describe|summari[sz]e|display|represent|cover)\b"
    ),
    re.compile(rf"\bwhat\s+is\s+{_TABLE_OR_FIGURE}\s+{_LABEL}\s*(?:about)?\s*\??$"),
]
_COUNT = (
    r"(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|several|multiple|various|both|all|"
    r"\d+|a few|some)"
)
_SEVERAL_QUESTIONS = [
    # "What are the three authentication factors", "into which two types": a count just after the wh-word
    re.compile(rf"\b(?:what|which|who|name|list)\s+(?:\w+\s+){{0,3}}?{_COUNT}\s+(?:\w+[\s-]){{0,2}}\w+s\b"),
    re.compile(r"^(?:what|which|who)\s+(?:are|were)\b"),  # "What are the steps ...?"
    re.compile(r"^(?:list|name|enumerate|give)\b"),
    re.compile(r"\b(?:kinds|types|sorts|categories|examples|list)\s+of\b"),
]
# Words ending in s that are no plural nouns after "which"/"what" ("What does ...", "Which process ...").
_NOT_PLURAL = frozenset(
    {
        "is",
        "was",
        "does",
        "has",
        "this",
        "process",
        "access",
        "business",
        "address",
        "class",
        "status",
        "analysis",
        "basis",
        "loss",
        "success",
        "its",
        "us",
        "less",
        "bus",
        "gas",
        "plus",
        "thus",
        "yes",
    }
)
# "Which groups should ...", "What steps are ..."; not "What makes a ..." (a verb: an article follows it).
_PLURAL_OBJECT = re.compile(
    r"^(?:which|what)\s+(?P<noun>[a-z]{3,}s)\b(?!\s+(?:a|an|the|it|this|that|them|its|their|our|your)\b)"
)
_ARTICLE = r"(?:(?:a|an|the)\s+)?"
_TERM = r"(?P<term>[\w][\w\s'’/&.\-]{0,60}?)"
_DEFINITION_QUESTIONS = [
    re.compile(
        rf"\bwhat\s+(?:is|are)\s+(?:meant\s+by|the\s+(?:definition|meaning)\s+of)\s+{_ARTICLE}{_TERM}\s*(?:[,?]|$)"
    ),
    re.compile(rf"\bwhat\s+(?:does|do)\s+(?:the\s+(?:term|word|acronym)\s+)?{_ARTICLE}{_TERM}\s+mean\b"),
    re.compile(rf"\bdefine[sd]?\s+{_ARTICLE}{_TERM}\s*(?:[,?.]|\bas\b|$)"),
    re.compile(rf"\b(?:what|who)\s+(?:is|are)\s+{_ARTICLE}{_TERM}\s*(?:[,?]|$)"),
]
_NOT_A_TERM = re.compile(
    rf"\b(?:of|for|in|on|to|from|with|by|when|where|why|how|called|named|titled)\b|^{_TABLE_OR_FIGURE}\b"
    r"|^(?:it|this|that|there|they|he|she)\b"
)
MAX_TERM_WORDS = 5


@dataclass(frozen=True)
class Intent:
    """What a question asks for, as far as its wording tells."""

    about_caption: bool = False  # a table or figure itself: its caption answers
    several: bool = False  # several things: a list answers
    term: str | None = None  # the term whose definition is asked for
    words: frozenset[str] = frozenset()  # the question's words (lower case), to match table headers
    label: str | None = None  # the table or figure the question names ("table 3-1"), see `named_label`


_NAMED = re.compile(rf"\b(?P<kind>table|figure|fig\.|exhibit)\s+(?P<number>{_LABEL})\b")


def named_label(text: str) -> str | None:
    """The first table or figure label in a text, normalised: "What is the title of Table 3-1?" -> "table 3-1",
    "Fig. 2: ..." -> "figure 2"; None when it names none."""
    match = _NAMED.search(_plain(text))
    if match is None:
        return None
    kind = "figure" if match.group("kind") == "fig." else match.group("kind")
    return f"{kind} {match.group('number').rstrip('.')}"


def plain_words(text: str) -> frozenset[str]:
    """Lower-case words of a text, split at anything not a letter or digit ("Longformer-base" -> longformer,
    base), with a plural s dropped ("datasets" -> dataset), so headers and questions compare."""
    words = re.findall(r"[^\W_]+", text.lower())
    return frozenset(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words)


def _plain(question: str) -> str:
    return " ".join(question.lower().replace("’", "'").split())


def asks_about_caption(question: str) -> bool:
    """True when the question asks which table or figure, or what one is called or shows.

    Args:
        question: the user's question.
    Returns:
        Whether a table's or figure's caption is the answer ("Which figure depicts the life cycle?"), as
        opposed to a question about what the table holds ("What is the accuracy in Table 8?").
    """
    q = _plain(question)
    return any(pattern.search(q) for pattern in _CAPTION_QUESTIONS)


def asks_for_several(question: str) -> bool:
    """True when the question asks for several things: a count ("three factors"), "What are the ...",
    "List ...", "kinds of", or a plural after which/what ("Which groups ...").

    Args:
        question: the user's question.
    Returns:
        Whether a list answers it better than one of its items.
    """
    q = _plain(question)
    if any(pattern.search(q) for pattern in _SEVERAL_QUESTIONS):
        return True
    match = _PLURAL_OBJECT.match(q)
    return bool(match) and match.group("noun") not in _NOT_PLURAL and not match.group("noun").endswith("ss")


def defined_term(question: str) -> str | None:
    """The term a definition question asks about: "What is a nonce?" -> "nonce", "What does profiling mean in
    the context of ...?" -> "profiling", "How does the guide define a threat?" -> "threat".

    Args:
        question: the user's question.
    Returns:
        The term (lower case, without its article), or None when the question asks something else
        ("What is the title of Table 3-1?", "What is the average length of ...?").
    """
    q = _plain(question)
    for pattern in _DEFINITION_QUESTIONS:
        match = pattern.search(q)
        if match is None:
            continue
        term = match.group("term").strip(" .-'")
        counted = re.match(rf"{_COUNT}\b", term)  # "the three factors" asks for a list, not a definition
        if term and not counted and len(term.split()) <= MAX_TERM_WORDS and not _NOT_A_TERM.search(term):
            return term
    return None


def question_intent(question: str) -> Intent:
    """All three intents of a question (see the module docstring)."""
    about_caption = asks_about_caption(question)
    return Intent(
        about_caption=about_caption,
        several=asks_for_several(question) and not about_caption,
        term=None if about_caption else defined_term(question),
        words=plain_words(question),
        label=named_label(question),
    )
