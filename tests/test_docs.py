"""Every Python block of docs/user_guide.md runs, in order, in one namespace: the docs cannot rot."""
import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "user_guide.md"


def test_user_guide_code_runs(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for i, block in enumerate(blocks):
        exec(compile(block.replace("/tmp/", f"{tmp_path}/"), f"{GUIDE.name}[block {i}]", "exec"), namespace)
