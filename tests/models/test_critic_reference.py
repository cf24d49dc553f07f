import numpy as np
import pytest
import torch

from models import CriticReference, build_reference


def test_percentile_of_reference_points() -> None:
    real = torch.arange(1001, dtype=torch.float32)  # 0..1000
    ref = build_reference(real, -real)
    p = ref.percentile([-5.0, 0.0, 500.0, 1000.0, 2000.0])
    assert np.allclose(p, [0.0, 0.0, 50.0, 100.0, 100.0])
    assert ref.fake is not None and ref.fake.mean == pytest.approx(-500.0)


def test_percentile_is_monotone() -> None:
    ref = build_reference(torch.randn(500))
    p = ref.percentile(np.linspace(-4, 4, 50))
    assert (np.diff(p) >= 0).all() and p[0] == 0 and p[-1] == 100


def test_reference_refuses_nan() -> None:
    with pytest.raises(ValueError, match="finite"):
        build_reference(torch.tensor([1.0, float("nan")]))


def test_reference_document_validated() -> None:
    doc = build_reference(torch.randn(50)).model_dump()
    doc["real"]["quantiles"] = doc["real"]["quantiles"][:5]
    with pytest.raises(ValueError, match="one value per prob"):
        CriticReference.model_validate(doc)
