"""The pipeline as data: PLAN's task files (`tasks`), the rows main.nf joins to artifacts and runs."""
