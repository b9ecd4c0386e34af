"""How the baseline cuts text into tokens: overlapping character bigrams of CJK runs (the default), or jieba's
words; whole words of other scripts either way, after NFKC and lower-casing."""

from __future__ import annotations

import re
import unicodedata

#: The CJK ranges whose characters are cut into bigrams, as (first, last) code points.
CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))
_CJK = "".join(f"{chr(first)}-{chr(last)}" for first, last in CJK_RANGES)
#: A run of CJK characters, or a run of other letters and digits (a word of Latin script, a number).
_RUNS = re.compile(f"([{_CJK}]+)|([^\\W_{_CJK}]+)")
#: A run of letters or digits outside the CJK ranges: one token.
OTHER_WORD = re.compile(f"[^\\W_{_CJK}]+")


def chinese_bigrams(text: str) -> list[str]:
    """Overlapping character bigrams of each run of CJK characters (a lone character stays a unigram),
    and whole words of other scripts, after NFKC and lower-casing: `北京大学 AI` -> 北京, 京大, 大学, ai."""
    tokens: list[str] = []
    for cjk, word in _RUNS.findall(unicodedata.normalize("NFKC", text).lower()):
        if word:
            tokens.append(word)
        elif len(cjk) == 1:
            tokens.append(cjk)
        else:
            tokens.extend(cjk[k : k + 2] for k in range(len(cjk) - 1))
    return tokens


def jieba_words(text: str) -> list[str]:
    """jieba's words (its default dictionary, precise mode), letters and digits only, lower-cased."""
    import jieba

    jieba.setLogLevel(60)  # its dictionary-loading messages are not the run's
    normal = unicodedata.normalize("NFKC", text).lower()
    return [w for w in jieba.lcut(normal) if _RUNS.fullmatch(w)]


TOKENIZERS = {"char-bigram": chinese_bigrams, "jieba": jieba_words}
