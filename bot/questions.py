"""The parts of a customer's question: a compound question ("Is delivery free and how long does it
take?") asks several things. Below both the dialogue policy (a compound question is composed from
several FAQ entries) and the generator (each part is searched and answered on its own)."""

from __future__ import annotations

import re

# Where a clause of a compound question starts: "... free and how long ...", "... gift, can I ...".
_CLAUSE = re.compile(
    r"\s*(?:,\s*|;\s*)?\b(?:and also|and then|and|also|plus|but|or)\b\s+"
    r"(?=(?:can|could|do|does|did|is|are|was|how|what|what's|when|where|which|why|who|will|would|should"
    r"|shall|may|i|i'm|my|if|there)\b)"
    r"|\s*[;,]\s+(?=(?:can|could|do|does|is|are|how|what|when|where|which|why|will|would|should)\b)",
    re.IGNORECASE)


def question_parts(text: str) -> list[str]:
    """The sub-questions of a compound question ("Is delivery free and how long does it take?" ->
    2); a simple question is one part. A part that names its topic only by a pronoun ("how long
    does delivery take and is it free?") carries the words of the part before it, so that each
    part can be searched on its own ("is it free (long delivery take)")."""
    parts: list[str] = []
    for segment in re.split(r"[?]+|\n+", text):
        for clause in _CLAUSE.split(segment):
            clause = clause.strip(" .,;!")
            if len(clause.split()) >= 2:
                parts.append(clause)
    if not parts:
        return [text.strip()]
    return [parts[0], *(_with_topic(part, before) for before, part in zip(parts, parts[1:], strict=False))]


