"""Fixtures of the exercises tests: the loopback fake OpenAI-compatible server (`openai_server`)."""

from tests.fakes.openai_server import openai_server_fixture  # noqa: F401
