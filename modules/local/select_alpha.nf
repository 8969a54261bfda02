// Choose (alpha_lower, alpha_upper) on the grid, scored on the trial's own labelled queries only, then plan the
// merged arm of that alpha (plan.py chosen: MERGE/ENCODE/EVALUATE rows, the DAG's one run-time edge).
// Command: templates/select_alpha.sh; one task per row of PLAN's tasks/SELECT_ALPHA.json.
process SELECT_ALPHA {
    tag "${row.id}"
    label 'process_single'
    publishDir path: { "${params.outdir}/" + task.ext.publish.replace('{collection}', "${row.collection}") }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }

    input:
    tuple val(row), path(grid, stageAs: 'grid'), path(train, stageAs: 'train')

    output:
    tuple val(row), path("${row.id}"), emit: chosen
    path 'versions.yml', topic: versions

    script:
    template 'select_alpha.sh'

    stub:
    template 'stub/select_alpha.sh'
}
