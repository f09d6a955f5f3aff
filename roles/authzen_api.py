"""AuthZEN 1.0 (OpenID Authorization API): decisions for the platform's other services.

    POST /access/v1/evaluation    one decision
    POST /access/v1/evaluations   many, with the specification's evaluation semantics

A subject is a user of the token's organisation (`type` "user", `id` their id or username), a
resource is a permission area (`type` "area", `id` its code), an action is a level (`name`).
`context.channel` picks the channel ("application" by default), `context.explain` asks for the
reasons. The caller's token needs API Authorization read, as for `POST /api/v1/authz/check`;
both doors answer through `roles.decisions`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.core.exceptions import PermissionDenied, ValidationError
from ninja import Field, Router, Schema

from . import catalog, decisions

router = Router(tags=["AuthZEN"])

Text = Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")]
MAX_EVALUATIONS = 500


class Subject(Schema):
    type: Text
    id: Text
    properties: dict[str, Any] | None = None


class Resource(Schema):
    type: Text
    id: Text
    properties: dict[str, Any] | None = None


class Action(Schema):
    name: Text
    properties: dict[str, Any] | None = None


class Context(Schema):
    channel: Literal["application", "api"] | None = None
    explain: bool = False

    model_config = {"extra": "allow"}


class EvaluationIn(Schema):
    subject: Subject
    resource: Resource
    action: Action
    context: Context | None = None


class EvaluationOut(Schema):
    decision: bool
    context: dict[str, Any] | None = None


class PartialEvaluation(Schema):
    subject: Subject | None = None
    resource: Resource | None = None
    action: Action | None = None
    context: Context | None = None


class Options(Schema):
    evaluations_semantic: Literal["execute_all", "deny_on_first_deny", "permit_on_first_permit"] = (
        "execute_all"
    )

    model_config = {"extra": "allow"}


class EvaluationsIn(Schema):
    subject: Subject | None = None
    resource: Resource | None = None
    action: Action | None = None
    context: Context | None = None
    evaluations: list[PartialEvaluation] | None = Field(None, max_length=MAX_EVALUATIONS)
    options: Options | None = None


class EvaluationsOut(Schema):
    decision: bool | None = None
    context: dict[str, Any] | None = None
    evaluations: list[EvaluationOut] | None = None


REASONS = {
    "unknown_subject": "No such user in your organisation.",
    "unsupported_subject": 'Subjects are users (type "user").',
    "unknown_resource": 'No such permission area; resources are areas (type "area").',
    "unknown_action": "The area has no such level.",
    "other_channel": "The area belongs to the other channel.",
    "not_allowed": "The user does not hold this level.",
}


def _require_decider(request) -> None:
    if not request.api_permissions.has(catalog.API_AUTHZ, catalog.READ):
        raise PermissionDenied("Decisions need API Authorization read.")


def _subject_ref(subject: Subject) -> int | str | None:
    if subject.type != "user":
        return None
    return int(subject.id) if subject.id.isdigit() and len(subject.id) < 16 else subject.id


def _answer(users: dict, subject, resource, action, context) -> dict:
    """Return one AuthZEN decision object."""
    context = context or Context()
    ref = _subject_ref(subject)
    if ref is None:
        return _refused("unsupported_subject")
    if resource.type != "area":
        return _refused("unknown_resource")
    answer = decisions.decide(
        users.get(ref),
        resource.id,
        action.name,
        channel=context.channel or catalog.Channel.APPLICATION,
        explain=context.explain,
    )
    if answer.refusal:
        return _refused(answer.refusal)
    out: dict[str, Any] = {"decision": answer.allowed}
    if context.explain or not answer.allowed:
        out["context"] = {"level": answer.level}
        if not answer.allowed:
            out["context"]["reason_admin"] = {"en": REASONS["not_allowed"]}
        if context.explain:
            out["context"]["reasons"] = [
                {"kind": r.kind, "text": r.text, "level": r.level} for r in answer.because
            ]
    return out


def _refused(reason: str) -> dict:
    return {"decision": False, "context": {"id": reason, "reason_admin": {"en": REASONS[reason]}}}


def _users_for(request, subjects, contexts) -> dict:
    refs = {ref for ref in (_subject_ref(s) for s in subjects if s is not None) if ref is not None}
    explain = any(context is not None and context.explain for context in contexts)
    return decisions.find_users(request.api_user.owner, refs, with_role=explain)


@router.post(
    "/evaluation",
    response=EvaluationOut,
    exclude_none=True,
    summary="Access evaluation (AuthZEN 1.0)",
)
def evaluation(request, payload: EvaluationIn):
    """May `subject` perform `action` (a level) on `resource` (an area)?"""
    _require_decider(request)
    users = _users_for(request, [payload.subject], [payload.context])
    return _answer(users, payload.subject, payload.resource, payload.action, payload.context)


@router.post(
    "/evaluations",
    response=EvaluationsOut,
    exclude_none=True,
    summary="Access evaluations (AuthZEN 1.0)",
)
def evaluations(request, payload: EvaluationsIn):
    """Many decisions in one call: the top-level subject, resource, action and context are the
    defaults of each entry. `options.evaluations_semantic`: execute_all (default),
    deny_on_first_deny or permit_on_first_permit (evaluation stops after that decision, and
    the answer lists the decisions made). Without `evaluations`, one decision as
    `/evaluation`."""
    _require_decider(request)
    entries = payload.evaluations or []
    if not entries:
        if not (payload.subject and payload.resource and payload.action):
            raise ValidationError("Send subject, resource and action, or a list of evaluations.")
        users = _users_for(request, [payload.subject], [payload.context])
        return _answer(users, payload.subject, payload.resource, payload.action, payload.context)
    filled = []
    problems = {}
    for n, entry in enumerate(entries):
        subject = entry.subject or payload.subject
        resource = entry.resource or payload.resource
        action = entry.action or payload.action
        missing = [
            name
            for name, value in (("subject", subject), ("resource", resource), ("action", action))
            if value is None
        ]
        if missing:
            problems[f"evaluations.{n}"] = f"Missing {', '.join(missing)} (and no default)."
        filled.append((subject, resource, action, entry.context or payload.context))
    if problems:
        raise ValidationError(problems)
    semantic = (payload.options or Options()).evaluations_semantic
    users = _users_for(request, [s for s, *_ in filled], [c for *_, c in filled])
    results = []
    for subject, resource, action, context in filled:
        result = _answer(users, subject, resource, action, context)
        results.append(result)
        if semantic == "deny_on_first_deny" and not result["decision"]:
            break
        if semantic == "permit_on_first_permit" and result["decision"]:
            break
    return {"evaluations": results}
