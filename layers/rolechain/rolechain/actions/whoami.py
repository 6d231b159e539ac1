"""whoami: the identity at the target, a cheap health check of the whole chain."""

from __future__ import annotations

from typing import Any

from rolechain.actions import ActionContext, Params, register


class WhoamiParams(Params):
    pass


@register(
    "whoami",
    params=WhoamiParams,
    iam_actions=["sts:GetCallerIdentity"],
    changes=False,
    summary=lambda out: str(out["arn"]),
)
def whoami(ctx: ActionContext, params: WhoamiParams) -> dict[str, Any]:
    """The identity at the end of the chain in the target account (GetCallerIdentity)."""
    identity = ctx.client("sts").get_caller_identity()
    return {"arn": identity["Arn"], "account": identity["Account"], "user_id": identity["UserId"]}
