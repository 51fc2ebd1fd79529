"""Shared pytest fixtures: where the development data and the provisioned models are."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("POSE_PERCEPTION_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (development data); tests using it skip cleanly where a clone lacks it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"development data not found at {SHARED_DATA} (set POSE_PERCEPTION_DATA)")
    return SHARED_DATA
