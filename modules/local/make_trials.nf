// Seeded samples of labelled queries from a training set: the limited-data trials v1..vN, and (included as
// SAMPLE_FULL) the full setting's sample when the experiment caps it (e.g. 1,000 queries).
process MAKE_TRIALS {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(train), path(sidecar)

    output:
    tuple val(meta), path("${meta.name}"), emit: trials
    path 'versions.yml',                   emit: versions

    script:
    """
    prepare_training.py trials \\
        --train ${train} \\
        --out ${meta.name} \\
        --trials ${meta.n_trials} \\
        --queries ${meta.n_queries} \\
        --seed ${meta.seed}
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    def names = (1..(meta.n_trials as int)).collect { i -> "${meta.name}/v${i}.jsonl ${meta.name}/v${i}.jsonl.json" }.join(' ')
    """
    mkdir ${meta.name}
    touch ${names}
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
