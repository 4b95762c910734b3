"""supportbot's command line: train, index, serve, chat, export-nlu."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

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
    """Fine-tune the intent model on support logs and write the model directory with its report."""
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
def serve_cmd(host: str | None = typer.Option(None), port: int | None = typer.Option(None)) -> None:
    """Train and index first if needed, then serve the API and the demo page."""
    import uvicorn

    from bot.assets import ensure_assets
    from bot.observability import configure_logging
    from bot.web.app import create_app

    settings = _settings()
    ensure_assets(settings, console)
    configure_logging()
    host, port = host or settings.host, port or settings.port
    console.print(f"supportbot is up: open http://{host}:{port}/ (API docs at /docs)")
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None)


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


if __name__ == "__main__":
    app()
