"""Small deterministic labelled Chinese-like corpora for tests (three or more classes).

Each class draws most of its words from its own vocabulary and some from a shared one, so a
model can learn it but not perfectly.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

VOCAB = {
    "酒店": ["房间", "前台", "早餐", "床", "服务员", "入住", "卫生间", "空调"],
    "书籍": ["作者", "情节", "章节", "翻译", "印刷", "故事", "读者", "封面"],
    "电脑": ["屏幕", "键盘", "电池", "内存", "系统", "风扇", "硬盘", "驱动"],
    "手机": ["信号", "拍照", "充电", "屏幕", "通话", "应用", "电量", "外壳"],
}
SHARED = ["很好", "一般", "不错", "失望", "还行", "推荐", "价格", "质量", "物流"]


def make_rows(n_per_class: int = 60, classes: int = 3, seed: int = 0) -> list[tuple[str, str]]:
    """``(text, label)`` pairs; texts are unique."""
    rng = random.Random(seed)
    labels = list(VOCAB)[:classes]
    rows: dict[str, str] = {}
    for label in labels:
        while sum(1 for v in rows.values() if v == label) < n_per_class:
            words = rng.choices(VOCAB[label], k=3) + rng.choices(SHARED, k=2)
            rng.shuffle(words)
            text = "".join(words) + rng.choice(["。", "！", "", "，还可以"])
            rows.setdefault(text, label)
    return sorted(rows.items())


def write_jsonl(path: Path, rows: list[tuple[str, str]]) -> Path:
    """Rows as a JSON Lines file of ``{"text", "label"}`` objects (a `--from` source)."""
    path.write_text(
        "".join(
            json.dumps({"text": t, "label": lab}, ensure_ascii=False) + "\n" for t, lab in rows
        ),
        "utf-8",
    )
    return path


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """Run the CLI in-process with ``--json``; it must succeed; returns its parsed output."""
    from textops.cli import main

    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)
