"""A scripted LangChain chat model: the fake behind `duoniche.llm_models`' seam for unit tests.

`ScriptedChatModel` is a real `BaseChatModel`: the boundary wraps it with LangChain's own
`with_structured_output` (tool calling through `bind_tools`), so parsing, the not-None guard,
attempts and the ledger all run as in production. Only the provider is fake.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import PrivateAttr

USAGE = {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150}


class ScriptedChatModel(BaseChatModel):
    """Answers from `script`, one entry per call (the last one repeats).

    A dict becomes a structured-output tool call with those arguments, a string a plain-text
    answer (no structure), an exception is raised. `delay` makes every call slow.
    """

    script: list[Any] = []
    delay: float = 0.0
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        return self._calls

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self.bind(tool_name=convert_to_openai_tool(tools[0])["function"]["name"])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        with self._lock:
            index = len(self._calls)
            self._calls.append(list(messages))
        if self.delay:
            time.sleep(self.delay)
        entry = self.script[min(index, len(self.script) - 1)] if self.script else "no script"
        if isinstance(entry, BaseException):
            raise entry
        if isinstance(entry, dict):
            message = AIMessage(
                content="",
                tool_calls=[{"name": kwargs["tool_name"], "args": entry, "id": f"call_{index}"}],
                usage_metadata=USAGE,
            )
        else:
            message = AIMessage(content=str(entry), usage_metadata=USAGE)
        return ChatResult(generations=[ChatGeneration(message=message)])
