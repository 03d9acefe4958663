"""GraphRouter (Feng, Shen and You, ICLR 2025, arXiv 2410.03834) on the routeharness contract.

The graph (rebuilt for every forward pass, all node features frozen):

- *query* nodes: the prompt embeddings (L2-normalised), one per training prompt, plus
  one per prompt to route;
- *LLM* nodes: the embedding of each model's text description (``ModelInfo.description``,
  from the task card) in the prompts' space (``Outcomes.encode_text``);
- *task* nodes: the embedding of each group's description (``Outcomes.group_descriptions``);
- query <-> LLM edges for every known outcome, carrying ``[score, cost, 1, 0]``
  (cost in normalised units); task -> query edges for every query and query -> task edges
  for the queries whose outcomes are visible, carrying ``[0, 0, 0, 1]``.

Each node type has its own linear projection into a common hidden space (GraphRouter's
feature alignment); two ``torch_geometric.nn.GeneralConv`` layers with edge features do
the message passing. An edge decoder reads the element-wise product of a query's and an
LLM's final embeddings and outputs the edge's score (a logit, trained with binary
cross-entropy against the score in [0, 1]) and its cost (softplus, squared error).

Training is masked edge prediction: at every step a random ``mask_rate`` of the training
queries have *all* their LLM edges hidden (no messages, no link to their task node) and
the model predicts those edges from the rest of the graph. A new query is routed exactly
like a masked one: it joins the graph connected to its task node, its LLM edges unknown,
and the decoder predicts them. A routed query sends no message anywhere, so its
prediction does not depend on which other queries are routed with it.

This is a *utility* router: ``predict`` returns the predicted edge scores and costs, and
the harness's trade-off ``lam`` plays the role of GraphRouter's utility weights
(upstream trains one classifier of the best LLM per fixed weighting; see docs/graphrouter.md).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from routeharness import (
    UTILITY,
    BaseRouter,
    DataError,
    RouterState,
    StateError,
    Tags,
    check_layout,
    default_state,
    load_module,
    module_arrays,
    one_torch_thread,
)

#: edge feature layout: [score, cost, is_query_llm_edge, is_task_query_edge]
EDGE_DIM = 4


def _l2_normalise(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def text_node_features(texts: list[str], encode_text: Any) -> tuple[np.ndarray, str]:
    """(k, d) features of description nodes and how they were made.

    With an encoder (``encode_text`` from the harness) each text is embedded in the
    prompts' space; without one (outside the harness) the nodes get one-hot features
    (k, k), i.e. a learned free embedding per node after the projection layer.
    """
    if encode_text is None or not texts:
        return np.eye(max(len(texts), 1), dtype=np.float32)[: len(texts)], "one-hot"
    return _l2_normalise(np.asarray(encode_text(list(texts)), dtype=np.float32)), "encoded"




#: what a saved GraphRouter holds besides its network: name -> the dimensions each array
#: must have (n training queries, m models, t tasks; None: any), or None for a JSON value
_STATE_SHAPES: dict[str, tuple[str | None, ...] | None] = {
    "X_train_": ("n", None), "scores_": ("n", "m"), "costs_": ("n", "m"), "known_": ("n", "m"),
    "train_task_": ("n",), "llm_features_": ("m", None), "task_features_": ("t", None),
    "loss_history_": (None,), "n_models_": None, "task_index_": None,
    "llm_featurisation_": None, "task_featurisation_": None}


def _check_state(state: RouterState) -> None:
    """A one-line ``StateError`` unless ``state`` holds exactly the network's arrays and
    ``_STATE_SHAPES``, with consistent dimensions: routing reads the training graph."""
    sizes = check_layout("graphrouter", state, _STATE_SHAPES, ("network_.",),
                         {"m": state.values.get("n_models_", -1)})
    index = state.values["task_index_"]
    if not isinstance(index, dict) or sorted(index.values()) != list(range(sizes["t"])):
        raise StateError(f"graphrouter: the state's task_index_ must map group names to "
                         f"0..{sizes['t'] - 1}")


def _build_network(query_dim: int, llm_dim: int, task_dim: int, hidden_dim: int) -> Any:
    import torch
    from torch import nn
    from torch_geometric.nn import GeneralConv

    class GraphRouterNet(nn.Module):
        """Type-wise projections, two GeneralConv layers with edge features, edge decoder."""

        def __init__(self) -> None:
            super().__init__()
            self.project_query = nn.Linear(query_dim, hidden_dim)
            self.project_llm = nn.Linear(llm_dim, hidden_dim)
            self.project_task = nn.Linear(task_dim, hidden_dim)
            self.edge_mlp = nn.Linear(EDGE_DIM, EDGE_DIM)
            # mean aggregation: an LLM node has thousands of query neighbours, a sum
            # would scale with the training-set size
            self.conv1 = GeneralConv(hidden_dim, hidden_dim, in_edge_channels=EDGE_DIM,
                                     aggr="mean")
            self.conv2 = GeneralConv(hidden_dim, hidden_dim, in_edge_channels=EDGE_DIM,
                                     aggr="mean")
            self.norm1 = nn.LayerNorm(hidden_dim)
            self.norm2 = nn.LayerNorm(hidden_dim)
            self.decoder = nn.Linear(hidden_dim, 2)

        def forward(self, x_query: Any, x_llm: Any, x_task: Any, edge_index: Any,
                    edge_attr: Any, pairs: Any) -> tuple[Any, Any]:
            h = torch.cat([self.project_query(x_query), self.project_llm(x_llm),
                           self.project_task(x_task)], dim=0)
            e = torch.relu(self.edge_mlp(edge_attr))
            h = torch.relu(self.norm1(self.conv1(h, edge_index, edge_attr=e)))
            h = self.norm2(self.conv2(h, edge_index, edge_attr=e))
            out = self.decoder(h[pairs[0]] * h[pairs[1]])
            return out[:, 0], nn.functional.softplus(out[:, 1])

    return GraphRouterNet()


class GraphRouter(BaseRouter):
    """GraphRouter: predicts every (prompt, model) edge's score and cost with a GNN.

    Hyper-parameters: ``hidden_dim`` (node embedding size), ``epochs`` (full-graph
    optimisation steps, one random mask each), ``learning_rate`` and ``weight_decay``
    (AdamW), ``mask_rate`` (fraction of training queries whose edges are hidden and
    predicted at each step), ``cost_weight`` (weight of the cost loss beside the score
    loss), ``random_state``.
    """

    kind = UTILITY
    # four configurations: each epoch is a full-graph GNN pass (~0.25 s on 5k queries, one
    # CPU thread), so the grid is kept small; mask_rate stays at upstream's 0.3
    param_grid: ClassVar[dict[str, list[Any]]] = {
        "hidden_dim": [32, 64], "learning_rate": [1e-3, 5e-3]}
    #: a tie on validation AUC: fewer parameters, then the smaller step (a fit nearer its
    #: initialisation in the fixed number of epochs)
    tie_preference: ClassVar[dict[str, Any]] = {"hidden_dim": "smaller",
                                                "learning_rate": "smaller"}
    # the prompts' groups are task nodes of the graph; check_params: the conformance kit's
    # settings (seconds on its mock problems)
    tags: ClassVar[Tags] = Tags(needs_groups=True, saveable=True, check_params={"epochs": 60})

    def __init__(self, hidden_dim: int = 64, epochs: int = 100, learning_rate: float = 5e-3,
                 weight_decay: float = 1e-4, mask_rate: float = 0.3, cost_weight: float = 1.0,
                 random_state: int | None = None):
        self.hidden_dim = hidden_dim
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.mask_rate = mask_rate
        self.cost_weight = cost_weight
        self.random_state = random_state

    # --- graph construction -------------------------------------------------------------
    def _graph(self, n_queries: int, visible_rows: np.ndarray, known: np.ndarray,
               scores: np.ndarray, costs: np.ndarray, query_task: np.ndarray) -> tuple[Any, Any]:
        """edge_index (2, E) and edge_attr (E, EDGE_DIM) over nodes
        [queries 0..n_queries-1 | LLMs | tasks].

        visible_rows: indices of queries whose known LLM edges carry messages.
        known: (len(visible_rows), m) bool. query_task: (n_queries,) task index, -1 = none.
        """
        import torch

        m = self.n_models_
        rows, cols = np.nonzero(known)
        q = visible_rows[rows]
        llm = n_queries + cols
        values = np.column_stack([scores[rows, cols], costs[rows, cols],
                                  np.ones(len(rows)), np.zeros(len(rows))])
        has_task = np.flatnonzero(query_task >= 0)
        task_node = n_queries + m + query_task[has_task]
        visible_task = np.intersect1d(has_task, visible_rows)
        task_attr = np.array([0.0, 0.0, 0.0, 1.0])
        src = np.concatenate([q, llm, task_node, visible_task])
        dst = np.concatenate([llm, q, has_task, n_queries + m + query_task[visible_task]])
        attr = np.concatenate([values, values, np.tile(task_attr, (len(has_task), 1)),
                               np.tile(task_attr, (len(visible_task), 1))])
        return (torch.as_tensor(np.stack([src, dst]), dtype=torch.long),
                torch.as_tensor(attr, dtype=torch.float32))

    def _task_index(self, groups: np.ndarray | None, n: int) -> np.ndarray:
        if groups is None:
            return np.full(n, -1, dtype=np.int64)
        lookup = self.task_index_
        return np.asarray([lookup.get(str(g), -1) for g in groups], dtype=np.int64)

    # --- saved state --------------------------------------------------------------------
    def get_state(self) -> RouterState:
        """The network as ``network_.*`` arrays; the training graph (embeddings, outcomes,
        node features, task index) as it is: routing a new query runs the GNN over it."""
        self._check_fitted()
        rest = default_state(self, skip=("network_",))
        return RouterState({**rest.arrays, **module_arrays("network_", self.network_)},
                           rest.values)

    def set_state(self, state: RouterState) -> GraphRouter:
        """Checks the training graph's shapes, rebuilds the network from them and
        ``hidden_dim`` and loads its weights (strict); a misfit is a one-line
        ``StateError``."""
        import torch

        _check_state(state)
        arrays = state.arrays
        with torch.random.fork_rng(devices=[]):  # the random init is overwritten
            net = _build_network(arrays["X_train_"].shape[1], arrays["llm_features_"].shape[1],
                                 arrays["task_features_"].shape[1], int(self.hidden_dim))
        network = load_module("graphrouter", "network_", net, arrays)
        super().set_state(RouterState({k: v for k, v in arrays.items()
                                       if not k.startswith("network_.")}, state.values))
        self.network_ = network
        return self

    # --- estimator contract -------------------------------------------------------------
    def fit(self, X: np.ndarray, outcomes: Any) -> GraphRouter:
        """Learn from training embeddings X (n, d) and their outcomes (scores, normalised
        costs (n, m), NaN = missing). Returns self."""
        import torch

        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] != outcomes.n:
            raise DataError(f"GraphRouter.fit: X has shape {X.shape}, expected "
                            f"({outcomes.n}, d) to match the outcomes")
        if not 0.0 < float(self.mask_rate) < 1.0:
            raise ValueError(f"mask_rate must be in (0, 1), got {self.mask_rate!r}")
        scores = np.asarray(outcomes.scores, dtype=np.float64)
        costs = np.asarray(outcomes.costs, dtype=np.float64)
        known = ~np.isnan(scores) & ~np.isnan(costs)
        if not known.any():
            raise DataError("GraphRouter.fit: every score is missing")
        self.n_models_ = outcomes.m
        self.X_train_ = _l2_normalise(X)
        self.scores_ = np.where(known, scores, 0.0)
        self.costs_ = np.where(known, costs, 0.0)
        self.known_ = known
        descriptions = [model.description or model.name for model in outcomes.models]
        self.llm_features_, self.llm_featurisation_ = text_node_features(
            descriptions, outcomes.encode_text)
        group_names = sorted({str(g) for g in outcomes.groups}
                             | set(getattr(outcomes, "group_descriptions", {}) or {}))
        group_texts = [(outcomes.group_descriptions or {}).get(g) or g for g in group_names]
        self.task_index_ = {g: i for i, g in enumerate(group_names)}
        self.task_features_, self.task_featurisation_ = text_node_features(
            group_texts, outcomes.encode_text)
        self.train_task_ = self._task_index(np.asarray(outcomes.groups), outcomes.n)

        n = outcomes.n
        labelled = np.flatnonzero(known.any(axis=1))
        n_masked = max(1, int(round(float(self.mask_rate) * len(labelled))))
        seed = 0 if self.random_state is None else int(self.random_state)
        rng = np.random.default_rng(seed)
        x_query = torch.as_tensor(self.X_train_)
        x_llm = torch.as_tensor(self.llm_features_)
        x_task = torch.as_tensor(self.task_features_)
        score_t = torch.as_tensor(self.scores_, dtype=torch.float32)
        cost_t = torch.as_tensor(self.costs_, dtype=torch.float32)
        losses = []
        # seed torch locally: the same random_state gives the same weights and the global
        # RNG of the caller is left as it was
        with one_torch_thread(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = _build_network(X.shape[1], self.llm_features_.shape[1],
                                 self.task_features_.shape[1], int(self.hidden_dim))
            optimiser = torch.optim.AdamW(net.parameters(), lr=float(self.learning_rate),
                                          weight_decay=float(self.weight_decay))
            net.train()
            for _ in range(int(self.epochs)):
                masked = np.zeros(n, dtype=bool)
                masked[rng.choice(labelled, size=n_masked, replace=False)] = True
                visible = np.flatnonzero(~masked)
                edge_index, edge_attr = self._graph(n, visible, known[visible], self.scores_,
                                                    self.costs_, self.train_task_)
                rows, cols = np.nonzero(known & masked[:, None])
                pairs = torch.as_tensor(np.stack([rows, n + cols]), dtype=torch.long)
                score_logit, cost_hat = net(x_query, x_llm, x_task, edge_index, edge_attr,
                                            pairs)
                r, c = torch.as_tensor(rows), torch.as_tensor(cols)
                loss = (torch.nn.functional.binary_cross_entropy_with_logits(
                            score_logit, score_t[r, c])
                        + float(self.cost_weight) * torch.mean((cost_hat - cost_t[r, c]) ** 2))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                losses.append(float(loss.detach()))
        net.eval()
        self.network_ = net
        self.loss_history_ = np.asarray(losses)
        return self

    def predict(self, X: np.ndarray, groups: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(scores_hat, costs_hat), each (n, m): predicted score in [0, 1] and normalised
        cost of every edge between the new prompts and the LLMs. ``groups`` (n,) links each
        prompt to its task node (an unseen group, or None, links to none)."""
        import torch

        self._check_fitted()
        X = _l2_normalise(np.asarray(X))
        if X.ndim != 2 or X.shape[1] != self.X_train_.shape[1]:
            raise DataError(f"GraphRouter.predict: X has shape {X.shape}, expected "
                            f"(n, {self.X_train_.shape[1]})")
        n_train, n_new, m = self.X_train_.shape[0], X.shape[0], self.n_models_
        if n_new == 0:
            return np.zeros((0, m)), np.zeros((0, m))
        n = n_train + n_new
        visible = np.arange(n_train)
        query_task = np.concatenate([self.train_task_, self._task_index(groups, n_new)])
        edge_index, edge_attr = self._graph(n, visible, self.known_, self.scores_, self.costs_,
                                            query_task)
        new_rows = np.repeat(np.arange(n_train, n), m)
        llm_nodes = n + np.tile(np.arange(m), n_new)
        pairs = torch.as_tensor(np.stack([new_rows, llm_nodes]), dtype=torch.long)
        with one_torch_thread(), torch.no_grad():
            score_logit, cost_hat = self.network_(
                torch.as_tensor(np.concatenate([self.X_train_, X])),
                torch.as_tensor(self.llm_features_), torch.as_tensor(self.task_features_),
                edge_index, edge_attr, pairs)
        scores_hat = torch.sigmoid(score_logit).numpy().astype(np.float64).reshape(n_new, m)
        costs_hat = cost_hat.numpy().astype(np.float64).reshape(n_new, m)
        return scores_hat, costs_hat
