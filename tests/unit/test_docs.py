import re
from pathlib import Path

from trigger_maint.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented():
    text = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `(\w+)` \|", text, re.M))
    assert documented == set(Settings.__dataclass_fields__)
