"""decide(session, parse, hits) -> Action. Every threshold the dialogue uses is read here only.

Pure: no I/O. It updates the session's dialogue state (form, slots, failure count, hand-off flag)
and returns the action with its replies; the pipeline saves and delivers them. Every reply is
rendered in the conversation's language (`reply_language`) through `_say`, and form actions get
the same language; only the unsupported-language reply is said in the default language.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Protocol

from bot.config import Thresholds
from bot.dialogue.actions import FormAction
from bot.dialogue.domain import Domain, IntentSpec
from bot.dialogue.forms import FormSpec
from bot.injection import detect_injection
from bot.knowledge.words import content_words
from bot.questions import is_keyword_query, is_question, is_short_answer, is_topic_statement, question_parts
from bot.types import Action, Button, Hit, Parse, Reply, Session, Source

OOS = "out_of_scope"
FAQ_PAYLOAD_INTENT = "faq"
# Intents that answer the form's question rather than change the topic. A greeting never starts a
# new topic, and short answers (a city: "北京", "上海") look like greetings to the intent model.
_FORM_NEUTRAL = {"affirm", "deny", "stop", "greet", OOS}
_NOT_OFFERED = {"affirm", "deny", "stop", "greet", "goodbye", "thank_you", OOS}
_PLEASE = re.compile(r"^\s*(?:pls|plz|please)\b[\s,]*", re.IGNORECASE)
# A question about the time limit of what a form does, not a request to do it.
_DEADLINE = re.compile(r"\b(?:until when|till when|by when|how late|how long (?:do i have|after|until)|"
                       r"deadline|too late)\b", re.IGNORECASE)
# A customer correcting what they answered before, and where the new value starts after it.
_CORRECTING = re.compile(r"^\s*(?:sorry|oops|wait|actually|correction|my bad|no|i meant|wrong)\b",
                         re.IGNORECASE)
_RESTATED = re.compile(r"\b(?:it'?s|it is|should be|i meant|meant|make that)\b\s*:?|:", re.IGNORECASE)
_NAME_WORD = re.compile(r"[^\W\d_]{3,}")
# A question about when something happens ("when are your agents online?", "你们什么时候有人工客服在线").
_ASKS_WHEN = re.compile(r"(?i)^\s*(?:when|what time|at what time|what hours|until when|how late)\b"
                        r"|什么时候|几点|何时|哪些时间|营业时间")
# Words that name no topic of their own ("account problem" is about the account).
_VAGUE = frozenset({"problem", "issue", "thing", "stuff", "question", "query", "someth", "something"})
# An e-mail address left for follow-up while nobody from the team is available.
EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}(?![\w-])")


class AnswerSource(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...


class GeneratedAnswer(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def sources(self) -> Sequence[AnswerSource]: ...


class GenerationOutcome(Protocol):
    """What the policy reads of a finished generation (bot.generation's `GenerationResult`
    implements it): the dialogue never imports the generator."""

    @property
    def status(self) -> str: ...  # answered | unsure | refused | degraded
    @property
    def reason(self) -> str: ...
    @property
    def answer(self) -> GeneratedAnswer | None: ...


class Policy:
    def __init__(self, domain: Domain, thresholds: Thresholds, actions: dict[str, FormAction],
                 seed: int | None = None, generative: bool = False,
                 languages: list[str] | None = None, default_language: str = "en",
                 confirm_answers: bool = False,
                 entry_intents: Mapping[str, Mapping[str, float]] | None = None) -> None:
        self.domain = domain
        self.confirm_answers = confirm_answers
        self.entry_intents = entry_intents or {}
        self._form_entries: dict[str, str | None] = {}
        self.default_language = default_language
        self.languages = [lang.lower() for lang in languages or []]  # empty: any language
        self.t = thresholds
        self.actions = actions
        self.generative = generative
        self.rng = random.Random(seed)
        unknown = {f.submit for f in domain.forms.values()} - set(actions)
        if unknown:
            raise ValueError(f"domain forms use unregistered actions: {sorted(unknown)}")

    def decide(self, session: Session, parse: Parse, hits: list[Hit]) -> Action:
        action = self._decide(session, parse, hits)
        if action.kind == "faq_answer":
            self._answered(session, action)
        elif action.kind != "generate":  # a pending generation is judged in after_generation
            session.answered_entry = None
        return action

    def _decide(self, session: Session, parse: Parse, hits: list[Hit]) -> Action:
        hits = self.rerank(parse, hits)
        confident = self.confident(parse)
        if session.active_form:
            action = self._continue_form(session, parse, confident, hits)
            if action is not None:
                return action
        offer, session.offer = session.offer, None
        if offer == "confirm":
            feedback = self._feedback(session, parse, confident)
            if feedback is not None:
                return feedback
        trigger = None if parse.text.startswith("/") else self.domain.handoff.trigger(parse.text)
        if trigger:
            return self._handoff(session, trigger)
        if offer == "handoff" and confident and parse.intent == "affirm":
            return self._handoff(session, "customer_accepted_offer")
        if offer == "handoff" and parse.intent == "affirm" and self._unsupported_language(parse):
            # "yes" (or "ja", "oui") to the offer made in a language we do not serve
            return self._handoff(session, "customer_accepted_offer")
        if self._unsupported_language(parse):
            session.offer = "handoff"
            # said in the default language: the customer's own is one we do not serve
            return Action(kind="clarify", name="unsupported_language", understood=False,
                          replies=[self.domain.render("utter_language_unsupported", rng=self.rng,
                                                      language=self.default_language)])
        if parse.intent == FAQ_PAYLOAD_INTENT and hits:
            return self._faq(session, hits[0])
        if self.generative and not parse.text.startswith("/") and detect_injection(parse.text):
            return self._generate(hits)  # the generation guards answer it (a polite refusal)
        spec = self.domain.intents.get(parse.intent or "")
        bare = not confident or parse.intent in _FORM_NEUTRAL or self._only_values(parse)
        form = self._form_for(parse.entities) if bare else None
        if form is not None:  # a bare order number: what it is for is the form that needs only it
            return self._start_form(session, form, parse)
        if self._keyword_query(parse, spec, hits):
            buttons = self._topic_buttons(session, parse, hits)
            if len(buttons) >= 2:
                return Action(kind="clarify", name="clarify", understood=False,
                              replies=[self._say(session, "utter_clarify", buttons=buttons)])
        if not confident and is_short_answer(parse.text) and len(self._titled(parse)) >= 2:
            # an unsure bare topic ("my order") that names several things the bot does: ask which
            buttons = self._topic_buttons(session, parse, hits)
            return Action(kind="clarify", name="clarify", understood=False,
                          replies=[self._say(session, "utter_clarify", buttons=buttons)])
        if confident and spec is not None:
            return self._intent(session, parse, spec, hits)
        if self._compound(parse, hits):
            return self._generate(hits)
        if hits and hits[0].score >= self.t.faq_strong:
            return self._faq(session, hits[0])
        if parse.intent == OOS and spec is not None and parse.confidence >= self.t.intent:
            return self._failed(session, self._respond(session, spec.response or "utter_out_of_scope",
                                                       "out_of_scope"))
        if self._can_generate(hits):
            return self._generate(hits)
        return self._fallback(session, parse, hits)

    def while_waiting(self, session: Session, parse: Parse | None, hits: list[Hit],
                      available: bool) -> Action:
        """A message while the conversation waits for a person (nobody has taken it yet): an
        e-mail address is kept for follow-up, a question the FAQ answers well is answered, and
        anything else is acknowledged; while nobody is available the reply asks for an address."""
        reason = session.handoff_reason
        email = EMAIL.search(parse.text) if parse is not None and not parse.text.startswith("/") else None
        if email:
            session.contact_email = email.group(0)
            return Action(kind="handoff", name="pending:email", handoff_reason=reason,
                          replies=[self._say(session, "utter_email_saved", {"email": email.group(0)})])
        hits = self.rerank(parse, hits) if parse is not None else hits
        ask = not available and not session.contact_email
        pending = self._say(session, "utter_handoff_pending_ask_email" if ask else "utter_handoff_pending")
        hit = self._clear_answer(parse, hits)
        if hit is None:
            return Action(kind="handoff", name="pending", handoff_reason=reason, replies=[pending])
        answer = self._faq(session, hit)
        answer.replies.append(self._say(session, "utter_ask_email" if ask else "utter_still_in_queue"))
        return answer

    def confident(self, parse: Parse) -> bool:
        """The intent is read surely enough to act on."""
        return parse.intent is not None and not parse.out_of_scope and parse.confidence >= self.t.intent

    def reads_alone(self, parse: Parse) -> bool:
        """The intent is read surely, and as a request: a question is never a bare "yes", "no" or
        "thanks" ("and does it cost anything" is no denial)."""
        return self.confident(parse) and not (parse.intent in _NOT_OFFERED and is_question(parse.text))

    def _clear_answer(self, parse: Parse | None, hits: list[Hit]) -> Hit | None:
        """The FAQ entry that clearly answers the message (asked while waiting, or inside a form)."""
        if parse is None or not hits:
            return None
        if parse.intent == FAQ_PAYLOAD_INTENT or hits[0].score >= self.t.faq_strong:
            return hits[0]
        spec = self.domain.intents.get(parse.intent or "")
        faq_intent = self.confident(parse) and spec is not None and spec.action == "faq"
        if faq_intent and hits[0].score >= self.t.faq_for_faq_intent:
            return hits[0]
        return None

    def rerank(self, parse: Parse, hits: list[Hit]) -> list[Hit]:
        """FAQ hits in the retriever's order plus a bonus for entries whose phrasings the intent model
        reads as it reads the message (the dot product of the two intent distributions); each hit
        keeps its cosine as its score (the thresholds')."""
        weight = self.t.entry_intent_weight
        if (not weight or not self.entry_intents or parse.out_of_scope or len(hits) < 2
                or parse.text.startswith("/")):
            return hits
        asked = {r.name: r.confidence for r in parse.ranking}

        def key(h: Hit) -> float:
            base = h.rank if h.rank is not None else h.score
            profile = self.entry_intents.get(h.entry_id, {})
            return base + weight * sum(p * profile.get(name, 0.0) for name, p in asked.items())
        return sorted(hits, key=key, reverse=True)

    # --- was the answer right? ------------------------------------------------------------
    def _answered(self, session: Session, action: Action) -> None:
        """After an answer: the same FAQ entry as the last answer means the customer asked again
        (that answer did not help); with `confirm_answers` the bot asks whether this one did."""
        entry = action.faq_hit.entry_id if action.faq_hit else None
        if entry is not None and entry == session.answered_entry and action.feedback is None:
            action.feedback = "repeated"
        session.answered_entry = entry
        if self.confirm_answers and not session.active_form:  # inside a form the slot's question stands
            session.offer = "confirm"
            action.replies.append(self._say(session, "utter_ask_helpful"))

    def _feedback(self, session: Session, parse: Parse, confident: bool) -> Action | None:
        """The customer's answer to "Did that answer your question?"; None when they went on
        with something else (a new question is handled as usual)."""
        sure = confident or parse.text.startswith("/")
        if sure and parse.intent in ("affirm", "thank_you"):
            session.answered_entry = None
            return self._ok(Action(kind="respond", name="feedback:yes", feedback="yes",
                                   replies=[self._say(session, "utter_glad_it_helped")]), session)
        if sure and parse.intent == "deny":
            session.offer = "handoff"
            return Action(kind="clarify", name="feedback:no", feedback="no", understood=False,
                          replies=[self._say(session, "utter_sorry_it_did_not_help")])
        return None

    def unaddressed(self, session: Session, words: list[str]) -> Action:
        """Instead of an answer whose FAQ entry never addresses what was asked ("student" in "is
        there a student discount?"): say so (naming the topic when known), and offer a person."""
        session.answered_entry = None
        session.offer = "handoff"
        session.failures = 0
        reply = (self._say(session, "utter_no_answer", {"topic": ", ".join(words[:2])}) if words
                 else self._say(session, "utter_generation_unsure"))
        return Action(kind="clarify", name="unaddressed", understood=False, replies=[reply])

    def known_unanswered(self, hits: list[Hit]) -> bool:
        """The message is about as near to a question the FAQ marks unanswered as to any phrasing of
        the entries found (`unanswered_margin`), or the unanswered head reads it as one of those
        questions (`unanswered_head`)."""
        if not hits:
            return False
        margin, head = self.t.unanswered_margin, self.t.unanswered_head
        near = hits[0].near_miss
        if margin is not None and near is not None and near >= max(h.score for h in hits) + margin:
            return True
        return head is not None and hits[0].unanswered_p is not None and hits[0].unanswered_p >= head

    def reply_language(self, session: Session) -> str:
        """The language the bot answers this conversation in: the customer's when it is served
        (the domain falls back to its own language where a translation lacks a response), else
        the default language."""
        language = session.language
        if language and (not self.languages or language in self.languages):
            return language
        return self.default_language

    def _say(self, session: Session, name: str, values: dict[str, str] | None = None,
             buttons: list[Button] | None = None) -> Reply:
        return self.domain.render(name, values, self.rng, buttons=buttons,
                                  language=self.reply_language(session))

    def _unsupported_language(self, parse: Parse) -> bool:
        return bool(self.languages and parse.language and not parse.text.startswith("/")
                    and parse.language not in self.languages)

    # --- intents -------------------------------------------------------------------------
    def _intent(self, session: Session, parse: Parse, spec: IntentSpec, hits: list[Hit]) -> Action:
        intent = parse.intent or ""
        if spec.action == "faq":
            if self._compound(parse, hits):
                return self._generate(hits)
            if hits and hits[0].score >= self.t.faq_for_faq_intent:
                return self._faq(session, hits[0])
            if self._can_generate(hits):
                return self._generate(hits)
            return self._fallback(session, parse, hits)
        if spec.action == "form":
            hit = hits[0] if hits else None
            if hit is not None and self._answers_instead_of_form(parse, intent, hit):
                return self._faq(session, hit)
            return self._start_form(session, spec.form or "", parse)
        if spec.action == "handoff":
            if hits and _ASKS_WHEN.search(parse.text) and hits[0].score >= self.t.faq_for_faq_intent:
                return self._faq(session, hits[0])  # when people are there, not a request for one now
            return self._handoff(session, spec.reason or intent)
        if spec.action == "stop":
            return self._ok(self._respond(session, "utter_nothing_to_stop", intent), session)
        if intent == OOS:
            return self._failed(session, self._respond(session, spec.response or "utter_out_of_scope",
                                                       intent))
        return self._ok(self._respond(session, spec.response or "utter_anything_else", intent), session)

    def _faq(self, session: Session, hit: Hit) -> Action:
        session.failures = 0
        replies = [Reply(text=hit.answer)]
        wanted = session.language or self.default_language
        if wanted != self.default_language and hit.language != wanted:  # no translation of this entry
            replies.insert(0, self._say(session, "utter_answer_in_default_language"))
        return Action(kind="faq_answer", name=hit.entry_id, faq_hit=hit, replies=replies)

    def _handoff(self, session: Session, reason: str) -> Action:
        session.handoff = True
        session.handoff_reason = reason
        session.active_form = session.requested_slot = None
        session.failures = 0
        return Action(kind="handoff", name=reason, handoff_reason=reason,
                      replies=[self._say(session, "utter_handoff")])

    # --- generated answers -----------------------------------------------------------------
    def _can_generate(self, hits: list[Hit]) -> bool:
        return self.generative and bool(hits) and hits[0].score >= self.t.generate_min

    def _compound(self, parse: Parse, hits: list[Hit]) -> bool:
        """A question in several parts ("is delivery free and how long does it take?"): one FAQ
        entry rarely answers all of it, so it is composed from several."""
        return (self._can_generate(hits) and not parse.text.startswith("/")
                and len(question_parts(parse.text)) > 1)

    @staticmethod
    def _generate(hits: list[Hit]) -> Action:
        return Action(kind="generate", name="pending", faq_hit=hits[0] if hits else None)

    def after_generation(self, session: Session, result: GenerationOutcome, hits: list[Hit],
                         parse: Parse | None = None) -> Action:
        action = self._after_generation(session, result, hits, parse)
        if action.answered:
            self._answered(session, action)
        else:
            session.answered_entry = None
        return action

    def _after_generation(self, session: Session, result: GenerationOutcome, hits: list[Hit],
                          parse: Parse | None) -> Action:
        """The action for a finished generation (a `GenerationOutcome`): the grounded answer with its
        sources line; the safe "not sure" offer of a person; a refusal; or, when the generator is
        missing, slow or failing, the best FAQ hit or a hand-off offer."""
        answer = getattr(result, "answer", None)
        faq_hit = hits[0] if hits else None
        if result.status == "answered" and answer is not None:
            session.failures = 0
            sources = [Source(id=p.id, title=p.title) for p in answer.sources]
            text = answer.text
            if sources:
                line = self._say(session, "utter_generation_sources",
                                 {"sources": "; ".join(s.title for s in sources)})
                text = f"{text}\n\n{line.text}"
            return Action(kind="generate", name="answered", faq_hit=faq_hit,
                          replies=[Reply(text=text, sources=sources)])
        if result.status == "refused" and result.reason == "injection":
            return self._failed(session, Action(
                kind="generate", name="refused:injection",
                replies=[self._say(session, "utter_generation_injection")]))
        if result.status == "refused":
            return self._failed(session, self._respond(session, "utter_out_of_scope", "out_of_scope"))
        asked = parse is None or not parse.out_of_scope or is_question(parse.text)  # not "blorp zizzle"
        if result.status == "unsure" and result.reason == "empty" and faq_hit is not None \
                and faq_hit.score >= self.t.faq_fallback and asked:
            # the composer found no sentence to quote, but one entry is close to a question: its
            # answer (the coverage checks still judge it) rather than a hand-off offer
            return self._faq(session, faq_hit)
        if result.status == "unsure":
            session.failures = 0
            session.offer = "handoff"
            return Action(kind="generate", name=f"unsure:{result.reason}", understood=False, faq_hit=faq_hit,
                          replies=[self._say(session, "utter_generation_unsure")])
        if faq_hit is not None and faq_hit.score >= self.t.faq_for_faq_intent:  # degraded
            return self._faq(session, faq_hit)
        session.failures = 0
        session.offer = "handoff"
        return Action(kind="clarify", name="offer_handoff", understood=False,
                      replies=[self._say(session, "utter_offer_handoff")])

    # --- forms ---------------------------------------------------------------------------
    def _start_form(self, session: Session, name: str, parse: Parse) -> Action:
        form = self.domain.forms[name]
        session.active_form, session.form_retries = name, 0
        for slot in form.slots:
            session.slots.pop(slot.name, None)
            given = parse.entities.get(slot.name)
            value = slot.extract(given) if given else None
            if value:
                session.slots[slot.name] = value
        session.failures = 0
        return self._next_slot(session, name)

    def _next_slot(self, session: Session, name: str) -> Action:
        form = self.domain.forms[name]
        missing = next((s for s in form.slots if s.name not in session.slots), None)
        if missing is not None:
            session.requested_slot = missing.name
            return Action(kind="fill_form", name=name,
                          replies=[self._say(session, missing.ask, session.slots)])
        filled = {s.name: session.slots[s.name] for s in form.slots}
        session.active_form = session.requested_slot = None
        replies = self.actions[form.submit](self.domain, form, filled, self.reply_language(session))
        return Action(kind="fill_form", name=f"{name}:submitted", replies=replies,
                      submitted={"form": name, "slots": filled})

    def _answers_instead_of_form(self, parse: Parse, intent: str, hit: Hit) -> bool:
        """A question that an FAQ entry answers closely and the form would not: one on another
        topic ("how do I update the address linked to my account?" is not a delivery-address
        change), a neighbour of the form's own entry ("it left the warehouse, can I still cancel?"),
        or the deadline of what the form does ("until when can I change the address?")."""
        asked = is_question(_PLEASE.sub("", parse.text, count=1))  # "pls cancel my order" asks nothing
        if not self.entry_intents or parse.entities or not asked or hit.score < self.t.faq_strong:
            return False
        if self.entry_intents.get(hit.entry_id, {}).get(intent, 0.0) < 0.3:
            return True
        return hit.entry_id != self._form_entry(intent) or bool(_DEADLINE.search(parse.text))

    def _form_entry(self, intent: str) -> str | None:
        """The FAQ entry whose phrasings the intent model reads most as this form's intent: what
        the form itself does ("How do I cancel my order?" for cancel_order)."""
        if intent not in self._form_entries:
            shares = {entry: profile.get(intent, 0.0) for entry, profile in self.entry_intents.items()}
            self._form_entries[intent] = max(shares, key=shares.__getitem__) if shares else None
        return self._form_entries[intent]

    @staticmethod
    def _correction(form: FormSpec, asking: str, parse: Parse, session: Session) -> tuple[str, str] | None:
        """A new value for a slot answered before: the slot and its value. One with a pattern
        cannot be mistaken; a free-text one ("22 Baker Street") is corrected when the customer
        says so ("sorry, wrong house number, it's 221 Baker Street") and repeats a word of it."""
        for other in form.slots:
            given = parse.entities.get(other.name)
            if other.name == asking or not other.pattern or not given or other.name not in session.slots:
                continue
            value = other.extract(given)
            if value and value != session.slots[other.name]:
                return other.name, value
        if not _CORRECTING.match(parse.text):
            return None
        restated = _RESTATED.split(parse.text)[-1]
        said = set(_NAME_WORD.findall(parse.text.casefold()))
        for other in form.slots:
            before = session.slots.get(other.name)
            if other.name == asking or other.pattern or before is None:
                continue
            value = other.extract(restated)
            if value and value != before and said & set(_NAME_WORD.findall(before.casefold())):
                return other.name, value
        return None

    @staticmethod
    def _only_values(parse: Parse) -> bool:
        """The message is its entity values and nothing else ("KK-204871"): whatever intent the model
        reads into it (cancel_order, even), nothing was asked but what the number is for."""
        rest = parse.text
        for value in parse.entities.values():
            rest = rest.replace(value, " ")
        return bool(parse.entities) and not re.sub(r"[\W_]+", "", rest)

    def _form_for(self, entities: dict[str, str]) -> str | None:
        """The form the domain starts on a bare value (`on_bare_value`) that the message carries."""
        forms = [(len(f.slots), name) for name, f in self.domain.forms.items() if f.on_bare_value
                 and any(s.name in entities and s.extract(entities[s.name]) for s in f.slots)]
        return min(forms)[1] if forms else None

    def _continue_form(self, session: Session, parse: Parse, confident: bool,
                       hits: list[Hit] | None = None) -> Action | None:
        """Fill, re-ask, cancel, or return None when the customer changed the subject."""
        name = session.active_form or ""
        form = self.domain.forms.get(name)
        slot = form.slot(session.requested_slot) if form else None
        if form is None or slot is None:
            session.active_form = session.requested_slot = None
            return None
        if parse.intent == "stop" and confident:
            session.active_form = session.requested_slot = None
            return self._ok(self._respond(session, "utter_form_cancelled", "form_cancelled"), session)
        value = slot.extract(parse.text) or (
            slot.extract(parse.entities[slot.name]) if slot.name in parse.entities else None
        )
        switching = (
            confident
            and parse.intent not in _FORM_NEUTRAL
            and parse.intent not in {i for i, s in self.domain.intents.items() if s.form == name}
            and parse.intent in self.domain.intents
        )
        spec = self.domain.intents.get(parse.intent or "")
        # A short answer ("London") is the answer to the question asked, whatever topic it resembles,
        # and so is a valid answer that asks nothing, read as an FAQ topic ("14 Millbrook Lane").
        short = is_short_answer(parse.text) and not (spec is not None and spec.action == "handoff")
        statement = spec is not None and spec.action == "faq" and not is_question(parse.text)
        corrected = self._correction(form, slot.name, parse, session)
        if corrected:  # "sorry, wrong order, it's KK-318802": fixed, and the question asked again
            session.slots[corrected[0]] = corrected[1]
            return Action(kind="fill_form", name=f"{name}:corrected",
                          replies=[self._say(session, slot.ask, session.slots)])
        if value and (slot.pattern or not switching or short or statement):
            session.slots[slot.name] = value
            session.form_retries = 0
            return self._next_slot(session, name)
        asks = not switching and is_question(parse.text)
        digression = self._clear_answer(parse, hits or []) if asks else None
        if digression is not None:  # "where do I find the order number?": answer, then ask again
            answer = self._faq(session, digression)
            answer.replies.append(self._say(session, slot.ask, session.slots))
            return answer
        if switching:
            session.active_form = session.requested_slot = None
            return None
        session.form_retries += 1
        if session.form_retries >= self.t.form_retries:
            session.active_form = session.requested_slot = None
            session.offer = "handoff"
            return Action(kind="fill_form", name=f"{name}:failed", understood=False,
                          replies=[self._say(session, "utter_offer_handoff")])
        return Action(kind="fill_form", name=f"{name}:invalid", understood=False,
                      replies=[self._say(session, slot.invalid, session.slots)])

    # --- not understood ------------------------------------------------------------------
    def _fallback(self, session: Session, parse: Parse, hits: list[Hit]) -> Action:
        session.failures += 1
        if session.failures >= self.t.failures_before_handoff:
            session.failures = 0
            session.offer = "handoff"
            return Action(kind="clarify", name="offer_handoff", understood=False,
                          replies=[self._say(session, "utter_offer_handoff")])
        # Nonsense gets a request to rephrase; a vague message ("delivery") its topics offered.
        buttons = [] if self._nonsense(parse, hits) else self._topic_buttons(session, parse, hits)
        if len(buttons) < 2:
            return Action(kind="clarify", name="default", understood=False,
                          replies=[self._say(session, "utter_default")])
        return Action(kind="clarify", name="clarify", understood=False,
                      replies=[self._say(session, "utter_clarify", buttons=buttons)])

    def _keyword_query(self, parse: Parse, spec: IntentSpec | None, hits: list[Hit]) -> bool:
        """A bare topic ("delivery", "money back") that no FAQ question matches closely, or a
        question announced rather than asked ("I have a question about delivery"), read as a topic
        with answers or a form: which one is meant is asked with buttons."""
        if spec is None or spec.action not in ("faq", "form") or parse.entities:
            return False
        if self._nonsense(parse, hits):
            return False
        if is_topic_statement(parse.text):  # announced, not asked: whatever phrasing it resembles
            return True
        return not (hits and hits[0].score >= self.t.faq_strong) and is_keyword_query(parse.text)

    def _nonsense(self, parse: Parse, hits: list[Hit]) -> bool:
        """Out of scope, most like the out-of-scope class or near no FAQ entry ("blorp zizzle"):
        the ranking's runners-up are noise, so topic buttons would offer unrelated topics."""
        return parse.out_of_scope and (
            parse.intent == OOS or not hits or hits[0].score < self.t.clarify_topic_min)

    def _topic_buttons(self, session: Session, parse: Parse, hits: list[Hit]) -> list[Button]:
        """The likely intents (and the closest FAQ question) as buttons, to ask which was meant."""
        options = [
            r for r in parse.ranking
            if r.confidence >= self.t.clarify_min and r.name in self.domain.intents
            and r.name not in _NOT_OFFERED
        ][: self.t.clarify_options]
        names = [r.name for r in options]
        room = self.t.clarify_options - 1 if hits else self.t.clarify_options  # the closest question stays
        names += [name for name in self._titled(parse) if name not in names][: max(0, room - len(names))]
        language = self.reply_language(session)
        buttons = [Button(title=self.domain.title(name, language), payload=f"/{name}") for name in names]
        if hits and len(buttons) < self.t.clarify_options:
            buttons.append(Button(title=hits[0].question, payload=f'/faq{{"entry": "{hits[0].entry_id}"}}'))
        return buttons

    def _titled(self, parse: Parse) -> list[str]:
        """The intents whose button title names a word of a bare topic ("payment thing": "A payment
        problem"; "my order": "Where is my order?", "Cancel an order"), in the domain's order; none
        when the intent read surely is titled with every word of it ("cancel my order")."""
        if not is_keyword_query(parse.text):
            return []
        words = content_words(parse.text) - _VAGUE
        own = self.domain.intents.get(parse.intent or "") if self.confident(parse) else None
        if own is not None and own.title and words <= content_words(own.title):
            return []
        return [name for name, spec in self.domain.intents.items()
                if name not in _NOT_OFFERED and spec.title and words & content_words(spec.title)]

    def _failed(self, session: Session, action: Action) -> Action:
        session.failures += 1
        action.understood = False
        if session.failures >= self.t.failures_before_handoff:
            session.failures = 0
            session.offer = "handoff"
            action.replies.append(self._say(session, "utter_offer_handoff"))
        return action

    def _respond(self, session: Session, response: str, name: str) -> Action:
        return Action(kind="respond", name=name, replies=[self._say(session, response)])

    @staticmethod
    def _ok(action: Action, session: Session) -> Action:
        session.failures = 0
        return action

