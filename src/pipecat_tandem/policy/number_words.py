#
# Copyright (c) 2026, pipecat-tandem contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Small spoken numbers: "twenty five", "three and a half", "a couple of", "half a".

A voice pipeline's transcripts write small numbers as words ("how many hours are in
two weeks", "remind me in twenty minutes"); the tools that read a request want
digits. One parser for the whole project: the timers (:mod:`.interjections`) and the
background's task readers (the unit tool) use it. Larger amounts ("two thousand
three hundred") are left alone: STT writes those in digits.

"And a half" is the one phrase a small recognizer garbles often enough to matter:
Whisper tiny.en heard the same spoken "three and a half days" over Opus as
"three in the half days", "three in a half days", "3 and a half days" and
"3 1/2 days" in different calls. Each of those reads as 3.5 here
(:func:`number_words_to_digits`); "in the half" only counts as "and a half"
right after a number and before another word ("three in the half days"), where
it has no other sense.
"""

from __future__ import annotations

import re

__all__ = ["NUMBER_WORDS", "number_words_to_digits", "say_number", "words_to_number"]

_SMALL = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
#: Each number word and its value ("a" and "an" count one: "in a day").
NUMBER_WORDS: dict[str, float] = {w: float(i) for i, w in enumerate(_SMALL)}
NUMBER_WORDS.update({w: float(20 + 10 * i) for i, w in enumerate(_TENS)})
NUMBER_WORDS.update({"a": 1.0, "an": 1.0, "one": 1.0, "couple": 2.0, "few": 3.0, "half": 0.5})

_RUN_WORDS = set(NUMBER_WORDS) | {"and", "of"}
_TOKEN = re.compile(r"[A-Za-z]+|[^A-Za-z]+")
_NUMBER = "|".join([*_SMALL, *_TENS, r"\d+(?:\.\d+)?"])
_SEP = r"[\s-]+"
#: A number, then a garbled "and a half" before another word ("three in the half days").
_GARBLED_HALF = re.compile(
    rf"\b({_NUMBER}){_SEP}(?:and|in|an|n){_SEP}(?:a|the){_SEP}half(?=\s+[a-z])", re.I
)
#: A number written with a half in digits: "3 1/2", "3½".
_DIGIT_HALF = re.compile(r"\b(\d+)(?:\s+1/2\b|\s*½)")
#: Digits followed by "and a half": "3 and a half" (words are read by the run parser).
_DIGITS_AND_A_HALF = re.compile(rf"\b(\d+(?:\.\d+)?){_SEP}and{_SEP}a{_SEP}half\b", re.I)


def words_to_number(text: str) -> float | None:
    """'twenty five' -> 25, 'a couple of' -> 2, '1.5' -> 1.5, 'one and a half' -> 1.5."""
    t = text.lower().replace("-", " ").strip()
    try:
        return float(t)
    except ValueError:
        pass
    tokens = [w for w in t.split() if w not in ("of", "and")]
    half = False
    if tokens[-2:] == ["a", "half"]:
        tokens, half = tokens[:-2], True
    if not tokens or any(w not in NUMBER_WORDS for w in tokens):
        return None
    total = 0.0
    for w in tokens:
        if w in ("a", "an") and len(tokens) > 1:
            continue  # "a couple", "a few", "half a"
        total += NUMBER_WORDS[w]
    return total + (0.5 if half else 0.0)


def say_number(n: int) -> str:
    """0..99 in words ("twenty-five"); digits beyond."""
    if 0 <= n < 20:
        return _SMALL[n]
    if 20 <= n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens - 2] + (f"-{_SMALL[ones]}" if ones else "")
    return str(n)


def _digits(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:g}"


def number_words_to_digits(text: str) -> str:
    """``text`` with each run of number words written in digits.

    "how many minutes are in three and a half days" → "how many minutes are in 3.5
    days"; "in a day" → "in 1 day"; "a couple of days" → "2 days". Joiners ("and",
    "of") that end a run stay words. Meant for reading a request, not for showing
    it: "a" becomes "1" wherever it stands.

    Raises:
        TypeError: ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    text = _DIGIT_HALF.sub(r"\1 and a half", _GARBLED_HALF.sub(r"\1 and a half", text))
    text = _DIGITS_AND_A_HALF.sub(lambda m: _digits(float(m.group(1)) + 0.5), text)
    pieces = _TOKEN.findall(text)
    out: list[str] = []
    i = 0
    while i < len(pieces):
        # The run of number words from piece i: indexes of its words, which are
        # separated by one space or hyphen.
        run: list[int] = []
        j = i
        while j < len(pieces) and pieces[j].lower() in _RUN_WORDS:
            run.append(j)
            if j + 2 < len(pieces) and pieces[j + 1] in (" ", "-"):
                j += 2
            else:
                break
        while run and pieces[run[-1]].lower() in ("and", "of"):
            run.pop()
        words = [pieces[k].lower() for k in run]
        value = words_to_number(" ".join(words)) if run and words[0] not in ("and", "of") else None
        if value is None:
            out.append(pieces[i])
            i += 1
            continue
        end = run[-1] + 1
        if words[-1] in ("couple", "few") and pieces[end : end + 2] == [" ", "of"]:
            end += 2  # "a couple of days": the "of" goes with the number
        out.append(_digits(value))
        i = end
    return "".join(out)
