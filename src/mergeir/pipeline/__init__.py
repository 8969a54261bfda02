"""The pipeline as data: PLAN's task files (`tasks`), the rows main.nf joins to artifacts and runs (bin/plan.py).

`plan_tasks` resolves an experiment into one row per task of every process (`PROCESSES`), `write_tasks` writes them
as PLAN's JSON task files (`--encode-shards` at most `MAX_ENCODE_SHARDS`), and `chosen_rows` builds the
merged arm's rows once SELECT_ALPHA has chosen its α (`plan.py chosen`), which `write_chosen` writes.
"""

from .tasks import MAX_ENCODE_SHARDS, PROCESSES, chosen_rows, plan_tasks, write_chosen, write_tasks

__all__ = ["MAX_ENCODE_SHARDS", "PROCESSES", "chosen_rows", "plan_tasks", "write_chosen", "write_tasks"]
