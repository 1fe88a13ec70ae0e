"""The recommendation environment: single (gymnasium `Env`) and natively vectorized."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from environments.recommendation.config import RecommendationConfig
from environments.recommendation.data import Corpus, movielens_corpus, synthetic_corpus
from tfrl.errors import ConfigError, TfrlError

__all__ = [
    "RecommendationEnv",
    "RecommendationVectorEnv",
    "SlateError",
    "SlateSpace",
    "click_weights",
    "make_config",
]

SESSION_FEATURES = 3


class SlateError(TfrlError, ValueError):
    """A slate with repeated or out-of-range candidate ids."""


def make_config(preset: str = "default", **fields: Any) -> RecommendationConfig:
    """The config of `preset` ("default" or "recsim") with `fields` overriding it."""
    if isinstance(fields.get("config"), RecommendationConfig):
        return fields["config"]
    return RecommendationConfig.preset_config(preset, **fields)


class SlateSpace(gym.spaces.MultiDiscrete):
    """`MultiDiscrete([N] * k)` whose members (and samples) hold k distinct ids."""

    def __init__(self, num_candidates: int, slate_size: int, seed: Any = None):
        super().__init__(np.full(slate_size, num_candidates, dtype=np.int64), seed=seed)
        self.num_candidates = num_candidates
        self.slate_size = slate_size

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        return self.np_random.choice(self.num_candidates, self.slate_size, replace=False).astype(
            np.int64
        )

    def contains(self, x: Any) -> bool:
        return super().contains(x) and len(set(np.asarray(x).tolist())) == self.slate_size

    def __repr__(self) -> str:
        return f"SlateSpace(num_candidates={self.num_candidates}, slate_size={self.slate_size})"


def click_weights(
    user: np.ndarray, candidates: np.ndarray, config: RecommendationConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The choice model's unnormalized click weights, from observations only.

    P(click candidate i | slate S) = w_i / (w_0 + Σ_{j∈S} w_j), P(no click) = w_0 / (…).

    Args:
        user: (B, T) or (B, T + 3) user features (interests first).
        candidates: (B, N, D) candidate features (topics first, then appeal, length).
        config: the environment's config.

    Returns:
        (B, N) candidate weights and (B,) no-click weights.
    """
    t = config.num_topics
    affinity = np.einsum("bt,bnt->bn", user[:, :t], candidates[..., :t])
    if config.choice_model == "proportional":
        weights = np.maximum(affinity + 1.0, 0.0)
        return weights, np.full(user.shape[0], config.no_click_mass + 1.0)
    appeal = candidates[..., t] if candidates.shape[-1] > t else 0.0
    logits = config.affinity_scale * affinity + config.appeal_scale * appeal
    return np.exp(logits), np.full(user.shape[0], np.exp(config.no_click_logit))


def _load_corpus(config: RecommendationConfig, documents: Corpus | None) -> Corpus | None:
    if documents is not None:
        return documents
    if config.corpus == "recsim":
        return None
    if config.corpus == "movielens":
        loaded = movielens_corpus(config.tfds_name, clickbait=config.clickbait)
        if loaded.num_topics != config.num_topics:
            raise ConfigError(
                f"{config.tfds_name} has {loaded.num_topics} genres, but num_topics="
                f"{config.num_topics}; pass num_topics={loaded.num_topics} with corpus='movielens'."
            )
        return loaded
    return synthetic_corpus(
        config.corpus_size,
        config.num_topics,
        clickbait=config.clickbait,
        quality_noise=config.quality_noise,
        seed=config.corpus_seed,
    )


