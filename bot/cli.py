"""supportbot's command line: train, index, serve, chat, ingest, discover, export-review, retrain,
purge (retention) and forget (right to erasure)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from bot.config import Settings

app = typer.Typer(help="supportbot: a self-hosted customer-service chatbot.", no_args_is_help=True)
console = Console(stderr=True)


def _settings() -> Settings:
    from bot.nlu.encoders import offline

    offline()
    return Settings()


@app.command("train")
def train_cmd(
    data: Path | None = typer.Option(None, help="Support logs (.jsonl), nlu.yml, CSV, or a folder."),
    out: Path | None = typer.Option(None, help="Model directory (default: <data_dir>/models/intent)."),
    mode: str | None = typer.Option(None, help="finetune (default) or frozen."),
    epochs: int | None = typer.Option(None),
    seed: int | None = typer.Option(None),
) -> None:
    """Fine-tune the intent model on support logs and write the model directory with its report
    (and its ONNX int8 encoder when SUPPORTBOT_NLU_RUNTIME=onnx-int8)."""
    from bot.assets import train_model

    settings = _settings()
    overrides = {k: v for k, v in {"mode": mode, "epochs": epochs, "seed": seed}.items() if v is not None}
    settings.train = settings.train.model_copy(update=overrides)
    manifest = train_model(settings, data, out, console)
    console.print(f"model written to {out or settings.model_dir} ({len(manifest.labels)} intents)")


@app.command("index")
def index_cmd(force: bool = typer.Option(False, help="Rebuild even if the FAQ is unchanged.")) -> None:
    """Embed the FAQ knowledge base into a FAISS index (skipped when nothing changed)."""
    from bot.assets import build_faq_index

    build_faq_index(_settings(), force=force, console=console)


@app.command("serve")
def serve_cmd(
    host: str | None = typer.Option(None, help="Address to bind (default SUPPORTBOT_HOST; 0.0.0.0 in a "
                                    "container)."),
    port: int | None = typer.Option(None, help="Port (default SUPPORTBOT_PORT)."),
    graceful_timeout: float = typer.Option(
        20.0, min=0, help="On SIGTERM/SIGINT: stop accepting, then give in-flight requests this many "
        "seconds before closing them (WebSockets are closed at once; clients reconnect)."),
) -> None:
    """Train and index first if needed, then serve the API and the demo page."""
    import uvicorn

    from bot.assets import ensure_assets
    from bot.observability import configure_logging, secret_values
    from bot.web.app import create_app
    from bot.web.limits import websocket_max_size

    settings = _settings()
    ensure_assets(settings, console)
    configure_logging(secrets=secret_values(settings))
    host, port = host or settings.host, port or settings.port
    console.print(f"supportbot is up: open http://{host}:{port}/ (API docs at /docs)")
    # X-Forwarded-For/-Proto are believed from Settings.trusted_proxies only (uvicorn's default would
    # trust 127.0.0.1), the same list the rate limits use.
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_config=None,
                            timeout_graceful_shutdown=graceful_timeout,
                            ws_max_size=websocket_max_size(settings.max_body_bytes),
                            forwarded_allow_ips=list(settings.trusted_proxies))
    _run_server(config, graceful_timeout)


LEFTOVER_TIMEOUT_S = 5.0  # after the app's shutdown, for tasks nobody owns (python-engineio's pings)


def _run_server(config: Any, graceful_timeout: float) -> None:
    """`uvicorn.run`, made to end: SIGINT and SIGTERM both shut down gracefully and exit 0 (SIGHUP,
    a closed terminal, too); the app learns when its grace period started (`shutdown_deadline`,
    for its background turns) and may act on it (`stopping`); and the tasks still running once it
    has shut down are cancelled with a time limit. asyncio's runner would cancel them once and
    then wait without one: for ever, where a task swallowed the cancellation (bot.background)."""
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[Any] | None = None) -> None:
            state = config.app.state
            state.shutdown_deadline = time.monotonic() + graceful_timeout
            stopping = getattr(state, "stopping", None)
            try:
                if stopping is not None:
                    await stopping()
            except Exception:  # the shutdown itself must go on
                logging.getLogger(__name__).exception("the app's `stopping` failed")
            await super().shutdown(sockets)

    server = Server(config)
    # uvicorn handles SIGINT and SIGTERM while it serves, then restores the handlers it found and
    # raises the signal again. With the default one SIGTERM would kill the process there (status
    # 143, a crash to Kubernetes) before the leftovers are ended; this one only asks the server to
    # stop (again: a no-op by then), and serves SIGHUP too.
    def stop(signum: int, frame: object) -> None:
        server.handle_exit(signal.SIGTERM, None)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    if hasattr(config, "get_loop_factory"):
        loop_factory = config.get_loop_factory()
    else:  # older uvicorn sets an event loop policy instead
        config.setup_event_loop()
        loop_factory = None
    runner, stuck = asyncio.Runner(loop_factory=loop_factory), 0
    try:
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises the SIGINT it handled again
            runner.run(server.serve())
        stuck = runner.run(_end_leftovers(LEFTOVER_TIMEOUT_S))
    finally:
        if not stuck:  # else closing the runner would wait for them for ever: exit without it
            runner.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # The models' half a million objects are freed at exit anyway: no last full collection (it
    # took seconds on 2 cores, after the app's shutdown unfroze them).
    gc.freeze()
    if stuck:
        raise typer.Exit(1)
    if not server.started:
        raise typer.Exit(3)  # uvicorn's STARTUP_FAILURE


async def _end_leftovers(timeout_s: float) -> int:
    """Cancel and await every task but this one; returns how many would not stop."""
    from bot.background import cancel_and_wait

    current = asyncio.current_task()
    left = {t for t in asyncio.all_tasks() if t is not current}
    return len(await cancel_and_wait(left, timeout_s)) if left else 0


@app.command("chat")
def chat_cmd(conversation: str | None = typer.Option(None, help="Continue this conversation id.")) -> None:
    """Chat with the bot in the terminal, through the same pipeline as the web API."""
    from bot.assets import ensure_assets

    settings = _settings()
    ensure_assets(settings, console)
    asyncio.run(_chat(settings, conversation or f"cli-{uuid.uuid4().hex[:12]}"))


async def _chat(settings: Settings, conversation_id: str) -> None:
    from rich.text import Text

    from bot.services import build_services
    from bot.types import Message

    async with build_services(settings) as services:
        out = Console()
        out.print(f"[dim]conversation {conversation_id}; empty line or Ctrl-D to quit; "
                  "a button can be chosen by its number[/dim]")
        buttons: list = []
        while True:
            try:
                text = await asyncio.to_thread(input, "you> ")
            except (EOFError, KeyboardInterrupt):
                break
            text = text.strip()
            if not text:
                break
            payload = None
            if text.isdigit() and 0 < int(text) <= len(buttons):
                payload = buttons[int(text) - 1].payload
            msg = Message(channel="cli", conversation_id=conversation_id,
                          message_id=uuid.uuid4().hex, text="" if payload else text, payload=payload)
            replies = await services.pipeline.handle(msg)
            buttons = []
            for reply in replies:
                out.print(Text.assemble(("bot> ", "bold"), reply.text), highlight=False)
                for button in reply.buttons:
                    buttons.append(button)
                    out.print(f"      [{len(buttons)}] {button.title}", markup=False, highlight=False)


@app.command("create-agent")
def create_agent(
    username: str = typer.Argument(..., help="Login name."),
    name: str = typer.Option(..., "--name", help="Name the customer sees."),
    role: str = typer.Option("admin", help="admin (can create agents) or agent."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 envvar="SUPPORTBOT_AGENT_PASSWORD",
                                 help="Asked for when not in SUPPORTBOT_AGENT_PASSWORD."),
) -> None:
    """Create a console account (the first admin comes from here; later ones from /console/admin)."""
    from bot.handoff.agents import AgentError, AgentStore
    from bot.storage.db import make_engine, migrate

    settings = _settings()
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    try:
        agent = AgentStore(engine).create(username, name, password, role)
    except AgentError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    url = f"http://{settings.host}:{settings.port}/console"
    console.print(f"created {agent.role} {agent.username!r}; log in at {url}")


@app.command("export-nlu")
def export_nlu(
    data: Path | None = typer.Option(None, help="Support logs to export (default: training_data/)."),
    out: Path = typer.Option(Path("training_data/nlu.yml")),
) -> None:
    """Write the support logs' labelled customer messages as Rasa-format nlu.yml."""
    from bot.nlu.data import deduplicate, load_examples, to_rasa_nlu

    settings = _settings()
    examples = deduplicate(load_examples(data or settings.training_data))
    out.write_text(to_rasa_nlu(examples), encoding="utf-8")
    console.print(f"wrote {len(examples)} examples to {out}")


