"""The built-in demo: a scripted, over-cautious chat model and the guarded app around it."""

from guardrail.demo.model_app import DEFAULT_MODEL_NAME, ScriptedChatModel, create_model_app
from guardrail.demo.script import Reply, has_verified_clinical_context, reply_to

__all__ = [
    "DEFAULT_MODEL_NAME",
    "Reply",
    "ScriptedChatModel",
    "create_model_app",
    "has_verified_clinical_context",
    "reply_to",
]
