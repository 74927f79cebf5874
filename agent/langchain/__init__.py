"""factagent for LangChain: the agent as tools, its memory as a retriever, and a tool-calling loop.

``factagent_tools(agent)`` gives a tool-calling model ``ask``, ``remember``, ``forget`` and ``verify_claim``
(pydantic argument schemas; errors come back as observations, never raised into the loop);
``FactRetriever`` serves the agent's hybrid retrieval as ``Document``s with their citations;
``run_tool_loop`` runs any ``bind_tools`` model against them, and ``ScriptedChatModel`` plays a fixed script
where no LLM is at hand.

Example:
    >>> from agent.langchain import FactRetriever, factagent_tools  # doctest: +SKIP
    >>> tools = factagent_tools(agent, user="alice")  # doctest: +SKIP
"""

from agent.langchain._loop import ScriptedChatModel, Step, run_tool_loop
from agent.langchain._retriever import FactRetriever, evidence_document
from agent.langchain._tools import (
    AskInput,
    AskTool,
    FactagentTool,
    ForgetInput,
    ForgetTool,
    RememberInput,
    RememberTool,
    VerifyClaimInput,
    VerifyClaimTool,
    answer_json,
    factagent_tools,
)
from agent.langchain._verify import ClaimCheck, Verdict, Verification, check_triple, verify_claim

__all__ = [
    "AskInput",
    "AskTool",
    "ClaimCheck",
    "FactRetriever",
    "FactagentTool",
    "ForgetInput",
    "ForgetTool",
    "RememberInput",
    "RememberTool",
    "ScriptedChatModel",
    "Step",
    "Verdict",
    "Verification",
    "VerifyClaimInput",
    "VerifyClaimTool",
    "answer_json",
    "check_triple",
    "evidence_document",
    "factagent_tools",
    "run_tool_loop",
    "verify_claim",
]