@app.command("ingest")
def ingest_cmd(
    files: list[Path] = typer.Argument(..., help="Exported conversations: .jsonl/.json (ours, Zendesk, "
                                       "Intercom, Freshdesk, Help Scout) or a per-message .csv."),
    out: Path = typer.Option(Path("var/ingest"), help="Folder for the reviewable outputs."),
    intents: str = typer.Option("domain", help="'domain': only tags that are intents of the domain "
                                "file count as labels; 'any': the first tag is the label."),
    min_support: int = typer.Option(2, help="Conversations an FAQ candidate needs behind it."),
) -> None:
    """Scrub personal data from support logs; write training examples and FAQ candidates."""
    from rich.table import Table

    from bot.dialogue.domain import Domain
    from bot.knowledge.loader import load_entries
    from bot.nlu.data import DataError
    from bot.nlu.ingest import ingest, write_outputs
    from bot.pii import DEFAULT_ORDER, Scrubber, public_contacts

    settings = _settings()
    allowed, order = None, DEFAULT_ORDER
    if intents == "domain":
        domain = Domain.load(settings.domain_file)
        allowed = set(domain.intents)
        order = domain.entities.get("order_number", DEFAULT_ORDER)
    faq = load_entries(settings.knowledge_base) if settings.knowledge_base.is_dir() else []
    keep = public_contacts([e.answer for e in faq])
    try:
        result = ingest(files, allowed, Scrubber(order, keep=keep), min_support)
    except DataError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    paths = write_outputs(result, out)
    r = result.report
    table = Table(title="Ingested support logs")
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in [("conversations", r.conversations), ("customer messages", r.customer_messages),
                         ("training examples", r.examples), ("intents", len(r.intents)),
                         ("unlabeled first messages", r.unlabeled), ("FAQ candidates", r.faq_candidates),
                         *[(f"redacted {k.lower().replace('_', ' ')}", v)
                           for k, v in r.redacted.items()]]:
        table.add_row(label, str(value))
    console.print(table)
    for name, path in paths.items():
        console.print(f"{name}: {path}")


