"""How well the language check (docs/language-check.md) catches errors, and how often it flags
correct text.

The correct texts are the starter bank's (exercises/fixtures/starter_bank.json): every sentence a
learner reads (a fill-in sentence with its correct words in the blanks, every option, the story)
in Bulgarian, and in Serbian both as stored (Latin) and as Cyrillic readers see it. Each text is
then corrupted in known ways, one word at a time, with a seeded random generator:

- letter-level typos: two neighbouring letters swapped, a letter dropped, a letter added (a letter
  of the text's alphabet, anywhere in the word);
- foreign words: a Russian word in place of a word of a Bulgarian text; in a Serbian text an
  ijekavian form (mlijeko for mleko: the ekavian rule), a Croatian word listed in
  exercises/language_data/sr_neighbour_words.txt (caught by construction, shown apart), or a
  Croatian word that list does not hold (what the dictionaries alone catch);
- scripts: one letter of a word replaced by its look-alike of the other script (mixed), or a whole
  word transliterated into the other script (wrong script).

A corruption is caught when the check flags the corrupted word; the table also gives how many of
the corrupted words are themselves in the dictionary (a swap that makes another real word: no
dictionary can see it). The false-flag rate is the share of untouched texts with any finding.

    .venv/bin/python bench/language_check.py            # 5 corruptions per text and kind
    .venv/bin/python bench/language_check.py --per-text 20 --seed 7

No database or Redis is used.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs import setup_django  # a sibling script: the benches run as scripts

ROOT = Path(__file__).resolve().parents[1]
BANK = ROOT / "exercises" / "fixtures" / "starter_bank.json"

ALPHABETS = {
    ("Bulgarian", "cyrillic"): "абвгдежзийклмнопрстуфхцчшщъьюя",
    ("Serbian", "latin"): "abcčćdđefghijklmnoprsštuvzž",
    ("Serbian", "cyrillic"): "абвгдђежзијклљмнњопрстћуфхцчџш",
}


def _words(text: str) -> list[str]:
    return text.split()


#: Look-alike letters of the other script.
LOOKALIKES = {
    "cyrillic": {"а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "к": "k"},
    "latin": {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "y": "у", "x": "х", "j": "ј"},
}
#: Russian words a Bulgarian might not have (the run reports those the Bulgarian dictionary knows).
RUSSIAN = _words(
    "сегодня хорошо спасибо пожалуйста здравствуйте сейчас очень тоже конечно всегда никогда "
    "здесь теперь деньги девушка мальчик ребенок лучше нужно можно надо говорить делать работать "
    "думать смотреть видеть слышать идти пойти спросить ответить купить магазине школе работе "
    "улице городе завтра вечером утром быстро медленно большой маленький красивый новый старый "
    "хочу могу знаю люблю живу иду ищу ничего почему потому сколько который также вместе"
)
#: Ijekavian forms of common Serbian words (the ekavian rule's test).
IJEKAVIAN = _words(
    "mlijeko lijepo gdje vrijeme dijete rijeka mjesto svijet pjesma bijeli cvijet uvijek poslije "
    "prije vidjeti htjeti sjediti djevojka mjesec ljeto vjetar snijeg zvijezda vjerovati mijenjati "
    "razumjeti vijesti tijelo pjevati sjever lijevo rijetko dvije ponedjeljak srijeda nedjelja "
    "cijena djeca bijelo pjesnik"
)
#: Croatian words that sr_neighbour_words.txt does not hold (nor their ekavian rule).
CROATIAN_HELD_OUT = _words(
    "tijekom jučer izvješće uporaba sudjelovati tipkovnica veleposlanstvo ured tajnica tvrtka "
    "putovnica iskaznica nazočan glasovati rabiti priopćenje učinkovit opskrba prosvjed skladatelj "
    "zemljovid nogometaš umirovljenik mirovina kućanstvo gospodarstvo djelatnik obavijest "
    "autocesta cesta"
)


def correct_texts(items: list[dict[str, Any]], bot_id: str) -> list[str]:
    """The bank's learner-visible sentences of one language (accent items are single words)."""
    from exercises.content import BLANK

    texts: list[str] = []
    for item in items:
        if item["exercise_language"] != bot_id:
            continue
        data, kind = item["data"], item["exercise_type"]
        if kind == "fill_in_the_blank":
            pieces = data["text_with_blanks"].split(BLANK)
            words = iter(item["correct_answer"]["words"])
            texts.append("".join(p + (next(words, "") if i else "") for i, p in enumerate(pieces)))
        elif kind in ("choose_sentence", "story_comprehension"):
            texts.extend(data["options"])
            if kind == "story_comprehension":
                texts.append(data["content_text"])
    return list(dict.fromkeys(texts))


