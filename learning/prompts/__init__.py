"""Prompts of the learning app, one small versioned module each.

Each module declares a `Prompt` (id, version, system and user templates, output schema) for the
LLM boundary in `duoniche.llm`. Learner data goes only into the user message, inside data tags
whose closing tags are neutralised in the content; the system message says that tagged content is
data and that instructions in it are to be ignored.
"""
