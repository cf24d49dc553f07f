"""Class conditioning shared by the image networks: a label embedding joined to z, and the projection term.

Generator: z' = [z, embed_g(y)], a learned `class_dim`-d embedding of the label concatenated to the latent before
the first layer. Critic (projection, Miyato & Koyama 2018): score = psi(phi(x)) + <embed_c(y), phi(x)>, where
phi(x) are the features the linear score psi reads. Both are per sample, so a sample's output never depends on
the other samples of its batch, and the label only enters through an embedding lookup: gradients with respect to
the image leave it fixed.

A generator's labels are class indices [N] (int64), or class weights [N, n_classes] (floating): the embedding
joined to z is then the weights' combination of the class embeddings, sum_k w_k embed(k), computed per sample.
One-hot weights give exactly embed(y); weights (1 - t, t) on two classes give the lerp of their embeddings, which
is how a walk moves from one class to another. The critic scores an image against every class at once with
`class_scores` ([N, n_classes]).
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


def check_labels(
    embed: nn.Embedding | None, labels: torch.Tensor | None, batch: int, what: str, weights_ok: bool = False
) -> None:
    """A conditional network needs labels [batch] of class indices (or, `weights_ok`, class weights
    [batch, n_classes]); an unconditional one takes none."""
    if embed is None:
        if labels is not None:
            raise ValueError(f"this {what} is unconditional: call it without labels")
        return
    if labels is None:
        raise ValueError(f"this {what} is class-conditional ({embed.num_embeddings} classes): pass labels [N]")
    if torch.onnx.is_in_onnx_export():
        return  # an export traces symbolic shapes: the caller of the exported network checks them
    if weights_ok and labels.is_floating_point():
        if labels.shape != (batch, embed.num_embeddings):
            raise ValueError(
                f"class weights must have shape [{batch}, {embed.num_embeddings}], got {list(labels.shape)}"
            )
        return
    if labels.shape != (batch,):
        raise ValueError(f"labels must have shape [{batch}], got {list(labels.shape)}")


def join_label(z: torch.Tensor, labels: torch.Tensor | None, embed: nn.Embedding | None) -> torch.Tensor:
    """[N, z_dim] -> [N, z_dim + class_dim] for a conditional generator; z itself for an unconditional one.

    `labels`: class indices [N], or class weights [N, n_classes] (see the module's docstring)."""
    check_labels(embed, labels, z.shape[0], "generator", weights_ok=True)
    if embed is None or labels is None:
        return z
    if labels.is_floating_point():
        table = embed.weight.to(z.dtype)  # [n_classes, class_dim]
        # Elementwise and summed per sample (not a matrix product), so a sample's embedding is the same bits
        # whatever else shares its batch; one-hot weights give each row exactly.
        joined = (labels.to(z.dtype)[:, :, None] * table[None]).sum(dim=1)  # [N, class_dim]
        return torch.cat([z, joined], dim=1)
    return torch.cat([z, embed(labels).to(z.dtype)], dim=1)


def projection(phi: torch.Tensor, labels: torch.Tensor | None, embed: nn.Embedding | None) -> torch.Tensor | None:
    """<embed(y), phi(x)> per sample [N] for a projection critic; None for an unconditional one."""
    check_labels(embed, labels, phi.shape[0], "critic")
    if embed is None or labels is None:
        return None
    projected: torch.Tensor = (embed(labels).to(phi.dtype) * phi).sum(dim=1)  # [N]
    return projected


def class_scores(base: torch.Tensor, phi: torch.Tensor, embed: nn.Embedding | None) -> torch.Tensor:
    """A projection critic's score of each sample against every class, [N, n_classes]: base [N] (psi(phi(x)))
    plus <embed(k), phi(x)> for each class k."""
    if embed is None:
        raise ValueError("this critic is unconditional: it has no classes to score against")
    table = embed.weight.to(phi.dtype)  # [n_classes, F]
    projected = (phi[:, None, :] * table[None]).sum(dim=2)  # [N, n_classes]
    scores: torch.Tensor = base[:, None] + projected
    return scores


class ProjectionCritic(nn.Module):
    """The scoring both critics share: score = psi(phi(x)) (+ <embed(y), phi(x)> when conditional).

    A subclass builds `head` (psi, a linear layer to one score) and `embed` (or None), and defines `phi`."""

    head: nn.Module
    embed: nn.Embedding | None

    def phi(self, x: torch.Tensor) -> torch.Tensor:
        """images [N, C, H, W] -> the features [N, F] the score reads."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        phi = self.phi(x)  # [N, F]
        scores: torch.Tensor = self.head(phi).squeeze(1)  # [N]
        projected = projection(phi, labels, self.embed)  # [N], or None
        return scores if projected is None else scores + projected

    def class_scores(self, x: torch.Tensor) -> torch.Tensor:
        """images [N, C, H, W] -> scores [N, n_classes] of each image against every class (conditional critics)."""
        phi = self.phi(x)  # [N, F]
        return class_scores(self.head(phi).squeeze(1), phi, self.embed)
