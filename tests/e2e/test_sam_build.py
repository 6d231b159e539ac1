"""`sam build` turns the template into deployable artifacts: the layer and four thin functions."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_sam_build_packages_the_layer_and_thin_functions(built: str) -> None:
    build = Path(built)
    layer = build / "RolechainLayer" / "python"
    assert (layer / "rolechain" / "runner.py").exists()
    assert (layer / "rolechain-config" / "jobs.yaml").exists()  # the functions' JOB_FILE
    assert (layer / "aws_lambda_powertools").is_dir() and (layer / "pydantic").is_dir()
    for function in ("SchedulerFunction", "WorkerFunction", "RemediationFunction", "ApiFunction"):
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
