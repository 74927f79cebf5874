"""Re-create the copied Chinese subsets in this folder from checkouts of their sources (maintainers only).

Usage (from the repository root, with the two source repositories checked out)::

    python eval/world/source/zh/prepare.py XINHUA_CHECKOUT POETRY_CHECKOUT

Selection, deterministic (recorded in SOURCES.md):

* ``xiehouyu.json`` (pwxcoo/chinese-xinhua ``data/xiehouyu.json``): sayings whose riddle has 4-10 characters
  and whose answer has 2-6 characters and one reading only (no ``；``), the first 300 by SHA-256 of the riddle;
* ``tang300.json`` (chinese-poetry ``蒙学/tangshisanbaishou.json``, 唐詩三百首, traditional characters): title,
  author and the first couplet of every poem;
* ``lunyu.json`` (chinese-poetry ``论语/lunyu.json``): every passage of 论语 with its chapter;
* ``phonetic.json``: the project's own words with a polyphonic character (``own.json``) and that
  character's reading in the word by pypinyin (pinned in pyproject's ``zh`` extra).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).parent


def _dump(name: str, data: object) -> None:
    (HERE / name).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def xiehouyu(checkout: Path) -> None:
    items = json.loads((checkout / "data" / "xiehouyu.json").read_text(encoding="utf-8"))
    keep = [
        {"riddle": i["riddle"].strip(), "answer": i["answer"].strip()}
        for i in items
        if 4 <= len(i["riddle"].strip()) <= 10 and 2 <= len(i["answer"].strip()) <= 6 and "；" not in i["answer"]
    ]
    keep.sort(key=lambda i: hashlib.sha256(i["riddle"].encode()).hexdigest())
    _dump("xiehouyu.json", keep[:300])
    shutil.copyfile(checkout / "LICENSE", HERE / "LICENSE.chinese-xinhua")


def poetry(checkout: Path) -> None:
    data = json.loads((checkout / "蒙学" / "tangshisanbaishou.json").read_text(encoding="utf-8"))
    poems = [
        {"title": p["chapter"], "author": p["author"], "paragraphs": p["paragraphs"][:1]}
        for group in data["content"]
        for p in group["content"]
        if p.get("paragraphs")
    ]
    _dump("tang300.json", poems)
    lunyu = json.loads((checkout / "论语" / "lunyu.json").read_text(encoding="utf-8"))
    _dump("lunyu.json", [{"chapter": c["chapter"], "paragraphs": c["paragraphs"]} for c in lunyu])
    shutil.copyfile(checkout / "LICENSE", HERE / "LICENSE.chinese-poetry")


def phonetic() -> None:
    from pypinyin import Style, pinyin

    own = json.loads((HERE / "own.json").read_text(encoding="utf-8"))
    out = []
    for word, char in own["polyphonic"]:
        readings = pinyin(word, style=Style.TONE)
        out.append({"word": word, "char": char, "pinyin": readings[word.index(char)][0]})
    _dump("phonetic.json", out)


if __name__ == "__main__":
    xiehouyu(Path(sys.argv[1]))
    poetry(Path(sys.argv[2]))
    phonetic()