@app.command("discover")
def discover_cmd(
    source: Path = typer.Argument(..., help="Unlabeled messages: .txt (one per line), .jsonl support "
                                  "logs (first customer messages) or .csv with a text column."),
    out: Path = typer.Option(Path("var/ingest/discovered_nlu.yml"), help="Reviewable nlu.yml."),
    k: int | None = typer.Option(None, help="Number of clusters (default: chosen by silhouette)."),
    examples: int = typer.Option(20, help="Examples written per candidate intent."),
) -> None:
    """Cluster unlabeled customer messages into candidate intents, written as a reviewable nlu.yml."""
    from bot.knowledge.embedder import load_embedder
    from bot.nlu.discover import discover, read_messages, to_nlu_yaml

    settings = _settings()
    texts = read_messages(source)
    console.print(f"clustering {len(texts)} distinct messages")
    embedder = load_embedder(settings.embedder)
    clusters = discover(texts, embedder.encode, k, examples_per_cluster=examples)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_nlu_yaml(clusters), encoding="utf-8")
    for c in clusters[:15]:
        console.print(f"{c.name:40} {c.size:5d} msgs  cohesion {c.cohesion:.2f}  e.g. {c.examples[0]!r}")
    console.print(f"wrote {len(clusters)} candidate intents to {out}")


@app.command("export-review")
def export_review(
    out: Path = typer.Option(Path("var/review/review.csv"), help="CSV to label (fill the intent column)."),
    reason: str | None = typer.Option(None, help="Only low_confidence, out_of_scope or handoff."),
    keep: bool = typer.Option(False, help="Leave the exported messages in the review list."),
) -> None:
    """Export messages the bot did not understand, for labeling; then `supportbot retrain FILE`."""
    asyncio.run(_export_review(_settings(), out, reason, keep))


async def _export_review(settings: Settings, out: Path, reason: str | None, keep: bool) -> None:
    import csv

    from bot.sessions.embedded import EmbeddedRedis
    from bot.sessions.review import ReviewLog
    from bot.sessions.store import connect

    embedded = None if settings.redis_url else EmbeddedRedis(settings.redis_dir).start()
    client = connect(settings.redis_url or embedded.url, settings.redis_retry_s)
    try:
        review = ReviewLog(client, settings.key_prefix, settings.thresholds.intent)
        items = await review.items(reason)
        grouped: dict[str, list] = {}
        for item in items:
            grouped.setdefault(" ".join(item.text.lower().split()), []).append(item)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "intent", "predicted", "confidence", "reason", "count", "channels"])
            for group in sorted(grouped.values(), key=len, reverse=True):
                first = group[0]
                writer.writerow([first.text, "", first.predicted, f"{first.confidence:.2f}", first.reason,
                                 len(group), " ".join(sorted({i.channel for i in group}))])
        if not keep:  # only after the file is written: nothing is lost if writing fails
            await review.remove([i.id for i in items])
        console.print(f"exported {len(items)} messages ({len(grouped)} distinct) to {out}; "
                      f"fill the intent column, then run: supportbot retrain {out}")
    finally:
        await client.aclose()
        if embedded is not None:
            embedded.stop()


