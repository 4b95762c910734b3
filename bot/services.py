"""Build every part of the bot once, from Settings, and tear it down again.

The web app, the terminal chat and the tests all start here, so each runs the same pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.assets import serving_embedder
from bot.background import cancel_and_wait
from bot.config import Settings
from bot.dialogue.actions import CsvOrderBook, default_actions
from bot.dialogue.domain import Domain
from bot.dialogue.policy import Policy
from bot.encoders.manifest import Manifest
from bot.encoders.sharing import current_runtimes, runtimes, shared_embedder
from bot.entry_intents import entry_intents
from bot.generation import create_generator
from bot.generation.base import Generator
from bot.generation.guard import GroundingChecker, PiiMasker
from bot.generation.service import GenerationService
from bot.handoff.agents import AgentStore
from bot.handoff.attachments import AttachmentService
from bot.handoff.console_sessions import ConsoleSessions, RedisConsoleSessions
from bot.handoff.hours import BusinessHours
from bot.handoff.queue import HandoffQueue, RedisHandoffQueue
from bot.handoff.service import HandoffService
from bot.inference import InferencePool
from bot.knowledge.coverage import CoverageCheck
from bot.knowledge.embedder import Embedder, SharedEmbedder, TextEmbedder, TokenEmbedder, load_embedder
from bot.knowledge.retriever import EmptyKnowledgeBase, KnowledgeBase, LanguageRoutedKnowledgeBase
from bot.nlu.language import LanguageDetector
from bot.nlu.model import EntityTaggedModel, IntentModel, LanguageRoutedIntentModel
from bot.observability import Metrics
from bot.pipeline import Coverage, Pipeline, Spelling
from bot.rasa.action_server import ActionServer
from bot.rasa.agent import RasaAgent
from bot.rasa.dialogue import RasaDialogue, to_message
from bot.rasa.policies import PolicyEnsemble
from bot.rasa.project import RasaProject
from bot.sessions.counters import RedisWindowCounter
from bot.sessions.embedded import EmbeddedRedis
from bot.sessions.review import ReviewLog
from bot.sessions.store import RedisSessionStore, connect
from bot.storage import rollup
from bot.storage.agents import AgentRecords
from bot.storage.attachments import AttachmentRecords
from bot.storage.blobs import attachment_store
from bot.storage.db import TranscriptStore, make_engine, migrate

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from bot.encoders.shared import SharedEncoder
    from bot.storage.db import Engine  # SQLAlchemy's, named through storage (the one SQL owner)

log = logging.getLogger(__name__)


Nlu = IntentModel | LanguageRoutedIntentModel | EntityTaggedModel
Knowledge = KnowledgeBase | LanguageRoutedKnowledgeBase | EmptyKnowledgeBase
Models = tuple[Nlu, Knowledge]


@dataclass
class Services:
    settings: Settings
    domain: Domain
    nlu: Nlu
    knowledge: Knowledge
    store: RedisSessionStore
    transcripts: TranscriptStore
    pipeline: Pipeline
    metrics: Metrics
    pool: InferencePool
    redis_url: str
    queue: HandoffQueue
    handoff: HandoffService
    agents: AgentStore
    review: ReviewLog
    console_sessions: ConsoleSessions  # the console's log-ins (bot/handoff/console_sessions.py)
    counters: RedisWindowCounter  # the rate limits' fixed windows (bot/web/ratelimit.py's Limiter)
    generation: GenerationService | None = None
    rasa: RasaDialogue | None = None  # a Rasa project's dialogue (settings.rasa.project)
    attachments: AttachmentService | None = None  # customers' photos (bot/handoff/attachments.py)


def coverage_check(settings: Settings, knowledge: Knowledge) -> Coverage | None:
    """Whether an answer's FAQ entry addresses what was asked (bot.knowledge.coverage), on the FAQ
    encoder's token vectors; None when switched off or the encoder has none (the standalone ONNX
    int8 embedder; the shared graph has them)."""
    margin = settings.thresholds.coverage_margin
    encoder = getattr(knowledge, "embedder", None)
    if margin is None or not isinstance(encoder, TokenEmbedder):
        return None
    check = CoverageCheck(encoder.encode_tokens, list(knowledge.entries), margin=margin)

    def unaddressed(text: str, entry_id: str) -> list[str]:
        entry = knowledge.get(entry_id)
        return check.uncovered(text, entry) if entry is not None else []
    return unaddressed


def spelling(settings: Settings, knowledge: Knowledge) -> Spelling | None:
    """Typos corrected before the models read an English message (bot.nlu.spelling), the FAQ's
    words counting as known; None when switched off."""
    if not settings.models.spelling:
        return None
    from bot.nlu.spelling import SpellingCorrector

    corrector = SpellingCorrector.from_texts(t for e in knowledge.entries for t in [*e.phrasings, e.answer])

    def correct(text: str, language: str | None) -> str:
        return corrector.correct(text) if corrector.applies(language or settings.default_language) else text
    return correct


def shared_encoder(settings: Settings) -> SharedEncoder | None:
    """One pass per message for the intent model and the FAQ embedder (bot.encoders.shared) when
    `shared_embedder` allows it; None otherwise (each then runs its own pass)."""
    manifest = Manifest.load(settings.model_dir)
    embedder = shared_embedder(settings, manifest)
    if embedder is None:
        return None
    from bot.encoders.shared import SharedEncoder  # torch: imported when a model is loaded

    try:
        return SharedEncoder.load(settings.model_dir, manifest, embedder, runtimes(settings, manifest)[0],
                                  settings.inference.torch_threads)
    except ValueError as exc:
        log.warning("no shared pass for the intent model and the FAQ embedder: %s", exc)
        return None


def load_models(settings: Settings) -> Models:
    if settings.inference.torch_threads:
        import torch

        torch.set_num_threads(settings.inference.torch_threads)
    searches = settings.rasa.project is None or settings.knowledge_base.is_dir()
    shared = shared_encoder(settings) if searches else None
    default = IntentModel.load(settings.model_dir, settings.thresholds.out_of_scope,
                               runtime=current_runtimes(settings)[0],
                               threads=settings.inference.torch_threads,
                               logits=shared.logits if shared is not None else None)
    nlu: Nlu = default
    if settings.multilingual_model_dir is not None:
        multilingual_nlu = IntentModel.load(settings.multilingual_model_dir, settings.thresholds.out_of_scope)
        nlu = LanguageRoutedIntentModel(default, multilingual_nlu, settings.default_language)
    if settings.rasa.project is not None:
        from bot.nlu.entities import EntityExtractor

        entities = settings.model_dir / "entities"
        if entities.is_dir():
            nlu = EntityTaggedModel(nlu, EntityExtractor.load(entities))
        if not searches:
            return nlu, EmptyKnowledgeBase()
    embedder: TextEmbedder = SharedEmbedder(settings.models.embedder, shared) if shared is not None else \
        serving_embedder(settings)
    knowledge = KnowledgeBase(settings.index_dir, embedder)
    multilingual_dir = settings.multilingual_index_dir
    if multilingual_dir is None:
        return nlu, knowledge
    multilingual = KnowledgeBase(multilingual_dir, load_embedder(settings.models.multilingual_embedder))
    return nlu, LanguageRoutedKnowledgeBase(knowledge, multilingual, settings.default_language)


async def purge_expired(settings: Settings, transcripts: TranscriptStore, review: ReviewLog,
                        days: int | None = None, attachments: AttachmentRecords | None = None
                        ) -> dict[str, int]:
    """Delete what is older than the retention period (`days`, else the setting): transcript rows
    in SQL, review entries in Redis and customers' images (rows and bytes); rows and entries per
    kind ({} when kept forever)."""
    days = settings.storage.transcript_retention_days if days is None else days
    if not days:
        return {}
    before = datetime.now(UTC) - timedelta(days=days)
    counts = await asyncio.to_thread(transcripts.purge, before)
    counts["review_entries"] = await review.purge(before.timestamp())
    if attachments is not None:
        counts["attachments"] = await asyncio.to_thread(attachments.purge, before)
    log.info("purged transcripts older than %d days: %s", days, counts)
    return counts


async def purge_periodically(settings: Settings, transcripts: TranscriptStore, review: ReviewLog,
                             attachments: AttachmentRecords | None = None) -> None:
    """At start-up, then every `transcript_purge_every_s`, until cancelled. A failed purge is
    logged and tried again next time: retention must not take the bot down."""
    while True:
        try:
            await purge_expired(settings, transcripts, review, attachments=attachments)
        except Exception:
            log.warning("purging expired transcripts failed", exc_info=True)
        await asyncio.sleep(settings.storage.transcript_purge_every_s)


async def refresh_analytics_periodically(settings: Settings, engine: Engine) -> None:
    """Fold the days changed since the last refresh into the analytics rollup, every
    `analytics_refresh_every_s`: the day marks the triggers write stay few even when nobody opens
    the analytics page, and the page has little left to do when someone does."""
    while True:
        await asyncio.sleep(settings.storage.analytics_refresh_every_s)
        try:
            await asyncio.to_thread(rollup.refresh, engine)
        except Exception:
            log.warning("refreshing the analytics rollup failed", exc_info=True)


GENERATION_RESPONSES = ("utter_generation_unsure", "utter_generation_injection", "utter_generation_sources")
FROM_SETTINGS: Any = object()


def build_rasa(settings: Settings, domain: Domain) -> RasaDialogue | None:
    """A Rasa project's dialogue (None without `settings.rasa.project`): its rules and stories, its
    forms, and its custom actions on its action server (the setting's URL, else endpoints.yml's)."""
    if settings.rasa.project is None:
        return None
    project = RasaProject.load(settings.rasa.project)
    for notice in project.notices:
        log.info("rasa project %s: %s", project.name, notice)
    timeout = settings.rasa.action_timeout_s
    endpoint = settings.rasa.action_endpoint
    actions = ActionServer(endpoint, timeout) if endpoint else ActionServer.from_endpoints(project.endpoints,
                                                                                            timeout)
    failed = "utter_action_failed"
    failure = to_message(domain.render(failed)) if failed in domain.responses else None
    config = project.config
    agent = RasaAgent(project.domain, PolicyEnsemble(project.domain, project.stories, config.max_history),
                      actions, config.nlu_fallback_threshold, config.core_fallback_action, failure)
    return RasaDialogue(agent)


def build_generation(settings: Settings, domain: Domain, knowledge: Knowledge, pool: InferencePool,
                     metrics: Metrics, generator: Generator | None) -> GenerationService | None:
    """The generative fallback around `generator` (None: the bot runs without one, or without an
    FAQ to ground it in)."""
    if generator is None or isinstance(knowledge, EmptyKnowledgeBase):
        return None
    missing = [r for r in GENERATION_RESPONSES if r not in domain.responses]
    if missing:
        raise ValueError(f"generation is enabled but the domain lacks the responses {missing}")
    g = settings.generation
    # The grounding and composer thresholds were calibrated on torch's vectors: an int8 query
    # embedder (SUPPORTBOT_EMBEDDER_RUNTIME) speeds retrieval up, the guard keeps torch's.
    encoder = knowledge.embedder
    exact = isinstance(encoder, Embedder) or (isinstance(encoder, SharedEmbedder)
                                              and encoder.runtime == "torch")
    if not exact and not encoder.multilingual:
        encoder = Embedder(settings.models.embedder)
    checker = GroundingChecker(encoder.encode, g.grounding_threshold, g.lexical_threshold)
    masker = PiiMasker.from_texts(e.answer for e in knowledge.entries)
    return GenerationService(generator, knowledge, checker, masker, g, domain.company,
                             domain.assistant.tone, domain.assistant.name, metrics, pool.run)


@contextlib.asynccontextmanager
async def build_services(settings: Settings, models: Models | None = None,
                         generator: Generator | None = FROM_SETTINGS) -> AsyncIterator[Services]:
    """Start (or connect to) Redis, migrate the database, load the models, wire the pipeline.
    `generator` replaces the one `settings.generation` describes (None: no generator). Everything
    is closed again in reverse order when the block ends."""
    async with contextlib.AsyncExitStack() as stack:
        url, client = await stack.enter_async_context(redis_client(settings))
        pool = InferencePool(settings.inference.workers, settings.inference.queue)
        stack.callback(pool.close)
        engine = make_engine(settings.resolved_database_url)
        stack.callback(engine.dispose)
        migrate(engine)
        domain = Domain.load(settings.domain_file, languages=settings.languages)  # + their overlays
        nlu, knowledge = models or load_models(settings)
        metrics = Metrics()
        gen = create_generator(settings) if generator is FROM_SETTINGS else generator
        if gen is not None:
            stack.push_async_callback(gen.aclose)
        generation = build_generation(settings, domain, knowledge, pool, metrics, gen)
        rasa = build_rasa(settings, domain)
        if rasa is not None and rasa.agent.actions is not None:
            stack.push_async_callback(rasa.agent.actions.aclose)
        services = _wire(settings, client, url, engine, pool, domain, (nlu, knowledge), metrics, generation,
                         rasa)
        records = services.attachments.records if services.attachments is not None else None
        purger = asyncio.create_task(purge_periodically(settings, services.transcripts, services.review,
                                                        records), name="purge")
        refresher = asyncio.create_task(refresh_analytics_periodically(settings, engine), name="rollup")
        # Cancelled again if a wait_for inside swallows it (bot.background).
        stack.push_async_callback(cancel_and_wait, {purger, refresher})
        yield services


@contextlib.asynccontextmanager
async def redis_client(settings: Settings) -> AsyncIterator[tuple[str, aioredis.Redis]]:
    """(URL, client) of the configured Redis, or of an embedded redis-server started for the
    block; the client is closed (and the embedded server stopped) when it ends."""
    embedded: EmbeddedRedis | None = None
    if settings.redis.dsn:
        url = settings.redis.dsn
    else:
        embedded = EmbeddedRedis(settings.redis_dir).start()
        url = embedded.url
        log.info("started embedded redis-server", extra={"action": url})
    client = connect(url, settings.redis.retry_s)
    try:
        yield url, client
    finally:
        await client.aclose()
        if embedded is not None:
            embedded.stop()


@dataclass
class Records:
    """What holds conversation content, without the models (`supportbot purge` and `forget`)."""

    store: RedisSessionStore
    review: ReviewLog
    transcripts: TranscriptStore
    queue: RedisHandoffQueue
    attachments: AttachmentRecords | None = None


@contextlib.asynccontextmanager
async def open_records(settings: Settings) -> AsyncIterator[Records]:
    """The records over the configured (or embedded) Redis and the (migrated) database."""
    engine = make_engine(settings.resolved_database_url)
    try:
        migrate(engine)
        async with redis_client(settings) as (_, client):
            prefix = settings.sessions.key_prefix
            yield Records(session_store(settings, client),
                          ReviewLog(client, prefix, settings.thresholds.intent),
                          TranscriptStore(engine), RedisHandoffQueue(client, prefix),
                          attachment_records(settings, engine))
    finally:
        engine.dispose()


def session_store(settings: Settings, client: aioredis.Redis) -> RedisSessionStore:
    s = settings.sessions
    return RedisSessionStore(client, prefix=s.key_prefix, ttl_s=s.session_ttl_s,
                             reply_ttl_s=s.reply_cache_ttl_s, lease_s=s.lock_lease_s,
                             wait_s=s.lock_wait_s, history_limit=s.history_limit)


def attachment_records(settings: Settings, engine: Engine) -> AttachmentRecords:
    """Customers' images: rows in this database, bytes in the configured attachment store."""
    return AttachmentRecords(engine, attachment_store(settings.attachments, settings.data_dir))


