// Choose (alpha_lower, alpha_upper) on the grid, scored on the trial's own labelled queries only.
process SELECT_ALPHA {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(grid), path(train), path(sidecar)

    output:
    tuple val(meta), path('alpha.json'), emit: alpha
    path 'versions.yml',                 emit: versions

    script:
    """
    report.py select-alpha \\
        --grid ${grid} \\
        --queries ${train} \\
        --eval-split ${meta.eval_split} \\
        --out alpha.json
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    echo '{"alpha_lower": 1.0, "alpha_upper": 1.0, "selection": "grid"}' > alpha.json
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