class _Sessions:
    """B user sessions stepped as one numpy computation.

    All randomness comes from per-user generators, one block of uniforms per
    user per call, so user i's session is the same whether it runs alone or in
    a batch.
    """

    def __init__(self, config: RecommendationConfig, corpus: Corpus | None, batch: int):
        self.config = c = config
        self.corpus = corpus
        self.batch = batch
        n, t = c.num_candidates, c.num_topics
        self.feature_width = t if corpus is None else t + 2
        # One step's uniforms: choice, interest flip, then the next candidates.
        self.block = 2 + (3 * n if corpus is None else n)
        if corpus is None:
            # RecSim's UtilityModelVideoSampler: 20 clusters, quality means
            # linspace(-3, 0, 14) then linspace(0, 3, 6), std 0.1, length 4.
            self.cluster_means = np.concatenate([np.linspace(-3, 0, 14), np.linspace(0, 3, 6)])
        self.interests = np.zeros((batch, t))
        self.budget = np.zeros(batch)
        # What the recommender has seen of the session: minutes watched, slates
        # without a click, and Σ minutes × quality over the clicked documents.
        self.session = np.zeros((batch, SESSION_FEATURES if c.session_features else 0))
        self.steps = np.zeros(batch, np.int64)
        self.response = np.full(batch, c.slate_size, np.int64)
        self.features = np.zeros((batch, n, self.feature_width))
        self.quality = np.zeros((batch, n))
        self.length = np.zeros((batch, n))
        self.topics = np.zeros((batch, n, t))

    @staticmethod
    def uniforms(generators: list[np.random.Generator], size: int) -> np.ndarray:
        out = np.empty((len(generators), size))
        for row, generator in zip(out, generators):
            generator.random(out=row)
        return out

    def _rows(self, rows: np.ndarray) -> np.ndarray | slice:
        """All rows as a slice (cheaper than fancy indexing), else the index array."""
        return slice(None) if len(rows) == self.batch else rows

    def _sample_candidates(self, rows: np.ndarray, u: np.ndarray) -> None:
        c, n = self.config, self.config.num_candidates
        if self.corpus is None:
            cluster = np.minimum((u[:, :n] * 20).astype(np.int64), 19)
            u1, u2 = 1.0 - u[:, n : 2 * n], u[:, 2 * n : 3 * n]
            normal = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
            onehot = np.eye(20)[cluster]
            self.topics[rows] = onehot
            self.features[rows] = onehot
            self.quality[rows] = self.cluster_means[cluster] + 0.1 * normal
            self.length[rows] = 4.0
            return
        docs = np.minimum((u[:, :n] * self.corpus.size).astype(np.int64), self.corpus.size - 1)
        topics = self.corpus.topics[docs]
        self.topics[rows] = topics
        self.features[rows, :, : c.num_topics] = topics
        self.features[rows, :, c.num_topics] = self.corpus.appeal[docs]
        self.features[rows, :, c.num_topics + 1] = self.corpus.length[docs]
        self.quality[rows] = self.corpus.quality[docs]
        self.length[rows] = self.corpus.length[docs]

    def reset(self, rows: np.ndarray, generators: list[np.random.Generator]) -> None:
        """Starts new sessions in `rows`, drawing from their generators."""
        t = self.config.num_topics
        u = self.uniforms(generators, t + self.block)
        rows = self._rows(rows)
        self.interests[rows] = 2.0 * u[:, :t] - 1.0
        self.budget[rows] = self.config.budget
        self.session[rows] = 0.0
        self.steps[rows] = 0
        self.response[rows] = self.config.slate_size
        self._sample_candidates(rows, u[:, t + 2 :])

    def step(
        self, rows: np.ndarray, slates: np.ndarray, generators: list[np.random.Generator]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Shows `slates` (len(rows), k) to the users in `rows`.

        Returns reward, terminated, truncated and clicked (each per row).
        """
        c = self.config
        k = c.slate_size
        u = self.uniforms(generators, self.block)
        m = len(rows)
        index = np.arange(m)
        rows = self._rows(rows)
        interests = self.interests[rows]
        w, w0 = click_weights(interests, self.features[rows], c)
        w = np.take_along_axis(w, slates, axis=1)
        cumulative = np.cumsum(np.concatenate([w, w0[:, None]], axis=1), axis=1)
        choice = np.minimum((cumulative < u[:, :1] * cumulative[:, -1:]).sum(axis=1), k)
        clicked = choice < k
        position = slates[index, np.minimum(choice, k - 1)]
        length = self.length[rows][index, position]
        quality = self.quality[rows][index, position]
        budget = self.budget[rows]
        watch = np.where(clicked, np.minimum(budget, length), 0.0)
        budget = np.where(
            clicked,
            budget - watch + c.budget_quality_factor * watch * quality,
            budget - c.no_click_cost,
        )
        # Interests drift toward (or away from) the clicked document's topics.
        mask = self.topics[rows][index, position]
        alpha = c.interest_drift * (1.0 - np.abs(interests))
        update = alpha * mask * (mask - interests)
        toward = u[:, 1] < np.einsum("bt,bt->b", (interests + 1.0) / 2.0, mask)
        update *= np.where(toward, 1.0, -1.0)[:, None]
        self.interests[rows] = np.where(
            clicked[:, None], np.clip(interests + update, -1.0, 1.0), interests
        )
        self.budget[rows] = budget
        if c.session_features:
            session = self.session[rows]
            session[:, 0] += watch / 100.0
            session[:, 1] += ~clicked / 100.0
            session[:, 2] += watch * quality / 100.0
            self.session[rows] = session
        self.steps[rows] += 1
        self.response[rows] = choice
        self._sample_candidates(rows, u[:, 2:])
        terminated = budget <= 0.0
        truncated = np.zeros(m, bool)
        if c.max_steps is not None:
            truncated = (self.steps[rows] >= c.max_steps) & ~terminated
        return watch, terminated, truncated, clicked

    def observation(self) -> dict[str, np.ndarray]:
        return {
            "user": np.concatenate([self.interests, self.session], axis=1).astype(np.float32),
            "candidates": self.features.astype(np.float32),
            "response": self.response.copy(),
        }


def _observation_space(config: RecommendationConfig, width: int) -> gym.Space:
    n, t, k = config.num_candidates, config.num_topics, config.slate_size
    s = SESSION_FEATURES if config.session_features else 0
    low = np.concatenate([np.full(t, -1.0), np.full(s, -np.inf)])
    high = np.concatenate([np.full(t, 1.0), np.full(s, np.inf)])
    user = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
    candidates = gym.spaces.Box(-np.inf, np.inf, (n, width), np.float32)
    if config.observation == "flat":
        size = t + s + n * width + k + 1
        return gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
    return gym.spaces.Dict(
        {"user": user, "candidates": candidates, "response": gym.spaces.Discrete(k + 1)}
    )


def _flatten(observation: dict[str, np.ndarray], slate_size: int) -> np.ndarray:
    batch = observation["user"].shape[0]
    onehot = np.eye(slate_size + 1, dtype=np.float32)[observation["response"]]
    return np.concatenate(
        [observation["user"], observation["candidates"].reshape(batch, -1), onehot], axis=1
    )


def _as_slates(action: Any, batch: int) -> np.ndarray:
    """`action` as a (batch, k) int64 array; non-integer ids are refused, not truncated."""
    array = np.asarray(action)
    if not np.issubdtype(array.dtype, np.integer):
        raise SlateError(
            f"A slate holds integer candidate ids, got {array.dtype} values "
            f"{np.ravel(array)[:8].tolist()}; pass ints (e.g. np.int64), not floats."
        )
    return array.astype(np.int64).reshape(batch, -1)


def _check_slates(slates: np.ndarray, config: RecommendationConfig) -> None:
    n, k = config.num_candidates, config.slate_size
    if slates.shape[1:] != (k,):
        raise SlateError(
            f"A slate must hold slate_size={k} candidate ids, got an action of shape "
            f"{slates.shape[1:]}."
        )
    bad = (slates < 0) | (slates >= n)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise SlateError(
            f"Slate {slates[row].tolist()} has ids outside 0..{n - 1} (num_candidates={n})."
        )
    if k > 1:
        ordered = np.sort(slates, axis=1)
        repeated = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        if repeated.any():
            row = int(np.argmax(repeated))
            raise SlateError(
                f"Slate {slates[row].tolist()} shows a candidate twice; a slate holds "
                f"{k} distinct candidate ids."
            )


def _spaces(config: RecommendationConfig, width: int) -> tuple[gym.Space, gym.Space]:
    if config.slate_size == 1:
        action = gym.spaces.Discrete(config.num_candidates)
    else:
        action = SlateSpace(config.num_candidates, config.slate_size)
    return _observation_space(config, width), action


class RecommendationEnv(gym.Env):
    """Slate recommendation for long-term engagement (after RecSim's interest evolution).

    ## Description
    Each step a user is offered `num_candidates` documents; the recommender
    shows a slate of `slate_size` of them. The user clicks at most one, by a
    choice model over the slate plus a no-click option, and watches it. Users'
    topic interests drift toward what they consume. Each session has a time
    budget: watching a document spends its watch time but gives some back in
    proportion to its quality (not among the candidates' features), and a slate
    without a click costs
    `no_click_cost`; the session ends when the budget is spent. So clickbait
    (high appeal, low quality) pays now and costs later.

    Our default config (`preset="default"`) is chosen for realism: documents
    from a synthetic corpus of 2,000, each mostly about one of 10 topics, with
    an observable appeal (how clickable its title is) that is *anti*-correlated
    with its hidden quality (quality = topic quality + noise − 3 · appeal), as
    engagement-bait is; a multinomial-logit choice model in which appeal
    weighs more than topic affinity (logit = 2 · u·x + 3 · appeal, no-click
    logit 2); a 120-minute budget that a good document extends and a poor one
    drains (−w + 0.4 · w · quality), and 1 minute lost per ignored slate. A
    myopic recommender that maximizes the next click's expected minutes shows
    appealing documents, gets the higher click-through rate, and ends sessions
    early. `preset="recsim"` is RecSim's interest evolution as its
    `create_environment` builds it, with RecSim's user observation (see
    `RecommendationConfig` and the observation space below).

    ## Action space
    `SlateSpace(num_candidates, slate_size)` (a `MultiDiscrete([N] * k)` of
    distinct ids), or `Discrete(num_candidates)` when `slate_size == 1`. A
    slate that repeats an id or names one outside `0..N-1` raises `SlateError`.

    ## Observation space
    `Dict` of `user`, `candidates` and `response`. `user` is `Box((T + 3,))`
    by default: the user's topic interests in [−1, 1], then three running
    session totals, in hundreds: minutes watched, slates without a click, and
    Σ minutes × quality of the clicked documents. Those totals make the budget
    left a known function of the observation (budget − minutes − no_click_cost
    · no-click slates + budget_quality_factor · Σ minutes × quality, to float
    rounding), so in the default config the user's state (interests and budget
    left) is observed; the agents tuned on it use them.
    `session_features=False` drops them (`Box((T,))`), and `preset="recsim"`
    does so: RecSim's user observation is the interests alone
    (`IEvUserState.create_observation`), with the budget hidden. (RecSim's
    per-step response also reports the clicked document's watch time and
    quality; `response` here reports only the position clicked.)
    `candidates` is `Box(N, D)`: per candidate its topic mixture (T), then for
    corpus documents its appeal and length in minutes; RecSim's are cluster
    one-hots, D = 20. `response` is `Discrete(k + 1)`: the slate position
    clicked last step, k for none. A candidate's quality is not among its
    features (with session features, the clicked one's shows afterwards in the
    running total).
    `observation="flat"` concatenates them (response one-hot) into one `Box`.

    ## Rewards
    Minutes watched: the clicked document's length (at most the budget left), 0 without a click.

    ## Starting state and episode end
    A new user with interests uniform in [−1, 1]^T and the full budget.
    Terminated when the budget reaches 0; truncated after `max_steps` slates.

    ## Arguments
    `gymnasium.make("tfrl/Recommendation-v0", preset="default", **fields)`;
    see `RecommendationConfig` for every field; `documents=` takes your own
    `data.Corpus` instead of `corpus`'s. `info` carries the candidates'
    hidden `quality` (for oracle baselines) and whether the user `clicked`.

    ## Version history
    - v0: initial version.
    """

    metadata = {"render_modes": []}

    def __init__(self, preset: str = "default", *, documents: Corpus | None = None, **fields: Any):
        self.config = make_config(preset, **fields)
        self.corpus = _load_corpus(self.config, documents)
        self._sessions = _Sessions(self.config, self.corpus, 1)
        self.observation_space, self.action_space = _spaces(
            self.config, self._sessions.feature_width
        )
        self._rows = np.zeros(1, np.int64)

    def _observation(self) -> Any:
        observation = self._sessions.observation()
        if self.config.observation == "flat":
            return _flatten(observation, self.config.slate_size)[0]
        return {
            "user": observation["user"][0],
            "candidates": observation["candidates"][0],
            "response": int(observation["response"][0]),
        }

    def _info(self, clicked: bool = False) -> dict[str, Any]:
        return {"quality": self._sessions.quality[0].copy(), "clicked": clicked}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._sessions.reset(self._rows, [self.np_random])
        return self._observation(), self._info()

    def step(self, action: Any):
        slate = _as_slates(action, 1)
        _check_slates(slate, self.config)
        reward, terminated, truncated, clicked = self._sessions.step(
            self._rows, slate, [self.np_random]
        )
        return (
            self._observation(),
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            self._info(bool(clicked[0])),
        )


class RecommendationVectorEnv(gym.vector.VectorEnv):
    """`num_envs` users of `RecommendationEnv` stepped as one numpy computation.

    gymnasium's vector API with next-step autoreset: the step after a
    session ends starts a new one (reward 0) and ignores that row's action.
    Sub-env i seeded with `seed + i` plays exactly the sessions a single
    `RecommendationEnv` reset with `seed + i` plays.

    Args:
        num_envs: users stepped together. Default 1.
        preset, documents, **fields: as `RecommendationEnv`.
    """

    metadata = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        preset: str = "default",
        *,
        documents: Corpus | None = None,
        **fields: Any,
    ):
        self.config = make_config(preset, **fields)
        self.corpus = _load_corpus(self.config, documents)
        self.num_envs = num_envs
        self._sessions = _Sessions(self.config, self.corpus, num_envs)
        self.single_observation_space, self.single_action_space = _spaces(
            self.config, self._sessions.feature_width
        )
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self._generators = [seeding.np_random()[0] for _ in range(num_envs)]
        self._autoreset = np.zeros(num_envs, bool)
        self._all = np.arange(num_envs)

    def _observation(self) -> Any:
        observation = self._sessions.observation()
        if self.config.observation == "flat":
            return _flatten(observation, self.config.slate_size)
        return observation

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        if isinstance(seed, int):
            seed = [seed + i for i in range(self.num_envs)]
        if seed is not None:
            if len(seed) != self.num_envs:
                raise ConfigError(f"reset() got {len(seed)} seeds for {self.num_envs} envs.")
            for i, s in enumerate(seed):
                if s is not None:
                    self._generators[i] = seeding.np_random(s)[0]
        self._sessions.reset(self._all, self._generators)
        self._autoreset[:] = False
        return self._observation(), {"quality": self._sessions.quality.copy()}

    def step(self, actions: Any):
        slates = _as_slates(actions, self.num_envs)
        n = self.num_envs
        reward = np.zeros(n)
        terminated = np.zeros(n, bool)
        truncated = np.zeros(n, bool)
        clicked = np.zeros(n, bool)
        live = np.flatnonzero(~self._autoreset)
        restart = np.flatnonzero(self._autoreset)
        if len(restart):
            self._sessions.reset(restart, [self._generators[i] for i in restart])
        if len(live):
            _check_slates(slates[live], self.config)
            r, te, tr, cl = self._sessions.step(
                live, slates[live], [self._generators[i] for i in live]
            )
            reward[live], terminated[live], truncated[live], clicked[live] = r, te, tr, cl
        self._autoreset = terminated | truncated
        info = {"quality": self._sessions.quality.copy(), "clicked": clicked}
        return self._observation(), reward, terminated, truncated, info
