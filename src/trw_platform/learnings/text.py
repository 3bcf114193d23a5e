"""Tokenization shared by the keyword index and keyword queries.

Both databases index the same pre-tokenized text, so an identifier is found the
same way on SQLite and PostgreSQL. Every run of letters and digits is a token,
and a camel-case word also yields its parts: ``psycopg.errors.UniqueViolation``
indexes as ``psycopg errors uniqueviolation unique violation``, ``E11000`` as
``e11000`` and ``alembic/env.py`` as ``alembic env py``. A query term that
contains punctuation or capitals becomes a phrase of the same tokens, so it
matches that identifier exactly and ranks above a document that merely contains
the pieces somewhere.
"""

import re
import unicodedata
from dataclasses import dataclass

# Letters and digits; the underscore is a separator, so sync_seq is two tokens.
_WORD = re.compile(r"[^\W_]+")
MAX_QUERY_TERMS = 32

# Words that match nearly every learning; dropping them from queries keeps an
# OR query from ranking documents by how often they contain "the".
_STOPWORD_TEXT = """
    a an the and or but if then than so as of to in on at by for from with
    about into over after before between under during without within is are
    was were be been being am do does did doing have has had having can could
    may might must shall should will would i me my we us our you your he him
    his she her it its they them their this that these those there here who
    whom whose which what when where why how not no nor any some all each
    every both just also very
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class KeywordQuery:
    """Terms of a keyword query: single tokens, and phrases of identifiers."""

    terms: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...]

    def __bool__(self) -> bool:
        return bool(self.terms or self.phrases)


def _camel_parts(word: str) -> list[str]:
    """Split ``UniqueViolation`` and ``HTTPServer`` where the case changes."""
    parts = []
    start = 0
    for index in range(1, len(word)):
        previous, current = word[index - 1], word[index]
        following = word[index + 1 : index + 2]
        if (previous.islower() and current.isupper()) or (
            previous.isupper() and current.isupper() and following.islower()
        ):
            parts.append(word[start:index])
            start = index
    parts.append(word[start:])
    return parts


def _word_tokens(word: str) -> list[str]:
    parts = _camel_parts(word)
    if len(parts) == 1:
        return [word.lower()]
    return [word.lower(), *(part.lower() for part in parts)]


def tokenize(text: str) -> list[str]:
    """Split text into lower-case tokens, camel-case parts after each word."""
    normalized = unicodedata.normalize("NFKC", text)
    return [token for word in _WORD.findall(normalized) for token in _word_tokens(word)]


def index_text(text: str) -> str:
    """Return the space-separated tokens that the keyword index stores."""
    return " ".join(tokenize(text))


def _is_identifier(chunk: str, tokens: list[str]) -> bool:
    return len(tokens) > 1 and not chunk.isalpha()


def parse_query(text: str) -> KeywordQuery:
    """Turn a free-text query into de-duplicated terms and identifier phrases."""
    terms: dict[str, None] = {}
    phrases: dict[tuple[str, ...], None] = {}
    for chunk in unicodedata.normalize("NFKC", text).split():
        tokens = tokenize(chunk)
        if _is_identifier(chunk, tokens):
            phrases[tuple(tokens)] = None
        for token in tokens:
            if token not in STOPWORDS:
                terms[token] = None
    if not terms and not phrases:
        # A query made only of stopwords still searches for those words.
        terms = dict.fromkeys(tokenize(text))
    return KeywordQuery(
        tuple(terms)[:MAX_QUERY_TERMS], tuple(phrases)[: MAX_QUERY_TERMS // 4]
    )
