"""Recovery actions: one plugin per action (plugin.py, migrate.py, scale.py; registry.py lists them),
the executor that runs them under global limits (executor.py, budget.py), and what SwarmGuard owns
on services (ownership.py, reconcile.py). docs/actions.md describes what each action does to Swarm.

Nothing is imported here on purpose: the rule engine reads the plugins' pure decision side without
loading the executor or the Docker adapter.
"""
