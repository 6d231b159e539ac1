"""`sam build` turns the template into deployable artifacts: the layer and five thin functions."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_sam_build_packages_the_layer_and_thin_functions(built: str) -> None:
    build = Path(built)
    layer = build / "RolechainLayer" / "python"
    assert (layer / "rolechain" / "runner.py").exists()
    assert (layer / "rolechain-config" / "jobs.yaml").exists()  # the functions' JOB_FILE
    assert (layer / "aws_lambda_powertools").is_dir() and (layer / "pydantic").is_dir()
    assert (layer / "crhelper").is_dir()  # the schedules function's CloudFormation response protocol
    for function in ("SchedulerFunction", "WorkerFunction", "RemediationFunction", "ApiFunction", "SchedulesFunction"):
        files = [p.name for p in (build / function).iterdir() if p.is_file()]
        assert files == ["app.py"], (function, files)  # handlers only: the code lives in the layer
    assert "AWS::Serverless::LayerVersion" in (build / "template.yaml").read_text()


def test_sam_build_layer_holds_production_code_only(built: str) -> None:
    # Given the layer as `sam build` makes it (the tier's local job file sits beside python/, not in it)
    layer = Path(built) / "RolechainLayer" / "python"
    package = layer / "rolechain"
    # Then no development module is there, and nothing in the package imports moto or the dev package
    assert not (layer / "rolechain_dev").exists()
    assert not {"emulator.py", "local.py", "demo.py", "examples"} & {p.name for p in package.iterdir()}
    for module in package.rglob("*.py"):
        text = module.read_text()
        assert "import moto" not in text and "from moto" not in text, module
        assert "rolechain_dev" not in text, module
    assert not (layer / "moto").exists()


def test_sam_build_layer_ships_bytecode_lambda_uses_as_is(built: str) -> None:
    # Given the layer as `sam build` makes it (Lambda mounts it read-only at /opt: nothing compiled is kept)
    layer = Path(built) / "RolechainLayer" / "python"
    sources = sorted(layer.rglob("*.py"))
    assert len(sources) > 500  # the package and its dependencies, boto3, botocore, pydantic, powertools...
    # Then every module has its CPython 3.13 bytecode beside it, hash-based and unchecked (flags 0b01): the
    # interpreter uses it whatever the source's mtime is after the zip round trip, and never recompiles
    missing, checked = [], []
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        if not pyc.is_file():
            missing.append(str(source.relative_to(layer)))
            continue
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        if flags != 0b01:
            checked.append(str(pyc.relative_to(layer)))
    assert missing == [] and checked == [], (missing[:10], checked[:10])
    assert (layer / "rolechain" / "hub" / "__pycache__" / "lambda_support.cpython-313.pyc").is_file()
