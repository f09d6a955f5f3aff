"""Resolve effective permissions: a pure function from grants, overrides and gates to levels.

level(area) = the override of that area when one is in force, else the highest level given by any
role group of the channel that the user reaches (through the role, as an extra group, or through
an elevation whose window holds `now`: just-in-time access). Then the
hard gates: no Login flag, no application access; no API flag, no API access (read-only flag caps
API levels at read); data-protection areas need the owner's minimum privilege level.

Every level comes with its explanation: which group(s), override or gate decided it.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field

from . import catalog
from .catalog import Channel


@dataclass(frozen=True)
class GroupGrant:
    """A grant reached by the user: `group` gives `level` on `area`.

    A grant reached through an elevation (an approved access request) carries its window: it
    counts only while `starts_at <= now < ends_at`.
    """

    group_id: int
    group_name: str
    area: str
    level: str
    via_role: bool = True
    starts_at: datetime.datetime | None = None
    ends_at: datetime.datetime | None = None
    request_id: int | None = None

    @property
    def is_elevation(self) -> bool:
        return self.ends_at is not None


@dataclass(frozen=True)
class OverrideRule:
    """A per-user override of one area."""

    area: str
    level: str
    reason: str = ""
    expires_at: datetime.datetime | None = None
    override_id: int | None = None


@dataclass(frozen=True)
class Subject:
    """The facts about a user that gates depend on."""

    allow_login: bool = True
    allow_api_read: bool = False
    allow_api_write: bool = False
    interactive: bool = True
    privilege_level: int = 0
    data_protection_min_privilege: int = 0
    is_superuser: bool = False
    role_name: str = ""


@dataclass(frozen=True)
class Reason:
    """One source that decided or capped a level."""

    kind: str  # "group", "elevation", "override", "gate", "superuser"
    text: str
    level: str
    group_id: int | None = None
    override_id: int | None = None


@dataclass(frozen=True)
class Decision:
    """The level of one area and why."""

    area: catalog.Area
    level: str
    because: tuple[Reason, ...]
    group_level: str = catalog.NONE

    @property
    def rank(self) -> int:
        return self.area.rank(self.level)


@dataclass
class EffectivePermissions:
    """A user's levels in one channel, with the reasons behind each.

    `expires_at` is the earliest moment the result can change by itself (an override or an
    elevation ending, an approved elevation starting): past it the result is stale and must be
    resolved again.
    """

    channel: str
    levels: dict[str, str] = field(default_factory=dict)
    because: dict[str, tuple[Reason, ...]] = field(default_factory=dict)
    group_levels: dict[str, str] = field(default_factory=dict)
    expires_at: datetime.datetime | None = None

    def level(self, code: str) -> str:
        """Return the level held on `code` (none for areas of the other channel)."""
        return self.levels.get(code, catalog.NONE)

    def has(self, code: str, level: str = catalog.READ) -> bool:
        """Say whether the held level on `code` reaches `level`."""
        area = catalog.get(code)
        if area.channel != self.channel:
            return False
        return area.at_least(self.level(code), level)

    def explain(self, code: str) -> Decision:
        area = catalog.get(code)
        return Decision(
            area=area,
            level=self.level(code),
            because=self.because.get(code, ()),
            group_level=self.group_levels.get(code, catalog.NONE),
        )

    def decisions(self) -> list[Decision]:
        """Return one decision per area of the channel, in catalog order."""
        return [self.explain(area.code) for area in catalog.areas_for(self.channel)]

    def granted(self) -> list[Decision]:
        """Return the decisions above none."""
        return [d for d in self.decisions() if d.level != catalog.NONE]

    def is_fresh(self, now: datetime.datetime) -> bool:
        return self.expires_at is None or now < self.expires_at


def resolve(
    channel: str,
    subject: Subject,
    grants: Iterable[GroupGrant],
    overrides: Iterable[OverrideRule] = (),
    *,
    now: datetime.datetime,
    explain: bool = True,
) -> EffectivePermissions:
    """Return the effective permissions of a user in `channel`, each level explained.

    With `explain=False` (the per-request path) no reasons are collected: only levels and the
    earliest override expiry, which is all that enforcement needs.
    """
    if channel not in Channel.ALL:
        raise ValueError(f"Unknown channel {channel!r}.")
    result = EffectivePermissions(channel=channel)
    best: dict[str, tuple[int, list[Reason]]] = {}
    area: catalog.Area | None

    if subject.is_superuser:
        for area in catalog.areas_for(channel):
            best[area.code] = (
                area.rank(area.top),
                [Reason("superuser", "Platform administrator", area.top)],
            )
    for grant in grants:
        area = catalog.BY_CODE.get(grant.area)
        if area is None or area.channel != channel or not area.is_level(grant.level):
            continue  # a grant of an area retired from the catalog, or of the other channel
        if grant.ends_at is not None:
            starts_at = grant.starts_at or grant.ends_at
            if now < starts_at:
                _stale_at(result, starts_at)  # it starts later: the result changes then
                continue
            if grant.ends_at <= now:
                continue
            _stale_at(result, grant.ends_at)
        rank = area.rank(grant.level)
        if grant.is_elevation:
            until = grant.ends_at.strftime("%Y-%m-%d %H:%M UTC") if grant.ends_at else ""
            text = f"Role group {grant.group_name} (elevation until {until}"
            text += f", request #{grant.request_id})" if grant.request_id else ")"
            reason = Reason("elevation", text, grant.level, grant.group_id)
        else:
            via = (
                f"role {subject.role_name}"
                if grant.via_role and subject.role_name
                else ("the role" if grant.via_role else "extra group")
            )
            reason = Reason(
                "group", f"Role group {grant.group_name} (via {via})", grant.level, grant.group_id
            )
        current = best.get(area.code)
        if current is None or rank > current[0]:
            best[area.code] = (rank, [reason])
        elif rank == current[0] and rank > 0:
            current[1].append(reason)

    for code, (rank, reasons) in best.items():
        area = catalog.BY_CODE[code]
        result.group_levels[code] = area.levels[rank]
        if rank > 0:
            result.levels[code] = area.levels[rank]
            result.because[code] = tuple(reasons)

    for override in overrides:
        area = catalog.BY_CODE.get(override.area)
        if area is None or area.channel != channel or not area.is_level(override.level):
            continue
        if override.expires_at is not None:
            if override.expires_at <= now:
                continue
            _stale_at(result, override.expires_at)
        group_level = result.group_levels.get(area.code, catalog.NONE)
        kind = (
            "raises"
            if area.rank(override.level) > area.rank(group_level)
            else ("restricts" if area.rank(override.level) < area.rank(group_level) else "confirms")
        )
        text = f"Override {kind} the groups' {catalog.LEVEL_LABELS[group_level].lower()}"
        if override.reason:
            text += f": {override.reason}"
        reason = Reason("override", text, override.level, override_id=override.override_id)
        _set(result, area, override.level, (reason,))

    _apply_gates(result, subject)
    if not explain:
        result.because = {}
        result.group_levels = {}
    return result


def _stale_at(result: EffectivePermissions, moment: datetime.datetime) -> None:
    if result.expires_at is None or moment < result.expires_at:
        result.expires_at = moment


def _set(result: EffectivePermissions, area: catalog.Area, level: str, because) -> None:
    if level == catalog.NONE:
        result.levels.pop(area.code, None)
    else:
        result.levels[area.code] = level
    result.because[area.code] = tuple(because)


def _apply_gates(result: EffectivePermissions, subject: Subject) -> None:
    if result.channel == Channel.APPLICATION:
        if not subject.allow_login or not subject.interactive:
            text = (
                "No Login flag" if subject.interactive else "API users have no application access"
            )
            for code in list(result.levels):
                _gate(result, code, catalog.NONE, text)
            return
        if (
            subject.privilege_level < subject.data_protection_min_privilege
            and not subject.is_superuser
        ):
            for code in list(result.levels):
                if catalog.BY_CODE[code].is_data_protection:
                    _gate(
                        result,
                        code,
                        catalog.NONE,
                        f"Privilege level {subject.privilege_level} is below the "
                        f"{subject.data_protection_min_privilege} that data-protection areas need",
                    )
        return
    if not (subject.allow_api_read or subject.allow_api_write):
        for code in list(result.levels):
            _gate(result, code, catalog.NONE, "No API access flag")
        return
    if not subject.allow_api_write:
        for code, level in list(result.levels.items()):
            if level == catalog.WRITE:
                _gate(result, code, catalog.READ, "API read flag only: writes are not allowed")


def _gate(result: EffectivePermissions, code: str, level: str, text: str) -> None:
    area = catalog.BY_CODE[code]
    before = result.because.get(code, ())
    _set(result, area, level, (*before, Reason("gate", text, level)))
