"""Tokenising only the start of a long text when truncation provably keeps nothing after it.

A fast tokenizer tokenises the whole text and truncates afterwards: a passage of 875 characters
(T2Retrieval's average) costs its full length though only its first 510 tokens are kept. For
T2Retrieval's 141,261 texts at their real size that was 122.9 s of two cores on the slow CPU of the
benchmarks (`bench/tokenize_rate.py`).

Here a long text is first tokenised from a prefix of `prefix_chars(max_length)` characters. The prefix's
ids are the full text's ids when (a) the prefix reached truncation and (b) the word holding its last kept
token ends inside the prefix. Why that suffices, for the tokenizers `cut_rule` accepts (transformers'
BERT-family fast tokenizers: `BertNormalizer`, `BertPreTokenizer`, `WordPiece`):

- the normaliser works character by character (cleaning, spaces around CJK ideographs, lower-casing,
  accents stripped after NFD, whose reordering never crosses a character of combining class 0);
- the pre-tokenizer splits at whitespace and punctuation, so a word's tokens depend on that word alone;
- WordPiece tokenises each word on its own (a cut word may change, or stop being `[UNK]`: hence (b));
- special tokens are matched first, but each starts with a boundary character and holds no other before
  its last character, so one cut by the prefix cannot join or split the words before it.

(b) is checked from the last kept token's character span: a boundary character (whitespace, ASCII
punctuation, a CJK ideograph when the normaliser isolates them) at or after its end in the prefix. Texts
that fail either check are tokenised again in full: the ids are always exactly those of the whole text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

#: Characters that always end a word for BERT's pre-tokenizer: whitespace it splits at (clean_text maps
#: tab and newlines to spaces) and ASCII punctuation, each a token of its own.
ALWAYS_ENDS_WORD = r" \t\n\r!-/:-@\[-`{-~"
#: CJK ideographs the BERT normaliser surrounds with spaces (`handle_chinese_chars`), each its own word.
#: Its compatibility blocks (U+F900, U+2F800) are left out: their NFD forms are other code points.
CJK_IDEOGRAPHS = (
    "\u4e00-\u9fff\u3400-\u4dbf\U00020000-\U0002a6df\U0002a700-\U0002b73f\U0002b740-\U0002b81f\U0002b820-\U0002ceaf"
)


@dataclass(frozen=True)
class CutRule:
    """How to tell, for one tokenizer, that a prefix's truncated ids are the whole text's."""

    boundaries: re.Pattern[str]  # a character that ends every word before it
    trailing_specials: int  # special tokens after the text's own (BERT: [SEP])

    def keeps_whole_words(self, encoding: Any, row: int, prefix: str, max_length: int) -> bool:
        """Whether row `row` of `encoding` (a `BatchEncoding` of truncated prefixes) reached truncation and
        its last kept token's word ends inside `prefix`."""
        if len(encoding["input_ids"][row]) < max_length:
            return False
        span = encoding.token_to_chars(row, max_length - 1 - self.trailing_specials)
        return span is not None and self.boundaries.search(prefix, span.end) is not None


def prefix_chars(max_length: int) -> int:
    """Characters tokenised first: a quarter more than the tokens kept (Chinese text runs about one
    character a token; 99.9 % of the benchmark's long passages kept 510 tokens within 578 characters)."""
    return max_length + max_length // 4


def cut_rule(tokenizer: Any) -> CutRule | None:
    """The cut rule of a tokenizer whose prefixes are provably safe to tokenise alone, else None."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if not getattr(tokenizer, "is_fast", False) or backend is None or tokenizer.truncation_side != "right":
        return None
    kinds = (type(backend.normalizer).__name__, type(backend.pre_tokenizer).__name__, type(backend.model).__name__)
    if kinds != ("BertNormalizer", "BertPreTokenizer", "WordPiece"):
        return None
    cjk = CJK_IDEOGRAPHS if backend.normalizer.handle_chinese_chars else ""
    boundaries = re.compile(f"[{ALWAYS_ENDS_WORD}{cjk}]")
    for added in backend.get_added_tokens_decoder().values():
        content = added.content
        if not content or not boundaries.match(content) or boundaries.search(content[:-1], 1):
            return None  # an added token could join or split words at a cut
    # From the backend itself: a call through transformers would set the backend's truncation to its own
    # arguments, under another thread's tokenising (the prefetch thread's, while this one encodes).
    marks = backend.encode("a").special_tokens_mask  # BERT: [1, 0, 1]
    trailing = len(marks) - 1 - max(i for i, special in enumerate(marks) if not special)
    return CutRule(boundaries, trailing)
