"""Helper for tests that run the real models: skip cleanly (naming the command that provides
them) where the models are not provisioned; `make test` always provisions them first."""
from pathlib import Path

import pytest


def require_models() -> Path:
    """The provisioned model folder, or skip with the reason."""
    from pose_perception.core import model_store
    try:
        for name in model_store.MODEL_NAMES:
            model_store.model_path(name)
    except FileNotFoundError as exc:
        pytest.skip(f"models not provisioned: {exc}")
    return model_store.model_dir()
