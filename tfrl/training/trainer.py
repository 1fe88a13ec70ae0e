"""`tfrl.Trainer`: collect, train, evaluate, checkpoint — Keras' `fit` for agents."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.environments import tf_environment
from tf_agents.metrics import tf_metrics
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from tfrl.agents.config import AgentConfig
from tfrl.envs.make import made_from
from tfrl.envs.rng import get_rng_states, set_rng_states
from tfrl.errors import ConfigError, check_whole_number
from tfrl.training import loops, seeding
from tfrl.training.callbacks import Callback, CallbackList, Checkpoint
from tfrl.training.checkpoint import CheckpointManager
from tfrl.training.evaluate import EvalResult, check_specs_match, evaluate, make_eval_env
from tfrl.training.history import History
from tfrl.training.progress import ProgressLine

__all__ = ["Trainer"]

logger = logging.getLogger(__name__)

_warned_unseeded = False


def _warn_unseeded_agent(seed: int) -> None:
    """Once per process: Trainer(seed=) came after the agent's weights were drawn unseeded."""
    global _warned_unseeded
    if _warned_unseeded:
        return
    _warned_unseeded = True
    logger.warning(
        "Trainer(seed=%d): tfrl.set_seed(%d) was not called before the agent was built, so "
        "its initial weights were not drawn from that seed and the run is not reproducible. "
        "Call tfrl.set_seed(%d) before tfrl.envs.make and tfrl.agents.make.",
        seed,
        seed,
        seed,
    )


# Seeds of evaluation envs are offset from the training seed so they never share episodes.
_EVAL_SEED_OFFSET = 1_000_000
# Key of the Trainer's generator stream (collection and replay sampling) under the seed.
_TRAINER_STREAM = 1
# Logged values that measure wall-clock time, so differ between otherwise identical runs.
TIMING_KEYS = ("steps_per_sec", "train_seconds", "eval_seconds")


