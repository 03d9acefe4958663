"""LLM Bandit (Yang Li, arXiv 2502.02743) on the routeharness contract.

Two stages, both fitted in ``fit`` (settings the paper does not pin down are chosen
here and listed in docs/bandit.md):

1. **Model identity vectors** by a two-parameter, multidimensional item-response-theory
   fit of the outcome matrix on the prompt embeddings:
   ``P(correct | prompt x, model j) = sigmoid(a_j · theta(x) - b_j)``, where ``theta``
   is a small network of the embedding and ``(a_j, b_j)`` is model j's identity vector.
   Fitted by maximum a posteriori (binary cross-entropy on the known cells, soft 0..1
   targets allowed, a Gaussian prior on ``a_j``); the paper fits a variational IRT.
2. **A preference-conditioned policy** ``pi(j | x, lam)``: a softmax over the available
   models whose logit for model j is a network of (the prompt and its preference
   features, model j's identity vector and log mean cost, its IRT prediction for x, and
   a mean-pooled summary of the whole model set). The trade-off enters as
   ``w = lam / (1 + lam)`` (``w = 1`` for ``lam = inf``) and ``log10(lam)``; one trained
   network serves every ``lam``. Trained to maximise the expected utility
   ``(1 - w) * score - w * cost`` under the policy plus an entropy bonus, with ``lam``
   sampled per prompt and a random subset of models hidden per prompt, so the policy
   scores models by their identity features rather than by their index.

A new model is added with ``add_model``: only its identity vector is fitted, from a few
dozen of its outcomes, with ``theta`` and the policy frozen; the policy routes to it at once.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from routeharness import (
    SELECTION,
    BaseRouter,
    DataError,
    ModelInfo,
    RouterState,
    StateError,
    Tags,
    check_layout,
    default_state,
    load_module,
    module_arrays,
    one_torch_thread,
)

#: log10 of the trade-offs the policy trains on (normalised cost units) and the range its
#: ``log10(lam)`` feature is clipped to: the harness's sweep range, 1e-3..1e3. The
#: router's own constant: a fitted policy is trained on it, so it must not change with the
#: harness (a test checks that it covers the harness's sweep).
TRAIN_LOG10_LAMBDA_RANGE: tuple[float, float] = (-3.0, 3.0)


def _l2_normalise(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def preference_features(lams: np.ndarray) -> np.ndarray:
    """(n, 2) features of trade-offs ``lams`` (n,), lam >= 0 or inf: the cost weight
    ``w = lam / (1 + lam)`` in [0, 1] and ``log10(lam)`` clipped to the training range,
    scaled to [-1, 1]."""
    lams = np.asarray(lams, dtype=np.float64)
    if np.any(np.isnan(lams)) or np.any(lams < 0):
        raise ValueError("trade-off lam must be >= 0 (or inf)")
    w = np.where(np.isinf(lams), 1.0, lams / (1.0 + np.where(np.isinf(lams), 0.0, lams)))
    low, high = TRAIN_LOG10_LAMBDA_RANGE
    with np.errstate(divide="ignore"):
        log_lam = np.clip(np.log10(lams), low, high)
    scaled = (log_lam - (low + high) / 2) / ((high - low) / 2)
    return np.column_stack([w, scaled]).astype(np.float32)




#: what a saved bandit holds besides its two networks: name -> the dimensions each array
#: must have (n training prompts, m models, k = irt_dim; None: any), or None for a value
_STATE_SHAPES: dict[str, tuple[str | None, ...] | None] = {
    "X_train_": ("n", None), "model_costs_": ("m",), "identity_a_": ("m", "k"),
    "identity_b_": ("m",), "irt_loss_history_": (None,), "loss_history_": (None,),
    "models_": None, "irt_best_epoch_": None}


def _check_state(state: RouterState, irt_dim: int) -> None:
    """A one-line ``StateError`` unless ``state`` holds exactly the networks' arrays and
    ``_STATE_SHAPES`` with consistent dimensions, one model record per model."""
    models = state.values.get("models_")
    check_layout("bandit", state, _STATE_SHAPES, ("theta_net_.", "policy_."),
                 {"k": irt_dim, "m": len(models) if isinstance(models, list) else -1})
    if not all(isinstance(model, dict) and isinstance(model.get("name"), str)
               for model in models):
        raise StateError("bandit: the state's models_ must be model records with a name")


def _build_networks(input_dim: int, irt_dim: int, hidden_dim: int) -> tuple[Any, Any]:
    import torch
    from torch import nn

    class Theta(nn.Module):
        """theta(x): the prompt's IRT ability-demand vector (irt_dim,)."""

        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.GELU(),
                                     nn.Linear(hidden_dim, irt_dim))

        def forward(self, x: Any) -> Any:
            return self.net(x)

    class Policy(nn.Module):
        """Logits (n, m) of pi(j | x, lam) over the models given their features.

        logit_j = scale * u_j + residual_j: ``u_j = (1 - w) * p_j - w * cost_j`` is model
        j's utility under its IRT prediction ``p_j`` and mean cost, and the residual (a
        network of the prompt, preference, identity vector, IRT prediction and pooled
        model set) starts at zero, so training begins from the IRT-greedy policy.
        """

        def __init__(self) -> None:
            super().__init__()
            self.context = nn.Sequential(nn.Linear(input_dim + 2, hidden_dim), nn.GELU())
            self.action = nn.Sequential(nn.Linear(irt_dim + 2, hidden_dim), nn.GELU())
            self.head = nn.Sequential(nn.Linear(3 * hidden_dim + 4, hidden_dim), nn.GELU(),
                                      nn.Linear(hidden_dim, 1))
            nn.init.zeros_(self.head[-1].weight)
            nn.init.zeros_(self.head[-1].bias)
            # softplus(3.0) ~ 3: a soft start; the scale is learned
            self.raw_scale = nn.Parameter(torch.tensor(3.0))

        def forward(self, x: Any, preference: Any, identity: Any, mean_cost: Any,
                    irt_logit: Any, available: Any) -> Any:
            n, m = irt_logit.shape
            log_cost = torch.log(mean_cost.clamp(min=1e-6))
            context = self.context(torch.cat([x, preference], dim=1))           # (n, h)
            action = self.action(torch.cat([identity, log_cost[:, None]], 1))  # (m, h)
            weights = available.float() / available.float().sum(1, keepdim=True).clamp(min=1)
            pooled = weights @ action                                           # (n, h)
            w = preference[:, :1].expand(n, m)
            p = torch.sigmoid(irt_logit)
            utility = (1 - w) * p - w * mean_cost[None, :]
            features = torch.cat([
                context[:, None, :].expand(n, m, -1), action[None].expand(n, m, -1),
                pooled[:, None, :].expand(n, m, -1),
                torch.stack([irt_logit, p, w * log_cost[None, :], utility], dim=-1)], dim=-1)
            logits = (nn.functional.softplus(self.raw_scale) * 10.0 * utility
                      + self.head(features).squeeze(-1))
            return logits.masked_fill(~available, float("-inf"))

    return Theta(), Policy()


