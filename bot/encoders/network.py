"""The fine-tuned intent network: a transformer encoder, mean pooling, a linear head.

Sentence-transformers checkpoints (all-MiniLM-L6-v2, all-mpnet-base-v2) were trained to mean-pool
their token states; a classifier on the [CLS] pooler throws that away (on BANKING77 a frozen
mean-pooled encoder with logistic regression beat the fine-tuned [CLS] classifier). Mean pooling
keeps the encoder's sentence geometry, and the head starts from the class centroids, so training
begins where the frozen baseline ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def layer_count(encoder: Any) -> int:
    return len(encoder.encoder.layer)


def trunk(encoder: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, layers: int) -> torch.Tensor:
    """Token states after the embeddings and the first `layers` transformer layers."""
    return top(encoder, encoder.embeddings(input_ids=input_ids), attention_mask, 0, layers)


def top(encoder: Any, states: torch.Tensor, attention_mask: torch.Tensor, start: int,
        stop: int | None = None) -> torch.Tensor:
    """Token states after layers `start`..`stop` of `encoder`, from the states before `start`
    (the attention mask built the way the model's own forward builds it)."""
    from transformers.masking_utils import create_bidirectional_mask

    mask = create_bidirectional_mask(config=encoder.config, inputs_embeds=states,
                                     attention_mask=attention_mask)
    for layer in encoder.encoder.layer[start:stop]:
        states = layer(states, mask)
    return states


def mean_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class MeanPoolClassifier(torch.nn.Module):
    def __init__(self, encoder: Any, n_labels: int, dropout: float = 0.1, vectors: bool = False) -> None:
        """`vectors`: output the pooled sentence vector after the logits (what an out-of-scope
        distance is measured on, bot.nlu.oos), so every runtime's one pass gives both."""
        super().__init__()
        self.encoder: Any = encoder  # a transformers PreTrainedModel
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(encoder.config.hidden_size, n_labels)
        self.vectors = vectors

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: object) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(states, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: object) -> torch.Tensor:
        return self._head(self.embed(input_ids, attention_mask))

    def from_trunk(self, states: torch.Tensor, attention_mask: torch.Tensor, start: int) -> torch.Tensor:
        """Logits from the token states after the first `start` layers (which a model trained
        with only its top layers shares with the base encoder)."""
        return self._head(mean_pool(top(self.encoder, states, attention_mask, start), attention_mask))

    def _head(self, pooled: torch.Tensor) -> torch.Tensor:
        logits = self.classifier(self.dropout(pooled))
        return torch.cat([logits, pooled], dim=-1) if self.vectors else logits

    @torch.no_grad()
    def init_from_centroids(self, pooled: torch.Tensor, y: torch.Tensor, scale: float = 10.0) -> None:
        """Each class's weight vector = its (normalised) mean training embedding."""
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        weight = torch.zeros_like(self.classifier.weight)
        for label in range(weight.shape[0]):
            members = pooled[y == label]
            if len(members):
                weight[label] = torch.nn.functional.normalize(members.mean(0), dim=0) * scale
        self.classifier.weight.copy_(weight)
        self.classifier.bias.zero_()

    def save(self, directory: Path) -> None:
        self.encoder.save_pretrained(directory)
        torch.save(self.classifier.state_dict(), directory / "head.pt")

    @classmethod
    def load(cls, directory: Path, n_labels: int, vectors: bool = False) -> MeanPoolClassifier:
        from transformers import AutoModel

        model = cls(AutoModel.from_pretrained(directory), n_labels, vectors=vectors)
        model.classifier.load_state_dict(torch.load(directory / "head.pt", weights_only=True))
        return model.eval()