@contextlib.asynccontextmanager
async def _records(settings: Settings) -> AsyncIterator[tuple]:  # type: ignore[type-arg]
    """What holds conversation content, without the models: (session store, review log,
    transcripts, hand-off queue) over the configured (or embedded) Redis and the database."""
    from bot.handoff.queue import HandoffQueue
    from bot.sessions.embedded import EmbeddedRedis
    from bot.sessions.review import ReviewLog
    from bot.sessions.store import RedisSessionStore, connect
    from bot.storage.db import TranscriptStore, make_engine, migrate

    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    embedded = None if settings.redis_url else EmbeddedRedis(settings.redis_dir).start()
    client = connect(settings.redis_url or embedded.url, settings.redis_retry_s)  # type: ignore[union-attr]
    try:
        yield (RedisSessionStore(client, prefix=settings.key_prefix, lease_s=settings.lock_lease_s,
                                 wait_s=settings.lock_wait_s),
               ReviewLog(client, settings.key_prefix, settings.thresholds.intent),
               TranscriptStore(engine), HandoffQueue(client, settings.key_prefix))
    finally:
        await client.aclose()
        engine.dispose()
        if embedded is not None:
            embedded.stop()


@app.command("purge")
def purge_cmd(days: int | None = typer.Option(
        None, min=0, help="Keep this many days (default SUPPORTBOT_TRANSCRIPT_RETENTION_DAYS; 0 keeps all).")
) -> None:
    """Delete transcripts older than the retention period: turns, conversations, form requests, agent
    messages and review entries (the server also does this at start-up and once a day)."""
    from bot.services import purge_expired

    async def run(settings: Settings) -> dict[str, int]:
        async with _records(settings) as (_, review, transcripts, _queue):
            return await purge_expired(settings, transcripts, review, days)

    counts = asyncio.run(run(_settings()))
    if not counts:
        console.print("retention is off (0 days): nothing purged")
        return
    console.print("purged " + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items()))


@app.command("forget")
def forget_cmd(conversation_ids: list[str] = typer.Argument(..., help="Conversation ids to erase.")) -> None:
    """Erase conversations everywhere (right to erasure): Redis session, reply cache and hand-off
    state, review entries, and every SQL table; prints what was deleted for each."""
    from bot.web.privacy import erase_conversation

    async def run(settings: Settings) -> None:
        async with _records(settings) as (store, review, transcripts, queue):
            for cid in conversation_ids:
                counts = await erase_conversation(cid, store, review, transcripts, queue)
                print(json.dumps({"conversation_id": cid, "erased": counts}))

    asyncio.run(run(_settings()))


@app.command("retrain")
def retrain_cmd(
    labels: Path = typer.Argument(..., help="A labelled review CSV (columns text,intent)."),
) -> None:
    """Retrain with labelled review messages; promote only if validation is not worse."""
    from bot.dialogue.domain import Domain
    from bot.nlu.data import DataError
    from bot.nlu.promote import read_labels, retrain

    settings = _settings()
    try:
        labelled = read_labels(labels, set(Domain.load(settings.domain_file).intents))
        if not labelled:
            console.print(f"{labels}: no labelled rows (fill the intent column)")
            raise typer.Exit(1)
        console.print(f"retraining with {len(labelled)} labelled messages")
        d = retrain(settings, labelled)
    except DataError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    current = "none" if d.current_macro_f1 is None else f"{d.current_macro_f1:.4f}"
    console.print(f"validation macro-F1 on {d.val_examples} messages: candidate {d.candidate_macro_f1:.4f}, "
                  f"current {current}")
    if d.promoted:
        console.print(f"[green]promoted[/green]: {d.model_dir} (restart the server to load it)")
    else:
        console.print(f"[yellow]not promoted[/yellow]: the candidate is worse; it stays in {d.model_dir}, "
                      f"labels kept in {d.kept_labels}")
        raise typer.Exit(3)


if __name__ == "__main__":
    app()
