"""Buttons and modals. Custom ids carry everything a click needs, so they keep
working after a restart (discord.py `DynamicItem`s are matched by pattern)."""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any, cast

import discord

from quizbot.bot.embeds import BUTTON_LABEL_MAX, LETTERS, clip
from quizbot.models import QuestionKind
from quizbot.services.quiz import QuestionView
from quizbot.services.stats import Cursor, Period

if TYPE_CHECKING:
    from quizbot.bot.client import QuizBot

CUSTOM_ID_MAX = 100


def _bot(interaction: discord.Interaction[Any]) -> QuizBot:
    return cast("QuizBot", interaction.client)


class ChoiceButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"qb:a:(?P<session>\d+):(?P<question>\d+):(?P<index>\d)",
):
    """One answer option (A–D, True/False) of one question of one session."""

    def __init__(self, session_id: int, question_id: int, index: int, label: str = "?") -> None:
        self.session_id, self.question_id, self.index = session_id, question_id, index
        super().__init__(
            discord.ui.Button(
                label=clip(label, BUTTON_LABEL_MAX),
                style=discord.ButtonStyle.primary,
                custom_id=f"qb:a:{session_id}:{question_id}:{index}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ChoiceButton:
        return cls(int(match["session"]), int(match["question"]), int(match["index"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = _bot(interaction)
        try:
            await bot.game.answer_choice(interaction, self.session_id, self.question_id, self.index)
        except Exception as exc:
            await bot.on_component_error(interaction, exc)


class FreeTextButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"qb:t:(?P<session>\d+):(?P<question>\d+)",
):
    """Opens the modal where a free-text answer is typed."""

    def __init__(self, session_id: int, question_id: int) -> None:
        self.session_id, self.question_id = session_id, question_id
        super().__init__(
            discord.ui.Button(
                label="Answer",
                emoji="✏️",
                style=discord.ButtonStyle.primary,
                custom_id=f"qb:t:{session_id}:{question_id}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> FreeTextButton:
        return cls(int(match["session"]), int(match["question"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        form = AnswerModal(self.session_id, self.question_id)
        await interaction.response.send_modal(form)
        # discord.py keeps sent modals by custom id alone, in memory: the forms of two
        # players for one question would replace each other, and a restart would forget
        # them. So the submission is routed by `submitted_answer` instead.
        form.stop()


ANSWER_FIELD = "answer"
_ANSWER_MODAL = re.compile(r"qb:m:(?P<session>\d+):(?P<question>\d+)")


class AnswerModal(discord.ui.Modal):
    """A one-field form for a free-text answer (submissions: see `submitted_answer`)."""

    answer: discord.ui.TextInput[AnswerModal] = discord.ui.TextInput(
        label="Your answer", custom_id=ANSWER_FIELD, max_length=200, placeholder="Type your answer"
    )

    def __init__(self, session_id: int, question_id: int) -> None:
        super().__init__(title="Your answer", custom_id=f"qb:m:{session_id}:{question_id}")
        self.session_id, self.question_id = session_id, question_id


def submitted_answer(interaction: discord.Interaction[Any]) -> tuple[int, int, str] | None:
    """(session id, question id, text) when `interaction` submits an answer form, else None."""
    if interaction.type is not discord.InteractionType.modal_submit or interaction.data is None:
        return None
    data = cast("dict[str, Any]", interaction.data)
    match = _ANSWER_MODAL.fullmatch(str(data.get("custom_id", "")))
    if match is None:
        return None
    return int(match["session"]), int(match["question"]), _field_value(data, ANSWER_FIELD)


def _field_value(node: Any, custom_id: str) -> str:
    """The value of text input `custom_id`, wherever the layout nests it (rows or labels)."""
    if isinstance(node, dict):
        if node.get("custom_id") == custom_id and "value" in node:
            return str(node["value"])
        children: list[Any] = [*node.get("components", []), node.get("component")]
        return next((v for v in (_field_value(c, custom_id) for c in children) if v), "")
    if isinstance(node, list):
        return next((v for v in (_field_value(c, custom_id) for c in node) if v), "")
    return ""


def question_components(view: QuestionView) -> discord.ui.View:
    """The buttons under a question (persistent: no timeout)."""
    components = discord.ui.View(timeout=None)
    if view.kind is QuestionKind.MULTIPLE_CHOICE:
        for i, choice in enumerate(view.choices[: len(LETTERS)]):
            components.add_item(
                ChoiceButton(view.session_id, view.question_id, i, f"{LETTERS[i]}: {choice}")
            )
    elif view.kind is QuestionKind.TRUE_FALSE:
        components.add_item(ChoiceButton(view.session_id, view.question_id, 0, "True"))
        components.add_item(ChoiceButton(view.session_id, view.question_id, 1, "False"))
    else:
        components.add_item(FreeTextButton(view.session_id, view.question_id))
    return components


class PageButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"qb:lb:(?P<scope>[gx]):(?P<period>all|day|week|month):(?P<cursor>[0-9.-]*)",
):
    """Next / first page of a leaderboard; the cursor travels in the custom id."""

    def __init__(self, scope: str, period: Period, cursor: Cursor | None, label: str) -> None:
        self.scope, self.period, self.cursor = scope, period, cursor
        encoded = cursor.encode() if cursor else ""
        super().__init__(
            discord.ui.Button(
                label=label,
                style=discord.ButtonStyle.secondary,
                custom_id=f"qb:lb:{scope}:{period.value}:{encoded}",
            )
        )

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> PageButton:
        cursor = Cursor.decode(match["cursor"]) if match["cursor"] else None
        label = getattr(item, "label", None) or ("Next ▶" if cursor else "⏮ Top")
        return cls(match["scope"], Period(match["period"]), cursor, label)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot = _bot(interaction)
        try:
            await bot.show_leaderboard(
                interaction, scope=self.scope, period=self.period, after=self.cursor, edit=True
            )
        except Exception as exc:
            await bot.on_component_error(interaction, exc)


def page_components(
    scope: str, period: Period, next_cursor: Cursor | None, first: bool
) -> discord.ui.View:
    """First-page and next-page buttons of a leaderboard message."""
    components = discord.ui.View(timeout=None)
    if not first:
        components.add_item(PageButton(scope, period, None, "⏮ Top"))
    if next_cursor is not None:
        components.add_item(PageButton(scope, period, next_cursor, "Next ▶"))
    return components


# How long a yes / cancel question waits for its answer.
CONFIRM_SECONDS = 60.0


class Confirm(discord.ui.View):
    """Yes / cancel for destructive commands; only the person asked may answer."""

    def __init__(self, owner_id: int, *, timeout: float | None = None) -> None:
        super().__init__(timeout=CONFIRM_SECONDS if timeout is None else timeout)
        self.owner_id = owner_id
        self.confirmed: bool | None = None

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "Only the person who asked can answer this.", ephemeral=True
            )
            return False
        return True

    @discord.ui.button(label="Yes, do it", style=discord.ButtonStyle.danger)
    async def yes(self, interaction: discord.Interaction[Any], _: discord.ui.Button[Any]) -> None:
        self.confirmed = True
        await interaction.response.edit_message(content="Working on it…", view=None)
        self.stop()

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def no(self, interaction: discord.Interaction[Any], _: discord.ui.Button[Any]) -> None:
        self.confirmed = False
        await interaction.response.edit_message(content="Cancelled: nothing changed.", view=None)
        self.stop()


async def confirmed(interaction: discord.Interaction[Any], question: str) -> bool:
    """Ask the user (privately) to confirm; True once they pressed yes.

    Unanswered in time, the question says so and loses its buttons, which would fail.
    """
    confirm = Confirm(interaction.user.id)
    await interaction.response.send_message(question, view=confirm, ephemeral=True)
    await confirm.wait()
    if confirm.confirmed is None:
        # (If the interaction's token has expired too, the buttons just fail.)
        with contextlib.suppress(discord.HTTPException):
            await interaction.edit_original_response(
                content="No answer in time: nothing changed.", view=None
            )
    return bool(confirm.confirmed)


DYNAMIC_ITEMS = (ChoiceButton, FreeTextButton, PageButton)
