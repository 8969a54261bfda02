// A collection in the shared layout (BEIR files + collection.json), from its upstream release or a local copy.
// Command: templates/prepare_collection.sh; one task per row of PLAN's tasks/PREPARE_COLLECTION.json.
process PREPARE_COLLECTION {
    tag "${row.id}"
    label 'process_low'
    publishDir path: { "${params.outdir}/" + task.ext.publish.replace('{collection}', "${row.collection}") }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }

    input:
    tuple val(row), path(source, stageAs: 'source')

    output:
    tuple val(row), path("${row.id}"), emit: collection
    path 'versions.yml', topic: versions

    script:
    template 'prepare_collection.sh'

    stub:
    template 'stub/prepare_collection.sh'
}
