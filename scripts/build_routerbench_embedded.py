"""Build the embedded RouterBench copy shipped in the package from the upstream CSVs.

    python scripts/build_routerbench_embedded.py ../shared/data/routerbench

Writes plugins/routeharness_routerbench/data/routerbench.parquet: canonical columns
(id, prompt, group, embed_text, split, score:<model>, cost:<model>), no responses. The
table goes through the one validation (``task_from_table``) first: a bad upstream row is
one line naming its CSV file, row and column, and nothing is written. The copy is one
zstd parquet file (what the loader reads), not ``write_task``'s DatasetDict folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from routeharness_routerbench.loader import EMBEDDED_PATH, build_columns, columns_to_task

from routeharness import RouteHarnessError
from routeharness.common.resources import task_card_path
from routeharness.data.cards import load_card


def main(source: str) -> None:
    card = load_card(task_card_path("routerbench"))
    columns = build_columns(Path(source), [m["name"] for m in card.models])
    columns_to_task(columns, card.model_infos(), source, card, card.revision)
    table = pa.table({k: v for k, v in columns.items() if k != "_origin"})
    EMBEDDED_PATH.parent.mkdir(parents=True, exist_ok=True)
    tmp = EMBEDDED_PATH.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=19)
    tmp.replace(EMBEDDED_PATH)
    print(f"wrote {EMBEDDED_PATH} ({EMBEDDED_PATH.stat().st_size / 1e6:.2f} MB, "
          f"{table.num_rows} rows)")


if __name__ == "__main__":
    try:
        main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/routerbench")
    except RouteHarnessError as exc:
        raise SystemExit(f"Error: {exc}") from None
