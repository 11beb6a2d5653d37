"""Text as young people write it, brought to one form: case, accents, stretched letters, chat abbreviations.

Used on both sides of the model: Rasa's tokenizer (`nlu/normalising_tokenizer.py`) puts each word's normal form
in its lemma, which the featurizers read, and the language resolver votes on it, so "jsp" counts as French.
Standard library only: the Rasa environment (Python 3.10) imports it too.
"""

from __future__ import annotations

import re
import unicodedata

# Chat abbreviations and slang spellings, word by word, to the words they stand for. One table for every
# language: the model is shared, so an entry must not mean something else in another of our languages.
ABBREVIATIONS: dict[str, str] = {
    # French
    "jsp": "je sais pas",
    "jsais": "je sais",
    "chais": "je sais",
    "jsuis": "je suis",
    "chui": "je suis",
    "chuis": "je suis",
    "jss": "je suis",
    "jveux": "je veux",
    "jvoudrais": "je voudrais",
    "jpeux": "je peux",
    "jcherche": "je cherche",
    "jai": "j ai",
    "g": "j ai",
    "jtrouve": "je trouve",
    "stp": "s il te plait",
    "svp": "s il vous plait",
    "tkt": "t inquiete",
    "wsh": "wesh",
    "qqn": "quelqu un",
    "qqun": "quelqu un",
    "qlq": "quelque",
    "qqch": "quelque chose",
    "qq": "quelques",
    "koi": "quoi",
    "kwa": "quoi",
    "ct": "c etait",
    "pk": "pourquoi",
    "pcq": "parce que",
    "pck": "parce que",
    "psk": "parce que",
    "bcp": "beaucoup",
    "dsl": "desole",
    "mrc": "merci",
    "slt": "salut",
    "bjr": "bonjour",
    "rdv": "rendez vous",
    "tjrs": "toujours",
    "tjr": "toujours",
    "mtn": "maintenant",
    "dmn": "demain",
    "ajd": "aujourd hui",
    "auj": "aujourd hui",
    "jamai": "jamais",
    "vrmt": "vraiment",
    "tt": "tout",
    "taf": "travail",
    "boulot": "travail",
    # laughter, in every language
    "mdr": "lol",
    "ptdr": "lol",
    "xd": "lol",
    "hahaha": "lol",
    "haha": "lol",
    # Dutch
    "ff": "even",
    "effe": "even",
    "aub": "alstublieft",
    "avb": "alstublieft",
    "wrm": "waarom",
    "mss": "misschien",
    "idd": "inderdaad",
    "da's": "dat is",
    "nie": "niet",
    "kheb": "ik heb",
    "kben": "ik ben",
    "kwil": "ik wil",
    "kzoek": "ik zoek",
    "kga": "ik ga",
    # English
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "thnx": "thanks",
    "ty": "thank you",
    "ur": "your",
    "r": "are",
    "idk": "i don t know",
    "dunno": "don t know",
    "wanna": "want to",
    "gonna": "going to",
    "gotta": "got to",
    "tmrw": "tomorrow",
    "tmr": "tomorrow",
    "cuz": "because",
    "bc": "because",
    "im": "i am",
    "cant": "can t",
    # Spanish
    "xq": "porque",
    "xk": "porque",
    "porq": "porque",
    "q": "que",
    "tb": "tambien",
    "tmb": "tambien",
    "xfa": "por favor",
    "porfa": "por favor",
    "pf": "por favor",
    "grax": "gracias",
    "ntp": "no te preocupes",
    "nse": "no se",
    "d": "de",
}

_STRETCHED = re.compile(r"(\D)\1{2,}")  # three or more of one letter: "ouiiii", "svppp" (not "1000")
_LETTER_AND_DIGIT = re.compile(r"^(?=.*[^\W\d_])(?=.*\d)[\w']+$")
# A number with its unit is not Arabizi: "14h30", "2eme", "3ans", "5min", "18jaar".
_TIME_OR_NUMBER = re.compile(
    r"^\d+([.,:h]\d*)?(h|u|am|pm|e|er|eme|ieme|ste|de|th|st|nd|rd|km|min|ans|an|jours|j|mois|x|eur|euros"
    r"|jaar|dagen|uur|years|yo|days|anos|dias|meses)?\d*$"
)
# Arabizi: a digit among letters stands for an Arabic letter ("3endi", "n9der", "l5edma", "wa7ed").
_ARABIZI_DIGITS = str.maketrans({"3": "a", "7": "h", "9": "q", "5": "kh", "2": "a", "8": "gh"})

_ARABIC_DIACRITICS = re.compile(r"[\u064B-\u065F\u0670\u06D6-\u06ED]")
_ARABIC_LETTERS = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ئ": "ي",
        "ؤ": "و",
        "ة": "ه",
        "ـ": "",  # tatweel, the stretching stroke
        "٠": "0",
        "١": "1",
        "٢": "2",
        "٣": "3",
        "٤": "4",
        "٥": "5",
        "٦": "6",
        "٧": "7",
        "٨": "8",
        "٩": "9",
        "،": ",",
        "؟": "?",
    }
)


def fold(text: str) -> str:
    """Lower case, Latin accents stripped, Arabic letter forms and diacritics unified."""
    text = _ARABIC_DIACRITICS.sub("", text.translate(_ARABIC_LETTERS))
    decomposed = unicodedata.normalize("NFKD", text.lower())
    # NFKD splits Arabic letters with hamza too, so only strip the marks of Latin letters.
    kept: list[str] = []
    for char in decomposed:
        if unicodedata.combining(char) and kept and kept[-1].isascii():
            continue
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def unstretch(word: str) -> str:
    """ "ouiiii" -> "oui", "merciii" -> "merci"; doubled letters ("nee", "allah") are kept."""
    return _STRETCHED.sub(r"\1", word)


def looks_arabizi(word: str) -> bool:
    """A word written with digits for Arabic letters ("3endi", "n9der"), not a number with its unit ("14h")."""
    word = fold(word)
    return bool(_LETTER_AND_DIGIT.match(word)) and not _TIME_OR_NUMBER.match(word)


def normal_word(word: str, *, expand: bool = True) -> str:
    """One word's normal form: folded, unstretched, Arabizi digits read as letters, abbreviations expanded."""
    word = unstretch(fold(word)).strip("'’")
    if looks_arabizi(word):
        word = word.translate(_ARABIZI_DIGITS)
    if expand:
        word = ABBREVIATIONS.get(word, word)
    return word


_WORDS = re.compile(r"[\w']+|[^\w\s]", re.UNICODE)


def normalise(text: str) -> str:
    """The whole message in its normal form, words separated by single spaces (punctuation kept)."""
    words = _WORDS.findall(fold(text).replace("’", "'"))
    return " ".join(w for w in (normal_word(t) for t in words) if w)


def expand(text: str) -> str:
    """Lower case, stretched letters and abbreviations expanded, accents kept: for a sentence encoder."""
    text = _ARABIC_DIACRITICS.sub("", text.replace("ـ", "")).lower().replace("’", "'")
    words = []
    for token in _WORDS.findall(text):
        words.append(ABBREVIATIONS.get(fold(unstretch(token)), unstretch(token)))
    return " ".join(words)
