"""The README's Python examples run as written (on a temporary folder)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_quickstart_and_data_stack_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = [b for b in python_blocks() if "my-bucket" not in b]  # S3 runs in test_s3
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(block.replace("/tmp/weather", f"{tmp_path}/weather"), namespace)
    assert namespace["paris"].frame(start="2024-01-02")["value"].tolist() == [4.25, 2.5]
    assert namespace["table"].num_rows == 2
    assert namespace["ddf"].compute()["value"].tolist() == [3.5, 4.25, 2.5]
    assert namespace["diff"].changed["value_b"].tolist() == [6.0]
    assert namespace["lyon"].frame()["value"].tolist() == [5.0, 5.5]  # restored
    assert [e.message for e in namespace["pressure"].log(limit=1)] == ["undo corrections"]
    assert namespace["repo"].tags()[0].name == "release-1"
