"""Fixtures shared by the env tests."""

from __future__ import annotations

import pytest

from envs.coq import CoqIde


@pytest.fixture
async def coq():
    """One `CoqIde` with the default config, closed afterwards."""
    env = CoqIde()
    yield env
    await env.close()
