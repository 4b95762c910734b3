"""Commands that build what the bot knows: train, index, export-nlu, ingest, discover,
export-review and retrain."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from bot.cli.common import RASA_OPTION, console
from bot.cli.common import load_settings as _settings
from bot.config import Settings


def train_cmd(
    data: Path | None = typer.Option(None, help="Support logs (.jsonl), nlu.yml, CSV, or a folder."),
    out: Path | None = typer.Option(None, help="Model directory (default: <data_dir>/models/intent)."),
    mode: str | None = typer.Option(None, help="finetune (default) or frozen."),
    epochs: int | None = typer.Option(None),
    seed: int | None = typer.Option(None),
    tuned_layers: str | None = typer.Option(
        None, help="Top encoder layers trained, or `all` (default 2: the FAQ embedder shares the rest)."),
    rasa: Path | None = RASA_OPTION,
) -> None:
    """Fine-tune the intent model on support logs (or a Rasa project's NLU data, with its entity
    tagger) and write the model directory with its report (and its ONNX int8 encoder when
    SUPPORTBOT_NLU_RUNTIME=onnx-int8)."""
    from bot.assets import train_model

    settings = _settings(rasa)
    overrides = {k: v for k, v in {"mode": mode, "epochs": epochs, "seed": seed,
                                   "tuned_layers": tuned_layers}.items() if v is not None}
    settings.train = type(settings.train).model_validate({**settings.train.model_dump(), **overrides})
    manifest = train_model(settings, data, out, console)
    console.print(f"model written to {out or settings.model_dir} ({len(manifest.labels)} intents)")


def index_cmd(force: bool = typer.Option(False, help="Rebuild even if the FAQ is unchanged.")) -> None:
    """Embed the FAQ knowledge base into a FAISS index (skipped when nothing changed)."""
    from bot.assets import build_faq_index

    build_faq_index(_settings(), force=force, console=console)


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
    embedder = load_embedder(settings.models.embedder)
    clusters = discover(texts, embedder.encode, k, examples_per_cluster=examples)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_nlu_yaml(clusters), encoding="utf-8")
    for c in clusters[:15]:
        console.print(f"{c.name:40} {c.size:5d} msgs  cohesion {c.cohesion:.2f}  e.g. {c.examples[0]!r}")
    console.print(f"wrote {len(clusters)} candidate intents to {out}")


def export_review(
    out: Path = typer.Option(Path("var/review/review.csv"), help="CSV to label (fill the intent column)."),
    reason: str | None = typer.Option(None, help="Only low_confidence, out_of_scope or handoff."),
    keep: bool = typer.Option(False, help="Leave the exported messages in the review list."),
) -> None:
    """Export messages the bot did not understand, for labeling; then `supportbot retrain FILE`."""
    asyncio.run(_export_review(_settings(), out, reason, keep))


async def _export_review(settings: Settings, out: Path, reason: str | None, keep: bool) -> None:
    import csv

    from bot.services import redis_client
    from bot.sessions.review import ReviewLog

    async with redis_client(settings) as (_, client):
        review = ReviewLog(client, settings.sessions.key_prefix, settings.thresholds.intent)
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


