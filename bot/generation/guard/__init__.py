"""Guardrails around the generator: personal data, prompt injection, topic, grounding, prompt leaks.

One module per guard, each a small pure object or function, tested on its own
(tests/unit/test_guard.py):

- `masking.PiiMasker` replaces e-mail addresses, phone, card, IBAN, SSN and resident ID numbers
  with placeholders before text reaches a model and in what it answers, by bot.pii's rules (the
  company's own contacts from the FAQ are not personal data).
- `bot.injection.detect_injection` finds text that tries to change the instructions, reveal the
  prompt or play a role; `bot.injection.strip_control` removes chat-template tokens and role
  headers from any text that goes into a prompt, so neither a customer nor a passage can open a new
  "system" turn. They live below the generator because the dialogue policy routes on them too.
- `topic.off_topic` is the topic check: a question no FAQ passage is near is outside the domain.
- `grounding.GroundingChecker` decides, sentence by sentence, whether the passages support an
  answer: semantic similarity (max cosine with a passage sentence, MiniLM), lexical support (the
  sentence's content words occur in its nearest passage sentences; `lexical`), numbers (every
  number, price, duration in it occurs in those sentences) and polarity (no "not" the supporting
  sentence lacks, or the reverse).
- `leaks.leaks_prompt` catches an answer that repeats the instructions rather than the passages.
- `sentences` splits answers into sentences and strips their citations.
"""

from __future__ import annotations

from bot.generation.guard.grounding import GroundingChecker, SentenceCheck
from bot.generation.guard.leaks import leaks_prompt
from bot.generation.guard.lexical import content_words, negated, numbers, stem
from bot.generation.guard.masking import PiiMasker
from bot.generation.guard.sentences import SENTENCE_END, split_sentences, strip_citations
from bot.generation.guard.topic import off_topic
from bot.injection import detect_injection, strip_control

__all__ = [
    "SENTENCE_END", "GroundingChecker", "PiiMasker", "SentenceCheck", "content_words", "detect_injection",
    "leaks_prompt", "negated", "numbers", "off_topic", "split_sentences", "stem", "strip_citations",
    "strip_control",
]
