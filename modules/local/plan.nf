// The experiment file -> task lists (tasks/*.csv) that main.nf turns into channels.
process PLAN {
    tag "${experiment.name}"
    label 'process_single'

    input:
    path experiment
    val dataset
    val settings
    val alpha_selection
    val allow_unpinned

    output:
    path 'tasks/models.csv',      emit: models
    path 'tasks/collections.csv', emit: collections
    path 'tasks/trials.csv',      emit: trials
    path 'tasks/tiny.csv',        emit: tiny
    path 'tasks/lora.csv',        emit: lora
    path 'tasks/plan.json',       emit: plan
    path 'versions.yml',          emit: versions

    script:
    def unpinned = allow_unpinned ? '--allow-unpinned' : ''
    """
    plan.py tasks \\
        --experiment ${experiment} \\
        --out tasks \\
        --dataset '${dataset}' \\
        --settings '${settings}' \\
        --alpha-selection ${alpha_selection} \\
        ${unpinned}
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    mkdir tasks
    touch tasks/models.csv tasks/collections.csv tasks/trials.csv tasks/tiny.csv tasks/lora.csv tasks/plan.json
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
