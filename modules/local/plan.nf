// PLAN: the experiment file -> one JSON task file per process (tasks/<PROCESS>.json), the DAG main.nf runs.
// Command: templates/plan.sh (plan.py tasks). Never cached: the library digest it writes into every row is
// read afresh on each run, and unchanged rows keep every later task cached.
process PLAN {
    tag "${experiment.name}"
    label 'process_single'
    cache false

    input:
    path experiment
    val dataset
    val settings
    val alpha_selection
    val allow_unpinned
    val device
    val encode_shards
    val sweep_shards

    output:
    path 'tasks', emit: tasks
    path 'versions.yml', emit: versions

    script:
    template 'plan.sh'

    stub:
    template 'plan.sh'
}
