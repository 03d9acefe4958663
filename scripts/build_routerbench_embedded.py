"""Build the embedded RouterBench copy shipped in the package from the upstream CSVs.

    python scripts/build_routerbench_embedded.py ../shared/data/routerbench

Writes plugins/routeharness_routerbench/data/routerbench.parquet: canonical columns
(id, prompt, group, embed_text, split, score:<model>, cost:<model>), no responses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from routeharness_routerbench.loader import EMBEDDED_PATH, build_columns

from routeharness.resources import task_card_path
from routeharness.tasks import load_card


def main(source: str) -> None:
    card = load_card(task_card_path("routerbench"))
    columns = build_columns(Path(source), [m["name"] for m in card.models])
    table = pa.table(columns)
    EMBEDDED_PATH.parent.mkdir(parents=True, exist_ok=True)
    tmp = EMBEDDED_PATH.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=19)
    tmp.replace(EMBEDDED_PATH)
    print(f"wrote {EMBEDDED_PATH} ({EMBEDDED_PATH.stat().st_size / 1e6:.2f} MB, "
          f"{table.num_rows} rows)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/routerbench")
