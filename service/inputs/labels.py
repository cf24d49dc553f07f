"""Class labels of a request turned into the generator's class weights, checked against the model's classes.

A label is a class index (an integer, 0 <= i < n_classes) or a class name (a string, one of the checkpoint's
`classes`). A class-conditional model needs one for every image; an unconditional one takes none. The generator
takes class weights [n, n_classes]: one-hot for a label, and between two keyframes of a walk the lerp of theirs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from service.errors import InvalidRequestError, clip

Label = int | str

# The most class names an error message lists (a model may have many thousands).
_LISTED = 20


def known_labels(classes: Sequence[str]) -> str:
    """The classes as an error message names them: indices and names, the list clipped."""
    shown = ", ".join(repr(name) for name in classes[:_LISTED])
    more = f", ... ({len(classes)} classes)" if len(classes) > _LISTED else ""
    return f"indices 0..{len(classes) - 1} or the names {shown}{more}"


def _details(field: str, classes: Sequence[str]) -> dict[str, object]:
    return {"field": field, "classes": list(classes[:_LISTED]), "n_classes": len(classes)}


def class_index(label: Label, classes: Sequence[str], field: str, *, digits_are_indices: bool = False) -> int:
    """The index of `label` among `classes`; InvalidRequestError naming the known labels when it is none of them.

    `digits_are_indices` (multipart form fields, where every value is a string): a string that is no class name
    but a decimal integer counts as an index."""
    if isinstance(label, str):
        for i, name in enumerate(classes):
            if name == label:
                return i
        if digits_are_indices and label.isdecimal() and len(label) < 10:
            return class_index(int(label), classes, field)
    elif 0 <= label < len(classes):
        return label
    raise InvalidRequestError(
        f"{field}: this model has no class {clip(repr(label))}; send {known_labels(classes)}",
        _details(field, classes),
    )


def check_unconditional(model: str, has_labels: bool, field: str) -> None:
    """An unconditional model refuses any label."""
    if has_labels:
        raise InvalidRequestError(
            f"model {clip(model)!r} is not class-conditional: it takes no {field}; leave it out", {"field": field}
        )


def require_labels(model: str, classes: Sequence[str], what: str) -> InvalidRequestError:
    """The error for a conditional model asked without labels: what to send instead."""
    return InvalidRequestError(
        f"model {clip(model)!r} is class-conditional: {what}, with {known_labels(classes)}",
        {"field": "label", "classes": list(classes[:_LISTED]), "n_classes": len(classes)},
    )


def resolve_labels(
    model: str,
    classes: Sequence[str] | None,
    label: Label | None,
    labels: Sequence[Label] | None,
    n_images: int,
) -> list[int] | None:
    """The class index of each of `n_images` images (`label` for all of them, or `labels`, one each); None for an
    unconditional model, which must be sent neither."""
    if not classes:
        check_unconditional(model, label is not None or labels is not None, "label" if label is not None else "labels")
        return None
    if labels is not None:
        if len(labels) != n_images:
            raise InvalidRequestError(
                f"{len(labels)} labels for {n_images} images: send one label per image, or one `label` for all",
                {"field": "labels", "images": n_images, "labels": len(labels)},
            )
        return [class_index(y, classes, f"labels.{i}") for i, y in enumerate(labels)]
    if label is None:
        raise require_labels(model, classes, "send `label` for every image, or `labels`, one per image")
    return [class_index(label, classes, "label")] * n_images


def one_hot(indices: Sequence[int], n_classes: int) -> torch.Tensor:
    """Class weights [n, n_classes] float32: row i is 1 at indices[i], 0 elsewhere."""
    weights = torch.zeros(len(indices), n_classes)  # [n, n_classes]
    weights[torch.arange(len(indices)), torch.tensor(list(indices), dtype=torch.int64)] = 1.0
    return weights
