"""The export formats a user picks: a wrong one is refused in the registry's wording (#17)."""

import pytest

from dasl.deploy.model_export import FORMATS, require_packages
from dasl.errors import ConfigError


def test_unknown_export_format_names_the_valid_ones() -> None:
    assert FORMATS == ("onnx", "torchscript")
    wanted = r"^unknown export format 'onx'; choose one of onnx, torchscript \(did you mean onnx"
    with pytest.raises(ConfigError, match=wanted):
        require_packages("onx")
