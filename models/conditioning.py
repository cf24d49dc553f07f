"""Class conditioning shared by the image networks: a label embedding joined to z, and the projection term.

Generator: z' = [z, embed_g(y)], a learned `class_dim`-d embedding of the label concatenated to the latent before
the first layer. Critic (projection, Miyato & Koyama 2018): score = psi(phi(x)) + <embed_c(y), phi(x)>, where
phi(x) are the features the linear score psi reads. Both are per sample, so a sample's output never depends on
the other samples of its batch, and the label only enters through an embedding lookup: gradients with respect to
the image leave it fixed.
"""

from __future__ import annotations

import torch
from torch import nn


def label_embedding(n_classes: int, dim: int) -> nn.Embedding | None:
    """None for an unconditional network (n_classes 0); else an embedding with Xavier-uniform weights."""
    if n_classes == 0:
        return None
    embed = nn.Embedding(n_classes, dim)
    nn.init.xavier_uniform_(embed.weight)
    return embed


def check_labels(embed: nn.Embedding | None, labels: torch.Tensor | None, batch: int, what: str) -> None:
    """A conditional network needs labels [batch] of class indices; an unconditional one takes none."""
    if embed is None:
        if labels is not None:
            raise ValueError(f"this {what} is unconditional: call it without labels")
        return
    if labels is None:
        raise ValueError(f"this {what} is class-conditional ({embed.num_embeddings} classes): pass labels [N]")
    if labels.shape != (batch,):
        raise ValueError(f"labels must have shape [{batch}], got {list(labels.shape)}")


def join_label(z: torch.Tensor, labels: torch.Tensor | None, embed: nn.Embedding | None) -> torch.Tensor:
    """[N, z_dim] -> [N, z_dim + class_dim] for a conditional generator; z itself for an unconditional one."""
    check_labels(embed, labels, z.shape[0], "generator")
    if embed is None or labels is None:
        return z
    return torch.cat([z, embed(labels).to(z.dtype)], dim=1)


def projection(phi: torch.Tensor, labels: torch.Tensor | None, embed: nn.Embedding | None) -> torch.Tensor | None:
    """<embed(y), phi(x)> per sample [N] for a projection critic; None for an unconditional one."""
    check_labels(embed, labels, phi.shape[0], "critic")
    if embed is None or labels is None:
        return None
    projected: torch.Tensor = (embed(labels).to(phi.dtype) * phi).sum(dim=1)  # [N]
    return projected