Corruption = tuple[str, int, int, str]  # (text, start, end, the corrupted word)


def replace_word(text: str, word: Any, new: str) -> Corruption:
    return text[: word.start] + new + text[word.end :], word.start, word.start + len(new), new


def typo(kind: str, alphabet: str) -> Callable[[random.Random, str, Any], str | None]:
    def corrupt(rng: random.Random, text: str, word: Any) -> str | None:
        letters = word.text
        if kind == "swap":
            spots = [i for i in range(len(letters) - 1) if letters[i] != letters[i + 1]]
            if not spots:
                return None
            i = rng.choice(spots)
            return letters[:i] + letters[i + 1] + letters[i] + letters[i + 2 :]
        if kind == "drop":
            i = rng.randrange(len(letters))
            return letters[:i] + letters[i + 1 :]
        i = rng.randrange(len(letters) + 1)
        return letters[:i] + rng.choice(alphabet) + letters[i:]

    return corrupt


def substitute(words: list[str]) -> Callable[[random.Random, str, Any], str | None]:
    def corrupt(rng: random.Random, text: str, word: Any) -> str | None:
        return rng.choice(words)

    return corrupt


def lookalike(script: str) -> Callable[[random.Random, str, Any], str | None]:
    def corrupt(rng: random.Random, text: str, word: Any) -> str | None:
        spots = [i for i, ch in enumerate(word.text) if ch in LOOKALIKES[script]]
        if not spots:
            return None
        i = rng.choice(spots)
        return word.text[:i] + LOOKALIKES[script][word.text[i]] + word.text[i + 1 :]

    return corrupt


def other_script(script: str, code: str) -> Callable[[random.Random, str, Any], str | None]:
    import cyrtranslit

    def corrupt(rng: random.Random, text: str, word: Any) -> str | None:
        if script == "cyrillic":
            return str(cyrtranslit.to_latin(word.text, code))
        return str(cyrtranslit.to_cyrillic(word.text, code))

    return corrupt


