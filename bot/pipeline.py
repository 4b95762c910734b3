"""Pipeline.handle(): one customer message in, the bot's replies out. The turn, nothing else."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from bot.batching import BatchKnowledge, BatchNlu, model_calls
from bot.dialogue.domain import Domain
from bot.dialogue.policy import FAQ_PAYLOAD_INTENT, Policy
from bot.handoff.service import HandoffService
from bot.inference import Busy, InferencePool
from bot.knowledge.words import shop_words, topic_words
from bot.nlu.language import LanguageDetector
from bot.nlu.model import parse_payload
from bot.observability import Metrics
from bot.pii import mask_sensitive
from bot.questions import is_closing, is_follow_up, is_question, question_parts, without_greeting
from bot.rasa.dialogue import RasaDialogue
from bot.sessions.review import ReviewLog
from bot.sessions.store import SessionStore
from bot.textsafety import InvalidText, safe_message
from bot.types import Action, ActionKind, Event, Hit, Message, Parse, Reply, Session, Turn

if TYPE_CHECKING:
    from bot.generation.service import GenerationService

log = logging.getLogger(__name__)
OnDelta = Callable[[str], Awaitable[None]]
# (question, FAQ entry id) -> the words the question asks about that the entry never addresses
Coverage = Callable[[str, str], list[str]]
# (message, its language) -> the message as the models read it: typos corrected (bot.nlu.spelling)
Spelling = Callable[[str, str | None], str]
THANK_YOU = "thank_you"  # the domain intent a closing thanks reads as (bot.questions.is_closing)


Nlu = BatchNlu


class Knowledge(BatchKnowledge, Protocol):
    def get(self, entry_id: str): ...


class Transcripts(Protocol):
    def record(self, turn: Turn, handoff: bool = False, handoff_reason: str | None = None) -> None: ...


class Pipeline:
    def __init__(self, store: SessionStore, nlu: Nlu, knowledge: Knowledge, policy: Policy,
                 domain: Domain, pool: InferencePool, metrics: Metrics,
                 transcripts: Transcripts | None = None, faq_k: int = 3,
                 handoff: HandoffService | None = None, review: ReviewLog | None = None,
                 language: LanguageDetector | None = None,
                 generation: GenerationService | None = None, max_batch: int = 16,
                 coverage: Coverage | None = None, rasa: RasaDialogue | None = None,
                 spelling: Spelling | None = None) -> None:
        self.store = store
        self.nlu = nlu
        self.knowledge = knowledge
        self.policy = policy
        self.domain = domain
        self.pool = pool
        self.metrics = metrics
        self.transcripts = transcripts
        self.faq_k = faq_k
        self.handoff = handoff
        self.review = review
        self.language = language
        self.generation = generation
        self.coverage = coverage
        self.rasa = rasa
        # A Rasa project's model reads messages as written (its entity spans index the text).
        self.spelling = spelling if rasa is None else None
        self.models = model_calls(pool, nlu, knowledge, max_batch, metrics.inference_batch)
        self.common = shop_words(getattr(knowledge, "entries", []))

    async def handle(self, msg: Message, on_delta: OnDelta | None = None) -> list[Reply]:
        """The turn. `on_delta` receives a generated answer's text as it is written (checked
        sentence by sentence); the replies returned, and stored for redelivery, are final."""
        started = time.perf_counter()
        msg = safe_message(msg)
        self._check_payload(msg)
        key = msg.dedupe_key
        async with self.store.lock(msg.conversation_id):
            cached, stored = await self.store.load(msg.conversation_id, key)
            if cached is not None:
                self.metrics.duplicates.labels(msg.channel).inc()
                return cached
            session = stored or Session(
                conversation_id=msg.conversation_id, channel=msg.channel)
            parse, action = await self._act(msg, session, on_delta)
            replies = action.replies
            # What is stored (history, redelivery cache, transcript) has card, IBAN and national ID
            # numbers masked; the models already read the message, and the caller gets `replies`.
            said, kept = mask_sensitive(msg.text or (msg.payload or "")), [masked(r) for r in replies]
            self._append(session, msg, said, parse, action.kind, kept)
            t = time.perf_counter()
            await self.store.save(session, key, kept)
            self.metrics.turn_seconds.labels("redis").observe(time.perf_counter() - t)
            turn = Turn(conversation_id=msg.conversation_id, channel=msg.channel,
                        message_id=msg.message_id, text=said,
                        parse=parse, action=action, replies=replies,
                        latency_ms=round((time.perf_counter() - started) * 1000, 2))
            await self._record(turn, session)
        self._count(turn)
        await self._review(turn)
        await self._publish(turn)
        return replies

    async def _act(self, msg: Message, session: Session, on_delta: OnDelta | None
                   ) -> tuple[Parse | None, Action]:
        """Steps 3-6: what the bot does with the message (and how it read it, if a model did)."""
        if session.handoff:
            return await self._while_waiting(msg, session)
        language = await self._detect_language(msg, session)
        understood = await self._understand_safely(msg, language, session)
        if understood is None:
            return None, await self._with_handoff(session, self._unreadable(session))
        parse, hits = understood
        parse.language = language
        if self.rasa is not None and self.rasa.handles(parse):
            # A Rasa project's rules, stories and forms decide; what they do not cover, supportbot.
            return parse, await self.rasa.respond(session, msg, parse,
                                                  lambda: self._decide(session, msg, parse, hits, on_delta))
        return parse, await self._decide(session, msg, parse, hits, on_delta)

    async def _decide(self, session: Session, msg: Message, parse: Parse, hits: list[Hit],
                      on_delta: OnDelta | None) -> Action:
        """Step 5-6 with supportbot's own policy: answer, form, generate or hand off."""
        action = self.policy.decide(session, parse, hits)
        if action.kind == "generate":  # its fallback is the best hit in the policy's order
            action = await self._generate(session, msg, parse, self.policy.rerank(parse, hits), on_delta)
        if not msg.payload:
            action = await self._check_coverage(session, msg.text, action, hits)
        return await self._with_handoff(session, action)

    async def _with_handoff(self, session: Session, action: Action) -> Action:
        if action.kind == "handoff" and self.handoff is not None:
            action.replies = await self.handoff.on_handoff(session, action.handoff_reason or "")
        return action

    async def _check_coverage(self, session: Session, text: str, action: Action, hits: list[Hit]) -> Action:
        """An answer (or a "did you mean" with topics) to a question that the FAQ marks unanswered
        (the message is nearer to one of its `unanswered` questions than to the entry), or an
        answer to one question (not a report: "you sent me someone else's teapot") whose entry
        never addresses a word it asks about, is replaced by the policy's "no answer"."""
        if not is_question(text):
            return action
        asked = action.name in ("clarify", "default") and not action.understood  # topics offered
        hit = action.faq_hit if action.answered else hits[0] if asked and hits else None
        if hit is None:
            return action
        if self.policy.known_unanswered([hit, *hits]):
            # named by a word the message shares with that question and the FAQ never uses
            # ("student"); none found (or Chinese text): "I'm not sure"
            words = topic_words(text, hit.near_miss_question or "", self.common)
            return self.policy.unaddressed(session, words)
        if self.coverage is None or not action.answered or len(question_parts(text)) > 1:
            return action
        try:
            gaps = await self.pool.run(self.coverage, text, hit.entry_id)
        except Busy:
            raise
        except Exception:  # the check failed: the answer stands
            self.metrics.model_failures.labels("coverage").inc()
            log.warning("the coverage check failed", exc_info=True)
            return action
        return self.policy.unaddressed(session, gaps) if gaps else action

    async def _while_waiting(self, msg: Message, session: Session) -> tuple[Parse | None, Action]:
        """A message in a handed-off conversation: silence once an agent has it (they reply);
        until then the bot acknowledges it, answers what the FAQ answers and asks for an e-mail
        address while nobody is available."""
        if self.handoff is not None and not await self.handoff.bot_may_answer(session):
            return None, Action(kind="handoff", name="pending:agent", handoff_reason=session.handoff_reason)
        available = self.handoff is None or await self.handoff.agents_available()
        language = await self._detect_language(msg, session)
        understood = await self._understand_safely(msg, language, session)
        parse, hits = understood if understood is not None else (None, [])
        if parse is not None:
            parse.language = language
        return parse, self.policy.while_waiting(session, parse, hits, available)

    async def _publish(self, turn: Turn) -> None:
        """Step 8: the finished turn, live, to the console and whoever listens."""
        try:
            event = turn.model_dump(mode="json")
            if event.get("parse"):  # the live event carries what is stored, not what was typed
                event["parse"]["text"] = turn.text
            await self.store.publish({"type": "turn", **event})
        except Exception:  # the turn is saved; live listeners catch up from the transcript
            self.metrics.degraded.labels("pubsub").inc()
            log.warning("publishing a turn failed", exc_info=True)

    def _check_payload(self, msg: Message) -> None:
        """A payload is a button press: only one this domain (or an FAQ entry) can offer, never
        together with text (which one would be the customer's?)."""
        if msg.payload is None:
            return
        if msg.text:
            raise InvalidText("text_with_payload", "send either text or a button payload, not both")
        parsed = parse_payload(msg.payload)
        if parsed is None or parsed.intent is None:
            raise InvalidText("invalid_payload", "a payload is `/intent` as a button carries it")
        if parsed.intent == FAQ_PAYLOAD_INTENT:
            entry = parsed.entities.get("entry", "")
            if set(parsed.entities) == {"entry"} and self.knowledge.get(entry) is not None:
                return
        elif self.domain.offers(parsed.intent, parsed.entities, msg.payload):
            return
        elif self.rasa is not None and self.rasa.agent.knows(parsed.intent):
            return  # a Rasa project's `/intent{...}`: Rasa takes them, its forms validate the values
        raise InvalidText("invalid_payload", "no button of this assistant carries that payload")

    async def _understand_safely(self, msg: Message, language: str | None, session: Session
                                 ) -> tuple[Parse, list[Hit]] | None:
        """The models' reading of the message, or None when a model failed on it alone (its batch
        neighbours were already retried without it): the customer gets a polite reply, not a 500."""
        try:
            return await self._understand(msg, language, session)
        except Busy:
            raise
        except Exception:
            self.metrics.model_failures.labels("understanding").inc()
            log.exception("a model failed on one message", extra={"conversation_id": msg.conversation_id})
            return None

    def _unreadable(self, session: Session) -> Action:
        name = "utter_technical_problem" if "utter_technical_problem" in self.domain.responses \
            else "utter_default"
        return Action(kind="respond", name="model_failed", understood=False,
                      replies=[self.domain.render(name, language=session.language)])

    async def _understand(self, msg: Message, language: str | None = None, session: Session | None = None
                          ) -> tuple[Parse, list[Hit]]:
        payload = parse_payload(msg.payload) if msg.payload else None
        if payload is not None:
            hits: list[Hit] = []
            spec = self.domain.intents.get(payload.intent or "")
            if spec is not None and spec.action == "faq" and not payload.entities:
                # A topic button ("Delivery costs" offered for "delivery"): its title, with what the
                # customer wrote before, is the question the FAQ answers.
                asked = next((e.text for e in reversed(session.history)
                              if e.role == "user" and not e.text.startswith("/")), "") if session else ""
                query = f"{asked} {self.domain.title(payload.intent or '', language)}".strip()
                return payload, await self.models.search(query, self.faq_k, language)
            if payload.intent == FAQ_PAYLOAD_INTENT:
                entry = self.knowledge.get(payload.entities.get("entry", ""))
                if entry is not None:
                    localized = entry.localized(language) if language else None
                    question, answer = localized or (entry.question, entry.answer)
                    hits = [Hit(entry_id=entry.id, question=question, answer=answer,
                                category=entry.category, score=1.0, matched=entry.question,
                                language=language if localized else None)]
            return payload, hits
        t = time.perf_counter()
        # A Rasa project's model learned its own greetings: it reads the message as written.
        read = self._reading(msg.text, language)
        parse = await self.models.parse(msg.text if self.rasa else without_greeting(read), language)
        # The policy reads the corrected text too ("wher is ..." asks), except inside a form: a slot
        # keeps what the customer typed ("14 Kestral Lane" is an address, not a typo). The turn
        # always keeps msg.text.
        parse.text = msg.text if session is not None and session.active_form else read
        self.metrics.turn_seconds.labels("nlu").observe(time.perf_counter() - t)
        parse.entities.update(self.domain.extract_entities(msg.text))
        if self._closes(msg.text, parse, session):
            parse = parse.model_copy(update={"intent": THANK_YOU, "confidence": 1.0, "out_of_scope": False})
        t = time.perf_counter()
        hits = await self.models.search(read, self.faq_k, language)
        self.metrics.turn_seconds.labels("retrieval").observe(time.perf_counter() - t)
        previous = _previous_question(session) if session is not None and not self.rasa else None
        if previous is not None and session is not None and is_follow_up(msg.text):
            parse, hits = await self._in_context(parse, hits, previous, session, language)
        if hits:
            self.metrics.faq_top_score.observe(hits[0].score)
        return parse, hits

    async def _in_context(self, parse: Parse, hits: list[Hit], previous: str, session: Session,
                          language: str | None) -> tuple[Parse, list[Hit]]:
        """A follow-up ("and if I pay for the faster option?") read together with the previous
        question: its intent when the message alone was unclear, and its FAQ hits when they match
        better (leaving out the entry just answered, unless the message alone points to it: a
        follow-up mostly asks something else)."""
        query = f"{previous} {parse.text}"
        found = await self.models.search(query, self.faq_k + 1, language)
        alone = hits[0].entry_id if hits else None
        last = session.answered_entry
        kept = [h for h in found if h.entry_id != last or h.entry_id == alone][: self.faq_k]
        answered = max((h.score for h in found if h.entry_id == last != alone), default=0.0)
        if kept and kept[0].near_miss is not None and answered >= kept[0].near_miss:
            # the question just answered explains the closeness, not a question the FAQ leaves open
            kept = [h.model_copy(update={"near_miss": None, "near_miss_question": None, "unanswered_p": None})
                    for h in kept]
        if kept and (not hits or kept[0].score > hits[0].score):
            hits = kept
        if self.policy.reads_alone(parse):
            return parse, hits
        context = await self.models.parse(query, language)  # only when the message alone is unclear
        if self.policy.reads_alone(context):
            parse = parse.model_copy(update={"intent": context.intent, "confidence": context.confidence,
                                             "ranking": context.ranking, "out_of_scope": False})
        return parse, hits

    async def _generate(self, session: Session, msg: Message, parse: Parse, hits: list[Hit],
                        on_delta: OnDelta | None) -> Action:
        """Step 6 for `generate`: a grounded answer from the FAQ passages, or the policy's fallback
        (best FAQ hit / hand-off offer) when there is no generator or it failed."""
        from bot.generation.service import GenerationResult

        t = time.perf_counter()
        if self.generation is None:
            result = GenerationResult("degraded", "unavailable")
            self.metrics.generation.labels("degraded", "unavailable").inc()
            self.metrics.generation_degraded.labels("unavailable").inc()
        else:
            history = [(e.role, e.text.split("\n\n")[0]) for e in session.history
                       if e.role in ("user", "bot")]
            question = self._reading(msg.text, session.language)
            result = await self.generation.answer(question, history, on_delta, msg.conversation_id)
        self.metrics.turn_seconds.labels("generation").observe(time.perf_counter() - t)
        return self.policy.after_generation(session, result, hits, parse)

    def _closes(self, text: str, parse: Parse, session: Session | None) -> bool:
        """Thanks after something that worked out reads as thanks ("ok found it in spam, thanks" is
        no order-status request; "ok I'll ask next door first, thanks", asked for an order number,
        leaves the form), unless it may be the answer to a form's question."""
        return (self.rasa is None and THANK_YOU in self.domain.intents and not parse.entities
                and parse.intent != THANK_YOU and not self._may_answer_form(text, session)
                and is_closing(text))

    def _may_answer_form(self, text: str, session: Session | None) -> bool:
        """The message may be the answer to the form's question: a free-text slot takes any words
        ("ok thanks" could be a city); a patterned one (an order number) only what matches it."""
        form = self.domain.forms.get(session.active_form or "") if session is not None else None
        slot = form.slot(session.requested_slot) if form is not None and session is not None else None
        if slot is None:
            return False
        return not slot.pattern or slot.extract(text) is not None

    def _reading(self, text: str, language: str | None) -> str:
        """The message as the models read it (typos corrected); as written when correcting fails."""
        if self.spelling is None:
            return text
        try:
            return self.spelling(text, language)
        except Exception:
            self.metrics.model_failures.labels("spelling").inc()
            log.warning("spelling correction failed", exc_info=True)
            return text

    async def _detect_language(self, msg: Message, session: Session) -> str | None:
        """Each message's language; short or unclear ones keep the conversation's. In the pool like
        every model call: lingua loads its language models on first use (seconds)."""
        if self.language is None or not msg.text:
            return session.language
        try:
            guess = await self.pool.run(self.language.detect, msg.text, session.language)
        except Busy:
            raise
        except Exception:  # the detector failed on this text: keep the conversation's language
            self.metrics.model_failures.labels("language").inc()
            log.warning("language detection failed", exc_info=True)
            return session.language
        if guess.reliable or session.language is None:
            session.language = guess.language
        return guess.language

    @staticmethod
    def _append(session: Session, msg: Message, said: str, parse: Parse | None, kind: ActionKind,
                replies: list[Reply]) -> None:
        """The turn into the session's history, as it may be stored: `said` and `replies` come
        masked, and so are the form slots (nothing later needs those numbers)."""
        now = time.time()
        session.slots = {name: mask_sensitive(value) for name, value in session.slots.items()}
        session.history.append(Event(
            role="user", text=said, at=msg.received_at,
            message_id=msg.message_id, intent=parse.intent if parse else None,
            confidence=parse.confidence if parse else None,
            language=parse.language if parse else None))
        for reply in replies:
            session.history.append(Event(role="bot", text=reply.text, at=now, action=kind,
                                         buttons=reply.buttons))
        session.turns += 1
        session.updated_at = now

    async def _record(self, turn: Turn, session: Session) -> None:
        if self.transcripts is None:
            return
        try:
            await asyncio.to_thread(self.transcripts.record, turn, session.handoff,
                                    session.handoff_reason)
        except Exception:  # Redis holds the conversation; the transcript gap is logged and counted
            self.metrics.degraded.labels("transcripts").inc()
            log.exception("writing the transcript failed",
                          extra={"conversation_id": turn.conversation_id})

    async def _review(self, turn: Turn) -> None:
        """Keep what the bot did not understand for labeling; losing one costs a label, not a turn."""
        if self.review is None:
            return
        try:
            if await self.review.add(turn):
                self.metrics.review_items.inc()
        except Exception:
            self.metrics.degraded.labels("review").inc()
            log.warning("recording a message for review failed", exc_info=True)

    def _count(self, turn: Turn) -> None:
        self.metrics.turns.labels(turn.channel, turn.action.kind).inc()
        self.metrics.turn_seconds.labels("total").observe(turn.latency_ms / 1000)
        if turn.parse and turn.parse.intent:
            self.metrics.intents.labels(turn.parse.intent).inc()
            self.metrics.intent_confidence.labels(turn.parse.intent).observe(turn.parse.confidence)
        if turn.action.kind == "faq_answer" and turn.action.faq_hit is not None:
            self.metrics.faq_hits.labels(turn.action.faq_hit.category or "none").inc()
        if turn.action.kind == "handoff" and not turn.action.name.startswith("pending"):
            self.metrics.handoffs.labels(turn.action.handoff_reason or "unknown").inc()


def masked(reply: Reply) -> Reply:
    """A reply as stored: it may echo what the customer typed (a confirmation of the form's slots)."""
    text = mask_sensitive(reply.text)
    return reply if text == reply.text else reply.model_copy(update={"text": text})


def _previous_question(session: Session) -> str | None:
    """The customer's last typed message before this one (a button press is not a question)."""
    return next((e.text for e in reversed(session.history)
                 if e.role == "user" and e.text and not e.text.startswith("/")), None)
