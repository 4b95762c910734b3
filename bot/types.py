"""Plain data that crosses module boundaries: messages in, replies out, the parse, the session."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field


class Button(BaseModel):
    title: str
    payload: str


class Source(BaseModel):
    """An FAQ entry a generated answer rests on."""

    id: str
    title: str


class Reply(BaseModel):
    text: str
    buttons: list[Button] = Field(default_factory=list)
    sources: list[Source] = Field(
        default_factory=list, description="Generated answers: the FAQ entries cited (the text ends with "
                                          "the rendered sources line).")
    image: str | None = Field(None, description="Rasa projects: an image URL the response carries.")
    custom: dict[str, Any] | None = Field(
        None, description="Rasa projects: a response's `custom` payload (or an action's json_message).")
    response: str | None = Field(None, description="Rasa projects: the domain response this reply came from.")


class Message(BaseModel):
    """One normalized inbound message, whatever channel it came from."""

    channel: str
    conversation_id: str
    message_id: str
    text: str = ""
    payload: str | None = None
    sender_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    received_at: float = Field(default_factory=time.time)

    @property
    def dedupe_key(self) -> str:
        return f"{self.channel}:{self.conversation_id}:{self.message_id}"


class IntentScore(BaseModel):
    name: str
    confidence: float


class Parse(BaseModel):
    text: str
    intent: str | None
    confidence: float
    ranking: list[IntentScore] = Field(default_factory=list)
    out_of_scope: bool = False
    entities: dict[str, str] = Field(default_factory=dict)
    # Rasa's entity dicts (entity, value, start, end, extractor, confidence_entity...) a model found.
    spans: list[dict[str, Any]] = Field(default_factory=list)
    language: str | None = None  # ISO 639-1 of the message (or the conversation's, when unclear)


class Hit(BaseModel):
    entry_id: str
    question: str
    answer: str
    language: str | None = None  # the answer's language when a translation was used
    category: str
    score: float
    matched: str = ""
    rank: float | None = None  # what the retriever ordered by (cosine + entry head); None: the score
    # The message's cosine with the nearest question the FAQ marks unanswered, and that question.
    near_miss: float | None = None
    near_miss_question: str | None = None
    # How likely the message is one of the questions the FAQ leaves open (knowledge/ranker.py).
    unanswered_p: float | None = None


Feedback = Literal["yes", "no", "repeated"]
ActionKind = Literal["respond", "fill_form", "faq_answer", "clarify", "handoff", "generate"]


class Action(BaseModel):
    kind: ActionKind
    name: str = ""
    replies: list[Reply] = Field(default_factory=list)
    faq_hit: Hit | None = None
    handoff_reason: str | None = None
    understood: bool = True
    submitted: dict[str, Any] | None = None
    # What this turn says about the bot's previous answer (bot.resolution reads it).
    feedback: Feedback | None = None

    @property
    def answered(self) -> bool:
        """A factual answer: an FAQ entry's, or a composed answer the guards let through."""
        return self.kind == "faq_answer" or (self.kind, self.name) == ("generate", "answered")


class Attachment(BaseModel):
    """An image the customer sent, as a history entry names it (the bytes live in storage)."""

    id: str
    content_type: str
    width: int
    height: int


class Event(BaseModel):
    """One entry of a conversation's history, kept in the session and in transcripts."""

    role: Literal["user", "bot", "agent", "system"]
    text: str
    at: float = Field(default_factory=time.time)
    message_id: str | None = None
    intent: str | None = None
    confidence: float | None = None
    action: str | None = None
    buttons: list[Button] = Field(default_factory=list)
    agent: str | None = None
    language: str | None = None
    attachment: Attachment | None = None  # a customer's photo (the event's text is empty)


class Session(BaseModel):
    conversation_id: str
    channel: str = "web"
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    slots: dict[str, str] = Field(default_factory=dict)
    active_form: str | None = None
    requested_slot: str | None = None
    form_retries: int = 0
    failures: int = 0
    handoff: bool = False
    handoff_reason: str | None = None
    offer: str | None = None
    agent: str | None = None
    language: str | None = None  # the customer's language, from their clear messages
    handoff_at: float | None = None
    contact_email: str | None = None  # left by the customer for follow-up while nobody was there
    answered_entry: str | None = None  # the FAQ entry of the bot's last answer: asked again?
    # An agent closed the conversation: the widget asks for a 1-5 rating (of this agent) until given.
    rating_requested: bool = False
    rating_agent: str | None = None
    history: list[Event] = Field(default_factory=list)
    turns: int = 0
    sender_id: str | None = None  # the channel's id of the customer (a Rasa tracker's sender_id)
    rasa_events: list[dict[str, Any]] = Field(
        default_factory=list, description="A Rasa project's tracker events, in Rasa's JSON shapes.")


class Turn(BaseModel):
    """What one handled message produced; published and written to the transcript store."""

    conversation_id: str
    channel: str
    message_id: str
    text: str
    parse: Parse | None
    action: Action
    replies: list[Reply]
    latency_ms: float
    at: float = Field(default_factory=time.time)
