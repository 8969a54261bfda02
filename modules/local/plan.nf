// PLAN: the experiment file -> one JSON task file per process (tasks/<PROCESS>.json), the DAG main.nf runs.
// Command: templates/plan.sh (plan.py tasks). Never cached: the library digest it writes into every row is
// read afresh on each run, and unchanged rows keep every later task cached.
process PLAN {
    tag "${experiment.name}"
    label 'process_single'
    publishDir path: { "${params.outdir}/" + task.ext.publish }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }
    cache false

    input:
    path experiment, stageAs: 'experiment.yaml'  // a fixed name: the user's file name never reaches the shell
    val plan_params                               // JSON object of the run's params (main.nf), read by plan.py

    output:
    path 'tasks', emit: tasks
    path 'versions.yml', topic: versions

    script:
    template 'plan.sh'

    stub:
    template 'plan.sh'
}