class BanditRouter(BaseRouter):
    """LLM Bandit: one preference-conditioned policy routes at every trade-off.

    Hyper-parameters: ``irt_dim`` (size of the identity vectors' ``a`` part),
    ``hidden_dim``, ``irt_epochs`` and ``epochs`` (full passes of the IRT fit and of
    the policy training), ``learning_rate``, ``weight_decay``, ``entropy_weight`` (the
    entropy bonus), ``batch_size``, ``model_dropout`` (chance a model is hidden from a
    training prompt), ``identity_prior`` (weight of the Gaussian prior on ``a``),
    ``random_state``.
    """

    kind = SELECTION
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "irt_dim": [8, 16], "entropy_weight": [0.001, 0.01], "epochs": [10, 30]}
    #: a tie on validation AUC: fewer parameters, the stronger entropy regularisation,
    #: then fewer epochs (earlier stopping)
    tie_preference: ClassVar[dict[str, Any]] = {"irt_dim": "smaller",
                                                "entropy_weight": "larger", "epochs": "smaller"}
    # check_params: the conformance kit's settings (seconds on its mock problems)
    tags: ClassVar[Tags] = Tags(saveable=True, online=True,
                                check_params={"irt_epochs": 100, "epochs": 10})

    def __init__(self, irt_dim: int = 16, hidden_dim: int = 64, irt_epochs: int = 300,
                 epochs: int = 20, learning_rate: float = 3e-3, weight_decay: float = 1e-4,
                 entropy_weight: float = 0.01, batch_size: int = 256,
                 model_dropout: float = 0.3, identity_prior: float = 1e-3,
                 random_state: int | None = None):
        self.irt_dim = irt_dim
        self.hidden_dim = hidden_dim
        self.irt_epochs = irt_epochs
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.entropy_weight = entropy_weight
        self.batch_size = batch_size
        self.model_dropout = model_dropout
        self.identity_prior = identity_prior
        self.random_state = random_state

    # --- saved state -----------------------------------------------------------------------
    def get_state(self) -> RouterState:
        """theta and the policy as ``theta_net_.*`` and ``policy_.*`` arrays, the models as
        records (``ModelInfo.to_dict``), the rest as it is (models added by ``add_model``
        included)."""
        self._check_fitted()
        rest = default_state(self, skip=("theta_net_", "policy_", "models_"))
        return RouterState({**rest.arrays, **module_arrays("theta_net_", self.theta_net_),
                            **module_arrays("policy_", self.policy_)},
                           {**rest.values, "models_": [m.to_dict() for m in self.models_]})

    def set_state(self, state: RouterState) -> BanditRouter:
        """Checks the shapes, rebuilds both networks from them and the hyper-parameters
        and loads their weights (strict); a misfit is a one-line ``StateError``."""
        import torch

        _check_state(state, int(self.irt_dim))
        with torch.random.fork_rng(devices=[]):  # the random init is overwritten
            theta, policy = _build_networks(state.arrays["X_train_"].shape[1],
                                            int(self.irt_dim), int(self.hidden_dim))
        theta = load_module("bandit", "theta_net_", theta, state.arrays)
        policy = load_module("bandit", "policy_", policy, state.arrays)
        for parameter in theta.parameters():
            parameter.requires_grad_(False)  # frozen after fit, as in fit
        super().set_state(RouterState(
            {k: v for k, v in state.arrays.items() if k in _STATE_SHAPES},
            {k: v for k, v in state.values.items() if k != "models_"}))
        self.theta_net_, self.policy_ = theta, policy
        self.models_ = [ModelInfo.from_dict(record) for record in state.values["models_"]]
        self._online = None
        return self

    # --- stage 1: IRT ----------------------------------------------------------------------
    def _fit_irt(self, x: Any, scores: np.ndarray, known: np.ndarray,
                 rng: np.random.Generator) -> tuple[Any, Any, np.ndarray]:
        """theta (in place), a (m, irt_dim), b (m,) and the training-loss history.

        Full-batch Adam for at most ``irt_epochs`` epochs, stopped early on the binary
        cross-entropy of a held-out 10% of the training prompts (checked every 10 epochs;
        the best state is kept), because the IRT fit overfits within a few hundred epochs.
        """
        import copy

        import torch

        theta = self.theta_net_
        n, m = scores.shape
        a = torch.nn.Parameter(0.1 * torch.randn(m, int(self.irt_dim)))
        b = torch.nn.Parameter(torch.zeros(m))
        target = torch.as_tensor(np.where(known, scores, 0.0), dtype=torch.float32)
        held_out = np.zeros(n, dtype=bool)
        if n >= 20:
            held_out[rng.choice(n, size=max(2, n // 10), replace=False)] = True
        fit_mask = torch.as_tensor(known & ~held_out[:, None], dtype=torch.float32)
        check_mask = torch.as_tensor(known & held_out[:, None], dtype=torch.float32)
        optimiser = torch.optim.Adam([*theta.parameters(), a, b], lr=float(self.learning_rate))

        def masked_bce(logit: Any, mask: Any) -> Any:
            bce = torch.nn.functional.binary_cross_entropy_with_logits(logit, target,
                                                                       reduction="none")
            return (bce * mask).sum() / mask.sum().clamp(min=1.0)

        losses, best, best_state, best_epoch = [], np.inf, None, int(self.irt_epochs)
        for epoch in range(int(self.irt_epochs)):
            logit = theta(x) @ a.T - b
            loss = masked_bce(logit, fit_mask) + float(self.identity_prior) * (a ** 2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
            if check_mask.sum() > 0 and (epoch + 1) % 10 == 0:
                with torch.no_grad():
                    value = float(masked_bce(theta(x) @ a.T - b, check_mask))
                if value < best - 1e-6:
                    best, best_epoch = value, epoch + 1
                    best_state = (copy.deepcopy(theta.state_dict()), a.detach().clone(),
                                  b.detach().clone())
                elif epoch + 1 - best_epoch >= 50:  # patience: 50 epochs without progress
                    break
        self.irt_best_epoch_ = best_epoch
        if best_state is None:
            return a.detach(), b.detach(), np.asarray(losses)
        theta.load_state_dict(best_state[0])
        return best_state[1], best_state[2], np.asarray(losses)

    # --- stage 2: the policy ---------------------------------------------------------------
    def _policy_inputs(self) -> tuple[Any, Any]:
        import torch

        identity = torch.as_tensor(np.column_stack([self.identity_a_, self.identity_b_]),
                                   dtype=torch.float32)
        mean_cost = torch.as_tensor(self.model_costs_, dtype=torch.float32)
        return identity, mean_cost

    def _logits(self, X: np.ndarray, lams: np.ndarray) -> np.ndarray:
        import torch

        x = torch.as_tensor(_l2_normalise(X))
        identity, mean_cost = self._policy_inputs()
        with one_torch_thread(), torch.no_grad():
            theta = self.theta_net_(x)
            irt_logit = theta @ identity[:, :-1].T - identity[:, -1]
            available = torch.ones(irt_logit.shape, dtype=torch.bool)
            logits = self.policy_(x, torch.as_tensor(preference_features(lams)), identity,
                                  mean_cost, irt_logit, available)
        return logits.numpy().astype(np.float64)

    def fit(self, X: np.ndarray, outcomes: Any) -> BanditRouter:
        """Learn from training embeddings X (n, d) and outcomes (scores in [0, 1] and
        normalised costs, (n, m), NaN = missing). Returns self."""
        import torch

        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] != outcomes.n:
            raise DataError(f"BanditRouter.fit: X has shape {X.shape}, expected "
                            f"({outcomes.n}, d) to match the outcomes")
        scores = np.asarray(outcomes.scores, dtype=np.float64)
        costs = np.asarray(outcomes.costs, dtype=np.float64)
        known = ~np.isnan(scores) & ~np.isnan(costs)
        if not known.any():
            raise DataError("BanditRouter.fit: every score is missing")
        if not 0.0 <= float(self.model_dropout) < 1.0:
            raise ValueError(f"model_dropout must be in [0, 1), got {self.model_dropout!r}")
        n, m = scores.shape
        self._online = None  # what partial_fit observed: a refit forgets it
        self.models_ = list(outcomes.models)
        self.X_train_ = _l2_normalise(X)
        self.model_costs_ = np.array([np.mean(costs[known[:, j], j]) if known[:, j].any()
                                      else np.nanmean(costs) for j in range(m)])
        seed = 0 if self.random_state is None else int(self.random_state)
        rng = np.random.default_rng(seed)
        x_all = torch.as_tensor(self.X_train_)
        with one_torch_thread(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.theta_net_, policy = _build_networks(X.shape[1], int(self.irt_dim),
                                                      int(self.hidden_dim))
            a, b, self.irt_loss_history_ = self._fit_irt(x_all, scores, known, rng)
            self.identity_a_, self.identity_b_ = a.numpy(), b.numpy()
            for parameter in self.theta_net_.parameters():
                parameter.requires_grad_(False)
            self.theta_net_.eval()

            identity, mean_cost = self._policy_inputs()
            with torch.no_grad():
                irt_all = self.theta_net_(x_all) @ a.T - b
            score_t = torch.as_tensor(np.where(known, scores, 0.0), dtype=torch.float32)
            cost_t = torch.as_tensor(np.where(known, costs, 0.0), dtype=torch.float32)
            optimiser = torch.optim.AdamW(policy.parameters(), lr=float(self.learning_rate),
                                          weight_decay=float(self.weight_decay))
            batch = max(1, int(self.batch_size))
            losses = []
            for _ in range(int(self.epochs)):
                order = rng.permutation(n)
                epoch_loss = 0.0
                for start in range(0, n, batch):
                    rows = order[start:start + batch]
                    lams = self._sample_lambdas(rng, len(rows))
                    available = known[rows] & (rng.random((len(rows), m))
                                               >= float(self.model_dropout))
                    # keep at least two models (or all known ones) so there is a choice
                    few = available.sum(1) < np.minimum(2, known[rows].sum(1))
                    available[few] = known[rows][few]
                    keep = available.any(1)
                    rows, lams, available = rows[keep], lams[keep], available[keep]
                    if len(rows) == 0:
                        continue
                    preference = torch.as_tensor(preference_features(lams))
                    avail = torch.as_tensor(available)
                    logits = policy(x_all[rows], preference, identity, mean_cost,
                                    irt_all[rows], avail)
                    log_prob = torch.log_softmax(logits, dim=1)
                    prob = log_prob.exp()
                    w = preference[:, :1]
                    utility = (1 - w) * score_t[rows] - w * cost_t[rows]
                    expected = (prob * utility.masked_fill(~avail, 0.0)).sum(1)
                    entropy = -(prob * log_prob.masked_fill(~avail, 0.0)).sum(1)
                    loss = -(expected + float(self.entropy_weight) * entropy).mean()
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    epoch_loss += float(loss.detach()) * len(rows)
                losses.append(epoch_loss / n)
        policy.eval()
        self.policy_ = policy
        self.loss_history_ = np.asarray(losses)
        return self

    @staticmethod
    def _sample_lambdas(rng: np.random.Generator, size: int) -> np.ndarray:
        """Trade-offs for training prompts: 10% lam = 0, 10% lam = inf, the rest
        log10-uniform over ``TRAIN_LOG10_LAMBDA_RANGE`` (the harness's sweep range)."""
        lams = 10.0 ** rng.uniform(*TRAIN_LOG10_LAMBDA_RANGE, size=size)
        draw = rng.random(size)
        lams[draw < 0.1] = 0.0
        lams[draw > 0.9] = np.inf
        return lams

    # --- routing ---------------------------------------------------------------------------
    def route(self, X: np.ndarray, lam: float, groups: np.ndarray | None = None) -> np.ndarray:
        """(n,) model index per prompt: the policy's most probable model at ``lam``."""
        self._check_fitted()
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.X_train_.shape[1]:
            raise DataError(f"BanditRouter.route: X has shape {X.shape}, expected "
                            f"(n, {self.X_train_.shape[1]})")
        if X.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        logits = self._logits(X, np.full(X.shape[0], float(lam)))
        return logits.argmax(axis=1).astype(np.int64)

    def policy_probabilities(self, X: np.ndarray, lam: float) -> np.ndarray:
        """(n, m) routing probabilities pi(j | x, lam) of the stochastic policy."""
        self._check_fitted()
        logits = self._logits(np.asarray(X), np.full(len(X), float(lam)))
        logits -= logits.max(axis=1, keepdims=True)
        prob = np.exp(logits)
        return prob / prob.sum(axis=1, keepdims=True)

    def predict_correct(self, X: np.ndarray) -> np.ndarray:
        """(n, m) the IRT probability that each model answers each prompt correctly."""
        import torch

        self._check_fitted()
        with torch.no_grad():
            theta = self.theta_net_(torch.as_tensor(_l2_normalise(np.asarray(X)))).numpy()
        return 1.0 / (1.0 + np.exp(-(theta @ self.identity_a_.T - self.identity_b_)))

    # --- cold start ------------------------------------------------------------------------
    def add_model(self, scores: np.ndarray, costs: np.ndarray, info: ModelInfo | str | None = None,
                  *, rows: np.ndarray | None = None, X: np.ndarray | None = None,
                  prior_scale: float = 10.0, steps: int = 300) -> int:
        """Add a model from a few dozen of its outcomes, without retraining the policy.

        scores (r,): the new model's scores in [0, 1] on r prompts; costs (r,): its costs
        there, in the same normalised units as ``fit`` saw (USD / ``outcomes.cost_scale``).
        The prompts are given either as ``rows`` (r,) indices into the training prompts
        of ``fit`` or as their embeddings ``X`` (r, d). Only the new identity vector
        ``(a, b)`` is fitted (MAP: binary cross-entropy plus a Gaussian prior centred on
        the mean of the existing models' identity vectors, its variance their variance
        times ``prior_scale``: a weak prior, so 50 outcomes outweigh it); ``theta`` and
        the policy stay frozen.
        Returns the new model's index (the last).
        """
        import torch

        self._check_fitted()
        if (rows is None) == (X is None):
            raise ValueError("add_model needs exactly one of rows= (training row indices) "
                             "or X= (embeddings of the prompts scored)")
        if X is None:
            rows = np.asarray(rows, dtype=np.int64)
            if rows.ndim != 1 or (len(rows) and (rows.min() < 0
                                                 or rows.max() >= len(self.X_train_))):
                raise DataError(f"add_model: rows must be indices into the "
                                f"{len(self.X_train_)} training prompts")
            X = self.X_train_[rows]
        X = _l2_normalise(np.asarray(X))
        scores = np.asarray(scores, dtype=np.float64).ravel()
        costs = np.asarray(costs, dtype=np.float64).ravel()
        if not (len(scores) == len(costs) == len(X)):
            raise DataError(f"add_model: {len(scores)} scores, {len(costs)} costs and "
                            f"{len(X)} prompts: they must match")
        known = ~np.isnan(scores) & ~np.isnan(costs)
        if not known.any():
            raise DataError("add_model: no known outcome of the new model")
        if np.any((scores[known] < 0) | (scores[known] > 1)) or np.any(costs[known] < 0):
            raise DataError("add_model: scores must be in [0, 1] and costs >= 0")
        with torch.no_grad():
            theta = self.theta_net_(torch.as_tensor(X[known]))
        prior_mean = np.append(self.identity_a_.mean(0), self.identity_b_.mean())
        prior_var = float(prior_scale) * np.append(self.identity_a_.var(0),
                                                   self.identity_b_.var()) + 1e-2
        fitted = _map_identity(theta, scores[known], prior_mean, prior_mean, prior_var,
                               steps).astype(self.identity_a_.dtype)
        self.identity_a_ = np.vstack([self.identity_a_, fitted[None, :-1]])
        self.identity_b_ = np.append(self.identity_b_, fitted[-1])
        self.model_costs_ = np.append(self.model_costs_, float(np.mean(costs[known])))
        if not isinstance(info, ModelInfo):
            info = ModelInfo(str(info) if info is not None else f"model-{len(self.models_)}")
        self.models_ = [*self.models_, info]
        return len(self.models_) - 1

    # --- online learning -------------------------------------------------------------------
    def partial_fit(self, X: np.ndarray, scores: np.ndarray, costs: np.ndarray,
                    *, steps: int = 50) -> BanditRouter:
        """Online learning (``Tags.online``), the paper's cold-start mechanism applied to
        live outcomes: the observed cells (NaN: not observed) are kept, and the identity
        vector of every model observed in this call is refitted by MAP on all its observed
        outcomes so far, under a Gaussian prior centred on its identity from ``fit`` (its
        variance the spread of the models' identities); ``theta`` and the policy stay
        frozen. A model's mean cost becomes the running mean of its training and observed
        costs. Extra columns are new models: until their outcomes arrive, the mean of the
        others' identity vectors and costs (the prior of ``add_model``, ten times wider).
        Returns self."""
        import torch

        self._check_fitted()
        X = np.asarray(X)
        scores = np.asarray(scores, dtype=np.float64)
        costs = np.asarray(costs, dtype=np.float64)
        m_old, d = len(self.models_), self.X_train_.shape[1]
        if scores.ndim != 2 or scores.shape != costs.shape or scores.shape[0] != len(X) \
                or scores.shape[1] < m_old or (len(X) and X.shape[-1] != d):
            raise DataError(f"BanditRouter.partial_fit: {len(X)} rows with scores "
                            f"{scores.shape} and costs {costs.shape}; expected (rows, >= "
                            f"{m_old} models) and {d}-d vectors")
        if getattr(self, "_online", None) is None:
            variance = np.append(self.identity_a_.var(0), self.identity_b_.var()) + 1e-2
            self._online = {
                "prior": np.column_stack([self.identity_a_, self.identity_b_]),
                "variance": np.tile(variance, (m_old, 1)),
                "theta": np.zeros((0, int(self.irt_dim)), dtype=np.float32),
                "scores": np.zeros((0, m_old)),
                "cost_count": np.full(m_old, float(len(self.X_train_)))}
        state = self._online
        for j in range(m_old, scores.shape[1]):  # new models: the mean of the others
            prior = state["prior"].mean(0)
            state["prior"] = np.vstack([state["prior"], prior])
            state["variance"] = np.vstack([state["variance"], 10.0 * state["variance"].mean(0)])
            state["scores"] = np.column_stack([state["scores"], np.full(len(state["scores"]),
                                                                        np.nan)])
            state["cost_count"] = np.append(state["cost_count"], 0.0)
            self.identity_a_ = np.vstack([self.identity_a_, prior[None, :-1].astype(
                self.identity_a_.dtype)])
            self.identity_b_ = np.append(self.identity_b_, prior[-1]).astype(
                self.identity_b_.dtype)
            self.model_costs_ = np.append(self.model_costs_, np.mean(self.model_costs_))
            self.models_ = [*self.models_, ModelInfo(f"model-{j}")]
        if not len(X):
            return self
        with torch.no_grad():
            theta = self.theta_net_(torch.as_tensor(_l2_normalise(X.reshape(len(X), d))))
        state["theta"] = np.vstack([state["theta"], theta.numpy()])
        state["scores"] = np.vstack([state["scores"], scores])
        for j in np.flatnonzero((~np.isnan(costs)).any(axis=0)):
            seen = costs[~np.isnan(costs[:, j]), j]
            count = state["cost_count"][j]
            self.model_costs_[j] = (self.model_costs_[j] * count + seen.sum()) / (count + len(seen))
            state["cost_count"][j] = count + len(seen)
        for j in np.flatnonzero((~np.isnan(scores)).any(axis=0)):
            self._refit_identity(int(j), steps)
        return self

    def _refit_identity(self, j: int, steps: int) -> None:
        """Model j's identity vector by MAP on its observed online outcomes (``partial_fit``)."""
        import torch

        state = self._online
        rows = ~np.isnan(state["scores"][:, j])
        theta = torch.as_tensor(state["theta"][rows])
        start = np.append(self.identity_a_[j], self.identity_b_[j])
        with one_torch_thread():
            fitted = _map_identity(theta, np.clip(state["scores"][rows, j], 0.0, 1.0), start,
                                   state["prior"][j], state["variance"][j], steps)
        self.identity_a_[j] = fitted[:-1]
        self.identity_b_[j] = fitted[-1]


def _map_identity(theta: Any, scores: np.ndarray, start: np.ndarray, prior: np.ndarray,
                  variance: np.ndarray, steps: int) -> np.ndarray:
    """One model's identity vector (its ``a`` then ``b``) by MAP: the Bernoulli likelihood
    of ``scores`` under ``sigmoid(theta @ a - b)`` and a Gaussian prior (``prior``,
    ``variance``), by L-BFGS from ``start`` (``add_model`` and ``partial_fit``)."""
    import torch

    target = torch.as_tensor(scores, dtype=torch.float32)
    prior_t = torch.as_tensor(prior, dtype=torch.float32)
    variance_t = torch.as_tensor(variance, dtype=torch.float32)
    vector = torch.nn.Parameter(torch.as_tensor(start, dtype=torch.float32).clone())
    optimiser = torch.optim.LBFGS([vector], lr=0.5, max_iter=int(steps),
                                  line_search_fn="strong_wolfe")

    def closure() -> Any:
        optimiser.zero_grad()
        logit = theta @ vector[:-1] - vector[-1]
        nll = torch.nn.functional.binary_cross_entropy_with_logits(logit, target,
                                                                   reduction="sum")
        loss = nll + 0.5 * (((vector - prior_t) ** 2) / variance_t).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return vector.detach().numpy()
