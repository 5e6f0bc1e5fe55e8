"""Fixtures shared by the test files (helpers they import are in helpers.py)."""
import pytest
from helpers import write_cityscapes_tree


@pytest.fixture
def tiny_cityscapes(tmp_path):
    return write_cityscapes_tree(tmp_path / "cityscapes")
