"""Issue #11.6: the README's deploy section walks the steps in the order they work, and every rolechain
command it shows is one the CLI accepts (placeholders filled in)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from rolechain.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOYING = (ROOT / "README.md").read_text().split("## Deploying", 1)[1].split("\n## ", 1)[0]
PLACEHOLDERS = {
    "<HubRoleArn>": "arn:aws:iam::111111111111:role/rolechain-hub",
    "<member-account>": "222222222222",
    "<hub-account>": "111111111111",
    "<run_id>": "0123456789ab",
    "<ScheduleGroupName>": "rolechain-schedules",
    "<ARN>": "arn:aws:iam::111111111111:user/alice",
    "<alice-mfa-arn>": "arn:aws:iam::111111111111:mfa/alice",
}


def shell_commands(text: str) -> list[str]:
    """The commands of the section's bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for raw in joined.splitlines():
            line = raw.split(" # ", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def test_the_deploy_steps_come_in_the_order_they_work() -> None:
    steps = [
        "aws ssm put-parameter --name /rolechain/external-id",
        "rolechain validate",
        "sam build && sam deploy --guided",
        "aws cloudformation create-stack-set",
        "ParameterKey=ForwardEvents,ParameterValue=true",
        "rolechain whoami --via <HubRoleArn>",
        "rolechain runs start inventory",
        "rolechain runs show <run_id>",
        "FROM rolechain.results",
    ]
    where = [DEPLOYING.find(step) for step in steps]
    assert -1 not in where, [s for s, w in zip(steps, where, strict=True) if w == -1]
    assert where == sorted(where)


# usage lines ("[--flag]", "a|b") are synopses, not commands
ROLECHAIN_COMMANDS = [
    c for c in shell_commands(DEPLOYING) if c.startswith("rolechain ") and " [" not in c and "|" not in c
]


def test_the_section_shows_rolechain_commands() -> None:
    assert len(ROLECHAIN_COMMANDS) >= 8


@pytest.mark.parametrize("command", ROLECHAIN_COMMANDS)
def test_every_rolechain_command_of_the_deploy_section_parses(command: str) -> None:
    for placeholder, value in PLACEHOLDERS.items():
        command = command.replace(placeholder, value)
    assert not re.search(r"<[\w-]+>", command), command  # every placeholder filled in
    command = command.split(" > ", 1)[0]  # a redirection is the shell's
    argv = shlex.split(command.replace('"$EXTERNAL_ID"', "x" * 16))[1:]
    args = build_parser().parse_args(argv)  # argparse exits (SystemExit) on what the CLI refuses
    assert args.command is not None