def run(args: argparse.Namespace) -> dict[str, Any]:
    from duoniche.dictionaries import spell, speller
    from duoniche.languages import get_language, latin_to_cyrillic
    from exercises.language_check import checker, words_of

    items = json.loads(BANK.read_text(encoding="utf-8"))
    rng = random.Random(args.seed)
    variants = [("Bulgarian", "cyrillic"), ("Serbian", "latin"), ("Serbian", "cyrillic")]
    results: dict[str, Any] = {"seed": args.seed, "per_text": args.per_text, "variants": {}}
    for bot_id, script in variants:
        check = checker(bot_id)
        language = get_language(bot_id)
        if check is None or language is None:
            sys.exit(f"the language check of {bot_id} is disabled: install the dictionaries")
        texts = correct_texts(items, bot_id)
        if script != language.generation_script:
            texts = [latin_to_cyrillic(text) for text in texts]
        own = speller(language.dictionaries[script])
        assert own is not None
        to_script = latin_to_cyrillic if script == "cyrillic" else (lambda text: text)

        started = time.perf_counter()
        flagged = [text for text in texts if check.findings(text, "text", script)]
        seconds = time.perf_counter() - started
        kinds: dict[str, tuple[str, Callable[[random.Random, str, Any], str | None]]] = {
            "typo: letters swapped": ("unknown_word", typo("swap", ALPHABETS[bot_id, script])),
            "typo: letter dropped": ("unknown_word", typo("drop", ALPHABETS[bot_id, script])),
            "typo: letter added": ("unknown_word", typo("add", ALPHABETS[bot_id, script])),
        }
        if bot_id == "Bulgarian":
            known = [w for w in RUSSIAN if spell(own, w)]
            results.setdefault("russian_also_bulgarian", known)
            kinds["foreign: Russian word"] = (
                "foreign_word",
                substitute([w for w in RUSSIAN if w not in known]),
            )
        else:
            listed = sorted(check.neighbour_words)
            kinds["foreign: ijekavian form"] = (
                "foreign_word",
                substitute([to_script(w) for w in IJEKAVIAN]),
            )
            kinds["foreign: Croatian word, not in our list"] = (
                "foreign_word",
                substitute([to_script(w) for w in CROATIAN_HELD_OUT]),
            )
            kinds["foreign: Croatian word, in our list"] = (
                "foreign_word",
                substitute(
                    [to_script(w) for w in listed if check.neighbour_words[w] != "ijekavian"]
                ),
            )
        kinds["script: one look-alike letter"] = ("mixed_script", lookalike(script))
        kinds["script: word in the other script"] = (
            "wrong_script",
            other_script(script, language.language_code),
        )

        table: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for kind, (expected, corrupt) in kinds.items():
            for text in texts:
                candidates = [
                    w
                    for w in words_of(text)
                    if len(w.bare) >= 3 and not (w.bare[0].isupper() and not w.starts_sentence)
                ]
                if not candidates:
                    continue
                for _ in range(args.per_text):
                    word = rng.choice(candidates)
                    new = corrupt(rng, text, word)
                    if not new or new == word.text:
                        continue
                    corrupted, start, end, new = replace_word(text, word, new)
                    found = check.findings(corrupted, "text", script)
                    hits = [f for f in found if f.start < end and start < f.end]
                    row = table[kind]
                    row["corrupted"] += 1
                    row["caught"] += bool(hits)
                    row["right_kind"] += any(f.kind == expected for f in hits)
                    is_a_word = kind.startswith("typo") and spell(own, new)
                    row["is_a_dictionary_word"] += is_a_word
                    row["missed_not_a_word"] += (
                        kind.startswith("typo") and not hits and not is_a_word
                    )
        results["variants"][f"{bot_id} ({script})"] = {
            "texts": len(texts),
            "flagged_texts": len(flagged),
            "flagged_examples": flagged[:10],
            "ms_per_text": round(1000 * seconds / max(1, len(texts)), 3),
            "kinds": {kind: dict(row) for kind, row in table.items()},
        }
    return results


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def report(results: dict[str, Any]) -> None:
    print(f"seed {results['seed']}, {results['per_text']} corruptions per text and kind\n")
    print("| variant | correct texts | falsely flagged | ms per text |")
    print("|---|---|---|---|")
    for name, variant in results["variants"].items():
        print(
            f"| {name} | {variant['texts']} | {variant['flagged_texts']} "
            f"({percent(variant['flagged_texts'], variant['texts'])}) | {variant['ms_per_text']} |"
        )
    print(
        "\n| variant | corruption | corrupted | caught | right kind | still a dictionary word "
        "| missed, not a dictionary word |"
    )
    print("|---|---|---|---|---|---|---|")
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, variant in results["variants"].items():
        for kind, row in variant["kinds"].items():
            group = kind.split(":")[0] + (" (listed)" if kind.endswith(", in our list") else "")
            totals[group][0] += row["caught"]
            totals[group][1] += row["corrupted"]
            print(
                f"| {name} | {kind} | {row['corrupted']} | {row['caught']} "
                f"({percent(row['caught'], row['corrupted'])}) | "
                f"{percent(row['right_kind'], row['corrupted'])} | "
                f"{row.get('is_a_dictionary_word', 0) or '-'} | "
                f"{row['missed_not_a_word'] if kind.startswith('typo') else '-'} |"
            )
    print("\n| all variants | caught |")
    print("|---|---|")
    for group, (caught, corrupted) in totals.items():
        print(f"| {group} | {caught} of {corrupted} ({percent(caught, corrupted)}) |")
    also = results.get("russian_also_bulgarian") or []
    print(
        f"\nRussian words left out because the Bulgarian dictionary knows them: {', '.join(also)}"
    )
    for name, variant in results["variants"].items():
        for text in variant["flagged_examples"]:
            print(f"falsely flagged ({name}): {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-text", type=int, default=5, help="corruptions per text and kind")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    args = parser.parse_args()
    # The jobs bench's Django set-up, on a database URL nothing connects to and without Redis.
    setup_django(database_url="postgres://bench@127.0.0.1:1/unused", redis_url="", extra={})
    results = run(args)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        report(results)


if __name__ == "__main__":
    main()
