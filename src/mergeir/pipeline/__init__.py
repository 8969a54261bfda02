"""The pipeline as data: PLAN's task files (`tasks`), the command templates both runners render (`templates`),
and the CPU runner that executes a plan without Nextflow (`runner`)."""
