"""Property-based tests of the job-file loader (issue #10): whatever bytes or YAML a job file holds,
loading it either gives a JobFile or raises ConfigError naming what was wrong; never another error."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from rolechain.errors import ConfigError
from rolechain.jobs import MAX_VALUES, JobFile, load_job_file, parse_job_file

BUDGET = settings(max_examples=150, deadline=None)

# The job file's own words, so generated files get past the top level into jobs, rules and params.
WORDS = [
    "version", "defaults", "jobs", "remediations", "action", "params", "targets", "accounts",
    "exclude_accounts", "regions", "role_name", "role_path", "role_arn_template", "via", "external_id",
    "ssm_parameter", "concurrency", "dry_run", "schedule", "name", "match", "source", "event_names",
    "params_from_event", "list_buckets", "whoami", "tag_resources", "block_s3_public_access", "tags", "arns",
    "resource_types", "bucket", "200000000001", "us-east-1", "us-esat-1", "{account}", "{detail.x",
    "arn:aws:iam::{account}:role/x", "rate(1 day)", "٢٠٠",
]  # fmt: skip
SCALARS = (
    st.sampled_from(WORDS)
    | st.text(max_size=12)
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.booleans()
    | st.none()
)
DATA = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=40,
)
JOB_FILES = st.fixed_dictionaries(
    {"jobs": st.dictionaries(st.sampled_from(["j1", "j2", "bad name"]), DATA, max_size=3)},
    optional={"version": DATA, "defaults": DATA, "remediations": st.lists(DATA, max_size=3)},
)
YAML_ALPHABET = st.sampled_from([*list("{}[]:,-&*!|>'\"#%@`?\n\t "), "jobs", "a", "1", "é", "\ufeff", "\x00"])


def load(tmp: Path, content: bytes) -> JobFile | None:
    path = tmp / "jobs.yaml"
    path.write_bytes(content)
    try:
        return load_job_file(path)
    except ConfigError as exc:
        assert exc.field and exc.rule  # names what was wrong
        return None


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("job-files")


@BUDGET
@given(content=st.binary(max_size=300))
def test_any_bytes_load_or_raise_config_error(tmp: Path, content: bytes) -> None:
    load(tmp, content)


@BUDGET
@given(text=st.lists(YAML_ALPHABET, max_size=60).map("".join))
def test_any_yaml_punctuation_loads_or_raises_config_error(tmp: Path, text: str) -> None:
    load(tmp, text.encode("utf-8", "surrogatepass"))


@BUDGET
@given(data=JOB_FILES | DATA)
def test_any_yaml_document_loads_or_raises_config_error(tmp: Path, data: Any) -> None:
    load(tmp, yaml.safe_dump(data).encode())


@BUDGET
@given(data=JOB_FILES | DATA)
def test_any_data_parses_or_raises_config_error(data: Any) -> None:
    with contextlib.suppress(ConfigError):
        parse_job_file(data)


def test_an_alias_bomb_is_refused_quickly(tmp: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    levels += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    path = tmp / "bomb.yaml"
    path.write_text("\n".join([*levels, "jobs: {}", ""]))
    with pytest.raises(ConfigError, match=f"more than {MAX_VALUES} values"):
        load_job_file(path)


@settings(max_examples=150, deadline=None)
@given(
    caps=st.dictionaries(
        st.sampled_from(["s3", "ec2", "iam", "resourcegroupstaggingapi", "s4", "ec22", "", "S3"]),
        st.one_of(st.integers(-2, 300), st.booleans(), st.text(max_size=3), st.none()),
        max_size=4,
    )
)
def test_any_service_concurrency_is_accepted_as_known_services_and_counts_or_refused_naming_the_field(
    caps: dict[str, object],
) -> None:
    from rolechain.jobs import known_services

    job = {"action": "list_buckets", "targets": {"accounts": ["200000000001"]}, "service_concurrency": caps}
    try:
        parsed = parse_job_file({"jobs": {"j": job}}, source="jobs.yaml")
    except ConfigError as exc:
        assert exc.field.startswith("jobs.j.service_concurrency")
    else:
        accepted = parsed.jobs["j"].service_concurrency
        assert accepted == caps
        assert all(s in known_services() and type(n) is int and 1 <= n <= 256 for s, n in accepted.items())


class _PurePythonUniqueKeys(yaml.SafeLoader):
    """The reference: PyYAML's pure-Python safe loader, refusing duplicate keys as the job-file loader does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        with contextlib.suppress(TypeError):
            if len(set(keys)) != len(keys):
                raise yaml.constructor.ConstructorError(None, None, "duplicate key", node.start_mark)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


@BUDGET
@given(data=JOB_FILES | DATA, duplicate=st.booleans())
def test_the_libyaml_loader_reads_what_the_pure_python_loader_reads(data: Any, duplicate: bool) -> None:
    from rolechain.jobs import _unique_key_loader

    text = yaml.safe_dump(data)
    if duplicate and isinstance(data, dict) and data:
        text += text.splitlines()[0] + "\n"  # the first top-level key given twice
    try:
        expected: Any = yaml.load(text, Loader=_PurePythonUniqueKeys)
    except yaml.YAMLError:
        expected = "refused"
    try:
        got: Any = yaml.load(text, Loader=_unique_key_loader())
    except yaml.YAMLError:
        got = "refused"
    assert yaml.safe_dump(got) == yaml.safe_dump(expected)  # as text: NaN is never equal to itself
