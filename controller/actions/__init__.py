"""Recovery actions: the executor (locks, rate limit, dry-run), migrate, scale, reconcile.

`Executor(swarm, settings, on_record=..., node_load=...)` takes the rule engine's decisions;
see executor.py for the safety rules and docs/actions.md for what each action does to Swarm.
"""
from controller.actions.executor import Executor
from controller.actions.settings import ActionSettings

__all__ = ["ActionSettings", "Executor"]