class Trainer:
    """Trains a TF-Agents agent on a batched environment.

    Each iteration collects `config.collect_env_steps` env steps with the
    agent's collect policy and runs `config.train_steps` train steps, each
    inside one compiled `tf.function`. Off-policy agents (DQN) sample from a
    uniform replay buffer; on-policy agents (PPO, REINFORCE, softmax) train
    on the segment just collected.

    >>> env = tfrl.envs.make("CartPole-v1", num_envs=8, seed=0)
    >>> trainer = tfrl.Trainer(tfrl.agents.make("dqn", env), env)
    >>> history = trainer.fit(50_000, callbacks=[tfrl.callbacks.EarlyStopping(475)])

    Args:
        agent: a tfrl agent (`tfrl.agents.make`) or any TF-Agents `TFAgent`.
        env: the batched TF-Agents training environment (`tfrl.envs.make`).
        eval_env: where evaluations run. Default: copies of `env` made from the
            same id, one per evaluation episode, seeded apart from training.
        config: collection/training schedule; default `agent.config` (tfrl
            agents) or `AgentConfig()` defaults.
        seed: seeds the Trainer's random stream (exploration, action and
            replay sampling) and the evaluation envs, and calls
            `tfrl.set_seed(seed)`. Default None.

    Reproducibility: network weights are drawn when the agent is built, so
    call `tfrl.set_seed(seed)` before `tfrl.agents.make` (`tfrl.train` and
    `tfrl train` do). Then two runs with one seed log the same History
    (apart from the wall-clock `tfrl.training.trainer.TIMING_KEYS`) and end with the same weights
    on CPU. Envs seeded by `tfrl.envs.make(..., seed=)` are reproducible;
    async vector envs and envs with their own unseeded randomness are not.

    Resume: every checkpoint ends the episodes in progress (the envs are
    reset before the next collect and the replay buffer marks the cut as a
    boundary, so no TD target bootstraps across it), because env states
    cannot be saved. A checkpoint holds the random streams, the return
    window and the callbacks' state, so a run resumed from it continues
    exactly as the uninterrupted run did.
    """

    def __init__(
        self,
        agent: tf_agent.TFAgent,
        env: tf_environment.TFEnvironment,
        eval_env: Any = None,
        *,
        config: AgentConfig | None = None,
        seed: int | None = None,
    ):
        if not isinstance(agent, tf_agent.TFAgent):
            raise ConfigError(
                f"Trainer needs a TF-Agents agent (e.g. tfrl.agents.make('dqn', env)), "
                f"got {type(agent).__name__}."
            )
        if not isinstance(env, tf_environment.TFEnvironment):
            raise ConfigError(
                f"Trainer needs a TF-Agents environment (e.g. tfrl.envs.make('CartPole-v1')), "
                f"got {type(env).__name__}. Wrap gymnasium envs with tfrl.envs.make."
            )
        check_specs_match(agent.time_step_spec, agent.action_spec, env, "The agent")
        self.agent = agent
        self.env = env
        self.config = config or getattr(agent, "config", None) or AgentConfig()
        self.on_policy = getattr(agent, "on_policy", agent.train_sequence_length is None)
        if seed is not None:
            if seeding.last_seed() != seed:
                _warn_unseeded_agent(seed)
            seeding.set_seed(seed)
        self.seed = seed
        self._eval_env = eval_env
        self._eval_env_made = False
        self._rng = seeding.make_generator(seed, _TRAINER_STREAM)
        self._time_step = None
        self._policy_state = None
        self._restored_unresumable = False
        self._callbacks: list[Callback] = []
        self.num_envs = env.batch_size or 1
        self.history = History()
        self.stop_training = False
        self.resuming = False
        self._env_steps = getattr(agent, "env_step_counter", None)
        if self._env_steps is None:
            self._env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="env_steps")
        self._build()

    # -- construction -------------------------------------------------------

    def _build(self) -> None:
        c = self.config
        self.steps_per_env = math.ceil(c.collect_env_steps / self.num_envs)
        self.iteration_env_steps = self.steps_per_env * self.num_envs
        if self.on_policy:
            # The driver counts real transitions, not the reset step after each episode
            # end, so a segment may take up to twice its steps: the buffer must never wrap.
            capacity = 2 * self.steps_per_env + 2
        else:
            capacity = max(math.ceil(c.replay_capacity / self.num_envs), self.steps_per_env)
        self.replay_buffer = loops.make_replay_buffer(self.agent, self.num_envs, capacity)
        self.return_metric = tf_metrics.AverageReturnMetric(
            batch_size=self.num_envs, buffer_size=20
        )
        observers = [self.replay_buffer.add_batch, self.return_metric]
        self.collect_policy = seeding.GeneratorPolicy(self.agent.collect_policy, self._rng)
        self._collect = loops.make_collect_fn(
            self.env, self.collect_policy, observers, self.iteration_env_steps
        )
        if self.on_policy:
            self._train = loops.make_on_policy_train_fn(
                self.agent, self.replay_buffer, c.train_steps
            )
        else:
            self._train = loops.make_off_policy_train_fn(
                self.agent,
                self.replay_buffer,
                c.batch_size,
                c.train_steps,
                self._rng,
                jit_compile=getattr(c, "jit_compile", False),
            )

    @property
    def env_steps(self) -> int:
        """Env steps collected so far (summed over the parallel envs)."""
        return int(self._env_steps.numpy())

    @property
    def eval_env(self) -> Any:
        return self._eval_env

    def _make_eval_env(self, episodes: int) -> Any:
        if self._eval_env is not None:
            return self._eval_env
        source = made_from(self.env)
        if source is None:
            raise ConfigError(
                "Cannot build evaluation envs: the training env was not made by "
                "tfrl.envs.make from an id. Pass eval_env= to Trainer."
            )
        env_id, kwargs = source
        seed = None if self.seed is None else self.seed + _EVAL_SEED_OFFSET
        self._eval_env = make_eval_env(env_id, episodes, seed, **kwargs)
        self._eval_env_made = True
        return self._eval_env

    # -- state ---------------------------------------------------------------

    def checkpoint_manager(self, directory: str, max_to_keep: int = 3) -> CheckpointManager:
        trackables = {
            "agent": self.agent,
            "env_steps": self._env_steps,
            "rng": self._rng,
            # TF-Agents' metric keeps its window in a plain object checkpoints miss.
            "return_window": tf.train.Checkpoint(
                values=self.return_metric._buffer._buffer,
                head=self.return_metric._buffer._head,
                accumulator=self.return_metric._return_accumulator,
            ),
        }
        if not self.on_policy:
            trackables["replay_buffer"] = self.replay_buffer
        return CheckpointManager(directory, trackables, max_to_keep=max_to_keep)

    def end_episodes(self) -> None:
        """Ends the episodes in progress: the next collect resets the envs.

        Off-policy, the replay buffer gets a boundary item after each env's
        last transition (what a time-limit truncation stores), so the last
        transition still bootstraps from its real next observation and no
        sample reaches into the next episode. Checkpoints call this first.
        """
        if self._time_step is not None and not self.on_policy:
            self.replay_buffer.add_batch(self._boundary(self._time_step))
        self._time_step = None
        self._policy_state = None

    def _boundary(self, time_step: ts.TimeStep) -> Any:
        spec = self.agent.collect_data_spec
        batch = (self.num_envs,)
        zeros = tensor_spec.zero_spec_nest(spec, outer_dims=batch)
        return zeros._replace(
            step_type=tf.fill(batch, tf.cast(ts.StepType.LAST, spec.step_type.dtype)),
            next_step_type=tf.fill(batch, tf.cast(ts.StepType.FIRST, spec.step_type.dtype)),
            observation=time_step.observation,
            discount=tf.ones_like(zeros.discount),
        )

    def state(self) -> dict[str, Any]:
        """JSON-able trainer state saved beside the TF checkpoint."""
        returns = self.history.eval_returns
        evaluated = bool(returns) and self.history.eval_steps[-1] == self.env_steps
        return {
            "env_steps": self.env_steps,
            "train_steps": int(self.agent.train_step_counter.numpy()),
            "seed": self.seed,
            "history": self.history.to_dict(),
            "agent_class": type(self.agent).__name__,
            "env_rng": get_rng_states(self.env),
            "eval_env_rng": get_rng_states(self._eval_env) if self._eval_env_made else None,
            "evaluation": (
                {"mean": returns[-1], "std": self.history.eval_stds[-1]} if evaluated else None
            ),
            "callbacks": {
                key: cb.get_state() for key, cb in self._keyed_callbacks() if cb.get_state()
            },
            "config": self.config.to_dict() if hasattr(self.config, "to_dict") else {},
        }

    def _keyed_callbacks(self) -> list[tuple[str, Callback]]:
        """Callbacks of the current fit, keyed `ClassName` (`ClassName-2`, ... for repeats)."""
        seen: dict[str, int] = {}
        keyed = []
        for cb in self._callbacks:
            name = type(cb).__name__
            seen[name] = seen.get(name, 0) + 1
            keyed.append((name if seen[name] == 1 else f"{name}-{seen[name]}", cb))
        return keyed

    def load_state(self, state: dict[str, Any]) -> None:
        """Restores what `state()` saved (the TF objects come from the checkpoint itself)."""
        self.history = History.from_dict(state["history"])
        if state.get("env_rng") and not set_rng_states(self.env, state["env_rng"]):
            logger.warning("Env RNG state not restored: the env differs from the checkpoint's.")
        eval_rng = state.get("eval_env_rng")
        restorable = eval_rng and (self._eval_env is None or self._eval_env_made)
        if restorable and not set_rng_states(self._make_eval_env(len(eval_rng)), eval_rng):
            logger.warning("Evaluation env RNG state not restored: its copies differ.")
        saved = state.get("callbacks", {})
        for key, cb in self._keyed_callbacks():
            if key in saved:
                cb.set_state(saved[key])
        self._time_step = None  # a restored run starts new episodes
        self._policy_state = None
        # A best-only checkpoint was saved mid-episode: its replay has no episode
        # boundary, so collecting on from it would join two episodes in one sample.
        self._restored_unresumable = state.get("resumable") is False and not self.on_policy

    # -- public API ----------------------------------------------------------

    def evaluate(self, episodes: int = 20) -> EvalResult:
        """Mean return of the greedy policy over `episodes` evaluation episodes."""
        return evaluate(self.agent.policy, self._make_eval_env(episodes), episodes)

    def fit(
        self,
        total_env_steps: int,
        *,
        eval_every: int | None = 2_000,
        eval_episodes: int = 20,
        callbacks: list[Callback] | None = None,
        resume: bool = False,
        verbose: int = 1,
    ) -> History:
        """Collects and trains until `total_env_steps` env steps have been taken.

        Args:
            total_env_steps: the env-step count to reach (absolute: a resumed
                run continues up to it).
            eval_every: evaluate the greedy policy every this many env steps
                and once more after the last iteration; None disables.
                Default 2,000.
            eval_episodes: episodes per evaluation. Default 20.
            callbacks: `tfrl.callbacks` instances (EarlyStopping, Checkpoint,
                CSVLogger, TensorBoard, or your own).
            resume: restore the latest checkpoint of the `Checkpoint` callback
                (weights, replay, random streams, History, callbacks' state)
                first. Default False.
            verbose: 0 silent, 1 a progress line (redrawn on a terminal, one line
                per evaluation in logs). Default 1.

        Returns:
            The `History` (also `trainer.history`).
        """
        check_whole_number("total_env_steps", total_env_steps)
        if eval_every is not None and eval_every < 1:
            raise ConfigError(f"eval_every={eval_every!r} must be ≥ 1, or None to skip evaluation.")
        check_whole_number("eval_episodes", eval_episodes)
        callbacks = list(callbacks or [])
        checkpoints = [cb for cb in callbacks if isinstance(cb, Checkpoint)]
        if resume and not checkpoints:
            raise ConfigError(
                "resume=True needs to know where checkpoints are: pass "
                "callbacks=[tfrl.callbacks.Checkpoint('runs/my_run')]."
            )
        if self._restored_unresumable and not resume:
            raise ConfigError(
                "This trainer holds a best-evaluation checkpoint, which is for evaluate and "
                "export, not for training on (its replay ends mid-episode). To continue the "
                "run, pass resume=True with its Checkpoint callback (tfrl train --resume), "
                "or load_run(..., checkpoint='latest')."
            )
        cbs = CallbackList(callbacks)
        cbs.set_trainer(self)
        self._callbacks = cbs.callbacks
        self.stop_training = False
        self.resuming = resume
        try:
            # Refusals and restores come before any callback writes a file.
            for cb in checkpoints:
                cb.prepare(resume)
            if resume and verbose:
                print(
                    f"Resumed from {checkpoints[0].manager.latest()} at "
                    f"{self.env_steps:,} env steps",
                    flush=True,
                )
            cbs.on_train_begin()
            logs = self._loop(total_env_steps, eval_every, eval_episodes, cbs, verbose)
            cbs.on_train_end(logs)
            cbs.after_train_end(logs)
        finally:
            cbs.close()
            self._callbacks = []
        return self.history

    def _loop(
        self,
        total_env_steps: int,
        eval_every: int | None,
        eval_episodes: int,
        cbs: CallbackList,
        verbose: int,
    ) -> dict[str, Any]:
        """Collect-train-evaluate iterations until the target or a stop; returns last logs.

        The last iteration evaluates (unless evaluation is off), so `fit` ends
        with an evaluation of the final policy.
        """
        progress = ProgressLine(total_env_steps) if verbose else None
        c = self.config
        last_eval = self.history.eval_steps[-1] if self.history.eval_steps else 0
        seconds_so_far = self.history.history.get("train_seconds", [])
        train_seconds = seconds_so_far[-1] if seconds_so_far else 0.0
        logs: dict[str, Any] = {}
        while self.env_steps < total_env_steps and not self.stop_training:
            start = time.perf_counter()
            if self._time_step is None:
                self._time_step = self.env.reset()
                self._policy_state = self.collect_policy.get_initial_state(self.num_envs)
            self._time_step, self._policy_state = self._collect(self._time_step, self._policy_state)
            self._env_steps.assign_add(self.iteration_env_steps)
            loss = None
            if self.on_policy or self.env_steps >= c.learning_starts:
                loss = float(self._train())
            seconds = time.perf_counter() - start
            train_seconds += seconds
            logs = {
                "env_steps": self.env_steps,
                "train_steps": int(self.agent.train_step_counter.numpy()),
                "steps_per_sec": self.iteration_env_steps / seconds,
                "train_return": float(self.return_metric.result()),
                "train_seconds": train_seconds,
            }
            if loss is not None:
                logs["loss"] = loss
            due = self.env_steps - last_eval >= eval_every if eval_every else False
            if eval_every is not None and (due or self.env_steps >= total_env_steps):
                last_eval = self.env_steps
                eval_logs = self._run_evaluation(eval_episodes)
                logs.update(eval_logs)
                cbs.on_evaluate_end(self.env_steps, eval_logs)
            self.history.log(logs)
            cbs.on_iteration_end(self.env_steps, logs)
            if progress is not None:
                progress.update(self.env_steps, self._shown(logs), "eval_return" in logs)
        if logs and eval_every is not None and last_eval != self.env_steps:
            # A callback stopped training between evaluations: evaluate what fit returns.
            eval_logs = self._run_evaluation(eval_episodes)
            for key, value in eval_logs.items():
                self.history.history.setdefault(key, []).append(value)
            logs.update(eval_logs)
            cbs.on_evaluate_end(self.env_steps, eval_logs)
        if progress is not None:
            progress.close(self.env_steps, self._shown(logs))
        return logs

    def _shown(self, logs: dict[str, Any]) -> dict[str, Any]:
        """The iteration's logs plus the latest evaluation's mean return, for display."""
        returns = self.history.eval_returns
        return {**logs, "last_eval": returns[-1] if returns else None}

    def _run_evaluation(self, episodes: int) -> dict[str, float]:
        start = time.perf_counter()
        result = self.evaluate(episodes)
        seconds = time.perf_counter() - start
        self.history.log_eval(self.env_steps, result.mean, result.std, seconds)
        logger.info("env step %d: eval return %s", self.env_steps, result)
        return {"eval_return": result.mean, "eval_std": result.std, "eval_seconds": seconds}
