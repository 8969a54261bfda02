// Limited-data trials v1..vN: seeded samples of a few labelled queries from the full training set.
process MAKE_TRIALS {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(train), path(sidecar)

    output:
    tuple val(meta), path('trials'), emit: trials
    path 'versions.yml',                      emit: versions

    script:
    """
    prepare_training.py trials \\
        --train ${train} \\
        --out trials \\
        --trials ${meta.n_trials} \\
        --queries ${meta.n_queries} \\
        --seed ${meta.seed}
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    def names = (1..(meta.n_trials as int)).collect { i -> "trials/v${i}.jsonl trials/v${i}.jsonl.json" }.join(' ')
    """
    mkdir trials
    touch ${names}
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
