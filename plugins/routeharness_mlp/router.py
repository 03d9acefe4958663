"""MLP routers on frozen prompt embeddings (PyTorch, CPU).

Early stopping: the harness calls ``fit(X_train, outcomes)`` only, so each router carves
its own early-stopping split (``val_fraction`` of the training rows, drawn with
``random_state``) and keeps the weights of the epoch with the lowest loss on it.
Randomness goes through a local ``torch.Generator`` / ``numpy`` generator seeded from
``random_state``: the same seed gives the same router. ``torch.set_num_threads`` is left
alone.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from routeharness import (
    SELECTION,
    BaseRouter,
    DataError,
    RouterState,
    StateError,
    Tags,
    best_models,
    default_state,
    load_module,
    module_arrays,
    one_torch_thread,
)

#: trade-offs the selection network is trained on (normalised cost units): 0 (quality
#: only), 25 log-spaced lams over 1e-3..1e3 (the harness's sweep range) and inf (cost
#: only). The router's own constant: a fitted network is trained on these, so they must
#: not change with the harness (a test checks that they cover its sweep).
TRAIN_LAMBDAS: tuple[float, ...] = (0.0, *np.logspace(-3.0, 3.0, 25).tolist(), float("inf"))


def lambda_feature(lam: float) -> float:
    """The trade-off as one network input in [-1, 1]: log10(lam) over [-4, 4], with 0 -> -1
    and inf -> 1 (the harness's sweep, 1e-3..1e3, lies inside)."""
    if lam <= 0:
        return -1.0
    if np.isinf(lam):
        return 1.0
    return float(np.clip(np.log10(lam), -4.0, 4.0) / 4.0)


def _check_inputs(name: str, X: np.ndarray, outcomes: Any) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or len(X) != outcomes.n:
        raise DataError(f"{name}: X has shape {X.shape}, expected ({outcomes.n}, d)")
    if outcomes.n < 4:
        raise DataError(f"{name}: needs at least 4 training prompts, got {outcomes.n}")
    return X


def _split(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (fit rows, early-stopping rows); at least one row in each."""
    order = rng.permutation(n)
    n_val = min(max(1, int(round(fraction * n))), n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _network(d_in: int, hidden: int, layers: int, d_out: int, dropout: float) -> Any:
    import torch.nn as nn

    blocks: list[Any] = []
    width = d_in
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    blocks.append(nn.Linear(width, d_out))
    return nn.Sequential(*blocks)




class _TorchRouter(BaseRouter):
    """Shared training loop: mini-batch Adam with weight decay, early stopping; the saved
    state (``get_state``): the network as ``net_.*`` arrays, its input and output widths
    as the value ``net_.dims``, and the other fitted attributes as they are."""

    #: the fitted attributes besides the network that a state must hold
    _state_names: ClassVar[tuple[str, ...]] = ("best_val_loss_", "loss_history_", "n_models_")
    #: the network's outputs per model (a state's ``net_.dims`` must agree with n_models_)
    _outputs_per_model: ClassVar[int] = 1
    tags: ClassVar[Tags] = Tags(saveable=True)

    def __init__(self, hidden: int = 256, layers: int = 1, dropout: float = 0.1,
                 lr: float = 1e-3, weight_decay: float = 1e-4, batch_size: int = 64,
                 max_epochs: int = 200, patience: int = 10, val_fraction: float = 0.1,
                 random_state: int | None = None):
        self.hidden = hidden
        self.layers = layers
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.random_state = random_state

    def _train(self, net: Any, n_items: int, loss_of: Any, val_loss: Any,
               generator: Any) -> list[float]:
        """Trains ``net`` on item indices 0..n_items-1 with ``loss_of(batch_index)``;
        returns the per-epoch training losses and leaves the best weights in ``net``."""
        import torch

        optimiser = torch.optim.AdamW(net.parameters(), lr=self.lr,
                                      weight_decay=self.weight_decay)
        best, best_state, waited, history = np.inf, None, 0, []
        for _ in range(self.max_epochs):
            net.train()
            order = torch.randperm(n_items, generator=generator)
            total = 0.0
            for start in range(0, n_items, self.batch_size):
                batch = order[start:start + self.batch_size]
                loss = loss_of(batch)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            history.append(total / n_items)
            net.eval()
            with torch.no_grad():
                current = float(val_loss())
            if current < best - 1e-6:
                best, waited = current, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                waited += 1
                if waited >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self.best_val_loss_ = best
        return history

    def get_state(self) -> RouterState:
        """The fitted router as plain data (see the class docstring)."""
        self._check_fitted()
        rest = default_state(self, skip=("net_", "best_val_loss_"))
        linears = [layer for layer in self.net_ if hasattr(layer, "in_features")]
        return RouterState(
            {**rest.arrays, **module_arrays("net_", self.net_),
             # an array, not a value: it is inf when no epoch improved (not JSON)
             "best_val_loss_": np.asarray([self.best_val_loss_], dtype=np.float64)},
            {**rest.values, "net_.dims": [linears[0].in_features, linears[-1].out_features]})

    def set_state(self, state: RouterState) -> _TorchRouter:
        """Rebuilds the network from ``net_.dims`` and this router's hyper-parameters, loads
        its weights (strict) and restores the rest; a state that does not fit is a one-line
        ``StateError``."""
        import torch

        owner = type(self).__name__
        names = set(state.arrays) | set(state.values)
        wanted = {*self._state_names, "net_.dims"}
        odd = sorted(names - wanted - {n for n in names if n.startswith("net_.")})
        if not wanted <= names or odd:
            raise StateError(f"{owner}: the state lacks {sorted(wanted - names)} or holds "
                             f"unknown {odd}")
        dims, m = state.values["net_.dims"], state.values["n_models_"]
        if not (isinstance(dims, list) and len(dims) == 2 and isinstance(m, int)
                and all(isinstance(d, int) and d > 0 for d in dims)
                and dims[1] == self._outputs_per_model * m):
            raise StateError(f"{owner}: the state's net_.dims must be [inputs, "
                             f"{self._outputs_per_model} x n_models_], got {dims!r} for "
                             f"n_models_={m!r}")
        if np.shape(state.arrays.get("cost_means_", np.zeros(m))) != (m,) \
                or np.shape(state.arrays.get("best_val_loss_")) != (1,):
            raise StateError(f"{owner}: the state's cost_means_ must have shape ({m},) and "
                             "best_val_loss_ (1,)")
        with torch.random.fork_rng(devices=[]):  # the random init is overwritten
            net = _network(dims[0], self.hidden, self.layers, dims[1], self.dropout)
        net = load_module(owner, "net_", net, state.arrays)
        super().set_state(RouterState(
            {k: v for k, v in state.arrays.items() if not k.startswith("net_.")},
            {k: v for k, v in state.values.items() if k != "net_.dims"}))
        self.net_, self.best_val_loss_ = net, float(self.best_val_loss_[0])
        return self


class MLPRouter(_TorchRouter):
    """Utility router: one multi-output network predicts every model's score and cost.

    Output ``2m`` units: m score logits (binary cross-entropy against scores in [0, 1],
    NaN cells masked) and m relative costs (mean squared error against ``cost / mean cost of
    that model``, so a cheap model's cost is learnt as precisely as an expensive one's)."""

    param_grid: ClassVar[dict[str, list[Any]]] = {
        "hidden": [128, 512], "lr": [1e-3, 3e-4], "dropout": [0.0, 0.2]}
    #: a tie on validation AUC: fewer parameters, more dropout (stronger regularisation),
    #: then the learning rate nearest the default
    tie_preference: ClassVar[dict[str, Any]] = {"hidden": "smaller", "dropout": "larger",
                                                "lr": "default"}
    _state_names: ClassVar[tuple[str, ...]] = (*_TorchRouter._state_names, "cost_means_")
    _outputs_per_model: ClassVar[int] = 2  # a score and a cost
    #: the conformance kit's settings (seconds on its mock problems)
    tags: ClassVar[Tags] = Tags(saveable=True, check_params={"max_epochs": 30})

    def fit(self, X: np.ndarray, outcomes: Any) -> MLPRouter:
        """``X``: (n, d) embeddings; ``outcomes``: scores (n, m) in [0, 1], normalised costs."""
        import torch
        import torch.nn.functional as F

        X = _check_inputs("mlp", X, outcomes)
        m = outcomes.m
        scores = np.asarray(outcomes.scores, dtype=np.float32)
        costs = np.asarray(outcomes.costs, dtype=np.float32)
        self.cost_means_ = np.nanmean(np.where(np.isnan(scores), np.nan, costs), axis=0)
        self.cost_means_ = np.where(np.isfinite(self.cost_means_) & (self.cost_means_ > 0),
                                    self.cost_means_, 1.0).astype(np.float32)
        rel_costs = costs / self.cost_means_
        seed = 0 if self.random_state is None else int(self.random_state)
        rng = np.random.default_rng(seed)
        fit_rows, es_rows = _split(len(X), self.val_fraction, rng)
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]), one_torch_thread():
            torch.manual_seed(seed)  # weight init and dropout masks
            net = _network(X.shape[1], self.hidden, self.layers, 2 * m, self.dropout)

            Xt = torch.from_numpy(X)
            S = torch.from_numpy(np.nan_to_num(scores, nan=0.0))
            C = torch.from_numpy(np.nan_to_num(rel_costs, nan=0.0))
            mask_s = torch.from_numpy(~np.isnan(scores)).float()
            mask_c = torch.from_numpy(~np.isnan(rel_costs)).float()

            def loss_on(rows: Any) -> Any:
                out = net(Xt[rows])
                bce = F.binary_cross_entropy_with_logits(out[:, :m], S[rows], reduction="none")
                mse = (out[:, m:] - C[rows]) ** 2
                ms, mc = mask_s[rows], mask_c[rows]
                return ((bce * ms).sum() / ms.sum().clamp(min=1)
                        + (mse * mc).sum() / mc.sum().clamp(min=1))

            fit_t, es_t = torch.from_numpy(fit_rows), torch.from_numpy(es_rows)
            self.loss_history_ = self._train(net, len(fit_rows), lambda b: loss_on(fit_t[b]),
                                             lambda: loss_on(es_t), generator)
        self.net_ = net
        self.n_models_ = m
        return self

    def predict(self, X: np.ndarray, groups: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(scores_hat in [0, 1], costs_hat in normalised units), both (n, m)."""
        import torch

        self._check_fitted()
        with torch.no_grad():
            out = self.net_(torch.from_numpy(np.asarray(X, dtype=np.float32))).numpy()
        m = self.n_models_
        scores_hat = 1.0 / (1.0 + np.exp(-out[:, :m].astype(np.float64)))
        costs_hat = np.maximum(out[:, m:].astype(np.float64), 1e-3) * self.cost_means_
        return scores_hat, costs_hat


class MLPSelectRouter(_TorchRouter):
    """Selection router: a classifier onto the best model at a trade-off, conditioned on it.

    Instead of one classifier per lambda, one network takes ``[embedding, lambda_feature]``
    and is trained on every (prompt, lambda) pair over ``TRAIN_LAMBDAS`` (27 trade-offs:
    0, the harness's sweep range in 25 steps, and inf), the label being the prompt's best model at that lambda by its
    actual outcome (``best_models``, ties by ``tie_break``). One network serves every lambda;
    a lambda between trained ones is interpolated by the network."""

    kind = SELECTION
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "hidden": [128, 512], "lr": [1e-3, 3e-4], "tie_break": ["cheapest", "best-average"]}
    #: a tie on validation AUC: fewer parameters, the learning rate nearest the default,
    #: then the default label rule
    tie_preference: ClassVar[dict[str, Any]] = {
        "hidden": "smaller", "lr": "default", "tie_break": ["cheapest", "best-average"]}
    tags: ClassVar[Tags] = Tags(saveable=True, check_params={"max_epochs": 10})

    def __init__(self, hidden: int = 256, layers: int = 1, dropout: float = 0.1,
                 lr: float = 1e-3, weight_decay: float = 1e-4, batch_size: int = 512,
                 max_epochs: int = 40, patience: int = 5, val_fraction: float = 0.1,
                 tie_break: str = "cheapest", random_state: int | None = None):
        super().__init__(hidden=hidden, layers=layers, dropout=dropout, lr=lr,
                         weight_decay=weight_decay, batch_size=batch_size,
                         max_epochs=max_epochs, patience=patience, val_fraction=val_fraction,
                         random_state=random_state)
        self.tie_break = tie_break

    def fit(self, X: np.ndarray, outcomes: Any) -> MLPSelectRouter:
        """``X``: (n, d) embeddings; labels come from ``outcomes`` at every trained lambda."""
        import torch
        import torch.nn.functional as F

        X = _check_inputs("mlp-select", X, outcomes)
        scores = np.asarray(outcomes.scores, dtype=np.float64)
        costs = np.asarray(outcomes.costs, dtype=np.float64)
        lams = np.asarray(TRAIN_LAMBDAS)
        labels = np.stack([best_models(scores, costs, lam, self.tie_break) for lam in lams])
        feats = np.array([lambda_feature(lam) for lam in lams], dtype=np.float32)
        seed = 0 if self.random_state is None else int(self.random_state)
        rng = np.random.default_rng(seed)
        fit_rows, es_rows = _split(len(X), self.val_fraction, rng)
        L = len(lams)
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]), one_torch_thread():
            torch.manual_seed(seed)
            net = _network(X.shape[1] + 1, self.hidden, self.layers, outcomes.m, self.dropout)
            Xt = torch.from_numpy(X)
            Y = torch.from_numpy(labels.astype(np.int64))  # (L, n)
            Ft = torch.from_numpy(feats)

            def loss_on(pairs: Any, rows: Any) -> Any:
                # pair p -> (lambda index p // len(rows), row rows[p % len(rows)])
                li, ri = pairs // len(rows), rows[pairs % len(rows)]
                inputs = torch.cat([Xt[ri], Ft[li, None]], dim=1)
                return F.cross_entropy(net(inputs), Y[li, ri])

            fit_t, es_t = torch.from_numpy(fit_rows), torch.from_numpy(es_rows)
            es_pairs = torch.arange(L * len(es_rows))
            self.loss_history_ = self._train(net, L * len(fit_rows),
                                             lambda b: loss_on(b, fit_t),
                                             lambda: loss_on(es_pairs, es_t), generator)
        self.net_ = net
        self.n_models_ = outcomes.m
        return self

    def route(self, X: np.ndarray, lam: float, groups: np.ndarray | None = None) -> np.ndarray:
        """(n,) model indices at trade-off ``lam``."""
        import torch

        self._check_fitted()
        X = np.asarray(X, dtype=np.float32)
        inputs = np.concatenate([X, np.full((len(X), 1), lambda_feature(lam), np.float32)], 1)
        with torch.no_grad():
            logits = self.net_(torch.from_numpy(inputs)).numpy()
        return logits.argmax(axis=1)