_PRONOUN = re.compile(r"\b(?:it|they|them|that|this|those|these|one)\b", re.IGNORECASE)
_FUNCTION_WORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "if", "of", "to", "in", "on", "at", "by", "for", "with",
    "from", "my", "your", "our", "their", "its", "it", "they", "them", "that", "this", "those", "these",
    "one", "i", "you", "we", "me", "us", "do", "does", "did", "is", "are", "was", "were", "be", "been",
    "can", "could", "will", "would", "should", "shall", "may", "might", "have", "has", "had", "how",
    "what", "when", "where", "which", "who", "why", "there", "any", "some", "much", "many", "get"})


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[A-Za-z][\w'-]*", text) if w.lower() not in _FUNCTION_WORDS]


def _with_topic(part: str, before: str) -> str:
    words = _words(part)
    if not _PRONOUN.search(part) or len(words) > 1:
        return part
    own = {w.lower() for w in words}
    carried = [w for w in _words(before) if w.lower() not in own]
    return f"{part} ({' '.join(carried)})" if carried else part


_QUESTION_WORD = re.compile(
    r"^\s*(?:can|could|do|does|did|is|are|how|what|what's|whats|when|where|where's|which|why|who|will"
    r"|would|should|any|pls|please)\b", re.IGNORECASE)
_CJK = re.compile(r"[\u3400-\u9fff]")


_TOPIC_STATEMENT = re.compile(
    r"^(?:i(?:'ve| have)?\s+(?:got\s+)?)?(?:a\s+|one\s+|another\s+)?(?:quick\s+)?"
    r"(?:question|query|problem|issue|something)s?\s+(?:about|with|regarding|on)\s+"
    r"(?:my\s+|an\s+|a\s+|the\s+|your\s+)?[\w'-]+(?:\s+[\w'-]+)?[.!]*$", re.IGNORECASE)


def is_keyword_query(text: str) -> bool:
    """A bare topic ("delivery", "money back", "订单", "I have a question about delivery"): no
    question asked. Which of the topic's questions is meant is not said, so the bot asks rather
    than guesses."""
    return is_topic_statement(text) or is_short_answer(text)


def is_topic_statement(text: str) -> bool:
    """A question announced, not asked ("I have a question about my parcel")."""
    return bool(_TOPIC_STATEMENT.match(text.strip()))


def is_short_answer(text: str) -> bool:
    """A few words and no question ("London", "14 Millbrook Lane", "北京"): what answers a form's
    question, or names a bare topic."""
    text = text.strip()
    if not text or "?" in text or "？" in text or text.startswith("/") or _QUESTION_WORD.match(text):
        return False
    if _CJK.search(text):
        return len(_CJK.findall(text)) <= 3 and len(text) <= 6
    return len(re.findall(r"[\w'’]+", text)) <= 3


def is_question(text: str) -> bool:
    """Asks something: a question mark, or a clause that opens with a question word ("i dont have it
    to hand, where do i find the order number")."""
    if "?" in text or "？" in text or text.rstrip().endswith("吗"):
        return True
    return any(_QUESTION_WORD.match(clause) for clause in re.split(r"[,;:.!]\s*|\s+-\s+", text))


_THANKS_AT_END = re.compile(
    r"(?:^|[\s,.!;:~-])(?:many thanks|thanks(?: a lot| so much| again| very much)?"
    r"|thank (?:you|u)(?: so much| very much| again)?|thx|ty|tyvm|cheers|ta)[\s.!:)~]*$", re.IGNORECASE)
_DONE = re.compile(
    r"\b(?:ok|okay|alright|right|great|perfect|cool|nice|lovely|brilliant|found|worked|works|working|sorted"
    r"|fixed|solved|resolved|went through|arrived|turned up|got it|will do|i'll|i will|makes sense"
    r"|understood|noted|helps|helped|helpful|done)\b", re.IGNORECASE)
_STILL_WRONG = re.compile(
    r"\b(?:not|no|never|still|can'?t|cannot|won'?t|doesn'?t|didn'?t|isn'?t|haven'?t|hasn'?t|wasn'?t|but"
    r"|problem|wrong|broken|help me|need|want|please|pls)\b", re.IGNORECASE)


def is_closing(text: str) -> bool:
    """Thanks after something that worked out ("ok found it in spam, thanks", "tried paypal instead
    and it worked, thx"): the customer is done, whatever topic the rest names. Not when it asks,
    or says something is still wrong or wanted ("I need to change my address, thanks")."""
    thanks = _THANKS_AT_END.search(text)
    if thanks is None or is_question(text):
        return False
    rest = text[:thanks.start()]
    return bool(_DONE.search(rest)) and not _STILL_WRONG.search(rest)


_GREETING = re.compile(
    r"^\s*(?:(?:hi|hello|hey|hiya|howdy|good\s+(?:morning|afternoon|evening|day)|dear\s+\w+)\b|你好|您好|嗨|哈喽)"
    r"(?:\s+(?:there|team|guys|all|folks|kettle\s*(?:&|and)\s*kin))?[\s,!.~，。！]*", re.IGNORECASE)


def without_greeting(text: str) -> str:
    """The message after an opening greeting ("Hi, where's my order?" -> "where's my order?"), so the
    greeting does not outvote the request; a greeting alone is kept as it is."""
    rest = _GREETING.sub("", text, count=1)
    enough = len(re.findall(r"\w+", rest)) >= 2 or len(_CJK.findall(rest)) >= 2
    return rest if rest != text and enough else text


# A message that leans on the one before: "and if I pay for the faster option?", "how long do I
# have to spend it then", "what about Norway", "那退款呢？".
_FOLLOW_UP_START = re.compile(
    r"^\s*(?:and|but|also|so|or|plus|then|ok(?:ay)?\s+(?:and|so|but)|what about|how about|same for|"
    r"what if|and if|and what|and how)\b", re.IGNORECASE)
_FOLLOW_UP_WORD = re.compile(r"\b(?:it|them|they|that|this|those|these|then|one)\b", re.IGNORECASE)
_FOLLOW_UP_ZH = re.compile(r"^(?:那|那么|还有|另外|如果)|呢[？?]?$")


def is_follow_up(text: str) -> bool:
    """A short message that names no topic of its own ("and it goes back to my card right"): it
    is read together with the customer's previous question."""
    text = text.strip()
    if not text or text.startswith("/"):
        return False
    if _CJK.search(text):
        return bool(_FOLLOW_UP_ZH.search(text)) and len(_CJK.findall(text)) <= 12
    words = re.findall(r"[\w'’]+", text)
    if not 2 <= len(words) <= 9:
        return False
    return bool(_FOLLOW_UP_START.match(text)) or bool(_FOLLOW_UP_WORD.search(text))
