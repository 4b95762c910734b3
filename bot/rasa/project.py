"""A Rasa 3 project folder read as Rasa reads it: config.yml, domain.yml (or domain/), data/,
endpoints.yml and tests/. What supportbot replaces or does not use is listed in `notices`, once,
so nothing in a project is ignored silently."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import yaml12
from bot.rasa.domain import RasaDomain, RasaDomainError
from bot.rasa.stories import StoryData, read_stories

_CONFIG_KEYS = {"recipe", "language", "pipeline", "policies", "assistant_id"}
_ENDPOINT_KEYS = {"action_endpoint"}
# Components whose settings supportbot takes over (the rest of a pipeline is replaced by its own).
_HONOURED = {
    "FallbackClassifier",
    "DucklingEntityExtractor",
    "RegexEntityExtractor",
    "RegexFeaturizer",
    "EntitySynonymMapper",
}
_MEMO = {"MemoizationPolicy", "AugmentedMemoizationPolicy"}


class ProjectError(ValueError):
    """A project folder that cannot be run; names the file and what is wrong."""


@dataclass
class DialogueConfig:
    max_history: int = 5
    core_fallback_threshold: float = 0.3
    core_fallback_action: str = "action_default_fallback"
    nlu_fallback_threshold: float | None = None
    ambiguity_threshold: float | None = None
    entity_dimensions: list[str] = field(default_factory=list)
    language: str = "en"


@dataclass
class RasaProject:
    root: Path
    domain: RasaDomain
    stories: StoryData
    config: DialogueConfig
    endpoints: dict[str, Any]
    notices: list[str]

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def data_paths(self) -> list[Path]:
        return [self.root / "data"]

    @property
    def test_paths(self) -> list[Path]:
        tests = self.root / "tests"
        return [tests] if tests.is_dir() else []

    @classmethod
    def load(cls, root: Path) -> RasaProject:
        root = root.resolve()
        if not root.is_dir():
            raise ProjectError(f"{root}: not a folder")
        notices: list[str] = []
        config = _config(root / "config.yml", notices)
        domain_path = root / "domain.yml" if (root / "domain.yml").exists() else root / "domain"
        if not domain_path.exists():
            raise ProjectError(f"{root}: no domain.yml or domain/ folder")
        try:
            domain = RasaDomain.load([domain_path])
        except RasaDomainError as exc:
            raise ProjectError(str(exc)) from exc
        notices += domain.notices
        stories = read_stories([root / "data"]) if (root / "data").is_dir() else StoryData()
        notices += stories.notices
        endpoints = _yaml(root / "endpoints.yml") if (root / "endpoints.yml").exists() else {}
        notices += [
            f"endpoints.yml: `{k}` is not used (conversations live in supportbot's Redis and transcripts)"
            for k in endpoints
            if k not in _ENDPOINT_KEYS
        ]
        _check_references(domain, stories)
        return cls(root, domain, stories, config, endpoints, list(dict.fromkeys(notices)))


def _yaml(path: Path) -> dict[str, Any]:
    doc = yaml12.read(path, ProjectError) or {}
    if not isinstance(doc, dict):
        raise ProjectError(f"{path}: expected a mapping at the top")
    return doc


def _config(path: Path, notices: list[str]) -> DialogueConfig:
    cfg = DialogueConfig()
    if not path.exists():
        notices.append("no config.yml: Rasa's defaults (max_history 5, core fallback threshold 0.3)")
        return cfg
    doc = _yaml(path)
    notices += [f"config.yml: `{k}` is not used" for k in doc if k not in _CONFIG_KEYS]
    cfg.language = str(doc.get("language") or "en")
    replaced = []
    for component in doc.get("pipeline") or []:
        name = str((component or {}).get("name", ""))
        if name == "FallbackClassifier":
            cfg.nlu_fallback_threshold = float(component.get("threshold", 0.3))
            if component.get("ambiguity_threshold") is not None:
                cfg.ambiguity_threshold = float(component["ambiguity_threshold"])
        elif name == "DucklingEntityExtractor":
            cfg.entity_dimensions = [str(d) for d in component.get("dimensions") or []] or [
                "email",
                "url",
                "phone-number",
                "number",
            ]
        if name not in _HONOURED:
            replaced.append(name)
    if replaced:
        notices.append(
            "config.yml: pipeline components " + ", ".join(dict.fromkeys(replaced)) + " are replaced "
            "by supportbot's fine-tuned intent encoder with an entity tagger on it (regexes, "
            "lookup tables, synonyms and the FallbackClassifier threshold are honoured; "
            "Duckling's dimensions come from built-in patterns)"
        )
    for policy in doc.get("policies") or []:
        name = str((policy or {}).get("name", ""))
        if name in _MEMO:
            cfg.max_history = int(policy.get("max_history") or cfg.max_history)
        elif name == "RulePolicy":
            cfg.core_fallback_threshold = float(policy.get("core_fallback_threshold", 0.3))
            cfg.core_fallback_action = str(
                policy.get("core_fallback_action_name") or cfg.core_fallback_action
            )
        else:
            notices.append(
                f"config.yml: policy {name} is replaced: memoised stories and rules decide, and "
                "supportbot's FAQ, generation and hand-off answer what they do not cover"
            )
    return cfg


def _check_references(domain: RasaDomain, stories: StoryData) -> None:
    """Every action and intent a story or rule names exists in the domain (Rasa refuses to train too)."""
    from bot.rasa.stories import ActionStep, UserStep

    known = set(domain.action_names)
    problems = []
    for story in [*stories.stories, *stories.rules]:
        for step in story.steps:
            if isinstance(step, ActionStep) and step.name not in known:
                problems.append(
                    f"{story.source}: {story.name!r} runs {step.name!r}, which the domain does not list"
                )
            if (
                isinstance(step, UserStep)
                and step.intent
                and step.intent not in domain.intents
                and step.intent != "nlu_fallback"
            ):
                problems.append(
                    f"{story.source}: {story.name!r} uses intent {step.intent!r}, which the domain "
                    "does not list"
                )
    if problems:
        raise ProjectError("; ".join(dict.fromkeys(problems)))
