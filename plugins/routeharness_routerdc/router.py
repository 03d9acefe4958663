"""RouterDC: query-based routing by dual contrastive learning (Chen et al., NeurIPS 2024,
arXiv 2409.19886), on frozen prompt embeddings.

- A query head ``f`` (an MLP projection of the frozen embedding; the paper fine-tunes an
  mDeBERTa encoder) and one learnable embedding ``k_j`` per LLM. The router scores
  ``sim(x, j) = cos(f(x), k_j) / temperature`` and sends ``x`` to the argmax.
- Sample-LLM contrastive loss: for each of the ``top_k`` best LLMs of a prompt (by target),
  ``-log softmax`` of its score against the ``last_k`` worst LLMs; a positive that does no
  better than the worst LLM of the row is skipped, and a negative that does as well as the
  positive is masked out (the paper's "negatives that also answer correctly").
- Sample-sample contrastive loss: each prompt in a batch against one prompt of its own
  cluster (positive) and ``n_negatives`` prompts of other clusters, on ``cos(f(x), f(x'))``;
  clusters from k-means on the training embeddings (``n_clusters``) or the task groups.
- Cost: the target of LLM ``j`` is ``score - rate * cost`` (normalised cost). One router is
  trained per rate in ``cost_rates``; a trade-off ``lam`` is routed by the router of the
  nearest trained rate on a log scale (rate 0 stands for every lam below a tenth of the
  smallest positive rate; ``inf`` goes to the largest rate).

With ``finetune_encoder=True`` the query encoder is a Hugging Face transformer (mean
pooling) trained together with the head, as in the paper (which fine-tunes mDeBERTa):
the run's encoder when it is one (``Outcomes.encoder_path``; MiniLM by default), or
``encoder_path``; encoder weights learn at ``encoder_lr`` (the paper's 5e-5). It reads
the prompt texts (``Outcomes.texts`` in ``fit``, ``texts=`` when routing; the harness
passes both) and costs minutes per fit on a CPU, so it is an option, not the default.

Training runs ``training_steps`` AdamW steps on batches of ``batch_size`` prompts (the
paper's fixed-step schedule; no early stopping). Randomness goes through a local
``torch.Generator`` and ``torch.random.fork_rng`` seeded from ``random_state``.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, ClassVar

import numpy as np

from routeharness import (
    SELECTION,
    BaseRouter,
    DataError,
    RouteHarnessError,
    RouterState,
    StateError,
    Tags,
    default_state,
    load_module,
    module_arrays,
    one_torch_thread,
)

_NEG_INF = float("-inf")




def sample_llm_loss(logits: Any, target: Any, top_k: int, last_k: int) -> Any:
    """RouterDC's sample-LLM contrastive loss.

    ``logits``: (B, m) similarities over temperature; ``target``: (B, m) per-LLM targets,
    NaN for a missing cell (never a positive, never a negative). Returns a scalar: the sum
    over the ``top_k`` positive ranks of the batch mean of ``-log p(positive)``."""
    import torch

    missing = torch.isnan(target)
    top_key = torch.where(missing, torch.full_like(target, _NEG_INF), target)
    bottom_key = torch.where(missing, torch.full_like(target, float("inf")), target)
    top_vals, top_idx = top_key.sort(dim=1, descending=True)
    last_k = min(last_k, target.shape[1] - 1)
    neg_vals, neg_idx = bottom_key.topk(last_k, dim=1, largest=False)
    row_min = neg_vals[:, :1]
    neg_logits = logits.gather(1, neg_idx)
    loss = logits.new_zeros(())
    for rank in range(min(top_k, target.shape[1])):
        pos_val = top_vals[:, rank:rank + 1]
        pos_logit = logits.gather(1, top_idx[:, rank:rank + 1])
        # skip a positive that is missing or no better than the row's worst LLM
        keep = torch.isfinite(pos_val) & (pos_val > row_min)
        # mask negatives that do as well as this positive, and missing ones
        masked = (neg_vals >= pos_val) | ~torch.isfinite(neg_vals)
        negs = torch.where(masked, torch.full_like(neg_logits, _NEG_INF), neg_logits)
        log_p = torch.log_softmax(torch.cat([pos_logit, negs], dim=1), dim=1)[:, :1]
        loss = loss + torch.where(keep, -log_p, torch.zeros_like(log_p)).mean()
    return loss


def sample_sample_loss(hidden: Any, clusters: Any, temperature: float, n_negatives: int,
                       generator: Any) -> Any:
    """RouterDC's sample-sample contrastive loss over clusters.

    ``hidden``: (B, p) query representations; ``clusters``: (B,) cluster ids. Each anchor
    draws (with ``generator``) one other prompt of its cluster as the positive and
    ``n_negatives`` prompts of other clusters; anchors lacking either are skipped."""
    import torch
    import torch.nn.functional as F

    z = F.normalize(hidden, dim=1)
    sim = z @ z.T / temperature
    B = len(clusters)
    same = clusters[:, None] == clusters[None, :]
    eye = torch.eye(B, dtype=torch.bool)
    noise = torch.rand((B, B), generator=generator)
    pos_ok = same & ~eye
    neg_ok = ~same
    pos_idx = torch.where(pos_ok, noise, torch.full_like(noise, -1.0)).argmax(dim=1)
    k = min(n_negatives, B - 1)
    neg_noise, neg_idx = torch.where(neg_ok, noise, torch.full_like(noise, -1.0)).topk(k, dim=1)
    valid_neg = neg_noise >= 0
    anchors = pos_ok.any(dim=1) & valid_neg.any(dim=1)
    if not bool(anchors.any()):
        return sim.new_zeros(())
    pos = sim.gather(1, pos_idx[:, None])
    negs = torch.where(valid_neg, sim.gather(1, neg_idx), torch.full_like(neg_noise, _NEG_INF))
    log_p = torch.log_softmax(torch.cat([pos, negs], dim=1), dim=1)[:, 0]
    return -(log_p[anchors]).mean()


def nearest_rate(lam: float, rates: np.ndarray) -> int:
    """Index of the trained cost rate nearest ``lam`` on a log scale (see module doc)."""
    positive = rates[rates > 0]
    floor = positive.min() / 10.0 if positive.size else 1.0
    if np.isinf(lam):
        return int(np.argmax(rates))
    key = np.log10(np.maximum(rates, floor))
    return int(np.argmin(np.abs(key - np.log10(max(float(lam), floor)))))


def load_transformer(path: str) -> tuple[Any, Any]:
    """(tokenizer, model) of a local Hugging Face transformer directory; no remote code."""
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except Exception as exc:
        raise RouteHarnessError(f"routerdc: cannot load a transformer to fine-tune from "
                                f"{path!r}: {str(exc).splitlines()[0]}") from None
    return tokenizer, model


def mean_pooled(model: Any, tokenizer: Any, texts: list[str], max_length: int) -> Any:
    """(B, hidden) mean of the last hidden states over each text's tokens."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def _default_encoder_path() -> str | None:
    """The harness's default encoder's transformer, when it has one."""
    from routeharness import get_encoder

    try:
        return getattr(get_encoder("minilm"), "trainable_path", None)
    except RouteHarnessError:
        return None


