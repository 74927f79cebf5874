"""``factagent chat``: a terminal chat with editable memory.

Questions (a line ending in "?" or starting with a question word) are answered by :meth:`Agent.ask` with their
action and citations, or an honest "I don't know." with the reason; any other line is told to the agent
(:meth:`Agent.tell`) and may become an edit of its memory. Commands: ``/why``, ``/history SUBJECT``,
``/rollback EDIT_ID``, ``/help``, ``/quit``. Typed factagent errors are shown as ``error: ...`` and the chat
goes on. Lines are read from stdin, so a script can be piped in.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from tools.errors import FactagentError

if TYPE_CHECKING:
    from agent import Agent
    from agent._answer import Answer, Signals

__all__ = ["ChatSession", "format_answer", "format_why", "is_question", "register"]

QUESTION_WORDS = frozenset(
    {"who", "whom", "whose", "what", "which", "where", "when", "why", "how", "is", "are", "was", "were"}
    | {"does", "do", "did", "can", "could", "will", "would", "should", "has", "have", "had"}
)
HELP = """\
  Ask a question (ending in "?" or starting with who/what/where/...): the agent answers or says it doesn't know.
  State a fact ("The CEO of Acme Corp is Jane Roe."): the agent notes it as an edit of its memory.
  /why               the evidence and signals behind the last answer
  /history SUBJECT   edits and facts about SUBJECT, newest first
  /rollback EDIT_ID  undo one edit (knowledge graph, memory and weights together)
  /undo              undo the last edit told in this chat
  /help              this text
  /quit              leave (end of input works too)"""


def register(sub: Any) -> None:
    """Add the ``chat`` command."""
    chat = sub.add_parser("chat", help="chat with the agent: ask questions, tell facts, /why, /history, /rollback")
    chat.add_argument("--user", default="user", help="who is talking (the trust policy's user name)")
    chat.add_argument("--namespace", default="default", help="memory namespace (default: default)")
    chat.set_defaults(func=run)


def is_question(line: str) -> bool:
    """A line ending in "?" or starting with a question word ("Who ...", "Is ...")."""
    text = line.strip()
    words = text.split(maxsplit=1)
    return text.endswith("?") or (bool(words) and words[0].lower().strip(",") in QUESTION_WORDS)


def _who(who: str | None) -> str:
    return (who or "").removeprefix("user:")


def format_answer(answer: Answer) -> str:
    """``Jane Roe.  [kg · edit e-7f3a01c2 · told by alice, 2026-11-21 16:02]`` or ``I don't know.  [abstain: ...]``."""
    if answer.abstained or not answer.text:
        return f"I don't know.  [abstain: {answer.reason or 'no confident source'}]"
    text = answer.text.rstrip(".") + "."
    tags: list[str] = [f"{answer.action} {answer.confidence:.2f}"]
    if answer.action == "kg" and answer.citations:
        top = answer.citations[0]
        c = top.citation
        when = f", {top.recorded_at:%Y-%m-%d %H:%M}" if top.recorded_at else ""
        if c.edit_id:
            tags.append(f"edit {c.edit_id} · told by {_who(c.who)}{when}")
        else:
            tags.append(f"assertion {c.assertion_id} · from {c.who or 'the knowledge graph'}")
    elif answer.action == "retrieval" and answer.citations:
        c = answer.citations[0].citation
        tags.append(f"memory {c.item_id or c.assertion_id} ({answer.citations[0].score:.2f})")
        if c.edit_id:
            tags.append(f"edit {c.edit_id}")
    else:
        tags.append(answer.reason)
    return f"{text}  [{' · '.join(t for t in tags if t)}]"


def _view(name: str, view: Any) -> str:
    return f'{name}: "{view.text}" p={view.prob:.2f}' if view is not None else f"{name}: -"


def format_why(answer: Answer) -> list[str]:
    """The signals behind ``answer``, one line per source (what ``/why`` prints)."""
    s: Signals | None = answer.signals
    if s is None:
        return [f"  policy: {answer.action}: {answer.reason}"]
    if s.subject:
        linked = f'  linked: subject "{s.subject}", relation {s.relation or "-"} (link score {s.link_score:.2f})'
    else:
        linked = "  linked: no known subject in the question"
    edits = sorted({e.citation.edit_id for e in s.kg if e.citation.edit_id})
    assertions = {e.citation.assertion_id for e in s.kg}
    kg = f"kg: {len(assertions)} valid assertion(s)" + (f" (edit {', '.join(edits)})" if edits else "")
    mem = f"memory: {len(s.memory)} hit(s), top {s.memory_top:.2f}" if s.memory else "memory: no hit"
    lines = [linked, f"  {kg} · {mem} · {_view('model', s.model)}"]
    if s.memory:
        lines.append(f'  best passage: "{s.memory[0].text}"')
    if s.rag is not None:
        support = "found in the passages" if s.rag_supported else "not in the passages"
        lines.append(f"  {_view('rag', s.rag)} ({support})")
    extra = []
    if s.agreement is not None:
        extra.append(f"paraphrases: {len(s.paraphrases)}, agreement {s.agreement:.2f}")
    if s.prior is not None:
        extra.append(_view("prior", s.prior) + (" (same answer: may be a guess)" if s.prior_agrees else ""))
    if s.familiarity is not None:
        extra.append(f"familiarity {s.familiarity:.1f}")
    if extra:
        lines.append("  " + " · ".join(extra))
    lines.append(f"  policy: {answer.action} (confidence {answer.confidence:.2f}): {answer.reason}")
    return lines


