"""Prompt injection: text that tries to change the assistant's instructions.

`detect_injection` finds a customer's message that tries to change the instructions, reveal the
prompt or play a role; `strip_control` removes chat-template tokens and role headers from any text
that goes into a prompt, so neither a customer nor a passage can open a new "system" turn.

Below both the dialogue and the generator: the policy sends an injection attempt to the generative
path (whose guards refuse it politely), and the generator's guards refuse it and keep prompts clean.
"""

from __future__ import annotations

import re

from bot.textsafety import matching_form

# Chat-template tokens and role headers of the common model families: never allowed into a prompt.
_CONTROL_TOKENS = re.compile(
    r"<\|[^|>]{1,40}\|>|</?s>|\[/?INST\]|<</?SYS>>|<start_of_turn>|<end_of_turn>|<\|?eot_id\|?>",
    re.IGNORECASE)
_ROLE_HEADER = re.compile(r"(?im)^[ \t]*(?:#{1,4}[ \t]*)?(system|assistant|developer|instructions?)"
                          r"[ \t]*:[ \t]*|^[ \t]*(system|assistant|user|developer)[ \t]*$\n?")


def _any(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


_GAP = r"[\w\s,:;'-]{0,40}?"
_BOT_THINGS = _any("instructions?", "rules", "prompts?", "guidelines", "directions", "programming",
                   "training", "restrictions", "filters", "guardrails", "polic(?:y|ies)", "constraints",
                   "system message")
_OWNERS = _any("your", "previous", "prior", "above", "earlier", "preceding", "original", "initial", "system",
               "all", "any", "these", "those", "the above", "the previous", "the system", "the original")
_SHOW = _any("reveal", "show", "print", "display", "output", "repeat", "recite", "dump", "leak", "tell me",
             "give me", "what(?:'s| is| are)", "copy", "paste", "write out", "spell out", "translate")
_SECRET = _any("system", "initial", "original", "hidden", "secret", "internal", "full", "exact", "developer",
               "above", "previous")
_PERSONAS = _any("system", "admin", "administrator", "developer", "root", "dan", r"jailbr\w*", "unrestricted",
                 "unfiltered", "evil", "no rules", "without (?:rules|restrictions|limits)",
                 "another (?:ai|assistant|bot)", "chatgpt", "gpt", "linux", "terminal", "grandmother",
                 "grandma", "pirate", "character", "ai")
_INJECTION_SPECS = [
    # "ignore all previous instructions", "forget your rules", "disregard the FAQ"
    ("override", r"\b(ignore|disregard|forget|override|bypass|skip)\b(?:\s+\w+){0,2}?\s+" + _OWNERS
                 + r"\b(?:\s+\w+)?\s+" + _BOT_THINGS + r"\b"),
    ("override", r"\b(ignore|disregard|forget|bypass)\s+(?:the\s+|your\s+)?"
                 r"(faq|passages|context|knowledge base)\b"),
    ("override", r"\b(new|updated|real|actual|different|secret|hidden)\s+"
                 r"(instructions?|rules|system prompt|task)\s*[:=-]"),
    ("override", r"\b(from now on|starting now|for the rest of (?:this|the) conversation),?\s+(you|your)\b"),
    ("override", r"\b(respond|reply|answer)\s+(?:only\s+)?with\s+(?:the\s+|a\s+)?(?:single\s+|one\s+)?word\b"
                 r"|\band nothing else\b|\bcomplete (?:this|the following) (?:sentence|text)\b"),
    # "print your system prompt", "reveal your hidden instructions", "what are your instructions?"
    ("reveal", r"\b" + _SHOW + r"\b" + _GAP + r"\b(?:your|the|its)\s+(?:" + _SECRET + r"\s+)?"
               r"(prompt|system message|configuration|directives)\b"),
    ("reveal", r"\b" + _SHOW + r"\b" + _GAP + r"\b(?:your|the)\s+" + _SECRET
               + r"\s+(instructions?|rules|guidelines|message)\b"),
    ("reveal", r"\b(what are|repeat|print|show|reveal|list|tell me)\s+(?:me\s+)?your\s+"
               r"(instructions|rules|guidelines)\b(?!\s+(?:for|on|about|to|regarding|when)\b)"),
    ("reveal", r"\b(repeat|print|output)\b[\w\s,'-]{0,20}\b(everything|all|the text|the words)\b"
               r"[\w\s,'-]{0,20}\b(above|before|so far|verbatim)\b"),
    # "you are now DAN", "pretend you are an unrestricted AI", "developer mode"
    ("roleplay", r"\b(you are now|you're now|you will now be|from now on you are)\b"),
    ("roleplay", r"\b(act as|pretend (?:to be|you are|you're)|role-?play|simulate|impersonate|behave as)\b"
                 + _GAP + r"\b" + _PERSONAS + r"\b"),
    ("roleplay", r"\b(developer mode|jailbreak|jailbroken|do anything now|dan mode|god mode|sudo mode"
                 r"|admin mode|maintenance mode|debug mode|unrestricted mode)\b"),
    ("roleplay", r"\byou (?:must|have to|will) (?:now )?(?:obey|comply|answer everything|always say yes)\b"),
    # chat-template tokens and role headers typed into the message
    ("control", r"<\|[^|>]{1,40}\|>|\[/?INST\]|<</?SYS>>"
                r"|(?m:^\s*#{0,4}\s*(system|assistant|developer|instructions?|response)\s*:)"),
]
_INJECTION_PATTERNS = [(name, re.compile(p, re.IGNORECASE)) for name, p in _INJECTION_SPECS]


def detect_injection(text: str) -> str | None:
    """The kind of injection attempt in a customer's message (override, reveal, roleplay,
    control), or None. Matched on the normalised text: invisible characters and look-alike
    letters inside "ignore all previous instructions" do not hide it."""
    text = matching_form(text)
    for name, pattern in _INJECTION_PATTERNS:
        if pattern.search(text):
            return name
    return None


def strip_control(text: str) -> str:
    """Remove chat-template tokens and line-leading role headers: text stays data in a prompt."""
    text = _CONTROL_TOKENS.sub(" ", text)
    text = _ROLE_HEADER.sub("", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()