def _wire(settings: Settings, client: aioredis.Redis, url: str, engine: Engine, pool: InferencePool,
          domain: Domain, models: Models, metrics: Metrics, generation: GenerationService | None,
          rasa: RasaDialogue | None = None) -> Services:
    """Every part over one Redis client and one database engine."""
    nlu, knowledge = models
    prefix = settings.sessions.key_prefix
    store = session_store(settings, client)
    transcripts = TranscriptStore(engine)
    policy = Policy(domain, settings.thresholds, default_actions(CsvOrderBook(settings.training_data /
                                                                               "demo_orders.csv")),
                    generative=generation is not None, languages=settings.languages,
                    default_language=settings.default_language,
                    confirm_answers=settings.dialogue.confirm_answers,
                    entry_intents=entry_intents(nlu, knowledge.entries))
    queue = RedisHandoffQueue(client, prefix)
    handoff = HandoffService(store, queue, domain,
                             BusinessHours(settings.handoff.business_hours, settings.handoff.timezone))
    review = ReviewLog(client, prefix, settings.thresholds.intent, settings.storage.review_max_items,
                       domain.entities.get("order_number"))
    pipeline = Pipeline(store, nlu, knowledge, policy, domain, pool, metrics, transcripts,
                        handoff=handoff, review=review, generation=generation,
                        language=LanguageDetector(settings.languages, settings.default_language),
                        max_batch=settings.inference.max_batch, coverage=coverage_check(settings, knowledge),
                        rasa=rasa, spelling=spelling(settings, knowledge))
    attachments = AttachmentService(store, handoff, domain, attachment_records(settings, engine),
                                    settings.attachments, metrics, transcripts)
    return Services(settings, domain, nlu, knowledge, store, transcripts, pipeline, metrics, pool, url,
                    queue, handoff, AgentStore(AgentRecords(engine)), review=review,
                    console_sessions=RedisConsoleSessions(client, prefix, settings.console.console_session_s),
                    counters=RedisWindowCounter(client), generation=generation, rasa=rasa,
                    attachments=attachments)
