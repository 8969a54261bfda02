// Choose (alpha_lower, alpha_upper) on the grid, scored on the trial's own labelled queries only, then plan the
// merged arm of that alpha (plan.py chosen: MERGE/ENCODE/EVALUATE rows, the DAG's one run-time edge).
// Command: templates/select_alpha.sh; one task per row of PLAN's tasks/SELECT_ALPHA.json.
process SELECT_ALPHA {
    tag "${row.id}"
    label 'process_single'

    input:
    tuple val(row), path(grid, stageAs: 'grid'), path(train, stageAs: 'train')
    path tasks, stageAs: 'tasks'

    output:
    tuple val(row), path("${row.id}"), emit: chosen
    path 'versions.yml', emit: versions

    script:
    template 'select_alpha.sh'

    stub:
    template 'stub/select_alpha.sh'
}
