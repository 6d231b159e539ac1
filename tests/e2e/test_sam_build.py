"""`sam build` turns the template into deployable artifacts: the layer and four thin functions."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_sam_build_packages_the_layer_and_thin_functions(built: str) -> None:
    build = Path(built)
    layer = build / "RolechainLayer" / "python"
    assert (layer / "rolechain" / "runner.py").exists()
    assert (layer / "rolechain" / "examples" / "jobs.yaml").exists()  # the functions' JOB_FILE
    assert (layer / "aws_lambda_powertools").is_dir() and (layer / "pydantic").is_dir()
    for function in ("SchedulerFunction", "WorkerFunction", "RemediationFunction", "ApiFunction"):
        files = [p.name for p in (build / function).iterdir() if p.is_file()]
        assert files == ["app.py"], (function, files)  # handlers only: the code lives in the layer
    assert "AWS::Serverless::LayerVersion" in (build / "template.yaml").read_text()
