// The alpha grid on a collection's labelled queries, merged in memory (no merged model is written).
// Command: templates/sweep.sh; one task per row of PLAN's tasks/SWEEP.json.
process SWEEP {
    tag "${row.id}"
    label 'process_gpu'
    publishDir path: { "${params.outdir}/" + task.ext.publish.replace('{collection}', "${row.collection}") }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }

    input:
    tuple val(row), path(collection, stageAs: 'collection'), path(domain, stageAs: 'domain'), path(source, stageAs: 'source')

    output:
    tuple val(row), path("${row.id}"), emit: grid
    path 'versions.yml', topic: versions

    script:
    template 'sweep.sh'

    stub:
    template 'stub/sweep.sh'
}
