"""Fixtures the integration tests of the LLM path share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_openai import FakeOpenAI
from tests.llm_scripts import sensible
from tests.prompt_sizes import openai_environment


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    """The fake server, playing a sensible model, with the environment pointing ChatOpenAI at it."""
    server = FakeOpenAI(sensible).start()
    try:
        with openai_environment(server.base_url):
            yield server
    finally:
        server.stop()
