"""Does re-encoding the interaction model in Q4_0 cost it answers? A 40-question quiz.

Each model (the 0.5B as shipped, Q4_K_M, and the Q4_0 conversion the offline default
runs, see ``models/requantize.py``) answers 40 short factual questions, greedily, with
the interaction model's system prompt. An answer counts when it contains one of the
expected words (a plural "s" is allowed). Reported: the score of each model, and the
questions on which they differ.

The quiz is not a benchmark of the 0.5B's knowledge (it gets ~3 in 4 right); it is a
tripwire for a conversion that damaged the model, which would show as a drop of many
answers at once.

Run: .venv/bin/python benchmarks/bench_llm_quiz.py [--model q4_0 shipped]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipecat_tandem.models.local_server import LocalModelServer, ServerConfig  # noqa: E402
from pipecat_tandem.models.local_stack import INTERACTION_PROMPT  # noqa: E402
from pipecat_tandem.models.requantize import QWEN_05B_Q4_0, ensure_weights  # noqa: E402
from pipecat_tandem.models.weights import QWEN_05B  # noqa: E402

MODELS = {"q4_0": QWEN_05B_Q4_0, "shipped": QWEN_05B}

QUIZ: list[tuple[str, tuple[str, ...]]] = [
    ("What is the capital of France?", ("paris",)),
    ("What is the capital of Japan?", ("tokyo",)),
    ("What is the capital of Italy?", ("rome",)),
    ("What is the capital of Germany?", ("berlin",)),
    ("How many legs does a spider have?", ("eight", "8")),
    ("How many legs does a dog have?", ("four", "4")),
    ("What do bees make?", ("honey",)),
    ("What color is the sky on a clear day?", ("blue",)),
    ("What color is grass?", ("green",)),
    ("How many days are in a week?", ("seven", "7")),
    ("How many hours are in a day?", ("24", "twenty-four", "twenty four")),
    ("What is the largest planet in our solar system?", ("jupiter",)),
    ("What planet do we live on?", ("earth",)),
    ("What is frozen water called?", ("ice",)),
    ("Which animal says moo?", ("cow",)),
    ("What is the opposite of hot?", ("cold",)),
    ("What do you call a baby cat?", ("kitten",)),
    ("What is the tallest animal?", ("giraffe",)),
    ("How many months are in a year?", ("twelve", "12")),
    ("What gas do plants breathe in?", ("carbon dioxide", "co2")),
    ("Who wrote Romeo and Juliet?", ("shakespeare",)),
    ("What is the chemical symbol for gold?", ("au",)),
    ("What is two plus two?", ("four", "4")),
    ("What is the boiling point of water in Celsius?", ("100",)),
    ("What language is spoken in Spain?", ("spanish",)),
    ("What is the largest ocean?", ("pacific",)),
    ("What is the fastest land animal?", ("cheetah",)),
    ("What season comes after winter?", ("spring",)),
    ("How many continents are there?", ("seven", "7")),
    ("What is the main ingredient of guacamole?", ("avocado",)),
    ("Which fruit is yellow and curved?", ("banana",)),
    ("What do cows drink?", ("water",)),
    ("What is the capital of Spain?", ("madrid",)),
    ("What is the square root of nine?", ("three", "3")),
    ("Which is bigger, an elephant or a mouse?", ("elephant",)),
    ("What is the first letter of the alphabet?", ("a",)),
    ("In which country are the pyramids of Giza?", ("egypt",)),
    ("What is the freezing point of water in Fahrenheit?", ("32",)),
    ("What is the color of a ripe tomato?", ("red",)),
    ("How many sides does a triangle have?", ("three", "3")),
]


def correct(answer: str, expected: tuple[str, ...]) -> bool:
    """Whether ``answer`` holds one of the expected words (or phrases)."""
    text = answer.lower()
    words = set(re.findall(r"[a-z0-9]+", text))
    words |= {w[:-1] for w in words if w.endswith("s")}
    return any((k in text) if " " in k or "-" in k else (k in words) for k in expected)


async def answers(name: str) -> list[str]:
    server = LocalModelServer(ServerConfig(model_path=ensure_weights(MODELS[name]), n_threads=2))
    await server.warm()
    out = []
    for question, _ in QUIZ:
        request = {
            "messages": [
                {"role": "system", "content": INTERACTION_PROMPT},
                {"role": "user", "content": question},
            ],
            "max_tokens": 40,
            "temperature": 0,
        }
        result = await server.complete_async(request)
        out.append(str(result["choices"][0]["message"]["content"]).strip())
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=sorted(MODELS), nargs="+", default=["q4_0", "shipped"])
    args = parser.parse_args()
    results = {name: await answers(name) for name in args.model}
    for name, replies in results.items():
        score = sum(correct(r, expected) for r, (_, expected) in zip(replies, QUIZ, strict=True))
        print(json.dumps({"model": name, "correct": score, "of": len(QUIZ)}), flush=True)
    if len(results) == 2:
        (a, ra), (b, rb) = results.items()
        for (question, expected), x, y in zip(QUIZ, ra, rb, strict=True):
            if correct(x, expected) != correct(y, expected):
                print(f"- {question}\n    {a}: {x!r}\n    {b}: {y!r}")


if __name__ == "__main__":
    asyncio.run(main())