class ChatSession:
    """One conversation: routes each line to ask, tell or a command and returns the reply lines.

    Args:
        agent: the agent (opened with its tell pipeline).
        user: the speaker's user name (trust policy, edit authorship).
        namespace: the memory namespace questions and statements use.
    """

    def __init__(self, agent: Agent, user: str = "user", namespace: str = "default") -> None:
        self.agent = agent
        self.user = user
        self.namespace = namespace
        self.last: Answer | None = None
        self.edits: list[str] = []  # edit ids told in this chat, oldest first (for /undo)
        self.turns: list[str] = []  # what was asked and told, oldest first (a follow-up's "it" reads them)
        self.done = False
        self._commands: dict[str, Callable[[str], list[str]]] = {
            "/why": self._why,
            "/history": self._history,
            "/rollback": self._rollback,
            "/undo": self._undo,
            "/help": lambda _: HELP.splitlines(),
            "/quit": self._quit,
            "/exit": self._quit,
        }

    def handle(self, line: str) -> list[str]:
        """The reply to one input line (empty for a blank line); errors become ``error: ...`` lines."""
        text = line.strip()
        if not text:
            return []
        try:
            if text.startswith("/"):
                name, _, arg = text.partition(" ")
                command = self._commands.get(name.lower())
                if command is None:
                    return [f"error: unknown command {name} (try /help)"]
                return command(arg.strip())
            return self._ask(text) if is_question(text) else self._tell(text)
        except FactagentError as exc:
            return [f"error: {exc}"]

    def _ask(self, question: str) -> list[str]:
        from agent._follow_up import follow_up

        asked, name = follow_up(
            question,
            self.turns,
            lambda t: self.agent.names_in(t, self.namespace),
            lambda n, kind: self.agent.pronoun_fits(n, kind, self.namespace),
        )
        self.turns.append(question)
        self.last = self.agent.ask(asked, namespace=self.namespace)
        lines = [format_answer(self.last)]
        return [f"(asked as: {asked})", *lines] if name is not None else lines

    def _tell(self, statement: str) -> list[str]:
        result = self.agent.tell(statement, user=self.user, namespace=self.namespace)
        if result.status == "not_an_edit" and result.kind == "question":  # "Tell me ...", "I wonder whether ..."
            return self._ask(statement)
        self.turns.append(statement)
        if result.edit_id:
            self.edits.append(result.edit_id)
        return [result.message]

    def _why(self, _: str) -> list[str]:
        if self.last is None:
            return ["no answer yet: ask a question first"]
        return format_why(self.last)

    def _history(self, subject: str) -> list[str]:
        if not subject:
            return ["usage: /history SUBJECT"]
        seen = list(dict.fromkeys([self.namespace, *self.agent.shared]))  # what this chat's questions read
        records = self.agent.history(subject, namespaces=seen)
        if not records:
            return [f"no edits or facts about {subject}"]
        schema = self.agent.wm.graph.schema
        lines = []
        for r in records:
            facts = ", ".join(f"({t.subject}, {schema.relation(t.relation).label}, {t.object})" for t in r.triples)
            lines.append(f"  {r.edit_id}  {r.created_at:%Y-%m-%d %H:%M}  {_who(r.who):<12} {r.status:<12} {facts}")
        return lines

    def _rollback(self, edit_id: str) -> list[str]:
        if not edit_id:
            return ["usage: /rollback EDIT_ID"]
        message = self.agent.rollback(edit_id, user=self.user).message
        if edit_id in self.edits:
            self.edits.remove(edit_id)
        return [message]

    def _undo(self, _: str) -> list[str]:
        if not self.edits:
            return ["nothing to undo: no edit was told in this chat"]
        return self._rollback(self.edits[-1])

    def _quit(self, _: str) -> list[str]:
        self.done = True
        return ["bye."]

    def run(self, lines: Iterable[str], write: Callable[[str], None]) -> None:
        """Answer ``lines`` until they end or ``/quit``, writing each reply line prefixed ``factagent> ``."""
        for line in lines:
            for i, reply in enumerate(self.handle(line)):
                write(("factagent> " if i == 0 and not reply.startswith("  ") else "") + reply)
            if self.done:
                return


def _lines(interactive: bool) -> Iterator[str]:
    """stdin lines: with a prompt in a terminal, plain when piped."""
    if not interactive:
        yield from sys.stdin
        return
    while True:
        try:
            yield input("you> ")
        except EOFError:
            print()
            return


def run(args: argparse.Namespace) -> int:
    """``factagent chat``: open the agent, load the reference world if memory lacks it, then converse."""
    from agent import Agent
    from agent.cli._agent import _world, ensure_world_loaded
    from agent.config import open_home
    from agent.tell._trust import check_user
    from memory import Scope

    check_user(args.user)
    Scope(agent_id=args.namespace)  # a bad namespace is an error now, not at the first question
    home = open_home(args.home)
    agent = Agent.open(home)
    try:
        ensure_world_loaded(agent, _world())
        interactive = sys.stdin.isatty()
        if interactive:
            print(f"factagent chat — user {args.user}, namespace {args.namespace}. /help for commands, /quit to leave.")
        ChatSession(agent, args.user, args.namespace).run(_lines(interactive), print)
    finally:
        agent.close()
    return 0
