"""How many routes ``serve``'s batching changes: a saved kNN with its stored ONNX encoder,
fitted on ``--task`` (default routerbench), routes the task's test prompts one request at
a time and then ``--batch`` one-prompt requests per call (``Service.route_batch``, what a
batched ``serve`` runs); each request at each of the router's validation trade-offs. The
routes that differ (prompts x trade-offs) and the largest vector difference are printed.

Usage: ``python benchmarks/batch_agreement.py [--task routerbench] [--batch 64]
[--folder DIR]`` (``--folder``: a saved router to use instead of fitting one).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="routerbench")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    from routeharness.common.progress import Reporter
    from routeharness.data.tasks import load_task
    from routeharness.deploy import saved
    from routeharness.deploy.batching import BatchSettings
    from routeharness.deploy.routing_input import prompt_item
    from routeharness.deploy.serve import RouteWork, Service

    folder = args.folder
    if folder is None:
        print(f"fitting knn on {args.task} with its encoder stored...", file=sys.stderr)
        work = Path(tempfile.mkdtemp(prefix="batch-agreement-"))
        print(f"saved in {work}", file=sys.stderr)
        folder = saved.save(saved.fit("knn", args.task, reporter=Reporter(),
                                      store_encoder=True), work / "knn")
    service = Service(folder, None, 0.0, batching=BatchSettings(0.005, args.batch))
    assert service.router.manifest.stored_encoder is not None, "no stored encoder"
    lams = sorted({p.lam for p in service.router.validation})
    texts = list(load_task(args.task).splits["test"].prompts)
    items = [prompt_item(str(t), "test", i + 1, 10**9) for i, t in enumerate(texts)]
    print(f"{len(items)} test prompts, {len(lams)} trade-offs...", file=sys.stderr)
    encoder = service.encoder
    alone_X = np.concatenate([encoder.encode([item.prompt]) for item in items])
    batch_X = np.concatenate([encoder.encode([item.prompt for item in items[i:i + args.batch]])
                              for i in range(0, len(items), args.batch)])
    differ = total = 0
    for k, lam in enumerate(lams):
        # one-prompt requests one at a time, on their lone vectors (as ``route`` encodes)
        alone = [service.route_batch([RouteWork([item.prompt], lam,
                                                vectors=alone_X[i:i + 1])])[0].choices[0]
                 for i, item in enumerate(items)]
        batched = []
        for i in range(0, len(items), args.batch):
            chunk = items[i:i + args.batch]
            if k == 0:  # what serve runs: the texts encoded together in route_batch
                works = [service.work([item], lam) for item in chunk]
            else:  # the same vectors, computed once above
                works = [RouteWork([item.prompt], lam, vectors=batch_X[i + j:i + j + 1])
                         for j, item in enumerate(chunk)]
            batched += [r.choices[0] for r in service.route_batch(works)]
        differ += int(np.sum(np.asarray(alone) != np.asarray(batched)))
        total += len(items)
    print(f"task {args.task}, {len(items)} test prompts, batches of {args.batch} one-prompt "
          f"requests, {len(lams)} trade-offs (the validation points): {differ} of {total} "
          f"routes differ; largest vector difference {np.abs(alone_X - batch_X).max():.2g}")


if __name__ == "__main__":
    main()