class RouterDCRouter(BaseRouter):
    """RouterDC (selection router): a head on frozen embeddings by default, or on a
    fine-tuned transformer (``finetune_encoder=True``). See the module docstring."""

    kind = SELECTION
    # the paper's defaults (top-k 3, last-k 3, temperature 1, batch 64) as the start; its
    # AdamW lr 5e-5 barely moves a small head on frozen embeddings in 500 steps (measured on
    # MBPP), so lr is tuned higher; the grid is small because each fit trains one router
    # per cost rate.
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "lr": [5e-4, 5e-3], "temperature": [1.0, 0.2]}
    #: a tie on validation AUC: the higher temperature (softer similarities, the paper's
    #: default), then the smaller step (nearer the paper's lr)
    tie_preference: ClassVar[dict[str, Any]] = {"temperature": "larger", "lr": "smaller"}
    #: needs_texts: a fine-tuned encoder (finetune_encoder=True) reads the prompt texts;
    #: check_params: the conformance kit's settings (seconds on its mock problems)
    #: saveable: on frozen embeddings (a fine-tuned text encoder is refused by get_state)
    tags: ClassVar[Tags] = Tags(needs_texts=True, saveable=True,
                                check_params={"training_steps": 50})

    def __init__(self, top_k: int = 3, last_k: int = 3, temperature: float = 1.0,
                 lr: float = 5e-5, weight_decay: float = 0.01, batch_size: int = 64,
                 training_steps: int = 500, hidden: int = 512, proj_dim: int = 256,
                 sample_sample: str = "clusters", n_clusters: int = 5,
                 n_negatives: int = 3, sample_sample_weight: float = 1.0,
                 cost_rates: tuple[float, ...] = (0.0, 0.1, 1.0),
                 finetune_encoder: bool = False, encoder_path: str | None = None,
                 encoder_lr: float = 5e-5, max_length: int = 128,
                 random_state: int | None = None):
        self.top_k = top_k
        self.last_k = last_k
        self.temperature = temperature
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.training_steps = training_steps
        self.hidden = hidden
        self.proj_dim = proj_dim
        self.sample_sample = sample_sample
        self.n_clusters = n_clusters
        self.n_negatives = n_negatives
        self.sample_sample_weight = sample_sample_weight
        self.cost_rates = cost_rates
        self.finetune_encoder = finetune_encoder
        self.encoder_path = encoder_path
        self.encoder_lr = encoder_lr
        self.max_length = max_length
        self.random_state = random_state

    def _clusters(self, X: np.ndarray, outcomes: Any, seed: int) -> np.ndarray:
        if self.sample_sample == "groups":
            _, ids = np.unique(np.asarray(outcomes.groups).astype(str), return_inverse=True)
            return ids
        if self.sample_sample == "clusters":
            from sklearn.cluster import KMeans

            k = max(1, min(int(self.n_clusters), len(X)))
            return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(X)
        raise ValueError(f"routerdc: sample_sample must be 'clusters' or 'groups', "
                         f"got {self.sample_sample!r}")

    def _train_one(self, X: Any, target: Any, clusters: Any, seed: int,
                   text_tower: tuple[Any, Any, list[str]] | None = None) -> tuple[Any, list]:
        """One router for one cost rate: (head, LLM embeddings, encoder or None) and the
        loss per step. ``text_tower`` = (tokenizer, transformer, texts) fine-tunes the
        transformer under the head; else the head reads the frozen ``X``."""
        import copy

        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = None if text_tower is None else copy.deepcopy(text_tower[1])
            d_in = X.shape[1] if encoder is None else int(encoder.config.hidden_size)
            head = self._head(d_in)
            llm = nn.Parameter(torch.randn(target.shape[1], self.proj_dim) * 0.78)
        generator = torch.Generator().manual_seed(seed)
        groups = [{"params": [*head.parameters(), llm], "lr": self.lr}]
        if encoder is not None:
            encoder.train()
            groups.append({"params": list(encoder.parameters()), "lr": self.encoder_lr})
        optimiser = torch.optim.AdamW(groups, weight_decay=self.weight_decay)

        def inputs(batch: Any) -> Any:
            if encoder is None:
                return X[batch]
            tokenizer, _, texts = text_tower
            return mean_pooled(encoder, tokenizer, [texts[int(i)] for i in batch],
                               self.max_length)

        n, history = len(X), []
        order, cursor = torch.randperm(n, generator=generator), 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the encoder's dropout masks
            for _ in range(self.training_steps):
                if cursor + self.batch_size > n:  # reshuffle each epoch
                    order, cursor = torch.randperm(n, generator=generator), 0
                batch = order[cursor:cursor + self.batch_size]
                cursor += self.batch_size
                h = head(inputs(batch))
                logits = F.normalize(h, dim=1) @ F.normalize(llm, dim=1).T / self.temperature
                loss = sample_llm_loss(logits, target[batch], self.top_k, self.last_k)
                if self.sample_sample_weight:
                    loss = loss + self.sample_sample_weight * sample_sample_loss(
                        h, clusters[batch], self.temperature, self.n_negatives, generator)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                history.append(loss.item())
        head.eval()
        if encoder is not None:
            encoder.eval()
        return (head, llm.detach(), encoder), history

    def _head(self, d_in: int) -> Any:
        import torch.nn as nn

        return nn.Sequential(nn.Linear(d_in, self.hidden), nn.GELU(),
                             nn.Linear(self.hidden, self.proj_dim))

    def get_state(self) -> RouterState:
        """The frozen-embedding router as plain data: per trained rate i, the head as
        ``routers_.<i>.head.*`` arrays and the LLM embeddings as ``routers_.<i>.llm``; the
        head's input width as the value ``routers_.d_in``; the rest as it is. A fine-tuned
        text encoder (``finetune_encoder=True``) is refused: a transformer and its
        tokenizer are not plain arrays this router could rebuild honestly."""
        self._check_fitted()
        if any(encoder is not None for _, _, encoder in self.routers_):
            raise StateError("routerdc: a router with a fine-tuned text encoder "
                             "(finetune_encoder=True) cannot be saved; save one on frozen "
                             "embeddings (finetune_encoder=False)")
        rest = default_state(self, skip=("routers_",))
        arrays = dict(rest.arrays)
        for i, (head, llm, _) in enumerate(self.routers_):
            arrays.update(module_arrays(f"routers_.{i}.head", head))
            arrays[f"routers_.{i}.llm"] = llm.numpy().copy()
        return RouterState(arrays, {**rest.values,
                                    "routers_.d_in": int(self.routers_[0][0][0].in_features)})

    def set_state(self, state: RouterState) -> RouterDCRouter:
        """Rebuilds one head per trained rate from ``routers_.d_in`` and this router's
        hyper-parameters and loads the arrays (strict); a state that does not fit is a
        one-line ``StateError``."""
        import torch

        if self.finetune_encoder:
            raise StateError("routerdc: finetune_encoder=True routers cannot be restored "
                             "(their text encoder is not saved)")
        names = set(state.arrays) | set(state.values)
        wanted = {"cost_rates_", "loss_history_", "n_models_", "routers_.d_in"}
        rates, m, d_in = (state.arrays.get("cost_rates_"), state.values.get("n_models_"),
                          state.values.get("routers_.d_in"))
        if not wanted <= names or not isinstance(m, int) or not isinstance(d_in, int) \
                or d_in < 1 or rates is None or rates.ndim != 1 or not len(rates):
            raise StateError(f"routerdc: the state needs {sorted(wanted)} (cost_rates_ a "
                             f"non-empty array, the others positive integers); it holds "
                             f"{sorted(names)}")
        wanted |= {f"routers_.{i}.llm" for i in range(len(rates))}
        odd = sorted(n for n in names - wanted
                     if not any(n.startswith(f"routers_.{i}.head.") for i in range(len(rates))))
        if odd or not wanted <= names:
            raise StateError(f"routerdc: the state lacks {sorted(wanted - names)} or holds "
                             f"unknown {odd}")
        routers = []
        for i in range(len(rates)):
            with torch.random.fork_rng(devices=[]):  # the random init is overwritten
                head = load_module("routerdc", f"routers_.{i}.head", self._head(d_in),
                                   state.arrays)
            llm = state.arrays[f"routers_.{i}.llm"]
            if llm.shape != (m, self.proj_dim) or llm.dtype.kind != "f":
                raise StateError(f"routerdc: the state's routers_.{i}.llm has shape {llm.shape}, "
                                 f"expected ({m}, {self.proj_dim}) floats")
            routers.append((head, torch.from_numpy(np.array(llm, dtype=np.float32)), None))
        super().set_state(RouterState({"cost_rates_": rates},
                                      {k: state.values[k] for k in ("loss_history_",
                                                                    "n_models_")}))
        self.routers_ = routers
        return self

    def fit(self, X: np.ndarray, outcomes: Any) -> RouterDCRouter:
        """``X``: (n, d) frozen embeddings; ``outcomes``: scores (n, m), normalised costs."""
        import torch

        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or len(X) != outcomes.n:
            raise DataError(f"routerdc: X has shape {X.shape}, expected ({outcomes.n}, d)")
        if outcomes.m < 2:
            raise DataError(f"routerdc: needs at least 2 models, got {outcomes.m}")
        rates = np.asarray(sorted(float(r) for r in self.cost_rates))
        if rates.size == 0 or (rates < 0).any():
            raise ValueError(f"routerdc: cost_rates must be non-negative, got {self.cost_rates}")
        seed = 0 if self.random_state is None else int(self.random_state)
        clusters = torch.from_numpy(self._clusters(X, outcomes, seed).astype(np.int64))
        scores = np.asarray(outcomes.scores, dtype=np.float32)
        costs = np.asarray(outcomes.costs, dtype=np.float32)
        Xt = torch.from_numpy(X)
        text_tower = self._text_tower(outcomes) if self.finetune_encoder else None
        self.routers_, self.loss_history_ = [], []
        for i, rate in enumerate(rates):
            target = torch.from_numpy(scores - np.float32(rate) * costs)  # NaN stays NaN
            # a small head runs best on one thread; a transformer uses them all
            with nullcontext() if text_tower else one_torch_thread():
                model, history = self._train_one(Xt, target, clusters, seed + 1000 * i,
                                                 text_tower)
            self.routers_.append(model)
            self.loss_history_.append(history)
        if text_tower is not None:
            self.tokenizer_ = text_tower[0]
        self.cost_rates_ = rates
        self.n_models_ = outcomes.m
        return self

    def _text_tower(self, outcomes: Any) -> tuple[Any, Any, list[str]]:
        texts = getattr(outcomes, "texts", None)
        if texts is None or len(texts) != outcomes.n:
            raise DataError("routerdc: finetune_encoder=True trains on the prompt texts, but "
                            "outcomes.texts is missing (the harness fills it; outside it, "
                            "pass Outcomes(..., texts=[...]))")
        path = (self.encoder_path or getattr(outcomes, "encoder_path", None)
                or _default_encoder_path())
        if path is None:
            raise RouteHarnessError("routerdc: finetune_encoder=True needs a transformer to "
                                    "fine-tune: the run's encoder is not one and "
                                    "encoder_path is not set")
        tokenizer, model = load_transformer(path)
        return tokenizer, model, list(texts)

    def similarities(self, X: np.ndarray, rate_index: int = 0,
                     texts: list[str] | None = None) -> np.ndarray:
        """(n, m) cosine similarities over temperature of the router for one trained rate.
        A fine-tuned router reads ``texts`` (n prompts) instead of ``X``."""
        import torch
        import torch.nn.functional as F

        self._check_fitted()
        head, llm, encoder = self.routers_[rate_index]
        with torch.no_grad():
            if encoder is None:
                features = torch.from_numpy(np.asarray(X, dtype=np.float32))
            else:
                if texts is None or len(texts) != len(X):
                    raise DataError(f"routerdc: a fine-tuned router routes from the prompt "
                                    f"texts: pass texts= with {len(X)} prompts (the harness "
                                    f"does)")
                features = torch.cat([
                    mean_pooled(encoder, self.tokenizer_, list(texts[i:i + 64]),
                                self.max_length) for i in range(0, len(texts), 64)]
                    or [torch.zeros(0, int(encoder.config.hidden_size))])
            h = head(features)
            out = F.normalize(h, dim=1) @ F.normalize(llm, dim=1).T / self.temperature
        return out.numpy()

    def route(self, X: np.ndarray, lam: float, groups: np.ndarray | None = None,
              texts: list[str] | None = None) -> np.ndarray:
        """(n,) model indices: the argmax similarity of the nearest trained cost rate."""
        self._check_fitted()
        return self.similarities(X, nearest_rate(lam, self.cost_rates_), texts).argmax(axis=1)

    def route_sweep(self, X: np.ndarray, lams: np.ndarray, groups: np.ndarray | None = None,
                    texts: list[str] | None = None) -> np.ndarray:
        """(L, n): each trained rate's router scores the prompts once for every lam."""
        self._check_fitted()
        index = [nearest_rate(float(lam), self.cost_rates_) for lam in lams]
        choices = {i: self.similarities(X, i, texts).argmax(axis=1) for i in sorted(set(index))}
        return np.stack([choices[i] for i in index]) if index else np.zeros((0, len(X)), int)
